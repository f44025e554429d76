import { pbkdf2Sync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deviceMqttCredentials } from "../../lib/meross/credentials.ts";
import {
  ACCESS_READ,
  ACCESS_SUBSCRIBE,
  ACCESS_WRITE,
  AccountError,
  aclRules,
  CHOSEN_SECRET_ITERATIONS,
  cacheKeyClash,
  controllerAccount,
  deviceAccount,
  GENERATED_SECRET_ITERATIONS,
  parseAccount,
  passwordHashIterations,
  serviceAccount,
} from "../../lib/store/accounts.ts";
import {
  decodePasswordHash,
  hashPassword,
  PasswordHashError,
  PBKDF2_ITERATIONS,
  PBKDF2_KEY_LENGTH,
  PBKDF2_MAX_ITERATIONS,
  PBKDF2_SALT_LENGTH,
  STORED_HASH_PATTERN,
  verifyPassword,
} from "../../lib/store/hash.ts";
import { GO_AUTH_QUERIES } from "../../lib/store/queries.ts";
import { PASSWORD_HASH_CHECK, SCHEMA_SQL, SCHEMA_STATEMENTS } from "../../lib/store/schema.ts";
import { MALFORMED_HASHES, WELL_FORMED_HASH } from "../support/malformed-hashes.ts";
import { vectors } from "../support/vectors.ts";

const UUID_A = "1a2b3c4d5e6f708192a3b4c5d6e7f809";
const UUID_B = "ffeeddccbbaa99887766554433221100";
const PASSWORD = "correct horse battery staple";

/** Which rules of `account` grant `bit` on the concrete topic `topic`, MQTT wildcards applied. */
function allowed(rules: { topic: string; access: number }[], topic: string, bit: number): boolean {
  return rules.some((rule) => (rule.access & bit) !== 0 && matches(rule.topic, topic));
}
function matches(pattern: string, topic: string): boolean {
  const p = pattern.split("/");
  const t = topic.split("/");
  return p.length === t.length && p.every((level, i) => level === "+" || level === t[i]);
}

describe("deviceAccount", () => {
  it("logs in with the device's own MQTT credentials, computed by lib/meross/credentials", () => {
    for (const vector of vectors.mqttPassword) {
      const account = deviceAccount(
        { name: "desk lamp", mac: vector.macAddress, uuid: UUID_A },
        vector.key,
        vector.userId,
      );
      expect(account).toMatchObject({ kind: "device", name: "desk lamp", uuid: UUID_A });
      expect(account.password).toBe(vector.password);
      expect(account.username).toBe(
        deviceMqttCredentials(vector.macAddress, vector.key, vector.userId).username,
      );
    }
  });

  it("refuses a device without a valid uuid, naming the field", () => {
    const vector = vectors.mqttPassword[0];
    if (!vector) throw new Error("no mqttPassword vector");
    expect(() =>
      deviceAccount({ name: "lamp", mac: vector.macAddress, uuid: "nope" }, vector.key, vector.userId),
    ).toThrow(/uuid/);
  });
});

describe("passwordHashIterations (hash cost per kind of account and key origin)", () => {
  const lamp = { name: "lamp", mac: "48:e1:e9:00:00:01", uuid: UUID_A };
  const key = "0123456789abcdef-key";

  it("a device whose key the stack generated gets the fast hash", () => {
    expect(passwordHashIterations(deviceAccount(lamp, key, 1, "generated"))).toBe(
      GENERATED_SECRET_ITERATIONS,
    );
  });

  it("a device whose key a person chose keeps the slow hash, and so does one whose origin is unknown", () => {
    expect(passwordHashIterations(deviceAccount(lamp, key, 1, "chosen"))).toBe(CHOSEN_SECRET_ITERATIONS);
    expect(passwordHashIterations(deviceAccount(lamp, key, 1))).toBe(CHOSEN_SECRET_ITERATIONS);
  });

  it("controllers and the session agent have generated passwords: fast hash", () => {
    expect(passwordHashIterations(controllerAccount("home-assistant", PASSWORD))).toBe(
      GENERATED_SECRET_ITERATIONS,
    );
    expect(passwordHashIterations(serviceAccount("session-agent", PASSWORD))).toBe(
      GENERATED_SECRET_ITERATIONS,
    );
  });

  it("the slow hash is go-auth's default cost, the fast one a single salted HMAC round", () => {
    expect(CHOSEN_SECRET_ITERATIONS).toBe(PBKDF2_ITERATIONS);
    expect(GENERATED_SECRET_ITERATIONS).toBe(1);
  });

  it("an account without a valid origin is refused", () => {
    expect(() =>
      parseAccount({ ...controllerAccount("ha", PASSWORD), secretOrigin: "typed" as "chosen" }),
    ).toThrow(/secretOrigin/);
  });
});

