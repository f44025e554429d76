/**
 * The agent's structured log: one JSON object per line, one line per device or connection event,
 * so `docker logs` can be read by eye and by `jq`. Never carries keys or passwords.
 */

export type AgentEventName =
  | "connecting"
  | "connected"
  | "subscribed"
  | "subscribe-refused"
  | "disconnected"
  | "reconnecting"
  | "connection-error"
  | "device-seen"
  | "meross-lan-seen"
  | "clock-answered"
  | "bind-acknowledged"
  | "consumption-config-echoed"
  | "time-zone-sent"
  | "time-zone-set"
  | "time-zone-refused"
  | "message-ignored"
  | "publish-failed"
  | "handler-failed"
  | "settings-invalid"
  | "crashed"
  | "stopped";

export type LogLevel = "info" | "warn" | "error";

export interface AgentLogEntry {
  level: LogLevel;
  event: AgentEventName;
  uuid?: string;
  [detail: string]: unknown;
}

export type AgentLogger = (entry: AgentLogEntry) => void;

export function formatLogLine(entry: AgentLogEntry, now: Date = new Date()): string {
  return JSON.stringify({ time: now.toISOString(), ...entry });
}

/** A compact error text for the log: MQTT.js and Node errors carry their cause in `message` and `code`. */
export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return code === undefined ? error.message : `${error.message} (${String(code)})`;
  }
  return String(error);
}
