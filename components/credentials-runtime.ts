import mysql, { type Connection } from "mysql2/promise";
import { ACCOUNT_KINDS, type Account } from "../lib/store/accounts.ts";
import { applySchema, syncAccounts } from "../lib/store/database.ts";

/**
 * What the AccountRows dynamic resource does when Pulumi calls it. credentials-provider.ts bundles
 * this file (with lib/store) into one CommonJS text that the serialized provider evaluates, so the
 * code Pulumi stores in the state never depends on how the program itself was loaded.
 */

export interface DatabaseEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** A MySQL login the stack owns and what it may do in the accounts database. */
export interface DatabaseGrant {
  user: string;
  password: string;
  access: "read" | "readwrite";
}

export interface AccountRowsInputs {
  /** root over the 127.0.0.1-published port. */
  admin: DatabaseEndpoint;
  grants: DatabaseGrant[];
  /** Every account the broker should know; rows of any other username are removed. */
  accounts: Account[];
  /** A replaced database container means an empty server: write everything again. */
  databaseContainerId: string;
  /** A changed runtime (e.g. new ACL rules) rewrites the rows too. */
  runtimeSha256: string;
}

export interface AccountRowsOutputs extends AccountRowsInputs {
  /** The usernames now in the database, for reading without the secrets. */
  usernames: string[];
}

const PRIVILEGES: Record<DatabaseGrant["access"], string> = {
  read: "SELECT",
  readwrite: "SELECT, INSERT, UPDATE, DELETE",
};
const LOGIN_PATTERN = /^[A-Za-z0-9_]{1,32}$/;
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "PROTOCOL_CONNECTION_LOST",
]);
const CONNECT_TIMEOUT_MS = 90_000;

/** Schema, logins and rows as the inputs say; safe to run any number of times. */
export async function applyAccountRows(inputs: AccountRowsInputs): Promise<AccountRowsOutputs> {
  const conn = await connect(inputs.admin, CONNECT_TIMEOUT_MS);
  try {
    await applySchema(conn);
    for (const grant of inputs.grants) {
      await applyGrant(conn, inputs.admin.database, grant);
    }
    await syncAccounts(conn, inputs.accounts, { kinds: ACCOUNT_KINDS });
  } finally {
    await conn.end();
  }
  return { ...inputs, usernames: inputs.accounts.map((account) => account.username).sort() };
}

/**
 * Removes every row the stack wrote. A database that is already gone has no rows to remove, so an
 * unreachable server is not an error here: `pulumi destroy` must not hang on it.
 */
export async function removeAccountRows(state: AccountRowsInputs): Promise<void> {
  let conn: Connection;
  try {
    conn = await connect(state.admin, 5_000);
  } catch (error) {
    if (isUnreachable(error)) return;
    throw error;
  }
  try {
    await syncAccounts(conn, [], { kinds: ACCOUNT_KINDS });
  } finally {
    await conn.end();
  }
}

/** Whether `pulumi up` has to write again: any input changed (secrets included, compared here only). */
export function accountRowsChanged(olds: Partial<AccountRowsInputs>, news: AccountRowsInputs): boolean {
  const comparable = (value: Partial<AccountRowsInputs>) =>
    JSON.stringify([
      value.admin,
      value.grants,
      value.accounts,
      value.databaseContainerId,
      value.runtimeSha256,
    ]);
  return comparable(olds) !== comparable(news);
}

/** mysql2 puts the statement, bound password included, in a failed query's `sql`: keep it out of Pulumi's output. */
async function querySettingPassword(conn: Connection, statement: string, password: string): Promise<void> {
  try {
    await conn.query(statement, [password]);
  } catch (error) {
    const { message, code } = error as { message: string; code?: unknown };
    throw Object.assign(new Error(message), { code });
  }
}

async function applyGrant(conn: Connection, database: string, grant: DatabaseGrant): Promise<void> {
  // Account names cannot be bound parameters in GRANT; they are checked instead.
  if (!LOGIN_PATTERN.test(grant.user)) {
    throw new Error(`database login ${JSON.stringify(grant.user)} must be 1 to 32 letters, digits or '_'`);
  }
  const account = `${mysql.escape(grant.user)}@'%'`;
  await querySettingPassword(conn, `CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY ?`, grant.password);
  await querySettingPassword(conn, `ALTER USER ${account} IDENTIFIED BY ?`, grant.password);
  await conn.query(`REVOKE ALL PRIVILEGES, GRANT OPTION FROM ${account}`);
  await conn.query(`GRANT ${PRIVILEGES[grant.access]} ON ${mysql.escapeId(database)}.* TO ${account}`);
}

async function connect(endpoint: DatabaseEndpoint, timeoutMs: number): Promise<Connection> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await mysql.createConnection({ ...endpoint, connectTimeout: 10_000 });
    } catch (error) {
      // Docker reports the container healthy a moment before its published port forwards.
      if (!isUnreachable(error) || Date.now() > deadline) {
        throw Object.assign(
          new Error(
            `cannot reach the accounts database at ${endpoint.host}:${endpoint.port} as ${endpoint.user}: ${(error as Error).message}`,
          ),
          { code: (error as { code?: unknown }).code },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}

function isUnreachable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && UNREACHABLE.has(code);
}
