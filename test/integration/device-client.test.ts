import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { brokerPairSchema } from "../../lib/meross/broker-url.ts";
import { DeviceClient, DeviceUnreachableError } from "../../lib/meross/device-client.ts";
import {
  buildReply,
  DeviceError,
  type MerossMessage,
  ProtocolError,
  parseMessage,
  WrongKeyError,
} from "../../lib/meross/envelope.ts";
import {
  decryptLanBody,
  ecdhKeyPair,
  ecdhSharedKey,
  encryptLanBody,
  lanAesKey,
} from "../../lib/meross/lan-crypto.ts";
import {
  ecdheReplyPayload,
  Namespace,
  PLAINTEXT_NAMESPACES,
  parseConfigKey,
  parseEcdheRequest,
  parseSystemTime,
  parseWifiRequest,
  type WifiNetwork,
  wifiListPayload,
} from "../../lib/meross/messages/index.ts";
import { isSignatureValid } from "../../lib/meross/sign.ts";
import { devicePublishTopic } from "../../lib/meross/topics.ts";
import {
  SIMULATED_HOME_NETWORK,
  type SimulatedDevice,
  type SimulatedModel,
  startSimulatedDevice,
} from "../../lib/simulator/index.ts";

const IDENTITY = {
  type: "mss110",
  uuid: "2307065833780651200148e1e9cf4534",
  macAddress: "48:e1:e9:cf:45:34",
};
const ACCESS_POINT = {
  ssid: "Home ☕",
  bssid: "2c:6e:a4:55:c6:47",
  signal: 90,
  channel: 6,
  encryption: 6,
  cipher: 3,
};

interface SeenRequest {
  message: MerossMessage;
  encrypted: boolean;
}

/**
 * A minimal device speaking the protocol over real HTTP: the legacy model takes plaintext and
 * Config.Wifi; the encrypted one lists ECDHE/WifiX and resets unencrypted requests, as meross_lan's
 * emulator describes newer firmware.
 */
async function startStubDevice(options: {
  model: "legacy" | "encrypted";
  key?: string;
  /**
   * A device on a LAN as meross_lan's emulator plays it: only System.Ability in plaintext, every
   * other body with this LAN key, kept even after Config.Key changes the device key.
   */
  lanKey?: Buffer;
  /** How a body it cannot take is turned down: a reset (real firmware), or meross_lan's emulator's HTTP 500. */
  refusal?: "reset" | "http-500";
}) {
  const encryptedModel = options.model === "encrypted";
  const devicePair = ecdhKeyPair();
  const state = {
    key: options.key,
    sessionKey: options.lanKey,
    clientPublicKey: undefined as Buffer | undefined,
    /** Answers encrypted with this instead of the session key, as a device that re-keyed would. */
    replyKey: undefined as Buffer | undefined,
    seen: [] as SeenRequest[],
    time: undefined as unknown,
    gateway: undefined as unknown,
    wifi: undefined as WifiNetwork | undefined,
  };

  function handle(message: MerossMessage): { payload: Record<string, unknown>; method?: "ERROR" } {
    const { namespace, method } = message.header;
    switch (namespace) {
      case Namespace.SystemAll:
        return {
          payload: {
            all: {
              system: {
                hardware: { ...IDENTITY, subType: "un", version: "7.0.0", chipType: "rtl8710cf" },
                firmware: { version: "7.3.37", innerIp: "10.10.10.1", userId: 0, server: "", port: 0 },
              },
            },
          },
        };
      case Namespace.SystemAbility: {
        const common = { [Namespace.ConfigWifi]: {}, [Namespace.ControlToggleX]: {} };
        const newer = {
          [Namespace.ConfigWifiX]: {},
          [Namespace.EncryptEcdhe]: {},
          [Namespace.EncryptSuite]: {},
        };
        return { payload: { ability: encryptedModel ? { ...common, ...newer } : common } };
      }
      case Namespace.EncryptEcdhe:
        state.clientPublicKey = parseEcdheRequest(message.payload);
        state.sessionKey = ecdhSharedKey(devicePair.privateKey, state.clientPublicKey);
        return { payload: ecdheReplyPayload(devicePair.publicKey) };
      case Namespace.ConfigWifiList:
        return { payload: wifiListPayload([ACCESS_POINT]) };
      case Namespace.SystemTime:
        state.time = parseSystemTime(message.payload);
        return { payload: {} };
      case Namespace.ConfigKey: {
        const key = parseConfigKey(message.payload);
        state.gateway = key.gateway;
        state.key = key.key;
        return { payload: {} };
      }
      case Namespace.ConfigWifi:
      case Namespace.ConfigWifiX:
        state.wifi = parseWifiRequest(namespace, message.payload, IDENTITY);
        return { payload: {} };
      default:
        return {
          method: "ERROR",
          payload: { error: { code: 5000, detail: `no ${method} ${namespace} here` } },
        };
    }
  }

  async function readBody(request: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    const encrypted = !body.trimStart().startsWith("{");
    const sessionKey = state.sessionKey;
    if (encrypted && !sessionKey) return void request.socket.destroy();
    const refuse = () => {
      if (options.refusal !== "http-500") return void request.socket.destroy();
      response.writeHead(500, "Encryption required").end();
    };
    let message: MerossMessage;
    try {
      message = parseMessage(encrypted && sessionKey ? decryptLanBody(body, sessionKey) : body);
    } catch {
      return refuse();
    }
    state.seen.push({ message, encrypted });
    const plaintextAllowed = options.lanKey
      ? message.header.namespace === Namespace.SystemAbility
      : PLAINTEXT_NAMESPACES.has(message.header.namespace);
    if (encryptedModel && !encrypted && !plaintextAllowed) return refuse();
    const signedWith = state.key ?? "";
    const answer =
      state.key !== undefined && !isSignatureValid(message.header, state.key)
        ? { method: "ERROR" as const, payload: { error: { code: 5001, detail: "sign error" } } }
        : handle(message);
    const reply = buildReply(message, {
      key: signedWith,
      from: devicePublishTopic(IDENTITY.uuid),
      payload: answer.payload,
      ...(answer.method ? { method: answer.method } : {}),
    });
    const json = JSON.stringify(reply);
    response.setHeader("content-type", "application/json;charset=UTF-8");
    response.end(encrypted && sessionKey ? encryptLanBody(json, state.replyKey ?? sessionKey) : json);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push(server);
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the stub device has no TCP port");
  return { port: address.port, state, devicePair };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
  );
});

