import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { EXIT, exitCodeHelp, sharedExitCodeFor } from "../../lib/cli/exit-codes.ts";
import { readCaFile, single, UsageError, unknownFlagError, validateFlags } from "../../lib/cli/flags.ts";
import { WrongKeyError } from "../../lib/meross/envelope.ts";
import { Namespace } from "../../lib/meross/messages/index.ts";
import { StackUnavailableError } from "../../lib/stack/outputs.ts";

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

describe("sharedExitCodeFor", () => {
  it.each([
    [new UsageError("x"), EXIT.usage],
    [new WrongKeyError(Namespace.SystemAll), EXIT.wrongKey],
    [new StackUnavailableError("x"), EXIT.stackOrDatabase],
    [new Error("anything else"), undefined],
  ])("%s gives %s", (error, code) => {
    expect(sharedExitCodeFor(error)).toBe(code);
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
