import { z } from "zod";
import { Namespace } from "./namespace.ts";
import { numeric, parsed } from "./payload.ts";
import { timeSchema } from "./system.ts";

// ── Appliance.Control.Bind ──────────────────────────────────────────────────────────────────────

const bindSchema = z.object({
  bind: z
    .object({
      bindTime: numeric.optional(),
      time: timeSchema.optional(),
      hardware: z.record(z.string(), z.unknown()).optional(),
      firmware: z.record(z.string(), z.unknown()).optional(),
    })
    .loose(),
});

export type BindInfo = z.output<typeof bindSchema>["bind"];

/** What newer firmware SETs after connecting: its System.All hardware/firmware and clock. */
export function bindPayload(bind: BindInfo): Record<string, unknown> {
  return { bind };
}

export function parseBind(payload: unknown): BindInfo {
  return parsed(bindSchema, Namespace.ControlBind, payload).bind;
}

// ── Appliance.Control.ConsumptionConfig ─────────────────────────────────────────────────────────

const consumptionConfigSchema = z.object({
  config: z
    .object({ voltageRatio: numeric, electricityRatio: numeric, maxElectricityCurrent: numeric.optional() })
    .loose(),
});

export type ConsumptionConfig = z.output<typeof consumptionConfigSchema>["config"];

export function consumptionConfigPayload(config: ConsumptionConfig): Record<string, unknown> {
  return { config };
}

export function parseConsumptionConfig(payload: unknown): ConsumptionConfig {
  return parsed(consumptionConfigSchema, Namespace.ControlConsumptionConfig, payload).config;
}
