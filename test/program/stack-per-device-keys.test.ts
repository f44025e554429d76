import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { deviceMqttCredentials } from "../../lib/meross/credentials.ts";
import { derivePerDeviceKey } from "../../lib/meross/device-key.ts";
import { readStackOutputs } from "../../lib/stack/outputs.ts";
import { isSecretExport, type ProgramRun, resolve, runProgram } from "./harness.ts";

/**
 * A stack midway through moving to per-device keys: keyMode left at its default, one device still on
 * the shared key (an entry from before per-device keys), one on its own key at generation 2, and one
 * still on a key from the stack secret before a rotation.
 */

const SHARED = "0".repeat(16);
const PREVIOUS = "the-secret-before-the-last-rotation-0123";
const config = {
  brokerHost: "192.168.1.10",
  userId: "1234",
  devices: [
    { name: "kitchen", mac: "48:e1:e9:00:00:01", uuid: "1".repeat(32) },
    {
      name: "desk",
      mac: "48:e1:e9:00:00:02",
      uuid: "2".repeat(32),
      keyScheme: "per-device",
      keyGeneration: "2",
    },
    {
      name: "hall",
      mac: "48:e1:e9:00:00:03",
      uuid: "3".repeat(32),
      keyScheme: "per-device",
      keySecret: "previous",
    },
  ],
  controllers: [{ name: "ha" }],
};

let pki: LocalPki;
let run: ProgramRun;

beforeAll(async () => {
  pki = await makeLocalPki({ host: "192.168.1.10", extraNames: ["mosquitto"] });
  run = await runProgram(
    { ...config, deviceKey: SHARED, deviceKeyOrigin: "generated", previousDeviceKeySecret: PREVIOUS },
    { caPem: pki.caPem, certPem: await readFile(pki.certFile, "utf8") },
  );
  if (run.error) throw run.error;
});

afterAll(async () => {
  await pki?.cleanup();
});

/** The harness's stand-in value for the generated RandomPassword "device-key-secret". */
const SECRET = "device-key-secret-0123456789abcdef";

describe("per-device keys in the program", () => {
  it("generates the stack secret and exports it as a secret, with the key mode (per-device by default)", async () => {
    expect(await resolve(run.exports.deviceKeySecret)).toBe(SECRET);
    expect(await isSecretExport(run.exports.deviceKeySecret)).toBe(true);
    expect(await isSecretExport(run.exports.previousDeviceKeySecret)).toBe(true);
    expect(await resolve(run.exports.keyMode)).toBe("per-device");
    expect(await resolve(run.exports.deviceKeySecretOrigin)).toBe("generated");
  });

  it("gives each device the row of the key its entry says it holds", () => {
    const rows = run.ofType("pulumi-nodejs:dynamic/meross:AccountRows")[0];
    const accounts = rows?.inputs.accounts as { kind: string; password: string; secretOrigin: string }[];
    const devices = accounts.filter((account) => account.kind === "device");
    expect(devices[0]).toMatchObject(deviceMqttCredentials("48:e1:e9:00:00:01", SHARED, "1234"));
    const own = derivePerDeviceKey(SECRET, "2".repeat(32), 2);
    expect(devices[1]).toMatchObject({
      ...deviceMqttCredentials("48:e1:e9:00:00:02", own, "1234"),
      secretOrigin: "generated",
    });
    expect(devices[2]).toMatchObject(
      deviceMqttCredentials("48:e1:e9:00:00:03", derivePerDeviceKey(PREVIOUS, "3".repeat(32), 1), "1234"),
    );
    expect(rows?.secretInputs).toContain("accounts");
  });

  it("hands the agent the secret and the generations above 1, inside its secret settings file", () => {
    const container = run.named("agent-container");
    expect(container.secretInputs).toContain("uploads");
    const uploads = container.inputs.uploads as { file: string; content: string }[];
    const settings = JSON.parse(
      uploads.find((upload) => upload.file.endsWith("settings.json"))?.content ?? "{}",
    );
    expect(settings).toMatchObject({
      key: SHARED,
      keySecret: SECRET,
      previousKeySecret: PREVIOUS,
      keyGenerations: { ["2".repeat(32)]: 2 },
    });
  });

  it("never puts the secret in a resource input that is not secret", () => {
    for (const resource of run.resources) {
      for (const [name, value] of Object.entries(resource.inputs)) {
        if (resource.secretInputs.includes(name)) continue;
        const text = JSON.stringify(value) ?? "";
        expect(text, `${resource.name}.${name}`).not.toContain(SECRET);
        expect(text, `${resource.name}.${name}`).not.toContain(PREVIOUS);
      }
    }
  });

  it("gives the scripts the mode and the secret through the stack outputs", async () => {
    const printed = Object.fromEntries(
      await Promise.all(
        Object.entries(run.exports).map(async ([name, value]) => [name, await resolve(value)]),
      ),
    );
    const outputs = await readStackOutputs({ run: async () => JSON.stringify(printed) });
    expect(outputs).toMatchObject({
      keyMode: "per-device",
      deviceKeySecret: SECRET,
      deviceKeySecretOrigin: "generated",
    });
  });
});
