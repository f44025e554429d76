import { randomBytes } from "node:crypto";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { Connection } from "mysql2/promise";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { goAuthPluginInfo } from "../../lib/local-stack/go-auth.ts";
import { type MariaDbInstance, startMariaDb } from "../../lib/local-stack/mariadb.ts";
import { type MosquittoInstance, startMosquitto } from "../../lib/local-stack/mosquitto.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { buildMessage, buildReply, checkReply, parseMessage } from "../../lib/meross/envelope.ts";
import { controllerReplyTopic, devicePublishTopic, deviceSubscribeTopic } from "../../lib/meross/topics.ts";
import { type Account, controllerAccount, deviceAccount } from "../../lib/store/accounts.ts";
import { applySchema, revokeAccount, syncAccounts, upsertAccount } from "../../lib/store/database.ts";

const HOST = "broker.test";
const USER_ID = "31337";
const KEY = "integration-test-device-key";
const INJECTION = "' OR '1'='1";
const CONTROLLER_NAME = "homeassistant";
const CONTROLLER_PASSWORD = "controller-password-for-tests";
/** Longer than the cache lifetime startMosquitto gives go-auth, so a revocation is visible. */
const CACHE_EXPIRY_MS = 1_500;
/** How long to watch for a message that must not arrive, after a control message did. */
const QUIET_MS = 500;
const NOT_AUTHORIZED = 5;

function plug(n: number): Account {
  const hex = n.toString(16).padStart(2, "0");
  return deviceAccount(
    { name: `plug ${n}`, mac: `48:e1:e9:aa:bb:${hex}`, uuid: hex.repeat(16) },
    KEY,
    USER_ID,
  );
}
const deviceA = plug(1);
const deviceB = plug(2);
const deviceRevoked = plug(3);
const neverStored = plug(4);
const controller = controllerAccount(CONTROLLER_NAME, CONTROLLER_PASSWORD);
const replyTopic = controllerReplyTopic(USER_ID, CONTROLLER_NAME);

let pki: LocalPki;
let db: MariaDbInstance;
let conn: Connection;
let broker: MosquittoInstance;
const clients: MqttClient[] = [];

interface Received {
  topic: string;
  payload: string;
}

/** Connects like a Meross device: MQTT 3.1 (MQIsdp) with a client id far over 23 characters. */
async function connectAs(
  login: { username: string; password: string },
  options: IClientOptions = {},
): Promise<MqttClient> {
  const client = await mqtt.connectAsync(broker.url, {
    ca: pki.caPem,
    servername: HOST,
    username: login.username,
    password: login.password,
    protocolId: "MQIsdp",
    protocolVersion: 3,
    clientId: `fmware:${randomBytes(16).toString("hex")}_${randomBytes(8).toString("hex")}`,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...options,
  });
  clients.push(client);
  return client;
}

function inbox(client: MqttClient): Received[] {
  const received: Received[] = [];
  client.on("message", (topic, payload) => received.push({ topic, payload: payload.toString() }));
  return received;
}

