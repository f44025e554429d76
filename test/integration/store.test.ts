import type { Connection, RowDataPacket } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MariaDbInstance, startMariaDb } from "../../lib/local-stack/mariadb.ts";
import {
  ACCESS_READ,
  ACCESS_SUBSCRIBE,
  ACCESS_WRITE,
  type Account,
  AccountError,
  aclRules,
  CHOSEN_SECRET_ITERATIONS,
  controllerAccount,
  deviceAccount,
  GENERATED_SECRET_ITERATIONS,
  serviceAccount,
} from "../../lib/store/accounts.ts";
import {
  applySchema,
  listAccounts,
  revokeAccount,
  SchemaMigrationError,
  syncAccounts,
  upsertAccount,
} from "../../lib/store/database.ts";
import { decodePasswordHash, hashPassword, PBKDF2_KEY_LENGTH, verifyPassword } from "../../lib/store/hash.ts";
import { GO_AUTH_QUERIES } from "../../lib/store/queries.ts";
import { PASSWORD_HASH_CHECK, SCHEMA_STATEMENTS } from "../../lib/store/schema.ts";
import { MALFORMED_HASHES, WELL_FORMED_HASH } from "../support/malformed-hashes.ts";

const USER_ID = "4242";
const KEY = "0123456789abcdef-test-key";
const INJECTION = "' OR '1'='1";

function device(n: number, name = `plug ${n}`): Account {
  const hex = n.toString(16).padStart(2, "0");
  return deviceAccount({ name, mac: `48:e1:e9:00:00:${hex}`, uuid: `${hex}`.repeat(16) }, KEY, USER_ID);
}

let db: MariaDbInstance;
let conn: Connection;

async function storedHash(username: string): Promise<string | undefined> {
  const [rows] = await conn.execute<RowDataPacket[]>(GO_AUTH_QUERIES.user, [username]);
  return rows[0]?.password_hash;
}

async function aclTopics(username: string, access: number): Promise<string[]> {
  const [rows] = await conn.execute<RowDataPacket[]>(GO_AUTH_QUERIES.acl, [username, access]);
  return rows.map((row) => row.topic as string).sort();
}

async function clearAccounts(): Promise<void> {
  await conn.query("DELETE FROM acls");
  await conn.query("DELETE FROM accounts");
}

beforeAll(async () => {
  db = await startMariaDb();
  conn = await db.connect();
  await applySchema(conn);
});

afterAll(async () => {
  await conn?.end();
  await db?.stop();
});

describe("schema", () => {
  it("applies twice without error (CREATE … IF NOT EXISTS)", async () => {
    await applySchema(conn);
    const [tables] = await conn.query<RowDataPacket[]>("SHOW TABLES");
    expect(tables.map((row) => Object.values(row)[0]).sort()).toEqual(["accounts", "acls"]);
  });
});

/** MariaDB's ER_CONSTRAINT_FAILED (mysql2 names errnos after MySQL's list, where 4025 is another error). */
const MARIADB_CONSTRAINT_FAILED = 4025;

const insertAccount = (c: Connection, username: string, hash: string) =>
  c.execute("INSERT INTO accounts (username, password_hash, kind, name) VALUES (?, ?, 'controller', ?)", [
    username,
    hash,
    username,
  ]);

describe("the password_hash CHECK constraint", () => {
  beforeAll(clearAccounts);

  it.each(Object.entries(MALFORMED_HASHES))(
    "MariaDB refuses a hand-typed INSERT with %s",
    async (_, hash) => {
      await expect(insertAccount(conn, "hand-typed", hash)).rejects.toMatchObject({
        errno: MARIADB_CONSTRAINT_FAILED,
        message: expect.stringContaining(PASSWORD_HASH_CHECK.name),
      });
    },
  );

  it("accepts a well-formed hash, and refuses an UPDATE that breaks it", async () => {
    await insertAccount(conn, "hand-typed", WELL_FORMED_HASH);
    await expect(
      conn.execute("UPDATE accounts SET password_hash = ? WHERE username = 'hand-typed'", [
        MALFORMED_HASHES["four fields (go-auth panics)"],
      ]),
    ).rejects.toMatchObject({ errno: MARIADB_CONSTRAINT_FAILED });
    expect(await storedHash("hand-typed")).toBe(WELL_FORMED_HASH);
    await clearAccounts();
  });
});

