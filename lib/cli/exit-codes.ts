import type { ExitCategory } from "../exit-category.ts";
import { isMysqlError } from "../store/database.ts";

/**
 * What provision.mjs, devices.mjs, control.mjs and monitor.mjs exit with: one table, so a number
 * means the same kind of failure whichever script returns it. Each script's --help says, with
 * exitCodeHelp, what the codes it can return mean there.
 */
export const EXIT = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  /** The device (over HTTP) or the broker could not be reached, or the broker refused us. */
  unreachable: 3,
  wrongKey: 4,
  deviceError: 5,
  stackOrDatabase: 6,
  /** Nothing came back (a reply, the device online) before --timeout. */
  timeout: 7,
  notFound: 8,
} as const satisfies Record<"ok" | "unexpected" | ExitCategory, number>;

export type ExitCodeName = keyof typeof EXIT;

const SAME_IN_EVERY_SCRIPT: Partial<Record<ExitCodeName, string>> = {
  ok: "done",
  unexpected: "unexpected failure (a bug: please report it with the output)",
};

/** The `Exit codes:` section of a script's --help: the codes in `meanings`, plus 0 and 1, in order. */
export function exitCodeHelp(meanings: Partial<Record<ExitCodeName, string>>): string {
  const described = { ...SAME_IN_EVERY_SCRIPT, ...meanings };
  const lines = (Object.keys(EXIT) as ExitCodeName[]).flatMap((name) =>
    described[name] === undefined ? [] : [`  ${EXIT[name]}  ${described[name]}`],
  );
  return `Exit codes:\n${lines.join("\n")}`;
}

/**
 * What an error is, by its `exitCategory`; an error without one (a wrapper such as a failed setup
 * step) is what its cause is. A RangeError is bad input (lib/meross's checkedInput throws them), and
 * mysql2's errors, which have no exported class, are recognised by isMysqlError.
 */
export function exitCategoryOf(error: unknown): ExitCategory | undefined {
  for (let inner = error; inner instanceof Error; inner = inner.cause) {
    const { exitCategory } = inner as { exitCategory?: ExitCategory };
    if (exitCategory !== undefined) return exitCategory;
    if (inner instanceof RangeError) return "usage";
    if (isMysqlError(inner)) return "stackOrDatabase";
  }
  return undefined;
}

/** The exit code of every script for `error`: 1 (unexpected) for anything not categorised. */
export function exitCodeFor(error: unknown): number {
  const category = exitCategoryOf(error);
  return category === undefined ? EXIT.unexpected : EXIT[category];
}
