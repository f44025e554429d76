import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionAgent } from "../../lib/agent/agent.ts";
import { EXIT } from "../../lib/cli/exit-codes.ts";
import { type MosquittoInstance, startMosquitto } from "../../lib/local-stack/mosquitto.ts";
import { type MysqlVariant, startMysqlVariant } from "../../lib/local-stack/mysql-variant.ts";
import { type LocalCa, type LocalPki, makeLocalPki, makeOtherCa } from "../../lib/local-stack/pki.ts";
import { buildMessage } from "../../lib/meross/envelope.ts";
import { Namespace } from "../../lib/meross/messages/index.ts";
import { devicePublishTopic } from "../../lib/meross/topics.ts";
import { controllerAccount, deviceAccount, serviceAccount } from "../../lib/store/accounts.ts";
import { type FakePulumi, installFakePulumi, testStackOutputs } from "../support/fake-pulumi.ts";
import { type OnlineDevice, startOnlineDevice } from "../support/online-device.ts";
import { runScript as runScriptWith, type ScriptRun, spawnScript } from "../support/run-script.ts";
import { startTestAgent } from "../support/session-agent.ts";
import { waitFor } from "../support/wait.ts";

const HOST = "127.0.0.1";
const KEY = "control-integration-device-key";
const USER_ID = "777";
const NAME = "kitchen";
const OTHER_UUID = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

let pki: LocalPki;
let otherCa: LocalCa;
let broker: MosquittoInstance;
let agent: SessionAgent;
let plug: OnlineDevice;
let pulumi: FakePulumi;
let caFile: string;

/** Runs a script the way a user does, with the fake pulumi first on PATH unless `env` says otherwise. */
const runScript = (script: string, args: string[], env: NodeJS.ProcessEnv = pulumi.env): Promise<ScriptRun> =>
  runScriptWith(script, args, { env });

const control = (...args: string[]) => runScript("control.mjs", args);

/** A monitor left running in the background; `lines()` is what it printed so far. */
async function startMonitorScript(args: string[], env: NodeJS.ProcessEnv = pulumi.env) {
  const { child, stdout, stderr } = spawnScript("monitor.mjs", args, env);
  await waitFor(
    "the monitor to subscribe",
    () => stderr().includes("watching") || child.exitCode !== null,
    15_000,
    stderr,
  );
  if (child.exitCode !== null) throw new Error(`monitor.mjs exited with ${child.exitCode}: ${stderr()}`);
  return {
    lines: () => stdout().split("\n").filter(Boolean),
    stderr,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGINT");
      return exited;
    },
  };
}

beforeAll(async () => {
  [pki, otherCa] = await Promise.all([makeLocalPki({ host: HOST }), makeOtherCa()]);
  broker = await startMosquitto({ variant: "anonymous", pki });
  agent = await startTestAgent({ broker, pki, key: KEY, userId: USER_ID });
  plug = await startOnlineDevice({
    broker,
    key: KEY,
    userId: USER_ID,
    ca: pki.caPem,
    requireSessionAnswers: true,
  });
  pulumi = await installFakePulumi({
    outputs: testStackOutputs({ broker, pki, userId: USER_ID, deviceKey: KEY }),
    config: { devices: [{ name: NAME, mac: plug.device.macAddress, uuid: plug.device.uuid }] },
  });
  caFile = join(pki.dir, "ca-for-scripts.pem");
  await writeFile(caFile, pki.caPem);
});

afterAll(async () => {
  await plug?.device.stop();
  await agent?.stop();
  await broker?.stop();
  await pulumi?.cleanup();
  await otherCa?.cleanup();
  await pki?.cleanup();
});

