import { EXIT, exitCodeHelp, sharedExitCodeFor } from "../cli/exit-codes.ts";
import { DeviceHttpError } from "../meross/http-transport.ts";
import { AccountError } from "../store/accounts.ts";
import { DatabaseUnavailableError } from "./database.ts";
import { SetupStepError } from "./steps.ts";

/** What the codes of lib/cli's EXIT table mean for `provision.mjs` and `devices.mjs`; `--help` prints this. */
export const EXIT_CODE_HELP = exitCodeHelp({
  usage: "bad flags or values; nothing was sent to the device",
  unreachable: "the device did not answer over HTTP (not joined to its Meross_* Wi-Fi? wrong --ip?)",
  wrongKey: "the device rejected our signature: it has another key (--current-key)",
  deviceError: "the device answered with an error, or is not the device --mac/--uuid names",
  stackOrDatabase: "the stack outputs, stack config or MySQL could not be read or written",
  timeout: "setup was sent but the device did not come online before --timeout",
  notFound: "(devices.mjs) no device by that name, MAC or uuid",
});

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
  if (inner instanceof AccountError) return EXIT.usage;
  if ((inner as { code?: unknown })?.code === "EUNREACHABLE") return EXIT.unreachable;
  const shared = sharedExitCodeFor(inner);
  if (shared !== undefined) return shared;
  if (inner instanceof DeviceHttpError || inner instanceof DeviceMismatchError) return EXIT.deviceError;
  if (inner instanceof DatabaseUnavailableError || isDatabaseError(inner)) return EXIT.stackOrDatabase;
  if (inner instanceof DeviceOfflineError) return EXIT.timeout;
  if (inner instanceof NotFoundError) return EXIT.notFound;
  return EXIT.unexpected;
}
