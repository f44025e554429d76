import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  DEFAULT_IMAGES,
  deviceKeyOrigin,
  deviceKeySecretOrigin,
  parseStackConfig,
  rawStackConfig,
  SERVICE_ACCOUNT_NAME,
  type StackConfigInput,
  stackConfigSchema,
} from "../../lib/config/stack.ts";

const minimal = { brokerHost: "192.168.1.10", userId: "1234" };
const device = (n: number) => ({
  name: `plug ${n}`,
  mac: `48:e1:e9:00:00:0${n}`,
  uuid: `${n}`.repeat(32),
});

function errorOf(input: unknown): string {
  try {
    parseStackConfig(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected the config to be rejected");
}

describe("parseStackConfig accepts", () => {
  it("the two required keys and fills every default", () => {
    expect(parseStackConfig(minimal)).toEqual({
      brokerHost: "192.168.1.10",
      brokerExtraNames: [],
      tlsPort: 8883,
      tlsBindAddress: "0.0.0.0",
      authMode: "mysql",
      keyMode: "per-device",
      userId: "1234",
      devices: [],
      controllers: [],
      certificateValidityDays: 365,
      certificateRenewalDays: 30,
      caValidityDays: 3650,
      images: DEFAULT_IMAGES,
      databasePort: 13306,
      authCacheSeconds: 30,
      aclCacheSeconds: 30,
      sessionAnswers: "agent",
      brokerDebugLog: false,
    });
  });

  it("devices with their key scheme and generation, as provisioning writes them (strings)", () => {
    const config = parseStackConfig({
      ...minimal,
      keyMode: "shared",
      deviceKeySecret: "s".repeat(32),
      devices: [device(1), { ...device(2), keyScheme: "per-device", keyGeneration: "3" }],
    });
    expect(config.keyMode).toBe("shared");
    expect(config.devices).toEqual([device(1), { ...device(2), keyScheme: "per-device", keyGeneration: 3 }]);
  });

  it("strings for numbers, as Pulumi config stores them, and normalises MACs, uuids and hosts", () => {
    const config = parseStackConfig({
      ...minimal,
      brokerHost: "Broker.Home.Arpa",
      userId: 0,
      tlsPort: "18883",
      databasePort: "3307",
      certificateValidityDays: "90",
      certificateRenewalDays: "0",
      devices: [{ name: "Kitchen", mac: "48-E1-E9-B6-2C-49", uuid: "ABCDEF0123456789ABCDEF0123456789" }],
      plainListener: { address: "127.0.0.1" },
      images: { database: "mysql:8.4" },
      timezone: "Europe/Berlin",
      deviceKey: "0123456789abcdef",
    });
    expect(config.brokerHost).toBe("broker.home.arpa");
    expect(config.userId).toBe("0");
    expect(config.tlsPort).toBe(18883);
    expect(config.databasePort).toBe(3307);
    expect(config.certificateRenewalDays).toBe(0);
    expect(config.devices[0]).toEqual({
      name: "Kitchen",
      mac: "48:e1:e9:b6:2c:49",
      uuid: "abcdef0123456789abcdef0123456789",
    });
    expect(config.plainListener).toEqual({ address: "127.0.0.1", port: 1883 });
    expect(config.images).toEqual({ ...DEFAULT_IMAGES, database: "mysql:8.4" });
    expect(config.timezone).toBe("Europe/Berlin");
    expect(config.sessionAnswers).toBe("agent");
  });

  it("broker debug logging from Pulumi's text or a boolean, off by default", () => {
    expect(parseStackConfig(minimal).brokerDebugLog).toBe(false);
    expect(parseStackConfig({ ...minimal, brokerDebugLog: "true" }).brokerDebugLog).toBe(true);
    expect(parseStackConfig({ ...minimal, brokerDebugLog: false }).brokerDebugLog).toBe(false);
  });

  it("meross_lan answering the devices, with the zone left to it", () => {
    expect(parseStackConfig({ ...minimal, sessionAnswers: "meross_lan" }).sessionAnswers).toBe("meross_lan");
  });

  it("pinned default images, never a floating tag", () => {
    for (const image of Object.values(DEFAULT_IMAGES)) {
      expect(image).toMatch(/:[^:]+$/);
      expect(image).not.toMatch(/:latest$/);
    }
  });

  it("the database port equal to the TLS port in the anonymous variant, which runs no database", () => {
    expect(() => parseStackConfig({ ...minimal, authMode: "anonymous", databasePort: 8883 })).not.toThrow();
  });
});

describe("parseStackConfig rejects, naming the key, the value and what is allowed", () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      "a missing broker host",
      { brokerHost: undefined },
      /brokerHost: is not set; run `pulumi config set brokerHost <value>`/,
    ],
    ["a missing userId", { userId: undefined }, /userId: is not set; .*such as 0 or 1234/],
    [
      "a bad broker host",
      { brokerHost: "192.168.1.300" },
      /brokerHost: "192.168.1.300" must be an IPv4 address or a DNS name/,
    ],
    [
      "a bad extra name",
      { brokerExtraNames: ["ok.lan", "no spaces"] },
      /brokerExtraNames\[1\]: "no spaces" must be an IPv4/,
    ],
    [
      "extra names that are not a list",
      { brokerExtraNames: "a.lan" },
      /brokerExtraNames: "a.lan" must be a list/,
    ],
    ["a TLS port out of range", { tlsPort: 70000 }, /tlsPort: 70000 must be a port from 1 to 65535/],
    ["a TLS port that is not a number", { tlsPort: "abc" }, /tlsPort: "abc" must be a number/],
    [
      "a TLS bind address that is a name",
      { tlsBindAddress: "lan" },
      /tlsBindAddress: "lan" must be an IPv4 address/,
    ],
    [
      "a plain listener without address",
      { plainListener: { port: 1883 } },
      /plainListener.address: is not set; run `pulumi config set --path 'plainListener.address' <value>`/,
    ],
    [
      "a plain listener on a name",
      { plainListener: { address: "localhost" } },
      /plainListener.address: "localhost" must be an IPv4/,
    ],
    [
      "an unknown auth mode",
      { authMode: "open" },
      /authMode: "open" must be "mysql" \(logins per device\) or "anonymous"/,
    ],
    ["a userId with letters", { userId: "12a" }, /userId: "12a" must be a number of 1 to 20 digits/],
    ["a negative userId", { userId: -1 }, /userId: -1 /],
    [
      "an unknown key mode",
      { keyMode: "per-plug" },
      /keyMode: "per-plug" must be "per-device" \(a key of its own for each device\) or "shared"/,
    ],
    [
      "a device's unknown key scheme",
      { devices: [{ ...device(1), keyScheme: "own" }] },
      /devices\[0\].keyScheme: "own" must be "per-device"/,
    ],
    [
      "a key generation 0",
      { devices: [{ ...device(1), keyScheme: "per-device", keyGeneration: "0" }] },
      /devices\[0\].keyGeneration: "0" must be 1 or more/,
    ],
    [
      "a key generation on a shared-key device",
      { devices: [{ ...device(1), keyGeneration: 2 }] },
      /devices\[0\].keyGeneration: 2 only means something with keyScheme "per-device"/,
    ],
    [
      "a device marked to keep the previous secret without previousDeviceKeySecret",
      { devices: [{ ...device(1), keyScheme: "per-device", keySecret: "previous" }] },
      /devices\[0\].keySecret: "previous" needs previousDeviceKeySecret/,
    ],
    [
      "a device without uuid",
      { devices: [{ name: "a", mac: "48:e1:e9:00:00:01" }] },
      /devices\[0\].uuid: is not set; run `pulumi config set --path 'devices\[0\].uuid' <value>`/,
    ],
    [
      "a device with a bad MAC",
      { devices: [{ ...device(1), mac: "48:e1:e9:00:00" }] },
      /devices\[0\].mac: "48:e1:e9:00:00" must be a MAC address/,
    ],
    [
      "a device with a short uuid",
      { devices: [{ ...device(1), uuid: "abc" }] },
      /devices\[0\].uuid: "abc" must be the device uuid: 32 hex digits/,
    ],
    [
      "a device name with a slash",
      { devices: [{ ...device(1), name: "a/b" }] },
      /devices\[0\].name: "a\/b" must be 1 to 64 letters/,
    ],
    [
      "a device with an unknown key",
      { devices: [{ ...device(1), key: "x" }] },
      /devices\[0\]: unknown key "key"/,
    ],
    [
      "two devices with one name (any case)",
      { devices: [device(1), { ...device(2), name: "PLUG 1" }] },
      /devices\[1\].name: "PLUG 1" is already used by devices\[0\]/,
    ],
    [
      "two devices with one MAC (any spelling)",
      { devices: [device(1), { ...device(2), mac: "48E1E9000001" }] },
      /devices\[1\].mac: "48E1E9000001" is already used by devices\[0\]/,
    ],
    [
      "two devices with one uuid",
      { devices: [device(1), { ...device(2), uuid: "1".repeat(32) }] },
      /devices\[1\].uuid: "1{32}" is already used by devices\[0\]/,
    ],
    [
      "two controllers with one name",
      { controllers: [{ name: "ha" }, { name: "HA" }] },
      /controllers\[1\].name: "HA" is already used by controllers\[0\]/,
    ],
    [
      "a controller with a space in its login",
      { controllers: [{ name: "home assistant" }] },
      /controllers\[0\].name: "home assistant" must be 1 to 64 letters/,
    ],
    [
      "a controller taking the agent's login",
      { controllers: [{ name: SERVICE_ACCOUNT_NAME }] },
      /controllers\[0\].name: "session-agent" is reserved for the session agent/,
    ],
    [
      "two controllers whose logins would share go-auth cache entries",
      { controllers: [{ name: "home-assistant" }, { name: "home" }] },
      /controllers\[1\].name: "home" logins "home" and "home-assistant" cannot both exist: go-auth caches/,
    ],
    [
      "a controller whose login is the agent's up to a '-'",
      { controllers: [{ name: "session" }] },
      /controllers\[0\].name: "session" logins "session" and "session-agent" cannot both exist/,
    ],
    [
      "a validity of zero days",
      { certificateValidityDays: 0 },
      /certificateValidityDays: 0 must be at least 1 day/,
    ],
    [
      "a fractional validity",
      { certificateValidityDays: 1.5 },
      /certificateValidityDays: 1.5 must be a whole number of days/,
    ],
    [
      "renewal not before expiry",
      { certificateValidityDays: 30, certificateRenewalDays: 30 },
      /certificateRenewalDays: 30 must be less than certificateValidityDays \(30\)/,
    ],
    [
      "a CA shorter-lived than its certificate",
      { caValidityDays: 100 },
      /caValidityDays: 100 must be at least certificateValidityDays \(365\)/,
    ],
    [
      "an image reference with a space",
      { images: { mosquitto: "eclipse mosquitto" } },
      /images.mosquitto: "eclipse mosquitto" must be a Docker image reference/,
    ],
    ["a misspelt image key", { images: { mosquito: "x:1" } }, /images: unknown key "mosquito"/],
    ["a database port out of range", { databasePort: 0 }, /databasePort: 0 must be a port from 1 to 65535/],
    [
      "the database port equal to the TLS port",
      { databasePort: 8883 },
      /databasePort: 8883 is already taken by tlsPort/,
    ],
    [
      "the plain port equal to the TLS port",
      { plainListener: { address: "127.0.0.1", port: 8883 } },
      /plainListener.port: 8883 is already taken by tlsPort/,
    ],
    ["a negative cache TTL", { aclCacheSeconds: -5 }, /aclCacheSeconds: -5 must not be negative/],
    [
      "one cache TTL 0 (go-auth's default lifetime, not off)",
      { aclCacheSeconds: 0 },
      /aclCacheSeconds: 0 authCacheSeconds and aclCacheSeconds must both be 0 \(go-auth's cache off\)/,
    ],
    [
      "an unknown time zone",
      { timezone: "Mars/Olympus" },
      /timezone: "Mars\/Olympus" must be an IANA time zone/,
    ],
    [
      "someone else answering the devices",
      { sessionAnswers: "homeassistant" },
      /sessionAnswers: "homeassistant" must be "agent" .* or "meross_lan"/,
    ],
    [
      "a zone for the agent while meross_lan answers",
      { sessionAnswers: "meross_lan", timezone: "Europe/Berlin" },
      /timezone: "Europe\/Berlin" must be unset when sessionAnswers is meross_lan/,
    ],
    [
      "debug logging neither on nor off",
      { brokerDebugLog: "sometimes" },
      /brokerDebugLog: "sometimes" must be true or false/,
    ],
    ["a misspelt top-level key", { brokerhost: "x" }, /unknown key "brokerhost"; check the spelling/],
    [
      "a key origin without a configured key",
      { deviceKeyOrigin: "generated" },
      /deviceKeyOrigin: "generated" only means something with deviceKey set/,
    ],
    [
      "an unknown key origin",
      { deviceKey: "0123456789abcdef", deviceKeyOrigin: "typed" },
      /deviceKeyOrigin: "typed"/,
    ],
  ])("%s", (_, override, message) => {
    const text = errorOf({ ...minimal, ...override });
    expect(text).toMatch(/^Stack configuration is invalid; nothing was changed:/);
    expect(text).toMatch(message);
  });

  it.each(["too-short", "has a space 1234567", "x".repeat(65)])(
    "a device key %j without printing it",
    (deviceKey) => {
      const text = errorOf({ ...minimal, deviceKey });
      expect(text).toMatch(/deviceKey: \(secret value not shown\) must/);
      expect(text).not.toContain(deviceKey);
    },
  );

  it("a short deviceKeySecret without printing it", () => {
    const text = errorOf({ ...minimal, deviceKeySecret: "short-secret-value" });
    expect(text).toMatch(/deviceKeySecret: \(secret value not shown\) must be at least 32 characters/);
    expect(text).not.toContain("short-secret-value");
  });

  it("lists every problem at once, one line each", () => {
    const text = errorOf({ brokerHost: "bad host", userId: "x", tlsPort: 0 });
    expect(text.split("\n").filter((line) => line.startsWith("  - "))).toHaveLength(3);
  });
});

