import { deviceErrorText, headerSchema } from "../meross/envelope.ts";
import { Namespace } from "../meross/messages/index.ts";
import { deviceTopicDirection, uuidFromDeviceTopic } from "../meross/topics.ts";

/**
 * Turns raw broker traffic into one readable line (or one JSON object) per message. Pure: the
 * monitor script feeds it what MQTT.js delivers, the unit tests feed it fixtures.
 */

export type Direction = "from-device" | "to-device" | "reply";

export interface TrafficRecord {
  time: string;
  topic: string;
  direction: Direction;
  uuid?: string;
  /** The device's name from the stack config, else its uuid, else "?" for a reply nobody can place. */
  device: string;
  method?: string;
  namespace?: string;
  messageId?: string;
  summary: string;
  /** The decoded payload (JSON mode prints it); undefined when the message was not a Meross envelope. */
  payload?: unknown;
}

const SUMMARY_LIMIT = 100;

function uuidOfReply(header: { from?: string | undefined; uuid?: string | undefined }): string | undefined {
  return (header.from === undefined ? undefined : uuidFromDeviceTopic(header.from)) ?? header.uuid;
}

function truncate(text: string, limit = SUMMARY_LIMIT): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

const ON_OFF: Record<string, string> = { "0": "off", "1": "on" };