describe("control.mjs and monitor.mjs against a real broker and a simulated plug", () => {
  it("switches the plug by its config name, and monitor shows the command, the reply and the state PUSH", async () => {
    const monitor = await startMonitorScript([]);
    try {
      const on = await control(NAME, "on");
      expect(on.stderr).not.toMatch(/control:/);
      expect(on.code).toBe(EXIT.ok);
      expect(on.stdout).toMatch(/^kitchen channel 0 is now on \(\d+ ms\)$/m);
      expect(plug.device.state.toggles[0]?.on).toBe(true);

      const status = await control(NAME, "status");
      expect(status.code).toBe(EXIT.ok);
      expect(status.stdout).toMatch(/^kitchen channel 0 is on \(\d+ ms\)$/m);

      const off = await control(NAME, "off");
      expect(off.stdout).toMatch(/kitchen channel 0 is now off/);
      expect(plug.device.state.toggles[0]?.on).toBe(false);

      const toggle = await control(NAME, "toggle", "--json");
      expect(toggle.code).toBe(EXIT.ok);
      expect(JSON.parse(toggle.stdout)).toMatchObject({
        action: "toggle",
        device: { uuid: plug.device.uuid, name: NAME },
        channel: 0,
        on: true,
      });
      expect(plug.device.state.toggles[0]?.on).toBe(true);

      const pattern = (arrow: string, method: string, summary: string) =>
        new RegExp(
          `^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  kitchen\\s+${arrow} ${method}\\s+Appliance\\.Control\\.ToggleX  ${summary}$`,
        );
      await waitFor(
        "the state PUSH after toggle",
        () => monitor.lines().filter((line) => pattern("->", "PUSH", "ch0 on").test(line)).length >= 2,
      );
      const lines = monitor.lines();
      expect(lines.some((line) => pattern("<-", "SET", "ch0 on").test(line))).toBe(true);
      expect(lines.some((line) => pattern("->", "SETACK", "ok").test(line))).toBe(true);
      expect(lines.some((line) => pattern("->", "PUSH", "ch0 off").test(line))).toBe(true);
      expect(lines.some((line) => pattern("->", "GETACK", "ch0 on").test(line))).toBe(true);
    } finally {
      expect(await monitor.stop()).toBe(EXIT.ok);
    }
  });

  it("works without the stack, from flags and the environment, with the device's raw uuid", async () => {
    const env = { ...process.env, MEROSS_DEVICE_KEY: KEY };
    const run = await runScript(
      "control.mjs",
      [plug.device.uuid, "off", "--no-stack", "--broker", broker.url, "--ca", caFile, "--user", USER_ID],
      env,
    );
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toContain(`${plug.device.uuid} channel 0 is now off`);
    expect(plug.device.state.toggles[0]?.on).toBe(false);
  });

  it.each([
    ["a usage error", [NAME, "explode"], EXIT.usage, /must be one of on, off, toggle, status/],
    [
      "an unknown device name",
      ["bedroom", "on"],
      EXIT.notFound,
      /no device named "bedroom"; the stack knows kitchen/,
    ],
    [
      "a device that never answers",
      [OTHER_UUID, "on", "--timeout", "1"],
      EXIT.timeout,
      /no reply .* within 1000 ms/,
    ],
    [
      "a channel the plug does not have",
      [NAME, "on", "--channel", "3"],
      EXIT.deviceError,
      // Real firmware gives no reason with its 5000 (meross_lan traces), and neither does the simulator.
      /the device refused Appliance\.Control\.ToggleX: no reason given \(error 5000\)/,
    ],
    ["the wrong device key", [NAME, "on", "--key", "not-the-key-of-this-stack"], EXIT.wrongKey, /error 5001/],
  ])("exits with its own code for %s", async (_case, args, code, message) => {
    const run = await control(...args);
    expect(run.stderr).toMatch(message);
    expect(run.code).toBe(code);
  });

  it("exits 3 when the broker's certificate is not from the CA it is given", async () => {
    const otherCaFile = otherCa.caFile;
    const run = await control(NAME, "on", "--ca", otherCaFile);
    expect(run.stderr).toMatch(/cannot connect to the broker/);
    expect(run.code).toBe(EXIT.unreachable);
  });

  it("exits 6 when a device name needs the stack and the stack cannot be read", async () => {
    const broken = await installFakePulumi({ outputs: null, config: { devices: "not a list" } });
    try {
      const run = await runScript("control.mjs", [NAME, "on"], broken.env);
      expect(run.code).toBe(EXIT.stackOrDatabase);
      expect(run.stderr).toMatch(/devices/);
    } finally {
      await broken.cleanup();
    }
  });

  it("monitor filters by device, and --json / --raw print what came over the wire", async () => {
    const filtered = await startMonitorScript([NAME, "--json"]);
    const raw = await startMonitorScript(["--raw"]);
    const intruder = await mqtt.connectAsync(broker.url, { ca: pki.caPem });
    try {
      const other = buildMessage({
        method: "PUSH",
        namespace: Namespace.ControlToggleX,
        payload: { togglex: [{ channel: 0, onoff: 1 }] },
        key: KEY,
        from: devicePublishTopic(OTHER_UUID),
      });
      await intruder.publishAsync(devicePublishTopic(OTHER_UUID), JSON.stringify(other));
      expect((await control(NAME, "on")).code).toBe(EXIT.ok);
      await waitFor("the raw monitor to see the other device", () =>
        raw.lines().some((line) => line.includes(devicePublishTopic(OTHER_UUID))),
      );
      await waitFor("the filtered monitor to see the kitchen PUSH", () =>
        filtered.lines().some((line) => line.includes('"method":"PUSH"') && line.includes("ToggleX")),
      );
      const records = filtered.lines().map((line) => JSON.parse(line));
      expect(records.every((record) => record.uuid === plug.device.uuid && record.device === NAME)).toBe(
        true,
      );
      expect(
        records.find((record) => record.method === "PUSH" && record.namespace === Namespace.ControlToggleX),
      ).toMatchObject({ summary: "ch0 on", payload: { togglex: [{ channel: 0, onoff: 1 }] } });
      const rawLine = raw.lines().find((line) => line.includes(devicePublishTopic(OTHER_UUID)));
      expect(rawLine).toContain(JSON.stringify(other));
    } finally {
      await intruder.endAsync();
      await filtered.stop();
      await raw.stop();
    }
  });
});

