import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import type { ControllerLogin, MysqlSettings, StackOutputsJson } from "../../lib/stack/outputs.ts";

/**
 * This machine has no Pulumi CLI, so tests put this stand-in first on PATH. It implements only the
 * commands lib/stack runs — `stack output --json --show-secrets`, `config --json`,
 * `config set --path [--type string] [--secret]` (the value as an argument or on standard input),
 * `config rm --path` — with the CLI's documented semantics
 * (an index may be at most the list length; without `--type string` "true"/"false" become booleans
 * and integers numbers), keeps its state in a JSON file and logs every call.
 */
export interface FakePulumi {
  /** Environment for a child process: PATH with the fake first. */
  env: NodeJS.ProcessEnv;
  binDir: string;
  /** The stack config as `<project>:<key>` → value. */
  config(): Promise<Record<string, unknown>>;
  /** Every invocation: its arguments and working directory. */
  calls(): Promise<{ args: string[]; cwd: string }[]>;
  setOutputs(outputs: Record<string, unknown> | null): Promise<void>;
  cleanup(): Promise<void>;
}

export interface FakePulumiOptions {
  /** `null` makes `stack output` fail as it does with no stack selected. */
  outputs?: StackOutputsJson | Record<string, unknown> | null;
  config?: Record<string, unknown>;
  project?: string;
}

const FAKE_SOURCE = String.raw`#!/usr/bin/env node
const fs = require("node:fs");
const path = require("node:path");
const dir = __dirname;
const statePath = path.join(dir, "state.json");
const state = JSON.parse(fs.readFileSync(statePath, "utf8"));
const args = process.argv.slice(2);
fs.appendFileSync(path.join(dir, "calls.jsonl"), JSON.stringify({ args, cwd: process.cwd() }) + "\n");
const save = () => fs.writeFileSync(statePath, JSON.stringify(state, null, 2));
const fail = (message) => { process.stderr.write("error: " + message + "\n"); process.exit(255); };
const positional = args.filter((arg, i) => !arg.startsWith("-") && args[i - 1] !== "--stack" && args[i - 1] !== "--type");
const has = (flag) => args.includes(flag);
const typeIndex = args.indexOf("--type");
const type = typeIndex === -1 ? undefined : args[typeIndex + 1];

function parsePath(text) {
  const segments = [];
  const re = /([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\./g;
  let match;
  while ((match = re.exec(text))) {
    if (match[1] !== undefined) segments.push(match[1]);
    else if (match[2] !== undefined) segments.push(Number(match[2]));
  }
  return segments;
}
function adjust(value) {
  if (type === "string") return value;
  if (value === "true") return true;
  if (value === "false") return false;
  if (/^-?[1-9][0-9]*$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  return value;
}
const key = (name) => state.project + ":" + name;

if (positional[0] === "stack" && positional[1] === "output") {
  if (!has("--json") || !has("--show-secrets")) fail("fake pulumi expects --json --show-secrets");
  if (state.outputs === null) fail("no stack selected; please use \`pulumi stack select\`");
  process.stdout.write(JSON.stringify(state.outputs, null, 2) + "\n");
} else if (positional[0] === "config" && positional.length === 1) {
  if (!has("--json")) fail("fake pulumi expects --json");
  const out = {};
  for (const [name, value] of Object.entries(state.config)) {
    out[name] = typeof value === "object" && value !== null
      ? { value: JSON.stringify(value), objectValue: value, secret: false }
      : { value: String(value), secret: false };
  }
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");
} else if (positional[0] === "config" && positional[1] === "set") {
  if (!has("--path")) fail("fake pulumi only sets with --path");
  const [, , pathText, argValue] = positional;
  // Like the CLI with --non-interactive: no value on the command line means the value is standard
  // input, without its trailing newline.
  const value = argValue ?? fs.readFileSync(0, "utf8").replace(/\r?\n$/, "");
  const [root, ...rest] = parsePath(pathText);
  if (rest.length === 0) { state.config[key(root)] = value; save(); process.exit(0); }
  let parent = state.config;
  let slot = key(root);
  for (const segment of rest) {
    let container = parent[slot];
    if (container === undefined || container === null) {
      container = typeof segment === "number" ? [] : {};
      parent[slot] = container;
    }
    if (typeof segment === "number") {
      if (!Array.isArray(container)) fail("an array was expected for index " + segment);
      if (segment > container.length) fail("could not set config: " + pathText + ": array index out of range");
    } else if (Array.isArray(container) || typeof container !== "object") {
      fail("a map was expected for key " + JSON.stringify(segment));
    }
    parent = container;
    slot = segment;
  }
  parent[slot] = adjust(value);
  save();
} else if (positional[0] === "config" && positional[1] === "rm") {
  if (!has("--path")) fail("fake pulumi only removes with --path");
  const [root, ...rest] = parsePath(positional[2]);
  if (rest.length === 0) { delete state.config[key(root)]; save(); process.exit(0); }
  let container = state.config[key(root)];
  for (const segment of rest.slice(0, -1)) container = container?.[segment];
  const last = rest[rest.length - 1];
  if (Array.isArray(container) && typeof last === "number") {
    if (last < container.length) container.splice(last, 1);
  } else if (container && typeof container === "object") {
    delete container[last];
  }
  save();
} else {
  fail("fake pulumi does not implement: pulumi " + args.join(" "));
}
`;