function clientFor(port: number, key = "meross"): DeviceClient {
  return new DeviceClient({ ip: "127.0.0.1", port, key, timeoutMs: 1000, attempts: 1 });
}

const brokers = brokerPairSchema.parse(["mqtts://192.168.1.2:8883"]);
const lanIdentity = { uuid: IDENTITY.uuid, macAddress: IDENTITY.macAddress, key: "meross" };

describe("DeviceClient against a legacy (plaintext) device", () => {
  it("reads the summary, abilities and Wi-Fi list", async () => {
    const device = await startStubDevice({ model: "legacy" });
    const client = clientFor(device.port);

    await expect(client.getSystemAll()).resolves.toMatchObject({
      type: "mss110",
      uuid: IDENTITY.uuid,
      macAddress: IDENTITY.macAddress,
      firmwareVersion: "7.3.37",
      userId: "0",
    });
    expect(Object.keys(await client.getAbilities())).toContain(Namespace.ConfigWifi);
    await expect(client.getWifiList()).resolves.toEqual([ACCESS_POINT]);
    expect(device.state.seen.every(({ encrypted }) => !encrypted)).toBe(true);
    expect(device.state.seen[0]?.message.header.from).toBe(client.url);
  });

  it("sets time, key and Wi-Fi, and signs with the new key after Config.Key", async () => {
    const device = await startStubDevice({ model: "legacy" });
    const client = clientFor(device.port);
    const network = { ssid: "Home ☕", password: "correct horse battery", channel: 6 };

    await client.setTime("Europe/Dublin", new Date(Date.UTC(2025, 5, 1)));
    await client.setKey({ userId: 1234, key: "a-new-key-of-ours-0123", brokers });
    await client.setWifi(network);

    expect(device.state.time).toMatchObject({
      timezone: "Europe/Dublin",
      timestamp: Date.UTC(2025, 5, 1) / 1000,
    });
    expect(device.state.gateway).toMatchObject({
      host: "192.168.1.2",
      port: 8883,
      secondHost: "192.168.1.2",
    });
    expect(device.state.wifi).toEqual(network);
    const last = device.state.seen.at(-1)?.message;
    expect(last?.header.namespace).toBe(Namespace.ConfigWifi);
    expect(last && isSignatureValid(last.header, "a-new-key-of-ours-0123")).toBe(true);
  });

  it("maps ERROR 5001 to WrongKeyError", async () => {
    const device = await startStubDevice({ model: "legacy", key: "the-device-key" });
    const error = await clientFor(device.port, "meross")
      .getSystemAll()
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WrongKeyError);
    expect((error as Error).message).toMatch(/--key/);
    await expect(clientFor(device.port, "the-device-key").getSystemAll()).resolves.toMatchObject({
      type: "mss110",
    });
  });

  it("maps other ERROR replies to DeviceError with the device's code", async () => {
    const device = await startStubDevice({ model: "legacy" });
    const error = await clientFor(device.port)
      .request("GET", "Appliance.Control.Nothing")
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DeviceError);
    expect(error).toMatchObject({ code: 5000 });
  });

  it("reports a device that is not there as DeviceUnreachableError", async () => {
    const device = await startStubDevice({ model: "legacy" });
    await new Promise<void>((resolve) => servers.pop()?.close(() => resolve()));
    const error = await clientFor(device.port)
      .getSystemAll()
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DeviceUnreachableError);
    expect(error).toMatchObject({ code: "EUNREACHABLE" });
  });
});

