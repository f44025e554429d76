import { createCipheriv, createDecipheriv, createECDH } from "node:crypto";
import { ProtocolError } from "./envelope.ts";
import { md5Hex } from "./hash.ts";

/**
 * The AES framing every Meross cipher shares (protocol §2.6 and §4.4): AES-256-CBC, IV of sixteen
 * ASCII '0' bytes, plaintext followed by 1–16 NUL bytes instead of PKCS#7, base64 on the wire.
 */
const CIPHER = "aes-256-cbc";
const BLOCK_BYTES = 16;
const ZERO_IV = Buffer.from("0".repeat(BLOCK_BYTES), "ascii");
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

/** Meross keys are md5 hex strings whose 32 ASCII characters are used as the raw AES-256 key. */
export function asciiKey(md5HexDigest: string): Buffer {
  return Buffer.from(md5HexDigest, "ascii");
}

function padWithNuls(plaintext: Buffer): Buffer {
  // Always at least one NUL: the firmware reads the plaintext as a C string.
  const padding = BLOCK_BYTES - (plaintext.length % BLOCK_BYTES);
  return Buffer.concat([plaintext, Buffer.alloc(padding)]);
}

function stripTrailingNuls(padded: Buffer): Buffer {
  let end = padded.length;
  while (end > 0 && padded[end - 1] === 0) end--;
  return padded.subarray(0, end);
}

export function encryptNulPadded(plaintext: Buffer, key: Buffer): string {
  const cipher = createCipheriv(CIPHER, key, ZERO_IV).setAutoPadding(false);
  return Buffer.concat([cipher.update(padWithNuls(plaintext)), cipher.final()]).toString("base64");
}

export function decryptNulPadded(base64: string, key: Buffer): Buffer {
  const text = base64.trim();
  const ciphertext = Buffer.from(text, "base64");
  if (!BASE64_PATTERN.test(text) || ciphertext.length === 0 || ciphertext.length % BLOCK_BYTES !== 0) {
    throw new ProtocolError(
      `expected base64 of AES-CBC ciphertext (a non-empty multiple of ${BLOCK_BYTES} bytes), got ${text.length} characters that are not`,
    );
  }
  const decipher = createDecipheriv(CIPHER, key, ZERO_IV).setAutoPadding(false);
  return stripTrailingNuls(Buffer.concat([decipher.update(ciphertext), decipher.final()]));
}

/** What the LAN key is derived from: the device identity as System.All reports it, plus its key. */
export interface LanIdentity {
  uuid: string;
  macAddress: string;
  key: string;
}

/**
 * `uuid[3:22] + key[1:9] + mac + key[10:28]` with Python slice semantics (ML and BS2): indices past
 * the end clamp, so short keys contribute fewer or no characters. JS `slice` clamps the same way.
 */
export function lanKeySource({ uuid, macAddress, key }: LanIdentity): string {
  return `${uuid.slice(3, 22)}${key.slice(1, 9)}${macAddress}${key.slice(10, 28)}`;
}

/** ML's direct LAN key; BS2 uses the same 32 bytes as its default ECDHE private key. */
export function lanAesKey(identity: LanIdentity): Buffer {
  return asciiKey(md5Hex(lanKeySource(identity)));
}

export function encryptLanBody(json: string, key: Buffer): string {
  return encryptNulPadded(Buffer.from(json, "utf8"), key);
}

export function decryptLanBody(body: string, key: Buffer): string {
  return decryptNulPadded(body, key).toString("utf8");
}

const CURVE = "prime256v1";

export interface EcdhKeyPair {
  privateKey: Buffer;
  /** Uncompressed P-256 point (65 bytes), sent base64 in `ecdhe.pubkey`. */
  publicKey: Buffer;
}

/** Our side of Encrypt.ECDHE: from a given private key (BS2's default is `lanAesKey`), or random. */
export function ecdhKeyPair(privateKey?: Buffer): EcdhKeyPair {
  const ecdh = createECDH(CURVE);
  if (privateKey) ecdh.setPrivateKey(privateKey);
  else ecdh.generateKeys();
  return { privateKey: ecdh.getPrivateKey(), publicKey: ecdh.getPublicKey() };
}

/** The AES key both sides use after the exchange: md5 hex of the ECDH secret, as 32 ASCII bytes. */
export function ecdhSharedKey(ourPrivateKey: Buffer, theirPublicKey: Buffer): Buffer {
  const ecdh = createECDH(CURVE);
  ecdh.setPrivateKey(ourPrivateKey);
  let secret: Buffer;
  try {
    secret = ecdh.computeSecret(theirPublicKey);
  } catch {
    throw new ProtocolError(
      `the ECDHE public key (${theirPublicKey.length} bytes) is not a point on P-256; expected 65 bytes starting with 0x04`,
    );
  }
  return asciiKey(md5Hex(secret));
}
