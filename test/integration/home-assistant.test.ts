import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import mqtt from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SessionAgent } from "../../lib/agent/agent.ts";
import { EXIT } from "../../lib/cli/exit-codes.ts";
import { SERVICE_ACCOUNT_NAME, type SessionAnswerer } from "../../lib/config/stack.ts";
import { type MysqlVariant, startMysqlVariant } from "../../lib/local-stack/mysql-variant.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { freePort } from "../../lib/local-stack/ports.ts";
import { spawnServer } from "../../lib/local-stack/processes.ts";
import { buildMessage, type Header } from "../../lib/meross/envelope.ts";
import { Namespace } from "../../lib/meross/messages/index.ts";
import { isSignatureValid } from "../../lib/meross/sign.ts";
import { controllerAccount, deviceAccount, serviceAccount } from "../../lib/store/accounts.ts";
import { type FakePulumi, installFakePulumi, testStackOutputs } from "../support/fake-pulumi.ts";
import {
  grantedQos,
  MEROSS_LAN_FROM,
  MEROSS_LAN_TIMEOUT_MS,
  type MerossLanController,
  merossLanWantsTimeFix,
  startMerossLan,
} from "../support/meross-lan.ts";
import { FAST_SESSION_TIMING, type OnlineDevice, startOnlineDevice } from "../support/online-device.ts";
import { runScript } from "../support/run-script.ts";
import { startTestAgent } from "../support/session-agent.ts";
import { waitFor } from "../support/wait.ts";

/**
 * Home Assistant's meross_lan on the mysql variant, as its traffic really is (test/support/meross-lan.ts),
 * against Debian's Mosquitto with the go-auth plugin (or its stand-in), MariaDB, the kit's rendered
 * config and the kit's ACL rows: a controller login, a device login, and the agent's.
 */

const HOST = "127.0.0.1";
const KEY = "home-assistant-test-device-key";
const USER_ID = "4242";
/** Its MAC is the last 12 digits, as on real devices. */
const UUID = "2307065833780651200148e1e9cf4534";
const MAC = "48:e1:e9:cf:45:34";
/** A zone whose tzdata has no negative DST and lies east of UTC (see merossLanWantsTimeFix). */
const TIMEZONE = "Europe/Berlin";
const CONTROLLER = controllerAccount("homeassistant", "home-assistant-controller-password");
const AGENT = serviceAccount(SERVICE_ACCOUNT_NAME, "session-agent-password-for-tests");
/** Past the moment a device that got no Clock/Bind answers hangs up. */
const SURVIVE_MS = (FAST_SESSION_TIMING.sessionTimeoutMs ?? 3_000) + 1_500;

let pki: LocalPki;
let variant: MysqlVariant;
const running: { stop(): Promise<unknown> }[] = [];

async function merossLan(): Promise<MerossLanController> {
  const controller = await startMerossLan({
    brokerUrl: variant.broker.url,
    ca: pki.caPem,
    username: CONTROLLER.username,
    password: CONTROLLER.password,
    key: KEY,
  });
  running.push(controller);
  return controller;
}

async function agent(sessionAnswers: SessionAnswerer = "agent"): Promise<SessionAgent> {
  const started = await startTestAgent({
    broker: variant.broker,
    pki,
    key: KEY,
    userId: USER_ID,
    account: AGENT,
    sessionAnswers,
    ...(sessionAnswers === "agent" ? { timezone: TIMEZONE } : {}),
  });
  running.push(started);
  return started;
}

/** The plug as provisioning leaves it, demanding Clock and Bind answers as newer firmware does. */
async function plug(): Promise<OnlineDevice> {
  const online = await startOnlineDevice({
    broker: variant.broker,
    key: KEY,
    userId: USER_ID,
    ca: pki.caPem,
    uuid: UUID,
    requireSessionAnswers: true,
  });
  running.push(online.device);
  return online;
}

/** What the device took as answers to its session messages, by namespace. */
interface SeenAnswer {
  at: number;
  header: Header;
  payload: Record<string, unknown>;
}

function timeSetsSeen(online: OnlineDevice) {
  return online.events.filter(
    (entry) =>
      entry.event === "command" && (entry.detail as { namespace: string }).namespace === Namespace.SystemTime,
  );
}

function answersSeen(online: OnlineDevice, namespace: string): SeenAnswer[] {
  return online.events
    .filter((entry) => entry.event === "session-answered")
    .map((entry) => ({
      at: entry.at,
      ...(entry.detail as { namespace: string; header: Header; payload: Record<string, unknown> }),
    }))
    .filter((answer) => answer.namespace === namespace);
}

