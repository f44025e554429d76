import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { connect as tcpConnect } from "node:net";
import { type MqttClient, connectAsync as mqttConnectAsync } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type MosquittoInstance, startMosquitto } from "../../lib/local-stack/mosquitto.ts";
import { type LocalCa, type LocalPki, makeLocalPki, makeOtherCa } from "../../lib/local-stack/pki.ts";
import { freePort } from "../../lib/local-stack/ports.ts";
import type { BrokerAddress } from "../../lib/meross/broker-url.ts";
import { DeviceClient } from "../../lib/meross/device-client.ts";
import { buildMessage, type MerossMessage, parseMessage, WrongKeyError } from "../../lib/meross/envelope.ts";
import { decryptLanBody, encryptLanBody, encryptNulPadded, lanAesKey } from "../../lib/meross/lan-crypto.ts";
import {
  configKeyRequest,
  configWifiXRequest,
  Namespace,
  parseBind,
  parseToggleX,
  systemAllRequest,
  toggleXGetRequest,
  toggleXSetRequest,
  type WifiNetwork,
} from "../../lib/meross/messages/index.ts";
import { isSignatureValid } from "../../lib/meross/sign.ts";
import { controllerReplyTopic, devicePublishTopic, deviceSubscribeTopic } from "../../lib/meross/topics.ts";
import { wifixKey } from "../../lib/meross/wifi.ts";
import {
  SIMULATED_HOME_NETWORK,
  type SimulatedDevice,
  type SimulatedDeviceOptions,
  type SimulatedModel,
  type SimulatorEvents,
  startSimulatedDevice,
} from "../../lib/simulator/index.ts";
import { PAIRING_KEY, setUpOverHttp } from "../support/online-device.ts";
import { runScript, spawnScript } from "../support/run-script.ts";
import { waitFor } from "../support/wait.ts";

const KEY = "simulator-test-key-0123";
const USER_ID = "4242";
const HOME: WifiNetwork = { ssid: SIMULATED_HOME_NETWORK.ssid, password: SIMULATED_HOME_NETWORK.password };
/** Fast enough for tests; the real values are in DEFAULT_TIMING. */
const FAST = {
  rebootMs: 50,
  clockRetryMs: 300,
  sessionTimeoutMs: 1500,
  reconnect: { initialMs: 200, maxMs: 1000 },
  connectTimeoutMs: 3000,
};

const devices: SimulatedDevice[] = [];
const controllers: MqttClient[] = [];

async function simulate(options: SimulatedDeviceOptions): Promise<SimulatedDevice> {
  const device = await startSimulatedDevice({ ...options, timing: { ...FAST, ...options.timing } });
  devices.push(device);
  return device;
}

afterEach(async () => {
  await Promise.all(controllers.splice(0).map((client) => client.endAsync(true)));
  await Promise.all(devices.splice(0).map((device) => device.stop()));
});

function nextEvent<E extends keyof SimulatorEvents>(
  device: SimulatedDevice,
  event: E,
  timeoutMs = 10_000,
): Promise<SimulatorEvents[E][0]> {
  return once(device.events as never, event, { signal: AbortSignal.timeout(timeoutMs) }).then(
    ([value]) => value as SimulatorEvents[E][0],
  );
}

/** The setup provision.mjs performs, with this file's key and user id; one attempt per request. */
const provision = (device: SimulatedDevice, brokers: [BrokerAddress, BrokerAddress], network = HOME) =>
  setUpOverHttp(device, { userId: USER_ID, key: KEY, brokers, network, attempts: 1 });

/** A client in pairing mode (one attempt per request) and the device's System.All; keyed by ECDHE on request. */
async function pairingClient(device: SimulatedDevice, exchangeKeys: boolean) {
  const client = new DeviceClient({ ip: device.ip, port: device.port, key: PAIRING_KEY, attempts: 1 });
  const info = await client.getSystemAll();
  if (exchangeKeys) {
    await client.exchangeKeys({ uuid: info.uuid, macAddress: info.macAddress, key: PAIRING_KEY });
  }
  return { client, info };
}

interface RawResponse {
  head: string;
  body: string;
}

