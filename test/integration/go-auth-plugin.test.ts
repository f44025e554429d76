import { setTimeout as sleep } from "node:timers/promises";
import mqtt from "mqtt";
import type { Connection } from "mysql2/promise";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { goAuthPluginInfo } from "../../lib/local-stack/go-auth.ts";
import { type MariaDbInstance, startMariaDb } from "../../lib/local-stack/mariadb.ts";
import {
  type MosquittoInstance,
  type StartMosquittoOptions,
  startMosquitto,
} from "../../lib/local-stack/mosquitto.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { freePort } from "../../lib/local-stack/ports.ts";
import { controllerAccount, deviceAccount } from "../../lib/store/accounts.ts";
import { applySchema, revokeAccount, upsertAccount } from "../../lib/store/database.ts";
import { PASSWORD_HASH_CHECK } from "../../lib/store/schema.ts";
import { MALFORMED_HASHES } from "../support/malformed-hashes.ts";

/**
 * What the auth plugin the suite runs (go-auth 3.5.0, or the stand-in that follows it) does with the
 * settings and rows the kit produces, and, where the kit must keep away from it, with those it never
 * produces: cache lifetimes, cached denials, what 0 means, the cache key, a malformed stored hash and
 * a database that is not there at start. The kit's own guards are tested beside their code.
 */

const HOST = "broker.test";
const NOT_AUTHORIZED = 5;
/** A cache lifetime short enough to wait out, long enough that a check right after a change is a hit. */
const CACHE_SECONDS = 2;
const AFTER_EXPIRY_MS = CACHE_SECONDS * 1000 + 700;

let pki: LocalPki;
let db: MariaDbInstance;
let conn: Connection;
const brokers: MosquittoInstance[] = [];

async function broker(options: Partial<StartMosquittoOptions> = {}): Promise<MosquittoInstance> {
  const started = await startMosquitto({
    variant: "mysql",
    pki,
    mysql: { ...db, authCacheSeconds: CACHE_SECONDS, aclCacheSeconds: CACHE_SECONDS },
    ...options,
  });
  brokers.push(started);
  return started;
}

/** "accepted", or the CONNACK code the broker refused the login with. */
async function login(
  target: MosquittoInstance,
  username: string,
  password: string,
): Promise<"accepted" | number> {
  try {
    const client = await mqtt.connectAsync(target.url, {
      ca: pki.caPem,
      servername: HOST,
      username,
      password,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    });
    await client.endAsync(true);
    return "accepted";
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "number") return code;
    throw error;
  }
}

/** Resumes the halted MariaDB and gives the test a new connection (the old one died with it). */
async function restartedDatabase(): Promise<void> {
  await db.resume();
  conn.destroy();
  conn = await db.connect();
}

/**
 * Logs in every 400 ms for twice the cache lifetime; returns how long after the start the first
 * refusal came, or Infinity if every login was accepted.
 */
async function keepLoggingIn(
  target: MosquittoInstance,
  account: { username: string; password: string },
): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < 2 * AFTER_EXPIRY_MS) {
    if ((await login(target, account.username, account.password)) !== "accepted") return Date.now() - started;
    await sleep(400);
  }
  return Number.POSITIVE_INFINITY;
}

let serial = 0;
/** A fresh controller account (the kit's kind with the plainest login). */
const freshController = (prefix = "ctl") =>
  controllerAccount(`${prefix}${++serial}`, `password-of-${prefix}-${serial}-x`);

beforeAll(async () => {
  console.info(`auth plugin under test: ${goAuthPluginInfo()}`);
  pki = await makeLocalPki({ host: HOST });
  db = await startMariaDb();
  conn = await db.connect();
  await applySchema(conn);
});

afterEach(async (context) => {
  if (context.task.result?.state === "fail") {
    for (const started of brokers) console.info(started.output().split("\n").slice(-30).join("\n"));
  }
  await Promise.all(brokers.splice(0).map((started) => started.stop()));
});

