import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import mqtt, { type MqttClient } from "mqtt";
import type { Connection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionAgent } from "../../lib/agent/agent.ts";
import { EXIT } from "../../lib/cli/exit-codes.ts";
import { DeviceCommander } from "../../lib/control/client.ts";
import { goAuthPluginInfo } from "../../lib/local-stack/go-auth.ts";
import type { MariaDbInstance } from "../../lib/local-stack/mariadb.ts";
import type { MosquittoInstance } from "../../lib/local-stack/mosquitto.ts";
import { type MysqlVariant, startMysqlVariant } from "../../lib/local-stack/mysql-variant.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { parseMessage } from "../../lib/meross/envelope.ts";
import { Namespace, parseToggleX, toggleXSetRequest } from "../../lib/meross/messages/index.ts";
import { devicePublishTopic } from "../../lib/meross/topics.ts";
import {
  SIMULATED_HOME_NETWORK,
  type SimulatedDevice,
  startSimulatedDevice,
} from "../../lib/simulator/index.ts";
import { controllerAccount, serviceAccount } from "../../lib/store/accounts.ts";
import { listAccounts, type StoredAccount } from "../../lib/store/database.ts";
import { type FakePulumi, installFakePulumi, testStackOutputs } from "../support/fake-pulumi.ts";
import { runScript } from "../support/run-script.ts";
import { startTestAgent } from "../support/session-agent.ts";
import { setupArgs } from "../support/setup-args.ts";
import { waitFor } from "../support/wait.ts";

// The whole journey on the mysql variant, as a user makes it: real MariaDB, real Mosquitto with the
// go-auth plugin, the session agent, and scripts/provision.mjs + scripts/devices.mjs run as child
// processes. The Pulumi CLI cannot run here, so `pulumi` on the scripts' PATH is the fake from
// test/support/fake-pulumi.ts serving these services as the stack's outputs.

const HOST = "127.0.0.1";
const USER_ID = "4242";
const KEY = "journey-device-key-0123456789";
const NAME = "journey plug";
const CONTROLLER = controllerAccount("homeassistant", "homeassistant-password-for-tests");
const AGENT = serviceAccount("session-agent", "session-agent-password-for-tests");
/** Longer than the go-auth cache startMosquitto configures for tests. */
const CACHE_EXPIRY_MS = 1_500;

let pki: LocalPki;
let services: MysqlVariant;
let db: MariaDbInstance;
let conn: Connection;
let broker: MosquittoInstance;
let fake: FakePulumi;
let agent: SessionAgent;
let device: SimulatedDevice;
let second: SimulatedDevice | undefined;
let commander: DeviceCommander | undefined;
let watcher: MqttClient | undefined;

beforeAll(async () => {
  console.info(`journey-mysql: auth plugin ${goAuthPluginInfo()}`);
  pki = await makeLocalPki({ host: HOST });
  // What `pulumi up` puts in MySQL before any device is provisioned.
  services = await startMysqlVariant(pki, [CONTROLLER, AGENT]);
  ({ db, conn, broker } = services);
  agent = await startTestAgent({ broker, pki, key: KEY, userId: USER_ID, account: AGENT });
  fake = await installFakePulumi({
    outputs: testStackOutputs({ broker, pki, userId: USER_ID, deviceKey: KEY, mysql: db }),
  });
  // Newer firmware: hangs up unless the broker side answers Clock and Bind, which the agent does.
  device = await startSimulatedDevice({ model: "encrypted", mqttCa: pki.caPem, requireSessionAnswers: true });
});

afterAll(async () => {
  await commander?.close();
  await watcher?.endAsync(true);
  await device?.stop();
  await second?.stop();
  await agent?.stop();
  await services?.stop();
  await fake?.cleanup();
  await pki?.cleanup();
});

const devicesIn = (accounts: StoredAccount[]) => accounts.filter((account) => account.kind === "device");

