import { createServer, type Server, Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../lib/cli/exit-codes.ts";
import { type MosquittoInstance, startMosquitto } from "../../lib/local-stack/mosquitto.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { freePort } from "../../lib/local-stack/ports.ts";
import { DeviceClient } from "../../lib/meross/device-client.ts";
import { buildReply, type MerossMessage, parseMessage } from "../../lib/meross/envelope.ts";
import { Namespace } from "../../lib/meross/messages/index.ts";
import { devicePublishTopic } from "../../lib/meross/topics.ts";
import type { SimulatedDevice, SimulatedModel } from "../../lib/simulator/index.ts";
import { type FakePulumi, installFakePulumi, testStackOutputs } from "../support/fake-pulumi.ts";
import { startPairingDevice } from "../support/online-device.ts";
import { runScript } from "../support/run-script.ts";
import { setupArgs as setupArgsFor } from "../support/setup-args.ts";

// Every way setup can go wrong, through the real script: bad input changes nothing and sends
// nothing; a device that fails mid-way leaves a state the same command completes when run again.

const HOST = "127.0.0.1";
const USER_ID = "1234";
const KEY = "provision-test-key-0123";

let pki: LocalPki;
let broker: MosquittoInstance;
let fake: FakePulumi;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  pki = await makeLocalPki({ host: HOST });
  broker = await startMosquitto({ variant: "anonymous", pki });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await broker?.stop();
  await pki?.cleanup();
});

/** The stack outputs of an anonymous stack on the test broker, so every run also exercises the stack config. */
async function stack(): Promise<FakePulumi> {
  fake = await installFakePulumi({
    outputs: testStackOutputs({ broker, pki, userId: USER_ID, deviceKey: KEY }),
  });
  cleanups.push(() => fake.cleanup());
  return fake;
}

const pairingDevice = (model: SimulatedModel) => startPairingDevice(model, pki.caPem);

interface DeviceProxy {
  address: string;
  /** forward: pass through; drop: reset every new connection, as a device that left does. */
  mode: "forward" | "drop";
  /** Answer a (plaintext) request itself instead of the device. */
  answer?: (request: MerossMessage) => MerossMessage | undefined;
}

/** A TCP stand-in in front of the simulator's HTTP API, to make the device misbehave on cue. */
async function proxyTo(device: SimulatedDevice): Promise<DeviceProxy> {
  const proxy: DeviceProxy = { address: "", mode: "forward" };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    if (proxy.mode === "drop") {
      socket.resetAndDestroy();
      return;
    }
    let buffered = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const headerEnd = buffered.indexOf("\r\n\r\n");
      if (headerEnd === -1) return;
      const length = Number(
        /content-length:\s*(\d+)/i.exec(buffered.subarray(0, headerEnd).toString())?.[1] ?? 0,
      );
      if (buffered.length < headerEnd + 4 + length) return;
      socket.removeAllListeners("data");
      const body = buffered.subarray(headerEnd + 4).toString();
      const reply = body.startsWith("{") ? proxy.answer?.(parseMessage(body)) : undefined;
      if (reply) {
        const json = JSON.stringify(reply);
        socket.end(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
        );
        return;
      }
      const upstream = new Socket();
      upstream.on("error", () => socket.destroy());
      upstream.connect(device.port, device.ip, () => upstream.write(buffered));
      upstream.pipe(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as { port: number }).port;
  proxy.address = `${HOST}:${port}`;
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return proxy;
}

function deviceError(request: MerossMessage, code: number, detail: string): MerossMessage {
  return buildReply(request, {
    key: "",
    from: "/appliance/x/publish",
    method: "ERROR",
    payload: { error: { code, detail } },
  });
}

/** `setup` with the simulated network and a 20 s wait; `flags` replace the defaults (a flag given twice is itself an error). */
const setupArgs = (ip: string, flags: Record<string, string> = {}) =>
  setupArgsFor(ip, { timeout: "20", ...flags });

