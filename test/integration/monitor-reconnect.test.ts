import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MosquittoInstance, startMosquitto } from "../../lib/local-stack/mosquitto.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { devicePublishTopic } from "../../lib/meross/topics.ts";
import { type OnlineDevice, startOnlineDevice } from "../support/online-device.ts";
import { spawnScript } from "../support/run-script.ts";
import { waitFor } from "../support/wait.ts";

const HOST = "127.0.0.1";
const KEY = "monitor-reconnect-device-key";
const USER_ID = "778";

let pki: LocalPki;
let broker: MosquittoInstance;
let plug: OnlineDevice;
let caFile: string;

beforeAll(async () => {
  pki = await makeLocalPki({ host: HOST });
  broker = await startMosquitto({ variant: "anonymous", pki });
  plug = await startOnlineDevice({ broker, key: KEY, userId: USER_ID, ca: pki.caPem });
  caFile = join(pki.dir, "ca-for-monitor.pem");
  await writeFile(caFile, pki.caPem);
});

afterAll(async () => {
  await plug?.device.stop();
  await broker?.stop();
  await pki?.cleanup();
});

describe("monitor.mjs across a broker restart", () => {
  it("reconnects by itself, says so on stderr, and shows the device's messages again", async () => {
    const monitor = spawnScript("monitor.mjs", [
      "--no-stack",
      "--broker",
      broker.url,
      "--ca",
      caFile,
      "--raw",
    ]);
    const fromDevice = () =>
      monitor
        .stdout()
        .split("\n")
        .filter((line) => line.includes(devicePublishTopic(plug.device.uuid)));
    try {
      await waitFor(
        "the monitor to subscribe",
        () => monitor.stderr().includes("watching"),
        15_000,
        monitor.stderr,
      );
      await waitFor(
        "a device message before the restart",
        () => fromDevice().length > 0,
        15_000,
        monitor.stdout,
      );

      await broker.restart();
      const seenBefore = fromDevice().length;
      await waitFor(
        "the monitor to notice",
        () => /lost the broker/.test(monitor.stderr()),
        15_000,
        monitor.stderr,
      );
      await waitFor(
        "the monitor to reconnect",
        () => /connected to the broker again/.test(monitor.stderr()),
        30_000,
        monitor.stderr,
      );
      await waitFor(
        "a device message after the restart",
        () => fromDevice().length > seenBefore,
        30_000,
        () => [monitor.stderr(), monitor.stdout(), broker.output()].join("\n"),
      );
      expect(monitor.child.exitCode).toBeNull();
    } finally {
      monitor.child.kill("SIGINT");
    }
  });
});
