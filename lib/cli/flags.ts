import { readFile } from "node:fs/promises";
import { z } from "zod";
import type { ExitCategory } from "../exit-category.ts";

/**
 * What the flag handling of provision.mjs, devices.mjs, control.mjs and monitor.mjs has in common.
 * Schema keys are the flag names, so every message names the flag to fix.
 */

/** Bad input: exit 2, nothing sent to a device or the broker, nothing written. */
export class UsageError extends Error {
  readonly exitCategory: ExitCategory = "usage";
  override name = "UsageError";
}

/**
 * A script's flags: string flags keep what was typed (`--key 0012` stays "0012"), boolean flags take
 * no value and `--no-<flag>` sets false, `default` applies to what is not given.
 */
export interface FlagSpec {
  string: string[];
  boolean: string[];
  default: Record<string, unknown>;
}

/** `--help` or `-h` anywhere before a `--`: the script prints its help and exits 0, whatever else is given. */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === "--help" || arg === "-h");
}

export interface ScriptArguments<T> {
  flags: T;
  /** The words that are not flags, in order (everything after a `--` too). */
  positional: string[];
}

/**
 * Every script's flag parser. An undeclared flag is `unknown flag --x; see --help`, a declared one
 * with a bad value is `--x: <what is wrong>` (validateFlags); both are UsageErrors (exit 2). A
 * string flag takes the next word as its value even when it starts with one dash (`--timeout -1`
 * is a bad timeout, not a flag `-1`); a flag given twice arrives as a list, which `single` refuses.
 */
export function parseScriptFlags<S extends z.ZodType>(
  args: readonly string[],
  spec: FlagSpec,
  schema: S,
): ScriptArguments<z.output<S>> {
  const strings = new Set(spec.string);
  const booleans = new Set(spec.boolean);
  const given = new Map<string, unknown>();
  const set = (name: string, value: unknown) => {
    const earlier = given.get(name);
    given.set(name, earlier === undefined ? value : [earlier, value].flat());
  };
  const positional: string[] = [];
  const unknown: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!/^--?[^-\d]/.test(arg)) {
      positional.push(arg);
      continue;
    }
    const [typed = "", inline] = arg.split(/=(.*)/s, 2);
    const name = typed.replace(/^--?/, "");
    const negated = name.startsWith("no-") ? name.slice(3) : undefined;
    if (name === "help" || name === "h") continue; // the script's, before parsing: wantsHelp
    if (booleans.has(name)) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      set(name, true);
    } else if (strings.has(name)) {
      const next = args[i + 1];
      const value = inline ?? (next !== undefined && !next.startsWith("--") ? args[++i] : undefined);
      if (value === undefined) throw new UsageError(`--${name} needs a value; see --help`);
      set(name, value);
    } else if (
      negated !== undefined &&
      (booleans.has(negated) || strings.has(negated)) &&
      inline === undefined
    ) {
      set(negated, false);
    } else {
      unknown.push(typed);
    }
  }
  const error = unknownFlagError(unknown);
  if (error) throw error;
  const unset = Object.fromEntries(spec.boolean.map((name) => [name, false]));
  const flags = validateFlags(schema, { ...unset, ...spec.default, ...Object.fromEntries(given) });
  return { flags, positional };
}

/** A flag given twice arrives as a list; wrapped flags may be given once. */
export const single = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value, context) => {
    if (Array.isArray(value)) {
      context.addIssue({ code: "custom", message: "give it once" });
      return z.NEVER;
    }
    return value;
  }, schema);

/** `--stack <name>` picks a Pulumi stack; `--no-stack` (false) reads none. */
export const stackFlag = single(
  z.union([z.string().trim().min(1, "needs a stack name"), z.literal(false)]),
).optional();

/** parseScriptFlags for a script (or subcommand) that takes flags only: any other word is refused. */
export function parseOnlyFlags<S extends z.ZodType>(
  args: readonly string[],
  spec: FlagSpec,
  schema: S,
): z.output<S> {
  const { flags, positional } = parseScriptFlags(args, spec, schema);
  if (positional.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
  return flags;
}

/** Flags nobody declared, as typed (`--wifi-password`); positional words are not flags. */
export function unknownFlagError(typed: string[]): UsageError | undefined {
  const flags = typed.filter((arg) => arg.startsWith("-"));
  if (flags.length === 0) return undefined;
  return new UsageError(`unknown flag ${flags.join(", ")}; see --help`);
}

/** Checks minimist's result against `schema`; positional words and --help are the caller's. */
export function validateFlags<S extends z.ZodType>(schema: S, raw: Record<string, unknown>): z.output<S> {
  const { _: _positional, help: _help, "--": _rest, ...flags } = raw;
  const parsed = schema.safeParse(flags);
  if (!parsed.success) {
    throw new UsageError(
      parsed.error.issues
        .map((issue) => {
          const flag = issue.path[0];
          return typeof flag === "string" ? `--${flag}: ${issue.message}` : issue.message;
        })
        .join("\n"),
    );
  }
  return parsed.data;
}

/** `--ca <file>`: the PEM certificate the broker's TLS certificate is checked against. */
export async function readCaFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`--ca: cannot read ${path}: ${(error as Error).message}`);
  }
  if (!text.includes("BEGIN CERTIFICATE")) throw new UsageError(`--ca: ${path} is not a PEM certificate`);
  return text;
}
