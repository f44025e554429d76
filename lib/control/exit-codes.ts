import { DeviceError, ProtocolError, WrongKeyError } from "../meross/envelope.ts";
import { StackConfigError } from "../stack/devices.ts";
import { StackUnavailableError } from "../stack/outputs.ts";
import { PulumiCommandError } from "../stack/pulumi-cli.ts";
import { BrokerConnectionError } from "./broker-connection.ts";

/**
 * What `control.mjs` and `monitor.mjs` exit with. The numbers match provision.mjs where the meaning
 * is the same (2 usage, 4 wrong key, 5 device error, 6 stack, 8 unknown device), so one table in
 * the README serves all the scripts.
 */
export const EXIT = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  broker: 3,
  wrongKey: 4,
  device: 5,
  stack: 6,
  timeout: 7,
  unknownDevice: 8,
} as const;

export const EXIT_CODE_HELP = `Exit codes:
  0  done
  1  unexpected failure (a bug: please report it with the output)
  2  bad arguments or flags; nothing was sent
  3  cannot connect to the broker, or it refused the credentials or a subscription
  4  the device rejected the signature (error 5001): --key is not the key it was set up with
  5  the device answered with an error (e.g. no such channel)
  6  the stack outputs or config could not be read (pass the values as flags with --no-stack)
  7  no reply from the device before --timeout (offline? watch it with monitor.mjs)
  8  no device by that name in the stack config`;

export class UsageError extends Error {
  override name = "UsageError";
}

export class ReplyTimeoutError extends Error {
  override name = "ReplyTimeoutError";
}

export class UnknownDeviceError extends Error {
  override name = "UnknownDeviceError";
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError || error instanceof RangeError) return EXIT.usage;
  if (error instanceof BrokerConnectionError) return EXIT.broker;
  if (error instanceof WrongKeyError) return EXIT.wrongKey;
  if (error instanceof DeviceError || error instanceof ProtocolError) return EXIT.device;
  if (
    error instanceof StackUnavailableError ||
    error instanceof StackConfigError ||
    error instanceof PulumiCommandError
  ) {
    return EXIT.stack;
  }
  if (error instanceof ReplyTimeoutError) return EXIT.timeout;
  if (error instanceof UnknownDeviceError) return EXIT.unknownDevice;
  return EXIT.unexpected;
}
