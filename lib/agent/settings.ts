import { readFileSync } from "node:fs";
import { z } from "zod";
import { refuseTimezoneForMerossLan, sessionAnswersSchema } from "../config/stack.ts";
import { brokerUrlSchema } from "../meross/broker-url.ts";
import { deviceKeySecretSchema, keyGenerationSchema } from "../meross/device-key.ts";
import { deviceKeySchema, userIdSchema, uuidSchema } from "../meross/identifiers.ts";
import { timeRules } from "../meross/time-rules.ts";

/**
 * What the agent container is told: one JSON file written by components/agent.ts (secret, since it
 * holds the device key and the agent's broker password), and optional environment overrides for
 * running the agent by hand.
 */
export const agentSettingsSchema = z
  .object({
    brokerUrl: brokerUrlSchema,
    ca: z.string().includes("BEGIN CERTIFICATE", { message: "must be a PEM certificate" }).optional(),
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    key: deviceKeySchema,
    /** Per-device keys are derived from it (lib/meross/device-key.ts); absent: every device has `key`. */
    keySecret: deviceKeySecretSchema.optional(),
    /** The stack secret before the last rotation, while devices still hold keys from it. */
    previousKeySecret: deviceKeySecretSchema.optional(),
    /** Per-device generations above 1, by uuid, as the stack config last said. */
    keyGenerations: z.record(uuidSchema, keyGenerationSchema).optional(),
    userId: userIdSchema,
    timezone: z
      .string()
      .refine((zone) => {
        try {
          timeRules(zone);
          return true;
        } catch {
          return false;
        }
      }, "must be an IANA time zone such as Europe/Dublin")
      .optional(),
    /** "meross_lan": Home Assistant answers the devices, so the agent answers nothing and sets no zone. */
    sessionAnswers: sessionAnswersSchema.default("agent"),
  })
  .strict()
  .superRefine(refuseTimezoneForMerossLan);

export type AgentSettings = z.output<typeof agentSettingsSchema>;

/** The environment variables the entry point reads; the component sets only the first. */
export const AGENT_ENVIRONMENT = {
  settingsFile: "AGENT_SETTINGS_FILE",
  brokerUrl: "AGENT_BROKER_URL",
  caFile: "AGENT_CA_FILE",
  username: "AGENT_USERNAME",
  password: "AGENT_PASSWORD",
  key: "AGENT_KEY",
  keySecret: "AGENT_KEY_SECRET",
  userId: "AGENT_USER_ID",
  timezone: "AGENT_TIMEZONE",
  sessionAnswers: "AGENT_SESSION_ANSWERS",
} as const;

const SECRET_FIELDS = new Set(["key", "keySecret", "previousKeySecret", "password"]);

export class AgentSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AgentSettingsError";
  }
}

/** Validates settings; the error names every bad field but never repeats a secret's value. */
export function parseAgentSettings(input: unknown, source: string): AgentSettings {
  const parsed = agentSettingsSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const field = issue.path.join(".") || "(settings)";
    return `${field}: ${SECRET_FIELDS.has(field) ? issue.message.replace(/".*"/, "(hidden)") : issue.message}`;
  });
  throw new AgentSettingsError(`bad agent settings in ${source}: ${problems.join("; ")}`);
}

/** The file named by AGENT_SETTINGS_FILE (if any), then each AGENT_* variable on top. */
export function loadAgentSettings(
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => string = (path) => readFileSync(path, "utf8"),
): AgentSettings {
  const file = env[AGENT_ENVIRONMENT.settingsFile];
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFile(file);
    } catch (error) {
      throw new AgentSettingsError(
        `cannot read ${AGENT_ENVIRONMENT.settingsFile}=${file}: ${(error as Error).message}`,
      );
    }
    try {
      fromFile = JSON.parse(text);
    } catch {
      throw new AgentSettingsError(`${file} is not JSON`);
    }
  }
  const caFile = env[AGENT_ENVIRONMENT.caFile];
  const fromEnv = Object.fromEntries(
    Object.entries({
      brokerUrl: env[AGENT_ENVIRONMENT.brokerUrl],
      ca: caFile ? readFile(caFile) : undefined,
      username: env[AGENT_ENVIRONMENT.username],
      password: env[AGENT_ENVIRONMENT.password],
      key: env[AGENT_ENVIRONMENT.key],
      keySecret: env[AGENT_ENVIRONMENT.keySecret],
      userId: env[AGENT_ENVIRONMENT.userId],
      timezone: env[AGENT_ENVIRONMENT.timezone],
      sessionAnswers: env[AGENT_ENVIRONMENT.sessionAnswers],
    }).filter(([, value]) => value !== undefined && value !== ""),
  );
  const source = file ? `${file} and the AGENT_* environment` : "the AGENT_* environment";
  return parseAgentSettings({ ...fromFile, ...fromEnv }, source);
}
