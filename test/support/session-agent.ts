import { type SessionAgent, startSessionAgent } from "../../lib/agent/agent.ts";
import type { SessionAnswerer } from "../../lib/config/stack.ts";
import type { MosquittoInstance } from "../../lib/local-stack/mosquitto.ts";
import type { LocalPki } from "../../lib/local-stack/pki.ts";

/**
 * The stack's session agent on a test broker, log discarded, resolved once it is subscribed; with
 * `account`, it logs in as that service account (the mysql variant).
 */
export async function startTestAgent(options: {
  broker: MosquittoInstance;
  pki: LocalPki;
  key: string;
  /** The stack secret per-device keys come from; without it the agent knows only the shared key. */
  keySecret?: string;
  previousKeySecret?: string;
  userId: string;
  account?: { username: string; password: string };
  timezone?: string;
  sessionAnswers?: SessionAnswerer;
}): Promise<SessionAgent> {
  const agent = startSessionAgent({
    brokerUrl: options.broker.url,
    ca: options.pki.caPem,
    ...(options.account === undefined
      ? {}
      : { username: options.account.username, password: options.account.password }),
    key: options.key,
    ...(options.keySecret === undefined ? {} : { keySecret: options.keySecret }),
    ...(options.previousKeySecret === undefined ? {} : { previousKeySecret: options.previousKeySecret }),
    userId: options.userId,
    ...(options.timezone === undefined ? {} : { timezone: options.timezone }),
    ...(options.sessionAnswers === undefined ? {} : { sessionAnswers: options.sessionAnswers }),
    log: () => {},
  });
  try {
    await agent.ready;
  } catch (error) {
    await agent.stop();
    throw error;
  }
  return agent;
}
