import { z } from "zod";
import { type AuthMode, authModeSchema } from "../config/stack.ts";
import type { ExitCategory } from "../exit-category.ts";
import { brokerAddressSchema } from "../meross/broker-url.ts";
import {
  deviceKeySecretSchema,
  type KeyScheme,
  keySchemeSchema,
  type StackKeys,
} from "../meross/device-key.ts";
import { deviceKeySchema, hostSchema, portSchema, userIdSchema } from "../meross/identifiers.ts";
import { SECRET_ORIGINS, type SecretOrigin } from "../store/accounts.ts";
import { PulumiCommandError, type PulumiRunner } from "./pulumi-cli.ts";

export const mysqlSettingsSchema = z.object({
  host: z.union([hostSchema, z.literal("localhost")]),
  port: portSchema,
  user: z.string().min(1),
  password: z.string(),
  database: z.string().min(1),
});
export type MysqlSettings = z.infer<typeof mysqlSettingsSchema>;

/** One entry of the `controllerCredentials` output: a broker login for Home Assistant, the scripts… */
const controllerLoginSchema = z.object({ username: z.string().min(1), password: z.string().min(1) });
export type ControllerLogin = z.infer<typeof controllerLoginSchema>;

/** What `index.ts` exports and the scripts need: the names agreed with the stack's owner. */
const rawOutputsSchema = z.object({
  brokerUrls: z
    .array(z.string())
    .min(1)
    .refine(
      (urls) => urls.every((url) => brokerAddressSchema.safeParse(url).success),
      "must be mqtts://host:port",
    ),
  caCertificatePem: z.string().includes("BEGIN CERTIFICATE", { message: "must be a PEM certificate" }),
  userId: userIdSchema,
  deviceKey: deviceKeySchema,
  deviceKeyOrigin: z.enum(SECRET_ORIGINS).optional(),
  keyMode: keySchemeSchema.optional(),
  deviceKeySecret: deviceKeySecretSchema.optional(),
  deviceKeySecretOrigin: z.enum(SECRET_ORIGINS).optional(),
  previousDeviceKeySecret: deviceKeySecretSchema.optional(),
  authMode: authModeSchema.optional(),
  mysql: mysqlSettingsSchema.nullish(),
  controllerCredentials: z.record(z.string(), controllerLoginSchema).nullish(),
});

/** `pulumi stack output --json --show-secrets` as the stack prints it. */
export type StackOutputsJson = z.input<typeof rawOutputsSchema>;

export interface StackOutputs {
  brokerUrls: string[];
  caCertificatePem: string;
  userId: string;
  deviceKey: string;
  /** Absent on a stack from before this output: such a key counts as chosen (slow hash, the safe side). */
  deviceKeyOrigin?: SecretOrigin;
  /** Which key provisioning gives a new device; absent (a stack from before per-device keys): shared. */
  keyMode?: KeyScheme;
  /** What per-device keys are derived from; absent on a stack from before per-device keys. */
  deviceKeySecret?: string;
  deviceKeySecretOrigin?: SecretOrigin;
  /** While the stack secret is rotated: the one before, for devices not moved yet. */
  previousDeviceKeySecret?: string;
  authMode: AuthMode;
  mysql?: MysqlSettings;
  /** The stack's controller logins by config name (mysql variant; empty otherwise). */
  controllerLogins: Record<string, ControllerLogin>;
}

export class StackUnavailableError extends Error {
  readonly exitCategory: ExitCategory = "stackOrDatabase";
  constructor(reason: string) {
    super(
      `cannot read the stack outputs: ${reason}. Run this inside the project after \`pulumi up\` ` +
        "(and set PULUMI_CONFIG_PASSPHRASE if the stack uses a passphrase), or pass --no-stack with the values as flags.",
    );
    this.name = "StackUnavailableError";
  }
}

/**
 * The deployed stack's outputs, secrets included (the device key and the MySQL password go to the
 * device and the database, never to the terminal). The variant is the stack's `authMode` output
 * when present, else "mysql" exactly when the stack exports MySQL settings.
 */
export async function readStackOutputs(pulumi: PulumiRunner): Promise<StackOutputs> {
  let stdout: string;
  try {
    stdout = await pulumi.run(["stack", "output", "--json", "--show-secrets"]);
  } catch (error) {
    if (error instanceof PulumiCommandError) throw new StackUnavailableError(error.message);
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new StackUnavailableError("`pulumi stack output --json` did not print JSON");
  }
  if (json && typeof json === "object" && Object.keys(json).length === 0) {
    throw new StackUnavailableError("the stack has no outputs yet (has `pulumi up` run?)");
  }
  const parsed = rawOutputsSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StackUnavailableError(`output ${issue?.path.join(".") || "(root)"} ${issue?.message}`);
  }
  const {
    mysql,
    authMode,
    deviceKeyOrigin,
    keyMode,
    deviceKeySecret,
    deviceKeySecretOrigin,
    previousDeviceKeySecret,
    controllerCredentials,
    ...rest
  } = parsed.data;
  return {
    ...rest,
    ...(deviceKeyOrigin ? { deviceKeyOrigin } : {}),
    ...(keyMode ? { keyMode } : {}),
    ...(deviceKeySecret ? { deviceKeySecret } : {}),
    ...(deviceKeySecretOrigin ? { deviceKeySecretOrigin } : {}),
    ...(previousDeviceKeySecret ? { previousDeviceKeySecret } : {}),
    controllerLogins: controllerCredentials ?? {},
    authMode: authMode ?? (mysql ? "mysql" : "anonymous"),
    ...(mysql ? { mysql } : {}),
  };
}

/** The key material deviceKeyFor needs, from the outputs: every device's key follows from it. */
export function stackKeys(
  outputs: Pick<StackOutputs, "deviceKey" | "deviceKeySecret" | "previousDeviceKeySecret">,
): StackKeys {
  return {
    sharedKey: outputs.deviceKey,
    ...(outputs.deviceKeySecret === undefined ? {} : { keySecret: outputs.deviceKeySecret }),
    ...(outputs.previousDeviceKeySecret === undefined
      ? {}
      : { previousKeySecret: outputs.previousDeviceKeySecret }),
  };
}

/** The stack has no controller login to use; says how to add one. */
export class NoControllerLoginError extends Error {
  override name = "NoControllerLoginError";
  readonly exitCategory: ExitCategory = "stackOrDatabase";
}

const ADD_CONTROLLER_COMMAND = "pulumi config set --path 'controllers[0].name' monitor && pulumi up";

/**
 * A controller login from the stack outputs: the one named `name`, else the first by name (the
 * order of `pulumi stack output` is not the config's, so "first" is alphabetical to be the same
 * on every run).
 */
export function controllerLogin(outputs: StackOutputs, name?: string): ControllerLogin {
  const names = Object.keys(outputs.controllerLogins).sort();
  if (name === undefined) {
    const first = names[0];
    if (first !== undefined) return outputs.controllerLogins[first] as ControllerLogin;
    throw new NoControllerLoginError(
      `the stack has no controller login (controllers in the stack config); add one: ${ADD_CONTROLLER_COMMAND}`,
    );
  }
  const login = outputs.controllerLogins[name];
  if (login !== undefined) return login;
  throw new NoControllerLoginError(
    `the stack has no controller login named ${JSON.stringify(name)} (it has ${names.length > 0 ? names.join(", ") : "none"}); ` +
      "add it to controllers in the stack config and run `pulumi up`",
  );
}
