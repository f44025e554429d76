import { createHash } from "node:crypto";

/** Lowercase hex MD5 of a UTF-8 string: the digest every Meross formula is built on. */
export function md5Hex(text: string | Buffer): string {
  return createHash("md5").update(text).digest("hex");
}