afterAll(async () => {
  await conn?.end();
  await db?.stop();
  await pki?.cleanup();
});

describe("the auth cache, as the kit configures it", () => {
  it("a granted login keeps working for authCacheSeconds after its account is removed, then is refused", async () => {
    const target = await broker();
    const account = freshController();
    await upsertAccount(conn, account);
    expect(await login(target, account.username, account.password)).toBe("accepted");
    await revokeAccount(conn, account.username);
    expect(await login(target, account.username, account.password)).toBe("accepted");
    await sleep(AFTER_EXPIRY_MS);
    expect(await login(target, account.username, account.password)).toBe(NOT_AUTHORIZED);
  });

  it("a denial is cached as well: an account created right after a refused login waits for the expiry", async () => {
    const target = await broker();
    const account = freshController();
    expect(await login(target, account.username, account.password)).toBe(NOT_AUTHORIZED);
    await upsertAccount(conn, account);
    expect(await login(target, account.username, account.password)).toBe(NOT_AUTHORIZED);
    await sleep(AFTER_EXPIRY_MS);
    expect(await login(target, account.username, account.password)).toBe("accepted");
  });

  it("logins during the lifetime do not extend it (cache_refresh false): a busy client cannot keep a removed login alive", async () => {
    const target = await broker();
    const account = freshController();
    await upsertAccount(conn, account);
    expect(await login(target, account.username, account.password)).toBe("accepted");
    await revokeAccount(conn, account.username);
    const refused = await keepLoggingIn(target, account);
    expect(refused).toBeLessThan(AFTER_EXPIRY_MS);
  });

  it("both lifetimes 0 turn the cache off: a removed account is refused at once", async () => {
    const target = await broker({ mysql: { ...db, authCacheSeconds: 0, aclCacheSeconds: 0 } });
    expect(target.config).toMatch(/^auth_opt_cache false$/m);
    const account = freshController();
    await upsertAccount(conn, account);
    expect(await login(target, account.username, account.password)).toBe("accepted");
    await revokeAccount(conn, account.username);
    expect(await login(target, account.username, account.password)).toBe(NOT_AUTHORIZED);
  });
});

describe("start order and database faults, as the kit configures them", () => {
  it("Mosquitto started before MariaDB waits for it, and a device logs in once MariaDB is up", async () => {
    const account = deviceAccount(
      { name: "late plug", mac: "48:e1:e9:0a:0b:0c", uuid: "0a".repeat(16) },
      "k",
      1,
    );
    await upsertAccount(conn, account);
    await db.halt();
    let resumed = false;
    try {
      const target = await broker({ noWait: true });
      await sleep(5_000); // longer than go-auth's default single try and its 2 s pause
      expect(target.exitStatus()).toBe(undefined);
      expect(target.output()).toMatch(/ping database mysql error, will retry in 2s/);
      await restartedDatabase();
      resumed = true;
      await target.listening();
      expect(await login(target, account.username, account.password)).toBe("accepted");
    } finally {
      if (!resumed) await restartedDatabase();
    }
  });

  it("after a MariaDB restart the next login and ACL check succeed on the pooled connections", async () => {
    // Cache off, so each check below really reaches the database.
    const target = await broker({ mysql: { ...db, authCacheSeconds: 0, aclCacheSeconds: 0 } });
    const account = freshController();
    await upsertAccount(conn, account);
    expect(await login(target, account.username, account.password)).toBe("accepted");
    await db.halt();
    await restartedDatabase();
    const client = await mqtt.connectAsync(target.url, {
      ca: pki.caPem,
      servername: HOST,
      username: account.username,
      password: account.password,
      reconnectPeriod: 0,
    });
    await expect(client.subscribeAsync("/appliance/+/publish")).resolves.toHaveLength(1);
    await client.endAsync(true);
  });
});

