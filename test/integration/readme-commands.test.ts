import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionAgent } from "../../lib/agent/agent.ts";
import { EXIT } from "../../lib/cli/exit-codes.ts";
import { type MysqlVariant, startMysqlVariant } from "../../lib/local-stack/mysql-variant.ts";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { controllerAccount, deviceAccount, serviceAccount } from "../../lib/store/accounts.ts";
import { documentedCommand, readRepoFile } from "../support/documented-commands.ts";
import { type FakePulumi, installFakePulumi, testStackOutputs } from "../support/fake-pulumi.ts";
import { type OnlineDevice, startOnlineDevice } from "../support/online-device.ts";
import { spawnCommandLine } from "../support/run-script.ts";
import { startTestAgent } from "../support/session-agent.ts";
import { waitFor } from "../support/wait.ts";

// README's switch-and-watch commands, copied from README and run as written (`npx zx …` in bash at the
// repository root) on the default mysql variant, with no flag or environment variable beyond what
// README's quick start sets: the scripts must find a controller login in the stack outputs. The
// Pulumi CLI cannot run here, so `pulumi` is test/support/fake-pulumi.ts serving these services.

const HOST = "127.0.0.1";
const KEY = "readme-commands-device-key-0123";
const USER_ID = "0";
const NAME = "kitchen";
const UUID = "3ed51feb116b8fd4cddd48e1e9f17823";
const HOME_ASSISTANT = controllerAccount("home-assistant", "home-assistant-password-for-tests");
const AGENT = serviceAccount("session-agent", "session-agent-password-for-tests");

let pki: LocalPki;
let services: MysqlVariant;
let agent: SessionAgent;
let fake: FakePulumi;
let plug: OnlineDevice | undefined;

beforeAll(async () => {
  pki = await makeLocalPki({ host: HOST });
  services = await startMysqlVariant(pki, [
    HOME_ASSISTANT,
    AGENT,
    deviceAccount({ name: NAME, mac: "48:e1:e9:f1:78:23", uuid: UUID }, KEY, USER_ID),
  ]);
  agent = await startTestAgent({
    broker: services.broker,
    pki,
    key: KEY,
    userId: USER_ID,
    account: AGENT,
    timezone: "Europe/Dublin",
  });
  fake = await installFakePulumi({
    outputs: testStackOutputs({
      broker: services.broker,
      pki,
      userId: USER_ID,
      deviceKey: KEY,
      mysql: services.db,
      controllers: [HOME_ASSISTANT],
    }),
    config: { devices: [{ name: NAME, mac: "48:e1:e9:f1:78:23", uuid: UUID }] },
  });
});

afterAll(async () => {
  await plug?.device.stop();
  await agent?.stop();
  await services?.stop();
  await fake?.cleanup();
  await pki?.cleanup();
});

/** What a monitor line says, without its time: direction, method and namespace. */
const MONITOR_LINE = /^\d\d:\d\d:\d\d\.\d{3}\s+\S+\s+(->|<-)\s+([A-Z]+)\s+(Appliance\.\S+)/;

describe("README's switch-and-watch commands on the mysql variant", () => {
  it("monitor and control log in as the stack's controller and switch the plug", async () => {
    const readme = await readRepoFile("README.md");
    const monitorLine = documentedCommand(readme, "npx zx scripts/monitor.mjs");
    const controlLine = documentedCommand(readme, "npx zx scripts/control.mjs");
    expect(controlLine).toBe(`npx zx scripts/control.mjs ${NAME} on`);

    const monitor = spawnCommandLine(monitorLine, fake.env);
    try {
      await waitFor(
        "the monitor to subscribe",
        () => monitor.stderr().includes("watching"),
        20_000,
        monitor.stderr,
      );
      expect(monitor.stderr()).toContain(
        `on ${services.broker.url} as ${HOME_ASSISTANT.username} (Ctrl-C to stop)`,
      );

      // The plug boots while the monitor watches: its session messages, then the switch.
      plug = await startOnlineDevice({
        broker: services.broker,
        key: KEY,
        userId: USER_ID,
        ca: pki.caPem,
        uuid: UUID,
        requireSessionAnswers: true,
      });
      const control = spawnCommandLine(controlLine, fake.env);
      expect(await control.exited, control.stderr()).toBe(EXIT.ok);
      expect(control.stdout()).toMatch(/^kitchen channel 0 is now on \(\d+ ms\)$/m);
      expect(plug.device.state.toggles[0]?.on).toBe(true);

      await waitFor(
        "the state PUSH in the monitor",
        () => /kitchen\s+-> PUSH\s+Appliance\.Control\.ToggleX {2}ch0 on$/m.test(monitor.stdout()),
        15_000,
        monitor.stdout,
      );
      expect(monitor.stdout()).toMatch(/kitchen\s+-> SETACK\s+Appliance\.Control\.ToggleX {2}ok$/m);
      // What a controller login can see: the devices' messages and their replies, never commands to them.
      const seen = monitor
        .stdout()
        .split("\n")
        .filter((line) => MONITOR_LINE.test(line));
      expect(seen.filter((line) => line.match(MONITOR_LINE)?.[1] === "<-")).toEqual([]);
      console.info(`readme-commands: monitor sample\n${monitor.stdout()}`);

      // Every sample line the docs show is one this login really printed (direction, method, namespace).
      const kinds = new Set(seen.map((line) => line.match(MONITOR_LINE)?.slice(1).join(" ")));
      const sample = (await readRepoFile("docs/control-and-monitor.md"))
        .split("\n")
        .filter((line) => MONITOR_LINE.test(line))
        .map((line) => line.match(MONITOR_LINE)?.slice(1).join(" "));
      expect(sample.length).toBeGreaterThan(0);
      expect(sample.filter((kind) => !kinds.has(kind))).toEqual([]);
    } finally {
      await monitor.interrupt();
    }
  });
});
