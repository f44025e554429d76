import { createDecipheriv, randomBytes, randomInt } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "../../lib/meross/envelope.ts";
import {
  decryptLanBody,
  decryptNulPadded,
  ecdhKeyPair,
  ecdhSharedKey,
  encryptLanBody,
  lanAesKey,
  lanKeySource,
} from "../../lib/meross/lan-crypto.ts";
import { decryptWifiPassword, encryptWifiPassword, wifixKey } from "../../lib/meross/wifi.ts";
import { vectors } from "../support/vectors.ts";

const PRINTABLE =
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&()*+,-./:;<=>?@[]^_{|}~ ";

function randomPassword(length: number): string {
  return Array.from({ length }, () => PRINTABLE[randomInt(PRINTABLE.length)]).join("");
}

/** Decrypts without stripping anything, to look at the padding the device will see. */
function rawPlaintext(base64: string, key: Buffer): Buffer {
  const decipher = createDecipheriv("aes-256-cbc", key, Buffer.from("0000000000000000")).setAutoPadding(
    false,
  );
  return Buffer.concat([decipher.update(Buffer.from(base64, "base64")), decipher.final()]);
}

const [wifixDevice] = vectors.wifixPassword;
if (!wifixDevice) throw new Error("the shared vectors file has no wifixPassword entry");

describe("WifiX password encryption", () => {
  it.each(vectors.wifixPassword)("derives the AES key for $type $uuid", (vector) => {
    expect(wifixKey(vector).toString("ascii")).toBe(vector.aesKeyAscii);
  });

  it.each(vectors.wifixPassword)("encrypts $password to the known ciphertext", (vector) => {
    expect(encryptWifiPassword(vector.password, vector)).toBe(vector.encrypted);
  });

  it.each(vectors.wifixPassword)("decrypts the known ciphertext back to $password", (vector) => {
    expect(decryptWifiPassword(vector.encrypted, vector)).toBe(vector.password);
  });

  const lengths = Array.from({ length: 64 - 8 + 1 }, (_, i) => i + 8);

  it.each(lengths)("round-trips a random %i-character password with 1–16 NULs and no PKCS#7", (length) => {
    const password = randomPassword(length);
    const encrypted = encryptWifiPassword(password, wifixDevice);
    expect(decryptWifiPassword(encrypted, wifixDevice)).toBe(password);

    const plaintext = rawPlaintext(encrypted, wifixKey(wifixDevice));
    const nuls = plaintext.length - length;
    expect(plaintext.subarray(0, length).toString("utf8")).toBe(password);
    expect(nuls).toBeGreaterThanOrEqual(1);
    expect(nuls).toBeLessThanOrEqual(16);
    expect(plaintext.subarray(length).every((byte) => byte === 0)).toBe(true);
  });

  it("gives a password of exactly 16 bytes a whole block of NULs", () => {
    const password = randomPassword(16);
    expect(Buffer.from(encryptWifiPassword(password, wifixDevice), "base64")).toHaveLength(32);
  });

  it("round-trips a UTF-8 password", () => {
    const password = "pässwörd-ünïcode";
    expect(decryptWifiPassword(encryptWifiPassword(password, wifixDevice), wifixDevice)).toBe(password);
  });

  it("depends on every identity field", () => {
    const key = wifixKey(wifixDevice).toString("ascii");
    expect(wifixKey({ ...wifixDevice, type: "mss110" }).toString("ascii")).not.toBe(key);
    expect(wifixKey({ ...wifixDevice, uuid: "2".repeat(32) }).toString("ascii")).not.toBe(key);
    expect(wifixKey({ ...wifixDevice, macAddress: "34:29:8f:00:00:00" }).toString("ascii")).not.toBe(key);
  });

  it.each(["not base64!", "", "c0Rm"])("rejects %j as ciphertext with a ProtocolError", (text) => {
    expect(() => decryptWifiPassword(text, wifixDevice)).toThrow(ProtocolError);
  });
});