describe("controller and service accounts", () => {
  it("use the name as username and keep the password", () => {
    const account = controllerAccount("home-assistant", PASSWORD);
    expect(account).toEqual({
      username: "home-assistant",
      password: PASSWORD,
      kind: "controller",
      name: "home-assistant",
      secretOrigin: "generated",
    });
    expect(serviceAccount("session-agent", PASSWORD).kind).toBe("service");
  });

  it("refuse names with spaces or wildcards and short passwords, without echoing the password", () => {
    expect(() => controllerAccount("home assistant", PASSWORD)).toThrow(AccountError);
    expect(() => controllerAccount("ha/#", PASSWORD)).toThrow(/account name/);
    try {
      serviceAccount("agent", "short-secret");
      expect.unreachable();
    } catch (error) {
      expect(String(error)).toMatch(/at least 16 characters/);
      expect(String(error)).not.toContain("short-secret");
    }
  });
});

describe("aclRules (least privilege)", () => {
  const device = { kind: "device" as const, uuid: UUID_A };
  const deviceRules = aclRules(device);

  it("a device reads and subscribes only its own command topic", () => {
    expect(allowed(deviceRules, `/appliance/${UUID_A}/subscribe`, ACCESS_READ)).toBe(true);
    expect(allowed(deviceRules, `/appliance/${UUID_A}/subscribe`, ACCESS_SUBSCRIBE)).toBe(true);
    expect(allowed(deviceRules, `/appliance/${UUID_B}/subscribe`, ACCESS_READ)).toBe(false);
    expect(allowed(deviceRules, `/appliance/${UUID_B}/subscribe`, ACCESS_SUBSCRIBE)).toBe(false);
    expect(allowed(deviceRules, `/appliance/${UUID_B}/publish`, ACCESS_READ)).toBe(false);
    expect(allowed(deviceRules, "/app/0-ha/subscribe", ACCESS_READ)).toBe(false);
  });

  it("a device writes only its own publish topic and controller reply topics", () => {
    expect(allowed(deviceRules, `/appliance/${UUID_A}/publish`, ACCESS_WRITE)).toBe(true);
    expect(allowed(deviceRules, "/app/1234-homeassistant/subscribe", ACCESS_WRITE)).toBe(true);
    expect(allowed(deviceRules, "/appliance/meross_lan/publish", ACCESS_WRITE)).toBe(true);
    expect(allowed(deviceRules, "/appliance/meross_lan/publish", ACCESS_READ | ACCESS_SUBSCRIBE)).toBe(false);
    expect(allowed(deviceRules, "/appliance/someone_else/publish", ACCESS_WRITE)).toBe(false);
    expect(allowed(deviceRules, `/appliance/${UUID_A}/subscribe`, ACCESS_WRITE)).toBe(false);
    expect(allowed(deviceRules, `/appliance/${UUID_B}/subscribe`, ACCESS_WRITE)).toBe(false);
    expect(allowed(deviceRules, `/appliance/${UUID_B}/publish`, ACCESS_WRITE)).toBe(false);
  });

  it("a device rule never uses a wildcard that reaches another device", () => {
    for (const rule of deviceRules) {
      expect(rule.topic).not.toContain("#");
      expect(rule.topic.startsWith("/appliance/+")).toBe(false);
    }
  });

  it("a controller sees every device and every reply topic, and commands every device", () => {
    const rules = aclRules({ kind: "controller" });
    expect(allowed(rules, `/appliance/${UUID_B}/publish`, ACCESS_READ | ACCESS_SUBSCRIBE)).toBe(true);
    expect(allowed(rules, "/app/0-ha/subscribe", ACCESS_SUBSCRIBE)).toBe(true);
    expect(allowed(rules, "/appliance/meross_lan/publish", ACCESS_READ)).toBe(true);
    expect(allowed(rules, `/appliance/${UUID_B}/subscribe`, ACCESS_WRITE)).toBe(true);
    expect(allowed(rules, `/appliance/${UUID_B}/publish`, ACCESS_WRITE)).toBe(false);
    expect(allowed(rules, `/appliance/${UUID_B}/subscribe`, ACCESS_READ)).toBe(false);
  });

  it("the agent reads device publications and writes device commands only", () => {
    const rules = aclRules({ kind: "service" });
    expect(rules).toEqual([
      { topic: "/appliance/+/publish", access: ACCESS_READ | ACCESS_SUBSCRIBE },
      { topic: "/appliance/+/subscribe", access: ACCESS_WRITE },
    ]);
  });
});

