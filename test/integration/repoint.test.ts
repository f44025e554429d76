import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionAgent } from "../../lib/agent/agent.ts";
import { EXIT } from "../../lib/cli/exit-codes.ts";
import { type MosquittoInstance, startMosquitto } from "../../lib/local-stack/mosquitto.ts";
import { type MysqlVariant, startMysqlVariant } from "../../lib/local-stack/mysql-variant.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { Namespace } from "../../lib/meross/messages/index.ts";
import { type HttpExchange, SIMULATED_HOME_NETWORK, type SimulatedModel } from "../../lib/simulator/index.ts";
import { serviceAccount } from "../../lib/store/accounts.ts";
import { listAccounts } from "../../lib/store/database.ts";
import { type FakePulumi, installFakePulumi, testStackOutputs } from "../support/fake-pulumi.ts";
import { type OnlineDevice, startOnlineDevice } from "../support/online-device.ts";
import { runScript, spawnScript } from "../support/run-script.ts";
import { startTestAgent } from "../support/session-agent.ts";
import { waitFor } from "../support/wait.ts";

// Moving plugs that are already on the home Wi-Fi and connected to another broker (the vendor's
// cloud, or a broker of their own: here a second local Mosquitto) onto the kit's broker, without a
// factory reset: provision.mjs run as a user runs it, against real Mosquitto, MariaDB and go-auth.

const HOST = "127.0.0.1";
const USER_ID = "4242";
const KEY = "repoint-stack-device-key-0123";
/** What the plug signs with before: as if paired with the Meross app (a 32-hex cloud key). */
const OLD_KEY = "0123456789abcdef0123456789abcdef";
const OLD_USER_ID = "100234";
const AGENT = serviceAccount("session-agent", "session-agent-password-for-tests");
const { ssid: SSID, password: WIFI_PASS } = SIMULATED_HOME_NETWORK;

let pki: LocalPki;
let otherBroker: MosquittoInstance;
let ours: MysqlVariant;
let agent: SessionAgent;
let stack: FakePulumi;
const plugs: OnlineDevice[] = [];

beforeAll(async () => {
  pki = await makeLocalPki({ host: HOST });
  otherBroker = await startMosquitto({ variant: "anonymous", pki });
  ours = await startMysqlVariant(pki, [AGENT]);
  agent = await startTestAgent({ broker: ours.broker, pki, key: KEY, userId: USER_ID, account: AGENT });
  stack = await installFakePulumi({
    outputs: testStackOutputs({ broker: ours.broker, pki, userId: USER_ID, deviceKey: KEY, mysql: ours.db }),
  });
});

afterAll(async () => {
  await Promise.all(plugs.map((plug) => plug.device.stop()));
  await agent?.stop();
  await ours?.stop();
  await otherBroker?.stop();
  await stack?.cleanup();
  await pki?.cleanup();
});

/** A plug on the home Wi-Fi, connected to `broker` with the key and user id it was paired with. */
async function plugOn(
  broker: MosquittoInstance,
  model: SimulatedModel,
  key = OLD_KEY,
): Promise<OnlineDevice> {
  const plug = await startOnlineDevice({ broker, key, userId: OLD_USER_ID, ca: pki.caPem, model });
  plugs.push(plug);
  expect(plug.device.state).toMatchObject({ mode: "online", broker: { port: broker.port } });
  return plug;
}

function record(plug: OnlineDevice): HttpExchange[] {
  const requests: HttpExchange[] = [];
  plug.device.events.on("http-request", (exchange) => requests.push(exchange));
  return requests;
}

const lanArgs = (plug: OnlineDevice, ...extra: string[]) => [
  "setup",
  "--ip",
  `${plug.device.ip}:${plug.device.port}`,
  "--current-key",
  OLD_KEY,
  "--timeout",
  "30",
  ...extra,
];