describe("DeviceClient against an encrypting device", () => {
  it("exchanges keys with BS2's default private key and encrypts all but the plaintext namespaces", async () => {
    const device = await startStubDevice({ model: "encrypted" });
    const client = clientFor(device.port);
    const summary = await client.getSystemAll();
    await client.getAbilities();
    expect(client.encrypted).toBe(false);

    await client.exchangeKeys(lanIdentity);
    expect(client.encrypted).toBe(true);
    expect(device.state.clientPublicKey).toEqual(ecdhKeyPair(lanAesKey(lanIdentity)).publicKey);

    await expect(client.getWifiList()).resolves.toEqual([ACCESS_POINT]);
    await client.getSystemAll();
    await client.setTime("UTC");
    await client.setKey({ userId: 0, key: "a-new-key-of-ours-0123", brokers });
    const network = { ssid: ACCESS_POINT.ssid, password: "0123456789abcdef", bssid: ACCESS_POINT.bssid };
    await client.setWifi(network, { wifix: summary });

    const wire = device.state.seen.map(({ message, encrypted }) => [message.header.namespace, encrypted]);
    expect(wire).toEqual([
      [Namespace.SystemAll, false],
      [Namespace.SystemAbility, false],
      [Namespace.EncryptEcdhe, false],
      [Namespace.ConfigWifiList, true],
      [Namespace.SystemAll, false],
      [Namespace.SystemTime, true],
      [Namespace.ConfigKey, true],
      [Namespace.ConfigWifiX, true],
    ]);
    expect(device.state.wifi).toEqual(network);
  });

  it("can use a random ECDH key pair instead", async () => {
    const device = await startStubDevice({ model: "encrypted" });
    const client = clientFor(device.port);
    await client.exchangeKeys(lanIdentity, { privateKey: "random" });
    expect(device.state.clientPublicKey).not.toEqual(ecdhKeyPair(lanAesKey(lanIdentity)).publicKey);
    await expect(client.getWifiList()).resolves.toHaveLength(1);
  });

  it("explains the reset an encrypting device gives to a plaintext request", async () => {
    const device = await startStubDevice({ model: "encrypted" });
    await expect(clientFor(device.port).getWifiList()).rejects.toThrow(
      /connection was reset; newer firmware does this to unencrypted requests/,
    );
  });

  it("says so when the session keys no longer match", async () => {
    const device = await startStubDevice({ model: "encrypted" });
    const client = clientFor(device.port);
    await client.exchangeKeys(lanIdentity);
    device.state.replyKey = randomBytes(32);
    const error = await client.getWifiList().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as Error).message).toMatch(
      /did not decrypt to a Meross message: .* different session keys/,
    );
  });
});

