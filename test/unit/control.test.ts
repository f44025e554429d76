import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT, exitCodeFor } from "../../lib/cli/exit-codes.ts";
import { UsageError } from "../../lib/cli/flags.ts";
import { refusalCause } from "../../lib/control/login-refusal.ts";
import {
  parseControlArguments,
  parseMonitorArguments,
  resolveBrokerSettings,
  resolveControllerSettings,
} from "../../lib/control/options.ts";
import {
  channelState,
  checkChannelFor,
  describeResult,
  requestFor,
  resolveDevice,
  toggleNamespaceFlag,
} from "../../lib/control/toggle.ts";
import { derivePerDeviceKey } from "../../lib/meross/device-key.ts";
import { DeviceError, WrongKeyError } from "../../lib/meross/envelope.ts";
import { Namespace, toggleNamespaceOf } from "../../lib/meross/messages/index.ts";
import { BrokerConnectionError } from "../../lib/mqtt/connection.ts";
import { ReplyTimeoutError } from "../../lib/mqtt/device-transport.ts";
import { UnknownDeviceError } from "../../lib/stack/devices.ts";
import type { StackOutputs } from "../../lib/stack/outputs.ts";

const UUID = "2307065833780651200148e1e9cf4534";
const devices = [
  { name: "kitchen", mac: "48:e1:e9:cf:45:34", uuid: UUID },
  { name: "desk", mac: "48:e1:e9:00:00:01", uuid: "0123456789abcdef0123456748e1e9000001".slice(0, 32) },
];
const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const outputs: StackOutputs = {
  brokerUrls: ["mqtts://192.168.1.10:8883"],
  caCertificatePem: CA,
  userId: "1234",
  deviceKey: "stack-device-key-0123456789",
  authMode: "anonymous",
  controllerLogins: {},
};

const control = (...args: string[]) => parseControlArguments(args);
const monitor = (...args: string[]) => parseMonitorArguments(args);

describe("resolveDevice", () => {
  it("finds a device by its config name, MAC or uuid", () => {
    expect(resolveDevice("kitchen", devices)).toEqual({ uuid: UUID, name: "kitchen" });
    expect(resolveDevice("48-E1-E9-CF-45-34", devices)).toEqual({ uuid: UUID, name: "kitchen" });
    expect(resolveDevice(UUID.toUpperCase(), devices)).toEqual({ uuid: UUID, name: "kitchen" });
  });

  it("takes a raw uuid that the config does not list", () => {
    expect(resolveDevice("ffffffffffffffffffffffffffffffff", [])).toEqual({
      uuid: "ffffffffffffffffffffffffffffffff",
    });
  });

  it("names the devices it knows when the name is wrong", () => {
    expect(() => resolveDevice("kitchn", devices)).toThrow(UnknownDeviceError);
    expect(() => resolveDevice("kitchn", devices)).toThrow(/the stack knows kitchen, desk/);
  });
});

const X = Namespace.ControlToggleX;
const LEGACY = Namespace.ControlToggle;

describe("requestFor", () => {
  it("on/off are a ToggleX SET of the channel, status a GET", () => {
    expect(requestFor(X, "on", 1)).toEqual({
      method: "SET",
      namespace: Namespace.ControlToggleX,
      payload: { togglex: { channel: 1, onoff: 1 } },
    });
    expect(requestFor(X, "off", 0).payload).toEqual({ togglex: { channel: 0, onoff: 0 } });
    expect(requestFor(X, "status", 2)).toMatchObject({ method: "GET", payload: { togglex: { channel: 2 } } });
  });

  it("toggle reads first, then sets the opposite of what it read", () => {
    expect(requestFor(X, "toggle", 0).method).toBe("GET");
    expect(requestFor(X, "toggle", 0, { channel: 0, on: true }).payload).toEqual({
      togglex: { channel: 0, onoff: 0 },
    });
    expect(requestFor(X, "toggle", 0, { channel: 0, on: false }).payload).toEqual({
      togglex: { channel: 0, onoff: 1 },
    });
  });

  it("speaks Toggle to older firmware: AR's SET shape, meross_lan's GET", () => {
    expect(requestFor(LEGACY, "on", 0)).toEqual({
      method: "SET",
      namespace: Namespace.ControlToggle,
      payload: { channel: 0, toggle: { onoff: 1 } },
    });
    expect(requestFor(LEGACY, "status", 0)).toEqual({
      method: "GET",
      namespace: Namespace.ControlToggle,
      payload: { toggle: [] },
    });
    expect(requestFor(LEGACY, "toggle", 0, { channel: 0, on: true }).payload).toEqual({
      channel: 0,
      toggle: { onoff: 0 },
    });
  });

  it("refuses a channel other than 0 on Toggle firmware (one relay)", () => {
    expect(() => checkChannelFor(LEGACY, 1)).toThrow(UsageError);
    expect(() => checkChannelFor(LEGACY, 1)).toThrow(/one relay, no channels\): --channel must be 0/);
    expect(() => checkChannelFor(X, 1)).not.toThrow();
  });
});