/** One POST /config on a bare socket, to see the bytes the device sends (Node's parser would normalise them). */
function rawPost(device: SimulatedDevice, body: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: device.ip, port: device.port });
    const chunks: Buffer[] = [];
    socket.on("connect", () => {
      socket.write(
        `POST /config HTTP/1.1\r\nHost: ${device.ip}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const separator = /\r?\n\r?\n/.exec(text);
      if (!separator) return reject(new Error(`no header end in ${JSON.stringify(text)}`));
      resolve({
        head: text.slice(0, separator.index),
        body: text.slice(separator.index + separator[0].length),
      });
    });
  });
}

/** POST with Node's strict parser; resolves the body or rejects with the socket error code. */
function strictPost(device: SimulatedDevice, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: device.ip, port: device.port, path: "/config", method: "POST" },
      (response) => {
        let text = "";
        response.on("data", (chunk) => {
          text += chunk;
        });
        response.on("end", () => resolve(text));
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

function signed(
  request: { method: "GET" | "SET" | "PUSH"; namespace: string; payload: Record<string, unknown> },
  key: string,
  from = "http://simulator-test/config",
): MerossMessage {
  return buildMessage({ ...request, key, from });
}

describe.each<SimulatedModel>(["legacy", "encrypted"])("simulated %s device over HTTP", (model) => {
  const encrypted = model === "encrypted";

  it("describes itself like the real model: System.All identity and the ability list that decides setup", async () => {
    const device = await simulate({ model, uuid: "2307065833780651200148e1e9cf4534" });
    const { client, info } = await pairingClient(device, false);
    expect(info).toMatchObject({
      type: encrypted ? "mss110" : "mss310",
      hardwareVersion: encrypted ? "7.0.0" : "2.0.0",
      uuid: "2307065833780651200148e1e9cf4534",
      // ML `get_macaddress_from_uuid`: the uuid ends in the MAC.
      macAddress: "48:e1:e9:cf:45:34",
      innerIp: "127.0.0.1",
    });
    expect(info.firmwareVersion).toMatch(encrypted ? /^7\./ : /^2\.1\./);
    const firmware = (info.raw.system as { firmware: Record<string, unknown> }).firmware;
    expect(firmware.encrypt).toBe(encrypted ? 1 : undefined);
    // Old firmware writes numbers as strings (protocol §3).
    expect(typeof firmware.userId).toBe(encrypted ? "number" : "string");

    const abilities = Object.keys(await client.getAbilities());
    if (encrypted) {
      expect(abilities).toEqual(
        expect.arrayContaining([Namespace.ConfigWifiX, Namespace.EncryptEcdhe, Namespace.EncryptSuite]),
      );
      expect(abilities).not.toContain(Namespace.ConfigWifi);
    } else {
      expect(abilities).toContain(Namespace.ConfigWifi);
      expect(abilities).not.toContain(Namespace.ConfigWifiX);
      expect(abilities).not.toContain(Namespace.EncryptEcdhe);
    }
  });

  it(`answers with ${encrypted ? "CRLF" : "LF-only"} header lines, connection: close, and replies signed by the device`, async () => {
    const device = await simulate({ model });
    const request = signed(systemAllRequest(), "any key works before Config.Key");
    const { head, body } = await rawPost(device, JSON.stringify(request));
    expect(head).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(head.includes("\r")).toBe(encrypted);
    expect(head).toMatch(/^connection: close\r?$/m);
    // The clock is unset in pairing mode: the date header is in 1970, as observed on real devices.
    expect(head).toMatch(/^date: Thu, 01 Jan 1970/m);
    const reply = parseMessage(body);
    expect(reply.header).toMatchObject({
      method: "GETACK",
      messageId: request.header.messageId,
      from: devicePublishTopic(device.uuid),
    });
    expect(isSignatureValid(reply.header, "")).toBe(true);
    if (!encrypted) {
      // The quirk is real: Node's default parser refuses this reply, so the kit's client must be lenient.
      await expect(strictPost(device, JSON.stringify(request))).rejects.toMatchObject({
        code: "HPE_CR_EXPECTED",
      });
    }
  });

  it("accepts any signature until keyed, then checks every one: 5001 for a wrong key", async () => {
    const device = await simulate({ model, timing: { rebootMs: 60_000 } });
    const client = new DeviceClient({
      ip: device.ip,
      port: device.port,
      key: "whatever-the-app-sends",
      attempts: 1,
    });
    const info = await client.getSystemAll();
    if (encrypted) await client.exchangeKeys({ uuid: info.uuid, macAddress: info.macAddress, key: "x" });
    const broker = { host: "broker.home.arpa", port: 8883 };
    await client.setKey({ userId: USER_ID, key: KEY, brokers: [broker, broker] });
    expect(device.state).toMatchObject({ key: KEY, userId: USER_ID, gateways: [broker, broker] });

    const afterKey = await client.getSystemAll();
    expect(afterKey).toMatchObject({ userId: USER_ID, server: "broker.home.arpa", port: 8883 });

    const wrong = new DeviceClient({ ip: device.ip, port: device.port, key: "not-the-key", attempts: 1 });
    await expect(wrong.getSystemAll()).rejects.toBeInstanceOf(WrongKeyError);

    const { body } = await rawPost(device, JSON.stringify(signed(systemAllRequest(), "not-the-key")));
    const error = parseMessage(body);
    expect(error.header.method).toBe("ERROR");
    expect(error.payload).toEqual({ error: { code: 5001, detail: "sign error" } });
    expect(isSignatureValid(error.header, KEY)).toBe(true);

    const { body: good } = await rawPost(device, JSON.stringify(signed(systemAllRequest(), KEY)));
    expect(isSignatureValid(parseMessage(good).header, KEY)).toBe(true);
  });

  it("lists the simulated access points, SSIDs base64 on the wire", async () => {
    const device = await simulate({ model });
    const { client } = await pairingClient(device, encrypted);
    const list = await client.getWifiList();
    expect(list).toContainEqual(
      expect.objectContaining({
        ssid: SIMULATED_HOME_NETWORK.ssid,
        bssid: SIMULATED_HOME_NETWORK.bssid,
        channel: SIMULATED_HOME_NETWORK.channel,
        encryption: SIMULATED_HOME_NETWORK.encryption,
        cipher: SIMULATED_HOME_NETWORK.cipher,
      }),
    );
    expect(JSON.stringify(list)).not.toContain(SIMULATED_HOME_NETWORK.password);
  });

  it("takes System.Time: its clock jumps from uptime to the given time", async () => {
    const device = await simulate({ model });
    const { client, info } = await pairingClient(device, encrypted);
    const uptime = (info.raw.system as { time: { timestamp: number } }).time.timestamp;
    expect(uptime).toBeLessThan(60);
    const now = new Date("2025-07-01T12:00:00Z");
    await client.setTime("Europe/Dublin", now);
    const time = ((await client.getSystemAll()).raw.system as { time: Record<string, unknown> }).time;
    expect(time.timezone).toBe("Europe/Dublin");
    expect(time.timestamp).toBeGreaterThanOrEqual(now.getTime() / 1000);
    expect(time.timestamp).toBeLessThan(now.getTime() / 1000 + 30);
    expect(device.state.clockSet).toBe(true);
  });

  it("decodes the Wi-Fi password the way the firmware does (16 characters: a whole block plus NULs)", async () => {
    const device = await simulate({
      model,
      timing: { rebootMs: 60_000 },
      accessPoints: [{ ...SIMULATED_HOME_NETWORK, ssid: "Sixteen", password: "0123456789abcdef" }],
    });
    const network = { ssid: "Sixteen", password: "0123456789abcdef" };
    const configured = nextEvent(device, "wifi-configured");
    await provision(
      device,
      [
        { host: "127.0.0.1", port: 8883 },
        { host: "127.0.0.1", port: 8883 },
      ],
      network,
    );
    expect(await configured).toMatchObject({
      ssid: "Sixteen",
      namespace: encrypted ? Namespace.ConfigWifiX : Namespace.ConfigWifi,
    });
    expect(device.state.wifi).toMatchObject(network);
    expect(device.state.mode).toBe("rebooting");
  });
});

describe("simulated gen1 device (mss310 fw 1.1.18, as a meross_lan trace records it)", () => {
  it("lists Toggle and not ToggleX, reports its relay under control.toggle, and answers Toggle only", async () => {
    const device = await simulate({ model: "gen1" });
    const { client, info } = await pairingClient(device, false);
    expect(info).toMatchObject({ type: "mss310", hardwareVersion: "1.0.0", firmwareVersion: "1.1.18" });
    expect(info.raw).toMatchObject({ control: { toggle: { onoff: 0 } } });
    expect(info.raw.digest).toBeUndefined();
    const abilities = Object.keys(await client.getAbilities());
    expect(abilities).toContain(Namespace.ControlToggle);
    expect(abilities).not.toContain(Namespace.ControlToggleX);

    await client.request("SET", Namespace.ControlToggle, { channel: 0, toggle: { onoff: 1 } });
    expect(device.state.toggles[0]?.on).toBe(true);
    const state = await client.request("GET", Namespace.ControlToggle, { toggle: [] });
    expect(state.payload).toEqual({ toggle: { onoff: 1, lmTime: expect.any(Number) } });
    await expect(
      client.request("SET", Namespace.ControlToggleX, { togglex: { channel: 0, onoff: 0 } }),
    ).rejects.toMatchObject({ name: "DeviceError", code: 5000 });
    expect(device.state.toggles[0]?.on).toBe(true);
  });
});

describe.each<SimulatedModel>(["legacy", "encrypted"])("simulated %s device joining Wi-Fi", (model) => {
  const gateway = { host: "127.0.0.1", port: 1 };
  const afterReboot = (device: SimulatedDevice) =>
    Promise.race([
      nextEvent(device, "wifi-failed").then(({ reason }) => `failed: ${reason}`),
      waitFor(
        "the device to leave pairing mode",
        () => device.state.mode === "connecting" || undefined,
        5_000,
      ).then(() => "joined"),
    ]);

  it("joins an open network sent with no password (encryption 0, cipher 0), as Custom-Meross-Pairer sends it", async () => {
    const device = await simulate({ model });
    const joined = afterReboot(device);
    await provision(device, [gateway, gateway], {
      ssid: "Cafe Guest",
      password: "",
      encryption: 0,
      cipher: 0,
    });
    expect(await joined).toBe("joined");
    expect(device.state.wifi).toMatchObject({ ssid: "Cafe Guest", password: "", encryption: 0 });
  });

  it("joins the access point a BSSID alone names, and fails back to pairing for one it cannot see", async () => {
    const device = await simulate({ model });
    const joined = afterReboot(device);
    const { bssid, password } = SIMULATED_HOME_NETWORK;
    await provision(device, [gateway, gateway], { bssid, password });
    expect(await joined).toBe("joined");
    expect(device.state.wifi).toMatchObject({ bssid, password });
    expect(device.state.wifi?.ssid).toBeUndefined();

    const other = await simulate({ model });
    const failed = afterReboot(other);
    await provision(other, [gateway, gateway], { bssid: "02:00:00:00:00:01", password });
    expect(await failed).toMatch(/^failed: no access point 02:00:00:00:00:01 in range/);
    expect(other.state.mode).toBe("pairing");
  });

  it("fails back to pairing when a secured network is sent with no password", async () => {
    const device = await simulate({ model });
    const failed = afterReboot(device);
    await provision(device, [gateway, gateway], { ssid: SIMULATED_HOME_NETWORK.ssid, password: "" });
    expect(await failed).toMatch(/^failed: wrong password for SimulatedHome/);
  });

  it("answers ERROR 5000 with no detail, as real firmware does, to a request it cannot carry out", async () => {
    const device = await simulate({ model });
    const { client } = await pairingClient(device, encrypted(model));
    const refused = nextEvent(device, "request-refused");
    const failure = client.request("GET", "Appliance.Control.Spray", {});
    await expect(failure).rejects.toMatchObject({ name: "DeviceError", code: 5000 });
    await expect(failure).rejects.toThrow(/no reason given \(error 5000\)/);
    expect(await refused).toMatchObject({ namespace: "Appliance.Control.Spray" });
  });
});

function encrypted(model: SimulatedModel): boolean {
  return model === "encrypted";
}

describe("simulated encrypted device: LAN encryption and WifiX", () => {
  it("resets the connection on plaintext requests outside BS2's plaintext namespaces, and encrypts its replies after ECDHE", async () => {
    const device = await simulate({ model: "encrypted" });
    const plainKey = JSON.stringify(
      signed(
        configKeyRequest({
          userId: 0,
          key: KEY,
          brokers: [
            { host: "h.example", port: 8883 },
            { host: "h.example", port: 8883 },
          ],
        }),
        PAIRING_KEY,
      ),
    );
    await expect(rawPost(device, plainKey)).rejects.toMatchObject({ code: "ECONNRESET" });

    const { client } = await pairingClient(device, true);
    expect(device.state.lanKeyExchanged).toBe(true);
    // Still refused in plaintext after the exchange…
    await expect(rawPost(device, plainKey)).rejects.toMatchObject({ code: "ECONNRESET" });
    // …while System.All stays readable in plaintext, as BS2 sends it.
    const { body: plainAll } = await rawPost(device, JSON.stringify(signed(systemAllRequest(), PAIRING_KEY)));
    expect(parseMessage(plainAll).header.method).toBe("GETACK");

    await client.setKey({
      userId: 0,
      key: KEY,
      brokers: [
        { host: "h.example", port: 8883 },
        { host: "h.example", port: 8883 },
      ],
    });
    expect(device.state.key).toBe(KEY);
  });

  it("without an ECDHE exchange takes bodies encrypted with ML's static LAN key, and answers encrypted", async () => {
    const device = await simulate({ model: "encrypted" });
    const key = lanAesKey({ uuid: device.uuid, macAddress: device.macAddress, key: "" });
    const request = signed(toggleXGetRequest(), PAIRING_KEY);
    const { head, body } = await rawPost(device, encryptLanBody(JSON.stringify(request), key));
    expect(head).toMatch(/content-type: text\/plain/);
    expect(body.trimStart().startsWith("{")).toBe(false);
    const reply = parseMessage(decryptLanBody(body, key));
    expect(reply.header).toMatchObject({ method: "GETACK", messageId: request.header.messageId });
    expect(parseToggleX(reply.payload)).toEqual([{ channel: 0, on: false, lmTime: 0 }]);
  });

  it("reads the WifiX password up to its first NUL, so a padding tail after it (BLE's PKCS#7 block) is ignored", async () => {
    const device = await simulate({ model: "encrypted", timing: { rebootMs: 60_000 } });
    const { client, info } = await pairingClient(device, true);
    const tail = Buffer.concat([Buffer.from(`${HOME.password}\0`), Buffer.alloc(15, 0x10)]);
    const request = configWifiXRequest(HOME, info);
    const wifi = { ...(request.payload.wifi as object), password: encryptNulPadded(tail, wifixKey(info)) };
    await client.request(request.method, request.namespace, { wifi });
    expect(device.state.wifi?.password).toBe(HOME.password);
  });

  it("fails to join when the WifiX password was encrypted for another device, and falls back to pairing", async () => {
    const device = await simulate({ model: "encrypted" });
    const { client, info } = await pairingClient(device, true);
    await client.setKey({
      userId: 0,
      key: KEY,
      brokers: [
        { host: "127.0.0.1", port: 8883 },
        { host: "127.0.0.1", port: 8883 },
      ],
    });
    const failed = nextEvent(device, "wifi-failed");
    // Encrypted with the legacy model's type: the device derives another AES key and reads garbage.
    const wrongType = configWifiXRequest(HOME, { ...info, type: "mss310" });
    await client.request(wrongType.method, wrongType.namespace, wrongType.payload);
    expect((await failed).reason).toMatch(/password/);
    expect(device.state).toMatchObject({ mode: "pairing", key: undefined });
  });
});

describe("simulated device on a real Mosquitto", () => {
  let pki: LocalPki;
  let otherCa: LocalCa;
  let broker: MosquittoInstance;
  let gateway: BrokerAddress;

  beforeAll(async () => {
    pki = await makeLocalPki({ host: "127.0.0.1" });
    otherCa = await makeOtherCa();
    broker = await startMosquitto({ variant: "anonymous", pki });
    gateway = { host: broker.host, port: broker.port };
  });

  afterAll(async () => {
    await broker?.stop();
    await pki?.cleanup();
    await otherCa?.cleanup();
  });

  /** How long a broker message the device sends (or a log line about it) may take to show up. */
  const MESSAGE_WAIT_MS = 10_000;

  /** A controller on the broker that verifies the broker's certificate. */
  async function controller(
    topics: string[],
  ): Promise<{ client: MqttClient; messages: { topic: string; message: MerossMessage }[] }> {
    const client = await mqttConnectAsync(broker.url, { ca: broker.caPem, reconnectPeriod: 0 });
    controllers.push(client);
    const messages: { topic: string; message: MerossMessage }[] = [];
    client.on("message", (topic, payload) => messages.push({ topic, message: parseMessage(payload) }));
    await client.subscribeAsync(topics);
    return { client, messages };
  }

  /** What the session agent does (protocol §5.5): echo the Clock header with the time, SETACK the Bind. */
  function answerSession(client: MqttClient, device: SimulatedDevice): void {
    client.on("message", (_topic, payload) => {
      const { header } = parseMessage(payload);
      const subscribe = deviceSubscribeTopic(device.uuid);
      if (header.method === "PUSH" && header.namespace === Namespace.SystemClock) {
        client.publish(
          subscribe,
          JSON.stringify({ header, payload: { clock: { timestamp: Math.floor(Date.now() / 1000) } } }),
        );
      }
      if (header.method === "SET" && header.namespace === Namespace.ControlBind) {
        const ack = buildMessage({
          method: "SET",
          namespace: header.namespace,
          key: KEY,
          from: devicePublishTopic(device.uuid),
          messageId: header.messageId,
        });
        client.publish(
          subscribe,
          JSON.stringify({ header: { ...ack.header, method: "SETACK" }, payload: {} }),
        );
      }
    });
  }

  it.each<SimulatedModel>(["legacy", "encrypted"])(
    "%s: reboots onto the broker with MQTT 3.1, the firmware client id and MAC login, then pushes Clock and SETs Bind",
    async (model) => {
      const device = await simulate({ model });
      const { messages } = await controller([devicePublishTopic(device.uuid)]);
      const connected = nextEvent(device, "mqtt-connected");
      await provision(device, [gateway, gateway]);
      const event = await connected;
      expect(event.clientId).toMatch(new RegExp(`^fmware:${device.uuid}_[A-Za-z0-9]{16}$`));
      expect(event.username).toBe(device.macAddress);
      expect(device.state).toMatchObject({ mode: "online", broker: gateway });

      // Mosquitto's own view: p1 = MQTT 3.1 (MQIsdp), c1 = clean session, k120, username = MAC.
      const login = await waitFor(
        "Mosquitto's connection log line",
        () =>
          broker
            .output()
            .split("\n")
            .find((line) => line.includes(`as ${event.clientId} `)),
        MESSAGE_WAIT_MS,
      );
      expect(login).toContain(`(p1, c1, k120, u'${device.macAddress}')`);

      const clock = await waitFor(
        "Clock",
        () => messages.find(({ message }) => message.header.namespace === Namespace.SystemClock),
        MESSAGE_WAIT_MS,
      );
      const bind = await waitFor(
        "Bind",
        () => messages.find(({ message }) => message.header.namespace === Namespace.ControlBind),
        MESSAGE_WAIT_MS,
      );
      expect(clock.message.header.method).toBe("PUSH");
      expect(bind.message.header).toMatchObject({
        method: "SET",
        from: deviceSubscribeTopic(device.uuid),
        triggerSrc: "DevBoot",
      });
      for (const { message } of [clock, bind]) {
        expect(isSignatureValid(message.header, KEY)).toBe(true);
      }
      expect(parseBind(bind.message.payload).hardware).toMatchObject({
        uuid: device.uuid,
        macAddress: device.macAddress,
      });
      const consumption = messages.find(
        ({ message }) => message.header.namespace === Namespace.ControlConsumptionConfig,
      );
      expect(consumption !== undefined).toBe(model === "legacy");
    },
  );

  it("answers ToggleX GET/SET on its subscribe topic to the request's from topic, pushes the change, and refuses a wrong signature", async () => {
    const device = await simulate({ model: "legacy" });
    const replyTopic = controllerReplyTopic(USER_ID, "simulator-test");
    const { client, messages } = await controller([devicePublishTopic(device.uuid), replyTopic]);
    const connected = nextEvent(device, "mqtt-connected");
    await provision(device, [gateway, gateway]);
    await connected;

    const set = buildMessage({ ...toggleXSetRequest(true), key: KEY, from: replyTopic });
    const command = nextEvent(device, "command");
    client.publish(deviceSubscribeTopic(device.uuid), JSON.stringify(set));
    expect(await command).toMatchObject({
      method: "SET",
      namespace: Namespace.ControlToggleX,
      replyTopic,
      replyMethod: "SETACK",
    });
    const ack = await waitFor(
      "SETACK",
      () => messages.find(({ message }) => message.header.messageId === set.header.messageId),
      MESSAGE_WAIT_MS,
    );
    expect(ack.topic).toBe(replyTopic);
    expect(ack.message.header).toMatchObject({ method: "SETACK", from: devicePublishTopic(device.uuid) });
    expect(isSignatureValid(ack.message.header, KEY)).toBe(true);
    const push = await waitFor(
      "ToggleX PUSH",
      () =>
        messages.find(
          ({ message }) =>
            message.header.namespace === Namespace.ControlToggleX && message.header.method === "PUSH",
        ),
      MESSAGE_WAIT_MS,
    );
    expect(push.topic).toBe(devicePublishTopic(device.uuid));
    expect(parseToggleX(push.message.payload)).toMatchObject([{ channel: 0, on: true }]);

    const get = buildMessage({ ...toggleXGetRequest(), key: KEY, from: replyTopic });
    client.publish(deviceSubscribeTopic(device.uuid), JSON.stringify(get));
    const state = await waitFor(
      "GETACK",
      () => messages.find(({ message }) => message.header.messageId === get.header.messageId),
      MESSAGE_WAIT_MS,
    );
    expect(state.message.header.method).toBe("GETACK");
    expect(parseToggleX(state.message.payload)).toMatchObject([{ channel: 0, on: true }]);

    const forged = buildMessage({ ...toggleXSetRequest(false), key: "not-the-key", from: replyTopic });
    client.publish(deviceSubscribeTopic(device.uuid), JSON.stringify(forged));
    const refusal = await waitFor(
      "ERROR",
      () => messages.find(({ message }) => message.header.messageId === forged.header.messageId),
      MESSAGE_WAIT_MS,
    );
    expect(refusal.message.header.method).toBe("ERROR");
    expect(refusal.message.payload).toMatchObject({ error: { code: 5001 } });
    expect(device.state.toggles[0]?.on).toBe(true);
  });

  it("with requireSessionAnswers hangs up when Clock and Bind go unanswered, then dials again", async () => {
    const device = await simulate({ model: "encrypted", requireSessionAnswers: true });
    const connected = nextEvent(device, "mqtt-connected");
    await provision(device, [gateway, gateway]);
    await connected;
    const dropped = await nextEvent(device, "mqtt-disconnected");
    expect(dropped.reason).toMatch(/no answer to Clock and Bind/);
    await nextEvent(device, "mqtt-connected");
  });

  it("with requireSessionAnswers stays connected when Clock and Bind are answered, and takes the time from the Clock answer", async () => {
    const device = await simulate({ model: "encrypted", requireSessionAnswers: true });
    const { client } = await controller([devicePublishTopic(device.uuid)]);
    answerSession(client, device);
    let drops = 0;
    device.events.on("mqtt-disconnected", () => drops++);
    const connected = nextEvent(device, "mqtt-connected");
    await provision(device, [gateway, gateway]);
    await connected;
    await new Promise((resolve) => setTimeout(resolve, FAST.sessionTimeoutMs * 2.5));
    expect(drops).toBe(0);
    expect(device.state).toMatchObject({
      mode: "online",
      clockSet: true,
      session: { clock: true, bind: true },
    });
  });

  it("dials the second gateway when the first is down, and moves to it when its broker goes away", async () => {
    const closedPort = await freePort();
    const device = await simulate({ model: "legacy" });
    const failed = nextEvent(device, "mqtt-error");
    const connected = nextEvent(device, "mqtt-connected");
    await provision(device, [{ host: "127.0.0.1", port: closedPort }, gateway]);
    expect((await failed).broker).toEqual({ host: "127.0.0.1", port: closedPort });
    expect((await connected).broker).toEqual(gateway);

    const first = await startMosquitto({ variant: "anonymous", pki });
    try {
      const moved = await simulate({ model: "legacy" });
      const onFirst = nextEvent(moved, "mqtt-connected");
      await provision(moved, [{ host: first.host, port: first.port }, gateway]);
      expect((await onFirst).broker.port).toBe(first.port);
      const lost = nextEvent(moved, "mqtt-disconnected");
      const back = nextEvent(moved, "mqtt-connected", 15_000);
      await first.stop();
      await lost;
      expect((await back).broker).toEqual(gateway);
    } finally {
      await first.stop();
    }
  });

  it("verifies the broker only when given a CA: the stack's CA connects, another CA is refused", async () => {
    const trusting = await simulate({ model: "legacy", mqttCa: pki.caPem });
    const connected = nextEvent(trusting, "mqtt-connected");
    await provision(trusting, [gateway, gateway]);
    await connected;

    const distrusting = await simulate({ model: "legacy", mqttCa: otherCa.caPem });
    let connections = 0;
    distrusting.events.on("mqtt-connected", () => connections++);
    const refused = nextEvent(distrusting, "mqtt-error");
    await provision(distrusting, [gateway, gateway]);
    expect((await refused).reason).toMatch(/certificate/i);
    expect(connections).toBe(0);
  });

  it("restart() power-cycles: the session drops and comes back, the ECDHE key is forgotten", async () => {
    const device = await simulate({ model: "encrypted" });
    const connected = nextEvent(device, "mqtt-connected");
    await provision(device, [gateway, gateway]);
    await connected;
    const dropped = nextEvent(device, "mqtt-disconnected");
    const again = nextEvent(device, "mqtt-connected");
    await device.restart();
    expect((await dropped).reason).toMatch(/reboot/);
    await again;
    expect(device.state).toMatchObject({ mode: "online", lanKeyExchanged: false, clockSet: false });
  });
});

describe("scripts/simulate-device.mjs", () => {
  it("prints the URL to provision, logs each request on one line, and exits 0 on Ctrl-C", async () => {
    const { child, stdout, stderr } = spawnScript("simulate-device.mjs", [
      "--model",
      "encrypted",
      "--port",
      "0",
    ]);
    const output = () => stdout() + stderr();
    const deadline = Date.now() + 20_000;
    const waitForLine = async (pattern: RegExp): Promise<RegExpExecArray> => {
      for (;;) {
        const match = pattern.exec(output());
        if (match) return match;
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no ${pattern} in:\n${output()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    try {
      const [, port] = await waitForLine(/--ip 127\.0\.0\.1:(\d+)/);
      expect(output()).toMatch(/HTTP API: .*http:\/\/127\.0\.0\.1:\d+\/config/);
      const client = new DeviceClient({ ip: "127.0.0.1", port: Number(port), key: PAIRING_KEY, attempts: 1 });
      expect((await client.getSystemAll()).type).toBe("mss110");
      await waitForLine(/http-request GET Appliance\.System\.All -> GETACK/);
      child.kill("SIGINT");
      const [code] = await once(child, "exit");
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("exits 2 with a message naming the bad flag", async () => {
    const { code, stderr } = await runScript("simulate-device.mjs", ["--model", "mss999"]);
    expect(code).toBe(2);
    expect(stderr).toContain("--model mss999 is not one of: gen1, legacy, encrypted");
  });
});
