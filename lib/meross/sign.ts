import { timingSafeEqual } from "node:crypto";
import { md5Hex } from "./hash.ts";

/** `md5(messageId + key + timestamp)`, the signature on every request and reply (protocol §2.2). */
export function sign(messageId: string, key: string, timestamp: number): string {
  return md5Hex(`${messageId}${key}${timestamp}`);
}

export function isSignatureValid(
  header: { messageId: string; timestamp: number; sign: string },
  key: string,
): boolean {
  const expected = Buffer.from(sign(header.messageId, key, header.timestamp));
  const given = Buffer.from(header.sign.toLowerCase());
  return expected.length === given.length && timingSafeEqual(expected, given);
}
