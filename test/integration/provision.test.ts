import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type MosquittoInstance, startMosquitto } from "../../lib/local-stack/mosquitto.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { deviceMqttCredentials } from "../../lib/meross/credentials.ts";
import { Namespace } from "../../lib/meross/messages/index.ts";
import {
  SIMULATED_HOME_NETWORK,
  type SimulatedDevice,
  type SimulatedModel,
} from "../../lib/simulator/index.ts";
import { type FakePulumi, installFakePulumi, testStackOutputs } from "../support/fake-pulumi.ts";
import { startPairingDevice } from "../support/online-device.ts";
import { runScript } from "../support/run-script.ts";
import { setupArgs } from "../support/setup-args.ts";

// provision.mjs run as a child process against the simulator over real HTTP, onto a real Mosquitto
// (anonymous variant), until the device is online. The mysql variant's journey is journey-mysql.

const HOST = "127.0.0.1";
const USER_ID = "1234";
const KEY = "provision-test-key-0123";
const { ssid: SSID, password: WIFI_PASS } = SIMULATED_HOME_NETWORK;

let pki: LocalPki;
let broker: MosquittoInstance;
let fake: FakePulumi | undefined;

beforeAll(async () => {
  pki = await makeLocalPki({ host: HOST });
  broker = await startMosquitto({ variant: "anonymous", pki });
});

afterEach(async () => {
  await fake?.cleanup();
  fake = undefined;
});

afterAll(async () => {
  await broker?.stop();
  await pki?.cleanup();
});

const pairingDevice = (model: SimulatedModel) => startPairingDevice(model, pki.caPem);

function flagsWithoutStack(device: SimulatedDevice, key = KEY): string[] {
  return [
    "--no-stack",
    "--ip",
    `${device.ip}:${device.port}`,
    "--mqtt",
    broker.url,
    "--user",
    USER_ID,
    "--key",
    key,
    "--ca",
    pki.caFile,
    "--auth-mode",
    "anonymous",
    "--timeout",
    "30",
  ];
}

/** `setup` without the stack, joining the simulated home network; `extra` flags follow. */
function setupWithoutStack(device: SimulatedDevice, ...extra: string[]): string[] {
  return ["setup", ...flagsWithoutStack(device), "--wifi-ssid", SSID, "--wifi-pass", WIFI_PASS, ...extra];
}

