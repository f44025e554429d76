import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { BrokerAddress } from "../meross/broker-url.ts";
import type { Header } from "../meross/envelope.ts";
import { macAddressSchema, uuidSchema } from "../meross/identifiers.ts";
import { networkLabel } from "../meross/messages/index.ts";
import { DeviceClock } from "./clock.ts";
import { type DeviceState, Firmware } from "./firmware.ts";
import { startConfigServer } from "./http-server.ts";
import { answerLanRequest, type HttpExchange } from "./lan.ts";
import { MODELS, type SimulatedModel } from "./models.ts";
import { DEFAULT_ACCESS_POINTS, joinFailure, type SimulatedAccessPoint } from "./networks.ts";
import { BrokerSession, type SessionTiming } from "./session.ts";

export type { HttpExchange } from "./lan.ts";
export { MODELS, type SimulatedModel } from "./models.ts";
export { SIMULATED_HOME_NETWORK, type SimulatedAccessPoint } from "./networks.ts";

export interface SimulatorTiming extends SessionTiming {
  /** Between the Wi-Fi SETACK and the first broker dial. */
  rebootMs: number;
}

export const DEFAULT_TIMING: SimulatorTiming = {
  rebootMs: 1000,
  keepaliveSeconds: 120,
  connectTimeoutMs: 10_000,
  reconnect: { initialMs: 1000, maxMs: 30_000 },
  clockRetryMs: 2000,
  clockAttempts: 10,
  sessionTimeoutMs: 10_000,
};

export interface SimulatedDeviceOptions {
  model: SimulatedModel;
  /** Where the HTTP API listens; default 127.0.0.1 (a real device in pairing mode is 10.10.10.1). */
  httpHost?: string;
  /** Default 0: a free port. */
  httpPort?: number;
  /** Hang up when Clock/Bind go unanswered, as newer firmware does (protocol §5.5). */
  requireSessionAnswers?: boolean;
  /** PEM the device trusts, checked with the host name. Default: it verifies nothing, like real devices. */
  mqttCa?: string;
  /** Default: random, ending in the MAC's digits as on real devices. */
  uuid?: string;
  /** Default: random, in Meross's 48:e1:e9 range; derived from `uuid` when only that is given. */
  macAddress?: string;
  /** What WifiList shows and which passphrases joins need; default: SIMULATED_HOME_NETWORK and two others. */
  accessPoints?: SimulatedAccessPoint[];
  timing?: Partial<SimulatorTiming>;
}

/** A snapshot of the firmware state: whether the clock is set and a LAN key was exchanged, not the key or DST rules. */
export interface SimulatedDeviceState extends Omit<DeviceState, "timeRule" | "lanSessionKey"> {
  clockSet: boolean;
  lanKeyExchanged: boolean;
}

export interface SimulatorEvents {
  "http-request": [HttpExchange];
  "wifi-configured": [{ ssid?: string; bssid?: string; channel?: number; namespace: string }];
  "wifi-failed": [{ network: string; reason: string }];
  "mqtt-connected": [{ broker: BrokerAddress; clientId: string; username: string }];
  "mqtt-disconnected": [{ broker: BrokerAddress; reason: string }];
  /** A dial that did not get as far as a session (refused, TLS, credentials), or no broker to dial. */
  "mqtt-error": [{ broker?: BrokerAddress; reason: string }];
  /** A signed answer to one of its session messages, as it arrived (a device may get more than one). */
  "session-answered": [{ namespace: string; header: Header; payload: Record<string, unknown> }];
  /** A request answered with ERROR 5000, and the simulator's reason (the device itself sends none). */
  "request-refused": [{ method: string; namespace: string; reason: string }];
  /** A GET/SET that arrived over MQTT, and where the reply went. */
  command: [
    {
      method: string;
      namespace: string;
      payload: Record<string, unknown>;
      replyMethod: string;
      replyTopic: string;
    },
  ];
}

