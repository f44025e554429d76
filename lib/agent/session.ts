import {
  buildMessage,
  buildReply,
  type Header,
  type MerossMessage,
  parseMessage,
  unixSeconds,
} from "../meross/envelope.ts";
import { clockPayload, Namespace, systemTimeRequest } from "../meross/messages/index.ts";
import { isSignatureValid } from "../meross/sign.ts";
import { devicePublishTopic, deviceSubscribeTopic, uuidFromDeviceTopic } from "../meross/topics.ts";

/**
 * What the Meross cloud answers to a device's session messages (protocol §5.5), as pure functions:
 * a device message in, the reply to publish out. Without these answers newer firmware drops its
 * MQTT connection every few seconds.
 */

/** The cloud's own value; devices do not check it, but it is what captured traffic shows. */
export const SESSION_TRIGGER_SRC = "CloudControl";

/** Meross messages are a few kB (devices truncate HTTP replies at 2–4 kB); anything far bigger is not a device. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

export type RejectReason = "unexpected-topic" | "too-large" | "not-json" | "not-meross" | "bad-signature";

export type Inspection =
  /** `key`: the one of the candidates the message is signed with, for the answer. */
  | { ok: true; uuid: string; message: MerossMessage; key: string }
  | { ok: false; uuid?: string; reason: RejectReason; detail: string };

/**
 * Decides whether a message on a device's publish topic is one the agent may act on. The uuid comes
 * from the topic, not the header: the broker's ACL lets a device publish only to its own topic. In a
 * stack moving to per-device keys a device may hold either kind, so it is checked against each of
 * `keysFor(uuid)`, in order and only until one verifies, and answered with the one it was signed with.
 */
export function inspectDeviceMessage(
  topic: string,
  payload: Buffer,
  options: { keysFor: (uuid: string) => Iterable<string>; maxBytes?: number },
): Inspection {
  const uuid = uuidFromDeviceTopic(topic);
  if (uuid === undefined || topic !== devicePublishTopic(uuid)) {
    return {
      ok: false,
      reason: "unexpected-topic",
      detail: `not a device publish topic: ${topic.slice(0, 120)}`,
    };
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (payload.length > maxBytes) {
    return { ok: false, uuid, reason: "too-large", detail: `${payload.length} bytes, limit ${maxBytes}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(payload.toString("utf8"));
  } catch {
    return { ok: false, uuid, reason: "not-json", detail: `${payload.length} bytes that are not JSON` };
  }
  let message: MerossMessage;
  try {
    message = parseMessage(json);
  } catch (error) {
    return {
      ok: false,
      uuid,
      reason: "not-meross",
      detail: error instanceof Error ? error.message : String(error),
    };
  }
  let key: string | undefined;
  for (const candidate of options.keysFor(uuid)) {
    if (isSignatureValid(message.header, candidate)) {
      key = candidate;
      break;
    }
  }
  if (key === undefined) {
    return {
      ok: false,
      uuid,
      reason: "bad-signature",
      detail: `${message.header.method} ${message.header.namespace} is signed with neither the stack's shared key nor this device's own key`,
    };
  }
  return { ok: true, uuid, message, key };
}

/**
 * The cloud's echo of a device PUSH: the device's header unchanged (so its own signature still
 * holds and no new one is needed), minus `uuid`, with the cloud's triggerSrc.
 */
export function echoPush(message: MerossMessage, payload: Record<string, unknown>): MerossMessage {
  const { uuid: _dropped, ...header } = message.header;
  return { header: { ...header, triggerSrc: SESSION_TRIGGER_SRC } as Header, payload };
}

export function clockReply(message: MerossMessage, now: Date): MerossMessage {
  return echoPush(message, clockPayload(unixSeconds(now)));
}

/** SETACK with the device's messageId, signed with the key, as meross_lan answers (fixes MSS315 drops). */
export function bindAck(uuid: string, message: MerossMessage, key: string, now: Date): MerossMessage {
  const reply = buildReply(message, {
    key,
    from: devicePublishTopic(uuid),
    method: "SETACK",
    payload: {},
    now,
  });
  return { ...reply, header: { ...reply.header, triggerSrc: SESSION_TRIGGER_SRC } };
}

export type SessionAnswerEvent = "clock-answered" | "bind-acknowledged" | "consumption-config-echoed";

export interface SessionAnswer {
  event: SessionAnswerEvent;
  topic: string;
  message: MerossMessage;
}

/** The reply a session message needs, or undefined for any other traffic (the agent leaves that alone). */
export function answerSessionMessage(
  uuid: string,
  message: MerossMessage,
  context: { key: string; now: Date },
): SessionAnswer | undefined {
  const { method, namespace } = message.header;
  const topic = deviceSubscribeTopic(uuid);
  if (namespace === Namespace.SystemClock && method === "PUSH") {
    return { event: "clock-answered", topic, message: clockReply(message, context.now) };
  }
  if (namespace === Namespace.ControlBind && method === "SET") {
    return { event: "bind-acknowledged", topic, message: bindAck(uuid, message, context.key, context.now) };
  }
  if (namespace === Namespace.ControlConsumptionConfig && method === "PUSH") {
    return { event: "consumption-config-echoed", topic, message: echoPush(message, message.payload) };
  }
  return undefined;
}

/**
 * The cloud sets the zone after a device connects; un-paired devices start with none. The reply
 * is asked for on the device's own publish topic, which the agent already reads, so the agent's
 * account needs no reply topic of its own.
 */
export function timeZoneRequest(uuid: string, timezone: string, key: string, now: Date): MerossMessage {
  return buildMessage({
    ...systemTimeRequest(timezone, now),
    key,
    from: devicePublishTopic(uuid),
    triggerSrc: SESSION_TRIGGER_SRC,
    now,
  });
}
