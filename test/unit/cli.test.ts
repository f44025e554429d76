import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { EXIT, exitCodeFor, exitCodeHelp, SCRIPT_EXIT_CODES } from "../../lib/cli/exit-codes.ts";
import {
  parseOnlyFlags,
  parseScriptFlags,
  readCaFile,
  single,
  UsageError,
  unknownFlagError,
  validateFlags,
  wantsHelp,
} from "../../lib/cli/flags.ts";
import { ProtocolError, WrongKeyError } from "../../lib/meross/envelope.ts";
import { DeviceHttpError, DeviceUnreachableError } from "../../lib/meross/http-transport.ts";
import { Namespace } from "../../lib/meross/messages/index.ts";
import { DatabaseUnavailableError } from "../../lib/provision/database.ts";
import { DeviceOfflineError } from "../../lib/provision/online.ts";
import { DeviceMismatchError } from "../../lib/provision/setup.ts";
import { SetupStepError } from "../../lib/provision/steps.ts";
import { StackConfigError, UnknownDeviceError } from "../../lib/stack/devices.ts";
import { StackUnavailableError } from "../../lib/stack/outputs.ts";
import { PulumiCommandError } from "../../lib/stack/pulumi-cli.ts";
import { AccountError } from "../../lib/store/accounts.ts";

const dir = mkdtempSync(join(tmpdir(), "cli-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("exitCodeHelp", () => {
  it("lists the codes a script describes in numeric order, with 0 and 1 worded alike everywhere", () => {
    expect(exitCodeHelp({ notFound: "no such device", usage: "bad flags" })).toBe(
      [
        "Exit codes:",
        "  0  done",
        "  1  unexpected failure (a bug: please report it with the output)",
        "  2  bad flags",
        "  8  no such device",
      ].join("\n"),
    );
  });

  it("lets a script say what 0 means for it", () => {
    expect(exitCodeHelp({ ok: "stopped" })).toMatch(/^ {2}0 {2}stopped$/m);
  });
});

describe("exitCodeFor", () => {
  const mysqlSettings = { host: "127.0.0.1", port: 3306, user: "u", password: "p", database: "d" };
  const step = { id: "set-key", title: "Send key" };
  it.each([
    [new UsageError("x"), EXIT.usage],
    [new AccountError("x"), EXIT.usage],
    [new WrongKeyError(Namespace.SystemAll), EXIT.wrongKey],
    [new ProtocolError("x"), EXIT.deviceError],
    [new DeviceHttpError("http://x", 500, "Internal Server Error"), EXIT.deviceError],
    [new DeviceMismatchError("x"), EXIT.deviceError],
    [new DeviceUnreachableError("http://x", 3, new Error("EHOSTUNREACH")), EXIT.unreachable],
    [new StackUnavailableError("x"), EXIT.stackOrDatabase],
    [new StackConfigError("x"), EXIT.stackOrDatabase],
    [new PulumiCommandError("EPULUMI", "x"), EXIT.stackOrDatabase],
    [new DatabaseUnavailableError(mysqlSettings, new Error("x")), EXIT.stackOrDatabase],
    [Object.assign(new Error("Access denied"), { code: "ER_ACCESS_DENIED_ERROR" }), EXIT.stackOrDatabase],
    [new DeviceOfflineError("x"), EXIT.timeout],
    [new UnknownDeviceError("x"), EXIT.notFound],
    [new Error("anything else"), EXIT.unexpected],
  ])("%s gives %s", (error, code) => {
    expect(exitCodeFor(error)).toBe(code);
  });

  it("places a wrapped error (a failed setup step) by its cause", () => {
    expect(exitCodeFor(new SetupStepError(step, [], new WrongKeyError(Namespace.ConfigKey)))).toBe(
      EXIT.wrongKey,
    );
    expect(exitCodeFor(new SetupStepError(step, [], new Error("bug")))).toBe(EXIT.unexpected);
  });
});

describe("flags", () => {
  const schema = z.object({ name: single(z.string().min(2, "too short")) });

  it("names the flag in every message, and refuses a flag given twice", () => {
    expect(() => validateFlags(schema, { _: [], name: "x" })).toThrow("--name: too short");
    expect(() => validateFlags(schema, { _: [], name: ["ab", "cd"] })).toThrow("--name: give it once");
    expect(validateFlags(schema, { _: ["word"], help: false, name: "ab" })).toEqual({ name: "ab" });
  });

  it("reports only flags as unknown, not positional words", () => {
    expect(unknownFlagError(["word"])).toBeUndefined();
    expect(unknownFlagError(["word", "--x", "-y"])?.message).toBe("unknown flag --x, -y; see --help");
  });
});

