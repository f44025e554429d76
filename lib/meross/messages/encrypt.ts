import { z } from "zod";
import { type DeviceRequest, Namespace } from "./namespace.ts";
import { parsed } from "./payload.ts";

// ── Appliance.Encrypt.ECDHE ─────────────────────────────────────────────────────────────────────

/** Step 1 of BS2's exchange: our uncompressed P-256 public key, base64. */
export function ecdheRequest(publicKey: Buffer): DeviceRequest {
  return {
    method: "SET",
    namespace: Namespace.EncryptEcdhe,
    payload: { ecdhe: { step: 1, pubkey: publicKey.toString("base64") } },
  };
}

const ecdhePayloadSchema = z.object({ ecdhe: z.object({ pubkey: z.base64().min(1) }).loose() });

/** The device's public key from the SETACK. */
export function parseEcdheReply(payload: unknown): Buffer {
  return Buffer.from(parsed(ecdhePayloadSchema, Namespace.EncryptEcdhe, payload).ecdhe.pubkey, "base64");
}

/** The device side: the controller's public key from the SET. */
export const parseEcdheRequest = parseEcdheReply;

export function ecdheReplyPayload(publicKey: Buffer): Record<string, unknown> {
  return { ecdhe: { pubkey: publicKey.toString("base64") } };
}
