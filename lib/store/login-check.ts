import type { Connection, RowDataPacket } from "mysql2/promise";
import { verifyPassword } from "./hash.ts";
import { GO_AUTH_QUERIES } from "./queries.ts";

/** What the broker's auth plugin finds for a login in its database. */
export type StoredLoginVerdict = "unknown-login" | "wrong-password" | "password-matches";

/**
 * Asks the database the broker checks logins against the plugin's own question (its user query,
 * then the same PBKDF2 check), so a refused login can be told apart: no such login, another
 * password, or a password the database accepts (then the broker could not ask it).
 */
export async function checkStoredLogin(
  conn: Connection,
  username: string,
  password: string,
): Promise<StoredLoginVerdict> {
  const [rows] = await conn.query<RowDataPacket[]>(GO_AUTH_QUERIES.user, [username]);
  const stored = rows[0]?.password_hash;
  if (typeof stored !== "string") return "unknown-login";
  return verifyPassword(password, stored) ? "password-matches" : "wrong-password";
}
