import {
  ALL_CONTROLLER_REPLIES,
  ALL_DEVICES_PUBLISH,
  ALL_DEVICES_SUBSCRIBE,
  devicePublishTopic,
  deviceSubscribeTopic,
  MEROSS_LAN_REPLY_TOPIC,
} from "../meross/topics.ts";
import {
  type BrokerClientSettings,
  BrokerConnectionError,
  connectOnce,
  trySubscribe,
  uniqueClientId,
} from "../mqtt/connection.ts";
import { type Backoff, reconnectWithBackoff } from "../mqtt/reconnect.ts";

/**
 * What the monitor subscribes to: every device, or only the named ones, plus the topics devices
 * answer controllers on (our scripts' and Home Assistant's). `/appliance/+/publish` already holds
 * Home Assistant's `/appliance/meross_lan/publish`; a device filter needs it named.
 */
export function monitorTopics(uuids: readonly string[], replies: boolean): string[] {
  if (uuids.length === 0) {
    const everyDevice = [ALL_DEVICES_PUBLISH, ALL_DEVICES_SUBSCRIBE];
    return replies ? [...everyDevice, ALL_CONTROLLER_REPLIES] : everyDevice;
  }
  const named = uuids.flatMap((uuid) => [devicePublishTopic(uuid), deviceSubscribeTopic(uuid)]);
  return replies ? [...named, ALL_CONTROLLER_REPLIES, MEROSS_LAN_REPLY_TOPIC] : named;
}

/**
 * Whether the monitor prints a message: replies on the shared reply topics are kept to the named
 * devices (by the uuid they carry), and without replies Home Assistant's reply topic, which
 * `/appliance/+/publish` matches, is left out like ours.
 */
export function monitorShows(
  topic: string,
  uuid: string | undefined,
  filter: { uuids: readonly string[]; replies: boolean },
): boolean {
  if (!filter.replies && topic === MEROSS_LAN_REPLY_TOPIC) return false;
  return filter.uuids.length === 0 || (uuid !== undefined && filter.uuids.includes(uuid));
}

export interface MonitorOptions extends BrokerClientSettings {
  topics: string[];
  onMessage(topic: string, payload: Buffer): void;
  /** Things the user should know that are not traffic: refused topics, lost and regained connections. */
  onNotice(text: string): void;
  connectTimeoutMs?: number;
  backoff?: Backoff;
}

export interface Monitor {
  /** The topics the broker let us read. */
  readonly topics: string[];
  stop(): Promise<void>;
}

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
 * with the kit's reconnect policy and the subscriptions are made again, so a broker restart does
 * not end a watch.
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
  reconnectWithBackoff(client, {
    ...(options.backoff ? { backoff: options.backoff } : {}),
    onEvent(change) {
      if (change.event === "lost") options.onNotice("lost the broker; reconnecting…");
      if (change.event === "retrying" && change.attempt > 1) {
        options.onNotice(`the broker is still away; trying again in ${(change.inMs / 1000).toFixed(1)} s`);
      }
      if (change.event === "reconnected") {
        options.onNotice("connected to the broker again");
        subscribeAll(client, allowed, options.onNotice).catch((error: Error) =>
          options.onNotice(`could not subscribe again: ${error.message}`),
        );
      }
    },
  });
  return {
    topics: allowed,
    stop: () => client.endAsync(true),
  };
}