export interface SimulatedDevice {
  /** The endpoint, `http://<ip>:<port>/config`. */
  httpUrl: string;
  ip: string;
  port: number;
  uuid: string;
  macAddress: string;
  type: string;
  /** A snapshot taken at each read. */
  readonly state: SimulatedDeviceState;
  events: EventEmitter<SimulatorEvents>;
  /** Power-cycle: drop the broker connection and ECDHE key, then rejoin Wi-Fi and dial again. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const MEROSS_OUI = "48e1e9";

/** ML `get_macaddress_from_uuid`: real uuids end in the MAC's digits. */
function uuidEndingIn(macAddress: string): string {
  return randomBytes(10).toString("hex") + macAddress.replaceAll(":", "");
}

function identityFrom(options: SimulatedDeviceOptions): { uuid: string; macAddress: string } {
  if (options.macAddress !== undefined) {
    const macAddress = macAddressSchema.parse(options.macAddress);
    return { uuid: uuidSchema.parse(options.uuid ?? uuidEndingIn(macAddress)), macAddress };
  }
  if (options.uuid !== undefined) {
    const uuid = uuidSchema.parse(options.uuid);
    return { uuid, macAddress: macAddressSchema.parse(uuid.slice(-12)) };
  }
  const macAddress = macAddressSchema.parse(MEROSS_OUI + randomBytes(3).toString("hex"));
  return { uuid: uuidEndingIn(macAddress), macAddress };
}

/**
 * A Meross plug in pairing mode, on HTTP at `httpHost:httpPort`. After its Wi-Fi is set it reboots
 * and dials the brokers from Config.Key over TLS, as the real firmware does.
 */
export async function startSimulatedDevice(options: SimulatedDeviceOptions): Promise<SimulatedDevice> {
  const profile = MODELS[options.model];
  if (!profile) {
    throw new RangeError(
      `model ${JSON.stringify(options.model)} is not one of: ${Object.keys(MODELS).join(", ")}`,
    );
  }
  const timing: SimulatorTiming = { ...DEFAULT_TIMING, ...options.timing };
  const { uuid, macAddress } = identityFrom(options);
  const httpHost = options.httpHost ?? "127.0.0.1";
  const accessPoints = options.accessPoints ?? DEFAULT_ACCESS_POINTS;
  const events = new EventEmitter<SimulatorEvents>();
  const clock = new DeviceClock();
  let rebootTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  const firmware: Firmware = new Firmware(
    { profile, uuid, macAddress, innerIp: httpHost, accessPoints },
    clock,
    {
      onWifiConfigured(wifi) {
        const { ssid, bssid, channel, namespace } = wifi;
        // After the request's own http-request event, so logs read in the device's order.
        setImmediate(() =>
          events.emit("wifi-configured", {
            ...(ssid === undefined ? {} : { ssid }),
            namespace,
            ...(bssid ? { bssid } : {}),
            ...(channel ? { channel } : {}),
          }),
        );
        firmware.state.mode = "rebooting";
        clearTimeout(rebootTimer);
        rebootTimer = setTimeout(() => void reboot(), timing.rebootMs);
      },
      onRefused(request, reason) {
        const { method, namespace } = request.header;
        events.emit("request-refused", { method, namespace, reason });
      },
      onToggled(changed) {
        session.pushToggles(changed);
      },
    },
  );
  const { state } = firmware;

  const session = new BrokerSession(firmware, {
    ...(options.mqttCa === undefined ? {} : { ca: options.mqttCa }),
    requireSessionAnswers: options.requireSessionAnswers ?? false,
    timing,
    report: {
      online(broker, clientId) {
        state.mode = "online";
        state.broker = broker;
        events.emit("mqtt-connected", { broker, clientId, username: macAddress });
      },
      offline(broker, reason) {
        state.mode = "connecting";
        state.broker = undefined;
        events.emit("mqtt-disconnected", { broker, reason });
      },
      attemptFailed(broker, reason) {
        events.emit("mqtt-error", { broker, reason });
      },
      answered({ header, payload }) {
        events.emit("session-answered", { namespace: header.namespace, header, payload });
      },
      command(request, reply, replyTopic) {
        const { method, namespace } = request.header;
        events.emit("command", {
          method,
          namespace,
          payload: request.payload,
          replyMethod: reply.header.method,
          replyTopic,
        });
      },
    },
  });

  async function reboot(): Promise<void> {
    const { broker } = state;
    await session.stop();
    if (stopped) return;
    if (broker) events.emit("mqtt-disconnected", { broker, reason: "the device is rebooting" });
    clock.reboot();
    state.lanSessionKey = undefined;
    state.broker = undefined;
    const { wifi } = state;
    if (!wifi || state.wifiFailure) {
      state.mode = "pairing";
      return;
    }
    const failure = joinFailure(wifi, accessPoints);
    if (failure) {
      // AR `provisioning.md`: a failed join sends the device back to the start of pairing.
      state.wifiFailure = failure;
      state.mode = "pairing";
      state.key = undefined;
      state.gateways = undefined;
      events.emit("wifi-failed", { network: networkLabel(wifi), reason: failure });
      return;
    }
    state.mode = "connecting";
    if (!state.gateways) {
      events.emit("mqtt-error", {
        reason: "no broker to dial: Config.Key was never sent (a real device would dial the Meross cloud)",
      });
      return;
    }
    session.start(state.gateways);
  }

  const server = await startConfigServer({
    host: httpHost,
    port: options.httpPort ?? 0,
    lineEnding: profile.headerLineEnding,
    now: () => clock.date(),
    handle: async (body) =>
      answerLanRequest(firmware, body, (exchange) => events.emit("http-request", exchange)),
    onError: (error) =>
      events.emit("http-request", {
        encrypted: false,
        refused: `simulator failure: ${(error as Error).message}`,
      }),
  });

  return {
    httpUrl: `http://${httpHost}:${server.port}/config`,
    ip: httpHost,
    port: server.port,
    uuid,
    macAddress,
    type: profile.type,
    get state(): SimulatedDeviceState {
      return {
        mode: state.mode,
        key: state.key,
        userId: state.userId,
        gateways: state.gateways ? [{ ...state.gateways[0] }, { ...state.gateways[1] }] : undefined,
        wifi: state.wifi ? { ...state.wifi } : undefined,
        wifiFailure: state.wifiFailure,
        timezone: state.timezone,
        clockSet: clock.isSet,
        toggles: state.toggles.map((toggle) => ({ ...toggle })),
        lanKeyExchanged: state.lanSessionKey !== undefined,
        broker: state.broker ? { ...state.broker } : undefined,
        session: { ...state.session },
      };
    },
    events,
    restart: () => {
      clearTimeout(rebootTimer);
      return reboot();
    },
    async stop() {
      stopped = true;
      clearTimeout(rebootTimer);
      await Promise.all([session.stop(), server.close()]);
    },
  };
}