describe("migrating a database made before the constraint", () => {
  const LEGACY_DATABASE = "meross_before_check";
  let legacy: Connection;
  // The accounts table exactly as earlier kits created it: today's statement without the constraint.
  const constraintLine = `,\n  CONSTRAINT ${PASSWORD_HASH_CHECK.name} CHECK (${PASSWORD_HASH_CHECK.condition})`;
  const legacySchema = [SCHEMA_STATEMENTS[0]?.replace(constraintLine, ""), ...SCHEMA_STATEMENTS.slice(1)];
  const hasConstraint = async () => {
    const [rows] = await legacy.query<RowDataPacket[]>(
      "SELECT 1 FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND CONSTRAINT_NAME = ?",
      [PASSWORD_HASH_CHECK.name],
    );
    return rows.length === 1;
  };

  beforeAll(async () => {
    expect(legacySchema[0]).not.toContain(PASSWORD_HASH_CHECK.name);
    await conn.query(`CREATE DATABASE ${LEGACY_DATABASE}`);
    legacy = await db.connect();
    await legacy.query(`USE ${LEGACY_DATABASE}`);
    for (const statement of legacySchema) {
      await legacy.query(statement ?? "");
    }
  });

  afterAll(async () => {
    await legacy?.end();
  });

  it("refuses to migrate while a bad row exists, naming it and changing nothing", async () => {
    await upsertAccount(legacy, device(7, "kitchen plug"));
    await insertAccount(legacy, "broken-controller", MALFORMED_HASHES["three fields (go-auth panics)"]);
    const before = await listAccounts(legacy);

    const failure = applySchema(legacy);
    await expect(failure).rejects.toThrow(SchemaMigrationError);
    await expect(failure).rejects.toThrow(/controller "broken-controller" \(broken-controller\)/);
    await expect(failure).rejects.not.toThrow(/kitchen plug/);
    expect(await listAccounts(legacy)).toEqual(before);
    expect(await hasConstraint()).toBe(false);
  });

  it("adds the constraint once the row is gone, keeps the good rows, and runs again as a no-op", async () => {
    await legacy.query("DELETE FROM accounts WHERE username = 'broken-controller'");
    const before = await listAccounts(legacy);
    await applySchema(legacy);
    expect(await hasConstraint()).toBe(true);
    await applySchema(legacy);
    expect(await listAccounts(legacy)).toEqual(before);
    await expect(insertAccount(legacy, "hand-typed", MALFORMED_HASHES.empty)).rejects.toMatchObject({
      errno: MARIADB_CONSTRAINT_FAILED,
    });
  });
});

