import { describe, expect, it } from "vitest";
import { deviceMqttCredentials } from "../../lib/meross/credentials.ts";
import {
  candidateDeviceKeys,
  derivePerDeviceKey,
  deviceKeyFor,
  MissingKeySecretError,
} from "../../lib/meross/device-key.ts";
import { lanAesKey } from "../../lib/meross/lan-crypto.ts";
import { isSignatureValid, sign } from "../../lib/meross/sign.ts";
import { vectors } from "../support/vectors.ts";

const SECRET = "stack-secret-for-tests-0123456789abcdef";
const UUID = "2307065833780651200148e1e9cf4534";

/**
 * Known answers computed independently of node:crypto, with OpenSSL:
 *   printf 'meross-device-key:<uuid>:<generation>' | openssl dgst -sha256 -hmac '<secret>'
 * and the first 32 hex digits kept.
 */
const KNOWN = [
  { uuid: UUID, generation: 1, key: "e6858288aabb236cdf674882dc6b9bf3" },
  { uuid: UUID, generation: 2, key: "d44216b6b90eeb9afb7448f2e69789f4" },
  { uuid: "11111111111111111111111111111111", generation: 1, key: "eebde267e866871e1e24070842718af5" },
];

describe("per-device key derivation", () => {
  it.each(KNOWN)("derives $key for $uuid generation $generation", ({ uuid, generation, key }) => {
    expect(derivePerDeviceKey(SECRET, uuid, generation)).toBe(key);
  });

  it("reads the uuid case-insensitively, as topics carry it lowercase", () => {
    expect(derivePerDeviceKey(SECRET, UUID.toUpperCase(), 1)).toBe(KNOWN[0]?.key);
  });

  it("gives each device, generation and secret a different key", () => {
    const keys = new Set([
      derivePerDeviceKey(SECRET, UUID, 1),
      derivePerDeviceKey(SECRET, UUID, 2),
      derivePerDeviceKey(SECRET, "11111111111111111111111111111111", 1),
      derivePerDeviceKey(`${SECRET}x`, UUID, 1),
    ]);
    expect(keys.size).toBe(4);
  });

  it("has the cloud key's shape: 32 lowercase hex characters", () => {
    expect(derivePerDeviceKey(SECRET, UUID, 7)).toMatch(/^[0-9a-f]{32}$/);
  });

  it("refuses a short secret, a bad uuid or generation 0 instead of deriving a weak key", () => {
    expect(() => derivePerDeviceKey("short", UUID, 1)).toThrow(/at least 32/);
    expect(() => derivePerDeviceKey(SECRET, "not-a-uuid", 1)).toThrow(/uuid/);
    expect(() => derivePerDeviceKey(SECRET, UUID, 0)).toThrow(/1 or more/);
  });
});

describe("a derived key in every formula the firmware applies to a key", () => {
  const key = derivePerDeviceKey(SECRET, UUID, 1);
  const [signVector] = vectors.sign;
  const [passwordVector] = vectors.mqttPassword;
  const [lanVector] = vectors.lanEncryption;
  if (!signVector || !passwordVector || !lanVector) throw new Error("shared vectors missing");

  it("signs like any key (the shared sign vector still holds beside it)", () => {
    expect(sign(signVector.messageId, signVector.key, signVector.timestamp)).toBe(signVector.sign);
    const header = { messageId: signVector.messageId, timestamp: signVector.timestamp };
    expect(isSignatureValid({ ...header, sign: sign(header.messageId, key, header.timestamp) }, key)).toBe(
      true,
    );
    expect(isSignatureValid({ ...header, sign: signVector.sign }, key)).toBe(false);
  });

  it("makes the MQTT password md5(mac + key) (the shared password vector still holds beside it)", () => {
    expect(
      deviceMqttCredentials(passwordVector.macAddress, passwordVector.key, passwordVector.userId).password,
    ).toBe(passwordVector.password);
    // openssl: printf '48:e1:e9:cf:45:34e6858288aabb236cdf674882dc6b9bf3' | openssl md5
    expect(deviceMqttCredentials("48:e1:e9:cf:45:34", key, "1234").password).toBe(
      "1234_9fce66aa11f1583a1226121218f5328a",
    );
  });

  it("feeds LAN encryption's key[1:9] + key[10:28] with a full-length key", () => {
    expect(lanAesKey(lanVector).toString("ascii")).toBe(lanVector.aesKeyAscii);
    // openssl: printf '70658337806512001486858288a48:e1:e9:cf:45:34bb236cdf674882dc6b' | openssl md5
    expect(lanAesKey({ uuid: UUID, macAddress: "48:e1:e9:cf:45:34", key }).toString("ascii")).toBe(
      "7ac33ac04ece60cde6f47a8479f49911",
    );
  });
});

describe("which key a device holds", () => {
  const keys = { sharedKey: "the-shared-key-of-the-stack", keySecret: SECRET };

  it("is the shared key for an entry without a scheme (a stack from before per-device keys)", () => {
    expect(deviceKeyFor({ uuid: UUID }, keys)).toBe(keys.sharedKey);
    expect(deviceKeyFor({ uuid: UUID, keyScheme: "shared" }, keys)).toBe(keys.sharedKey);
  });

  it("is the derived key of its generation for a per-device entry (generation 1 when unset)", () => {
    expect(deviceKeyFor({ uuid: UUID, keyScheme: "per-device" }, keys)).toBe(KNOWN[0]?.key);
    expect(deviceKeyFor({ uuid: UUID, keyScheme: "per-device", keyGeneration: 2 }, keys)).toBe(KNOWN[1]?.key);
  });

  it("comes from the previous secret for an entry marked so while the stack secret is rotated", () => {
    const rotating = { sharedKey: "x", keySecret: `${SECRET}-new`, previousKeySecret: SECRET };
    expect(deviceKeyFor({ uuid: UUID, keyScheme: "per-device", keySecret: "previous" }, rotating)).toBe(
      KNOWN[0]?.key,
    );
    expect(deviceKeyFor({ uuid: UUID, keyScheme: "per-device" }, rotating)).toBe(
      derivePerDeviceKey(`${SECRET}-new`, UUID, 1),
    );
    expect(() => deviceKeyFor({ uuid: UUID, keyScheme: "per-device", keySecret: "previous" }, keys)).toThrow(
      /previousDeviceKeySecret is not available/,
    );
    expect(candidateDeviceKeys(UUID, rotating)).toContain(KNOWN[0]?.key);
  });

  it("says so when a per-device entry meets a stack without the secret", () => {
    expect(() => deviceKeyFor({ uuid: UUID, keyScheme: "per-device" }, { sharedKey: "x" })).toThrow(
      MissingKeySecretError,
    );
  });

  it("lists the shared key, one generation behind and two ahead of the known one, for the agent", () => {
    expect(candidateDeviceKeys(UUID, keys, 2)).toEqual([
      keys.sharedKey,
      KNOWN[0]?.key,
      KNOWN[1]?.key,
      derivePerDeviceKey(SECRET, UUID, 3),
      derivePerDeviceKey(SECRET, UUID, 4),
    ]);
    expect(candidateDeviceKeys(UUID, { sharedKey: "x" })).toEqual(["x"]);
  });
});