describe("toggleNamespaceOf and --namespace", () => {
  it("prefers ToggleX, falls back to Toggle, and has neither for a device that is not a switch", () => {
    expect(toggleNamespaceOf({ [X]: {}, [LEGACY]: {} })).toBe(X);
    expect(toggleNamespaceOf({ [LEGACY]: {}, "Appliance.Config.Wifi": {} })).toBe(LEGACY);
    expect(toggleNamespaceOf({ "Appliance.Control.Light": {} })).toBeUndefined();
  });

  it("takes togglex, toggle or the full namespace, and names the choices otherwise", () => {
    expect(toggleNamespaceFlag.parse("ToggleX")).toBe(X);
    expect(toggleNamespaceFlag.parse("Appliance.Control.Toggle")).toBe(LEGACY);
    expect(toggleNamespaceFlag.safeParse("light").error?.issues[0]?.message).toMatch(/togglex or toggle/);
  });
});

describe("channelState", () => {
  it("picks the channel from a list or a single object", () => {
    const list = {
      togglex: [
        { channel: 0, onoff: 0 },
        { channel: 1, onoff: 1, lmTime: 9 },
      ],
    };
    expect(channelState(X, list, 1)).toEqual({ channel: 1, on: true, lmTime: 9 });
    expect(channelState(X, { togglex: { channel: 0, onoff: 1 } }, 0).on).toBe(true);
  });

  it("reads Toggle's one relay as a real mss310 fw 1.1.18 answers (meross_lan trace)", () => {
    expect(channelState(LEGACY, { toggle: { onoff: 1, lmTime: 1714345202 } }, 0)).toEqual({
      channel: 0,
      on: true,
      lmTime: 1714345202,
    });
  });

  it("is a device error when the device does not report the channel", () => {
    expect(() => channelState(X, { togglex: [{ channel: 0, onoff: 1 }] }, 3)).toThrow(DeviceError);
  });
});

describe("describeResult", () => {
  it("says what the device is now, by name when it has one", () => {
    const device = { uuid: UUID, name: "kitchen" };
    expect(
      describeResult({ action: "on", device, channel: 0, namespace: X, on: true, roundTripMs: 12 }),
    ).toBe("kitchen channel 0 is now on (12 ms)");
    expect(
      describeResult({
        action: "status",
        device: { uuid: UUID },
        channel: 1,
        namespace: X,
        on: false,
        roundTripMs: 3,
      }),
    ).toBe(`${UUID} channel 1 is off (3 ms)`);
  });
});

describe("exit codes", () => {
  it.each([
    [new UsageError("x"), EXIT.usage],
    [new RangeError("channel"), EXIT.usage],
    [new BrokerConnectionError("ECONNREFUSED_AUTH", "x"), EXIT.unreachable],
    [new WrongKeyError(Namespace.ControlToggleX), EXIT.wrongKey],
    [new DeviceError(Namespace.ControlToggleX, -1, "nope"), EXIT.deviceError],
    [new ReplyTimeoutError("x"), EXIT.timeout],
    [new UnknownDeviceError("x"), EXIT.notFound],
    [new Error("bug"), EXIT.unexpected],
  ])("%s exits with %i", (error, code) => {
    expect(exitCodeFor(error)).toBe(code);
  });

  it("gives each failure its own code", () => {
    expect(new Set(Object.values(EXIT)).size).toBe(Object.keys(EXIT).length);
  });
});

