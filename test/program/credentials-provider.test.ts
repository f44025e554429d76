import { createRequire } from "node:module";
import * as pulumi from "@pulumi/pulumi";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  accountRowsProvider,
  bundleCredentialsRuntime,
  sha256,
} from "../../components/credentials-provider.ts";
import type { AccountRowsInputs, AccountRowsOutputs } from "../../components/credentials-runtime.ts";
import { type MariaDbInstance, startMariaDb } from "../../lib/local-stack/mariadb.ts";
import {
  CHOSEN_SECRET_ITERATIONS,
  controllerAccount,
  deviceAccount,
  GENERATED_SECRET_ITERATIONS,
  serviceAccount,
} from "../../lib/store/accounts.ts";
import { decodePasswordHash, PBKDF2_KEY_LENGTH, verifyPassword } from "../../lib/store/hash.ts";
import { GO_AUTH_QUERIES } from "../../lib/store/queries.ts";

/**
 * The AccountRows provider exactly as Pulumi ships it: serialized with pulumi.runtime.serializeFunction
 * (what pulumi.dynamic.Resource does), loaded back with require-from-string (what Pulumi's dynamic
 * provider host does), then create/update/delete run against a real MariaDB.
 */

const requireFromString = createRequire(import.meta.url)("require-from-string") as (code: string) => {
  handler: () => pulumi.dynamic.ResourceProvider;
};

const KEY = "0123456789abcdef0123456789abcdef";
const kitchen = { name: "kitchen", mac: "48:e1:e9:00:00:01", uuid: "1".repeat(32) };
const desk = { name: "desk", mac: "48:e1:e9:00:00:02", uuid: "2".repeat(32) };

let db: MariaDbInstance;
let provider: pulumi.dynamic.ResourceProvider;
let serializedText: string;
let runtimeSource: string;

beforeAll(async () => {
  runtimeSource = bundleCredentialsRuntime();
  const original = accountRowsProvider(runtimeSource);
  const serialized = await pulumi.runtime.serializeFunction(() => original, { allowSecrets: true });
  serializedText = serialized.text;
  provider = requireFromString(serializedText).handler();
  db = await startMariaDb();
});

afterAll(async () => {
  await db?.stop();
});

function inputs(accounts: AccountRowsInputs["accounts"], containerId = "container-1"): AccountRowsInputs {
  return {
    admin: { host: db.host, port: db.port, user: db.user, password: db.password, database: db.database },
    grants: [
      { user: "mqtt_broker", password: "broker-password-0123456789", access: "read" },
      { user: "provisioner", password: "provisioner-password-0123456", access: "readwrite" },
    ],
    accounts,
    databaseContainerId: containerId,
    runtimeSha256: sha256(runtimeSource),
  };
}

async function rows(): Promise<{ username: string; kind: string; password_hash: string }[]> {
  const conn = await db.connect();
  try {
    const [result] = await conn.query("SELECT username, kind, password_hash FROM accounts ORDER BY username");
    return result as { username: string; kind: string; password_hash: string }[];
  } finally {
    await conn.end();
  }
}

async function asLogin(user: string, password: string) {
  return mysql.createConnection({ host: db.host, port: db.port, user, password, database: db.database });
}

