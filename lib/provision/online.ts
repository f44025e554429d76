import mqtt from "mqtt";
import type { ExitCategory } from "../exit-category.ts";
import { buildMessage, type MerossMessage, parseMessage } from "../meross/envelope.ts";
import {
  Namespace,
  parseSystemAll,
  type SystemAllSummary,
  systemAllRequest,
} from "../meross/messages/index.ts";
import { controllerReplyTopic, devicePublishTopic, deviceSubscribeTopic } from "../meross/topics.ts";
import { brokerClientOptions, uniqueClientId } from "../mqtt/connection.ts";
import { type Backoff, reconnectWithBackoff } from "../mqtt/reconnect.ts";
import type { OnlineReport } from "./setup.ts";

export interface OnlineWatchSettings {
  /** As the user wrote it: `mqtts://` is checked against `caPem`, `mqtt://` is plain. */
  brokerUrl: string;
  caPem?: string;
  /** A controller login in the mysql variant; none on the anonymous broker. */
  username?: string;
  password?: string;
  /** The key the device now signs with, for our System.All query. */
  key: string;
  userId: string;
  timeoutMs: number;
  /** How often to ask the device for System.All while waiting (it may have sent its first pushes before we subscribed). */
  pollIntervalMs?: number;
}

/** What this machine saw of the broker while waiting: the advice on a timeout depends on it. */
export interface BrokerObservation {
  reachedBroker: boolean;
  lastBrokerError?: string;
}

export class OnlineTimeoutError extends Error {
  readonly observation: BrokerObservation;
  constructor(seconds: number, observation: BrokerObservation) {
    super(`the device did not publish anything on the broker within ${seconds} s`);
    this.name = "OnlineTimeoutError";
    this.observation = observation;
  }
}

/** Setup was sent but the device did not come online in time; the message says what to check. */
export class DeviceOfflineError extends Error {
  readonly exitCategory: ExitCategory = "timeout";
  override name = "DeviceOfflineError";
}

const SUMMARY_WAIT_MS = 5_000;
/** Short steps: the wait is bounded by --timeout, and the laptop may rejoin the home network any second. */
const ONLINE_WAIT_BACKOFF: Backoff = { initialMs: 1_000, maxMs: 4_000 };

/**
 * Waits until the device publishes from its uuid: any message on `/appliance/<uuid>/publish`, or a
 * reply to our System.All query that comes from it. Reconnects on its own, because the laptop is
 * usually still on the device's pairing Wi-Fi when the wait starts and reaches the broker only once
 * it has rejoined the home network.
 */
export function waitForDeviceOnline(
  device: Pick<SystemAllSummary, "uuid">,
  settings: OnlineWatchSettings,
): Promise<OnlineReport> {
  const started = Date.now();
  const clientId = uniqueClientId("provision");
  const replyTopic = controllerReplyTopic(settings.userId, clientId);
  const publishTopic = devicePublishTopic(device.uuid);
  const client = mqtt.connect(
    brokerClientOptions(
      {
        brokerUrl: settings.brokerUrl,
        ...(settings.caPem ? { ca: settings.caPem } : {}),
        ...(settings.username === undefined
          ? {}
          : { username: settings.username, password: settings.password ?? "" }),
      },
      { clientId, connectTimeoutMs: 5_000 },
    ),
  );
  reconnectWithBackoff(client, { backoff: ONLINE_WAIT_BACKOFF });
  const observation: BrokerObservation = { reachedBroker: false };

  const askForSystemAll = () => {
    if (!client.connected) return;
    const request = buildMessage({ ...systemAllRequest(), key: settings.key, from: replyTopic });
    client.publish(deviceSubscribeTopic(device.uuid), JSON.stringify(request));
  };

  return new Promise<OnlineReport>((resolve, reject) => {
    let firstMessage: string | undefined;
    let poll: NodeJS.Timeout | undefined;
    let summaryTimer: NodeJS.Timeout | undefined;
    const finish = (outcome: { report?: OnlineReport; error?: Error }) => {
      clearTimeout(deadline);
      clearTimeout(summaryTimer);
      clearInterval(poll);
      client.removeAllListeners("message");
      client.end(true);
      if (outcome.report) resolve(outcome.report);
      else reject(outcome.error);
    };
    const report = (systemAll?: SystemAllSummary): OnlineReport => ({
      firstMessage: firstMessage as string,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      ...(systemAll ? { systemAll } : {}),
    });
    const deadline = setTimeout(() => {
      if (firstMessage) finish({ report: report() });
      else finish({ error: new OnlineTimeoutError(Math.round(settings.timeoutMs / 1000), observation) });
    }, settings.timeoutMs);

    client.on("connect", () => {
      observation.reachedBroker = true;
      delete observation.lastBrokerError;
      client.subscribe([publishTopic, replyTopic], (error) => {
        if (error) {
          observation.lastBrokerError = `cannot subscribe to ${publishTopic}: ${error.message}`;
          return;
        }
        askForSystemAll();
      });
    });
    client.on("error", (error) => {
      observation.lastBrokerError = error.message;
    });
    client.on("message", (topic, payload) => {
      let message: MerossMessage;
      try {
        message = parseMessage(payload);
      } catch {
        return;
      }
      const fromDevice =
        topic === publishTopic || (topic === replyTopic && message.header.from === publishTopic);
      if (!fromDevice) return;
      const systemAll =
        topic === replyTopic &&
        message.header.namespace === Namespace.SystemAll &&
        message.header.method === "GETACK"
          ? safeSystemAll(message)
          : undefined;
      if (!firstMessage) {
        firstMessage = `${message.header.method} ${message.header.namespace}`;
        clearInterval(poll);
        if (!systemAll) {
          askForSystemAll();
          summaryTimer = setTimeout(() => finish({ report: report() }), SUMMARY_WAIT_MS);
        }
      }
      if (systemAll) finish({ report: report(systemAll) });
    });
    poll = setInterval(askForSystemAll, settings.pollIntervalMs ?? 3_000);
  });
}

function safeSystemAll(message: MerossMessage): SystemAllSummary | undefined {
  try {
    return parseSystemAll(message.payload);
  } catch {
    return undefined;
  }
}
