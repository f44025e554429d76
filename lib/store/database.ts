import type { Connection, ResultSetHeader, RowDataPacket } from "mysql2/promise";
import { macAddressSchema, uuidSchema } from "../meross/identifiers.ts";
import {
  type Account,
  AccountError,
  type AccountKind,
  aclRules,
  cacheKeyClash,
  cacheKeyClashMessage,
  parseAccount,
  passwordHashIterations,
} from "./accounts.ts";
import { decodePasswordHash, hashPassword, verifyPassword } from "./hash.ts";
import {
  ACCOUNTS_TABLE,
  ACLS_TABLE,
  ADDED_CHECKS,
  type CheckConstraint,
  SCHEMA_STATEMENTS,
} from "./schema.ts";

/**
 * Reads and writes the broker accounts over a mysql2 promise connection. Every value travels as a
 * bound parameter; the only text spliced into SQL is this module's own table names.
 */

/**
 * An error from mysql2, which exports no error class: its errors carry a string `code`
 * (ECONNREFUSED, ER_ACCESS_DENIED_ERROR, …) and, from the server, `sqlMessage`.
 */
export function isMysqlError(error: unknown): boolean {
  const { code, sqlMessage } = error as { code?: unknown; sqlMessage?: unknown };
  return (
    typeof sqlMessage === "string" ||
    (typeof code === "string" &&
      (/^ER_/.test(code) || ["ECONNREFUSED", "PROTOCOL_CONNECTION_LOST"].includes(code)))
  );
}

/** An account as stored, without any secret. */
export interface StoredAccount {
  username: string;
  kind: AccountKind;
  name: string;
  uuid?: string;
  createdAt: Date;
}

export type UpsertOutcome = "created" | "updated" | "unchanged";

export interface SyncResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  removed: StoredAccount[];
}

interface AccountRow extends RowDataPacket {
  username: string;
  password_hash: string;
  kind: AccountKind;
  name: string;
  uuid: string | null;
  created_at: Date;
}

interface AclRow extends RowDataPacket {
  topic: string;
  rw: number;
}

/** A database the schema cannot be brought up to date on without losing or rewriting rows. */
export class SchemaMigrationError extends Error {
  override name = "SchemaMigrationError";
}

interface ViolationRow extends RowDataPacket {
  username: string;
  kind: AccountKind;
  name: string;
}

/**
 * Creates the tables, or brings tables an older kit created up to date (adds missing CHECK
 * constraints). Safe to run any number of times. A row that breaks a new constraint is never
 * deleted or rewritten: the migration stops, names the rows and says how to fix them.
 */
export async function applySchema(conn: Connection): Promise<void> {
  for (const statement of SCHEMA_STATEMENTS) {
    await conn.query(statement);
  }
  for (const check of ADDED_CHECKS) {
    await addCheckIfMissing(conn, check);
  }
}

async function addCheckIfMissing(conn: Connection, check: CheckConstraint): Promise<void> {
  // CHECK_CONSTRAINTS has no TABLE_NAME column on MySQL; constraint names are unique per schema there.
  const [present] = await conn.execute<RowDataPacket[]>(
    "SELECT 1 FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND CONSTRAINT_NAME = ?",
    [check.name],
  );
  if (present.length > 0) {
    return;
  }
  const [violations] = await conn.query<ViolationRow[]>(
    `SELECT username, kind, name FROM ${check.table} WHERE NOT (${check.condition}) ORDER BY kind, name`,
  );
  if (violations.length > 0) {
    const rows = violations.map((row) => `${row.kind} ${JSON.stringify(row.name)} (${row.username})`);
    throw new SchemaMigrationError(
      `cannot add constraint ${check.name} to table ${check.table}: ${rows.length} stored row(s) break it: ` +
        `${rows.join(", ")}. Their password_hash is not a complete PBKDF2 hash, so go-auth would crash the ` +
        "broker or accept any password for them. Nothing was changed. Remove each one, then run again: " +
        "a device with `devices.mjs revoke <name>` (and `provision.mjs setup` it again), a controller " +
        `or the agent with \`DELETE FROM ${check.table} WHERE username = '<username>'\` (the next \`pulumi up\` recreates it).`,
    );
  }
  await conn.query(`ALTER TABLE ${check.table} ADD CONSTRAINT ${check.name} CHECK (${check.condition})`);
}