describe("the serialized AccountRows provider", () => {
  it("captures no secret and no module of the program, only the bundle text", () => {
    expect(serializedText).toContain("new Function");
    expect(serializedText).not.toMatch(/require\(["'][^"']*credentials-runtime/);
    expect(serializedText).not.toContain(KEY);
  });

  it("creates the schema, the two logins and one row per account, with full-length go-auth hashes", async () => {
    const accounts = [
      deviceAccount(kitchen, KEY, "1234"),
      controllerAccount("home-assistant", "controller-password-123"),
      serviceAccount("session-agent", "service-password-1234567"),
    ];
    const result = await provider.create(inputs(accounts));
    const outs = result.outs as AccountRowsOutputs;
    expect(outs.usernames).toEqual(["48:e1:e9:00:00:01", "home-assistant", "session-agent"]);

    const stored = await rows();
    expect(stored.map((row) => [row.username, row.kind])).toEqual([
      ["48:e1:e9:00:00:01", "device"],
      ["home-assistant", "controller"],
      ["session-agent", "service"],
    ]);
    for (const row of stored) {
      expect(decodePasswordHash(row.password_hash).key).toHaveLength(PBKDF2_KEY_LENGTH);
    }
    const device = accounts[0];
    expect(verifyPassword(device?.password ?? "", stored[0]?.password_hash ?? "")).toBe(true);
  });

  it("gives go-auth's login exactly what its queries need: read, not write", async () => {
    const broker = await asLogin("mqtt_broker", "broker-password-0123456789");
    try {
      const [users] = await broker.execute(GO_AUTH_QUERIES.user, ["48:e1:e9:00:00:01"]);
      expect(users).toHaveLength(1);
      const [topics] = await broker.execute(GO_AUTH_QUERIES.acl, ["48:e1:e9:00:00:01", 2]);
      expect((topics as { topic: string }[]).map((row) => row.topic)).toContain(
        `/appliance/${kitchen.uuid}/publish`,
      );
      await expect(broker.query("DELETE FROM accounts")).rejects.toThrow(/denied/i);
    } finally {
      await broker.end();
    }
  });

  it("gives the scripts' login row access but no schema changes", async () => {
    const provisioner = await asLogin("provisioner", "provisioner-password-0123456");
    try {
      const [result] = await provisioner.query("SELECT COUNT(*) AS n FROM accounts");
      expect((result as { n: number }[])[0]?.n).toBe(3);
      await expect(provisioner.query("DROP TABLE acls")).rejects.toThrow(/denied/i);
    } finally {
      await provisioner.end();
    }
  });

  it("reports a change only when the inputs change", async () => {
    const accounts = [deviceAccount(kitchen, KEY, "1234")];
    const same = inputs(accounts);
    expect((await provider.diff?.("id", same, same))?.changes).toBe(false);
    expect((await provider.diff?.("id", same, inputs(accounts, "container-2")))?.changes).toBe(true);
    expect(
      (await provider.diff?.("id", same, inputs([deviceAccount(kitchen, `${KEY}x`, "1234")])))?.changes,
    ).toBe(true);
  });

  it("updates to follow the config: new key, added and removed devices", async () => {
    const olds = inputs([deviceAccount(kitchen, KEY, "1234")]);
    const rekeyed = deviceAccount(kitchen, "another-key-0123456789", "1234");
    await provider.update?.(
      "id",
      olds,
      inputs([rekeyed, deviceAccount(desk, "another-key-0123456789", "1234")]),
    );
    const stored = await rows();
    expect(stored.map((row) => row.username)).toEqual(["48:e1:e9:00:00:01", "48:e1:e9:00:00:02"]);
    expect(verifyPassword(rekeyed.password, stored[0]?.password_hash ?? "")).toBe(true);
  });

  it("re-hashes the rows on the next up when a key's origin or the hash policy (part of the runtime) changes", async () => {
    const chosen = inputs([deviceAccount(kitchen, KEY, "1234", "chosen")]);
    const generated = inputs([deviceAccount(kitchen, KEY, "1234", "generated")]);
    const iterations = async () => decodePasswordHash((await rows())[0]?.password_hash ?? "").iterations;
    await provider.update?.("id", generated, chosen);
    expect(await iterations()).toBe(CHOSEN_SECRET_ITERATIONS);

    expect((await provider.diff?.("id", chosen, generated))?.changes).toBe(true);
    await provider.update?.("id", chosen, generated);
    expect(await iterations()).toBe(GENERATED_SECRET_ITERATIONS);
    // A changed policy ships as a changed bundle, whose hash is an input.
    expect(
      (await provider.diff?.("id", generated, { ...generated, runtimeSha256: "0".repeat(64) }))?.changes,
    ).toBe(true);
  });

  it("keeps the logins' passwords out of the error when it may not create them", async () => {
    const conn = await db.connect();
    try {
      await conn.query("CREATE USER IF NOT EXISTS 'rows_only'@'%' IDENTIFIED BY 'rows-only-password-0123'");
      await conn.query(`GRANT ALL PRIVILEGES ON \`${db.database}\`.* TO 'rows_only'@'%'`);
    } finally {
      await conn.end();
    }
    const limited = inputs([]);
    limited.admin = { ...limited.admin, user: "rows_only", password: "rows-only-password-0123" };
    const failure = await provider.create(limited).then(
      () => undefined,
      (error: unknown) => error as Error & { sql?: string },
    );
    expect(failure?.message).toMatch(/CREATE USER/);
    expect(failure?.sql).toBeUndefined();
    const everything = `${failure?.message} ${failure?.stack} ${JSON.stringify(failure)}`;
    expect(everything).not.toContain("broker-password-0123456789");
  });

  it("deletes every row it wrote, and tolerates a database that is already gone", async () => {
    await provider.delete?.("id", inputs([deviceAccount(desk, KEY, "1234")]));
    expect(await rows()).toEqual([]);
    const gone = { ...inputs([]), admin: { ...inputs([]).admin, port: 1 } };
    await expect(provider.delete?.("id", gone)).resolves.toBeUndefined();
  });
});