describe("rawStackConfig", () => {
  it("keeps this project's keys, parses lists and objects, leaves text as text", () => {
    const raw = rawStackConfig(
      {
        "meross-broker:brokerHost": "10.0.0.1",
        "meross-broker:userId": "0123",
        "meross-broker:deviceKey": "1234567890123456",
        "meross-broker:devices": JSON.stringify([device(1)]),
        "meross-broker:images": '{"agent":"node:20.19-alpine"}',
        "docker:host": "unix:///var/run/docker.sock",
      },
      "meross-broker",
    );
    expect(raw).toEqual({
      brokerHost: "10.0.0.1",
      userId: "0123",
      deviceKey: "1234567890123456",
      devices: [device(1)],
      images: { agent: "node:20.19-alpine" },
    });
    expect(parseStackConfig(raw).deviceKey).toBe("1234567890123456");
  });

  it("rejects a list key holding plain text", () => {
    expect(() => rawStackConfig({ "p:devices": "plug" }, "p")).toThrow(
      /devices: "plug" is not a list or object/,
    );
  });
});

describe("Pulumi.yaml", () => {
  const require = createRequire(import.meta.url);
  const yaml = require("js-yaml") as { load(text: string): unknown };
  const text = readFileSync(new URL("../../Pulumi.yaml", import.meta.url), "utf8");
  const project = yaml.load(text) as {
    config: Record<string, { type: string; default?: unknown; description?: string }>;
  };
  const schemaKeys = Object.keys(stackConfigSchema.shape);

  it("types every scalar key of the schema, each with a description", () => {
    for (const [key, declaration] of Object.entries(project.config)) {
      expect(schemaKeys, key).toContain(key);
      expect(declaration.description, key).toBeTruthy();
    }
  });

  it("mentions every key it cannot type (lists of objects, objects, optional secrets) in its comments", () => {
    for (const key of schemaKeys.filter((key) => !(key in project.config))) {
      expect(text, key).toMatch(new RegExp(`^#.*\\b${key}\\b`, "m"));
    }
  });

  it("declares no default for the required keys, so the CLI itself asks for them", () => {
    expect(project.config.brokerHost?.default).toBeUndefined();
    expect(project.config.userId?.default).toBeUndefined();
  });

  it("has the schema's defaults, so the CLI and the program agree", () => {
    const defaults = parseStackConfig(minimal);
    for (const [key, declaration] of Object.entries(project.config)) {
      if (declaration.default === undefined) continue;
      expect(parseStackConfig({ ...minimal, [key]: declaration.default } as StackConfigInput), key).toEqual(
        defaults,
      );
      expect((defaults as Record<string, unknown>)[key], key).toEqual(declaration.default);
    }
  });
});

