import { once } from "node:events";
import type { BrokerAddress } from "../../lib/meross/broker-url.ts";
import { DeviceClient } from "../../lib/meross/device-client.ts";
import { Namespace } from "../../lib/meross/messages.ts";
import {
  SIMULATED_HOME_NETWORK,
  type SimulatedDevice,
  type SimulatedModel,
  type SimulatorTiming,
  startSimulatedDevice,
} from "../../lib/simulator/index.ts";

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
  for (const event of ["mqtt-connected", "mqtt-disconnected", "mqtt-error", "session-answered"] as const) {
    device.events.on(event, (detail: unknown) => events.push({ at: Date.now(), event, detail }));
  }
  try {
    const pairingKey = "meross";
    const client = new DeviceClient({ ip: device.ip, port: device.port, key: pairingKey });
    const info = await client.getSystemAll();
    const identity = { type: info.type, uuid: info.uuid, macAddress: info.macAddress };
    const abilities = await client.getAbilities();
    if (Namespace.EncryptEcdhe in abilities) await client.exchangeKeys({ ...identity, key: pairingKey });
    await client.setKey({
      userId: options.userId,
      key: options.key,
      brokers: [options.broker, options.broker],
    });
    const connected = once(device.events, "mqtt-connected");
    const { ssid, password, bssid, channel, encryption, cipher } = SIMULATED_HOME_NETWORK;
    const wifix = Namespace.ConfigWifiX in abilities ? { wifix: identity } : {};
    await client.setWifi({ ssid, password, bssid, channel, encryption, cipher }, wifix);
    await connected;
  } catch (error) {
    await device.stop();
    throw error;
  }
  return { device, events, disconnects: () => events.filter((entry) => entry.event === "mqtt-disconnected") };
}
