import { z } from "zod";
import { type FlagSpec, parseOnlyFlags, single, UsageError } from "../cli/flags.ts";
import { hostSchema } from "../meross/identifiers.ts";
import { MODELS, type SimulatedModel } from "./models.ts";

/** The flags of `simulate-device.mjs`. */
const SIMULATE_FLAGS: FlagSpec = {
  string: ["model", "host", "port", "ca"],
  boolean: ["require-session-answers"],
  default: { model: "legacy", host: "127.0.0.1", port: "0" },
};

const simulateFlagsSchema = z.object({
  model: single(z.string()),
  host: single(hostSchema),
  port: single(
    z.coerce
      .number({ error: "must be 0 to 65535 (0: any free port)" })
      .int("must be a whole number")
      .min(0, "must be 0 to 65535 (0: any free port)")
      .max(65535, "must be 0 to 65535 (0: any free port)"),
  ),
  "require-session-answers": z.boolean(),
  ca: single(z.string().min(1, "needs the path of a PEM file")).optional(),
});

export type SimulateFlags = Omit<z.output<typeof simulateFlagsSchema>, "model"> & { model: SimulatedModel };

/** `simulate-device.mjs [flags]`, the words after the script's name. */
export function parseSimulateArguments(args: readonly string[]): SimulateFlags {
  const { model, ...flags } = parseOnlyFlags(args, SIMULATE_FLAGS, simulateFlagsSchema);
  if (!Object.hasOwn(MODELS, model)) {
    throw new UsageError(`--model ${model} is not one of: ${Object.keys(MODELS).join(", ")}`);
  }
  return { model: model as SimulatedModel, ...flags };
}