beforeAll(async () => {
  pki = await makeLocalPki({ host: HOST });
  variant = await startMysqlVariant(
    pki,
    [deviceAccount({ name: "plug", mac: MAC, uuid: UUID }, KEY, USER_ID), CONTROLLER, AGENT],
    // brokerDebugLog, which docs/home-assistant.md tells users to turn on when something is missing.
    { debugLog: true },
  );
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((client) => client.stop()));
});

afterAll(async () => {
  await variant?.stop();
  await pki?.cleanup();
});

describe("Home Assistant's meross_lan over MQTT on the mysql variant", () => {
  it("discovers a device: its subscription is granted, and Ability and All are answered within 5 s on its reply topic", async () => {
    const ha = await merossLan();
    expect(ha.granted, "SUBACK for /appliance/+/publish (128 = refused)").toEqual([0]);
    // Home Assistant's own topics are outside the controller ACL: refused, and the connection carries on.
    expect(await grantedQos(ha.client, "homeassistant/#")).toEqual([128]);
    await ha.client.publishAsync("homeassistant/status", "online");
    const online = await plug();

    // Discovery starts from the first message meross_lan sees from an unknown device.
    await waitFor("meross_lan to hear the device", () =>
      ha.received.some((entry) => entry.deviceId === UUID),
    );
    for (const [namespace, key] of [
      [Namespace.SystemAbility, "ability"],
      [Namespace.SystemAll, "all"],
    ] as const) {
      const started = Date.now();
      const reply = await ha.request(UUID, "GET", namespace, {});
      expect(reply, `GET ${namespace} answered within ${MEROSS_LAN_TIMEOUT_MS} ms`).toBeDefined();
      expect(Date.now() - started).toBeLessThan(MEROSS_LAN_TIMEOUT_MS);
      expect(reply?.header).toMatchObject({
        method: "GETACK",
        namespace,
        from: `/appliance/${UUID}/publish`,
      });
      expect(isSignatureValid(reply?.header as Header, KEY), "signed with the hub key (get_replykey)").toBe(
        true,
      );
      expect(reply?.payload[key]).toBeTypeOf("object");
      const heard = ha.received.find((entry) => entry.message.header.messageId === reply?.header.messageId);
      expect(heard).toMatchObject({ topic: MEROSS_LAN_FROM, deviceId: UUID });
    }

    // meross_lan alone keeps the device online: its Clock/Bind/ConsumptionConfig answers get through.
    await sleep(SURVIVE_MS);
    expect(online.disconnects().map((entry) => entry.detail)).toEqual([]);
    expect(online.device.state.session).toEqual({ clock: true, bind: true, consumptionConfig: true });
  });

  it("with the agent also connected, every answer the device gets agrees, and only the agent sets the zone", async () => {
    await agent();
    const ha = await merossLan();
    const online = await plug();

    const namespaces = [Namespace.SystemClock, Namespace.ControlBind, Namespace.ControlConsumptionConfig];
    await waitFor("two answers to each session message", () =>
      namespaces.every((namespace) => answersSeen(online, namespace).length >= 2),
    );
    await waitFor("the zone to be set", () => online.device.state.timezone === TIMEZONE);
    await sleep(SURVIVE_MS);
    expect(online.disconnects().map((entry) => entry.detail)).toEqual([]);

    const clocks = answersSeen(online, Namespace.SystemClock);
    const times = clocks.map((answer) => (answer.payload.clock as { timestamp: number }).timestamp);
    expect(Math.max(...times) - Math.min(...times), "clock answers agree to the second").toBeLessThanOrEqual(
      1,
    );
    for (const [index, answer] of clocks.entries()) {
      expect(Math.abs((times[index] ?? 0) - answer.at / 1000), "each is the time it arrived").toBeLessThan(2);
    }
    for (const namespace of namespaces) {
      const answers = answersSeen(online, namespace);
      expect(
        answers.every((answer) => isSignatureValid(answer.header, KEY)),
        `${namespace} signed with the key`,
      ).toBe(true);
    }
    const binds = answersSeen(online, Namespace.ControlBind);
    expect(new Set(binds.map((answer) => answer.header.messageId)).size, "both ACK the same Bind").toBe(1);
    expect(binds.every((answer) => answer.header.method === "SETACK")).toBe(true);
    const configs = answersSeen(online, Namespace.ControlConsumptionConfig).map((answer) => answer.payload);
    expect(configs.every((payload) => JSON.stringify(payload) === JSON.stringify(configs[0]))).toBe(true);

    // The zone: the agent sent it once; meross_lan, checking the rules as it does each day, keeps them.
    expect(timeSetsSeen(online)).toHaveLength(1);
    const all = await ha.request(UUID, "GET", Namespace.SystemAll, {});
    if (!all) throw new Error("no System.All reply within 5 s");
    const { time } = (all.payload.all as { system: { time: { timezone: string; timeRule: number[][] } } })
      .system;
    expect(time.timezone).toBe(TIMEZONE);
    expect(merossLanWantsTimeFix(time, all.header.timestamp), "meross_lan would re-send DST rules").toBe(
      false,
    );
  });

  it("with sessionAnswers meross_lan, the agent stands back: one answer to each session message, and no zone from the kit", async () => {
    await agent("meross_lan");
    const ha = await merossLan();
    const online = await plug();

    const namespaces = [Namespace.SystemClock, Namespace.ControlBind, Namespace.ControlConsumptionConfig];
    await waitFor("an answer to each session message", () =>
      namespaces.every((namespace) => answersSeen(online, namespace).length >= 1),
    );
    await sleep(SURVIVE_MS);
    expect(online.disconnects().map((entry) => entry.detail)).toEqual([]);
    for (const namespace of namespaces) {
      const answered = answersSeen(online, namespace).map((answer) => answer.header.messageId);
      const sent = ha.answers
        .filter((answer) => answer.message.header.namespace === namespace)
        .map((answer) => answer.message.header.messageId);
      expect(new Set(answered).size, `${namespace}: one answer per device message`).toBe(answered.length);
      expect(answered.sort(), `${namespace}: every answer is meross_lan's`).toEqual(sent.sort());
    }
    expect(timeSetsSeen(online)).toEqual([]);
  });

  it("a reply the ACL refuses shows in the broker's debug log, naming the device and the topic", async () => {
    const online = await plug();
    const controller = await mqtt.connectAsync(variant.broker.url, {
      ca: pki.caPem,
      username: CONTROLLER.username,
      password: CONTROLLER.password,
      reconnectPeriod: 0,
    });
    running.push({ stop: () => controller.endAsync(true) });
    // A controller whose reply topic no device may write, as meross_lan's was before.
    const from = "/appliance/node_red/publish";
    const request = buildMessage({ method: "GET", namespace: Namespace.SystemAll, key: KEY, from });
    await controller.publishAsync(`/appliance/${UUID}/subscribe`, JSON.stringify(request));
    await waitFor("the device to answer", () =>
      online.events.some(
        (entry) => entry.event === "command" && (entry.detail as { replyTopic: string }).replyTopic === from,
      ),
    );
    const denied = await waitFor("the denial in the broker log", () =>
      variant.broker
        .output()
        .split("\n")
        .find((line) => line.includes("Denied PUBLISH") && line.includes(`'${from}'`)),
    );
    expect(denied).toMatch(new RegExp(`Denied PUBLISH from fmware:${UUID}_\\w+ `));
  });

  it("through a bridge from Home Assistant's own broker (HA has one broker), discovery and session answers work the same", async () => {
    // The user's existing broker: plain, anonymous, written by hand; it bridges the Meross topics to
    // the kit's broker with the controller login, as docs/home-assistant.md shows.
    const dir = await mkdtemp(join(tmpdir(), "users-broker-"));
    await chmod(dir, 0o755);
    const port = await freePort();
    await writeFile(join(dir, "meross-ca.pem"), pki.caPem, { mode: 0o644 });
    const config = [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "log_dest stdout",
      "log_type all",
      "",
      "connection meross-kit",
      `address ${HOST}:${variant.broker.port}`,
      `bridge_cafile ${join(dir, "meross-ca.pem")}`,
      "bridge_protocol_version mqttv311",
      `remote_username ${CONTROLLER.username}`,
      `remote_password ${CONTROLLER.password}`,
      "remote_clientid users-broker-bridge",
      "notifications false",
      "topic /appliance/+/publish in 0",
      "topic /appliance/+/subscribe out 0",
    ].join("\n");
    await writeFile(join(dir, "mosquitto.conf"), `${config}\n`, { mode: 0o644 });
    const usersBroker = spawnServer("stdbuf", [
      "-oL",
      "-eL",
      "/usr/sbin/mosquitto",
      "-c",
      join(dir, "mosquitto.conf"),
    ]);
    running.push({
      stop: async () => {
        await usersBroker.stop(5_000);
        await rm(dir, { recursive: true, force: true });
      },
    });
    await waitFor(
      "the bridge to log in to the kit's broker",
      () => variant.broker.output().includes(`as users-broker-bridge`),
      15_000,
      () => usersBroker.output(),
    );

    const ha = await startMerossLan({
      brokerUrl: `mqtt://127.0.0.1:${port}`,
      ca: pki.caPem,
      username: "home-assistant-on-its-own-broker",
      password: "anything: that broker is anonymous",
      key: KEY,
    });
    running.push(ha);
    expect(ha.granted).toEqual([0]);
    const online = await plug();
    await waitFor("meross_lan to hear the device", () =>
      ha.received.some((entry) => entry.deviceId === UUID),
    );
    for (const namespace of [Namespace.SystemAbility, Namespace.SystemAll]) {
      const reply = await ha.request(UUID, "GET", namespace, {});
      expect(reply?.header, `GET ${namespace} through the bridge`).toMatchObject({
        method: "GETACK",
        namespace,
      });
    }
    await sleep(SURVIVE_MS);
    expect(online.disconnects().map((entry) => entry.detail)).toEqual([]);
    expect(online.device.state.session).toEqual({ clock: true, bind: true, consumptionConfig: true });
  });
});

