import { describe, expect, it } from "vitest";
import { EXIT, exitCodeFor } from "../../lib/cli/exit-codes.ts";
import { UsageError, validateFlags } from "../../lib/cli/flags.ts";
import { type DeviceKeying, derivePerDeviceKey } from "../../lib/meross/device-key.ts";
import { DeviceError, WrongKeyError } from "../../lib/meross/envelope.ts";
import {
  type KeySettings,
  Namespace,
  type SystemAllSummary,
  type WifiAccessPoint,
} from "../../lib/meross/messages/index.ts";
import { failureAdvice, offlineAdvice } from "../../lib/provision/advice.ts";
import { type AssignedKey, keyPolicyFrom } from "../../lib/provision/keys.ts";
import {
  INFO_FLAGS,
  resolveSetupSettings,
  SETUP_FLAGS,
  type SetupFlags,
  type SetupSettings,
  setupFlagsSchema,
} from "../../lib/provision/options.ts";
import { defaultDeviceName, planSetup, runSetup, type SetupDevice } from "../../lib/provision/setup.ts";
import { SetupStepError } from "../../lib/provision/steps.ts";
import { describeDevice, formatDescription } from "../../lib/provision/summary.ts";
import type { StackDevice } from "../../lib/stack/devices.ts";
import type { StackOutputs } from "../../lib/stack/outputs.ts";

const KEY = "0123456789abcdef0123";
const BROKER = { host: "192.168.1.10", port: 8883 };
const VALID = {
  ip: "10.10.10.1",
  wifi: true,
  wait: true,
  "wifi-ssid": "Home",
  "wifi-pass": "correct horse",
  mqtt: "mqtts://192.168.1.10:8883",
  user: "1234",
  key: KEY,
  stack: false,
};

/** A stack whose userId and deviceKey are VALID's --user and --key, which setup requires of flags. */
const OUTPUTS: StackOutputs = {
  brokerUrls: ["mqtts://broker.home.arpa:8883", "mqtts://192.168.1.10:8883"],
  caCertificatePem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
  userId: VALID.user,
  deviceKey: KEY,
  authMode: "mysql",
  mysql: { host: "127.0.0.1", port: 13306, user: "root", password: "pw", database: "meross" },
  controllerLogins: {},
};