describe("an older plug that speaks Appliance.Control.Toggle only (mss310 fw 1.x)", () => {
  const OLD_NAME = "hall";
  let old: OnlineDevice;
  let stack: FakePulumi;

  beforeAll(async () => {
    old = await startOnlineDevice({ broker, key: KEY, userId: USER_ID, ca: pki.caPem, model: "gen1" });
    stack = await installFakePulumi({
      outputs: testStackOutputs({ broker, pki, userId: USER_ID, deviceKey: KEY }),
      config: { devices: [{ name: OLD_NAME, mac: old.device.macAddress, uuid: old.device.uuid }] },
    });
  });

  afterAll(async () => {
    await old?.device.stop();
    await stack?.cleanup();
  });

  it("is switched with Toggle, chosen from its ability list, and monitor decodes its Toggle pushes", async () => {
    const monitor = await startMonitorScript([OLD_NAME], stack.env);
    const requests: string[] = [];
    old.device.events.on("command", ({ method, namespace }) => requests.push(`${method} ${namespace}`));
    try {
      const on = await runScript("control.mjs", [OLD_NAME, "on", "--json"], stack.env);
      expect(on.stderr).not.toMatch(/control:/);
      expect(on.code).toBe(EXIT.ok);
      expect(JSON.parse(on.stdout)).toMatchObject({ namespace: Namespace.ControlToggle, on: true });
      expect(old.device.state.toggles[0]?.on).toBe(true);
      expect(requests).toEqual([`GET ${Namespace.SystemAbility}`, `SET ${Namespace.ControlToggle}`]);

      const toggle = await runScript("control.mjs", [OLD_NAME, "toggle"], stack.env);
      expect(toggle.stdout).toMatch(/^hall channel 0 is now off \(\d+ ms\)$/m);
      expect(old.device.state.toggles[0]?.on).toBe(false);

      const status = await runScript("control.mjs", [OLD_NAME, "status", "--namespace", "toggle"], stack.env);
      expect(status.stdout).toMatch(/^hall channel 0 is off/m);
      // Forced: no ability query before the GET.
      expect(requests.slice(-1)).toEqual([`GET ${Namespace.ControlToggle}`]);
      expect(requests.filter((request) => request.includes("Ability"))).toHaveLength(2);

      await waitFor("the Toggle PUSHes in the monitor", () => {
        const lines = monitor.lines();
        return (
          lines.some((line) => /hall\s+-> PUSH\s+Appliance\.Control\.Toggle {2}ch0 on$/.test(line)) &&
          lines.some((line) => /hall\s+-> PUSH\s+Appliance\.Control\.Toggle {2}ch0 off$/.test(line))
        );
      });
    } finally {
      await monitor.stop();
    }
  });

  it("refuses a second channel before sending a SET, and ToggleX when forced is the device's 5000", async () => {
    const channel = await runScript("control.mjs", [OLD_NAME, "on", "--channel", "1"], stack.env);
    expect(channel.code).toBe(EXIT.usage);
    expect(channel.stderr).toMatch(/speaks Appliance\.Control\.Toggle .*--channel must be 0/);
    expect(old.device.state.toggles[0]?.on).toBe(false);

    const forced = await runScript("control.mjs", [OLD_NAME, "on", "--namespace", "togglex"], stack.env);
    expect(forced.code).toBe(EXIT.deviceError);
    expect(forced.stderr).toMatch(/refused Appliance\.Control\.ToggleX: no reason given \(error 5000\)/);
  });
});