describe("hashPassword (go-auth pbkdf2 format)", () => {
  it("writes PBKDF2$sha512$<iterations>$<salt>$<key> with go-auth's defaults and a full-length key", () => {
    const stored = hashPassword(PASSWORD);
    expect(stored).toMatch(/^PBKDF2\$sha512\$100000\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/);
    const decoded = decodePasswordHash(stored);
    expect(decoded.iterations).toBe(PBKDF2_ITERATIONS);
    expect(decoded.salt).toHaveLength(PBKDF2_SALT_LENGTH);
    expect(decoded.key).toHaveLength(PBKDF2_KEY_LENGTH);
  });

  it("derives the key exactly as go-auth does: PBKDF2-HMAC-SHA512 over the decoded salt", () => {
    const salt = Buffer.from("00112233445566778899aabbccddeeff", "hex");
    const stored = hashPassword(PASSWORD, { salt, iterations: 1000 });
    const expectedKey = pbkdf2Sync(PASSWORD, salt, 1000, 32, "sha512").toString("base64");
    expect(stored).toBe(`PBKDF2$sha512$1000$${salt.toString("base64")}$${expectedKey}`);
  });

  it("uses a fresh random salt on every call", () => {
    const hashes = Array.from({ length: 5 }, () => hashPassword(PASSWORD, { iterations: 1 }));
    const salts = new Set(hashes.map((stored) => decodePasswordHash(stored).salt.toString("hex")));
    expect(salts.size).toBe(hashes.length);
  });

  it("verifyPassword accepts the password and rejects others, prefixes and truncated keys", () => {
    const stored = hashPassword(PASSWORD, { iterations: 1000 });
    expect(verifyPassword(PASSWORD, stored)).toBe(true);
    expect(verifyPassword(`${PASSWORD}!`, stored)).toBe(false);
    expect(verifyPassword(PASSWORD.slice(0, -1), stored)).toBe(false);
    const parts = stored.split("$");
    const truncatedKey = Buffer.from(parts[4] ?? "", "base64")
      .subarray(0, 4)
      .toString("base64");
    expect(verifyPassword(PASSWORD, [...parts.slice(0, 4), truncatedKey].join("$"))).toBe(false);
    expect(verifyPassword(PASSWORD, [...parts.slice(0, 4), ""].join("$"))).toBe(false);
    expect(() => decodePasswordHash([...parts.slice(0, 4), ""].join("$"))).toThrow(/non-empty/);
  });
});

