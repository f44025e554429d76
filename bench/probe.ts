import { performance } from "node:perf_hooks";
import mqtt, { type MqttClient } from "mqtt";
import { controllerReplyTopic, deviceSubscribeTopic } from "../lib/meross/topics.ts";
import { brokerClientOptions, uniqueClientId } from "../lib/mqtt/connection.ts";
import { reconnectWithBackoff } from "../lib/mqtt/reconnect.ts";
import { MqttLink } from "../lib/simulator/mqtt-link.ts";

/**
 * An already-connected controller and device that keep talking while a storm runs: the controller
 * publishes to the device's command topic every `intervalMs`, the device answers on the
 * controller's reply topic, and each round trip is timed. It shows whether the broker keeps serving
 * the clients it already has while it logs the storm in. Both come back by themselves after a
 * broker restart, quickly (100 ms), so that they are connected before the storm's devices redial.
 */

export interface Login {
  username: string;
  password: string;
}

export interface PairProbeOptions {
  brokerUrl: string;
  host: string;
  port: number;
  caPem: string;
  userId: string;
  uuid: string;
  /** Without it, the controller connects anonymously (the anonymous variant). */
  controller?: Login;
  /** Devices always send their MAC login, even to a broker that ignores it. */
  device: Login;
  intervalMs: number;
}

export interface PairProbe {
  /** Both ends connected. */
  ready(): Promise<void>;
  /** Round trips (ms) of the messages sent in [from, to], and how many of those never came back. */
  window(from: number, to: number): { roundTrips: number[]; lost: number };
  stop(): Promise<void>;
}

const now = () => performance.timeOrigin + performance.now();
const QUICK_RETRY = { initialMs: 100, maxMs: 200 };

export function startPairProbe(options: PairProbeOptions): PairProbe {
  const clientId = uniqueClientId("bench-probe");
  const replyTopic = controllerReplyTopic(options.userId, clientId);
  const commandTopic = deviceSubscribeTopic(options.uuid);
  const sent = new Map<number, { at: number; roundTrip?: number }>();
  let sequence = 0;
  let deviceOnline = false;
  let controllerSubscribed = false;

  const controller: MqttClient = mqtt.connect(
    brokerClientOptions(
      {
        brokerUrl: options.brokerUrl,
        ca: options.caPem,
        ...(options.controller ?? {}),
      },
      { clientId },
    ),
  );
  reconnectWithBackoff(controller, { backoff: QUICK_RETRY });
  controller.on("error", () => {});
  controller.on("connect", () => {
    controller.subscribe(replyTopic, { qos: 0 }, (error) => {
      controllerSubscribed = !error;
    });
  });
  controller.on("close", () => {
    controllerSubscribed = false;
  });
  controller.on("message", (_topic, payload) => {
    const entry = sent.get(Number(payload.toString()));
    if (entry && entry.roundTrip === undefined) entry.roundTrip = now() - entry.at;
  });

  const gateway = { host: options.host, port: options.port };
  const device = new MqttLink({
    uuid: options.uuid,
    gateways: [gateway, gateway],
    credentials: options.device,
    keepaliveSeconds: 120,
    connectTimeoutMs: 10_000,
    backoff: QUICK_RETRY,
    onOnline() {
      deviceOnline = true;
    },
    onOffline() {
      deviceOnline = false;
    },
    onAttemptFailed() {},
    onMessage(_topic, payload) {
      // The sequence number goes back as it came; JSON.stringify of a number is the number.
      device.publish(replyTopic, Number(payload.toString()));
    },
  });
  device.start();

  const timer = setInterval(() => {
    if (!deviceOnline || !controllerSubscribed) return;
    sequence++;
    sent.set(sequence, { at: now() });
    controller.publish(commandTopic, String(sequence), { qos: 0 });
  }, options.intervalMs);

  return {
    async ready() {
      const deadline = Date.now() + 30_000;
      while (!(deviceOnline && controllerSubscribed)) {
        if (Date.now() > deadline) throw new Error("the probe pair did not connect within 30 s");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    window(from, to) {
      const inWindow = [...sent.values()].filter((entry) => entry.at >= from && entry.at <= to);
      return {
        roundTrips: inWindow.flatMap((entry) => (entry.roundTrip === undefined ? [] : [entry.roundTrip])),
        lost: inWindow.filter((entry) => entry.roundTrip === undefined).length,
      };
    },
    async stop() {
      clearInterval(timer);
      await device.stop();
      await controller.endAsync(true);
    },
  };
}
