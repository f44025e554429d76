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

interface Tracked {
  link: MqttLink;
  device: FleetDevice;
  online: boolean;
  dialAt?: number;
  connackAt?: number;
  onlineAt?: number;
  clockTimer?: NodeJS.Timeout;
}

let fleet: Tracked[] = [];
let key = "";
let window = { startedAt: 0, cpu: process.cpuUsage(), failedAttempts: 0, reasons: new Map<string, number>() };
let announced = false;

function send(event: FleetEvent): void {
  process.send?.(event);
}

function checkAllOnline(): void {
  if (announced || fleet.some((tracked) => tracked.onlineAt === undefined)) return;
  announced = true;
  send({ type: "all-online", at: Math.max(...fleet.map((tracked) => tracked.onlineAt ?? 0)) });
}

function fail(reason: string): void {
  window.failedAttempts++;
  // Keep the reason short and free of per-device detail, so equal causes add up.
  const cause = reason.replace(/\d+(\.\d+)*(:\d+)?/g, "#").slice(0, 80);
  window.reasons.set(cause, (window.reasons.get(cause) ?? 0) + 1);
}

function init(command: Extract<FleetCommand, { type: "init" }>): void {
  key = command.key;
  const gateway = { host: command.host, port: command.port };
  fleet = command.devices.map((device) => {
    const tracked: Tracked = { device, online: false } as Tracked;
    tracked.link = new MqttLink({
      uuid: device.uuid,
      gateways: [gateway, gateway],
      credentials: { username: device.username, password: device.password },
      keepaliveSeconds: DEFAULT_TIMING.keepaliveSeconds,
      connectTimeoutMs: DEFAULT_TIMING.connectTimeoutMs,
      backoff: DEFAULT_TIMING.reconnect,
      onDialing() {
        tracked.dialAt ??= now();
      },
      onConnected() {
        tracked.connackAt ??= now();
      },
      onOnline() {
        tracked.online = true;
        tracked.onlineAt ??= now();
        checkAllOnline();
      },
      onMessage() {},
      onOffline(_broker, reason) {
        tracked.online = false;
        if (reason !== DROP_REASON) fail(`dropped: ${reason}`);
      },
      onAttemptFailed(_broker, reason) {
        fail(reason);
      },
    });
    return tracked;
  });
  send({ type: "ready" });
}

function startWindow(action: "dial" | "drop" | "watch"): void {
  const startedAt = now();
  window = { startedAt, cpu: process.cpuUsage(), failedAttempts: 0, reasons: new Map() };
  announced = false;
  for (const tracked of fleet) {
    const stillOnline = action === "watch" && tracked.online;
    tracked.dialAt = stillOnline ? startedAt : undefined;
    tracked.connackAt = stillOnline ? startedAt : undefined;
    tracked.onlineAt = stillOnline ? startedAt : undefined;
  }
  for (const tracked of fleet) {
    if (action === "dial") tracked.link.start();
    if (action === "drop") {
      tracked.online = false;
      tracked.link.drop(DROP_REASON);
    }
  }
  checkAllOnline();
}

function report(): FleetStormRecord {
  const cpu = process.cpuUsage(window.cpu);
  const online = fleet.filter((tracked) => tracked.onlineAt !== undefined);
  const dials = fleet.flatMap((tracked) => (tracked.dialAt === undefined ? [] : [tracked.dialAt]));
  return {
    devices: fleet.length,
    online: online.length,
    ...(dials.length > 0 ? { firstDialAt: Math.min(...dials) } : {}),
    ...(online.length > 0
      ? { lastOnlineAt: Math.max(...online.map((tracked) => tracked.onlineAt ?? 0)) }
      : {}),
    connackMs: fleet.flatMap((tracked) =>
      tracked.connackAt === undefined ? [] : [tracked.connackAt - (tracked.dialAt ?? window.startedAt)],
    ),
    failedAttempts: window.failedAttempts,
    failureReasons: Object.fromEntries(window.reasons),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

function pushClocks(periodMs: number): void {
  for (const tracked of fleet) {
    clearInterval(tracked.clockTimer);
    clearTimeout(tracked.clockTimer);
    if (periodMs <= 0) continue;
    const push = () => {
      const topic = devicePublishTopic(tracked.device.uuid);
      const message = buildMessage({
        method: "PUSH",
        namespace: Namespace.SystemClock,
        payload: { clock: { timestamp: Math.floor(Date.now() / 1000) } },
        key,
        from: topic,
      });
      tracked.link.publish(topic, message);
    };
    // Staggered, so the load is steady rather than one burst per period.
    tracked.clockTimer = setTimeout(() => {
      push();
      tracked.clockTimer = setInterval(push, periodMs);
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
        Promise.all(fleet.map((tracked) => tracked.link.stop())).finally(() => process.exit(0));
        return;
    }
  } catch (error) {
    send({ type: "error", message: (error as Error).stack ?? String(error) });
  }
});
process.on("disconnect", () => process.exit(0));