describe("deviceKeySecretOrigin", () => {
  it("is generated without a deviceKeySecret, chosen with one, unless the config says it is a pinned generated secret", () => {
    expect(deviceKeySecretOrigin(parseStackConfig(minimal))).toBe("generated");
    const chosen = parseStackConfig({ ...minimal, deviceKeySecret: "s".repeat(32) });
    expect(deviceKeySecretOrigin(chosen)).toBe("chosen");
    const pinned = parseStackConfig({
      ...minimal,
      deviceKeySecret: "s".repeat(32),
      deviceKeySecretOrigin: "generated",
    });
    expect(deviceKeySecretOrigin(pinned)).toBe("generated");
    expect(() => parseStackConfig({ ...minimal, deviceKeySecretOrigin: "generated" })).toThrow(
      /deviceKeySecretOrigin: "generated" only means something with deviceKeySecret set/,
    );
  });
});

describe("deviceKeyOrigin", () => {
  it("is generated without a deviceKey, chosen with one, unless the config says it is a pinned generated key", () => {
    expect(deviceKeyOrigin(parseStackConfig(minimal))).toBe("generated");
    const pinned = { ...minimal, deviceKey: "0123456789abcdef" };
    expect(deviceKeyOrigin(parseStackConfig(pinned))).toBe("chosen");
    expect(deviceKeyOrigin(parseStackConfig({ ...pinned, deviceKeyOrigin: "generated" }))).toBe("generated");
  });
});

describe("Pulumi.dev.yaml", () => {
  it("is a valid stack config as the CLI would hand it to the program", () => {
    const require = createRequire(import.meta.url);
    const yaml = require("js-yaml") as { load(text: string): unknown };
    const stack = yaml.load(readFileSync(new URL("../../Pulumi.dev.yaml", import.meta.url), "utf8")) as {
      config: Record<string, unknown>;
    };
    expect(stack).not.toHaveProperty("encryptionsalt");
    const values = Object.fromEntries(
      Object.entries(stack.config).map(([key, value]) => [
        key,
        typeof value === "string" ? value : JSON.stringify(value),
      ]),
    );
    const config = parseStackConfig(rawStackConfig(values, "meross-broker"));
    expect(config.authMode).toBe("mysql");
    expect(config.plainListener).toEqual({ address: "127.0.0.1", port: 1883 });
  });
});
