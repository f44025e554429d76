import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionAgent } from "../../lib/agent/agent.ts";
import { DeviceCommander } from "../../lib/control/client.ts";
import type { MosquittoInstance } from "../../lib/local-stack/mosquitto.ts";
import { type MysqlVariant, startMysqlVariant } from "../../lib/local-stack/mysql-variant.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { deviceMqttCredentials } from "../../lib/meross/credentials.ts";
import { derivePerDeviceKey } from "../../lib/meross/device-key.ts";
import { macAddressSchema } from "../../lib/meross/identifiers.ts";
import { Namespace, toggleXSetRequest } from "../../lib/meross/messages/index.ts";
import { devicePublishTopic, deviceSubscribeTopic } from "../../lib/meross/topics.ts";
import { trySubscribe } from "../../lib/mqtt/connection.ts";
import { type SimulatedDevice, startSimulatedDevice } from "../../lib/simulator/index.ts";
import type { StackOutputsJson } from "../../lib/stack/outputs.ts";
import { controllerAccount, deviceAccount, serviceAccount } from "../../lib/store/accounts.ts";
import { listAccounts, upsertAccount } from "../../lib/store/database.ts";
import { type FakePulumi, installFakePulumi, testStackOutputs } from "../support/fake-pulumi.ts";
import { FAST_SESSION_TIMING, startOnlineDevice } from "../support/online-device.ts";
import { runScript } from "../support/run-script.ts";
import { startTestAgent } from "../support/session-agent.ts";
import { setupArgs } from "../support/setup-args.ts";
import { waitFor } from "../support/wait.ts";

// A stack moving from the shared key to per-device keys, on the mysql variant (real MariaDB, real
// Mosquitto with the go-auth plugin), with the session agent, simulated plugs that check every
// signature, and the scripts run as a user runs them against a fake `pulumi` serving the stack.

const HOST = "127.0.0.1";
const USER_ID = "5150";
const SHARED = "shared-device-key-of-the-old-stack";
const SECRET = "the-stack-secret-per-device-keys-come-from";
const CONTROLLER = controllerAccount("homeassistant", "homeassistant-password-for-tests");
const AGENT = serviceAccount("session-agent", "session-agent-password-for-tests");

let pki: LocalPki;
let services: MysqlVariant;
let broker: MosquittoInstance;
let agent: SessionAgent;
let fake: FakePulumi;
let outputs: StackOutputsJson;
/** Provisioned before per-device keys: they hold the shared key, their entries have no scheme. */
const old: SimulatedDevice[] = [];
/** Provisioned now, each with its own key. */
let plugA: SimulatedDevice;
let plugB: SimulatedDevice;

const entryOf = async (device: SimulatedDevice) =>
  ((await fake.config())["meross-broker:devices"] as Record<string, unknown>[]).find(
    (entry) => entry.uuid === device.uuid,
  );

beforeAll(async () => {
  pki = await makeLocalPki({ host: HOST });
  services = await startMysqlVariant(pki, [CONTROLLER, AGENT]);
  broker = services.broker;
  agent = await startTestAgent({
    broker,
    pki,
    key: SHARED,
    keySecret: SECRET,
    userId: USER_ID,
    account: AGENT,
  });
  const oldEntries = [];
  for (const name of ["old-one", "old-two"]) {
    // Real uuids end in the MAC's digits.
    const uuid = `${randomBytes(10).toString("hex")}48e1e9${randomBytes(3).toString("hex")}`;
    const mac = macAddressSchema.parse(uuid.slice(-12));
    // What `pulumi up` made for them: a row from the shared key.
    await upsertAccount(services.conn, deviceAccount({ name, mac, uuid }, SHARED, USER_ID, "generated"));
    const online = await startOnlineDevice({
      broker,
      key: SHARED,
      userId: USER_ID,
      ca: pki.caPem,
      uuid,
      requireSessionAnswers: true,
    });
    old.push(online.device);
    oldEntries.push({ name, mac, uuid });
  }
  outputs = {
    ...testStackOutputs({
      broker,
      pki,
      userId: USER_ID,
      deviceKey: SHARED,
      mysql: services.db,
      controllers: [CONTROLLER],
    }),
    deviceKeyOrigin: "generated",
    keyMode: "per-device",
    deviceKeySecret: SECRET,
    deviceKeySecretOrigin: "generated",
  };
  fake = await installFakePulumi({ outputs, config: { devices: oldEntries } });
  plugA = await startSimulatedDevice({
    model: "encrypted",
    mqttCa: pki.caPem,
    requireSessionAnswers: true,
    timing: FAST_SESSION_TIMING,
  });
  plugB = await startSimulatedDevice({
    model: "legacy",
    mqttCa: pki.caPem,
    requireSessionAnswers: true,
    timing: FAST_SESSION_TIMING,
  });
});

