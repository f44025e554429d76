import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { renderHelp } from "../../scripts/support/help.mjs";

const HELP_DIR = fileURLToPath(new URL("../../scripts/help/", import.meta.url));

describe("help texts beside the scripts", () => {
  it("fills each placeholder, and refuses to print one it has no value for", () => {
    expect(renderHelp("a {{x}} b {{y}}", { x: 1, y: "two" })).toBe("a 1 b two");
    expect(() => renderHelp("{{missing}}", {})).toThrow("help text needs a value for {{missing}}");
  });

  it("every script's help ends with its exit codes, generated from the one table", async () => {
    const names = (await readdir(HELP_DIR)).filter((name) => name.endsWith(".txt"));
    const scripts = names.filter((name) => name !== "provision-common.txt");
    expect(scripts.length).toBeGreaterThanOrEqual(7);
    for (const name of scripts) {
      const text = await readFile(`${HELP_DIR}${name}`, "utf8");
      expect(text, name).toMatch(/\{\{exitCodes\}\}\n$/);
      expect(text, name).not.toMatch(/^Exit codes:/m);
    }
  });
});