describe("LAN body encryption", () => {
  it.each(vectors.lanEncryption)("builds the key source for $uuid with Python slices", (vector) => {
    expect(lanKeySource(vector)).toBe(vector.keySource);
  });

  it.each(vectors.lanEncryption)("derives the AES key for $uuid", (vector) => {
    expect(lanAesKey(vector).toString("ascii")).toBe(vector.aesKeyAscii);
  });

  it.each(vectors.lanEncryption)("encrypts and decrypts the known body for $uuid", (vector) => {
    const key = lanAesKey(vector);
    expect(encryptLanBody(vector.plaintext, key)).toBe(vector.encrypted);
    expect(decryptLanBody(vector.encrypted, key)).toBe(vector.plaintext);
  });

  it("slices keys like Python: key[1:9] and key[10:28], skipping key[0], key[9] and key[28:]", () => {
    const identity = { uuid: "0123456789abcdef0123456789abcdef", macAddress: "48:e1:e9:00:00:01" };
    const key = "abcdefghijklmnopqrstuvwxyz0123";
    expect(lanKeySource({ ...identity, key })).toBe(
      `3456789abcdef012345bcdefghi${identity.macAddress}klmnopqrstuvwxyz01`,
    );
    expect(lanKeySource({ ...identity, key: "" })).toBe(`3456789abcdef012345${identity.macAddress}`);
    expect(lanKeySource({ ...identity, key: "x" })).toBe(`3456789abcdef012345${identity.macAddress}`);
  });

  it("round-trips a JSON body that is an exact multiple of 16 bytes", () => {
    const key = randomBytes(32);
    const json = JSON.stringify({ header: {}, payload: { p: "x".repeat(16) } });
    expect(Buffer.byteLength(json) % 16).toBe(0);
    expect(Buffer.from(encryptLanBody(json, key), "base64")).toHaveLength(Buffer.byteLength(json) + 16);
    expect(decryptLanBody(encryptLanBody(json, key), key)).toBe(json);
  });

  it("tolerates whitespace around the base64 body", () => {
    const key = randomBytes(32);
    expect(decryptLanBody(`${encryptLanBody("{}", key)}\r\n`, key)).toBe("{}");
  });

  it("rejects ciphertext that is not whole AES blocks", () => {
    expect(() => decryptNulPadded(Buffer.alloc(15).toString("base64"), randomBytes(32))).toThrow(
      /multiple of 16/,
    );
  });
});

describe("ECDHE key exchange", () => {
  it("gives both sides the same 32-character key", () => {
    const ours = ecdhKeyPair();
    const device = ecdhKeyPair();
    const ourKey = ecdhSharedKey(ours.privateKey, device.publicKey);
    expect(ourKey.toString("ascii")).toMatch(/^[0-9a-f]{32}$/);
    expect(ecdhSharedKey(device.privateKey, ours.publicKey)).toEqual(ourKey);
  });

  it("uses the LAN key as BS2's default private key, and the keys then work for a body", () => {
    const [vector] = vectors.lanEncryption;
    if (!vector) throw new Error("the shared vectors file has no lanEncryption entry");
    const ours = ecdhKeyPair(lanAesKey(vector));
    expect(ours.privateKey).toEqual(lanAesKey(vector));
    expect(ours.publicKey).toHaveLength(65);
    expect(ours.publicKey[0]).toBe(0x04);

    const device = ecdhKeyPair();
    const body = encryptLanBody(vector.plaintext, ecdhSharedKey(ours.privateKey, device.publicKey));
    expect(decryptLanBody(body, ecdhSharedKey(device.privateKey, ours.publicKey))).toBe(vector.plaintext);
  });

  it("derives the same public key from the same private key", () => {
    const first = ecdhKeyPair();
    expect(ecdhKeyPair(first.privateKey).publicKey).toEqual(first.publicKey);
  });

  it("rejects a device public key that is not a P-256 point", () => {
    const ours = ecdhKeyPair();
    expect(() => ecdhSharedKey(ours.privateKey, Buffer.alloc(65, 1))).toThrow(ProtocolError);
  });
});
