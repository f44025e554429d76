import type { MqttClient } from "mqtt";

/** How long to wait before dialling again: doubling from `initialMs` up to `maxMs`. */
export interface Backoff {
  initialMs: number;
  maxMs: number;
}

/** For clients that run until stopped (agent, monitor): a broker that stays down is tried twice a minute. */
export const DEFAULT_BACKOFF: Backoff = { initialMs: 1_000, maxMs: 30_000 };

/**
 * Exponential backoff with jitter: a broker restart should not see every agent and tool knock at
 * the same instant, and a broker that stays down should not be hammered every second.
 */
export function reconnectDelayMs(attempt: number, backoff: Backoff, random = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export type ReconnectEvent =
  /** The connection was up and is gone. */
  | { event: "lost" }
  /** The connection is down (lost, or an attempt failed); MQTT.js dials again in `inMs`. */
  | { event: "retrying"; attempt: number; inMs: number }
  /** Connected again after a loss; subscriptions are the client's to make again. */
  | { event: "reconnected" };

export interface ReconnectOptions {
  backoff?: Backoff;
  onEvent?(event: ReconnectEvent): void;
}

/**
 * The kit's one reconnect policy, on MQTT.js's own reconnect machinery: MQTT.js dials again after
 * `options.reconnectPeriod` whenever the connection closes, reading the period afresh each time, so
 * the policy only sets the next period (jittered, doubling with each failed attempt, back to the
 * first step once connected). A refused login is retried too: a broker whose auth backend is
 * still starting refuses logins for a while. Call it once per client; `end()` stops it.
 */
export function reconnectWithBackoff(client: MqttClient, options: ReconnectOptions = {}): void {
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const onEvent = options.onEvent ?? (() => {});
  let failedAttempts = 0;
  let wasConnected = client.connected;
  const planNextDelay = () => {
    client.options.reconnectPeriod = reconnectDelayMs(failedAttempts + 1, backoff);
  };
  client.options.reconnectOnConnackError = true;
  planNextDelay();
  client.on("connect", () => {
    failedAttempts = 0;
    planNextDelay();
    if (wasConnected) onEvent({ event: "reconnected" });
    wasConnected = true;
  });
  client.on("reconnect", () => {
    failedAttempts += 1;
    planNextDelay();
  });
  // Runs after MQTT.js's own "close" listener, which has just armed the timer with this period.
  client.on("close", () => {
    if (client.disconnecting) return;
    if (wasConnected && failedAttempts === 0) onEvent({ event: "lost" });
    onEvent({ event: "retrying", attempt: failedAttempts + 1, inMs: client.options.reconnectPeriod ?? 0 });
  });
}

/**
 * Hangs up as a lost network would, so the reconnect policy dials again after its delay (e.g. once
 * a refused subscription may have been allowed). `end()` would stop reconnecting altogether.
 */
export function dropConnection(client: MqttClient): void {
  client.stream.destroy();
}