describe("upsertAccount", () => {
  beforeAll(clearAccounts);

  it("creates the row with a verifying full-length hash and the account's ACL rows", async () => {
    const lamp = device(1);
    expect(await upsertAccount(conn, lamp)).toBe("created");
    const hash = await storedHash(lamp.username);
    expect(hash).toBeDefined();
    expect(verifyPassword(lamp.password, hash ?? "")).toBe(true);
    expect(decodePasswordHash(hash ?? "").key).toHaveLength(PBKDF2_KEY_LENGTH);

    const [rows] = await conn.execute<RowDataPacket[]>("SELECT topic, rw FROM acls WHERE username = ?", [
      lamp.username,
    ]);
    const stored = rows.map((row) => ({ topic: row.topic, access: row.rw }));
    expect(stored).toEqual(expect.arrayContaining(aclRules(lamp)));
    expect(stored).toHaveLength(aclRules(lamp).length);
  });

  it("is idempotent: the same account again changes nothing, not even the salt", async () => {
    const lamp = device(1);
    const before = await storedHash(lamp.username);
    expect(await upsertAccount(conn, lamp)).toBe("unchanged");
    expect(await storedHash(lamp.username)).toBe(before);
  });

  it("a new key (so a new password) replaces the hash: the old password stops working", async () => {
    const lamp = device(1);
    const rekeyed = deviceAccount(
      { name: lamp.name, mac: lamp.username, uuid: lamp.uuid ?? "" },
      "another-key-0123456789",
      USER_ID,
    );
    expect(await upsertAccount(conn, rekeyed)).toBe("updated");
    const hash = (await storedHash(lamp.username)) ?? "";
    expect(verifyPassword(rekeyed.password, hash)).toBe(true);
    expect(verifyPassword(lamp.password, hash)).toBe(false);
  });

  it("hashes with the policy's iterations per key origin, and re-hashes a row when the policy changes", async () => {
    const generated = device(1, "plug 1");
    const identity = { name: generated.name, mac: generated.username, uuid: generated.uuid ?? "" };
    const fast = deviceAccount(identity, "another-key-0123456789", USER_ID, "generated");
    expect(await upsertAccount(conn, fast)).toBe("updated");
    const fastHash = (await storedHash(fast.username)) ?? "";
    expect(decodePasswordHash(fastHash).iterations).toBe(GENERATED_SECRET_ITERATIONS);
    expect(await upsertAccount(conn, fast)).toBe("unchanged");

    // Same password, now from a chosen key: the row is re-hashed slowly, and the password still works.
    const slow = { ...fast, secretOrigin: "chosen" as const };
    expect(await upsertAccount(conn, slow)).toBe("updated");
    const slowHash = (await storedHash(fast.username)) ?? "";
    expect(decodePasswordHash(slowHash).iterations).toBe(CHOSEN_SECRET_ITERATIONS);
    expect(verifyPassword(fast.password, slowHash)).toBe(true);

    // Rows written under older policies (100 000 iterations for everything, then 1 000 for generated
    // secrets) are brought down to the current one.
    for (const olderIterations of [100_000, 1_000]) {
      await conn.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", [
        hashPassword(fast.password, { iterations: olderIterations }),
        fast.username,
      ]);
      const result = await syncAccounts(conn, [fast], { kinds: ["device"] });
      expect(result.updated).toEqual([fast.username]);
      const current = (await storedHash(fast.username)) ?? "";
      expect(decodePasswordHash(current).iterations).toBe(GENERATED_SECRET_ITERATIONS);
      expect(verifyPassword(fast.password, current)).toBe(true);
    }
  });

  it("a renamed account is updated in place", async () => {
    const renamed = { ...device(1), name: "desk lamp" };
    await upsertAccount(conn, renamed);
    expect(await upsertAccount(conn, renamed)).toBe("unchanged");
    const accounts = await listAccounts(conn);
    expect(accounts.filter((account) => account.username === renamed.username).map((a) => a.name)).toEqual([
      "desk lamp",
    ]);
  });

  it("go-auth's ACL query grants a device exactly its own topics per access bit", async () => {
    const lamp = device(1);
    expect(await aclTopics(lamp.username, ACCESS_READ)).toEqual([`/appliance/${lamp.uuid}/subscribe`]);
    expect(await aclTopics(lamp.username, ACCESS_SUBSCRIBE)).toEqual([`/appliance/${lamp.uuid}/subscribe`]);
    expect(await aclTopics(lamp.username, ACCESS_WRITE)).toEqual([
      "/app/+/subscribe",
      `/appliance/${lamp.uuid}/publish`,
      "/appliance/meross_lan/publish",
    ]);
  });

  it("rejects an invalid account before touching the database", async () => {
    const before = await listAccounts(conn);
    await expect(upsertAccount(conn, { ...device(2), uuid: "not-a-uuid" })).rejects.toThrow(AccountError);
    await expect(upsertAccount(conn, { ...device(2), kind: "controller" })).rejects.toThrow(/uuid/);
    expect(await listAccounts(conn)).toEqual(before);
  });
});

describe("a username of ' OR '1'='1", () => {
  beforeAll(clearAccounts);

  it("is stored verbatim and found only by itself", async () => {
    await upsertAccount(conn, device(1));
    const odd: Account = {
      username: INJECTION,
      password: "injection-password-1",
      kind: "controller",
      name: "odd",
      secretOrigin: "generated",
    };
    expect(await upsertAccount(conn, odd)).toBe("created");

    expect((await listAccounts(conn)).map((account) => account.username)).toContain(INJECTION);
    expect(verifyPassword(odd.password, (await storedHash(INJECTION)) ?? "")).toBe(true);
    // Would match every row if the value were spliced into the SQL.
    expect(await storedHash(`x${INJECTION}`)).toBeUndefined();
    expect(await aclTopics(`x${INJECTION}`, ACCESS_READ)).toEqual([]);
    expect(await aclTopics(INJECTION, ACCESS_WRITE)).toEqual(["/appliance/+/subscribe"]);
  });

  it("revoking it removes that row only", async () => {
    const removed = await revokeAccount(conn, INJECTION);
    expect(removed?.username).toBe(INJECTION);
    expect((await listAccounts(conn)).map((account) => account.username)).toEqual([device(1).username]);
  });
});

