import {
  type BrokerClientSettings,
  BrokerConnectionError,
  connectOnce,
  trySubscribe,
  uniqueClientId,
} from "../control/broker-connection.ts";
import {
  ALL_CONTROLLER_REPLIES,
  ALL_DEVICES_PUBLISH,
  ALL_DEVICES_SUBSCRIBE,
  devicePublishTopic,
  deviceSubscribeTopic,
} from "../meross/topics.ts";

/** What the monitor subscribes to: every device, or only the named ones, plus controllers' reply topics. */
export function monitorTopics(uuids: readonly string[], replies: boolean): string[] {
  const deviceTopics =
    uuids.length === 0
      ? [ALL_DEVICES_PUBLISH, ALL_DEVICES_SUBSCRIBE]
      : uuids.flatMap((uuid) => [devicePublishTopic(uuid), deviceSubscribeTopic(uuid)]);
  return replies ? [...deviceTopics, ALL_CONTROLLER_REPLIES] : deviceTopics;
}

export interface MonitorOptions extends BrokerClientSettings {
  topics: string[];
  onMessage(topic: string, payload: Buffer): void;
  /** Things the user should know that are not traffic: refused topics, lost and regained connections. */
  onNotice(text: string): void;
  connectTimeoutMs?: number;
}

export interface Monitor {
  /** The topics the broker let us read. */
  readonly topics: string[];
  stop(): Promise<void>;
}

const RECONNECT_MS = 2_000;

async function subscribeAll(
  client: Awaited<ReturnType<typeof connectOnce>>,
  topics: string[],
  onNotice: (text: string) => void,
): Promise<string[]> {
  const allowed: string[] = [];
  for (const topic of topics) {
    if (await trySubscribe(client, topic, 0)) allowed.push(topic);
    else onNotice(`the broker does not let this account read ${topic}; that traffic is not shown`);
  }
  return allowed;
}

/**
 * Connects once (failing fast with BrokerConnectionError), then stays: a lost broker is retried
 * every few seconds and the subscriptions are made again, so a broker restart does not end a watch.
 */
export async function startMonitor(options: MonitorOptions): Promise<Monitor> {
  const client = await connectOnce(options, {
    clientId: uniqueClientId("monitor"),
    ...(options.connectTimeoutMs === undefined ? {} : { timeoutMs: options.connectTimeoutMs }),
  });
  let allowed: string[];
  try {
    allowed = await subscribeAll(client, options.topics, options.onNotice);
  } catch (error) {
    await client.endAsync(true);
    throw new BrokerConnectionError("ECONNECT", `could not subscribe: ${(error as Error).message}`);
  }
  if (allowed.length === 0) {
    await client.endAsync(true);
    throw new BrokerConnectionError(
      "ECONNREFUSED_AUTH",
      "the broker refused every subscription; use a controller account",
    );
  }
  client.on("message", (topic, payload) => options.onMessage(topic, payload));
  let stopping = false;
  client.options.reconnectPeriod = RECONNECT_MS;
  client.on("offline", () => {
    if (!stopping) options.onNotice("lost the broker; reconnecting…");
  });
  client.on("connect", () => {
    options.onNotice("connected to the broker again");
    subscribeAll(client, allowed, options.onNotice).catch((error: Error) =>
      options.onNotice(`could not subscribe again: ${error.message}`),
    );
  });
  return {
    topics: allowed,
    stop: async () => {
      stopping = true;
      await client.endAsync(true);
    },
  };
}
