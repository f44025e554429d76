import { pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Passwords in the format go-auth's pbkdf2 hasher verifies (hashing/pbkdf2.go):
 * `PBKDF2$sha512$<iterations>$<base64 salt>$<base64 key>`, standard base64 with padding. The
 * constants are go-auth's defaults, so a hash made here equals one go-auth's own pw tool makes.
 */
export const PBKDF2_ALGORITHM = "sha512";
export const PBKDF2_ITERATIONS = 100_000;
export const PBKDF2_KEY_LENGTH = 32;
export const PBKDF2_SALT_LENGTH = 16;

export interface HashOptions {
  iterations?: number;
  /** Only for known-answer tests; every stored hash gets a fresh random salt. */
  salt?: Buffer;
}

export interface DecodedHash {
  algorithm: "sha512" | "sha256";
  iterations: number;
  salt: Buffer;
  key: Buffer;
}

export class PasswordHashError extends Error {
  override name = "PasswordHashError";
}

export function hashPassword(password: string, options: HashOptions = {}): string {
  const iterations = options.iterations ?? PBKDF2_ITERATIONS;
  const salt = options.salt ?? randomBytes(PBKDF2_SALT_LENGTH);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > PBKDF2_MAX_ITERATIONS) {
    throw new PasswordHashError(
      `iterations ${iterations} must be a whole number from 1 to ${PBKDF2_MAX_ITERATIONS}`,
    );
  }
  if (salt.length === 0) {
    throw new PasswordHashError("salt must not be empty");
  }
  const key = pbkdf2Sync(password, salt, iterations, PBKDF2_KEY_LENGTH, PBKDF2_ALGORITHM);
  // go-auth compares only as many bytes as the stored key has: a short or empty key would accept
  // any password that shares its prefix, so a full-length key is a security property, not a detail.
  if (key.length !== PBKDF2_KEY_LENGTH) {
    throw new PasswordHashError(`derived key has ${key.length} bytes instead of ${PBKDF2_KEY_LENGTH}`);
  }
  return `PBKDF2$${PBKDF2_ALGORITHM}$${iterations}$${salt.toString("base64")}$${key.toString("base64")}`;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Upper bound on a stored iteration count (all seven-digit counts): a cache-miss login runs them on
 * Mosquitto's only network thread, so a row with billions would stall every client.
 */
const ITERATION_DIGITS = 7;
export const PBKDF2_MAX_ITERATIONS = 10 ** ITERATION_DIGITS - 1;

const keyPadding = (3 - (PBKDF2_KEY_LENGTH % 3)) % 3;
/**
 * The one format a stored hash may have, as a regular expression that MariaDB 10.11 (PCRE2), MySQL
 * 8.4 (ICU) and JavaScript read alike (the schema's CHECK constraint uses it): exactly five
 * `$`-separated fields, because go-auth 3.5.0's pbkdf2 hasher indexes field 4 without counting
 * (hashing/pbkdf2.go, Compare after getFields) and a shorter row panics the broker; a non-empty salt;
 * and a key of exactly PBKDF2_KEY_LENGTH bytes, because the hasher derives only as many bytes as the
 * stored key has, so a short key matches most passwords and an empty one matches every password.
 * `[$]` rather than `\$`: no backslash, so the SQL literal reads the same in every sql_mode.
 */
export const STORED_HASH_PATTERN =
  `^PBKDF2[$](sha512|sha256)[$][1-9][0-9]{0,${ITERATION_DIGITS - 1}}[$]` +
  "([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)[$]" +
  `[A-Za-z0-9+/]{${Math.ceil(PBKDF2_KEY_LENGTH / 3) * 4 - keyPadding}}${"=".repeat(keyPadding)}$`;
const STORED_HASH = new RegExp(STORED_HASH_PATTERN);

/** Splits a stored hash into its parts; throws if it is not a complete go-auth PBKDF2 hash. */
export function decodePasswordHash(stored: string): DecodedHash {
  const fields = stored.split("$");
  const [scheme, algorithm, iterationsText, saltText, keyText] = fields;
  if (fields.length !== 5 || scheme !== "PBKDF2") {
    throw new PasswordHashError("not a hash of the form PBKDF2$<algorithm>$<iterations>$<salt>$<key>");
  }
  if (algorithm !== "sha512" && algorithm !== "sha256") {
    throw new PasswordHashError(`unknown algorithm ${JSON.stringify(algorithm)}: expected sha512 or sha256`);
  }
  const iterations = Number(iterationsText);
  if (!/^[1-9]\d*$/.test(iterationsText ?? "") || !Number.isSafeInteger(iterations)) {
    throw new PasswordHashError(
      `iteration count ${JSON.stringify(iterationsText)} is not a positive whole number`,
    );
  }
  if (!saltText || !BASE64.test(saltText) || !keyText || !BASE64.test(keyText)) {
    throw new PasswordHashError("salt and key must be non-empty standard base64");
  }
  if (!STORED_HASH.test(stored)) {
    throw new PasswordHashError(
      `not storable: the key must be ${PBKDF2_KEY_LENGTH} bytes and the iteration count at most ${PBKDF2_MAX_ITERATIONS}`,
    );
  }
  return {
    algorithm,
    iterations,
    salt: Buffer.from(saltText, "base64"),
    key: Buffer.from(keyText, "base64"),
  };
}

/** True when `password` matches the stored hash, compared over the full key (unlike go-auth's prefix loop). */
export function verifyPassword(password: string, stored: string): boolean {
  let decoded: DecodedHash;
  try {
    decoded = decodePasswordHash(stored);
  } catch {
    return false;
  }
  // A short stored key is a broken row (go-auth would accept any password sharing its prefix).
  if (decoded.key.length < PBKDF2_KEY_LENGTH) {
    return false;
  }
  const derived = pbkdf2Sync(
    password,
    decoded.salt,
    decoded.iterations,
    decoded.key.length,
    decoded.algorithm,
  );
  return timingSafeEqual(derived, decoded.key);
}
