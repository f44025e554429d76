import { describe, expect, it } from "vitest";
import { EXIT } from "../../lib/cli/exit-codes.ts";
import { runScript } from "../support/run-script.ts";

// Every script parses its flags with lib/cli's parseScriptFlags before it touches a device, the
// broker or the stack: an unknown flag and a bad value of a known flag are two different one-line
// errors, both exit 2. `--no-stack` keeps pulumi out of it.
const cases: [script: string, args: string[], badValue: string[], flag: string][] = [
  ["provision.mjs", ["setup", "--no-stack", "--no-wifi"], ["--timeout", "-1"], "--timeout"],
  ["provision.mjs", ["info", "--no-stack"], ["--ip", "not a host!"], "--ip"],
  ["devices.mjs", ["list", "--no-stack"], ["--mysql", "http://x"], "--mysql"],
  ["control.mjs", ["kitchen", "on", "--no-stack"], ["--timeout", "-1"], "--timeout"],
  ["monitor.mjs", ["--no-stack"], ["--count", "-1"], "--count"],
  ["simulate-device.mjs", [], ["--port", "-1"], "--port"],
];

describe.each(cases)("%s %j", (script, base, badValue, flag) => {
  it(`says ${flag} has a bad value (exit 2)`, async () => {
    const run = await runScript(script, [...base, ...badValue]);
    expect(run.code).toBe(EXIT.usage);
    const lines = run.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${flag}:`);
    expect(lines[0]).not.toMatch(/unknown flag/);
  });

  it("says an unknown flag is unknown (exit 2)", async () => {
    const run = await runScript(script, [...base, "--no-such-flag", "1"]);
    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr.trim()).toMatch(/^\S*:? ?.*unknown flag --no-such-flag; see --help$/);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("--help", () => {
  it("lists only the exit codes the script can return", async () => {
    const devices = await runScript("devices.mjs", ["--help"]);
    expect(devices.code).toBe(EXIT.ok);
    expect(devices.stdout).toMatch(/^ {2}8 {2}no device by that name, MAC or uuid$/m);
    expect(devices.stdout).not.toMatch(/^ {2}3 /m);
    expect(devices.stdout).not.toContain("(devices.mjs)");
    const simulator = await runScript("simulate-device.mjs", ["--help"]);
    expect(simulator.stdout).toMatch(/^Exit codes:\n {2}0 {2}stopped$/m);
  });
});
