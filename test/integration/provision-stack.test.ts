import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listStackDevices, recordStackDevice, removeStackDevice } from "../../lib/stack/devices.ts";
import { readStackOutputs, StackUnavailableError } from "../../lib/stack/outputs.ts";
import { createPulumiRunner } from "../../lib/stack/pulumi-cli.ts";
import { type FakePulumi, installFakePulumi } from "../support/fake-pulumi.ts";

// The Pulumi CLI cannot run on this machine: these tests drive lib/stack through a fake `pulumi`
// executable placed first on PATH (test/support/fake-pulumi.ts), exactly as the scripts run it.

const OUTPUTS = {
  brokerUrls: ["mqtts://192.168.1.10:8883"],
  caCertificatePem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
  userId: "1234",
  deviceKey: "0123456789abcdef0123456789abcdef",
  mysql: { host: "127.0.0.1", port: 3306, user: "provision", password: "s3cret", database: "meross" },
};

const PLUG = { name: "desk-lamp", mac: "48:e1:e9:b6:2c:49", uuid: "2307065833780651200148e1e9cf4534" };

let fake: FakePulumi;
let projectDir: string;

beforeEach(async () => {
  projectDir = await mkdtemp(join(tmpdir(), "stack-project-"));
});

afterEach(async () => {
  await fake?.cleanup();
  await rm(projectDir, { recursive: true, force: true });
});

function runner(stack?: string) {
  return createPulumiRunner({ projectDir, env: fake.env, ...(stack ? { stack } : {}) });
}

describe("reading the stack outputs", () => {
  it("returns the agreed outputs, secrets included, and infers the mysql variant", async () => {
    fake = await installFakePulumi({ outputs: OUTPUTS });
    const outputs = await readStackOutputs(runner("dev"));
    expect(outputs).toMatchObject({
      brokerUrls: OUTPUTS.brokerUrls,
      userId: "1234",
      deviceKey: OUTPUTS.deviceKey,
      authMode: "mysql",
      mysql: OUTPUTS.mysql,
    });
    const [call] = await fake.calls();
    expect(call?.args).toEqual([
      "stack",
      "output",
      "--json",
      "--show-secrets",
      "--stack",
      "dev",
      "--non-interactive",
    ]);
    expect(call?.cwd).toBe(projectDir);
  });

  it("passes on the key's origin, and has none for a stack from before that output", async () => {
    fake = await installFakePulumi({ outputs: { ...OUTPUTS, deviceKeyOrigin: "generated" } });
    expect((await readStackOutputs(runner())).deviceKeyOrigin).toBe("generated");
    await fake.cleanup();
    fake = await installFakePulumi({ outputs: OUTPUTS });
    expect((await readStackOutputs(runner())).deviceKeyOrigin).toBeUndefined();
    await fake.cleanup();
    fake = await installFakePulumi({ outputs: { ...OUTPUTS, deviceKeyOrigin: "typed" } });
    await expect(readStackOutputs(runner())).rejects.toThrow(/output deviceKeyOrigin/);
  });

  it("is the anonymous variant when the stack exports no MySQL settings", async () => {
    const { mysql: _mysql, ...anonymous } = OUTPUTS;
    fake = await installFakePulumi({ outputs: { ...anonymous, userId: 0 } });
    const outputs = await readStackOutputs(runner());
    expect(outputs.authMode).toBe("anonymous");
    expect(outputs.userId).toBe("0");
    expect(outputs.mysql).toBeUndefined();
  });

  it("explains what to do when no stack is selected, without printing any output value", async () => {
    fake = await installFakePulumi({ outputs: null });
    const failure = readStackOutputs(runner());
    await expect(failure).rejects.toBeInstanceOf(StackUnavailableError);
    await expect(failure).rejects.toThrow(/no stack selected.*pulumi up.*--no-stack/s);
  });

  it("says the stack has not been deployed when it has no outputs", async () => {
    fake = await installFakePulumi({ outputs: {} });
    await expect(readStackOutputs(runner())).rejects.toThrow(/no outputs yet/);
  });

  it("names the bad output and never echoes the secret", async () => {
    fake = await installFakePulumi({ outputs: { ...OUTPUTS, deviceKey: "has space s3cretvalue" } });
    const failure = readStackOutputs(runner());
    await expect(failure).rejects.toThrow(/output deviceKey/);
    await expect(failure).rejects.not.toThrow(/s3cretvalue/);
  });

  it("says to install Pulumi when the CLI is missing", async () => {
    fake = await installFakePulumi({ outputs: OUTPUTS });
    const noPulumi = createPulumiRunner({ projectDir, env: { ...process.env, PATH: projectDir } });
    await expect(readStackOutputs(noPulumi)).rejects.toThrow(/Pulumi CLI .* not installed/);
  });
});

