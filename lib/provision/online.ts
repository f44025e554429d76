import mqtt from "mqtt";
import type { ExitCategory } from "../exit-category.ts";
import { type MerossMessage, parseMessage } from "../meross/envelope.ts";
import {
  Namespace,
  parseSystemAll,
  type SystemAllSummary,
  systemAllRequest,
} from "../meross/messages/index.ts";
import { requestOver } from "../meross/request.ts";
import { controllerReplyTopic, devicePublishTopic } from "../meross/topics.ts";
import { brokerClientOptions, uniqueClientId } from "../mqtt/connection.ts";
import { MqttDeviceTransport } from "../mqtt/device-transport.ts";
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
  /** Only a new connection would have counted (the device had a session before the set-up). */
  readonly awaitedNewSession: boolean;
  constructor(seconds: number, observation: BrokerObservation, awaitedNewSession = false) {
    super(
      awaitedNewSession
        ? `the device did not open a new connection to the broker within ${seconds} s ` +
            "(it may still be on the session it had before the set-up: real firmware keeps its old broker until it restarts)"
        : `the device did not publish anything on the broker within ${seconds} s`,
    );
    this.name = "OnlineTimeoutError";
    this.observation = observation;
    this.awaitedNewSession = awaitedNewSession;
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
 * A broker watch started before the set-up reaches the device, so that it can tell the device's
 * old session from the new one:
 * - Everything the device publishes before `acknowledged()` (the last set-up step's SETACK) belongs
 *   to the session it had before, and never counts.
 * - A device that had a broker session when it was read (System.All `online.status` 1), or that
 *   this watch saw talking before the acknowledgement, may keep that session for a while (real
 *   firmware stays on its old broker until it restarts; meross_lan `mqtt_profile.py`). Its arrival is
 *   proved only by what a device sends on every new connection: `Appliance.Control.Bind` (§5.5), so
 *   a reply from the old session to our System.All query cannot count.
 * - A device that had no session (pairing mode) counts from its first message after the
 *   acknowledgement, a reply to our System.All query included: it may have sent its session
 *   messages before the laptop got back onto the home network.
 */
export interface OnlineWatch {
  /** Resolves once connected and subscribed, or after `withinMs` regardless (the broker may be out of reach yet). */
  ready(withinMs: number): Promise<boolean>;
  /** The set-up was acknowledged: from now on the device's new connection is awaited, for `timeoutMs`. */
  acknowledged(): void;
  /** The device's arrival; rejects with OnlineTimeoutError. Call after `acknowledged()`. */
  result(): Promise<OnlineReport>;
  stop(): void;
}

export interface OnlineWatchOptions {
  /** The device had a broker session when it was read: only a new connection proves it moved. */
  hadSession: boolean;
}

export function watchDeviceOnline(
  device: Pick<SystemAllSummary, "uuid">,
  settings: OnlineWatchSettings,
  options: OnlineWatchOptions,
): OnlineWatch {
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
  const transport = new MqttDeviceTransport(client, replyTopic);
  const observation: BrokerObservation = { reachedBroker: false };
  let subscribed = false;
  let sawOldSession = false;
  let acknowledgedAt: number | undefined;
  let firstMessage: string | undefined;
  let poll: NodeJS.Timeout | undefined;
  let summaryTimer: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let settle: { resolve(report: OnlineReport): void; reject(error: Error): void } | undefined;
  let outcome: { report?: OnlineReport; error?: Error } | undefined;
  const readyWaiters: (() => void)[] = [];

  const strict = () => options.hadSession || sawOldSession;
  // A poll may be answered any time until the watch ends: its answer is the summary once the
  // device has counted as online (below), and is otherwise left to the message listener.
  const askForSystemAll = () => {
    if (!client.connected || acknowledgedAt === undefined) return;
    if (strict() && firstMessage === undefined) return;
    requestOver(
      transport,
      systemAllRequest(),
      { key: settings.key },
      { uuid: device.uuid, timeoutMs: settings.timeoutMs, qos: 0 },
    ).then((reply) => {
      const systemAll = reply.header.from === publishTopic ? safeSystemAll(reply) : undefined;
      if (systemAll && firstMessage !== undefined) finish({ report: report(systemAll) });
    }, ignore);
  };
  const report = (systemAll?: SystemAllSummary): OnlineReport => ({
    firstMessage: firstMessage as string,
    seconds: Math.round((Date.now() - (acknowledgedAt ?? Date.now())) / 100) / 10,
    ...(systemAll ? { systemAll } : {}),
  });
  const finish = (result: { report?: OnlineReport; error?: Error }) => {
    if (outcome) return;
    outcome = result;
    stop();
    if (result.report) settle?.resolve(result.report);
    else if (result.error) settle?.reject(result.error);
  };
  const stop = () => {
    clearTimeout(deadline);
    clearTimeout(summaryTimer);
    clearInterval(poll);
    transport.abandon(new Error("the online watch ended"));
    client.removeAllListeners("message");
    client.end(true);
    for (const wake of readyWaiters.splice(0)) wake();
  };

  client.on("connect", () => {
    observation.reachedBroker = true;
    delete observation.lastBrokerError;
    client.subscribe([publishTopic, replyTopic], (error) => {
      if (error) {
        observation.lastBrokerError = `cannot subscribe to ${publishTopic}: ${error.message}`;
        return;
      }
      subscribed = true;
      for (const wake of readyWaiters.splice(0)) wake();
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
    if (acknowledgedAt === undefined) {
      sawOldSession = true;
      return;
    }
    if (firstMessage !== undefined) return;
    const { method, namespace } = message.header;
    const opensSession = topic === publishTopic && namespace === Namespace.ControlBind;
    if (strict() && !opensSession) return;
    firstMessage = `${method} ${namespace}`;
    clearInterval(poll);
    // A summary answering a poll of ours settles that poll's request, which ends the watch with it.
    const answersPoll =
      topic === replyTopic &&
      namespace === Namespace.SystemAll &&
      method === "GETACK" &&
      safeSystemAll(message) !== undefined;
    if (!answersPoll) askForSystemAll();
    summaryTimer = setTimeout(() => finish({ report: report() }), SUMMARY_WAIT_MS);
  });

  return {
    ready(withinMs) {
      if (subscribed || outcome) return Promise.resolve(subscribed);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(subscribed), withinMs);
        readyWaiters.push(() => {
          clearTimeout(timer);
          resolve(subscribed);
        });
      });
    },
    acknowledged() {
      if (acknowledgedAt !== undefined) return;
      acknowledgedAt = Date.now();
      askForSystemAll();
      poll = setInterval(askForSystemAll, settings.pollIntervalMs ?? 3_000);
      deadline = setTimeout(() => {
        if (firstMessage) finish({ report: report() });
        else {
          const seconds = Math.round(settings.timeoutMs / 1000);
          finish({ error: new OnlineTimeoutError(seconds, observation, strict()) });
        }
      }, settings.timeoutMs);
    },
    result() {
      if (outcome?.report) return Promise.resolve(outcome.report);
      if (outcome?.error) return Promise.reject(outcome.error);
      return new Promise((resolve, reject) => {
        settle = { resolve, reject };
      });
    },
    stop: () => finish({ error: new Error("the online watch was stopped") }),
  };
}

function ignore(): void {}

function safeSystemAll(message: MerossMessage): SystemAllSummary | undefined {
  try {
    return parseSystemAll(message.payload);
  } catch {
    return undefined;
  }
}