describe("controller-login.mjs: the login Home Assistant needs, from the stack outputs", () => {
  let pulumi: FakePulumi;
  let dir: string;

  beforeAll(async () => {
    const controllers = [CONTROLLER, controllerAccount("nodered", "node-red-controller-password")];
    pulumi = await installFakePulumi({
      outputs: testStackOutputs({
        broker: variant.broker,
        pki,
        userId: USER_ID,
        deviceKey: KEY,
        mysql: variant.db,
        controllers,
      }),
    });
    dir = await mkdtemp(join(tmpdir(), "controller-login-"));
  });

  afterAll(async () => {
    await pulumi?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const login = (...args: string[]) => runScript("controller-login.mjs", args, { env: pulumi.env });

  it("prints what the MQTT settings ask for, the password only on request, and the CA as PEM", async () => {
    const run = await login();
    expect(run.stderr).toBe("");
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toMatch(/^ {2}Broker +127\.0\.0\.1$/m);
    expect(run.stdout).toMatch(new RegExp(`^ {2}Port +${variant.broker.port}$`, "m"));
    expect(run.stdout).toMatch(/^ {2}Username +homeassistant$/m);
    expect(run.stdout).toMatch(/^ {2}Password +\(hidden: run again with --show-password\)$/m);
    expect(run.stdout).not.toContain(CONTROLLER.password);
    expect(run.stdout).toContain("The server certificate names 127.0.0.1: Broker must be exactly this");
    expect(run.stdout).toContain(pki.caPem.trim());
    expect(run.stdout).not.toContain(KEY);

    const other = await login("nodered", "--show-password");
    expect(other.stdout).toMatch(/^ {2}Password +node-red-controller-password$/m);
  });

  it("gives a login meross_lan connects with, as pasted: host, port, username, password and the CA file", async () => {
    const caFile = join(dir, "meross-ca.pem");
    const run = await login("--json", "--show-password", "--ca-file", caFile);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    const printed = JSON.parse(run.stdout) as {
      host: string;
      port: number;
      username: string;
      password: string;
    };
    expect(printed).toMatchObject({ username: CONTROLLER.username, certificateNames: ["127.0.0.1"] });
    const ha = await startMerossLan({
      brokerUrl: `mqtts://${printed.host}:${printed.port}`,
      ca: await readFile(caFile, "utf8"),
      username: printed.username,
      password: printed.password,
      key: KEY,
    });
    running.push(ha);
    expect(ha.granted).toEqual([0]);
    expect(JSON.parse((await login("--json")).stdout)).not.toHaveProperty("password");
  });

  it.each([
    [
      ["kitchen"],
      EXIT.stackOrDatabase,
      /no controller login named "kitchen" \(it has homeassistant, nodered\)/,
    ],
    [["--show-passwords"], EXIT.usage, /unknown flag --show-passwords/],
    [["a", "b"], EXIT.usage, /unexpected argument "b"/],
    [["--no-stack"], EXIT.usage, /--stack: the login lives in the stack outputs/],
    [
      ["--ca-file", "/nonexistent-dir/ca.pem"],
      EXIT.usage,
      /--ca-file: cannot write \/nonexistent-dir\/ca.pem/,
    ],
  ])("%j exits %i and says why", async (args, code, message) => {
    const run = await login(...args);
    expect(run.stderr).toMatch(message);
    expect(run.code).toBe(code);
    expect(run.stdout).toBe("");
  });

  it("says the stack has no outputs yet", async () => {
    const empty = await installFakePulumi({ outputs: {} });
    try {
      const run = await runScript("controller-login.mjs", [], { env: empty.env });
      expect(run.code).toBe(EXIT.stackOrDatabase);
      expect(run.stderr).toMatch(/has `pulumi up` run\?/);
    } finally {
      await empty.cleanup();
    }
  });
});
