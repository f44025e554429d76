import { DeviceError, ProtocolError, WrongKeyError } from "../meross/envelope.ts";
import { StackConfigError } from "../stack/devices.ts";
import { StackUnavailableError } from "../stack/outputs.ts";
import { PulumiCommandError } from "../stack/pulumi-cli.ts";
import { UsageError } from "./flags.ts";

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
} as const;

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
 * The code for a failure of the modules every script uses (flags, the device protocol, the stack),
 * or undefined for any other error, which the script's own exitCodeFor places.
 */
export function sharedExitCodeFor(error: unknown): number | undefined {
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof WrongKeyError) return EXIT.wrongKey;
  if (error instanceof DeviceError || error instanceof ProtocolError) return EXIT.deviceError;
  if (
    error instanceof StackUnavailableError ||
    error instanceof StackConfigError ||
    error instanceof PulumiCommandError
  ) {
    return EXIT.stackOrDatabase;
  }
  return undefined;
}
