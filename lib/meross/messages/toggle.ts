import { z } from "zod";
import { checkedInput } from "../fields.ts";
import { type DeviceRequest, Namespace } from "./namespace.ts";
import { numeric, parsed } from "./payload.ts";

// ── Appliance.Control.ToggleX ───────────────────────────────────────────────────────────────────

export function toggleXSetRequest(on: boolean, channel = 0): DeviceRequest {
  return {
    method: "SET",
    namespace: Namespace.ControlToggleX,
    payload: {
      togglex: {
        channel: checkedInput(z.number().int().nonnegative(), channel, "channel"),
        onoff: on ? 1 : 0,
      },
    },
  };
}

export function toggleXGetRequest(channel = 0): DeviceRequest {
  return {
    method: "GET",
    namespace: Namespace.ControlToggleX,
    payload: { togglex: { channel: checkedInput(z.number().int().nonnegative(), channel, "channel") } },
  };
}

export interface ToggleState {
  channel: number;
  on: boolean;
  /** When it last changed, epoch seconds (device clock). */
  lmTime?: number;
}

const toggleSchema = z
  .object({ channel: numeric.default(0), onoff: numeric, lmTime: numeric.optional() })
  .loose();
const toggleXSchema = z.object({ togglex: z.union([toggleSchema, z.array(toggleSchema)]) });

/** A SET, GETACK or PUSH: devices send one object or a list of channels; both come back as a list. */
export function parseToggleX(payload: unknown): ToggleState[] {
  const { togglex } = parsed(toggleXSchema, Namespace.ControlToggleX, payload);
  return (Array.isArray(togglex) ? togglex : [togglex]).map(({ channel, onoff, lmTime }) => ({
    channel,
    on: onoff === 1,
    ...(lmTime === undefined ? {} : { lmTime }),
  }));
}

export function toggleXPayload(states: ToggleState[]): Record<string, unknown> {
  return {
    togglex: states.map(({ channel, on, lmTime }) => ({
      channel,
      onoff: on ? 1 : 0,
      ...(lmTime === undefined ? {} : { lmTime }),
    })),
  };
}

// ── Appliance.Control.Toggle (older firmware: one relay, no channels) ──────────────────────────

/**
 * The SET as AR `doc/protocol.md` records the app sending it to mss310 fw 1.1.13:
 * `{"channel":0,"toggle":{"onoff":1}}`. meross_lan sends `{"toggle":{"onoff":1}}` and its emulator
 * reads only `toggle.onoff`, so the top-level channel is harmless to both.
 */
export function toggleSetRequest(on: boolean): DeviceRequest {
  return {
    method: "SET",
    namespace: Namespace.ControlToggle,
    payload: { channel: 0, toggle: { onoff: on ? 1 : 0 } },
  };
}

/** meross_lan's GET, answered by a real mss310 fw 1.1.18 in its `emulator_traces` (the payload is ignored). */
export function toggleGetRequest(): DeviceRequest {
  return { method: "GET", namespace: Namespace.ControlToggle, payload: { toggle: [] } };
}

const legacyToggleSchema = z.object({
  channel: numeric.optional(),
  toggle: z.object({ channel: numeric.optional(), onoff: numeric, lmTime: numeric.optional() }).loose(),
});

/**
 * A Toggle SET, GETACK or PUSH: `{"toggle":{"onoff":1,"lmTime":…}}` on the wire (ML trace of
 * mss310 fw 1.1.18; AR), with a channel beside or inside `toggle` when a client sent one. One relay,
 * so one state, on channel 0 unless the message says otherwise.
 */
export function parseToggle(payload: unknown): ToggleState[] {
  const { channel, toggle } = parsed(legacyToggleSchema, Namespace.ControlToggle, payload);
  return [
    {
      channel: toggle.channel ?? channel ?? 0,
      on: toggle.onoff === 1,
      ...(toggle.lmTime === undefined ? {} : { lmTime: toggle.lmTime }),
    },
  ];
}

/** The device side: its one relay's state, as the GETACK and PUSH carry it. */
export function togglePayload(state: ToggleState): Record<string, unknown> {
  return {
    toggle: { onoff: state.on ? 1 : 0, ...(state.lmTime === undefined ? {} : { lmTime: state.lmTime }) },
  };
}

/** Which of the two switch namespaces a device speaks: ToggleX when its ability list has it, else Toggle. */
export type ToggleNamespace = typeof Namespace.ControlToggleX | typeof Namespace.ControlToggle;

export function toggleNamespaceOf(abilities: Record<string, unknown>): ToggleNamespace | undefined {
  if (Namespace.ControlToggleX in abilities) return Namespace.ControlToggleX;
  if (Namespace.ControlToggle in abilities) return Namespace.ControlToggle;
  return undefined;
}