describe("bad input: exit 2, a message naming what to fix, nothing sent and nothing written", () => {
  it.each([
    ["--mac", { mac: "48:e1:e9:zz:00:01" }, /--mac: must be a MAC address/],
    ["--uuid", { uuid: "not-a-uuid" }, /--uuid: must be the device uuid: 32 hex digits/],
    ["--mqtt", { mqtt: "https://broker.lan:8883" }, /--mqtt: "https:\/\/broker\.lan:8883" scheme https:/],
    ["--ip", { ip: "10.10.10" }, /--ip: must be the device's IPv4 address/],
    ["SSID length", { "wifi-ssid": "x".repeat(33) }, /--wifi-ssid: must be 1 to 32 bytes/],
    ["short password", { "wifi-pass": "1234567" }, /--wifi-pass: must be 8 to 63 printable ASCII/],
    ["long password", { "wifi-pass": "p".repeat(65) }, /--wifi-pass: must be 8 to 63 printable ASCII/],
    ["64 characters, not hex", { "wifi-pass": "p".repeat(64) }, /--wifi-pass: .*exactly 64 hex digits/],
    ["a newline", { "wifi-pass": "first-line\nsecond" }, /--wifi-pass: .*no control characters/],
    ["an empty key", { key: "" }, /--key: must be at least 16 characters/],
    ["unknown flag", { "wifi-password": "x" }, /unknown flag --wifi-password/],
  ])("%s", async (_label, override, message) => {
    const { device, requests } = await pairingDevice("legacy");
    const pulumi = await stack();
    const run = await runScript("provision.mjs", setupArgs(`${device.ip}:${device.port}`, override), {
      env: pulumi.env,
    });
    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(requests).toEqual([]);
    expect(await pulumi.calls()).toEqual([]);
    expect(device.state.key).toBeUndefined();
  });
});

describe("info on a device as third-party traces show it", () => {
  it('a user id that is not a number (meross_lan traces: "@0"): one line naming --user, exit 2', async () => {
    const { device } = await pairingDevice("legacy");
    const proxy = await proxyTo(device);
    const { raw } = await new DeviceClient({ ip: device.ip, port: device.port, key: "" }).getSystemAll();
    proxy.answer = (request) => {
      if (request.header.namespace !== Namespace.SystemAll) return undefined;
      const payload = { all: structuredClone(raw) } as { all: { system: { firmware: object } } };
      Object.assign(payload.all.system.firmware, { userId: "@0", port: "@2", server: "#####3" });
      return buildReply(request, { key: "", from: devicePublishTopic(device.uuid), payload });
    };
    const run = await runScript("provision.mjs", ["info", "--no-stack", "--ip", proxy.address]);
    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr.trim().split("\n")).toEqual([
      'error: the device reports user id "@0", which is not a number, so its MQTT login cannot be computed: pass --user <id>',
    ]);

    const given = await runScript("provision.mjs", [
      "info",
      "--no-stack",
      "--ip",
      proxy.address,
      "--user",
      "0",
    ]);
    expect(given.code).toBe(0);
    expect(given.stdout).toMatch(/User id\s+@0/);
  });
});

