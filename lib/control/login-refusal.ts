import { ErrorWithReasonCode } from "mqtt";
import mysql from "mysql2/promise";
import { type BrokerClientSettings, BrokerConnectionError } from "../mqtt/connection.ts";
import type { MysqlSettings } from "../stack/outputs.ts";
import { checkStoredLogin } from "../store/login-check.ts";
import type { StackSource } from "./options.ts";

const DATABASE_CHECK_TIMEOUT_MS = 5_000;

/** How the broker turned the login down: a refusing CONNACK, or hanging up without one. */
type Refusal = "refused" | "closed";

/**
 * Why the broker turned `username` away, in one line, or undefined when it cannot be told. On the
 * wire a wrong password and a broker whose database is down look alike (go-auth refuses, or hangs
 * up when its database errors), so the stack's database is asked directly when its address is known.
 */
export async function refusalCause(
  how: Refusal,
  login: { username?: string; password?: string },
  database: MysqlSettings | undefined,
): Promise<string | undefined> {
  const { username, password } = login;
  if (username === undefined) {
    return how === "refused"
      ? "it takes no anonymous clients: pass --username and set MEROSS_MQTT_PASSWORD"
      : undefined;
  }
  if (database === undefined) {
    return how === "refused"
      ? `a wrong password for ${username}, or the broker cannot reach its database (check --username/--password)`
      : undefined;
  }
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection({ ...database, connectTimeout: DATABASE_CHECK_TIMEOUT_MS });
  } catch (error) {
    const reason = (error as { code?: string }).code ?? (error as Error).message;
    return (
      `the broker's database at ${database.host}:${database.port} does not answer (${reason}): with it down the ` +
      "broker turns every login away. Start the database container again (docker start meross-<stack>-database) or run `pulumi up`"
    );
  }
  try {
    if (how === "closed") return undefined;
    switch (await checkStoredLogin(conn, username, password ?? "")) {
      case "unknown-login":
        return `the broker's database has no login named ${username}: add it to controllers in the stack config and run \`pulumi up\``;
      case "wrong-password":
        return `that is not ${username}'s password in the broker's database (check --password or MEROSS_MQTT_PASSWORD; if it came from the stack, run \`pulumi up\`)`;
      case "password-matches":
        return (
          `the broker's database accepts ${username}'s password, so the broker could not check it: its auth plugin ` +
          "cannot reach the database (see the broker container's log)"
        );
    }
  } finally {
    await conn.end().catch(() => {});
  }
}

function refusalOf(error: unknown): Refusal | undefined {
  if (!(error instanceof BrokerConnectionError)) return undefined;
  // connectOnce keeps MQTT.js's refused CONNACK as the cause; a refused subscription has none.
  if (error.cause instanceof ErrorWithReasonCode) return "refused";
  return error.code === "ECLOSED" ? "closed" : undefined;
}

/**
 * Runs `connect`; a login the broker turns away comes back as one line naming its cause, found with
 * the stack's database when the stack can be read.
 */
export async function explainingLoginRefusal<T>(
  connect: () => Promise<T>,
  settings: BrokerClientSettings,
  stack: StackSource | undefined,
): Promise<T> {
  try {
    return await connect();
  } catch (error) {
    const how = refusalOf(error);
    if (how === undefined) throw error;
    const database = await stack?.outputs().then(
      (outputs) => outputs.mysql,
      () => undefined,
    );
    const cause = await refusalCause(how, settings, database);
    if (cause === undefined) throw error;
    const who = settings.username ? ` of ${settings.username}` : "";
    const what =
      how === "refused" ? `refused the login${who}` : `hung up instead of answering the login${who}`;
    throw new BrokerConnectionError(
      "ECONNREFUSED_AUTH",
      `the broker at ${settings.brokerUrl} ${what}: ${cause}`,
      {
        cause: error,
      },
    );
  }
}
