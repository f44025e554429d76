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