describe.each(["reset", "http-500"] as const)(
  "DeviceClient against an encrypting device already on a LAN (refusal: %s)",
  (refusal) => {
    it("reads System.All with the LAN key when plaintext is refused, and keeps the old LAN key if the device does after Config.Key", async () => {
      const device = await startStubDevice({
        model: "encrypted",
        key: "meross",
        lanKey: lanAesKey(lanIdentity),
        refusal,
      });
      const client = clientFor(device.port, "meross");

      await expect(client.getSystemAll()).resolves.toMatchObject({ uuid: IDENTITY.uuid });
      expect(client.encrypted).toBe(true);
      expect(
        device.state.seen.map(({ message, encrypted }) => `${message.header.namespace} ${encrypted}`),
      ).toEqual([
        `${Namespace.SystemAll} false`,
        `${Namespace.SystemAbility} false`,
        `${Namespace.SystemAll} true`,
      ]);

      const newKey = "a-new-key-of-ours-0123";
      await client.setKey({ userId: 1234, key: newKey, brokers });
      const network = { ssid: "Home ☕", password: "correct horse battery" };
      await client.setWifi(network);
      expect(device.state.wifi).toEqual(network);
      const last = device.state.seen.at(-1);
      expect(last).toMatchObject({
        encrypted: true,
        message: { header: { namespace: Namespace.ConfigWifi } },
      });
      expect(last && isSignatureValid(last.message.header, newKey)).toBe(true);
    });
  },
);

describe("DeviceClient against the simulated device (BS2's setup order)", () => {
  const simulated: SimulatedDevice[] = [];
  afterEach(async () => {
    await Promise.all(simulated.splice(0).map((device) => device.stop()));
  });

  async function simulate(model: SimulatedModel): Promise<SimulatedDevice> {
    // A long reboot: the device must not dial the (absent) broker while the test runs.
    const device = await startSimulatedDevice({ model, timing: { rebootMs: 60_000 } });
    simulated.push(device);
    return device;
  }

  it.each<[SimulatedModel, string]>([
    ["legacy", Namespace.ConfigWifi],
    ["encrypted", Namespace.ConfigWifiX],
  ])("takes the %s model through info and setup", async (model, wifiNamespace) => {
    const device = await simulate(model);
    const wifiConfigured = new Promise((resolve) => device.events.once("wifi-configured", resolve));
    const client = new DeviceClient({ ip: device.ip, port: device.port, key: "meross", timeoutMs: 2000 });

    const summary = await client.getSystemAll();
    expect(summary).toMatchObject({ uuid: device.uuid, macAddress: device.macAddress, type: device.type });
    const abilities = await client.getAbilities();
    if (Namespace.EncryptEcdhe in abilities) await client.exchangeKeys({ ...summary, key: "meross" });
    expect(client.encrypted).toBe(model === "encrypted");

    const listed = (await client.getWifiList()).find(({ ssid }) => ssid === SIMULATED_HOME_NETWORK.ssid);
    expect(listed).toMatchObject({
      bssid: SIMULATED_HOME_NETWORK.bssid,
      channel: SIMULATED_HOME_NETWORK.channel,
    });
    await client.setTime("Europe/Dublin");
    const loopbackBrokers = brokerPairSchema.parse(["127.0.0.1:1"]);
    await client.setKey({ userId: 1234, key: "a-new-key-of-ours-0123", brokers: loopbackBrokers });
    const wifix = Namespace.ConfigWifiX in abilities ? { wifix: summary } : {};
    const { ssid, password, bssid, channel, encryption, cipher } = SIMULATED_HOME_NETWORK;
    await client.setWifi({ ssid, password, bssid, channel, encryption, cipher }, wifix);

    await expect(wifiConfigured).resolves.toMatchObject({ ssid, namespace: wifiNamespace });
    expect(device.state).toMatchObject({
      key: "a-new-key-of-ours-0123",
      userId: "1234",
      gateways: loopbackBrokers,
      timezone: "Europe/Dublin",
      lanKeyExchanged: model === "encrypted",
      wifi: { ssid, password },
    });
  });

  it("gets WrongKeyError from a keyed simulated device", async () => {
    const device = await simulate("legacy");
    const owner = new DeviceClient({ ip: device.ip, port: device.port, key: "meross" });
    await owner.setKey({
      userId: 0,
      key: "a-new-key-of-ours-0123",
      brokers: brokerPairSchema.parse(["127.0.0.1:1"]),
    });

    const stranger = new DeviceClient({ ip: device.ip, port: device.port, key: "meross" });
    await expect(stranger.getSystemAll()).rejects.toBeInstanceOf(WrongKeyError);
    await expect(owner.getSystemAll()).resolves.toMatchObject({ uuid: device.uuid });
  });
});
