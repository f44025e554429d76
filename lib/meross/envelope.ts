import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { ExitCategory } from "../exit-category.ts";
import { isSignatureValid, sign } from "./sign.ts";

/** Protocol §2.1. `sign` and `timestamp` are what the device checks; the rest it echoes or ignores. */
export const headerSchema = z
  .object({
    messageId: z.string().min(1),
    method: z.enum(["GET", "SET", "PUSH", "GETACK", "SETACK", "ERROR"]),
    namespace: z.string().min(1),
    payloadVersion: z.number().int().optional(),
    from: z.string().optional(),
    timestamp: z.number().int().nonnegative(),
    timestampMs: z.number().int().optional(),
    sign: z.string().regex(/^[0-9a-f]{32}$/i),
    triggerSrc: z.string().optional(),
    uuid: z.string().optional(),
  })
  .loose();

export const messageSchema = z.object({
  header: headerSchema,
  payload: z.record(z.string(), z.unknown()),
});

export type Header = z.infer<typeof headerSchema>;
export type Method = Header["method"];
export type RequestMethod = "GET" | "SET" | "PUSH";
export interface MerossMessage<P = Record<string, unknown>> {
  header: Header;
  payload: P;
}

const REPLY_METHOD: Record<RequestMethod, Method> = { GET: "GETACK", SET: "SETACK", PUSH: "PUSH" };

export function replyMethodFor(method: RequestMethod): Method {
  return REPLY_METHOD[method];
}

/** 32 lowercase hex digits, as every reference client makes it. */
export function newMessageId(): string {
  return randomUUID().replaceAll("-", "");
}

export function unixSeconds(now: Date = new Date()): number {
  return Math.floor(now.getTime() / 1000);
}

export interface RequestOptions {
  method: RequestMethod;
  namespace: string;
  payload?: Record<string, unknown>;
  key: string;
  /** Where the reply goes: an MQTT topic, or the device URL over HTTP. */
  from: string;
  triggerSrc?: string;
  messageId?: string;
  now?: Date;
}

export function buildMessage(options: RequestOptions): MerossMessage {
  const messageId = options.messageId ?? newMessageId();
  const timestamp = unixSeconds(options.now);
  return {
    header: {
      messageId,
      method: options.method,
      namespace: options.namespace,
      payloadVersion: 1,
      from: options.from,
      timestamp,
      timestampMs: 0,
      sign: sign(messageId, options.key, timestamp),
      triggerSrc: options.triggerSrc ?? "MerossLocalKit",
    },
    payload: options.payload ?? {},
  };
}

/** A reply to `request` signed with `key`, in the shape devices use. */
export function buildReply(
  request: MerossMessage,
  options: { key: string; from: string; payload?: Record<string, unknown>; method?: Method; now?: Date },
): MerossMessage {
  const timestamp = unixSeconds(options.now);
  const { messageId, namespace } = request.header;
  return {
    header: {
      messageId,
      method: options.method ?? replyMethodFor(request.header.method as RequestMethod),
      namespace,
      payloadVersion: 1,
      from: options.from,
      timestamp,
      timestampMs: 0,
      sign: sign(messageId, options.key, timestamp),
    },
    payload: options.payload ?? {},
  };
}

/** Why a device refused a request; `code` is the device's own (5001 = wrong key). */
export class DeviceError extends Error {
  readonly exitCategory: ExitCategory = "deviceError";
  readonly code: number | string;
  readonly detail: string;
  constructor(namespace: string, code: number | string, detail: string) {
    super(`the device refused ${namespace}: ${detail || "no reason given"} (error ${code})`);
    this.name = "DeviceError";
    this.code = code;
    this.detail = detail;
  }
}

export const WRONG_KEY_CODE = 5001;

export class WrongKeyError extends DeviceError {
  override readonly exitCategory: ExitCategory = "wrongKey";
  constructor(namespace: string) {
    super(namespace, WRONG_KEY_CODE, "sign error");
    this.name = "WrongKeyError";
    this.message =
      `the device rejected the signature on ${namespace} (error 5001): it has a different key. ` +
      "Pass the key it was set up with (--key), or factory-reset it (hold the button ~5 s) and set it up again.";
  }
}

export class ProtocolError extends Error {
  readonly exitCategory: ExitCategory = "deviceError";
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

export function parseMessage(input: string | Buffer | unknown): MerossMessage {
  let value: unknown = input;
  if (typeof input === "string" || Buffer.isBuffer(input)) {
    try {
      value = JSON.parse(input.toString());
    } catch {
      throw new ProtocolError("the message is not JSON");
    }
  }
  const parsed = messageSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ProtocolError(`not a Meross message: ${issue?.path.join(".")} ${issue?.message}`);
  }
  return parsed.data;
}

const errorPayloadSchema = z.object({
  error: z.object({ code: z.union([z.number(), z.string()]).optional() }).loose(),
});

/**
 * The text a device put beside its error code, from whichever field it used: real firmware sends
 * `detail` ("sign error", §2.5) or nothing (`{"code":5000}`), meross_lan's emulator `message`.
 */
export function deviceErrorText(error: Record<string, unknown>): string {
  for (const field of ["detail", "message", "msg", "info", "description", "reason"]) {
    const value = error[field];
    if (typeof value === "string" && value.trim() !== "") return value.trim();
  }
  return "";
}

/**
 * Checks that `reply` answers `request`: same messageId, the paired method, and not an ERROR.
 * With `key`, the reply's own signature must hold too.
 */
export function checkReply(request: MerossMessage, reply: MerossMessage, key?: string): MerossMessage {
  const { namespace } = request.header;
  if (reply.header.method === "ERROR") {
    const error = errorPayloadSchema.safeParse(reply.payload);
    const code = (error.success ? error.data.error.code : undefined) ?? "unknown";
    if (Number(code) === WRONG_KEY_CODE) throw new WrongKeyError(namespace);
    throw new DeviceError(namespace, code, error.success ? deviceErrorText(error.data.error) : "");
  }
  const expected = replyMethodFor(request.header.method as RequestMethod);
  if (reply.header.method !== expected) {
    throw new ProtocolError(`expected ${expected} for ${namespace}, got ${reply.header.method}`);
  }
  if (reply.header.messageId !== request.header.messageId) {
    throw new ProtocolError(`reply to ${namespace} carries another messageId`);
  }
  if (key !== undefined && !isSignatureValid(reply.header, key)) {
    throw new ProtocolError(`reply to ${namespace} is not signed with our key`);
  }
  return reply;
}