describe("parseControlArguments", () => {
  it("reads device, action and flags, keeping number-like values as strings where they must be", () => {
    const command = control(
      "kitchen",
      "toggle",
      "--channel",
      "1",
      "--timeout",
      "2.5",
      "--key",
      "0012345678901234",
    );
    expect(command).toMatchObject({ device: "kitchen", action: "toggle" });
    expect(command.flags).toMatchObject({ channel: 1, timeout: 2.5, key: "0012345678901234", json: false });
  });

  it("defaults to channel 0 and a 10 s timeout", () => {
    expect(control("kitchen", "on").flags).toMatchObject({ channel: 0, timeout: 10 });
  });

  it.each([
    [["kitchen"], /give a device and an action/],
    [["kitchen", "explode"], /must be one of on, off, toggle, status/],
    [["kitchen", "on", "extra"], /unexpected argument "extra"/],
    [["kitchen", "on", "--channel=-1"], /^--channel: must be 0 or more$/],
    [["kitchen", "on", "--channel", "two"], /^--channel: must be a number$/],
    [["kitchen", "on", "--timeout", "0"], /--timeout/],
    [["kitchen", "on", "--timeout", "soon"], /^--timeout: must be a number of seconds above 0$/],
    [["kitchen", "on", "--namespace", "light"], /^--namespace: must be togglex or toggle/],
    [["kitchen", "on", "--chanel", "1"], /unknown flag --chanel/],
    [["kitchen", "on", "--broker", "http://x"], /--broker/],
  ])("rejects %j", (args, message) => {
    expect(() => control(...args)).toThrow(UsageError);
    expect(() => control(...args)).toThrow(message);
  });

  it("--no-stack turns the stack off", () => {
    expect(control("kitchen", "on", "--no-stack").flags.stack).toBe(false);
  });
});

describe("parseMonitorArguments", () => {
  it("takes device filters and output modes", () => {
    const command = monitor("kitchen", "desk", "--json", "--count", "3");
    expect(command.devices).toEqual(["kitchen", "desk"]);
    expect(command.flags).toMatchObject({ json: true, raw: false, count: 3, replies: true });
    expect(monitor("--no-replies").flags.replies).toBe(false);
  });

  it("refuses --raw with --json", () => {
    expect(() => monitor("--raw", "--json")).toThrow(/cannot be combined/);
  });

  it("says what --count takes, in one line", () => {
    expect(() => monitor("--count", "many")).toThrow(/^--count: must be a whole number above 0$/);
  });
});

