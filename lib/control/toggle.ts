import { z } from "zod";
import { UsageError } from "../cli/flags.ts";
import { type DeviceKeying, keyingOf } from "../meross/device-key.ts";
import { DeviceError } from "../meross/envelope.ts";
import { uuidSchema } from "../meross/identifiers.ts";
import {
  type DeviceRequest,
  Namespace,
  parseToggle,
  parseToggleX,
  type ToggleNamespace,
  type ToggleState,
  toggleGetRequest,
  toggleSetRequest,
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
  .number({ error: "must be a number" })
  .int("must be a whole number")
  .min(0, "must be 0 or more")
  .max(15, "must be 15 or less");

export interface ResolvedDevice extends Partial<DeviceKeying> {
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
    return { uuid: uuid.data, name: entry.name, ...keyingOf(entry) };
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
 * `--namespace togglex|toggle` (or the full namespace): which switch namespace to speak without
 * asking the device's ability list first.
 */
export const toggleNamespaceFlag = z
  .string()
  .trim()
  .transform((text, ctx): ToggleNamespace => {
    const name = text.replace(/^appliance\.control\./i, "").toLowerCase();
    if (name === "togglex") return Namespace.ControlToggleX;
    if (name === "toggle") return Namespace.ControlToggle;
    ctx.addIssue({ code: "custom", message: "must be togglex or toggle (older firmware, one relay)" });
    return z.NEVER;
  });

/** Toggle firmware (fw 1.x) has one relay and no channels: only channel 0 exists. */
export function checkChannelFor(namespace: ToggleNamespace, channel: number): void {
  if (namespace === Namespace.ControlToggle && channel !== 0) {
    throw new UsageError(
      `the device speaks ${Namespace.ControlToggle} (older firmware, one relay, no channels): --channel must be 0`,
    );
  }
}

/**
 * The requests an action needs, in order, in the device's switch namespace. `toggle` reads the
 * state first, so it depends on the first reply; the caller passes the state it read.
 */
export function requestFor(
  namespace: ToggleNamespace,
  action: ControlAction,
  channel: number,
  current?: ToggleState,
): DeviceRequest {
  const legacy = namespace === Namespace.ControlToggle;
  const set = (on: boolean) => (legacy ? toggleSetRequest(on) : toggleXSetRequest(on, channel));
  const get = () => (legacy ? toggleGetRequest() : toggleXGetRequest(channel));
  switch (action) {
    case "on":
      return set(true);
    case "off":
      return set(false);
    case "status":
      return get();
    case "toggle":
      return current === undefined ? get() : set(!current.on);
  }
}

/** The state of `channel` in a GETACK: ToggleX's one object or list of channels, or Toggle's one relay. */
export function channelState(namespace: ToggleNamespace, payload: unknown, channel: number): ToggleState {
  const states = namespace === Namespace.ControlToggle ? parseToggle(payload) : parseToggleX(payload);
  const state = states.find((entry) => entry.channel === channel);
  if (state === undefined) {
    throw new DeviceError(namespace, "no-channel", `the device reported no channel ${channel}`);
  }
  return state;
}

export interface ControlResult {
  action: ControlAction;
  device: ResolvedDevice;
  channel: number;
  /** The switch namespace it was spoken to in. */
  namespace: ToggleNamespace;
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