function usageMessage(raw: Record<string, unknown>): string {
  try {
    validateFlags(setupFlagsSchema, raw);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error("expected a UsageError");
}

describe("setup flags", () => {
  it.each([
    [{ "wifi-ssid": "" }, /--wifi-ssid: must be 1 to 32 bytes/],
    [{ "wifi-ssid": "é".repeat(17) }, /--wifi-ssid: must be 1 to 32 bytes/],
    [{ "wifi-pass": "short" }, /--wifi-pass: must be 8 to 63 printable ASCII/],
    [
      { "wifi-pass": "x".repeat(64) },
      /--wifi-pass: must be 8 to 63 printable ASCII.*or exactly 64 hex digits/,
    ],
    [{ "wifi-pass": "line\nbreak-in-it" }, /--wifi-pass: .*no control characters/],
    [{ "wifi-pass": "tab\there-too" }, /--wifi-pass: .*no control characters/],
    [{ "wifi-pass": "eight-chars\u0000" }, /--wifi-pass: .*no control characters/],
    [{ "wifi-pass": "pässwört-ünicode" }, /--wifi-pass: must be 8 to 63 printable ASCII/],
    [{ "wifi-pass": "x".repeat(65) }, /--wifi-pass: must be 8 to 63/],
    [{ mqtt: "http://broker:80" }, /--mqtt: .*scheme http:/],
    [{ mqtt: "broker.home.arpa" }, /--mqtt: .*needs a port/],
    [{ ip: "10.10.10.300" }, /--ip: must be the device's IPv4 address/],
    [{ mac: "48:e1:e9:zz:2c:49" }, /--mac: must be a MAC address/],
    [{ uuid: "1234" }, /--uuid: must be the device uuid: 32 hex digits/],
    [{ key: "short" }, /--key: must be at least 16 characters/],
    [{ user: "-1" }, /--user: must be a number/],
    [{ "wifi-channel": "14" }, /--wifi-channel: must be a 2.4 GHz channel/],
    [{ "wifi-encryption": "WPA9" }, /--wifi-encryption: must be 0 to 8/],
    [{ name: "-bad" }, /--name: must be 1 to 64/],
    [{ ip: ["10.10.10.1", "10.10.10.2"] }, /--ip: give it once/],
    [{ timezone: "Mars/Olympus" }, /--timezone: must be an IANA time zone/],
    [{ mysql: "postgres://u:p@h/db" }, /--mysql: must look like mysql:\/\//],
  ])("rejects %j naming the flag", (override, message) => {
    expect(usageMessage({ ...VALID, "set-time": true, ...override })).toMatch(message);
  });

  it("never echoes the Wi-Fi password or the key", () => {
    const message = usageMessage({ ...VALID, "wifi-pass": "hunter2", key: "tooshortsecret" });
    expect(message).not.toMatch(/hunter2|tooshortsecret/);
  });

  it("requires the network unless --no-wifi, and refuses Wi-Fi flags with --no-wifi", () => {
    expect(usageMessage({ ...VALID, "wifi-ssid": undefined })).toMatch(/--wifi-ssid: is required/);
    expect(usageMessage({ ...VALID, wifi: false })).toMatch(/--wifi-ssid: does nothing with --no-wifi/);
    const flags = validateFlags(setupFlagsSchema, {
      ...VALID,
      wifi: false,
      "wifi-ssid": undefined,
      "wifi-pass": undefined,
    });
    expect(flags.wifi).toBe(false);
  });

  it("takes an open network without a password, sent as OPEN/NONE, and refuses mismatched security", async () => {
    const flags = validateFlags(setupFlagsSchema, { ...VALID, "wifi-pass": undefined });
    const settings = await resolveSetupSettings(flags, OUTPUTS);
    expect(settings.wifi).toEqual({ ssid: "Home", password: "", encryption: 0, cipher: 0 });
    expect(usageMessage({ ...VALID, "wifi-pass": undefined, "wifi-encryption": "WPA2PSK" })).toMatch(
      /--wifi-pass: is required with --wifi-encryption 6/,
    );
    expect(usageMessage({ ...VALID, "wifi-encryption": "OPEN" })).toMatch(
      /--wifi-pass: is for a secured network, but --wifi-encryption says it is open/,
    );
  });

  it("takes a BSSID without an SSID, and needs one of them", async () => {
    const flags = validateFlags(setupFlagsSchema, {
      ...VALID,
      "wifi-ssid": undefined,
      "wifi-bssid": "2c:6e:a4:55:c6:47",
    });
    const settings = await resolveSetupSettings(flags, OUTPUTS);
    expect(settings.wifi).toEqual({ password: "correct horse", bssid: "2c:6e:a4:55:c6:47" });
    expect(usageMessage({ ...VALID, "wifi-ssid": undefined })).toMatch(
      /--wifi-ssid: is required.*--wifi-bssid/,
    );
  });

  it("takes Wi-Fi enums by name or number, and a BSSID in any spelling", () => {
    const flags = validateFlags(setupFlagsSchema, {
      ...VALID,
      "wifi-encryption": "wpa2psk",
      "wifi-cipher": "3",
      "wifi-bssid": "2C-6E-A4-55-C6-47",
      "wifi-channel": "11",
    });
    expect(flags).toMatchObject({
      "wifi-encryption": 6,
      "wifi-cipher": 3,
      "wifi-bssid": "2c:6e:a4:55:c6:47",
      "wifi-channel": 11,
    });
  });

  it("keeps flag values that look like numbers as strings in the zx minimist spec", () => {
    for (const flag of ["key", "current-key", "user"]) expect(INFO_FLAGS.string).toContain(flag);
    for (const flag of ["wifi-pass", "wifi-ssid", "key", "user", "mqtt"])
      expect(SETUP_FLAGS.string).toContain(flag);
  });
});

describe("merging flags with the stack outputs", () => {
  it("takes the stack's values (brokerHost for both gateways), and lets flags win", async () => {
    const fromStack = validateFlags(setupFlagsSchema, {
      ...VALID,
      mqtt: undefined,
      user: undefined,
      key: undefined,
      stack: undefined,
    });
    const settings = await resolveSetupSettings(fromStack, OUTPUTS);
    expect(settings).toMatchObject({
      brokers: [
        { host: "broker.home.arpa", port: 8883 },
        { host: "broker.home.arpa", port: 8883 },
      ],
      userId: OUTPUTS.userId,
      keyPolicy: { mode: "shared", keys: { sharedKey: OUTPUTS.deviceKey }, rotate: false },
      signingKey: OUTPUTS.deviceKey,
      authMode: "mysql",
      mysql: OUTPUTS.mysql,
      recordInStack: true,
    });
    const overridden = await resolveSetupSettings(
      validateFlags(setupFlagsSchema, { ...VALID, "current-key": "", mqtt: ["a.lan:8883", "b.lan:8884"] }),
      OUTPUTS,
    );
    expect(overridden).toMatchObject({
      brokers: [
        { host: "a.lan", port: 8883 },
        { host: "b.lan", port: 8884 },
      ],
      userId: "1234",
      keyPolicy: { mode: "shared", keys: { sharedKey: KEY } },
      signingKey: "",
    });
  });

  it("refuses a --key or --user the stack would undo at the next pulumi up, and takes them with --no-stack", async () => {
    const other = { ...VALID, key: "another-key-0123456789", user: "77", stack: undefined };
    const refusal = (override: Record<string, unknown>) =>
      resolveSetupSettings(validateFlags(setupFlagsSchema, { ...other, ...override }), OUTPUTS);
    await expect(refusal({ user: undefined })).rejects.toThrow(
      /^--key is not the stack's deviceKey: the next `pulumi up` would rebuild this device's broker login .* --no-stack/,
    );
    await expect(refusal({ key: undefined })).rejects.toThrow(/^--user is not the stack's userId \(1234\)/);
    await expect(refusal({})).rejects.toThrow(/deviceKey, and --user is not/);
    await expect(refusal({})).rejects.toBeInstanceOf(UsageError);
    const withoutStack = await resolveSetupSettings(
      validateFlags(setupFlagsSchema, { ...other, stack: false, wait: false }),
    );
    expect(withoutStack).toMatchObject({ userId: "77", recordInStack: false });
    expect(withoutStack.keyPolicy.keys.sharedKey).toBe("another-key-0123456789");
  });

  it("registers the device with a fast hash only for the stack's own generated key", async () => {
    const fromStack = validateFlags(setupFlagsSchema, { ...VALID, key: undefined, stack: undefined });
    const generated = { ...OUTPUTS, deviceKeyOrigin: "generated" as const };
    const origin = async (flags: SetupFlags, outputs: typeof OUTPUTS) =>
      (await resolveSetupSettings(flags, outputs)).keyPolicy.origins.shared;
    expect(await origin(fromStack, generated)).toBe("generated");
    expect(await origin(fromStack, { ...OUTPUTS, deviceKeyOrigin: "chosen" })).toBe("chosen");
    // A stack from before the output, and a key typed as --key, count as chosen.
    expect(await origin(fromStack, OUTPUTS)).toBe("chosen");
    const typed = validateFlags(setupFlagsSchema, { ...VALID, stack: undefined });
    expect(await origin(typed, generated)).toBe("chosen");
  });

  it("lists every missing value when the stack is not used", async () => {
    const flags = validateFlags(setupFlagsSchema, {
      ...VALID,
      mqtt: undefined,
      key: undefined,
      "auth-mode": "mysql",
    }) as SetupFlags;
    await expect(resolveSetupSettings(flags)).rejects.toThrow(/--mqtt[\s\S]*--key[\s\S]*--mysql/);
  });
});

describe("the setup plan", () => {
  const ids = (options: Partial<Parameters<typeof planSetup>[0]>) =>
    planSetup({
      authMode: "mysql",
      wifi: { ssid: "Home" },
      scanWifi: true,
      recordInStack: true,
      brokers: [BROKER, BROKER],
      wait: true,
      ...options,
    }).map((step) => step.id);

  it("reads first, writes the broker side before the device side, and waits last", () => {
    expect(ids({ timezone: "Europe/Dublin" })).toEqual([
      "read-device",
      "read-abilities",
      "exchange-keys",
      "scan-wifi",
      "set-time",
      "register-credentials",
      "record-in-stack",
      "set-key",
      "set-wifi",
      "wait-online",
    ]);
  });

  it("leaves out what the options do not ask for", () => {
    expect(ids({ authMode: "anonymous", recordInStack: false, wifi: undefined, wait: false })).toEqual([
      "read-device",
      "read-abilities",
      "exchange-keys",
      "set-key",
    ]);
    expect(ids({ scanWifi: false })).not.toContain("scan-wifi");
  });
});

const LEGACY: SystemAllSummary = {
  type: "mss310",
  subType: "us",
  chipType: "mt7682",
  hardwareVersion: "2.0.0",
  firmwareVersion: "2.1.17",
  uuid: "2307065833780651200148e1e9cf4534",
  macAddress: "48:e1:e9:cf:45:34",
  innerIp: "10.10.10.1",
  userId: "0",
  raw: {},
};

const HOME_AP: WifiAccessPoint = {
  ssid: "Home",
  bssid: "2c:6e:a4:55:c6:47",
  signal: 90,
  channel: 3,
  encryption: 6,
  cipher: 3,
};

/** Records every call; `fail` makes one method throw. */
function fakeDevice(options: {
  systemAll?: SystemAllSummary;
  abilities?: string[];
  fail?: Partial<Record<keyof SetupDevice, Error>>;
  wifiList?: WifiAccessPoint[];
  keys?: string[];
}) {
  const calls: string[] = [];
  const open = (key: string): SetupDevice => {
    options.keys?.push(key);
    const record = async <T>(name: keyof SetupDevice, detail: string, value: T): Promise<T> => {
      calls.push(`${name}${detail}`);
      const failure = options.fail?.[name];
      if (failure) throw failure;
      return value;
    };
    return {
      encrypted: false,
      getSystemAll: () => record("getSystemAll", ` ${key}`, options.systemAll ?? LEGACY),
      getAbilities: () =>
        record(
          "getAbilities",
          "",
          Object.fromEntries((options.abilities ?? []).map((namespace) => [namespace, {}])),
        ),
      exchangeKeys: () => record("exchangeKeys", "", undefined),
      getWifiList: () => record("getWifiList", "", options.wifiList ?? [HOME_AP]),
      setTime: (zone) => record("setTime", ` ${zone}`, undefined),
      setKey: (settings) => record("setKey", ` ${settings.userId} ${settings.brokers[1].host}`, undefined),
      setWifi: (network, wifi) =>
        record(
          "setWifi",
          ` ${JSON.stringify({ ...network, password: "***" })}${wifi?.wifix ? " wifix" : ""}`,
          undefined,
        ),
    };
  };
  return { calls, open };
}

async function settingsFor(override: Record<string, unknown> = {}) {
  return resolveSetupSettings(
    validateFlags(setupFlagsSchema, { ...VALID, "auth-mode": "anonymous", wait: false, ...override }),
  );
}

describe("running the setup", () => {
  it("fills bssid/channel/encryption/cipher from the device's scan and uses Config.Wifi on legacy firmware", async () => {
    const device = fakeDevice({});
    const result = await runSetup(await settingsFor(), { openDevice: device.open });
    expect(device.calls).toEqual([
      `getSystemAll ${KEY}`,
      "getAbilities",
      "getWifiList",
      "setKey 1234 192.168.1.10",
      'setWifi {"ssid":"Home","password":"***","bssid":"2c:6e:a4:55:c6:47","channel":3,"encryption":6,"cipher":3}',
    ]);
    expect(result).toMatchObject({ name: "mss310-cf4534", wifiNamespace: Namespace.ConfigWifi });
    expect(JSON.stringify(result)).not.toContain("correct horse");
  });

  it("exchanges keys and sends WifiX when the device lists them, and keeps the user's own Wi-Fi details", async () => {
    const device = fakeDevice({ abilities: [Namespace.EncryptEcdhe, Namespace.ConfigWifiX] });
    await runSetup(await settingsFor({ "wifi-channel": "6", "set-time": true, timezone: "Europe/Dublin" }), {
      openDevice: device.open,
    });
    expect(device.calls).toEqual([
      `getSystemAll ${KEY}`,
      "getAbilities",
      "exchangeKeys",
      "setTime Europe/Dublin",
      "setKey 1234 192.168.1.10",
      'setWifi {"ssid":"Home","password":"***","channel":6} wifix',
    ]);
  });

  it("sends the SSID alone when the scan does not show it", async () => {
    const device = fakeDevice({ wifiList: [{ ...HOME_AP, ssid: "Other" }] });
    const events: string[] = [];
    await runSetup(
      await settingsFor(),
      { openDevice: device.open },
      {
        onEvent: (event) => events.push(`${event.step.id}:${event.status}`),
      },
    );
    expect(device.calls.at(-1)).toBe('setWifi {"ssid":"Home","password":"***"}');
    expect(events).toContain("scan-wifi:skipped");
  });

  it("sends an open network seen in the scan with no password, and refuses one the scan shows secured", async () => {
    const openAp = { ...HOME_AP, encryption: 0, cipher: 0 };
    const device = fakeDevice({ wifiList: [openAp] });
    await runSetup(await settingsFor({ "wifi-pass": undefined }), { openDevice: device.open });
    expect(device.calls.at(-1)).toBe(
      'setWifi {"ssid":"Home","password":"***","encryption":0,"cipher":0,"bssid":"2c:6e:a4:55:c6:47","channel":3}',
    );

    const secured = fakeDevice({});
    const failure = runSetup(await settingsFor({ "wifi-pass": undefined }), { openDevice: secured.open });
    await expect(failure).rejects.toMatchObject({
      cause: expect.objectContaining({
        name: "UsageError",
        message: expect.stringMatching(/is secured .*--wifi-pass/),
      }),
    });
    expect(secured.calls.some((call) => /^(setKey|setWifi)/.test(call))).toBe(false);

    const passwordForOpen = fakeDevice({ wifiList: [openAp] });
    await expect(runSetup(await settingsFor(), { openDevice: passwordForOpen.open })).rejects.toMatchObject({
      cause: expect.objectContaining({ message: expect.stringMatching(/open network .*drop --wifi-pass/) }),
    });
    expect(passwordForOpen.calls.some((call) => call.startsWith("setKey"))).toBe(false);
  });

  it("names the network by its BSSID alone: the scan gives the SSID, a hidden one is sent without", async () => {
    const byBssid = { "wifi-ssid": undefined, "wifi-bssid": HOME_AP.bssid };
    const device = fakeDevice({});
    await runSetup(await settingsFor(byBssid), { openDevice: device.open });
    expect(device.calls.at(-1)).toBe(
      'setWifi {"ssid":"Home","bssid":"2c:6e:a4:55:c6:47","channel":3,"encryption":6,"cipher":3,"password":"***"}',
    );

    const hidden = fakeDevice({ wifiList: [{ ...HOME_AP, ssid: "" }] });
    await runSetup(await settingsFor(byBssid), { openDevice: hidden.open });
    expect(hidden.calls.at(-1)).toBe(
      'setWifi {"bssid":"2c:6e:a4:55:c6:47","channel":3,"encryption":6,"cipher":3,"password":"***"}',
    );
  });

  it("watches the broker before Config.Key and counts from the last acknowledgement; a device on a broker waits for the watch", async () => {
    for (const [onlineStatus, wifiFlags, readyAfter, acknowledgedAfter] of [
      [0, {}, "", "setWifi"],
      [1, {}, "getWifiList", "setWifi"],
      [1, { wifi: false, "wifi-ssid": undefined, "wifi-pass": undefined }, "getAbilities", "setKey"],
    ] as const) {
      const device = fakeDevice({ systemAll: { ...LEGACY, onlineStatus } });
      const order: string[] = [];
      const watchOnline = async (_device: SystemAllSummary, options: { hadSession: boolean }) => {
        order.push(`watch hadSession=${options.hadSession}`);
        return {
          ready: async () => {
            order.push(`ready after ${device.calls.at(-1)?.split(" ")[0]}`);
            return true;
          },
          acknowledged: () => order.push(`acknowledged after ${device.calls.at(-1)?.split(" ")[0]}`),
          result: async () => ({ firstMessage: "SET Appliance.Control.Bind", seconds: 1 }),
          stop: async () => {
            order.push("stopped");
          },
        };
      };
      const settings = { ...(await settingsFor(wifiFlags)), wait: true };
      const result = await runSetup(settings, {
        openDevice: device.open,
        watchOnline,
      });
      expect(order).toEqual([
        `watch hadSession=${onlineStatus === 1}`,
        ...(readyAfter ? [`ready after ${readyAfter}`] : []),
        `acknowledged after ${acknowledgedAfter}`,
        "stopped",
      ]);
      expect(result.online?.firstMessage).toBe("SET Appliance.Control.Bind");
    }
  });

  it("registers and records the device before Config.Key, and stops there when Config.Key fails", async () => {
    const order: string[] = [];
    const device = fakeDevice({ fail: { setKey: new DeviceError(Namespace.ConfigKey, 5000, "busy") } });
    const settings = { ...(await settingsFor()), authMode: "mysql" as const, recordInStack: true };
    const failure = runSetup(settings, {
      openDevice: device.open,
      registerCredentials: async (d) => {
        order.push(`register ${d.mac} ${d.name}`);
        return "created";
      },
      recordInStack: async (d) => {
        order.push(`record ${d.uuid}`);
        return "added";
      },
    });
    await expect(failure).rejects.toBeInstanceOf(SetupStepError);
    const error = (await failure.catch((e) => e)) as SetupStepError<never>;
    expect(error.step.id).toBe("set-key");
    expect(error.completed).toEqual([
      "read-device",
      "read-abilities",
      "scan-wifi",
      "register-credentials",
      "record-in-stack",
    ]);
    expect(order).toEqual([`register ${LEGACY.macAddress} mss310-cf4534`, `record ${LEGACY.uuid}`]);
    expect(device.calls).not.toContainEqual(expect.stringMatching(/^setWifi/));
    expect(exitCodeFor(error)).toBe(EXIT.deviceError);
    expect(failureAdvice(error as never)).toMatch(/MySQL login is registered.*safe to repeat/s);
  });

  it("refuses a device that is not the one --mac names before changing anything", async () => {
    const device = fakeDevice({});
    const failure = runSetup(await settingsFor({ mac: "48:e1:e9:00:00:01" }), { openDevice: device.open });
    await expect(failure).rejects.toThrow(/has MAC 48:e1:e9:cf:45:34, not 48:e1:e9:00:00:01/);
    expect(device.calls).toEqual([`getSystemAll ${KEY}`]);
    const error = await failure.catch((e) => e);
    expect(exitCodeFor(error)).toBe(EXIT.deviceError);
    expect(failureAdvice(error)).toMatch(/^Nothing was changed/);
  });

  it("carries on with the new key when an earlier run already set it", async () => {
    const keys: string[] = [];
    let first = true;
    const device = fakeDevice({ keys });
    const openDevice = (key: string) => {
      const client = device.open(key);
      if (!first) return client;
      first = false;
      return { ...client, getSystemAll: () => Promise.reject(new WrongKeyError(Namespace.SystemAll)) };
    };
    const result = await runSetup(await settingsFor({ "current-key": "old-key" }), { openDevice });
    expect(keys).toEqual(["old-key", KEY]);
    expect(result.completed).toContain("set-wifi");
  });

  it("reports a wrong key with exit code 4", async () => {
    const device = fakeDevice({ fail: { getSystemAll: new WrongKeyError(Namespace.SystemAll) } });
    const error = await runSetup(await settingsFor(), { openDevice: device.open }).catch((e) => e);
    expect(exitCodeFor(error)).toBe(EXIT.wrongKey);
  });
});

describe("what is printed", () => {
  it("names the device after its type and MAC", () => {
    expect(defaultDeviceName({ type: "MSS310", macAddress: "48:E1:E9:CF:45:34" })).toBe("mss310-cf4534");
  });

  it("says which Wi-Fi and switch messages the firmware takes, from its ability list", () => {
    const credentials = { key: "testkey", userId: "1234", basis: "test" };
    const older = describeDevice(LEGACY, {
      credentials,
      showPassword: false,
      abilities: { [Namespace.ConfigWifi]: {}, [Namespace.ControlToggle]: {} },
    });
    expect(older).toMatchObject({
      wifiNamespace: Namespace.ConfigWifi,
      switchNamespace: Namespace.ControlToggle,
    });
    expect(formatDescription(older)).toMatch(/Switch message\s+Appliance\.Control\.Toggle$/m);
    const light = describeDevice(LEGACY, { credentials, showPassword: false, abilities: {} });
    expect(light.switchNamespace).toBeUndefined();
  });

  it("hides the MQTT password unless asked, and shows the topics", () => {
    const credentials = { key: "testkey", userId: "1234", basis: "test" };
    const device = { ...LEGACY, macAddress: "34:29:8f:ff:ff:ff" };
    const hidden = formatDescription(describeDevice(device, { credentials, showPassword: false }));
    expect(hidden).toMatch(/MQTT username\s+34:29:8f:ff:ff:ff/);
    expect(hidden).toMatch(/--show-password/);
    expect(hidden).toContain(`/appliance/${LEGACY.uuid}/publish`);
    expect(hidden).not.toContain("1234_");
    const shown = describeDevice(device, { credentials, showPassword: true });
    expect(shown.mqtt.password).toMatch(/^1234_[0-9a-f]{32}$/);
  });

  it("puts Wi-Fi first when the device never came online, and checks TLS with the exact host", () => {
    const advice = offlineAdvice({
      observation: { reachedBroker: true },
      brokerUrl: "mqtts://broker.home.arpa:8883",
      broker: { host: "broker.home.arpa", port: 8883 },
      authMode: "mysql",
      macAddress: LEGACY.macAddress,
      network: '"Home"',
    });
    expect(advice).toMatch(/Wi-Fi: the device did not join "Home"[\s\S]*2\.4 GHz/);
    expect(advice).toMatch(
      /openssl s_client -connect broker\.home\.arpa:8883 -servername broker\.home\.arpa/,
    );
    expect(advice).toMatch(/devices\.mjs list/);
    expect(advice).not.toMatch(/could not reach the broker/);
  });
});

describe("which key setup gives the device", () => {
  const SECRET = "a-stack-secret-of-at-least-32-characters";
  const PER_DEVICE = {
    ...OUTPUTS,
    keyMode: "per-device" as const,
    deviceKeySecret: SECRET,
    deviceKeySecretOrigin: "generated" as const,
  };
  const fromStack = (override: Record<string, unknown> = {}) =>
    validateFlags(setupFlagsSchema, { ...VALID, key: undefined, stack: undefined, ...override });

  /** A device that records the key Config.Key carries; services record the rest. */
  async function run(settings: SetupSettings, recorded?: Partial<DeviceKeying>) {
    const sent: string[] = [];
    const registered: { device: StackDevice; key: AssignedKey }[] = [];
    const stack: StackDevice[] = [];
    const device = fakeDevice({});
    const open = (key: string) => ({
      ...device.open(key),
      setKey: async (keySettings: KeySettings) => {
        sent.push(keySettings.key);
      },
    });
    await runSetup(
      { ...settings, authMode: "mysql", wait: false },
      {
        openDevice: open,
        recordedKeying: async () => recorded,
        registerCredentials: async (entry, key) => {
          registered.push({ device: entry, key });
          return "ok";
        },
        recordInStack: async (entry) => {
          stack.push(entry);
          return "ok";
        },
      },
    );
    return { sent, registered, stack };
  }

  it("per-device: the device's own key in Config.Key, its login and its stack entry (generation 1)", async () => {
    const settings = await resolveSetupSettings(fromStack(), PER_DEVICE);
    const { sent, registered, stack } = await run(settings);
    const own = derivePerDeviceKey(SECRET, LEGACY.uuid, 1);
    expect(sent).toEqual([own]);
    expect(registered[0]?.key).toMatchObject({ key: own, keyScheme: "per-device", origin: "generated" });
    expect(stack[0]).toMatchObject({ uuid: LEGACY.uuid, keyScheme: "per-device", keyGeneration: 1 });
  });

  it("re-running keeps a rotated device's generation; rekey adds one; a shared-key device starts at 1", async () => {
    const rerun = await run(await resolveSetupSettings(fromStack(), PER_DEVICE), {
      keyScheme: "per-device",
      keyGeneration: 3,
    });
    expect(rerun.sent).toEqual([derivePerDeviceKey(SECRET, LEGACY.uuid, 3)]);
    const rotate = await resolveSetupSettings(
      fromStack({ wifi: false, "wifi-ssid": undefined, "wifi-pass": undefined }),
      PER_DEVICE,
      { rotate: true },
    );
    const rotated = await run(rotate, { keyScheme: "per-device", keyGeneration: 3 });
    expect(rotated.sent).toEqual([derivePerDeviceKey(SECRET, LEGACY.uuid, 4)]);
    expect(rotated.stack[0]).toMatchObject({ keyGeneration: 4 });
    const migrated = await run(rotate, { keyScheme: "shared" });
    expect(migrated.sent).toEqual([derivePerDeviceKey(SECRET, LEGACY.uuid, 1)]);
  });

  it("shared: the stack's key, recorded as shared; --key is always given as is", async () => {
    const shared = await run(await resolveSetupSettings(fromStack(), { ...PER_DEVICE, keyMode: "shared" }));
    expect(shared.sent).toEqual([OUTPUTS.deviceKey]);
    // Recorded as every entry from before per-device keys: no scheme means the shared key.
    expect(shared.stack[0]).not.toHaveProperty("keyScheme");
    expect(shared.stack[0]).not.toHaveProperty("keyGeneration");
    const typed = await run(await resolveSetupSettings(fromStack({ key: KEY }), PER_DEVICE));
    expect(typed.sent).toEqual([KEY]);
  });

  it("refuses a rotation the stack cannot do, and a per-device stack without its secret", () => {
    expect(() => keyPolicyFrom({ rotate: true }, { ...PER_DEVICE, keyMode: "shared" })).toThrow(
      /keyMode "shared": set it to per-device/,
    );
    expect(() => keyPolicyFrom({ rotate: true, key: KEY }, PER_DEVICE)).toThrow(/takes no --key/);
    expect(() => keyPolicyFrom({}, { ...PER_DEVICE, deviceKeySecret: undefined })).toThrow(
      /no deviceKeySecret output: run `pulumi up`/,
    );
  });
});