describe("parseScriptFlags", () => {
  const spec = {
    string: ["timeout", "key", "mqtt", "stack"],
    boolean: ["json", "wait"],
    default: { wait: true },
  };
  const schema = z.object({
    timeout: single(z.coerce.number().positive("must be a number of seconds above 0")).optional(),
    key: single(z.string()).optional(),
    mqtt: z.union([z.string(), z.array(z.string())]).optional(),
    stack: single(z.union([z.string(), z.literal(false)])).optional(),
    json: z.boolean(),
    wait: z.boolean(),
  });
  const parse = (...args: string[]) => parseScriptFlags(args, spec, schema);
  const failure = (...args: string[]) => {
    try {
      parse(...args);
    } catch (error) {
      return error;
    }
    throw new Error(`${args.join(" ")} was accepted`);
  };

  it("keeps typed values as strings, positional words in order, and applies defaults", () => {
    expect(parse("kitchen", "--key", "0012", "on", "--json")).toEqual({
      flags: { key: "0012", json: true, wait: true },
      positional: ["kitchen", "on"],
    });
    expect(parse("--key=a=b", "--no-wait", "--no-stack").flags).toEqual({
      key: "a=b",
      json: false,
      wait: false,
      stack: false,
    });
    expect(parse("--mqtt", "a", "--mqtt", "b").flags.mqtt).toEqual(["a", "b"]);
    expect(parse("a", "--", "--json").positional).toEqual(["a", "--json"]);
  });

  it("says a bad value is a bad value, not an unknown flag (--timeout -1)", () => {
    const error = failure("--timeout", "-1");
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe("--timeout: must be a number of seconds above 0");
    expect(exitCodeFor(error)).toBe(EXIT.usage);
  });

  it("says an unknown flag is unknown, in one line, with the usage exit code", () => {
    const error = failure("--timout", "5", "-x");
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe("unknown flag --timout, -x; see --help");
    expect(exitCodeFor(error)).toBe(EXIT.usage);
  });

  it("refuses a string flag without its value and a boolean flag with one", () => {
    expect((failure("--key") as Error).message).toBe("--key needs a value; see --help");
    expect((failure("--key", "--json") as Error).message).toBe("--key needs a value; see --help");
    expect((failure("--json=yes") as Error).message).toBe("--json takes no value");
  });

  it("leaves --help to the script, which asks wantsHelp first", () => {
    expect(wantsHelp(["on", "--timeout", "x", "--help"])).toBe(true);
    expect(wantsHelp(["-h"])).toBe(true);
    expect(wantsHelp(["--", "--help"])).toBe(false);
    expect(parse("--help").flags).toEqual({ json: false, wait: true });
  });

  it("parseOnlyFlags refuses any word that is not a flag", () => {
    expect(() => parseOnlyFlags(["extra"], spec, schema)).toThrow('unexpected argument "extra"');
  });
});

describe("SCRIPT_EXIT_CODES", () => {
  it("lists for each script only codes of the one table, and devices.mjs none about devices or timeouts", () => {
    for (const meanings of Object.values(SCRIPT_EXIT_CODES)) {
      for (const name of Object.keys(meanings)) expect(Object.keys(EXIT)).toContain(name);
    }
    const devices = exitCodeHelp(SCRIPT_EXIT_CODES.devices);
    expect(devices).not.toMatch(/^ {2}[3457] /m);
    expect(devices).toMatch(/^ {2}8 {2}no device by that name/m);
    expect(exitCodeHelp(SCRIPT_EXIT_CODES.provision)).not.toMatch(/^ {2}8 /m);
  });
});

describe("readCaFile", () => {
  it("returns the PEM text", async () => {
    const path = join(dir, "ca.pem");
    writeFileSync(path, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    expect(await readCaFile(path)).toContain("BEGIN CERTIFICATE");
  });

  it("is a usage error naming the file when it is missing or not a certificate", async () => {
    const text = join(dir, "notes.txt");
    writeFileSync(text, "hello");
    await expect(readCaFile(join(dir, "missing.pem"))).rejects.toThrow(
      new UsageError(
        `--ca: cannot read ${join(dir, "missing.pem")}: ENOENT: no such file or directory, open '${join(dir, "missing.pem")}'`,
      ),
    );
    await expect(readCaFile(text)).rejects.toThrow(`--ca: ${text} is not a PEM certificate`);
  });
});
