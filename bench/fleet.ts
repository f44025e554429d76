/**
 * The device side of a storm, in its own process so that its CPU can be measured apart from the
 * broker's and from the probe's timing: N plugs, each the simulator's own broker connection
 * (lib/simulator MqttLink: MQTT 3.1 "MQIsdp" over TLS 1.2, firmware client ids, the firmware's
 * 1 s doubling backoff). Once online, each plug starts its session as firmware does on every
 * connection (protocol §5.5): PUSH Clock, repeated every 2 s until answered, and SET Bind; it counts
 * as answered when the Clock echo and the Bind SETACK are back. Like newer firmware (the simulator's
 * requireSessionAnswers, from meross_lan #346), a plug whose Clock or Bind is still unanswered after
 * 10 s hangs up and dials again: an agent that is late after a broker restart costs a second storm.
 * The parent (bench/fleet-client.ts) drives it over IPC.
 */
import { performance } from "node:perf_hooks";
import { buildMessage, buildReply, type MerossMessage, parseMessage } from "../lib/meross/envelope.ts";
import { bindPayload, clockPayload, Namespace } from "../lib/meross/messages/index.ts";
import { devicePublishTopic, deviceSubscribeTopic } from "../lib/meross/topics.ts";
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
  /** Devices whose Clock and Bind were both answered in this window. */
  answered: number;
  lastAnsweredAt?: number;
  failedAttempts: number;
  failureReasons: Record<string, number>;
  cpuSeconds: number;
}

export type FleetEvent =
  | { type: "ready" }
  | { type: "all-answered"; at: number }
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
  answeredAt?: number;
  clockTimer?: NodeJS.Timeout;
  private session = { clock: false, bind: false };
  private clockRetry?: NodeJS.Timeout;
  private hangUp?: NodeJS.Timeout;

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
        this.startSession();
      },
      onMessage: (_topic, payload) => this.takeAnswer(payload),
      onOffline: (_broker, reason) => {
        this.online = false;
        this.stopSessionTimers();
        if (reason !== DROP_REASON) fail(`dropped: ${reason}`);
      },
      onAttemptFailed(_broker, reason) {
        fail(reason);
      },
    });
  }

  publishOwn(
    method: "PUSH" | "SET",
    namespace: string,
    payload: Record<string, unknown>,
    from?: string,
  ): void {
    const topic = devicePublishTopic(this.device.uuid);
    const message = buildMessage({
      method,
      namespace,
      payload,
      key,
      from: from ?? topic,
      triggerSrc: "DevBoot",
    });
    this.link.publish(topic, message);
  }

  private startSession(): void {
    this.session = { clock: false, bind: false };
    this.stopSessionTimers();
    const pushClock = (attempt: number) => {
      if (this.session.clock || attempt > DEFAULT_TIMING.clockAttempts) return;
      this.publishOwn("PUSH", Namespace.SystemClock, clockPayload(Math.floor(Date.now() / 1000)));
      this.clockRetry = setTimeout(() => pushClock(attempt + 1), DEFAULT_TIMING.clockRetryMs);
    };
    pushClock(1);
    this.hangUp = setTimeout(() => {
      const missing = [this.session.clock ? "" : "Clock", this.session.bind ? "" : "Bind"].filter(Boolean);
      this.link.drop(`no answer to ${missing.join(" and ")} within ${DEFAULT_TIMING.sessionTimeoutMs} ms`);
    }, DEFAULT_TIMING.sessionTimeoutMs);
    // Newer firmware SETs Bind with `from` on its subscribe topic and expects the SETACK there.
    this.publishOwn(
      "SET",
      Namespace.ControlBind,
      bindPayload({ bindTime: Math.floor(Date.now() / 1000), hardware: { uuid: this.device.uuid } }),
      deviceSubscribeTopic(this.device.uuid),
    );
  }

  private takeAnswer(payload: Buffer): void {
    let message: MerossMessage;
    try {
      message = parseMessage(payload);
    } catch {
      return;
    }
    const { header } = message;
    if (header.method === "SET" && header.namespace === Namespace.SystemTime) {
      // Firmware acknowledges the zone the agent sends, on the request's `from`.
      const topic = devicePublishTopic(this.device.uuid);
      this.link.publish(header.from || topic, buildReply(message, { key, from: topic }));
      return;
    }
    if (header.method === "PUSH" && header.namespace === Namespace.SystemClock) this.session.clock = true;
    else if (header.method === "SETACK" && header.namespace === Namespace.ControlBind)
      this.session.bind = true;
    else return;
    if (this.session.clock && this.session.bind) {
      this.stopSessionTimers();
      if (this.answeredAt === undefined) {
        this.answeredAt = now();
        checkAllAnswered();
      }
    }
  }

  private stopSessionTimers(): void {
    clearTimeout(this.clockRetry);
    clearTimeout(this.hangUp);
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

function checkAllAnswered(): void {
  if (announced || fleet.some((plug) => plug.answeredAt === undefined)) return;
  announced = true;
  send({ type: "all-answered", at: Math.max(...fleet.map((plug) => plug.answeredAt ?? 0)) });
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
    plug.answeredAt = stillOnline ? startedAt : undefined;
  }
  for (const plug of fleet) {
    if (action === "dial") plug.link.start();
    if (action === "drop") {
      plug.online = false;
      plug.link.drop(DROP_REASON);
    }
  }
  checkAllAnswered();
}

function report(): FleetStormRecord {
  const cpu = process.cpuUsage(stormWindow.cpu);
  const online = fleet.filter((plug) => plug.onlineAt !== undefined);
  const answered = fleet.filter((plug) => plug.answeredAt !== undefined);
  const dials = fleet.flatMap((plug) => (plug.dialAt === undefined ? [] : [plug.dialAt]));
  return {
    devices: fleet.length,
    online: online.length,
    ...(dials.length > 0 ? { firstDialAt: Math.min(...dials) } : {}),
    ...(online.length > 0 ? { lastOnlineAt: Math.max(...online.map((plug) => plug.onlineAt ?? 0)) } : {}),
    connackMs: fleet.flatMap((plug) =>
      plug.connackAt === undefined ? [] : [plug.connackAt - (plug.dialAt ?? stormWindow.startedAt)],
    ),
    answered: answered.length,
    ...(answered.length > 0
      ? { lastAnsweredAt: Math.max(...answered.map((plug) => plug.answeredAt ?? 0)) }
      : {}),
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
    const push = () =>
      plug.publishOwn("PUSH", Namespace.SystemClock, clockPayload(Math.floor(Date.now() / 1000)));
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