describe("journey on the mysql variant", () => {
  it("provision.mjs registers the device before Config.Key, and it comes online", async () => {
    let rowsAtConfigKey: Promise<StoredAccount[]> | undefined;
    device.events.on("http-request", (exchange) => {
      if (exchange.namespace === Namespace.ConfigKey) rowsAtConfigKey ??= listAccounts(conn);
    });
    const connected = once(device.events, "mqtt-connected");

    const run = await runScript(
      "provision.mjs",
      setupArgs(`${device.ip}:${device.port}`, { name: NAME, timeout: "30" }),
      { env: fake.env },
    );
    expect(run.stderr).not.toMatch(/error:/);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/✓ Register its MQTT login and ACL in MySQL — 48:e1:e9:[0-9a-f:]+ created/);
    expect(run.stdout).toMatch(`Online: ${NAME} connected to ${broker.url}`);

    // The row was already there when Config.Key reached the device.
    expect(devicesIn(await (rowsAtConfigKey as Promise<StoredAccount[]>))).toMatchObject([
      { username: device.macAddress, name: NAME, uuid: device.uuid },
    ]);
    const [login] = (await connected) as [{ username: string }];
    expect(login.username).toBe(device.macAddress);
    // Setup reports the device at its first message; the agent's Bind SETACK may land a moment later.
    await waitFor("the agent to answer Clock and Bind", () => device.state.session.bind, 10_000);
    expect(device.state).toMatchObject({ mode: "online", session: { clock: true, bind: true } });

    const accounts = await listAccounts(conn);
    expect(devicesIn(accounts)).toMatchObject([
      { username: device.macAddress, name: NAME, uuid: device.uuid },
    ]);
    // The watcher's one-off controller login is gone again.
    expect(accounts.map((account) => account.username).sort()).toEqual(
      [AGENT.username, CONTROLLER.username, device.macAddress].sort(),
    );
    expect((await fake.config())["meross-broker:devices"]).toEqual([
      { name: NAME, mac: device.macAddress, uuid: device.uuid },
    ]);
  });

  it("a controller toggles it and its state PUSH arrives", async () => {
    const settings = {
      brokerUrl: broker.url,
      ca: pki.caPem,
      username: CONTROLLER.username,
      password: CONTROLLER.password,
      key: KEY,
      userId: USER_ID,
    };
    watcher = await mqtt.connectAsync(broker.url, {
      ca: pki.caPem,
      username: CONTROLLER.username,
      password: CONTROLLER.password,
      clientId: "journey-watcher",
    });
    await watcher.subscribeAsync(devicePublishTopic(device.uuid));
    const pushed = new Promise<boolean>((resolve) => {
      watcher?.on("message", (_topic, payload) => {
        const message = parseMessage(payload);
        if (message.header.method === "PUSH" && message.header.namespace === Namespace.ControlToggleX) {
          resolve(parseToggleX(message.payload)[0]?.on ?? false);
        }
      });
    });

    commander = await DeviceCommander.connect(settings);
    const { reply } = await commander.request(device.uuid, toggleXSetRequest(true), 10_000);
    expect(reply.header.method).toBe("SETACK");
    expect(await pushed).toBe(true);
    expect(device.state.toggles[0]?.on).toBe(true);
  });

  it("devices.mjs lists it with its MAC, uuid, kind and creation time", async () => {
    const run = await runScript("devices.mjs", ["list"], { env: fake.env });
    expect(run.code).toBe(0);
    const row = run.stdout.split("\n").find((line) => line.startsWith(NAME));
    expect(row).toMatch(
      new RegExp(
        `^${NAME}\\s+${device.macAddress}\\s+${device.uuid}\\s+device\\s+shared\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+yes$`,
      ),
    );
    expect(run.stdout).toMatch(/homeassistant\s+-\s+-\s+controller/);

    const json = await runScript("devices.mjs", ["list", "--json"], { env: fake.env });
    expect(JSON.parse(json.stdout).entries).toContainEqual(
      expect.objectContaining({
        name: NAME,
        mac: device.macAddress,
        uuid: device.uuid,
        kind: "device",
        inStackConfig: true,
      }),
    );
  });

  it("devices.mjs revoke removes its row and config entry, and its next connect is refused", async () => {
    const run = await runScript("devices.mjs", ["revoke", device.uuid], { env: fake.env });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Revoked ${NAME} (${device.macAddress}).`);
    expect(devicesIn(await listAccounts(conn))).toEqual([]);
    expect((await fake.config())["meross-broker:devices"]).toEqual([]);

    await sleep(CACHE_EXPIRY_MS);
    const refused = new Promise<string>((resolve) => {
      device.events.on("mqtt-error", ({ reason }) => resolve(reason));
    });
    let reconnected = false;
    device.events.on("mqtt-connected", () => {
      reconnected = true;
    });
    await device.restart();
    expect(await refused).toMatch(/not authori[sz]ed|bad user name or password/i);
    expect(reconnected).toBe(false);

    const again = await runScript("devices.mjs", ["revoke", device.uuid], { env: fake.env });
    expect(again.code).toBe(EXIT.notFound);
    expect(again.stderr).toMatch(
      /no device named ".*" \(by name, MAC or uuid\) in MySQL or in the stack config/,
    );
  });
});

describe("without the stack, after a failed first attempt", () => {
  it("a re-run with the right Wi-Fi password reuses the registration and brings the device online", async () => {
    second = await startSimulatedDevice({ model: "legacy", mqttCa: pki.caPem, requireSessionAnswers: true });
    const mysqlUrl = `mysql://${db.user}:${encodeURIComponent(db.password)}@${db.host}:${db.port}/${db.database}`;
    const args = (wifiPass: string, timeout: string) =>
      setupArgs(`${second?.ip}:${second?.port}`, {
        "no-stack": true,
        "auth-mode": "mysql",
        mysql: mysqlUrl,
        mqtt: broker.url,
        ca: pki.caFile,
        user: USER_ID,
        key: KEY,
        "wifi-pass": wifiPass,
        timeout,
      });

    const typo = await runScript("provision.mjs", args("simulated-wifi-typo", "4"));
    expect(typo.code).toBe(EXIT.timeout);
    expect(typo.stderr).toMatch(/the next `pulumi up` removes its\nMySQL login/);
    expect(typo.stderr).toMatch(/Wi-Fi: the device did not join/);
    expect(devicesIn(await listAccounts(conn))).toMatchObject([{ username: second.macAddress }]);

    const fixed = await runScript("provision.mjs", args(SIMULATED_HOME_NETWORK.password, "30"));
    expect(fixed.code).toBe(0);
    expect(fixed.stderr).toMatch(
      new RegExp(`Register its MQTT login and ACL in MySQL — ${second.macAddress} unchanged`),
    );
    expect(devicesIn(await listAccounts(conn))).toMatchObject([{ username: second.macAddress }]);
    expect(second.state.mode).toBe("online");

    const listed = await runScript("devices.mjs", ["list", "--no-stack", "--mysql", mysqlUrl]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(
      new RegExp(`${second.macAddress}\\s+${second.uuid}\\s+device\\s+-\\s+\\S+ \\S+\\s+-`),
    );
  });
});
