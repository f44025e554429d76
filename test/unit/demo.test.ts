import { describe, expect, it } from "vitest";
import { EXIT, exitCodeFor } from "../../lib/cli/exit-codes.ts";
import { runDemo } from "../../lib/demo/demo.ts";
import {
  GO_AUTH_PLUGIN_PATH,
  missingRequirements,
  type RequirementProbe,
} from "../../lib/local-stack/requirements.ts";

/** A machine with exactly these binaries, commands on PATH and files. */
function machine(has: string[]): RequirementProbe {
  return {
    systemBinary: (name) => has.includes(name),
    onPath: (command) => has.includes(command),
    file: (path) => has.includes(path),
  };
}
const sudo = process.getuid?.() === 0 ? "" : "sudo ";
const EVERYTHING = ["openssl", "mosquitto", "mariadbd", "mariadb-install-db", "go", GO_AUTH_PLUGIN_PATH];

describe("what the local stack runs on", () => {
  it("names each missing piece with the command that installs it, one line each", () => {
    expect(missingRequirements("mysql", machine([]))).toEqual([
      `openssl is not installed (it makes the certificates): ${sudo}apt-get install -y openssl`,
      `Mosquitto is not installed: ${sudo}apt-get install -y mosquitto`,
      `MariaDB is not installed (mariadbd, mariadb-install-db): ${sudo}apt-get install -y mariadb-server`,
      "the broker's auth plugin is not built and Go (1.24 or newer) is not installed to build it: " +
        `install Go (https://go.dev/doc/install), then ${sudo}bash scripts/ci/install-test-deps.sh`,
    ]);
    expect(missingRequirements("mysql", machine(EVERYTHING))).toEqual([]);
  });

  it("asks only for the plugin build when Go is there, and nothing of it for the anonymous variant", () => {
    const noPlugin = machine(EVERYTHING.filter((item) => item !== GO_AUTH_PLUGIN_PATH));
    expect(missingRequirements("mysql", noPlugin)).toEqual([
      `the broker's auth plugin is not built (${GO_AUTH_PLUGIN_PATH}): ${sudo}bash scripts/ci/install-test-deps.sh`,
    ]);
    expect(missingRequirements("anonymous", noPlugin)).toEqual([]);
  });
});

describe("npm run demo on a machine that lacks something", () => {
  it("starts nothing, lists what is missing, and offers the anonymous variant when that can run", async () => {
    const printed: string[] = [];
    const run = runDemo({
      variant: "mysql",
      print: (line) => printed.push(line),
      signal: new AbortController().signal,
      probe: machine(["openssl", "mosquitto", "go"]),
    });
    await expect(run).rejects.toThrow(
      [
        "the demo needs what is missing below; nothing was started",
        `  - MariaDB is not installed (mariadbd, mariadb-install-db): ${sudo}apt-get install -y mariadb-server`,
        `  - the broker's auth plugin is not built (${GO_AUTH_PLUGIN_PATH}): ${sudo}bash scripts/ci/install-test-deps.sh`,
        "  (the anonymous variant needs only Mosquitto and openssl: npm run demo -- --anonymous)",
      ].join("\n"),
    );
    expect(await run.catch(exitCodeFor)).toBe(EXIT.stackOrDatabase);
    expect(printed).toEqual([]);
  });
});
