import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../lib/cli/exit-codes.ts";
import { type MysqlVariant, startMysqlVariant } from "../../lib/local-stack/mysql-variant.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { controllerAccount, serviceAccount } from "../../lib/store/accounts.ts";
import { type FakePulumi, installFakePulumi, testStackOutputs } from "../support/fake-pulumi.ts";
import { runScript, spawnScript } from "../support/run-script.ts";

// A refused login reads the same on the wire whether the password is wrong or the broker's database
// is down (the auth plugin then refuses everyone). control.mjs and monitor.mjs, run on the default
// journey (the stack's outputs through the fake pulumi), must name the real cause in one line.

const UUID = "0102030405060708090a48e1e9c0ffee";
const CONTROLLER = controllerAccount("homeassistant", "homeassistant-password-for-tests");
const AGENT = serviceAccount("session-agent", "session-agent-password-for-tests");
/** Longer than the auth cache lib/local-stack gives Mosquitto by default (1 s). */
const CACHE_EXPIRY_MS = 1_500;

let pki: LocalPki;
let services: MysqlVariant;
let fake: FakePulumi;

beforeAll(async () => {
  pki = await makeLocalPki({ host: "127.0.0.1" });
  services = await startMysqlVariant(pki, [CONTROLLER, AGENT]);
  fake = await installFakePulumi({
    outputs: testStackOutputs({
      broker: services.broker,
      pki,
      userId: "0",
      deviceKey: "login-refusal-device-key-0123",
      mysql: services.db,
      controllers: [CONTROLLER],
    }),
  });
});

afterAll(async () => {
  await services?.stop();
  await fake?.cleanup();
  await pki?.cleanup();
});

const control = (env: NodeJS.ProcessEnv = {}, ...flags: string[]) =>
  runScript("control.mjs", [UUID, "on", "--timeout", "2", ...flags], { env: { ...fake.env, ...env } });

/** Its error, checked to be one line. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  return lines[0] as string;
}

describe("a refused login names its cause", () => {
  it("a wrong password: not the password in the broker's database (exit 3, password not shown)", async () => {
    const run = await control({ MEROSS_MQTT_PASSWORD: "not-the-password-of-homeassistant" });
    expect(run.code).toBe(EXIT.unreachable);
    expect(oneLine(run.stderr)).toBe(
      `control: the broker at ${services.broker.url} refused the login of homeassistant: that is not homeassistant's ` +
        "password in the broker's database (check --password or MEROSS_MQTT_PASSWORD; if it came from the stack, run `pulumi up`)",
    );
    expect(run.stderr).not.toContain("not-the-password-of-homeassistant");
  });

  it("a login the database does not have", async () => {
    const run = await control({ MEROSS_MQTT_PASSWORD: "whatever-password" }, "--username", "nodered");
    expect(run.code).toBe(EXIT.unreachable);
    expect(oneLine(run.stderr)).toMatch(
      /refused the login of nodered: the broker's database has no login named nodered: add it to controllers/,
    );
  });

  it("MariaDB down: the database does not answer, not 'wrong credentials' (control and monitor)", async () => {
    await services.db.halt();
    await sleep(CACHE_EXPIRY_MS);
    const run = await control();
    expect(run.code).toBe(EXIT.unreachable);
    const line = oneLine(run.stderr);
    // go-auth 3.5.0 (and the stand-in) hang up when their database errors; an older one refused.
    expect(line).toMatch(
      new RegExp(
        `(refused|hung up instead of answering) the login of homeassistant: the broker's database at 127\\.0\\.0\\.1:${services.db.port} does not answer \\(ECONNREFUSED\\)`,
      ),
    );
    expect(line).toContain("with it down the broker turns every login away");
    expect(line).not.toMatch(/password/);

    const monitor = spawnScript("monitor.mjs", [], { ...fake.env });
    const code = await new Promise<number | null>((resolve) => monitor.child.once("close", resolve));
    expect(code).toBe(EXIT.unreachable);
    expect(oneLine(monitor.stderr())).toMatch(
      /^monitor: .* the broker's database at 127\.0\.0\.1:\d+ does not answer/,
    );
  });
});