/**
 * Creates or updates one account and rewrites its ACL rows. Running it again with the same account
 * changes nothing (the stored hash is kept while it still matches the password and the hash policy,
 * so a changed policy re-hashes the row on the next run).
 */
export async function upsertAccount(conn: Connection, account: Account): Promise<UpsertOutcome> {
  const valid = parseAccount(account);
  return inTransaction(conn, () => writeAccount(conn, valid));
}

/**
 * Removes the one account whose username, name, MAC or uuid is `nameOrMacOrUuid`, with its ACL rows.
 * Returns it, or undefined when nothing matched; several matches remove nothing and throw.
 */
export async function revokeAccount(
  conn: Connection,
  nameOrMacOrUuid: string,
): Promise<StoredAccount | undefined> {
  const needle = nameOrMacOrUuid.trim();
  if (needle === "") {
    throw new AccountError("revoke needs a device name, MAC address or uuid; got an empty string");
  }
  const mac = macAddressSchema.safeParse(needle);
  const uuid = uuidSchema.safeParse(needle);
  return inTransaction(conn, async () => {
    const [rows] = await conn.execute<AccountRow[]>(
      `SELECT username, kind, name, uuid, created_at FROM ${ACCOUNTS_TABLE}
       WHERE username = ? OR username = ? OR name = ? OR uuid = ? FOR UPDATE`,
      [needle, mac.success ? mac.data : needle, needle, uuid.success ? uuid.data : needle],
    );
    const [match, ...others] = rows;
    if (!match) {
      return undefined;
    }
    if (others.length > 0) {
      const candidates = rows.map((row) => `${row.name} (${row.username})`).join(", ");
      throw new AccountError(
        `${JSON.stringify(needle)} matches ${rows.length} accounts: ${candidates}; revoke by MAC address or uuid instead`,
      );
    }
    await conn.execute(`DELETE FROM ${ACLS_TABLE} WHERE username = ?`, [match.username]);
    await conn.execute(`DELETE FROM ${ACCOUNTS_TABLE} WHERE username = ?`, [match.username]);
    return toStoredAccount(match);
  });
}

export async function listAccounts(conn: Connection): Promise<StoredAccount[]> {
  const [rows] = await conn.execute<AccountRow[]>(
    `SELECT username, kind, name, uuid, created_at FROM ${ACCOUNTS_TABLE} ORDER BY kind, name, username`,
  );
  return rows.map(toStoredAccount);
}

/**
 * Makes the accounts of `kinds` equal `accounts`, in one transaction: missing ones are created,
 * changed ones updated, and stored ones of those kinds that are not in `accounts` removed. Accounts
 * of other kinds are left alone, so e.g. devices recorded by the provisioning script survive a sync
 * of controllers.
 */
export async function syncAccounts(
  conn: Connection,
  accounts: readonly Account[],
  options: { kinds: readonly AccountKind[] },
): Promise<SyncResult> {
  const kinds = [...new Set(options.kinds)];
  if (kinds.length === 0) {
    throw new AccountError("syncAccounts needs at least one account kind to manage");
  }
  const valid = accounts.map(parseAccount);
  const usernames = new Set<string>();
  for (const account of valid) {
    if (!kinds.includes(account.kind)) {
      throw new AccountError(
        `account ${JSON.stringify(account.name)} is a ${account.kind}, but this sync manages only ${kinds.join(", ")}`,
      );
    }
    if (usernames.has(account.username)) {
      throw new AccountError(
        `username ${JSON.stringify(account.username)} appears twice (account ${JSON.stringify(account.name)})`,
      );
    }
    usernames.add(account.username);
  }

  return inTransaction(conn, async () => {
    const result: SyncResult = { created: [], updated: [], unchanged: [], removed: [] };
    for (const account of valid) {
      result[await writeAccount(conn, account)].push(account.username);
    }
    const [stored] = await conn.execute<AccountRow[]>(
      `SELECT username, kind, name, uuid, created_at FROM ${ACCOUNTS_TABLE}
       WHERE kind IN (${kinds.map(() => "?").join(", ")}) FOR UPDATE`,
      kinds,
    );
    for (const row of stored) {
      if (!usernames.has(row.username)) {
        await conn.execute(`DELETE FROM ${ACLS_TABLE} WHERE username = ?`, [row.username]);
        await conn.execute(`DELETE FROM ${ACCOUNTS_TABLE} WHERE username = ?`, [row.username]);
        result.removed.push(toStoredAccount(row));
      }
    }
    return result;
  });
}