describe("revokeAccount", () => {
  beforeAll(clearAccounts);

  it("finds a device by name, by MAC in any spelling, or by uuid, and removes its ACL rows", async () => {
    const [a, b, c] = [device(1), device(2), device(3)];
    for (const account of [a, b, c]) await upsertAccount(conn, account);

    expect((await revokeAccount(conn, "plug 1"))?.username).toBe(a.username);
    expect((await revokeAccount(conn, b.username.toUpperCase().replaceAll(":", "-")))?.username).toBe(
      b.username,
    );
    expect((await revokeAccount(conn, (c.uuid ?? "").toUpperCase()))?.username).toBe(c.username);

    expect(await listAccounts(conn)).toEqual([]);
    const [acls] = await conn.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM acls");
    expect(Number(acls[0]?.n)).toBe(0);
  });

  it("returns undefined when nothing matches", async () => {
    expect(await revokeAccount(conn, "no such plug")).toBeUndefined();
  });

  it("refuses an ambiguous name and removes nothing", async () => {
    await upsertAccount(conn, device(4, "kitchen"));
    await upsertAccount(conn, device(5, "kitchen"));
    await expect(revokeAccount(conn, "kitchen")).rejects.toThrow(/matches 2 accounts.*MAC address or uuid/);
    expect(await listAccounts(conn)).toHaveLength(2);
  });
});

describe("logins that would share a go-auth cache entry", () => {
  beforeAll(clearAccounts);
  const homeAssistant = controllerAccount("home-assistant", "password-of-home-assistant");
  const home = controllerAccount("home", "password-of-the-home-login");

  it("upsertAccount refuses the second of 'home-assistant' and 'home', in either order", async () => {
    await upsertAccount(conn, homeAssistant);
    await expect(upsertAccount(conn, home)).rejects.toThrow(/"home" and "home-assistant" cannot both exist/);
    await clearAccounts();
    await upsertAccount(conn, home);
    await expect(upsertAccount(conn, homeAssistant)).rejects.toThrow(AccountError);
    expect((await listAccounts(conn)).map((account) => account.username)).toEqual(["home"]);
    await clearAccounts();
  });

  it("syncAccounts refuses both in one set and changes nothing", async () => {
    await expect(syncAccounts(conn, [homeAssistant, home], { kinds: ["controller"] })).rejects.toThrow(
      /cannot both exist/,
    );
    expect(await listAccounts(conn)).toEqual([]);
  });
});

describe("syncAccounts", () => {
  beforeAll(clearAccounts);

  it("makes the rows of the managed kinds equal the given set and leaves other kinds alone", async () => {
    const ha = controllerAccount("homeassistant", "controller-password-123");
    const agent = serviceAccount("session-agent", "service-password-1234");
    await syncAccounts(conn, [ha, agent], { kinds: ["controller", "service"] });

    const first = await syncAccounts(conn, [device(1), device(2)], { kinds: ["device"] });
    expect(first.created.sort()).toEqual([device(1).username, device(2).username].sort());

    const second = await syncAccounts(conn, [device(2), device(3)], { kinds: ["device"] });
    expect(second).toMatchObject({
      created: [device(3).username],
      updated: [],
      unchanged: [device(2).username],
    });
    expect(second.removed.map((account) => account.username)).toEqual([device(1).username]);

    const usernames = (await listAccounts(conn)).map((account) => account.username).sort();
    expect(usernames).toEqual(
      [device(2).username, device(3).username, "homeassistant", "session-agent"].sort(),
    );
    expect(await aclTopics(device(1).username, ACCESS_WRITE)).toEqual([]);
  });

  it("refuses accounts outside the managed kinds or duplicated, changing nothing", async () => {
    const before = await listAccounts(conn);
    await expect(
      syncAccounts(conn, [controllerAccount("other", "controller-password-123")], { kinds: ["device"] }),
    ).rejects.toThrow(/manages only device/);
    await expect(syncAccounts(conn, [device(2), device(2)], { kinds: ["device"] })).rejects.toThrow(
      /appears twice/,
    );
    expect(await listAccounts(conn)).toEqual(before);
  });

  it("rolls back every change when one write fails", async () => {
    const before = await listAccounts(conn);
    const writtenFirst = device(9);
    // A name longer than the column makes the INSERT fail after earlier rows were written.
    const failing = { ...device(8), name: "x".repeat(191) };
    await conn.query("ALTER TABLE accounts MODIFY name VARCHAR(50) NOT NULL");
    try {
      await expect(syncAccounts(conn, [writtenFirst, failing], { kinds: ["device"] })).rejects.toThrow();
    } finally {
      await conn.query("ALTER TABLE accounts MODIFY name VARCHAR(191) NOT NULL");
    }
    expect(await listAccounts(conn)).toEqual(before);
  });

  it("every stored hash decodes to the full key length", async () => {
    const [rows] = await conn.query<RowDataPacket[]>("SELECT password_hash FROM accounts");
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(decodePasswordHash(row.password_hash).key).toHaveLength(PBKDF2_KEY_LENGTH);
    }
  });
});