describe("cacheKeyClash (go-auth's plain-text cache key auth-<username>-<password>)", () => {
  it.each([
    [["home", "home-assistant"], { shorter: "home", longer: "home-assistant" }],
    [["session-agent", "session"], { shorter: "session", longer: "session-agent" }],
    [["a-b-c", "a-b", "x"], { shorter: "a-b", longer: "a-b-c" }],
  ])("finds %j", (usernames, clash) => {
    expect(cacheKeyClash(usernames)).toEqual(clash);
    const rest = clash.longer.slice(clash.shorter.length + 1);
    // The collision it guards against: the shorter login with a crafted password gives the same key.
    expect(`auth-${clash.shorter}-${rest}-pw`).toBe(`auth-${clash.longer}-pw`);
  });

  it("accepts logins that only look alike, and device MACs beside any controller name", () => {
    const mac = deviceAccount({ name: "plug", mac: "48:e1:e9:00:00:01", uuid: UUID_A }, "k", 0).username;
    expect(
      cacheKeyClash([
        "home-assistant",
        "home.assistant",
        "home_assistant",
        "homeassistant",
        "session-agent",
        mac,
      ]),
    ).toBeUndefined();
    expect(cacheKeyClash(["home-", "home"])).toEqual({ shorter: "home", longer: "home-" });
    expect(cacheKeyClash([])).toBeUndefined();
  });

  it("without a clash, an auth cache key names exactly one login whatever the passwords", () => {
    const usernames = ["home-assistant", "home-assistant2", "a-b", "b", "session-agent"];
    expect(cacheKeyClash(usernames)).toBeUndefined();
    const passwords = ["x", "-", "assistant-x", "b-x", "agent-", "x-b-", ""];
    const owners = new Map<string, string>();
    for (const username of usernames) {
      for (const password of passwords) {
        const key = `auth-${username}-${password}`;
        // Any login that could produce this key with some password: it must be the same username.
        for (const other of usernames) {
          if (key.startsWith(`auth-${other}-`)) expect(other).toBe(username);
        }
        owners.set(key, username);
      }
    }
    expect(owners.size).toBe(usernames.length * passwords.length);
  });
});

describe("the stored hash format (the schema's CHECK constraint)", () => {
  const storable = new RegExp(STORED_HASH_PATTERN);

  it("matches what lib/store writes, and the highest iteration count it allows", () => {
    for (const iterations of [1, 1000]) {
      expect(hashPassword(PASSWORD, { iterations })).toMatch(storable);
    }
    expect(WELL_FORMED_HASH).toMatch(storable);
    // Deriving ten million iterations takes seconds: the bound is a text check, so swap the count in.
    const highest = WELL_FORMED_HASH.replace("$1000$", `$${PBKDF2_MAX_ITERATIONS}$`);
    expect(highest).toMatch(storable);
    expect(decodePasswordHash(highest).iterations).toBe(PBKDF2_MAX_ITERATIONS);
  });

  it.each(Object.entries(MALFORMED_HASHES))("refuses %s, and decodePasswordHash agrees", (_, stored) => {
    expect(stored).not.toMatch(storable);
    expect(() => decodePasswordHash(stored)).toThrow(PasswordHashError);
  });

  it("refuses to write an iteration count above the bound", () => {
    expect(() => hashPassword(PASSWORD, { iterations: PBKDF2_MAX_ITERATIONS + 1 })).toThrow(
      /from 1 to 9999999/,
    );
  });

  it("is one SQL literal without quotes or backslashes, in the accounts table's CREATE statement", () => {
    expect(STORED_HASH_PATTERN).not.toMatch(/['\\]/);
    expect(SCHEMA_STATEMENTS[0]).toContain(
      `CONSTRAINT ${PASSWORD_HASH_CHECK.name} CHECK (${PASSWORD_HASH_CHECK.condition})`,
    );
  });
});

describe("SQL", () => {
  it("go-auth's queries bind every value and test the access bit exactly", () => {
    expect(GO_AUTH_QUERIES.user.match(/\?/g)).toHaveLength(1);
    expect(GO_AUTH_QUERIES.acl.match(/\?/g)).toHaveLength(2);
    expect(GO_AUTH_QUERIES.acl).toContain("(rw & ?) <> 0");
    expect(GO_AUTH_QUERIES.superuser).toBeUndefined();
    for (const query of Object.values(GO_AUTH_QUERIES)) {
      expect(query).not.toContain("\n");
    }
  });

  it("the schema avoids MySQL-only upsert syntax and compares usernames byte for byte", () => {
    expect(SCHEMA_STATEMENTS).toHaveLength(2);
    expect(SCHEMA_SQL).not.toMatch(/\bAS new\b/i);
    expect(SCHEMA_SQL).toContain("COLLATE=utf8mb4_bin");
    expect(SCHEMA_SQL).toMatch(/UNIQUE KEY accounts_username \(username\)/);
  });
});
