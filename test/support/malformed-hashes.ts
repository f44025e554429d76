import { hashPassword } from "../../lib/store/hash.ts";

const GOOD = hashPassword("a password of sixteen+", { iterations: 1000 });
const [, , , salt = "", key = ""] = GOOD.split("$");

/**
 * Stored hashes that go-auth 3.5.0's pbkdf2 hasher panics on (fewer than five `$` fields), accepts for
 * (nearly) any password (empty or short key), or that are otherwise not what lib/store writes. The
 * unit tests check lib/store's pattern refuses each; the integration tests check MariaDB does.
 */
export const MALFORMED_HASHES = {
  empty: "",
  "scheme only": "PBKDF2",
  "only separators": "$$$$",
  "three fields (go-auth panics)": "PBKDF2$sha512$1000",
  "four fields (go-auth panics)": `PBKDF2$sha512$1000$${salt}`,
  "empty key (matches every password)": `PBKDF2$sha512$1000$${salt}$`,
  "one-byte key (matches 1 password in 256)": `PBKDF2$sha512$1000$${salt}$AA==`,
  "key one byte short": `PBKDF2$sha512$1000$${salt}$${Buffer.from(key, "base64").subarray(1).toString("base64")}`,
  "key without padding": `PBKDF2$sha512$1000$${salt}$${key.replace(/=+$/, "")}`,
  "empty salt": `PBKDF2$sha512$1000$$${key}`,
  "salt not base64": `PBKDF2$sha512$1000$s@lt!$${key}`,
  "zero iterations": `PBKDF2$sha512$0$${salt}$${key}`,
  "ten-digit iteration count": `PBKDF2$sha512$1000000000$${salt}$${key}`,
  "unknown algorithm": `PBKDF2$sha1$1000$${salt}$${key}`,
  "lower-case scheme": GOOD.replace("PBKDF2", "pbkdf2"),
  "PHC form": `pbkdf2-sha512$i=1000,l=32$${salt}$${key}`,
  "sixth field": `${GOOD}$extra`,
  "trailing newline": `${GOOD}\n`,
  "clear text": "correct horse battery staple",
} as const satisfies Record<string, string>;

/** A well-formed hash, for checking the constraint does not refuse what lib/store writes. */
export const WELL_FORMED_HASH = GOOD;
