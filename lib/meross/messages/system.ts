import { z } from "zod";
import { unixSeconds } from "../envelope.ts";
import { portSchema } from "../identifiers.ts";
import { timeRules } from "../time-rules.ts";
import { type DeviceRequest, Namespace } from "./namespace.ts";
import { looksLikeMac, looksLikeUuid, numeric, parsed } from "./payload.ts";

// ── Appliance.System.All ────────────────────────────────────────────────────────────────────────

export function systemAllRequest(): DeviceRequest {
  return { method: "GET", namespace: Namespace.SystemAll, payload: {} };
}

const systemAllReplySchema = z.object({
  all: z
    .object({
      system: z
        .object({
          hardware: z
            .object({
              type: z.string().min(1),
              subType: z.string().default(""),
              chipType: z.string().default(""),
              version: z.string().default(""),
              uuid: looksLikeUuid,
              macAddress: looksLikeMac,
            })
            .loose(),
          firmware: z
            .object({
              version: z.string().default(""),
              innerIp: z.string().default(""),
              userId: z.union([z.number(), z.string()]).optional(),
              server: z.string().optional(),
              // Anything: "" when unset, and traces anonymise it ("@2"); only a real port is reported.
              port: z.unknown().optional(),
            })
            .loose(),
          online: z.object({ status: numeric.optional() }).loose().optional(),
        })
        .loose(),
    })
    .loose(),
});

export interface SystemAllSummary {
  type: string;
  subType: string;
  chipType: string;
  hardwareVersion: string;
  firmwareVersion: string;
  /** Verbatim, as the device spells it: the WifiX and LAN keys hash the device's own spelling. */
  uuid: string;
  macAddress: string;
  innerIp: string;
  /** Decimal string; "" when the device reports none. */
  userId: string;
  /** The broker the device dials now, when it has one. */
  server?: string;
  port?: number;
  /** `system.online.status`: 1 while it has a broker session, 0 not online (pairing), 2 offline (§3). */
  onlineStatus?: number;
  raw: Record<string, unknown>;
}

export function parseSystemAll(payload: unknown): SystemAllSummary {
  const { all } = parsed(systemAllReplySchema, Namespace.SystemAll, payload);
  const { hardware, firmware, online } = all.system;
  const parsedPort = portSchema.safeParse(firmware.port === "" ? undefined : firmware.port);
  const port = parsedPort.success ? parsedPort.data : undefined;
  return {
    type: hardware.type,
    subType: hardware.subType,
    chipType: hardware.chipType,
    hardwareVersion: hardware.version,
    firmwareVersion: firmware.version,
    uuid: hardware.uuid,
    macAddress: hardware.macAddress,
    innerIp: firmware.innerIp,
    userId: firmware.userId === undefined ? "" : String(firmware.userId),
    ...(firmware.server ? { server: firmware.server } : {}),
    ...(port ? { port } : {}),
    ...(online?.status === undefined ? {} : { onlineStatus: online.status }),
    raw: all,
  };
}

// ── Appliance.System.Ability ────────────────────────────────────────────────────────────────────

export function systemAbilityRequest(): DeviceRequest {
  return { method: "GET", namespace: Namespace.SystemAbility, payload: {} };
}

const abilityReplySchema = z.object({ ability: z.record(z.string(), z.unknown()) });

/** Namespace -> its parameters, e.g. `"Appliance.Control.Multiple": { maxCmdNum: 5 }`. */
export function parseAbilities(payload: unknown): Record<string, unknown> {
  return parsed(abilityReplySchema, Namespace.SystemAbility, payload).ability;
}

// ── Appliance.System.Time ───────────────────────────────────────────────────────────────────────

export function systemTimeRequest(timezone: string, now: Date = new Date()): DeviceRequest {
  const zone = timezone.trim();
  return {
    method: "SET",
    namespace: Namespace.SystemTime,
    payload: { time: { timezone: zone, timestamp: unixSeconds(now), timeRule: timeRules(zone, now) } },
  };
}

export const timeSchema = z
  .object({
    timestamp: numeric,
    timezone: z.string().default(""),
    timeRule: z.array(z.tuple([z.number(), z.number(), z.number()])).default([]),
  })
  .loose();

export function parseSystemTime(payload: unknown): z.output<typeof timeSchema> {
  return parsed(z.object({ time: timeSchema }), Namespace.SystemTime, payload).time;
}

// ── Appliance.System.Clock ──────────────────────────────────────────────────────────────────────

/** The device PUSHes its uptime (or epoch) this way; the cloud answers with the epoch now (§5.5). */
export function clockPayload(timestamp: number): Record<string, unknown> {
  return { clock: { timestamp } };
}

export function parseClock(payload: unknown): { timestamp: number } {
  return parsed(z.object({ clock: z.object({ timestamp: numeric }).loose() }), Namespace.SystemClock, payload)
    .clock;
}
