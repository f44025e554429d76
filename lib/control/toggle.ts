import { z } from "zod";
import { UsageError } from "../cli/flags.ts";
import { DeviceError } from "../meross/envelope.ts";
import { uuidSchema } from "../meross/identifiers.ts";
import {
  type DeviceRequest,
  Namespace,
  parseToggleX,
  type ToggleState,
  toggleXGetRequest,
  toggleXSetRequest,
} from "../meross/messages/index.ts";
import { matchesDevice, type StackDevice, UnknownDeviceError } from "../stack/devices.ts";

/** What `control.mjs` can do to one channel of one device. */
export const CONTROL_ACTIONS = ["on", "off", "toggle", "status"] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

export const controlActionSchema = z.enum(CONTROL_ACTIONS, {
  error: (issue) => `action ${JSON.stringify(issue.input)} must be one of ${CONTROL_ACTIONS.join(", ")}`,
});

export const channelSchema = z.coerce
  .number({ error: "--channel must be a number" })
  .int("--channel must be a whole number")
  .min(0, "--channel must be 0 or more")
  .max(15, "--channel must be 15 or less");

export interface ResolvedDevice {
  uuid: string;
  /** The config name, when the device has one. */
  name?: string;
}

/** A config name, MAC or uuid from the stack's devices list; a raw uuid works without the list. */
export function resolveDevice(identifier: string, devices: readonly StackDevice[]): ResolvedDevice {
  const entry = devices.find((device) => matchesDevice(device, identifier));
  if (entry) {
    const uuid = uuidSchema.safeParse(entry.uuid);
    if (!uuid.success) {
      throw new UsageError(
        `device "${entry.name}" has no valid uuid in the stack config (${JSON.stringify(entry.uuid)}); ` +
          "provision it again or fix Pulumi.<stack>.yaml",
      );
    }
    return { uuid: uuid.data, name: entry.name };
  }
  const uuid = uuidSchema.safeParse(identifier);
  if (uuid.success) return { uuid: uuid.data };
  const known = devices.map((device) => device.name).filter(Boolean);
  throw new UnknownDeviceError(
    `no device named ${JSON.stringify(identifier)}` +
      (known.length > 0 ? `; the stack knows ${known.join(", ")}` : "; the stack config lists no devices") +
      ". Give a device name from the stack config or its 32-hex uuid.",
  );
}

/**
 * The requests an action needs, in order. `toggle` reads the state first, so it depends on the
 * first reply; the caller passes the state it read.
 */
export function requestFor(action: ControlAction, channel: number, current?: ToggleState): DeviceRequest {
  switch (action) {
    case "on":
      return toggleXSetRequest(true, channel);
    case "off":
      return toggleXSetRequest(false, channel);
    case "status":
      return toggleXGetRequest(channel);
    case "toggle":
      return current === undefined ? toggleXGetRequest(channel) : toggleXSetRequest(!current.on, channel);
  }
}

/** The state of `channel` in a ToggleX GETACK (one object or a list of channels). */
export function channelState(payload: unknown, channel: number): ToggleState {
  const state = parseToggleX(payload).find((entry) => entry.channel === channel);
  if (state === undefined) {
    throw new DeviceError(
      Namespace.ControlToggleX,
      "no-channel",
      `the device reported no channel ${channel}`,
    );
  }
  return state;
}

export interface ControlResult {
  action: ControlAction;
  device: ResolvedDevice;
  channel: number;
  on: boolean;
  /** Milliseconds from publishing the (last) request to its reply. */
  roundTripMs: number;
}

export function describeResult(result: ControlResult): string {
  const who = result.device.name ?? result.device.uuid;
  const state = result.on ? "on" : "off";
  const verb = result.action === "status" ? "is" : "is now";
  return `${who} channel ${result.channel} ${verb} ${state} (${result.roundTripMs} ms)`;
}