describe("in the mysql variant, with a controller account's least-privilege ACL", () => {
  const uuid = "0102030405060708090a48e1e9c0ffee";
  const controller = controllerAccount("homeassistant", "controller-password-0123456789");
  const service = serviceAccount("session-agent", "service-password-0123456789");
  let services: MysqlVariant;
  let authBroker: MosquittoInstance;
  let authAgent: SessionAgent;
  let authPlug: OnlineDevice;
  const brokerFlags = () => ["--no-stack", "--broker", authBroker.url, "--ca", caFile];
  const flags = () => [...brokerFlags(), "--user", USER_ID];
  const env = (password: string) => ({
    ...process.env,
    MEROSS_DEVICE_KEY: KEY,
    MEROSS_MQTT_PASSWORD: password,
  });

  beforeAll(async () => {
    services = await startMysqlVariant(pki, [
      controller,
      service,
      deviceAccount({ name: NAME, mac: "48:e1:e9:c0:ff:ee", uuid }, KEY, USER_ID),
    ]);
    authBroker = services.broker;
    authAgent = await startTestAgent({
      broker: authBroker,
      pki,
      key: KEY,
      userId: USER_ID,
      account: service,
    });
    authPlug = await startOnlineDevice({
      broker: authBroker,
      key: KEY,
      userId: USER_ID,
      ca: pki.caPem,
      uuid,
      requireSessionAnswers: true,
    });
  });

  afterAll(async () => {
    await authPlug?.device.stop();
    await authAgent?.stop();
    await services?.stop();
  });

  it("control works as the controller, and monitor shows device traffic it may read", async () => {
    const monitor = await startMonitorScript(
      [...brokerFlags(), "--username", controller.username],
      env(controller.password),
    );
    try {
      const run = await runScript(
        "control.mjs",
        [uuid, "on", ...flags(), "--username", controller.username],
        env(controller.password),
      );
      expect(run.stderr).not.toMatch(/control:/);
      expect(run.code).toBe(EXIT.ok);
      expect(authPlug.device.state.toggles[0]?.on).toBe(true);
      await waitFor("the PUSH in the monitor", () =>
        monitor.lines().some((line) => /-> PUSH .*ToggleX {2}ch0 on$/.test(line)),
      );
      // A controller may not read other clients' commands to devices: the monitor says so instead of failing.
      expect(monitor.stderr()).toMatch(/does not let this account read \/appliance\/\+\/subscribe/);
    } finally {
      await monitor.stop();
    }
  });

  it("a wrong password is a broker failure (exit 3), not a timeout", async () => {
    const run = await runScript(
      "control.mjs",
      [uuid, "on", ...flags(), "--username", controller.username],
      env("not-the-controller-password"),
    );
    // Without the stack there is no database to ask, so the line names both possible causes.
    expect(run.stderr).toMatch(
      /refused the login of homeassistant: a wrong password for homeassistant, or the broker cannot reach its database/,
    );
    expect(run.stderr).not.toContain("not-the-controller-password");
    expect(run.code).toBe(EXIT.unreachable);
  });
});
