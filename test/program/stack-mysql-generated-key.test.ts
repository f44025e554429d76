import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { deviceMqttCredentials } from "../../lib/meross/credentials.ts";
import { passwordHashIterations } from "../../lib/store/accounts.ts";
import { type ProgramRun, resolve, runProgram } from "./harness.ts";

/** The mysql variant with no deviceKey in the config: the stack generates it, so device rows may hash fast. */

const config = {
  brokerHost: "192.168.1.10",
  userId: "1234",
  devices: [{ name: "kitchen", mac: "48:e1:e9:00:00:01", uuid: "1".repeat(32) }],
  controllers: [{ name: "ha" }],
};

let pki: LocalPki;
let run: ProgramRun;

beforeAll(async () => {
  pki = await makeLocalPki({ host: "192.168.1.10", extraNames: ["mosquitto"] });
  run = await runProgram(config, { caPem: pki.caPem, certPem: await readFile(pki.certFile, "utf8") });
  if (run.error) throw run.error;
});

afterAll(async () => {
  await pki?.cleanup();
});

describe("mysql variant with a generated device key", () => {
  it("marks every account's secret as generated, so every row gets the fast hash", async () => {
    const rows = run.ofType("pulumi-nodejs:dynamic/meross:AccountRows")[0];
    const accounts = rows?.inputs.accounts as { kind: string; secretOrigin: "generated" | "chosen" }[];
    expect(accounts.map((account) => [account.kind, account.secretOrigin])).toEqual([
      ["device", "generated"],
      ["controller", "generated"],
      ["service", "generated"],
    ]);
    const key = await resolve(run.exports.deviceKey);
    expect(accounts[0]).toMatchObject(deviceMqttCredentials("48:e1:e9:00:00:01", key as string, "1234"));
    expect(new Set(accounts.map(passwordHashIterations)).size).toBe(1);
  });

  it("exports the key's origin for the provisioning script", async () => {
    expect(await resolve(run.exports.deviceKeyOrigin)).toBe("generated");
  });
});