describe("provision.mjs setup onto the anonymous broker", () => {
  it.each([
    ["gen1", Namespace.ConfigWifi, false],
    ["legacy", Namespace.ConfigWifi, false],
    ["encrypted", Namespace.ConfigWifiX, true],
  ] as const)("takes a %s device from pairing mode to online", async (model, wifiNamespace, encrypted) => {
    const { device, requests } = await pairingDevice(model);
    const run = await runScript(
      "provision.mjs",
      setupWithoutStack(device, "--set-time", "--timezone", "Europe/Dublin"),
    );
    expect(run.stderr).not.toMatch(/error:/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(`Online: ${device.type}-[0-9a-f]{6} connected to mqtts://127.0.0.1:${broker.port}`),
    );
    expect(run.stdout).toContain(`MQTT username        ${device.macAddress}`);
    expect(run.stdout).not.toContain(WIFI_PASS);
    expect(run.stderr).not.toContain(WIFI_PASS);

    const { state } = device;
    expect(state.mode).toBe("online");
    expect(state.key).toBe(KEY);
    expect(state.userId).toBe(USER_ID);
    expect(state.gateways).toEqual([
      { host: HOST, port: broker.port },
      { host: HOST, port: broker.port },
    ]);
    expect(state.timezone).toBe("Europe/Dublin");
    // The scan's values for the SSID were used, since no --wifi-bssid/--wifi-channel were given.
    expect(state.wifi).toMatchObject({
      ssid: SSID,
      namespace: wifiNamespace,
      bssid: SIMULATED_HOME_NETWORK.bssid,
      channel: SIMULATED_HOME_NETWORK.channel,
      encryption: SIMULATED_HOME_NETWORK.encryption,
      cipher: SIMULATED_HOME_NETWORK.cipher,
    });
    const sequence = requests.map((request) => request.namespace);
    expect(sequence).toEqual([
      Namespace.SystemAll,
      Namespace.SystemAbility,
      ...(encrypted ? [Namespace.EncryptEcdhe] : []),
      Namespace.ConfigWifiList,
      Namespace.SystemTime,
      Namespace.ConfigKey,
      wifiNamespace,
    ]);
    const afterKeys = requests.slice(encrypted ? 3 : 2);
    expect(afterKeys.every((request) => request.encrypted === encrypted)).toBe(true);
  });

  it("joins an open network given no --wifi-pass: sent as open (empty password, encryption 0, cipher 0)", async () => {
    const { device } = await pairingDevice("encrypted");
    const run = await runScript("provision.mjs", [
      "setup",
      ...flagsWithoutStack(device),
      "--wifi-ssid",
      "Cafe Guest",
    ]);
    expect(run.stderr).not.toMatch(/error:/);
    expect(run.code).toBe(0);
    expect(device.state.mode).toBe("online");
    expect(device.state.wifi).toMatchObject({
      ssid: "Cafe Guest",
      password: "",
      encryption: 0,
      cipher: 0,
      namespace: Namespace.ConfigWifiX,
    });

    const secured = await pairingDevice("legacy");
    const refused = await runScript("provision.mjs", [
      "setup",
      ...flagsWithoutStack(secured.device),
      "--wifi-ssid",
      SSID,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /"SimulatedHome" is secured in the device's scan \(encryption 6\): give its password with --wifi-pass/,
    );
    expect(secured.device.state.key).toBeUndefined();
  });

  it("takes the broker, user id, key and CA from the stack outputs and records the device in the stack config", async () => {
    const { device } = await pairingDevice("legacy");
    fake = await installFakePulumi({
      outputs: testStackOutputs({ broker, pki, userId: USER_ID, deviceKey: KEY }),
    });
    const run = await runScript(
      "provision.mjs",
      setupArgs(`${device.ip}:${device.port}`, { name: "desk lamp", json: true }),
      { env: fake.env },
    );
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({
      name: "desk lamp",
      broker: `mqtts://127.0.0.1:${broker.port}`,
      wifiNamespace: Namespace.ConfigWifi,
      device: { uuid: device.uuid, macAddress: device.macAddress, mqtt: { username: device.macAddress } },
    });
    expect(result.online.seconds).toBeGreaterThan(0);
    expect(result.device.mqtt.password).toBeUndefined();
    expect(device.state.key).toBe(KEY);
    expect((await fake.config())["meross-broker:devices"]).toEqual([
      { name: "desk lamp", mac: device.macAddress, uuid: device.uuid },
    ]);
  });

  it("re-points a device already on the LAN with --no-wifi, signed with its current key", async () => {
    const { device } = await pairingDevice("encrypted");
    const first = await runScript("provision.mjs", setupWithoutStack(device));
    expect(first.code).toBe(0);
    const newKey = "second-key-after-repoint";
    // A real device keeps its old broker connection until it restarts; here the "user" restarts it.
    device.events.on("http-request", (exchange) => {
      if (exchange.namespace === Namespace.ConfigKey && exchange.replyMethod === "SETACK")
        void device.restart();
    });
    const wifiBefore = device.state.wifi;
    const repoint = await runScript("provision.mjs", [
      "setup",
      ...flagsWithoutStack(device, newKey),
      "--no-wifi",
      "--current-key",
      KEY,
    ]);
    expect(repoint.stderr).toMatch(/unplug it and plug it back in/);
    expect(repoint.code).toBe(0);
    expect(repoint.stdout).toMatch(/Online:/);
    expect(device.state.key).toBe(newKey);
    expect(device.state.mode).toBe("online");
    expect(device.state.wifi).toEqual(wifiBefore);
  });
});

describe("provision.mjs info", () => {
  it("prints the identity, broker, login and topics, and the password only when asked", async () => {
    const { device, requests } = await pairingDevice("encrypted");
    const base = [
      "info",
      "--no-stack",
      "--ip",
      `${device.ip}:${device.port}`,
      "--user",
      USER_ID,
      "--key",
      KEY,
    ];
    const text = await runScript("provision.mjs", [...base, "--wifi-list"]);
    expect(text.code).toBe(0);
    const expected = deviceMqttCredentials(device.macAddress, KEY, USER_ID);
    expect(text.stdout).toContain(`UUID                 ${device.uuid}`);
    expect(text.stdout).toContain(`MQTT username        ${device.macAddress}`);
    expect(text.stdout).toMatch(/Current MQTT broker\s+\(none set\)/);
    expect(text.stdout).toContain(`/appliance/${device.uuid}/subscribe`);
    expect(text.stdout).toMatch(/HTTP encryption\s+yes/);
    expect(text.stdout).toContain(`${SSID}  bssid ${SIMULATED_HOME_NETWORK.bssid}  channel 3`);
    expect(text.stdout).not.toContain(expected.password);

    const json = await runScript("provision.mjs", [...base, "--json", "--show-password"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      type: "mss110",
      uuid: device.uuid,
      macAddress: device.macAddress,
      mqtt: expected,
      topics: { publish: `/appliance/${device.uuid}/publish` },
      wifiNamespace: Namespace.ConfigWifiX,
    });
    // Read-only: nothing but reads (and the key exchange a scan needs) reached the device.
    expect(new Set(requests.map((request) => request.method))).toEqual(new Set(["GET", "SET"]));
    expect(requests.filter((request) => request.method === "SET").map((r) => r.namespace)).toEqual([
      Namespace.EncryptEcdhe,
    ]);
    expect(device.state.key).toBeUndefined();
  });
});