async function writeAccount(conn: Connection, account: Account): Promise<UpsertOutcome> {
  const [existingRows] = await conn.execute<AccountRow[]>(
    `SELECT username, password_hash, kind, name, uuid, created_at FROM ${ACCOUNTS_TABLE} WHERE username = ? FOR UPDATE`,
    [account.username],
  );
  const existing = existingRows[0];
  if (!existing) {
    const [stored] = await conn.execute<AccountRow[]>(`SELECT username FROM ${ACCOUNTS_TABLE}`);
    const clash = stored.map((row) => cacheKeyClash([account.username, row.username])).find(Boolean);
    if (clash) throw new AccountError(cacheKeyClashMessage(clash));
  }
  const uuid = account.uuid ?? null;
  const rules = aclRules(account);

  const iterations = passwordHashIterations(account);
  let accountChanged = true;
  let passwordHash: string;
  if (existing && hashIsCurrent(existing.password_hash, account.password, iterations)) {
    passwordHash = existing.password_hash;
    accountChanged =
      existing.kind !== account.kind || existing.name !== account.name || existing.uuid !== uuid;
  } else {
    passwordHash = hashPassword(account.password, { iterations });
  }
  if (!existing || accountChanged) {
    // VALUES(col) rather than `INSERT … AS new`: MariaDB does not know the alias form.
    await conn.execute<ResultSetHeader>(
      `INSERT INTO ${ACCOUNTS_TABLE} (username, password_hash, kind, name, uuid) VALUES (?, ?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE password_hash = VALUES(password_hash), kind = VALUES(kind), name = VALUES(name),
       uuid = VALUES(uuid)`,
      [account.username, passwordHash, account.kind, account.name, uuid],
    );
  }

  const [aclRows] = await conn.execute<AclRow[]>(`SELECT topic, rw FROM ${ACLS_TABLE} WHERE username = ?`, [
    account.username,
  ]);
  const wanted = rules.map((rule) => `${rule.topic} ${rule.access}`).sort();
  const stored = aclRows.map((row) => `${row.topic} ${row.rw}`).sort();
  const aclChanged = wanted.join("\n") !== stored.join("\n");
  if (aclChanged) {
    await conn.execute(`DELETE FROM ${ACLS_TABLE} WHERE username = ?`, [account.username]);
    for (const rule of rules) {
      await conn.execute(`INSERT INTO ${ACLS_TABLE} (username, topic, rw) VALUES (?, ?, ?)`, [
        account.username,
        rule.topic,
        rule.access,
      ]);
    }
  }
  if (!existing) {
    return "created";
  }
  return accountChanged || aclChanged ? "updated" : "unchanged";
}

/** The stored hash is of this password and has the iterations the policy wants now. */
function hashIsCurrent(stored: string, password: string, iterations: number): boolean {
  // A row that is not a hash at all fails verifyPassword too, so decoding cannot throw past it.
  return verifyPassword(password, stored) && decodePasswordHash(stored).iterations === iterations;
}

async function inTransaction<T>(conn: Connection, work: () => Promise<T>): Promise<T> {
  await conn.beginTransaction();
  try {
    const result = await work();
    await conn.commit();
    return result;
  } catch (error) {
    await conn.rollback();
    throw error;
  }
}

function toStoredAccount(row: AccountRow): StoredAccount {
  return {
    username: row.username,
    kind: row.kind,
    name: row.name,
    ...(row.uuid ? { uuid: row.uuid } : {}),
    createdAt: row.created_at,
  };
}
