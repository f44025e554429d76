import { createHmac } from "node:crypto";
import { z } from "zod";
import { uuidSchema } from "./identifiers.ts";

/**
 * Which key each device holds. `shared`: the stack's one deviceKey, as the Meross cloud does with an
 * account key. `per-device`: a key of its own, HMAC-SHA256(stack secret, uuid and generation), so the
 * key read out of one plug's flash signs for no other plug and makes no other plug's broker password.
 * The agent, control, monitor, provisioning, `devices.mjs` and the credential rows all call
 * deviceKeyFor: there is no other copy of the formula.
 */
export const KEY_SCHEMES = ["shared", "per-device"] as const;
export type KeyScheme = (typeof KEY_SCHEMES)[number];
export const keySchemeSchema = z.enum(KEY_SCHEMES, {
  error: 'must be "per-device" (a key of its own for each device) or "shared" (one key for all)',
});

/** A device's key generation: 1 when first given a per-device key, one more for each rotation. */
export const keyGenerationSchema = z.coerce
  .number()
  .int("must be a whole number")
  .min(1, "must be 1 or more (1 is the first per-device key, each rotation adds one)");

/**
 * The stack secret per-device keys are derived from. It never leaves the stack and the scripts
 * (no device holds it), so only its strength matters: a generated one has ~250 bits.
 */
export const DEVICE_KEY_SECRET_MIN_LENGTH = 32;
export const deviceKeySecretSchema = z
  .string()
  .min(DEVICE_KEY_SECRET_MIN_LENGTH, `must be at least ${DEVICE_KEY_SECRET_MIN_LENGTH} characters`)
  .max(256, "must be at most 256 characters");

/**
 * Per-device keys only: "previous" while the stack secret is being rotated and this device still
 * holds a key from the secret before (absent: the current secret).
 */
export const KEY_SECRETS = ["previous"] as const;
export const keySecretSchema = z.enum(KEY_SECRETS, {
  error: 'must be "previous" (its key comes from previousDeviceKeySecret) or unset',
});

/** What a device's stack config entry says about its key; an entry without it predates per-device keys. */
export interface DeviceKeying {
  keyScheme: KeyScheme;
  /** Per-device keys only. */
  keyGeneration?: number;
  keySecret?: (typeof KEY_SECRETS)[number];
}

/** Just the key fields of a record that has them (a stack config entry), for passing on. */
export function keyingOf(entry: Partial<DeviceKeying>): Partial<DeviceKeying> {
  const { keyScheme, keyGeneration, keySecret } = entry;
  return {
    ...(keyScheme === undefined ? {} : { keyScheme }),
    ...(keyGeneration === undefined ? {} : { keyGeneration }),
    ...(keySecret === undefined ? {} : { keySecret }),
  };
}

/** The stack's key material: the shared key, the secret per-device keys come from, the one before. All secret. */
export interface StackKeys {
  sharedKey: string;
  keySecret?: string;
  /** Kept while the stack secret is rotated, for devices not moved yet. */
  previousKeySecret?: string;
}

/** Domain separation: this HMAC input can never collide with another use of the same secret. */
const DERIVATION_LABEL = "meross-device-key";

/**
 * `hex(HMAC-SHA256(secret, "meross-device-key:<uuid>:<generation>"))[0:32]`. Thirty-two lowercase hex
 * characters is the shape of the vendor cloud's own keys, which every firmware accepts in Config.Key,
 * signs with, hashes into md5(mac + key), and slices for LAN encryption (key[1:9] + key[10:28]). The
 * uuid is lowercased first because topics and headers carry it lowercase; 128 bits is beyond guessing.
 */
export function derivePerDeviceKey(secret: string, uuid: string, generation: number): string {
  const id = uuidSchema.parse(uuid);
  const round = keyGenerationSchema.parse(generation);
  deviceKeySecretSchema.parse(secret);
  return createHmac("sha256", secret).update(`${DERIVATION_LABEL}:${id}:${round}`).digest("hex").slice(0, 32);
}

export class MissingKeySecretError extends Error {
  override name = "MissingKeySecretError";
}

/** The key a device holds, from its entry's scheme and generation; an entry without a scheme holds the shared key. */
export function deviceKeyFor(device: { uuid: string } & Partial<DeviceKeying>, keys: StackKeys): string {
  if ((device.keyScheme ?? "shared") === "shared") return keys.sharedKey;
  const previous = device.keySecret === "previous";
  const secret = previous ? keys.previousKeySecret : keys.keySecret;
  if (secret === undefined) {
    const name = previous ? "previousDeviceKeySecret" : "deviceKeySecret";
    throw new MissingKeySecretError(
      `device ${device.uuid} has a per-device key, but the stack's ${name} is not available (run \`pulumi up\` with this version, and keep ${name} set while any device entry needs it)`,
    );
  }
  return derivePerDeviceKey(secret, device.uuid, device.keyGeneration ?? 1);
}

/**
 * The keys a device may sign with, most likely first, for a receiver that has only its uuid (the
 * agent): the shared key, then per-device generations (from the current secret, then the previous
 * one while the stack secret is rotated) from the one the stack config knows up to `lookahead` ahead (a device re-keyed from the LAN since the last
 * `pulumi up`), and one behind. Trying one is an md5, so the list costs nothing next to a message.
 */
export function candidateDeviceKeys(
  uuid: string,
  keys: StackKeys,
  knownGeneration = 1,
  lookahead = 2,
): string[] {
  const candidates = [keys.sharedKey];
  for (const secret of [keys.keySecret, keys.previousKeySecret]) {
    if (secret === undefined) continue;
    // One behind too: a rotation recorded in the stack config before Config.Key reached the device.
    const first = Math.max(1, knownGeneration - 1);
    for (let generation = first; generation <= knownGeneration + lookahead; generation++) {
      candidates.push(derivePerDeviceKey(secret, uuid, generation));
    }
  }
  return candidates;
}
