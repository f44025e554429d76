import { DeviceError, ProtocolError, WrongKeyError } from "../meross/envelope.ts";
import { DeviceHttpError } from "../meross/http-transport.ts";
import { StackConfigError } from "../stack/devices.ts";
import { StackUnavailableError } from "../stack/outputs.ts";
import { PulumiCommandError } from "../stack/pulumi-cli.ts";
import { AccountError } from "../store/accounts.ts";
import { DatabaseUnavailableError } from "./database.ts";
import { UsageError } from "./options.ts";
import { SetupStepError } from "./steps.ts";

/** What `provision.mjs` and `devices.mjs` exit with; `--help` prints this table. */
export const EXIT = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  unreachable: 3,
  wrongKey: 4,
  deviceRefused: 5,
  stackOrDatabase: 6,
  notOnline: 7,
  notFound: 8,
} as const;

export const EXIT_CODE_HELP = `Exit codes:
  0  done
  1  unexpected failure (a bug: please report it with the output)
  2  bad flags or values; nothing was sent to the device
  3  the device did not answer over HTTP (not joined to its Meross_* Wi-Fi? wrong --ip?)
  4  the device rejected our signature: it has another key (--current-key)
  5  the device answered with an error, or is not the device --mac/--uuid names
  6  the stack outputs, stack config or MySQL could not be read or written
  7  setup was sent but the device did not come online before --timeout
  8  (devices.mjs) no device by that name, MAC or uuid`;

export class DeviceMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeviceMismatchError";
  }
}

export class DeviceOfflineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeviceOfflineError";
  }
}

export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotFoundError";
  }
}

/** mysql2 errors carry a string `code` (ECONNREFUSED, ER_ACCESS_DENIED_ERROR, …) and often `sqlMessage`. */
function isDatabaseError(error: unknown): boolean {
  const { code, sqlMessage } = error as { code?: unknown; sqlMessage?: unknown };
  return (
    typeof sqlMessage === "string" ||
    (typeof code === "string" &&
      (/^ER_/.test(code) || ["ECONNREFUSED", "PROTOCOL_CONNECTION_LOST"].includes(code)))
  );
}

export function exitCodeFor(error: unknown): number {
  const inner = error instanceof SetupStepError ? error.cause : error;
  if (inner instanceof UsageError || inner instanceof AccountError) return EXIT.usage;
  if ((inner as { code?: unknown })?.code === "EUNREACHABLE") return EXIT.unreachable;
  if (inner instanceof WrongKeyError) return EXIT.wrongKey;
  if (
    inner instanceof DeviceError ||
    inner instanceof ProtocolError ||
    inner instanceof DeviceHttpError ||
    inner instanceof DeviceMismatchError
  ) {
    return EXIT.deviceRefused;
  }
  if (
    inner instanceof StackUnavailableError ||
    inner instanceof StackConfigError ||
    inner instanceof PulumiCommandError ||
    inner instanceof DatabaseUnavailableError ||
    isDatabaseError(inner)
  ) {
    return EXIT.stackOrDatabase;
  }
  if (inner instanceof DeviceOfflineError) return EXIT.notOnline;
  if (inner instanceof NotFoundError) return EXIT.notFound;
  return EXIT.unexpected;
}
