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

/** What zx's `minimist`/`parseArgv` needs: values that look like numbers stay strings (`--key 0012`). */
export interface FlagSpec {
  string: string[];
  boolean: string[];
  default: Record<string, unknown>;
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
