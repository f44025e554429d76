import mqtt from "mqtt";
import type { SessionAnswerer } from "../config/stack.ts";
import type { MerossMessage } from "../meross/envelope.ts";
import { timeRules } from "../meross/time-rules.ts";
import { ALL_DEVICES_PUBLISH } from "../meross/topics.ts";
import {
  type BrokerClientSettings,
  brokerClientOptions,
  trySubscribe,
  uniqueClientId,
} from "../mqtt/connection.ts";
import { type Backoff, dropConnection, reconnectWithBackoff } from "../mqtt/reconnect.ts";
import { type AgentLogger, errorText } from "./log.ts";
import { SessionResponder, type SessionResponderOptions } from "./responder.ts";

export interface SessionAgentOptions
  extends BrokerClientSettings,
    Pick<SessionResponderOptions, "key" | "keySecret" | "previousKeySecret" | "keyGenerations"> {
  /** Names the agent's MQTT client (`session-agent-<userId>-<random>`) in the broker's log. */
  userId: string;
  /** IANA zone sent to each device once, and again when a later Bind shows it rebooted; none: zones are left alone. */
  timezone?: string;
  /** "meross_lan": Home Assistant answers the devices' session messages and owns their zone; the agent stays quiet. */
  sessionAnswers?: SessionAnswerer;
  log: AgentLogger;
  maxMessageBytes?: number;
  backoff?: Backoff;
  now?: () => Date;
}

/**
 * The agent is the devices' other half: newer firmware hangs up when its Bind is unanswered for 10 s
 * and dials again (protocol §5.5), so after a broker restart or a power cut the agent has to be back
 * before the devices are, or they storm the broker a second time. One client knocking every few
 * seconds costs a local broker nothing, so it retries within 250 ms and never waits more than 5 s,
 * where tools back off up to 30 s.
 */
export const AGENT_BACKOFF: Backoff = { initialMs: 250, maxMs: 5_000 };

export interface SessionAgent {
  /** Settles once the agent is subscribed to device traffic for the first time. */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Answers every device's session messages on the broker until stopped. It never throws after it
 * starts: bad input is logged and skipped, and a lost broker is retried with backoff for ever.
 */
export function startSessionAgent(options: SessionAgentOptions): SessionAgent {
  const { log, key, keySecret, previousKeySecret, keyGenerations } = options;
  const now = options.now ?? (() => new Date());
  // A bad zone is a settings mistake: refuse it now rather than log it for every device.
  if (options.timezone !== undefined) timeRules(options.timezone);
  const clientOptions = brokerClientOptions(options, {
    clientId: uniqueClientId(`session-agent-${options.userId}`),
  });
  const broker = `${clientOptions.protocol}://${clientOptions.host}:${clientOptions.port}`;
  const sessionAnswers = options.sessionAnswers ?? "agent";
  const responder = new SessionResponder({
    key,
    ...(keySecret === undefined ? {} : { keySecret }),
    ...(previousKeySecret === undefined ? {} : { previousKeySecret }),
    ...(keyGenerations === undefined ? {} : { keyGenerations }),
    sessionAnswers,
    ...(options.timezone === undefined ? {} : { timezone: options.timezone }),
    ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
  });
  let stopping = false;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });

  log({ level: "info", event: "connecting", broker, username: options.username ?? null, sessionAnswers });
  const client = mqtt.connect(clientOptions);
  reconnectWithBackoff(client, {
    backoff: options.backoff ?? AGENT_BACKOFF,
    onEvent: (change) => {
      if (change.event === "lost") log({ level: "warn", event: "disconnected", broker });
      if (change.event === "retrying") {
        log({ level: "info", event: "reconnecting", broker, attempt: change.attempt, inMs: change.inMs });
      }
    },
  });

  client.on("connect", () => {
    log({ level: "info", event: "connected", broker });
    const refused = (error: string) => {
      // Without the subscription the agent is useless; a reconnect retries it (after an ACL fix).
      log({ level: "error", event: "subscribe-refused", topic: ALL_DEVICES_PUBLISH, error });
      dropConnection(client);
    };
    trySubscribe(client, ALL_DEVICES_PUBLISH, 1).then(
      (allowed) => {
        if (!allowed) {
          refused("the broker refused the subscription: check the agent's ACL");
          return;
        }
        log({ level: "info", event: "subscribed", topic: ALL_DEVICES_PUBLISH });
        markReady();
      },
      (error: unknown) => refused(errorText(error)),
    );
  });

  // MQTT.js reports one failed dial twice (the socket's error, then its own), so one line per attempt.
  let errorLogged = false;
  client.on("error", (error) => {
    if (errorLogged) return;
    errorLogged = true;
    log({ level: "warn", event: "connection-error", broker, error: errorText(error) });
  });
  for (const attempt of ["connect", "reconnect"] as const) {
    client.on(attempt, () => {
      errorLogged = false;
    });
  }

  const publish = (uuid: string | undefined, topic: string, message: MerossMessage): boolean => {
    if (!client.connected) {
      log({ level: "warn", event: "publish-failed", uuid, error: "not connected to the broker" });
      return false;
    }
    // QoS 0: a session answer that arrives late is worse than none, so nothing is queued for later.
    // No completion callback: MQTT.js defers each one to the socket's next 'drain' while the broker
    // reads slowly, and after a power cut the agent answers ~3 messages per plug in one burst (1 000
    // plugs: 3 000 listeners, past the stream's limit of 1 000 and its leak warning). A QoS 0 publish
    // on a connected client can only fail with the connection, which the reconnect log reports.
    client.publish(topic, JSON.stringify(message), { qos: 0 });
    return true;
  };

  client.on("message", (topic, payload) => {
    try {
      const response = responder.handle(topic, payload, now());
      for (const entry of response.log) log(entry);
      for (const reply of response.replies) {
        if (publish(reply.logEntry.uuid, reply.topic, reply.message)) log(reply.logEntry);
      }
    } catch (error) {
      log({ level: "error", event: "handler-failed", topic, error: errorText(error) });
    }
  });

  return {
    ready,
    stop: async () => {
      if (stopping) return;
      stopping = true;
      await client.endAsync(true);
      log({ level: "info", event: "stopped" });
    },
  };
}
