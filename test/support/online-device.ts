import { once } from "node:events";
import { onTestFinished } from "vitest";
import type { BrokerAddress } from "../../lib/meross/broker-url.ts";
import { DeviceClient } from "../../lib/meross/device-client.ts";
import { Namespace, type WifiNetwork } from "../../lib/meross/messages/index.ts";
import {
  type HttpExchange,
  SIMULATED_HOME_NETWORK,
  type SimulatedDevice,
  type SimulatedModel,
  type SimulatorTiming,
  startSimulatedDevice,
} from "../../lib/simulator/index.ts";

/** What clients sign with before Config.Key, as the Meross app does; a device in pairing mode takes any key. */
export const PAIRING_KEY = "meross";

export interface SimulatorEventRecord {
  at: number;
  event: string;
  detail: unknown;
}

export interface OnlineDevice {
  device: SimulatedDevice;
  /** Every broker event since start, in order. */
  events: SimulatorEventRecord[];
  disconnects(): SimulatorEventRecord[];
}

/** Short enough that "several keepalive periods" fit in a test, long enough for a loaded 2-core CI box. */
export const FAST_SESSION_TIMING: Partial<SimulatorTiming> = {
  rebootMs: 50,
  keepaliveSeconds: 2,
  clockRetryMs: 500,
  sessionTimeoutMs: 3_000,
  reconnect: { initialMs: 500, maxMs: 2_000 },
};

/**
 * A simulated plug in pairing mode that trusts only `mqttCa` (so "online" also proves the broker's
 * certificate names its host), with every HTTP request it answers recorded. Stopped when the test
 * that started it finishes.
 */
export async function startPairingDevice(
  model: SimulatedModel,
  mqttCa: string,
): Promise<{ device: SimulatedDevice; requests: HttpExchange[] }> {
  const device = await startSimulatedDevice({ model, mqttCa });
  onTestFinished(() => device.stop());
  const requests: HttpExchange[] = [];
  device.events.on("http-request", (exchange) => requests.push(exchange));
  return { device, requests };
}

/**
 * The setup provision.mjs performs (protocol §6) through the kit's own DeviceClient: the key
 * exchange when the device lists Encrypt.ECDHE, Config.Key, then Wi-Fi (WifiX when it lists it).
 */
export async function setUpOverHttp(
  device: SimulatedDevice,
  settings: {
    userId: string;
    key: string;
    brokers: [BrokerAddress, BrokerAddress];
    network: WifiNetwork;
    attempts?: number;
  },
): Promise<DeviceClient> {
  const client = new DeviceClient({
    ip: device.ip,
    port: device.port,
    key: PAIRING_KEY,
    ...(settings.attempts === undefined ? {} : { attempts: settings.attempts }),
  });
  const info = await client.getSystemAll();
  const identity = { type: info.type, uuid: info.uuid, macAddress: info.macAddress };
  const abilities = await client.getAbilities();
  if (Namespace.EncryptEcdhe in abilities) await client.exchangeKeys({ ...identity, key: PAIRING_KEY });
  await client.setKey({ userId: settings.userId, key: settings.key, brokers: settings.brokers });
  await client.setWifi(settings.network, Namespace.ConfigWifiX in abilities ? { wifix: identity } : {});
  return client;
}

/**
 * A simulated plug taken from pairing mode onto `broker` the way provisioning does it (Config.Key,
 * then Wi-Fi over HTTP), resolved once it is connected and subscribed.
 */
export async function startOnlineDevice(options: {
  broker: BrokerAddress;
  key: string;
  userId: string;
  ca?: string;
  model?: SimulatedModel;
  /** Fixes the identity (the MAC follows from it), for a test that must register the device first. */
  uuid?: string;
  requireSessionAnswers?: boolean;
  timing?: Partial<SimulatorTiming>;
}): Promise<OnlineDevice> {
  const device = await startSimulatedDevice({
    model: options.model ?? "legacy",
    requireSessionAnswers: options.requireSessionAnswers ?? false,
    ...(options.uuid === undefined ? {} : { uuid: options.uuid }),
    ...(options.ca === undefined ? {} : { mqttCa: options.ca }),
    timing: options.timing ?? FAST_SESSION_TIMING,
  });
  const events: SimulatorEventRecord[] = [];
  for (const event of [
    "mqtt-connected",
    "mqtt-disconnected",
    "mqtt-error",
    "session-answered",
    "command",
  ] as const) {
    device.events.on(event, (detail: unknown) => events.push({ at: Date.now(), event, detail }));
  }
  try {
    const connected = once(device.events, "mqtt-connected");
    const { ssid, password, bssid, channel, encryption, cipher } = SIMULATED_HOME_NETWORK;
    await setUpOverHttp(device, {
      userId: options.userId,
      key: options.key,
      brokers: [options.broker, options.broker],
      network: { ssid, password, bssid, channel, encryption, cipher },
    });
    await connected;
  } catch (error) {
    await device.stop();
    throw error;
  }
  return { device, events, disconnects: () => events.filter((entry) => entry.event === "mqtt-disconnected") };
}