describe("go-auth 3.5.0 behaviour the kit keeps away from", () => {
  it("auth_cache_seconds 0 with the cache on is not 'no cache' (it is ttlcache's 60 s default)", async () => {
    const target = await broker({ goAuthOptions: { auth_cache_seconds: "0" } });
    const account = freshController();
    await upsertAccount(conn, account);
    expect(await login(target, account.username, account.password)).toBe("accepted");
    await revokeAccount(conn, account.username);
    await sleep(AFTER_EXPIRY_MS);
    expect(await login(target, account.username, account.password)).toBe("accepted");
  });

  it("with cache_refresh true every hit extends the entry, so a busy client keeps a removed login alive", async () => {
    const target = await broker({ goAuthOptions: { cache_refresh: "true" } });
    const account = freshController();
    await upsertAccount(conn, account);
    expect(await login(target, account.username, account.password)).toBe("accepted");
    await revokeAccount(conn, account.username);
    expect(await keepLoggingIn(target, account)).toBe(Number.POSITIVE_INFINITY);
  });

  it("the cache key is the plain text auth-<user>-<password>: 'home' with 'assistant-<pw>' rides on 'home-assistant', with no rights", async () => {
    const target = await broker();
    const account = controllerAccount("home-assistant", "the-home-assistant-password");
    await upsertAccount(conn, account);
    expect(await login(target, "home", `assistant-${account.password}`)).toBe(NOT_AUTHORIZED);
    await sleep(AFTER_EXPIRY_MS); // let that denial expire, or it would answer the line below
    expect(await login(target, account.username, account.password)).toBe("accepted");
    const rider = await mqtt.connectAsync(target.url, {
      ca: pki.caPem,
      servername: HOST,
      username: "home",
      password: `assistant-${account.password}`,
      reconnectPeriod: 0,
    });
    // The kit never has a 'home' beside a 'home-assistant' (lib/store cacheKeyClash), so a rider
    // is a login without rows: no ACL grants it anything.
    // MQTT.js turns a SUBACK of 0x80 (refused) into this error.
    await expect(rider.subscribeAsync("/appliance/+/publish")).rejects.toThrow(/Subscribe error/);
    await rider.endAsync(true);
    const owner = await mqtt.connectAsync(target.url, {
      ca: pki.caPem,
      servername: HOST,
      ...account,
      reconnectPeriod: 0,
    });
    await expect(owner.subscribeAsync("/appliance/+/publish")).resolves.toHaveLength(1);
    await owner.endAsync(true);
    await revokeAccount(conn, account.username);
  });

  it("a stored hash with fewer than five fields makes the plugin panic and Mosquitto exit", async () => {
    const target = await broker();
    const account = freshController();
    await upsertAccount(conn, account);
    // Only possible with the schema's constraint gone, which is what this test shows it is for.
    await conn.query(`ALTER TABLE accounts DROP CONSTRAINT ${PASSWORD_HASH_CHECK.name}`);
    try {
      await conn.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", [
        MALFORMED_HASHES["four fields (go-auth panics)"],
        account.username,
      ]);
      // The connection dies with the broker, before any CONNACK: nothing to await there.
      void login(target, account.username, account.password).catch(() => undefined);
      const deadline = Date.now() + 10_000;
      while (target.exitStatus() === undefined && Date.now() < deadline) await sleep(50);
      expect(target.exitStatus()).not.toBe(undefined);
      expect(target.exitStatus()).not.toBe(0);
      expect(target.output()).toMatch(/panic: runtime error: index out of range/);
    } finally {
      await revokeAccount(conn, account.username);
      await applySchema(conn);
    }
  });

  it("with MySQL unreachable at start and a positive connect-try count, Mosquitto exits after the tries", async () => {
    const closedPort = await freePort();
    const started = Date.now();
    await expect(
      broker({
        mysql: { ...db, port: closedPort, authCacheSeconds: CACHE_SECONDS, aclCacheSeconds: CACHE_SECONDS },
        goAuthOptions: { mysql_connect_tries: "2" },
      }),
    ).rejects.toThrow(/mosquitto exited \(1\)[\s\S]*couldn't ping database/);
    // Two pings, each followed by go-auth's 2 s pause.
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_000);
  });
});