describe.each<SimulatedModel>(["legacy", "encrypted"])(
  "re-pointing a %s plug already on the LAN",
  (model) => {
    const encrypted = model === "encrypted";

    it("moves it from another broker to ours: login registered, the Wi-Fi step restarts it, its new connection proves it", async () => {
      const plug = await plugOn(otherBroker, model);
      const requests = record(plug);
      const run = await runScript(
        "provision.mjs",
        lanArgs(plug, "--wifi-ssid", SSID, "--wifi-pass", WIFI_PASS),
        {
          env: stack.env,
          timeoutMs: 90_000,
        },
      );
      expect(run.stderr).not.toMatch(/error:/);
      expect(run.code).toBe(EXIT.ok);
      expect(run.stderr).toMatch(/restarts, rejoins "SimulatedHome" and dials the new broker/);
      expect(run.stderr).toMatch(
        /first message after [\d.]+ s: SET Appliance\.Control\.Bind \(a new connection\)/,
      );
      expect(run.stdout).toMatch(/Online: /);
      expect(plug.device.state).toMatchObject({
        mode: "online",
        key: KEY,
        userId: USER_ID,
        broker: { port: ours.broker.port },
      });
      const accounts = await listAccounts(ours.conn);
      expect(accounts.map((account) => account.username)).toContain(plug.device.macAddress);
      if (encrypted) {
        // On the LAN this firmware hangs up on plaintext (System.Ability aside): the kit used its LAN key.
        expect(requests).toContainEqual(
          expect.objectContaining({
            namespace: Namespace.SystemAll,
            encrypted: false,
            refused: expect.any(String),
          }),
        );
        expect(requests).toContainEqual(
          expect.objectContaining({ namespace: Namespace.ConfigKey, encrypted: true, replyMethod: "SETACK" }),
        );
        expect(requests.some((request) => request.namespace === Namespace.EncryptEcdhe)).toBe(false);
      }
    });

    it("with --no-wifi says it cannot restart it, and counts the device once the owner power-cycles it", async () => {
      const plug = await plugOn(otherBroker, model);
      const setup = spawnScript("provision.mjs", lanArgs(plug, "--no-wifi"), stack.env);
      await waitFor(
        "the hand-off",
        () => /unplug it and plug it back in now/.test(setup.stderr()),
        60_000,
        setup.stderr,
      );
      // Still on its old broker: only a new connection counts, so nothing is reported yet.
      expect(plug.device.state.broker?.port).toBe(otherBroker.port);
      expect(setup.child.exitCode).toBeNull();
      await plug.device.restart();
      const code = await new Promise((resolve) => setup.child.once("close", resolve));
      expect(setup.stderr()).not.toMatch(/error:/);
      expect(code).toBe(EXIT.ok);
      expect(plug.device.state).toMatchObject({
        mode: "online",
        key: KEY,
        broker: { port: ours.broker.port },
      });
    });
  },
);

describe("info on a plug already on the LAN", () => {
  it("reads LAN-encrypting firmware with its LAN key, Wi-Fi scan included, and changes nothing", async () => {
    const plug = await plugOn(otherBroker, "encrypted");
    const run = await runScript("provision.mjs", [
      "info",
      "--no-stack",
      "--ip",
      `${plug.device.ip}:${plug.device.port}`,
      "--current-key",
      OLD_KEY,
      "--user",
      OLD_USER_ID,
      "--wifi-list",
    ]);
    expect(run.stderr).not.toMatch(/error:/);
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toMatch(new RegExp(`Current MQTT broker\\s+127\\.0\\.0\\.1:${otherBroker.port}`));
    expect(run.stdout).toMatch(/HTTP encryption\s+yes/);
    expect(run.stdout).toMatch(/SimulatedHome {2}bssid 2c:6e:a4:55:c6:47/);
    expect(plug.device.state).toMatchObject({ key: OLD_KEY, broker: { port: otherBroker.port } });
  });
});

describe("the online wait counts only the device's new connection", () => {
  it("a plug already on this broker: replies from its old session never count, its reconnection does", async () => {
    const plug = await plugOn(otherBroker, "legacy");
    const newKey = "rekeyed-on-the-same-broker";
    const args = (currentKey: string, timeout: string) => [
      "setup",
      "--no-stack",
      "--ip",
      `${plug.device.ip}:${plug.device.port}`,
      "--mqtt",
      otherBroker.url,
      "--ca",
      pki.caFile,
      "--auth-mode",
      "anonymous",
      "--user",
      OLD_USER_ID,
      "--key",
      newKey,
      "--current-key",
      currentKey,
      "--no-wifi",
      "--timeout",
      timeout,
    ];
    const stale = await runScript("provision.mjs", args(OLD_KEY, "6"));
    // The plug took the key and answers on its old session, which must not pass for "online".
    expect(plug.device.state).toMatchObject({ key: newKey, mode: "online" });
    expect(stale.code).toBe(EXIT.timeout);
    expect(stale.stderr).toMatch(/did not open a new connection to the broker within 6 s/);
    expect(stale.stderr).toMatch(/still on the connection it had before/);

    const setup = spawnScript("provision.mjs", args(newKey, "30"));
    await waitFor("the hand-off", () => /unplug it/.test(setup.stderr()), 60_000, setup.stderr);
    await plug.device.restart();
    const code = await new Promise((resolve) => setup.child.once("close", resolve));
    expect(code).toBe(EXIT.ok);
    expect(setup.stderr()).toMatch(/SET Appliance\.Control\.Bind \(a new connection\)/);
  });
});