/**
 * The outputs `pulumi up` would report for a stack running on these test services: the anonymous
 * variant, or the mysql variant when `mysql` is given (a MariaDbInstance fits), with `controllers`
 * as its controller logins.
 */
export function testStackOutputs(stack: {
  broker: { url: string };
  pki: { caPem: string };
  userId: string;
  deviceKey: string;
  mysql?: MysqlSettings;
  controllers?: readonly ControllerLogin[];
}): StackOutputsJson {
  const { mysql } = stack;
  return {
    brokerUrls: [stack.broker.url],
    caCertificatePem: stack.pki.caPem,
    userId: stack.userId,
    deviceKey: stack.deviceKey,
    ...(mysql === undefined
      ? { authMode: "anonymous" }
      : {
          authMode: "mysql",
          mysql: {
            host: mysql.host,
            port: mysql.port,
            user: mysql.user,
            password: mysql.password,
            database: mysql.database,
          },
        }),
    controllerCredentials: Object.fromEntries(
      (stack.controllers ?? []).map(({ username, password }) => [username, { username, password }]),
    ),
  };
}

export async function installFakePulumi(options: FakePulumiOptions = {}): Promise<FakePulumi> {
  const binDir = await mkdtemp(join(tmpdir(), "fake-pulumi-"));
  const statePath = join(binDir, "state.json");
  const project = options.project ?? "meross-broker";
  const config = Object.fromEntries(
    Object.entries(options.config ?? {}).map(([name, value]) => [`${project}:${name}`, value]),
  );
  await writeFile(
    statePath,
    JSON.stringify({ project, outputs: options.outputs === undefined ? {} : options.outputs, config }),
  );
  await writeFile(join(binDir, "calls.jsonl"), "");
  await writeFile(join(binDir, "pulumi"), FAKE_SOURCE);
  await chmod(join(binDir, "pulumi"), 0o755);
  const readState = async () => JSON.parse(await readFile(statePath, "utf8"));
  return {
    binDir,
    env: { ...process.env, PATH: `${binDir}${delimiter}${process.env.PATH ?? ""}` },
    async config() {
      return (await readState()).config;
    },
    async calls() {
      const text = await readFile(join(binDir, "calls.jsonl"), "utf8");
      return text
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line));
    },
    async setOutputs(outputs) {
      const state = await readState();
      state.outputs = outputs;
      await writeFile(statePath, JSON.stringify(state));
    },
    async cleanup() {
      await rm(binDir, { recursive: true, force: true });
    },
  };
}
