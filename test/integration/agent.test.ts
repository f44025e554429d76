import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import type { Connection } from "mysql2/promise";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AGENT_BACKOFF, type SessionAgent, startSessionAgent } from "../../lib/agent/agent.ts";
import { AGENT_BUNDLE_NAME, bundleAgent } from "../../lib/agent/bundle.ts";
import type { AgentLogEntry } from "../../lib/agent/log.ts";
import { type MosquittoInstance, startMosquitto } from "../../lib/local-stack/mosquitto.ts";
import { type MysqlVariant, startMysqlVariant } from "../../lib/local-stack/mysql-variant.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { freePort } from "../../lib/local-stack/ports.ts";
import { killOnExit } from "../../lib/local-stack/processes.ts";
import { buildMessage } from "../../lib/meross/envelope.ts";
import { Namespace } from "../../lib/meross/messages/index.ts";
import { devicePublishTopic } from "../../lib/meross/topics.ts";
import { BROKER_LIMITS } from "../../lib/mosquitto/render.ts";
import { deviceAccount, serviceAccount } from "../../lib/store/accounts.ts";
import { upsertAccount } from "../../lib/store/database.ts";
import { FAST_SESSION_TIMING, type OnlineDevice, startOnlineDevice } from "../support/online-device.ts";
import { waitFor } from "../support/wait.ts";

const HOST = "127.0.0.1";
const KEY = "agent-integration-device-key";
const USER_ID = "4242";
const TIMEZONE = "Europe/Dublin";
const KEEPALIVE_MS = (FAST_SESSION_TIMING.keepaliveSeconds ?? 2) * 1000;
/** Several keepalive periods, and longer than the simulator's patience for unanswered Clock/Bind. */
const WATCH_MS = 4 * KEEPALIVE_MS;
/** Past the moment a device that got no answers hangs up: enough for the tests that need "answered". */
const SURVIVE_MS = (FAST_SESSION_TIMING.sessionTimeoutMs ?? 3_000) + 1_500;

/** Resolves when the broker drops the client (MQTT.js's emitter is not a Node EventEmitter to `once`). */
const closed = (client: MqttClient) => new Promise<void>((resolve) => client.once("close", () => resolve()));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let pki: LocalPki;
let broker: MosquittoInstance;
const devices: OnlineDevice[] = [];
const agents: SessionAgent[] = [];

function runAgent(
  options: { brokerUrl?: string; username?: string; password?: string; ownBackoff?: boolean } = {},
) {
  const log: AgentLogEntry[] = [];
  const agent = startSessionAgent({
    brokerUrl: options.brokerUrl ?? broker.url,
    ca: pki.caPem,
    key: KEY,
    userId: USER_ID,
    timezone: TIMEZONE,
    ...(options.ownBackoff ? {} : { backoff: { initialMs: 200, maxMs: 1_000 } }),
    log: (entry) => log.push(entry),
    ...(options.username ? { username: options.username, password: options.password } : {}),
  });
  agents.push(agent);
  return { agent, log, events: (name: string) => log.filter((entry) => entry.event === name) };
}

async function deviceOn(target: { host: string; port: number }, requireSessionAnswers = true) {
  const online = await startOnlineDevice({
    broker: target,
    key: KEY,
    userId: USER_ID,
    ca: pki.caPem,
    requireSessionAnswers,
  });
  devices.push(online);
  return online;
}

beforeAll(async () => {
  pki = await makeLocalPki({ host: HOST });
  broker = await startMosquitto({ variant: "anonymous", pki });
});

afterEach(async () => {
  await Promise.all(devices.splice(0).map((online) => online.device.stop()));
  await Promise.all(agents.splice(0).map((agent) => agent.stop()));
});

afterAll(async () => {
  await broker?.stop();
  await pki?.cleanup();
});

