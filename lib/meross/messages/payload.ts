import { z } from "zod";
import { ProtocolError } from "../envelope.ts";
import { macAddressSchema, uuidSchema } from "../identifiers.ts";

/** Parses a device's payload; a shape we do not know is a ProtocolError naming the field. */
export function parsed<S extends z.ZodType>(schema: S, namespace: string, payload: unknown): z.output<S> {
  const result = schema.safeParse(payload);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = ["payload", ...(issue?.path ?? [])].join(".");
  throw new ProtocolError(`unexpected ${namespace} payload: ${path} ${issue?.message ?? "is not valid"}`);
}

export const looksLikeUuid = z
  .string()
  .refine((uuid) => uuidSchema.safeParse(uuid).success, "is not a 32-hex uuid");
export const looksLikeMac = z
  .string()
  .refine((mac) => macAddressSchema.safeParse(mac).success, "is not a MAC address");
/** Older firmware writes numbers as strings (§3: `port`, `userId`); accept both. */
export const numeric = z.union([
  z.number(),
  z
    .string()
    .regex(/^\s*-?\d+\s*$/)
    .transform(Number),
]);
export const base64Text = z.base64().transform((text) => Buffer.from(text, "base64").toString("utf8"));

export function toBase64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}