afterAll(async () => {
  for (const device of [...old, plugA, plugB]) await device?.stop();
  await agent?.stop();
  await services?.stop();
  await fake?.cleanup();
  await pki?.cleanup();
});

const control = (...args: string[]) =>
  runScript("control.mjs", [...args, "--timeout", "10"], { env: fake.env });

/** Restarts the device once Config.Key has reached it, as the user is told to (re-pointing from the LAN). */
function powerCycleAfterConfigKey(device: SimulatedDevice) {
  const listener = (exchange: { namespace?: string | undefined }) => {
    if (exchange.namespace !== Namespace.ConfigKey) return;
    device.events.off("http-request", listener);
    setTimeout(() => void device.restart(), 200);
  };
  device.events.on("http-request", listener);
}

/** `provision.mjs rekey` from the LAN, power-cycling the device when told to. */
async function rekey(name: string, device: SimulatedDevice) {
  powerCycleAfterConfigKey(device);
  const run = await runScript(
    "provision.mjs",
    ["rekey", name, "--ip", `${device.ip}:${device.port}`, "--timeout", "30"],
    { env: fake.env },
  );
  expect(run.stderr).not.toMatch(/error:/);
  expect(run.code).toBe(0);
}

describe("per-device keys on the mysql variant", () => {
  it("provision.mjs gives each new device its own key, login and stack entry; the agent keeps it online", async () => {
    for (const [device, name] of [
      [plugA, "plug-a"],
      [plugB, "plug-b"],
    ] as const) {
      const run = await runScript(
        "provision.mjs",
        setupArgs(`${device.ip}:${device.port}`, { name, timeout: "30" }),
        {
          env: fake.env,
        },
      );
      expect(run.stderr).not.toMatch(/error:/);
      expect(run.code).toBe(0);
      expect(run.stderr).toMatch(/Config\.Key\) — user id 5150, its own key \(generation 1\)/);
      expect(await entryOf(device)).toEqual({
        name,
        mac: device.macAddress,
        uuid: device.uuid,
        keyScheme: "per-device",
        keyGeneration: "1",
      });
      expect(device.state).toMatchObject({ mode: "online", session: { clock: true, bind: true } });
    }
    const devices = (await listAccounts(services.conn)).filter((account) => account.kind === "device");
    expect(devices.map((account) => account.username).sort()).toEqual(
      [...old, plugA, plugB].map((device) => device.macAddress).sort(),
    );
  }, 120_000);

  it("A's key and login cannot log in as B, nor read or write B's topics", async () => {
    const keyA = derivePerDeviceKey(SECRET, plugA.uuid, 1);
    const loginA = deviceMqttCredentials(plugA.macAddress, keyA, USER_ID);
    const asB = mqtt.connectAsync(broker.url, {
      ca: pki.caPem,
      username: plugB.macAddress,
      password: loginA.password,
      clientId: `fmware:${plugB.uuid}_x`,
      reconnectPeriod: 0,
    });
    await expect(asB).rejects.toThrow(/not authori[sz]ed|bad user name or password/i);

    const client = await mqtt.connectAsync(broker.url, {
      ca: pki.caPem,
      ...loginA,
      clientId: `fmware:${plugA.uuid}_y`,
      reconnectPeriod: 0,
    });
    try {
      for (const topic of [deviceSubscribeTopic(plugB.uuid), devicePublishTopic(plugB.uuid)]) {
        expect(await trySubscribe(client, topic, 1), topic).toBe(false);
      }
      // A publish to B's command topic is dropped by the broker: B never sees it.
      let commanded = false;
      plugB.events.on("command", () => {
        commanded = true;
      });
      await client.publishAsync(
        deviceSubscribeTopic(plugB.uuid),
        JSON.stringify({ header: {}, payload: {} }),
      );
      await sleep(500);
      expect(commanded).toBe(false);
    } finally {
      await client.endAsync(true);
    }
  });

  it("B rejects a command signed with A's key or the shared key (5001)", async () => {
    const commander = async (key: string) =>
      DeviceCommander.connect({
        brokerUrl: broker.url,
        ca: pki.caPem,
        username: CONTROLLER.username,
        password: CONTROLLER.password,
        key,
        userId: USER_ID,
      });
    const withA = await commander(derivePerDeviceKey(SECRET, plugA.uuid, 1));
    try {
      await expect(withA.request(plugB.uuid, toggleXSetRequest(true), 10_000)).rejects.toThrow(/5001/);
      expect(plugB.state.toggles[0]?.on).toBe(false);
    } finally {
      await withA.close();
    }
    const withShared = await commander(SHARED);
    try {
      await expect(withShared.request(plugB.uuid, toggleXSetRequest(true), 10_000)).rejects.toThrow(/5001/);
    } finally {
      await withShared.close();
    }
  });

  it("control.mjs switches both kinds of device with the key each holds, and monitor.mjs shows both", async () => {
    for (const name of ["plug-b", "old-one"]) {
      const run = await control(name, "on");
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
    }
    expect(plugB.state.toggles[0]?.on).toBe(true);
    expect(old[0]?.state.toggles[0]?.on).toBe(true);

    const monitor = runScript("monitor.mjs", ["--json", "--count", "4"], { env: fake.env });
    await sleep(3_000);
    for (const name of ["plug-b", "old-one"]) expect((await control(name, "off")).code).toBe(0);
    const watched = await monitor;
    expect(watched.code).toBe(0);
    const devices = new Set(
      watched.stdout
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line).device),
    );
    expect(devices).toEqual(new Set(["plug-b", "old-one"]));
  });

  it("devices.mjs lists which key each device holds, and prints one device's key on request", async () => {
    const list = await runScript("devices.mjs", ["list"], { env: fake.env });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/plug-a\s+\S+\s+\S+\s+device\s+own \(gen 1\)/);
    expect(list.stdout).toMatch(/old-one\s+\S+\s+\S+\s+device\s+shared/);
    expect(list.stdout).not.toContain(derivePerDeviceKey(SECRET, plugA.uuid, 1));
    const key = await runScript("devices.mjs", ["key", "plug-a"], { env: fake.env });
    expect(key.code).toBe(0);
    expect(key.stdout.trim()).toBe(derivePerDeviceKey(SECRET, plugA.uuid, 1));
  });

  it("rekey moves the shared-key devices one by one, each reachable throughout, each on its own login", async () => {
    const [first, second] = old as [SimulatedDevice, SimulatedDevice];
    const reconnected = once(first.events, "mqtt-connected");
    await rekey("old-one", first);
    const [login] = (await reconnected) as [{ username: string }];
    expect(login.username).toBe(first.macAddress);
    expect(await entryOf(first)).toMatchObject({ keyScheme: "per-device", keyGeneration: "1" });

    // Mid-migration: one device on its own key, one still on the shared key; both answer.
    await waitFor("the agent to answer the migrated device", () => first.state.session.bind === true, 10_000);
    for (const name of ["old-one", "old-two"]) expect((await control(name, "toggle")).code).toBe(0);

    // Its old login is gone: the shared key no longer logs in as it.
    const stale = mqtt.connectAsync(broker.url, {
      ca: pki.caPem,
      ...deviceMqttCredentials(first.macAddress, SHARED, USER_ID),
      clientId: `fmware:${first.uuid}_z`,
      reconnectPeriod: 0,
    });
    await expect(stale).rejects.toThrow(/not authori[sz]ed|bad user name or password/i);

    await rekey("old-two", second);
    for (const name of ["old-one", "old-two"]) expect((await control(name, "toggle")).code).toBe(0);
  }, 120_000);

  it("rekey rotates a device's own key: the old key is refused, the new one works", async () => {
    await rekey("plug-a", plugA);
    expect(await entryOf(plugA)).toMatchObject({ keyScheme: "per-device", keyGeneration: "2" });
    expect((await control("plug-a", "on")).code).toBe(0);

    const oldKey = await DeviceCommander.connect({
      brokerUrl: broker.url,
      ca: pki.caPem,
      username: CONTROLLER.username,
      password: CONTROLLER.password,
      key: derivePerDeviceKey(SECRET, plugA.uuid, 1),
      userId: USER_ID,
    });
    try {
      await expect(oldKey.request(plugA.uuid, toggleXSetRequest(false), 10_000)).rejects.toThrow(/5001/);
    } finally {
      await oldKey.close();
    }
  });

  it("rotating the stack secret keeps every device online while they move one by one", async () => {
    const started = await runScript("devices.mjs", ["rotate-secret"], { env: fake.env });
    expect(started.stderr).toBe("");
    expect(started.code).toBe(0);
    const config = await fake.config();
    const newSecret = config["meross-broker:deviceKeySecret"] as string;
    expect(newSecret).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(config["meross-broker:previousDeviceKeySecret"]).toBe(SECRET);
    expect(started.stdout).not.toContain(newSecret);
    expect(started.stdout).not.toContain(SECRET);
    // Both secrets reached the CLI on standard input: no command line (visible in `ps`) carries them.
    const commandLines = (await fake.calls()).map((call) => call.args.join(" "));
    expect(commandLines.some((line) => line.includes("deviceKeySecret"))).toBe(true);
    expect(commandLines.filter((line) => line.includes(newSecret) || line.includes(SECRET))).toEqual([]);
    const entries = config["meross-broker:devices"] as Record<string, unknown>[];
    expect(entries.map((entry) => entry.keySecret)).toEqual(["previous", "previous", "previous", "previous"]);
    // A second rotation before the first has finished is refused.
    expect((await runScript("devices.mjs", ["rotate-secret"], { env: fake.env })).stderr).toMatch(
      /a rotation is still under way/,
    );

    // What the next `pulumi up` does: both secrets in the outputs and the agent; the rows stay as
    // they are, since every device's entry says its key comes from the previous secret.
    await fake.setOutputs({ ...outputs, deviceKeySecret: newSecret, previousDeviceKeySecret: SECRET });
    await agent.stop();
    agent = await startTestAgent({
      broker,
      pki,
      key: SHARED,
      keySecret: newSecret,
      previousKeySecret: SECRET,
      userId: USER_ID,
      account: AGENT,
    });
    const list = await runScript("devices.mjs", ["list"], { env: fake.env });
    expect(list.stdout).toMatch(/plug-b\s+\S+\s+\S+\s+device\s+own \(gen 1, previous secret\)/);

    await rekey("plug-b", plugB);
    expect(await entryOf(plugB)).toEqual({
      name: "plug-b",
      mac: plugB.macAddress,
      uuid: plugB.uuid,
      keyScheme: "per-device",
      keyGeneration: "2",
    });
    const moved = await runScript("devices.mjs", ["key", "plug-b"], { env: fake.env });
    expect(moved.stdout.trim()).toBe(derivePerDeviceKey(newSecret, plugB.uuid, 2));
    await waitFor("the agent to answer the moved device", () => plugB.state.session.bind === true, 10_000);
    // Moved and not yet moved: both answer.
    for (const name of ["plug-b", "old-two"]) {
      const run = await control(name, "toggle");
      expect(run.stderr, name).toBe("");
      expect(run.code).toBe(0);
    }
  }, 120_000);
});