describe("a device that cannot be set up", () => {
  it("unreachable: exit 3, says which Wi-Fi to join, nothing written", async () => {
    const pulumi = await stack();
    const port = await freePort();
    const run = await runScript("provision.mjs", setupArgs(`127.0.0.1:${port}`), { env: pulumi.env });
    expect(run.code).toBe(EXIT.unreachable);
    expect(run.stderr).toMatch(/no answer from the device at http:\/\/127\.0\.0\.1:\d+\/config/);
    expect(run.stderr).toMatch(/Meross_\* Wi-Fi/);
    expect(run.stderr).toMatch(/Nothing was changed/);
    expect((await pulumi.config())["meross-broker:devices"]).toBeUndefined();
  });

  it("wrong key: exit 4 naming --current-key; with it the same device is set up", async () => {
    const { device } = await pairingDevice("legacy");
    const oldKey = "key-from-an-earlier-life";
    const client = new DeviceClient({ ip: device.ip, port: device.port, key: "" });
    await client.setKey({
      userId: "7",
      key: oldKey,
      brokers: [
        { host: "old.lan", port: 8883 },
        { host: "old.lan", port: 8883 },
      ],
    });
    const pulumi = await stack();
    const ip = `${device.ip}:${device.port}`;

    const refused = await runScript("provision.mjs", setupArgs(ip), { env: pulumi.env });
    expect(refused.code).toBe(EXIT.wrongKey);
    expect(refused.stderr).toMatch(/error 5001/);
    expect(refused.stderr).toMatch(/--current-key is the key the device has now/);
    expect(device.state.key).toBe(oldKey);
    expect((await pulumi.config())["meross-broker:devices"]).toBeUndefined();

    const fixed = await runScript("provision.mjs", setupArgs(ip, { "current-key": oldKey }), {
      env: pulumi.env,
    });
    expect(fixed.code).toBe(0);
    expect(device.state).toMatchObject({ key: KEY, userId: USER_ID, mode: "online" });
  });

  it("device answering ERROR to System.All: exit 5, nothing changed", async () => {
    const { device } = await pairingDevice("legacy");
    const proxy = await proxyTo(device);
    proxy.answer = (request) =>
      request.header.namespace === Namespace.SystemAll
        ? deviceError(request, 5000, "device busy")
        : undefined;
    const pulumi = await stack();
    const run = await runScript("provision.mjs", setupArgs(proxy.address), { env: pulumi.env });
    expect(run.code).toBe(EXIT.deviceError);
    expect(run.stderr).toMatch(/the device refused Appliance\.System\.All: device busy \(error 5000\)/);
    expect(run.stderr).toMatch(/Nothing was changed/);
    expect(await pulumi.calls()).toHaveLength(1);
  });

  it("device answering ERROR to Config.Key after it was recorded: exit 5, and the same command then succeeds", async () => {
    const { device } = await pairingDevice("legacy");
    const proxy = await proxyTo(device);
    proxy.answer = (request) =>
      request.header.namespace === Namespace.ConfigKey
        ? deviceError(request, 5000, "flash write failed")
        : undefined;
    const pulumi = await stack();
    const args = setupArgs(proxy.address, { name: "hall" });

    const failed = await runScript("provision.mjs", args, { env: pulumi.env });
    expect(failed.code).toBe(EXIT.deviceError);
    expect(failed.stderr).toMatch(
      /Point it at the broker .* failed: the device refused Appliance\.Config\.Key/,
    );
    expect(failed.stderr).toMatch(
      /recorded in the stack config.*safe to repeat.*run the same command again/s,
    );
    expect(device.state.key).toBeUndefined();

    proxy.answer = undefined;
    const rerun = await runScript("provision.mjs", args, { env: pulumi.env });
    expect(rerun.code).toBe(0);
    expect(device.state.mode).toBe("online");
    expect((await pulumi.config())["meross-broker:devices"]).toEqual([
      { name: "hall", mac: device.macAddress, uuid: device.uuid },
    ]);
  });

  it("device vanishing after Config.Key: exit 3, and the same command then succeeds", async () => {
    const { device } = await pairingDevice("encrypted");
    const proxy = await proxyTo(device);
    device.events.on("http-request", (exchange) => {
      if (exchange.namespace === Namespace.ConfigKey) proxy.mode = "drop";
    });
    const pulumi = await stack();
    const args = setupArgs(proxy.address);

    const failed = await runScript("provision.mjs", args, { env: pulumi.env });
    expect(failed.code).toBe(EXIT.unreachable);
    expect(failed.stderr).toMatch(/Send it the Wi-Fi settings .* failed: no answer from the device/);
    expect(failed.stderr).toMatch(
      /the device has the broker settings and the new key.*run the same command again/s,
    );
    expect(device.state).toMatchObject({ key: KEY, mode: "pairing" });

    device.events.removeAllListeners("http-request");
    proxy.mode = "forward";
    const rerun = await runScript("provision.mjs", args, { env: pulumi.env });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toMatch(/✓ Exchange encryption keys/);
    expect(device.state.mode).toBe("online");
    expect((await pulumi.config())["meross-broker:devices"]).toHaveLength(1);
  });
});

describe("a device that does not come online: exit 7 with the likely causes", () => {
  it("wrong Wi-Fi password: the device falls back to pairing, Wi-Fi is named first", async () => {
    const { device } = await pairingDevice("legacy");
    const pulumi = await stack();
    const run = await runScript(
      "provision.mjs",
      setupArgs(`${device.ip}:${device.port}`, { timeout: "4", "wifi-pass": "not-the-password" }),
      { env: pulumi.env },
    );
    expect(run.code).toBe(EXIT.timeout);
    expect(run.stderr).toMatch(/did not publish anything on the broker within 4 s/);
    expect(run.stderr).toMatch(/Wi-Fi: the device did not join "SimulatedHome"[\s\S]*2\.4 GHz[\s\S]*TLS:/);
    expect(run.stderr).not.toMatch(/could not reach the broker/);
    expect(device.state.wifiFailure).toMatch(/wrong password/);
  });

  it("broker host the certificate does not name: TLS is explained, with the openssl check for that host", async () => {
    const { device } = await pairingDevice("legacy");
    const pulumi = await stack();
    const wrongHost = `mqtts://localhost:${broker.port}`;
    const run = await runScript(
      "provision.mjs",
      setupArgs(`${device.ip}:${device.port}`, { timeout: "4", mqtt: wrongHost }),
      { env: pulumi.env },
    );
    expect(run.code).toBe(EXIT.timeout);
    expect(run.stderr).toMatch(/could not reach the broker at mqtts:\/\/localhost:\d+ either \(.*altnames/);
    expect(run.stderr).toMatch(/must be RSA and name exactly "localhost"/);
    expect(run.stderr).toMatch(/openssl s_client -connect localhost:\d+ -servername localhost/);
    expect(device.state.mode).not.toBe("online");
  });
});
