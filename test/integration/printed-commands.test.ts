import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../lib/cli/exit-codes.ts";
import {
  readRepoFile,
  SCRIPT_COMMAND,
  scriptCommands,
  shellBlockCommands,
  shellWords,
} from "../support/documented-commands.ts";
import { runScript } from "../support/run-script.ts";

// Every command the kit prints must run as printed from a fresh clone: zx is a local dependency, so
// only `npx zx scripts/…` works, and each command must name a script that exists, a subcommand it
// has, and flags its --help documents. The commands come from README, docs/*.md, every script's
// --help (and its subcommands'), and the messages and outputs in the kit's own source.

const REPO = fileURLToPath(new URL("../..", import.meta.url));

interface ScriptHelp {
  general: string;
  /** Subcommand → its own --help text (the general one when it has none). */
  subcommands: Map<string, string>;
}

let helps: Map<string, ScriptHelp>;

async function helpOf(script: string, args: string[]): Promise<string> {
  const run = await runScript(script, [...args, "--help"]);
  expect(run.code, `${script} ${args.join(" ")} --help: ${run.stderr}`).toBe(EXIT.ok);
  return run.stdout;
}

beforeAll(async () => {
  const scripts = (await readdir(`${REPO}/scripts`)).filter((name) => name.endsWith(".mjs"));
  helps = new Map(
    await Promise.all(
      scripts.map(async (script): Promise<[string, ScriptHelp]> => {
        const general = await helpOf(script, []);
        const listed =
          general.match(/Usage: npx zx scripts\/\S+ <([a-z-]+(?:\|[a-z-]+)+)>/)?.[1]?.split("|") ?? [];
        const subcommands = new Map(
          await Promise.all(
            listed.map(async (sub): Promise<[string, string]> => [sub, await helpOf(script, [sub])]),
          ),
        );
        return [script, { general, subcommands }];
      }),
    ),
  );
}, 120_000);

const isPlaceholder = (word: string) => /^[<[]|<|\$\{|…|\.\.\./.test(word);

/** What is wrong with one printed command, or undefined when it names a script, subcommand and flags that exist. */
function problemWith(command: string): string | undefined {
  const [, , path, ...words] = shellWords(command);
  const script = path?.slice("scripts/".length);
  // A template that builds commands (`scripts/${script}`): what it builds runs in the tests of its caller.
  if (script !== undefined && isPlaceholder(script)) return undefined;
  const help = script === undefined ? undefined : helps.get(script);
  if (help === undefined) return `no script ${path}`;
  let documented = help.general;
  if (help.subcommands.size > 0) {
    const sub = words[0];
    if (sub === undefined || (!isPlaceholder(sub) && !help.subcommands.has(sub))) {
      return `${script} needs one of ${[...help.subcommands.keys()].join(", ")} first`;
    }
    documented = help.subcommands.get(sub) ?? documented;
  }
  for (const word of words) {
    for (const [flag] of word.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)) {
      if (!new RegExp(`(?<![\\w-])${flag}(?![\\w-])`).test(documented))
        return `${script} has no flag ${flag}`;
    }
  }
  return undefined;
}

/** Where the kit prints text a user may copy: the docs, the --help texts, and the sources of its messages. */
async function printedTexts(): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  texts.set("README.md", await readRepoFile("README.md"));
  for (const page of await readdir(`${REPO}/docs`))
    texts.set(`docs/${page}`, await readRepoFile(`docs/${page}`));
  for (const [script, help] of helps) {
    texts.set(`${script} --help`, help.general);
    for (const [sub, text] of help.subcommands) texts.set(`${script} ${sub} --help`, text);
  }
  // package.json is left out: npm runs its scripts with node_modules/.bin on PATH, so a bare zx works there.
  const sources = ["index.ts", "Pulumi.yaml", "Pulumi.dev.yaml"];
  for (const dir of ["lib", "scripts", "components"]) {
    const entries = await readdir(`${REPO}/${dir}`, { recursive: true });
    sources.push(...entries.filter((entry) => /\.(ts|mjs)$/.test(entry)).map((entry) => `${dir}/${entry}`));
  }
  for (const source of sources) texts.set(source, await readFile(`${REPO}/${source}`, "utf8"));
  return texts;
}

describe("commands the kit prints", () => {
  it("are all `npx zx scripts/…`, never a bare `zx scripts/…` (zx is not installed globally)", async () => {
    const bare: string[] = [];
    for (const [where, text] of await printedTexts()) {
      for (const match of text.matchAll(/(?<!npx )\bzx scripts\/\S*/g)) bare.push(`${where}: ${match[0]}`);
    }
    expect(bare).toEqual([]);
  });

  it("name a script that exists, a subcommand it has, and flags its --help documents", async () => {
    const checked: string[] = [];
    const problems: string[] = [];
    for (const [where, text] of await printedTexts()) {
      for (const command of scriptCommands(text)) {
        checked.push(command);
        const problem = problemWith(command);
        if (problem !== undefined) problems.push(`${where}: ${command}\n  ${problem}`);
      }
    }
    expect(problems).toEqual([]);
    // The docs' and help texts' commands were found, not silently skipped.
    expect(checked.length).toBeGreaterThan(30);
    for (const script of helps.keys()) expect(checked.join("\n")).toContain(`${SCRIPT_COMMAND}${script}`);
  });

  it("rejects what it should: a missing script, subcommand or flag", () => {
    expect(problemWith("npx zx scripts/nope.mjs")).toBe("no script scripts/nope.mjs");
    expect(problemWith("npx zx scripts/provision.mjs --ip 1.2.3.4")).toMatch(/needs one of info, setup/);
    expect(problemWith("npx zx scripts/provision.mjs info --wifi-ssid x")).toBe(
      "provision.mjs has no flag --wifi-ssid",
    );
    expect(problemWith("npx zx scripts/control.mjs kitchen on --channel 1")).toBeUndefined();
    expect(problemWith("npx zx scripts/control.mjs kitchen on --chanel 1")).toBe(
      "control.mjs has no flag --chanel",
    );
  });

  it("README and Pulumi.dev.yaml create the stack the same way", async () => {
    const create = shellBlockCommands(await readRepoFile("README.md")).filter((line) =>
      /^pulumi stack (init|select)/.test(line),
    );
    expect(create).toEqual(["pulumi stack select --create dev"]);
    const yaml = await readRepoFile("Pulumi.dev.yaml");
    expect(yaml).toMatch(/^#\s+pulumi stack select --create dev$/m);
    expect(yaml).not.toMatch(/pulumi stack init/);
  });
});