describe("resolveControllerSettings", () => {
  const dir = mkdtempSync(join(tmpdir(), "control-options-"));
  const caFile = join(dir, "ca.pem");
  writeFileSync(caFile, CA);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("takes everything from the stack outputs when no flag is given", async () => {
    const settings = await resolveControllerSettings(control("kitchen", "on").flags, outputs, {});
    expect(settings).toEqual({
      brokerUrl: "mqtts://192.168.1.10:8883",
      ca: CA,
      key: outputs.deviceKey,
      userId: "1234",
    });
  });

  it("lets flags and the environment override the stack, keeping secrets off the command line", async () => {
    const flags = control(
      "kitchen",
      "on",
      "--broker",
      "mqtts://127.0.0.1:18883",
      "--ca",
      caFile,
      "--username",
      "ha",
    ).flags;
    const settings = await resolveControllerSettings(flags, outputs, {
      MEROSS_MQTT_PASSWORD: "from-env-password",
      MEROSS_DEVICE_KEY: "key-from-the-environment",
    });
    expect(settings).toEqual({
      brokerUrl: "mqtts://127.0.0.1:18883",
      ca: CA,
      username: "ha",
      password: "from-env-password",
      key: "key-from-the-environment",
      userId: "1234",
    });
  });

  it("signs for each device with the key its stack config entry says it holds", async () => {
    const secret = "a-stack-secret-of-at-least-32-characters";
    const stack = { ...outputs, keyMode: "per-device" as const, deviceKeySecret: secret };
    const flags = control("desk", "on").flags;
    const entry = { uuid: UUID, name: "desk", keyScheme: "per-device" as const, keyGeneration: 2 };
    expect((await resolveControllerSettings(flags, stack, {}, entry)).key).toBe(
      derivePerDeviceKey(secret, UUID, 2),
    );
    const shared = { uuid: UUID, name: "kitchen" };
    expect((await resolveControllerSettings(flags, stack, {}, shared)).key).toBe(outputs.deviceKey);
    expect(
      (await resolveControllerSettings(flags, stack, { MEROSS_DEVICE_KEY: "typed-key-0123" }, entry)).key,
    ).toBe("typed-key-0123");
  });

  it("without the stack, says which flag is missing", async () => {
    await expect(resolveControllerSettings(control("x", "on").flags, undefined, {})).rejects.toThrow(
      /--broker/,
    );
    const noCa = control("x", "on", "--broker", "mqtts://127.0.0.1:1").flags;
    await expect(resolveControllerSettings(noCa, undefined, {})).rejects.toThrow(/--ca/);
    const noKey = control("x", "on", "--broker", "mqtts://127.0.0.1:1", "--ca", caFile).flags;
    await expect(resolveControllerSettings(noKey, undefined, {})).rejects.toThrow(/--key/);
  });

  describe("on a mysql stack", () => {
    const ha = { username: "home-assistant", password: "ha-password-from-the-stack" };
    const mysqlOutputs: StackOutputs = {
      ...outputs,
      authMode: "mysql",
      controllerLogins: {
        "node-red": { username: "node-red", password: "nr-password" },
        "home-assistant": ha,
      },
    };

    it("logs in as the stack's first controller by name when no flag says who", async () => {
      const settings = await resolveBrokerSettings({}, mysqlOutputs, {});
      expect(settings).toMatchObject(ha);
    });

    it("takes the password of the controller --username names, and the environment's over it", async () => {
      expect(await resolveBrokerSettings({ username: "node-red" }, mysqlOutputs, {})).toMatchObject({
        username: "node-red",
        password: "nr-password",
      });
      const env = { MEROSS_MQTT_PASSWORD: "typed-password" };
      expect(await resolveBrokerSettings({}, mysqlOutputs, env)).toMatchObject({
        username: "home-assistant",
        password: "typed-password",
      });
      expect(
        await resolveBrokerSettings({ username: "someone", password: "theirs" }, mysqlOutputs, {}),
      ).toMatchObject({ username: "someone", password: "theirs" });
    });

    it("says how to add a controller when the stack has none, or not the one named (exit 6)", async () => {
      const none = resolveBrokerSettings({}, { ...mysqlOutputs, controllerLogins: {} }, {});
      await expect(none).rejects.toThrow(
        "the stack has no controller login (controllers in the stack config); add one: " +
          "pulumi config set --path 'controllers[0].name' monitor && pulumi up",
      );
      await expect(none.catch(exitCodeFor)).resolves.toBe(EXIT.stackOrDatabase);
      await expect(resolveBrokerSettings({ username: "bob" }, mysqlOutputs, {})).rejects.toThrow(
        /no controller login named "bob" \(it has home-assistant, node-red\)/,
      );
    });

    it("without the stack, a --username needs its password", async () => {
      await expect(
        resolveBrokerSettings({ broker: "mqtt://127.0.0.1:1883", username: "ha" }, undefined, {}),
      ).rejects.toThrow("--username ha needs its password: set MEROSS_MQTT_PASSWORD (or --password)");
    });

    it("sends no login to an anonymous stack", async () => {
      const settings = await resolveBrokerSettings({}, outputs, {});
      expect(settings).not.toHaveProperty("username");
      expect(settings).not.toHaveProperty("password");
    });
  });

  it("accepts a plain mqtt:// broker without a CA and refuses a CA file that is not one", async () => {
    const plain = await resolveBrokerSettings({ broker: "mqtt://127.0.0.1:1883" }, undefined, {});
    expect(plain).toEqual({ brokerUrl: "mqtt://127.0.0.1:1883" });
    await expect(
      resolveBrokerSettings({ broker: "mqtts://h:1", ca: join(dir, "nope") }, undefined, {}),
    ).rejects.toThrow(/cannot read/);
  });
});

describe("refusalCause without the stack's database", () => {
  it("says both possible causes of a refused login, and nothing it cannot know of a hang-up", async () => {
    expect(await refusalCause("refused", { username: "ha", password: "x" }, undefined)).toBe(
      "a wrong password for ha, or the broker cannot reach its database (check --username/--password)",
    );
    expect(await refusalCause("refused", {}, undefined)).toBe(
      "it takes no anonymous clients: pass --username and set MEROSS_MQTT_PASSWORD",
    );
    expect(await refusalCause("closed", { username: "ha", password: "x" }, undefined)).toBeUndefined();
  });
});
