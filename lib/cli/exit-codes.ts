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
type ExitMeanings = Partial<Record<ExitCodeName, string>>;

const SAME_IN_EVERY_SCRIPT: Partial<Record<ExitCodeName, string>> = {
  ok: "done",
  unexpected: "unexpected failure (a bug: please report it with the output)",
};

/** The `Exit codes:` section of a script's --help: the codes in `meanings`, plus 0 and 1, in order. */
export function exitCodeHelp(meanings: ExitMeanings): string {
  const described = { ...SAME_IN_EVERY_SCRIPT, ...meanings };
  const lines = (Object.keys(EXIT) as ExitCodeName[]).flatMap((name) =>
    described[name] === undefined ? [] : [`  ${EXIT[name]}  ${described[name]}`],
  );
  return `Exit codes:\n${lines.join("\n")}`;
}

/**
 * What each code means for each script: its --help prints exitCodeHelp of its own row, so a script
 * lists only the codes it can return. A new script, or a new code a script can return, goes here.
 */
export const SCRIPT_EXIT_CODES = {
  provision: {
    usage: "bad flags or values; nothing was sent to the device",
    unreachable: "the device did not answer over HTTP (not joined to its Meross_* Wi-Fi? wrong --ip?)",
    wrongKey: "the device rejected our signature: it has another key (--current-key)",
    deviceError: "the device answered with an error, or is not the device --mac/--uuid names",
    stackOrDatabase: "the stack outputs, stack config or MySQL could not be read or written",
    timeout: "setup was sent but the device did not come online before --timeout",
  },
  devices: {
    usage: "bad flags or values, or an account the store refuses; nothing was changed",
    stackOrDatabase: "the stack outputs, stack config or MySQL could not be read or written",
    notFound: "no device by that name, MAC or uuid",
  },
  control: {
    usage: "bad arguments or flags; nothing was sent",
    unreachable: "cannot connect to the broker, or it refused the credentials or a subscription",
    wrongKey: "the device rejected the signature (error 5001): --key is not the key it was set up with",
    deviceError: "the device answered with an error (e.g. no such channel)",
    stackOrDatabase:
      "the stack outputs or config could not be read (pass the values as flags with --no-stack)",
    timeout: "no reply from the device before --timeout (offline? watch it with monitor.mjs)",
    notFound: "no device by that name in the stack config",
  },
  /** It runs until stopped and sends nothing, so only these codes can end it. */
  monitor: {
    ok: "stopped",
    usage: "bad flags",
    unreachable: "cannot connect to the broker (or it refused every subscription)",
    stackOrDatabase: "the stack could not be read",
    notFound: "no device by that name",
  },
  demo: {
    unexpected: "a step of the journey failed (the lines above say which), or a bug",
    usage: "bad flags; nothing was started",
    stackOrDatabase: "something it runs on is missing (the message says what and how to install it)",
  },
  "controller-login": {
    usage: "bad arguments or flags, or --ca-file cannot be written",
    stackOrDatabase: "the stack outputs could not be read, or have no controller login by that name",
  },
  "simulate-device": {
    ok: "stopped",
    unexpected: "could not start (the port is in use, the address is not this machine's), or a bug",
    usage: "bad flags; nothing was started",
  },
} as const satisfies Record<string, ExitMeanings>;

export type ScriptName = keyof typeof SCRIPT_EXIT_CODES;

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