async function waitFor(received: Received[], match: (message: Received) => boolean): Promise<Received> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = received.find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`message not received; got ${JSON.stringify(received)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const quiet = () => new Promise((resolve) => setTimeout(resolve, QUIET_MS));

beforeAll(async () => {
  console.info(`auth plugin under test: ${goAuthPluginInfo()}`);
  pki = await makeLocalPki({ host: HOST });
  db = await startMariaDb();
  conn = await db.connect();
  await applySchema(conn);
  // The broker reads with a SELECT-only user, as it should in the stack.
  const brokerPassword = randomBytes(12).toString("hex");
  await conn.query("CREATE USER 'broker'@'127.0.0.1' IDENTIFIED BY ?", [brokerPassword]);
  await conn.query(`GRANT SELECT ON ${conn.escapeId(db.database)}.* TO 'broker'@'127.0.0.1'`);
  await syncAccounts(conn, [deviceA, deviceB, deviceRevoked], { kinds: ["device"] });
  await upsertAccount(conn, controller);
  broker = await startMosquitto({
    variant: "mysql",
    pki,
    mysql: { host: db.host, port: db.port, user: "broker", password: brokerPassword, database: db.database },
  });
});

afterEach(async (context) => {
  await Promise.all(clients.splice(0).map((client) => client.endAsync(true).catch(() => undefined)));
  if (context.task.result?.state === "fail") {
    // The broker's log, with the auth plugin's lines, says why a login or message was refused.
    console.info(broker?.output().split("\n").slice(-40).join("\n"));
  }
});

afterAll(async () => {
  await broker?.stop();
  await conn?.end();
  await db?.stop();
  await pki?.cleanup();
});

describe("logins", () => {
  it("a device logs in with its MAC and password over MQTT 3.1 with a client id over 23 characters", async () => {
    const device = await connectAs(deviceA);
    expect(device.options.clientId?.length).toBeGreaterThan(23);
    expect(device.options.protocolId).toBe("MQIsdp");
    expect(device.connected).toBe(true);
    expect(broker.output()).toContain(`u'${deviceA.username}'`);
  });

  it("a wrong password is refused, including another device's password", async () => {
    await expect(
      connectAs({ username: deviceA.username, password: `${deviceA.password}x` }),
    ).rejects.toMatchObject({
      code: NOT_AUTHORIZED,
    });
    await expect(connectAs({ username: deviceA.username, password: deviceB.password })).rejects.toMatchObject(
      {
        code: NOT_AUTHORIZED,
      },
    );
  });

  it("an unknown MAC is refused", async () => {
    await expect(connectAs(neverStored)).rejects.toMatchObject({ code: NOT_AUTHORIZED });
  });

  it(`a username of ${INJECTION} is refused`, async () => {
    await expect(connectAs({ username: INJECTION, password: INJECTION })).rejects.toMatchObject({
      code: NOT_AUTHORIZED,
    });
    await expect(connectAs({ username: INJECTION, password: deviceA.password })).rejects.toMatchObject({
      code: NOT_AUTHORIZED,
    });
  });

  it("a revoked device can no longer log in, and its open session can no longer publish", async () => {
    const ha = await connectAs(controller, { protocolId: "MQTT", protocolVersion: 4 });
    const seen = inbox(ha);
    await ha.subscribeAsync(devicePublishTopic(deviceRevoked.uuid ?? ""), { qos: 1 });
    const stillOpen = await connectAs(deviceRevoked);
    await stillOpen.publishAsync(devicePublishTopic(deviceRevoked.uuid ?? ""), "before", { qos: 1 });
    await waitFor(seen, (message) => message.payload === "before");

    expect((await revokeAccount(conn, deviceRevoked.name))?.username).toBe(deviceRevoked.username);
    await new Promise((resolve) => setTimeout(resolve, CACHE_EXPIRY_MS));

    await expect(connectAs(deviceRevoked)).rejects.toMatchObject({ code: NOT_AUTHORIZED });
    await stillOpen.publishAsync(devicePublishTopic(deviceRevoked.uuid ?? ""), "after", { qos: 1 });
    await quiet();
    expect(seen.map((message) => message.payload)).toEqual(["before"]);
  });
});

describe("least privilege between devices", () => {
  it("device A subscribing to B's command topic (or to #) receives none of B's commands", async () => {
    const a = await connectAs(deviceA);
    const b = await connectAs(deviceB);
    const ha = await connectAs(controller);
    const seenByA = inbox(a);
    const seenByB = inbox(b);
    await a.subscribeAsync([deviceSubscribeTopic(deviceB.uuid ?? ""), "#", "/appliance/+/subscribe"], {
      qos: 1,
    });
    await b.subscribeAsync(deviceSubscribeTopic(deviceB.uuid ?? ""), { qos: 1 });

    await ha.publishAsync(deviceSubscribeTopic(deviceB.uuid ?? ""), "command for B", { qos: 1 });
    await waitFor(seenByB, (message) => message.payload === "command for B");
    await quiet();
    expect(seenByA).toEqual([]);
  });

  it("the broker refuses A's subscription to B's command topic (visible in MQTT 3.1.1's SUBACK)", async () => {
    const a = await connectAs(deviceA, { protocolId: "MQTT", protocolVersion: 4 });
    // MQTT.js rejects a SUBACK that carries the failure code 0x80.
    await expect(
      a.subscribeAsync(deviceSubscribeTopic(deviceB.uuid ?? ""), { qos: 1 }),
    ).rejects.toMatchObject({
      packet: { granted: [128] },
    });
    const own = await a.subscribeAsync(deviceSubscribeTopic(deviceA.uuid ?? ""), { qos: 1 });
    expect(own.map((grant) => grant.qos)).toEqual([1]);
  });

  it("device A cannot get messages onto B's topics, while its own publications get through", async () => {
    const a = await connectAs(deviceA);
    const b = await connectAs(deviceB);
    const ha = await connectAs(controller);
    const seenByB = inbox(b);
    const seenByController = inbox(ha);
    await b.subscribeAsync(deviceSubscribeTopic(deviceB.uuid ?? ""), { qos: 1 });
    await ha.subscribeAsync("/appliance/+/publish", { qos: 1 });

    await a.publishAsync(devicePublishTopic(deviceB.uuid ?? ""), "forged reply from B", { qos: 1 });
    await a.publishAsync(deviceSubscribeTopic(deviceB.uuid ?? ""), "forged command to B", { qos: 1 });
    // Same publisher, same subscriber, same QoS: this arrives after anything published before it.
    await a.publishAsync(devicePublishTopic(deviceA.uuid ?? ""), "A's own push", { qos: 1 });

    await waitFor(seenByController, (message) => message.payload === "A's own push");
    await quiet();
    expect(seenByController.map((message) => message.payload)).toEqual(["A's own push"]);
    expect(seenByB).toEqual([]);
  });
});

describe("controller", () => {
  it("commands a device and receives the device's reply on its reply topic", async () => {
    const device = await connectAs(deviceA);
    await device.subscribeAsync(deviceSubscribeTopic(deviceA.uuid ?? ""), { qos: 1 });
    device.on("message", (_topic, payload) => {
      const request = parseMessage(payload);
      const reply = buildReply(request, {
        key: KEY,
        from: devicePublishTopic(deviceA.uuid ?? ""),
        payload: { all: { system: { hardware: { uuid: deviceA.uuid } } } },
      });
      // Devices answer on the request's `from`, a controller reply topic.
      device.publish(request.header.from ?? "", JSON.stringify(reply), { qos: 1 });
    });

    const ha = await connectAs(controller);
    const replies = inbox(ha);
    await ha.subscribeAsync(replyTopic, { qos: 1 });
    const request = buildMessage({
      method: "GET",
      namespace: "Appliance.System.All",
      key: KEY,
      from: replyTopic,
    });
    await ha.publishAsync(deviceSubscribeTopic(deviceA.uuid ?? ""), JSON.stringify(request), { qos: 1 });

    const answer = await waitFor(replies, (message) => message.topic === replyTopic);
    const reply = checkReply(request, parseMessage(answer.payload), KEY);
    expect(reply.header.method).toBe("GETACK");
    expect(reply.payload).toEqual({ all: { system: { hardware: { uuid: deviceA.uuid } } } });
  });
});