describe("recording devices in the stack config", () => {
  it("adds a device as strings, and a second run changes nothing", async () => {
    fake = await installFakePulumi({ outputs: OUTPUTS });
    const digitsOnly = { name: "42", mac: "34:29:8f:ff:ff:ff", uuid: "11111111111111111111111111111111" };
    expect(await recordStackDevice(runner(), PLUG)).toBe("added");
    expect(await recordStackDevice(runner(), digitsOnly)).toBe("added");
    expect((await fake.config())["meross-broker:devices"]).toEqual([PLUG, digitsOnly]);

    const callsBefore = (await fake.calls()).length;
    expect(await recordStackDevice(runner(), PLUG)).toBe("unchanged");
    const newCalls = (await fake.calls()).slice(callsBefore);
    expect(newCalls.map((call) => call.args.slice(0, 2))).toEqual([["config", "--json"]]);
  });

  it("updates the entry with the same MAC instead of adding a second one", async () => {
    fake = await installFakePulumi({
      config: { devices: [{ ...PLUG, mac: "48-E1-E9-B6-2C-49", name: "old" }] },
    });
    expect(await recordStackDevice(runner(), PLUG)).toBe("updated");
    expect(await listStackDevices(runner())).toEqual([PLUG]);
  });

  it("finishes an entry an interrupted run left with only its name", async () => {
    fake = await installFakePulumi({ config: { devices: [{ name: PLUG.name }] } });
    expect(await recordStackDevice(runner(), PLUG)).toBe("updated");
    expect(await listStackDevices(runner())).toEqual([PLUG]);
  });

  it("refuses a name another device already has, and changes nothing", async () => {
    const other = { name: PLUG.name, mac: "34:29:8f:ff:ff:ff", uuid: "11111111111111111111111111111111" };
    fake = await installFakePulumi({ config: { devices: [other] } });
    await expect(recordStackDevice(runner(), PLUG)).rejects.toThrow(
      /already has a device named "desk-lamp".*--name/,
    );
    expect(await listStackDevices(runner())).toEqual([other]);
  });

  it("removes a device by name, MAC or uuid and keeps the others", async () => {
    const second = { name: "fan", mac: "34:29:8f:ff:ff:ff", uuid: "11111111111111111111111111111111" };
    const third = { name: "tv", mac: "34:29:8f:00:00:01", uuid: "22222222222222222222222222222222" };
    fake = await installFakePulumi({ config: { devices: [PLUG, second, third], userId: "1234" } });
    expect(await removeStackDevice(runner(), "34298FFFFFFF")).toEqual([second]);
    expect(await removeStackDevice(runner(), PLUG.uuid.toUpperCase())).toEqual([PLUG]);
    expect(await removeStackDevice(runner(), "tv")).toEqual([third]);
    expect(await removeStackDevice(runner(), "tv")).toEqual([]);
    const config = await fake.config();
    expect(config["meross-broker:devices"]).toEqual([]);
    expect(config["meross-broker:userId"]).toBe("1234");
  });

  it("reports a devices value that is not a list, naming the key", async () => {
    fake = await installFakePulumi({ config: { devices: { name: "x" } } });
    await expect(listStackDevices(runner())).rejects.toThrow(/`devices` must be a list/);
  });
});
