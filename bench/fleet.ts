/**
 * The device side of a storm, in its own process so that its CPU can be measured apart from the
 * broker's and from the probe's timing: N plugs, each the simulator's own broker connection
 * (lib/simulator MqttLink: MQTT 3.1 "MQIsdp" over TLS 1.2, firmware client ids, the firmware's
 * 1 s doubling backoff). The parent (bench/fleet-client.ts) drives it over IPC.
 */
import { performance } from "node:perf_hooks";
import { buildMessage } from "../lib/meross/envelope.ts";
import { Namespace } from "../lib/meross/messages/index.ts";
import { devicePublishTopic } from "../lib/meross/topics.ts";
import { DEFAULT_TIMING } from "../lib/simulator/index.ts";
import { MqttLink } from "../lib/simulator/mqtt-link.ts";

export interface FleetDevice {
  uuid: string;
  username: string;
  password: string;
}

export type FleetCommand =
  | { type: "init"; host: string; port: number; key: string; devices: FleetDevice[] }
  /** Starts a storm window; `dial` starts every link, `drop` hangs every link up (they redial after 1 s), `watch` only watches (a broker restart). */
  | { type: "storm"; action: "dial" | "drop" | "watch" }
  | { type: "report" }
  /** Every device pushes a signed Clock every `periodMs` (staggered), or stops with periodMs 0. */
  | { type: "clock"; periodMs: number }
  | { type: "stop" };

export interface FleetStormRecord {
  devices: number;
  online: number;
  firstDialAt?: number;
  lastOnlineAt?: number;
  /** Per device online in this window: its first dial to its CONNACK, in ms. */
  connackMs: number[];
  failedAttempts: number;
  failureReasons: Record<string, number>;
  cpuSeconds: number;
}

export type FleetEvent =
  | { type: "ready" }
  | { type: "all-online"; at: number }
  | { type: "report"; record: FleetStormRecord }
  | { type: "error"; message: string };

const DROP_REASON = "benchmark hang-up";

const now = () => performance.timeOrigin + performance.now();

/** One plug of the fleet: its broker connection and when things happened in the current window. */
class Plug {
  readonly link: MqttLink;
  online = false;
  dialAt?: number;
  connackAt?: number;
  onlineAt?: number;
  clockTimer?: NodeJS.Timeout;

  constructor(
    readonly device: FleetDevice,
    gateway: { host: string; port: number },
  ) {
    this.link = new MqttLink({
      uuid: device.uuid,
      gateways: [gateway, gateway],
      credentials: { username: device.username, password: device.password },
      keepaliveSeconds: DEFAULT_TIMING.keepaliveSeconds,
      connectTimeoutMs: DEFAULT_TIMING.connectTimeoutMs,
      backoff: DEFAULT_TIMING.reconnect,
      onDialing: () => {
        this.dialAt ??= now();
      },
      onConnected: () => {
        this.connackAt ??= now();
      },
      onOnline: () => {
        this.online = true;
        this.onlineAt ??= now();
        checkAllOnline();
      },
      onMessage() {},
      onOffline: (_broker, reason) => {
        this.online = false;
        if (reason !== DROP_REASON) fail(`dropped: ${reason}`);
      },
      onAttemptFailed(_broker, reason) {
        fail(reason);
      },
    });
  }
}

let fleet: Plug[] = [];
let key = "";
let stormWindow = {
  startedAt: 0,
  cpu: process.cpuUsage(),
  failedAttempts: 0,
  reasons: new Map<string, number>(),
};
let announced = false;

function send(event: FleetEvent): void {
  process.send?.(event);
}

function checkAllOnline(): void {
  if (announced || fleet.some((plug) => plug.onlineAt === undefined)) return;
  announced = true;
  send({ type: "all-online", at: Math.max(...fleet.map((plug) => plug.onlineAt ?? 0)) });
}

function fail(reason: string): void {
  stormWindow.failedAttempts++;
  // Keep the reason short and free of per-device detail, so equal causes add up.
  const cause = reason.replace(/\d+(\.\d+)*(:\d+)?/g, "#").slice(0, 80);
  stormWindow.reasons.set(cause, (stormWindow.reasons.get(cause) ?? 0) + 1);
}

function init(command: Extract<FleetCommand, { type: "init" }>): void {
  key = command.key;
  const gateway = { host: command.host, port: command.port };
  fleet = command.devices.map((device) => new Plug(device, gateway));
  send({ type: "ready" });
}

function startWindow(action: "dial" | "drop" | "watch"): void {
  const startedAt = now();
  stormWindow = { startedAt, cpu: process.cpuUsage(), failedAttempts: 0, reasons: new Map() };
  announced = false;
  for (const plug of fleet) {
    const stillOnline = action === "watch" && plug.online;
    plug.dialAt = stillOnline ? startedAt : undefined;
    plug.connackAt = stillOnline ? startedAt : undefined;
    plug.onlineAt = stillOnline ? startedAt : undefined;
  }
  for (const plug of fleet) {
    if (action === "dial") plug.link.start();
    if (action === "drop") {
      plug.online = false;
      plug.link.drop(DROP_REASON);
    }
  }
  checkAllOnline();
}

function report(): FleetStormRecord {
  const cpu = process.cpuUsage(stormWindow.cpu);
  const online = fleet.filter((plug) => plug.onlineAt !== undefined);
  const dials = fleet.flatMap((plug) => (plug.dialAt === undefined ? [] : [plug.dialAt]));
  return {
    devices: fleet.length,
    online: online.length,
    ...(dials.length > 0 ? { firstDialAt: Math.min(...dials) } : {}),
    ...(online.length > 0 ? { lastOnlineAt: Math.max(...online.map((plug) => plug.onlineAt ?? 0)) } : {}),
    connackMs: fleet.flatMap((plug) =>
      plug.connackAt === undefined ? [] : [plug.connackAt - (plug.dialAt ?? stormWindow.startedAt)],
    ),
    failedAttempts: stormWindow.failedAttempts,
    failureReasons: Object.fromEntries(stormWindow.reasons),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

function pushClocks(periodMs: number): void {
  for (const plug of fleet) {
    clearInterval(plug.clockTimer);
    clearTimeout(plug.clockTimer);
    if (periodMs <= 0) continue;
    const push = () => {
      const topic = devicePublishTopic(plug.device.uuid);
      const message = buildMessage({
        method: "PUSH",
        namespace: Namespace.SystemClock,
        payload: { clock: { timestamp: Math.floor(Date.now() / 1000) } },
        key,
        from: topic,
      });
      plug.link.publish(topic, message);
    };
    // Staggered, so the load is steady rather than one burst per period.
    plug.clockTimer = setTimeout(() => {
      push();
      plug.clockTimer = setInterval(push, periodMs);
    }, Math.random() * periodMs);
  }
}

process.on("message", (command: FleetCommand) => {
  try {
    switch (command.type) {
      case "init":
        return init(command);
      case "storm":
        return startWindow(command.action);
      case "report":
        return send({ type: "report", record: report() });
      case "clock":
        return pushClocks(command.periodMs);
      case "stop":
        pushClocks(0);
        Promise.all(fleet.map((plug) => plug.link.stop())).finally(() => process.exit(0));
        return;
    }
  } catch (error) {
    send({ type: "error", message: (error as Error).stack ?? String(error) });
  }
});
process.on("disconnect", () => process.exit(0));