describe("session agent on a real Mosquitto with a simulated plug that needs session answers", () => {
  it("keeps the device connected across several keepalive periods, and sets its time zone once", async () => {
    const { agent, events } = runAgent();
    await agent.ready;
    const online = await deviceOn(broker);
    const { uuid } = online.device;

    await sleep(WATCH_MS);

    expect(
      online.disconnects().map((entry) => entry.detail),
      "the device must not drop while the agent answers",
    ).toEqual([]);
    expect(online.device.state.mode).toBe("online");
    expect(online.device.state.session).toEqual({ clock: true, bind: true, consumptionConfig: true });
    expect(online.device.state.clockSet).toBe(true);
    expect(online.device.state.timezone).toBe(TIMEZONE);
    for (const event of [
      "clock-answered",
      "bind-acknowledged",
      "consumption-config-echoed",
      "time-zone-set",
    ]) {
      expect(
        events(event).map((entry) => entry.uuid),
        event,
      ).toContain(uuid);
    }
    // Bind on connect triggers the zone once; first sight does not send a second one.
    expect(events("time-zone-sent")).toHaveLength(1);
    expect(events("message-ignored")).toEqual([]);
  });

  it("without the agent, the same device drops its connection", async () => {
    const online = await deviceOn(broker);
    const drop = await waitFor("the device to hang up", () => online.disconnects()[0], WATCH_MS + 5_000);
    expect(String((drop.detail as { reason: string }).reason)).toMatch(/no answer to Clock and Bind/);
  });

  it("ignores and logs malformed messages, then still answers a real device", async () => {
    const { agent, events } = runAgent();
    await agent.ready;
    const intruder: MqttClient = await mqtt.connectAsync(broker.url, { ca: pki.caPem, clientId: "intruder" });
    const fake = "ffffffffffffffffffffffffffffffff";
    const topic = devicePublishTopic(fake);
    const clock = (key: string) =>
      JSON.stringify(
        buildMessage({
          method: "PUSH",
          namespace: Namespace.SystemClock,
          payload: { clock: { timestamp: 1 } },
          key,
          from: topic,
        }),
      );
    await intruder.publishAsync(topic, "this is not json {");
    await intruder.publishAsync(topic, Buffer.alloc(200_000, "{"));
    await intruder.publishAsync(topic, JSON.stringify({ header: { method: "PUSH" }, payload: [] }));
    await intruder.publishAsync(topic, clock("someone-elses-key"));
    await intruder.publishAsync(topic, Buffer.from([0xff, 0xfe, 0x00, 0x01]));
    await intruder.endAsync();

    const ignored = await waitFor("five ignored messages", () => {
      const entries = events("message-ignored");
      return entries.length >= 5 && entries;
    });
    expect(ignored.map((entry) => entry.reason).sort()).toEqual(
      ["bad-signature", "not-json", "not-json", "not-meross", "too-large"].sort(),
    );
    expect(ignored.every((entry) => entry.uuid === fake)).toBe(true);
    expect(events("clock-answered")).toEqual([]);

    const online = await deviceOn(broker);
    await sleep(SURVIVE_MS);
    expect(online.disconnects().map((entry) => entry.detail)).toEqual([]);
    expect(online.device.state.session.bind).toBe(true);
    expect(events("handler-failed")).toEqual([]);
  });

  it("an oversize publish is refused by the broker, and the broker and agent keep serving others", async () => {
    const { agent, events } = runAgent();
    await agent.ready;
    const topic = devicePublishTopic("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
    const watcher = await mqtt.connectAsync(broker.url, { ca: pki.caPem, reconnectPeriod: 0 });
    const seen: number[] = [];
    watcher.on("message", (_topic, payload) => seen.push(payload.length));
    await watcher.subscribeAsync(topic);

    const pusher = await mqtt.connectAsync(broker.url, {
      ca: pki.caPem,
      reconnectPeriod: 0,
      clientId: "pusher",
    });
    const dropped = closed(pusher);
    pusher.publish(topic, Buffer.alloc(BROKER_LIMITS.maxPacketBytes, "{"));
    await dropped;
    await watcher.publishAsync(topic, "still forwarding");
    await waitFor("the small message", () => seen.includes("still forwarding".length));
    expect(seen).toEqual(["still forwarding".length]);
    await watcher.endAsync(true);
    pusher.end(true);

    const online = await deviceOn(broker);
    await sleep(SURVIVE_MS);
    expect(online.disconnects().map((entry) => entry.detail)).toEqual([]);
    expect(online.device.state.session.bind).toBe(true);
    // The oversize message never reached the agent; the small one did, and was ignored as not JSON.
    expect(events("message-ignored").map((entry) => entry.reason)).toEqual(["not-json"]);
  });

  it("a retained publish (as a device would send it) is refused, and a later subscriber gets nothing", async () => {
    const topic = devicePublishTopic("dddddddddddddddddddddddddddddddd");
    const device = await mqtt.connectAsync(broker.url, {
      ca: pki.caPem,
      reconnectPeriod: 0,
      protocolId: "MQIsdp",
      protocolVersion: 3,
      clientId: `fmware:${"d".repeat(32)}_retained`,
    });
    const dropped = closed(device);
    device.publish(topic, "kept for later?", { retain: true, qos: 1 });
    await dropped;
    device.end(true);

    const later = await mqtt.connectAsync(broker.url, { ca: pki.caPem, reconnectPeriod: 0 });
    const received: string[] = [];
    later.on("message", (_topic, payload) => received.push(payload.toString()));
    await later.subscribeAsync(topic);
    const live = await mqtt.connectAsync(broker.url, { ca: pki.caPem, reconnectPeriod: 0 });
    await live.publishAsync(topic, "live");
    await waitFor("the live message", () => received.includes("live"));
    expect(received).toEqual(["live"]);
    await Promise.all([later.endAsync(true), live.endAsync(true)]);
  });

  it("logs each failed attempt to reach the broker once", async () => {
    const closedPort = await freePort();
    const { agent, log } = runAgent({ brokerUrl: `mqtts://${HOST}:${closedPort}` });
    await waitFor("three attempts", () => log.filter((entry) => entry.event === "reconnecting").length >= 3);
    await agent.stop();
    // Every attempt ends in one "reconnecting" line: before each, exactly one connection-error.
    const attempts: AgentLogEntry[][] = [[]];
    for (const entry of log) {
      if (entry.event === "reconnecting") attempts.push([]);
      else attempts.at(-1)?.push(entry);
    }
    const errorsPerAttempt = attempts
      .slice(0, -1)
      .map((lines) => lines.filter((entry) => entry.event === "connection-error").length);
    expect(errorsPerAttempt.length).toBeGreaterThanOrEqual(3);
    expect(
      errorsPerAttempt.every((count) => count === 1),
      JSON.stringify(log),
    ).toBe(true);
    expect(String(log.find((entry) => entry.event === "connection-error")?.error)).toMatch(/ECONNREFUSED/);
  });

  it("an offline controller's queue is bounded: QoS 1 messages beyond max_queued_bytes are not kept for it", async () => {
    const topic = devicePublishTopic("cccccccccccccccccccccccccccccccc");
    const session = { ca: pki.caPem, reconnectPeriod: 0, clientId: "offline-controller", clean: false };
    const away = await mqtt.connectAsync(broker.url, session);
    await away.subscribeAsync(topic, { qos: 1 });
    await away.endAsync();

    const payload = Buffer.alloc(64 * 1024, "x");
    const sent = Math.ceil((2 * BROKER_LIMITS.maxQueuedBytes) / payload.length);
    const publisher = await mqtt.connectAsync(broker.url, { ca: pki.caPem, reconnectPeriod: 0 });
    for (let i = 0; i < sent; i++) await publisher.publishAsync(topic, payload, { qos: 1 });
    await publisher.endAsync();

    let received = 0;
    const back = mqtt.connect(broker.url, session);
    back.on("message", () => {
      received += 1;
    });
    await waitFor("queued messages", () => received > 0);
    await sleep(1_000);
    back.end(true);
    expect(received * payload.length).toBeLessThanOrEqual(BROKER_LIMITS.maxQueuedBytes);
    expect(received).toBeGreaterThanOrEqual(BROKER_LIMITS.maxQueuedBytes / payload.length - 1);
  });

  it("reconnects with backoff after losing the broker and answers again", async () => {
    const proxy = await startCuttableProxy(broker.port);
    try {
      const { agent, events } = runAgent({ brokerUrl: `mqtts://${HOST}:${proxy.port}` });
      await agent.ready;
      await proxy.cutAndRefuse(1_500);
      await waitFor("the agent to notice", () => events("disconnected").length > 0);
      await waitFor("the agent to reconnect", () => events("subscribed").length >= 2, 20_000);
      const retries = events("reconnecting").map((entry) => entry.inMs as number);
      expect(retries.length, "at least one refused attempt while the broker was away").toBeGreaterThanOrEqual(
        2,
      );
      expect(retries[1]).toBeGreaterThan(100);

      const online = await deviceOn(broker);
      await sleep(SURVIVE_MS);
      expect(online.disconnects().map((entry) => entry.detail)).toEqual([]);
      expect(events("bind-acknowledged").map((entry) => entry.uuid)).toContain(online.device.uuid);
    } finally {
      await proxy.close();
    }
  });

  it("on its own policy, retries a broker that stays away at most every 5 s, so it is back before the devices", async () => {
    const proxy = await startCuttableProxy(broker.port);
    try {
      const { agent, events } = runAgent({ brokerUrl: `mqtts://${HOST}:${proxy.port}`, ownBackoff: true });
      await agent.ready;
      await proxy.cutAndRefuse(12_000);
      await waitFor("the agent to reconnect", () => events("subscribed").length >= 2, 20_000);
      const retries = events("reconnecting").map((entry) => entry.inMs as number);
      expect(retries[0]).toBeLessThanOrEqual(AGENT_BACKOFF.initialMs);
      expect(Math.max(...retries)).toBeLessThanOrEqual(AGENT_BACKOFF.maxMs);
      expect(Math.max(...retries), "the backoff grew to its ceiling's range").toBeGreaterThan(
        AGENT_BACKOFF.maxMs / 2,
      );
    } finally {
      await proxy.close();
    }
  });

  it("runs as the esbuild bundle the stack uploads, from a directory with no node_modules", async () => {
    const dir = await mkdtemp(join(tmpdir(), "agent-bundle-run-"));
    let child: ChildProcess | undefined;
    try {
      await writeFile(join(dir, AGENT_BUNDLE_NAME), bundleAgent());
      const settings = {
        brokerUrl: broker.url,
        ca: pki.caPem,
        key: KEY,
        userId: USER_ID,
        timezone: TIMEZONE,
      };
      await writeFile(join(dir, "settings.json"), JSON.stringify(settings), { mode: 0o600 });
      child = spawn(process.execPath, [AGENT_BUNDLE_NAME], {
        cwd: dir,
        env: { PATH: process.env.PATH, AGENT_SETTINGS_FILE: join(dir, "settings.json") },
        stdio: ["ignore", "pipe", "pipe"],
      });
      killOnExit(child);
      let stdout = "";
      child.stdout?.on("data", (chunk) => {
        stdout += chunk;
      });
      const lines = () =>
        stdout
          .split("\n")
          .filter(Boolean)
          .map((line) => JSON.parse(line) as AgentLogEntry);
      await waitFor("the bundled agent to subscribe", () =>
        lines().some((entry) => entry.event === "subscribed"),
      );

      const online = await deviceOn(broker);
      await sleep(SURVIVE_MS);
      expect(online.disconnects().map((entry) => entry.detail)).toEqual([]);
      const answered = lines()
        .filter((entry) => entry.uuid === online.device.uuid)
        .map((entry) => entry.event);
      expect(answered).toEqual(
        expect.arrayContaining(["clock-answered", "bind-acknowledged", "time-zone-set"]),
      );
      expect(stdout, "secrets never reach the log").not.toContain(KEY);

      child.kill("SIGTERM");
      const [code] = await once(child, "exit");
      expect(code).toBe(0);
    } finally {
      if (child && child.exitCode === null) child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("session agent in the mysql variant, with only its service account's ACL", () => {
  let services: MysqlVariant;
  let conn: Connection;
  let authBroker: MosquittoInstance;
  const service = serviceAccount("session-agent", "service-account-password-0123");

  beforeAll(async () => {
    services = await startMysqlVariant(pki, [service]);
    ({ conn, broker: authBroker } = services);
  });

  afterAll(async () => {
    await services?.stop();
  });

  it("answers a device that logs in with its own credentials", async () => {
    const uuid = "0a0b0c0d0e0f1011121348e1e9a1b2c3";
    await upsertAccount(conn, deviceAccount({ name: "plug", mac: "48:e1:e9:a1:b2:c3", uuid }, KEY, USER_ID));
    const { agent, events } = runAgent({
      brokerUrl: authBroker.url,
      username: service.username,
      password: service.password,
    });
    await agent.ready;
    const online = await startOnlineDevice({
      broker: authBroker,
      key: KEY,
      userId: USER_ID,
      ca: pki.caPem,
      requireSessionAnswers: true,
      uuid,
    }).catch(async (error) => {
      throw new Error(`device did not come online: ${(error as Error).message}\n${authBroker.output()}`);
    });
    devices.push(online);
    await sleep(SURVIVE_MS);
    expect(online.disconnects().map((entry) => entry.detail)).toEqual([]);
    expect(online.device.state.timezone).toBe(TIMEZONE);
    expect(events("subscribe-refused")).toEqual([]);
  });

  it("says so, and does not report ready, when its account may not read device traffic", async () => {
    const plugLogin = deviceAccount(
      { name: "other", mac: "48:e1:e9:00:00:99", uuid: "9".repeat(32) },
      KEY,
      USER_ID,
    );
    await upsertAccount(conn, plugLogin);
    const { agent, events } = runAgent({
      brokerUrl: authBroker.url,
      username: plugLogin.username,
      password: plugLogin.password,
    });
    let ready = false;
    void agent.ready.then(() => {
      ready = true;
    });
    await waitFor("the refusal", () => events("subscribe-refused")[0]);
    expect(String(events("subscribe-refused")[0]?.error)).toMatch(/ACL/);
    expect(ready).toBe(false);
  });

  it("keeps retrying while the broker refuses its login, and logs why", async () => {
    const { agent, events } = runAgent({
      brokerUrl: authBroker.url,
      username: service.username,
      password: "not-the-service-password",
    });
    await waitFor("two refused logins", () => events("connection-error").length >= 2, 10_000);
    expect(String(events("connection-error")[0]?.error)).toMatch(/Not authorized|Bad username or password/i);
    expect(JSON.stringify(events("connection-error"))).not.toContain("not-the-service-password");
    await agent.stop();
  });
});

/**
 * A TCP relay in front of the broker that can drop every connection and refuse new ones for a
 * while, as a broker restart does, without changing the broker's port.
 */
async function startCuttableProxy(targetPort: number) {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = async () => {
    server = createServer((client) => {
      const upstream = tcpConnect({ host: HOST, port: targetPort });
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    server.listen(port, HOST);
    await once(server, "listening");
  };
  const stopListening = async () => {
    for (const socket of sockets) socket.destroy();
    if (server) await new Promise((resolve) => server?.close(resolve));
  };
  await listen();
  return {
    port,
    async cutAndRefuse(ms: number) {
      await stopListening();
      await sleep(ms);
      await listen();
    },
    close: stopListening,
  };
}