function onOff(value: unknown): string {
  return ON_OFF[String(value)] ?? String(value);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function toggleSummary(togglex: unknown): string | undefined {
  const entries = Array.isArray(togglex) ? togglex : [togglex];
  const parts = entries.map(asRecord).flatMap((entry) => {
    if (entry === undefined) return [];
    const channel = entry.channel ?? 0;
    return entry.onoff === undefined
      ? [`ch${String(channel)}`]
      : [`ch${String(channel)} ${onOff(entry.onoff)}`];
  });
  return parts.length > 0 ? parts.join(", ") : undefined;
}

function fixed(value: unknown, divisor: number, unit: string): string {
  return typeof value === "number"
    ? `${(value / divisor).toFixed(divisor === 1 ? 0 : 2)} ${unit}`
    : `? ${unit}`;
}

function keyValues(record: Record<string, unknown>): string {
  return Object.entries(record)
    .map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : String(value)}`)
    .join(" ");
}

const HIDDEN = "(hidden)";

/** Where a payload carries a secret: the device key, and the Wi-Fi password (plain base64 in Config.Wifi). */
const SECRET_FIELDS: Readonly<Record<string, readonly [string, string]>> = {
  [Namespace.ConfigKey]: ["key", "key"],
  [Namespace.ConfigWifi]: ["wifi", "password"],
  [Namespace.ConfigWifiX]: ["wifi", "password"],
};

/** The payload as the monitor may show it: whoever else re-keys a device over MQTT, its secrets stay off the screen. */
function withoutSecrets(namespace: string, payload: Record<string, unknown>): Record<string, unknown> {
  const field = SECRET_FIELDS[namespace];
  const section = field ? asRecord(payload[field[0]]) : undefined;
  if (!field || !section || !(field[1] in section)) return payload;
  return { ...payload, [field[0]]: { ...section, [field[1]]: HIDDEN } };
}

/** What a human needs from a payload at a glance; falls back to compact JSON. */
export function summarizePayload(
  namespace: string,
  method: string,
  payload: Record<string, unknown>,
): string {
  const error = asRecord(payload.error);
  if (method === "ERROR" || error) {
    const text = error ? deviceErrorText(error) : "";
    return `error ${String(error?.code ?? "?")}${text ? ` ${text}` : ""}`;
  }
  if (Object.keys(payload).length === 0) return method.endsWith("ACK") ? "ok" : "{}";
  const summary = (() => {
    switch (namespace) {
      case Namespace.ControlToggleX:
        return toggleSummary(payload.togglex);
      case Namespace.ControlToggle:
        return toggleSummary({ channel: payload.channel, ...asRecord(payload.toggle) });
      case Namespace.SystemClock: {
        const clock = asRecord(payload.clock);
        return clock ? `timestamp ${String(clock.timestamp)}` : undefined;
      }
      case Namespace.ControlBind: {
        const bind = asRecord(payload.bind);
        const hardware = asRecord(bind?.hardware);
        const firmware = asRecord(bind?.firmware);
        return bind
          ? `bind ${String(hardware?.type ?? "?")} hw ${String(hardware?.version ?? "?")} fw ${String(firmware?.version ?? "?")}`
          : undefined;
      }
      case Namespace.ControlConsumptionConfig: {
        const config = asRecord(payload.config);
        return config ? keyValues(config) : undefined;
      }
      case Namespace.ControlElectricity: {
        const electricity = asRecord(payload.electricity);
        return electricity
          ? `${fixed(electricity.power, 1000, "W")} ${fixed(electricity.voltage, 10, "V")} ${fixed(electricity.current, 1000, "A")}`
          : undefined;
      }
      case Namespace.SystemTime: {
        const time = asRecord(payload.time);
        if (!time) return undefined;
        const rules = Array.isArray(time.timeRule) ? `, ${time.timeRule.length} DST rules` : "";
        return `timezone ${String(time.timezone || "(none)")}${rules}`;
      }
      case Namespace.SystemAll: {
        const system = asRecord(asRecord(payload.all)?.system);
        const hardware = asRecord(system?.hardware);
        const firmware = asRecord(system?.firmware);
        const digest = asRecord(asRecord(payload.all)?.digest);
        // Fw 1.x reports its one relay under `control.toggle` instead of `digest.togglex` (§3).
        const legacy = asRecord(asRecord(asRecord(payload.all)?.control)?.toggle);
        const state = toggleSummary(digest?.togglex ?? legacy);
        return system
          ? `${String(hardware?.type ?? "?")} fw ${String(firmware?.version ?? "?")}${state ? ` ${state}` : ""}`
          : undefined;
      }
      default:
        return undefined;
    }
  })();
  return truncate(summary ?? JSON.stringify(payload));
}

/** One message as the monitor shows it; never throws, whatever arrives. */
export function decodeTraffic(
  topic: string,
  payload: Buffer,
  context: { names?: ReadonlyMap<string, string>; now?: Date },
): TrafficRecord {
  /** The fields every record starts with, in the order --json prints them. */
  const about = (uuid: string | undefined) => ({
    time: (context.now ?? new Date()).toISOString(),
    topic,
    direction: deviceTopicDirection(topic) ?? ("reply" as const),
    ...(uuid === undefined ? {} : { uuid }),
    device: uuid === undefined ? "?" : (context.names?.get(uuid) ?? uuid),
  });
  let json: unknown;
  try {
    json = JSON.parse(payload.toString("utf8"));
  } catch {
    return { ...about(uuidFromDeviceTopic(topic)), summary: `not JSON (${payload.length} bytes)` };
  }
  const envelope = asRecord(json);
  const header = headerSchema.partial().safeParse(envelope?.header);
  const body = asRecord(envelope?.payload);
  const uuid = uuidFromDeviceTopic(topic) ?? (header.success ? uuidOfReply(header.data) : undefined);
  if (!header.success || !body || !header.data.namespace || !header.data.method) {
    return {
      ...about(uuid),
      summary: `not a Meross message: ${truncate(JSON.stringify(json), 60)}`,
      payload: json,
    };
  }
  const { method, namespace, messageId } = header.data;
  const shown = withoutSecrets(namespace, body);
  return {
    ...about(uuid),
    method,
    namespace,
    ...(messageId === undefined ? {} : { messageId }),
    summary: summarizePayload(namespace, method, shown),
    payload: shown,
  };
}

const ARROWS: Record<Direction, string> = { "from-device": "->", "to-device": "<-", reply: "->" };

/**
 * `12:00:00.123  kitchen  -> PUSH    Appliance.Control.ToggleX  ch0 on`: `->` is the device
 * speaking (on its publish topic or to a controller's reply topic), `<-` is a message to it.
 */
export function formatTrafficLine(
  record: TrafficRecord,
  options: { deviceWidth?: number; timeZone?: string } = {},
): string {
  const clock = new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    fractionalSecondDigits: 3,
    hourCycle: "h23",
    ...(options.timeZone === undefined ? {} : { timeZone: options.timeZone }),
  }).format(new Date(record.time));
  const device = record.device.padEnd(options.deviceWidth ?? 12);
  const method = (record.method ?? "?").padEnd(7);
  const namespace = record.namespace ?? "";
  return `${clock}  ${device}  ${ARROWS[record.direction]} ${method} ${namespace}${namespace ? "  " : ""}${record.summary}`;
}

/** `--json`: one object per line, for jq. */
export function formatTrafficJson(record: TrafficRecord): string {
  return JSON.stringify(record);
}

/** `--raw`: the topic and the bytes as they came, for bug reports. */
export function formatRawLine(topic: string, payload: Buffer, now: Date = new Date()): string {
  return `${now.toISOString()} ${topic} ${payload.toString("utf8")}`;
}
