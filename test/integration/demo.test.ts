import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { documentedCommand, readRepoFile } from "../support/documented-commands.ts";
import { spawnCommandLine, spawnScript } from "../support/run-script.ts";
import { waitFor } from "../support/wait.ts";

// `npm run demo` as README's quick start offers it: real Mosquitto, MariaDB and auth plugin as local
// processes, the session agent, a simulated plug, and the kit's scripts as children. Whatever way it
// ends, nothing it started may be left: no process, no folder.

const DEMO_MS = 150_000;

/** The private folders the demo printed (certificates, Mosquitto's and MariaDB's run directories). */
function foldersIn(output: string): string[] {
  return [...new Set(output.match(/\/tmp\/meross-[a-z]+-[A-Za-z0-9]+/g) ?? [])];
}

function expectNothingLeft(output: string): void {
  const folders = foldersIn(output);
  expect(folders.length).toBeGreaterThan(0);
  expect(folders.filter((folder) => existsSync(folder))).toEqual([]);
  const processes = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
  expect(folders.filter((folder) => processes.includes(folder))).toEqual([]);
}

describe("npm run demo", () => {
  it(
    "takes a simulated plug from pairing mode to switched on the mysql variant, then cleans up",
    async () => {
      const command = documentedCommand(await readRepoFile("README.md"), "npm run demo");
      expect(command).toBe("npm run demo");
      const demo = spawnCommandLine(command);
      const code = await demo.exited;
      const output = demo.stdout();
      expect(code, `${output}\n${demo.stderr()}`).toBe(0);
      for (const step of [
        /^✓ Make a private CA and an RSA server certificate/m,
        /^✓ Start MariaDB with the schema .* database in \/tmp\/meross-mariadb-/m,
        /^✓ Start the session agent/m,
        /^✓ Start a simulated plug in pairing mode/m,
        /^ {2}provision │ Online: demo-plug connected to mqtts:\/\/127\.0\.0\.1:\d+/m,
        /^ {2}control │ [0-9a-f]{32} channel 0 is now on \(\d+ ms\)$/m,
        /^ {2}monitor │ .* -> PUSH {4}Appliance\.Control\.ToggleX {2}ch0 on$/m,
        /^ {2}control │ [0-9a-f]{32} channel 0 is now off/m,
        /^Done in \d+\.\d s/m,
        /^ {2}stopped Mosquitto and MariaDB \(their folders removed\)$/m,
      ]) {
        expect(output).toMatch(step);
      }
      // A controller login sees the devices' messages, not commands to them.
      expect(output).not.toMatch(/monitor │ .* <- SET/);
      // Secrets are shown as •••• in the commands it prints.
      expect(output).toMatch(/--key •••• --auth-mode mysql --mysql ••••/);
      expectNothingLeft(output);
    },
    DEMO_MS,
  );

  it(
    "--anonymous runs without the database, and the monitor sees the commands too",
    async () => {
      const demo = spawnCommandLine("npm run demo -- --anonymous");
      const code = await demo.exited;
      const output = demo.stdout();
      expect(code, `${output}\n${demo.stderr()}`).toBe(0);
      expect(output).toMatch(/^✓ Start Mosquitto \(anonymous: no logins\)/m);
      expect(output).not.toMatch(/MariaDB/);
      expect(output).toMatch(/monitor │ .* <- SET {5}Appliance\.Control\.ToggleX {2}ch0 on$/m);
      expectNothingLeft(output);
    },
    DEMO_MS,
  );

  it(
    "Ctrl-C in the middle stops at once and still removes everything it started",
    async () => {
      const demo = spawnCommandLine("npm run demo");
      await waitFor(
        "the demo to start monitor.mjs",
        () => demo.stdout().includes("▸ Start monitor.mjs") || demo.child.exitCode !== null,
        DEMO_MS / 2,
        () => `${demo.stdout()}\n${demo.stderr()}`,
      );
      expect(demo.child.exitCode, `ended before Ctrl-C:\n${demo.stdout()}\n${demo.stderr()}`).toBeNull();
      const code = await demo.interrupt();
      const output = demo.stdout();
      // The demo exits 130; npm, interrupted too, waits for it and then ends by the same signal.
      expect({ code, signal: demo.child.signalCode }, output).toEqual({ code: null, signal: "SIGINT" });
      expect(output).toContain("Stopping (Ctrl-C)…");
      expect(output).toMatch(/^ {2}stopped Mosquitto and MariaDB \(their folders removed\)$/m);
      expect(output).not.toContain("Done in");
      expectNothingLeft(output);
    },
    DEMO_MS,
  );

  it(
    "SIGTERM to the demo alone (a supervisor stopping it) stops the scripts it runs and cleans up",
    async () => {
      // zx runs the script in its own process: this pid is the demo's, and nothing else gets the signal.
      const demo = spawnScript("demo.mjs", []);
      await waitFor(
        "the demo to start provisioning",
        () => demo.stdout().includes("▸ Provision the plug") || demo.child.exitCode !== null,
        DEMO_MS / 2,
        () => `${demo.stdout()}\n${demo.stderr()}`,
      );
      expect(demo.child.exitCode, `ended before SIGTERM:\n${demo.stdout()}\n${demo.stderr()}`).toBeNull();
      const started = Date.now();
      demo.child.kill("SIGTERM");
      const code = await new Promise<number | null>((resolve) => demo.child.once("close", resolve));
      const output = demo.stdout();
      expect(code, output).toBe(130);
      expect(output).not.toContain("Done in");
      expect(output).toMatch(/^ {2}stopped Mosquitto and MariaDB \(their folders removed\)$/m);
      // provision.mjs was interrupted, not waited for (it would wait up to its 60 s --timeout).
      expect(Date.now() - started).toBeLessThan(30_000);
      expectNothingLeft(output);
    },
    DEMO_MS,
  );
});
