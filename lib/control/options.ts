import { z } from "zod";
import { type FlagSpec, parseScriptFlags, readCaFile, single, stackFlag, UsageError } from "../cli/flags.ts";
import { brokerUrlSchema } from "../meross/broker-url.ts";
import { deviceKeyFor } from "../meross/device-key.ts";
import { deviceKeySchema, userIdSchema, uuidSchema } from "../meross/identifiers.ts";
import { type BrokerClientSettings, usesPlainMqtt } from "../mqtt/connection.ts";
import { listStackDevices, type StackDevice } from "../stack/devices.ts";
import { controllerLogin, readStackOutputs, type StackOutputs, stackKeys } from "../stack/outputs.ts";
import { createPulumiRunner } from "../stack/pulumi-cli.ts";
import type { ControllerSettings } from "./client.ts";
import {
  CONTROL_ACTIONS,
  type ControlAction,
  channelSchema,
  controlActionSchema,
  type ResolvedDevice,
  resolveDevice,
  toggleNamespaceFlag,
} from "./toggle.ts";

/**
 * The flags of control.mjs and monitor.mjs, validated before anything connects. Every value can
 * come from the deployed stack (`pulumi stack output`/`config`), and a flag overrides it.
 */

const CONNECTION_FLAGS = ["broker", "ca", "username", "password", "stack"];

const CONTROL_FLAGS: FlagSpec = {
  string: [...CONNECTION_FLAGS, "key", "user", "channel", "timeout", "namespace"],
  boolean: ["json", "help"],
  default: {},
};

const MONITOR_FLAGS: FlagSpec = {
  string: [...CONNECTION_FLAGS, "count"],
  boolean: ["json", "raw", "replies", "help"],
  default: { replies: true },
};

/** Keeps the broker password and the device key out of `ps` and shell history. */
export const SECRET_ENVIRONMENT = { password: "MEROSS_MQTT_PASSWORD", key: "MEROSS_DEVICE_KEY" } as const;

export const DEFAULT_TIMEOUT_SECONDS = 10;

const connectionShape = {
  broker: single(brokerUrlSchema).optional(),
  ca: single(z.string().min(1, "needs a file name")).optional(),
  username: single(z.string().min(1, "must not be empty")).optional(),
  password: single(z.string()).optional(),
  stack: stackFlag,
  json: z.boolean().default(false),
};

const controlFlagsSchema = z.object({
  ...connectionShape,
  key: single(deviceKeySchema).optional(),
  user: single(userIdSchema).optional(),
  channel: single(channelSchema).default(0),
  namespace: single(toggleNamespaceFlag).optional(),
  timeout: single(
    z.coerce
      .number({ error: "must be a number of seconds above 0" })
      .positive("must be a number of seconds above 0"),
  ).default(DEFAULT_TIMEOUT_SECONDS),
});

const monitorFlagsSchema = z.object({
  ...connectionShape,
  raw: z.boolean().default(false),
  replies: z.boolean().default(true),
  count: single(
    z.coerce
      .number({ error: "must be a whole number above 0" })
      .int("must be a whole number above 0")
      .positive("must be a whole number above 0"),
  ).optional(),
});

export type ControlFlags = z.output<typeof controlFlagsSchema>;
export type MonitorFlags = z.output<typeof monitorFlagsSchema>;

export interface ControlCommand {
  device: string;
  action: ControlAction;
  flags: ControlFlags;
}

/** `control.mjs <device> on|off|toggle|status [flags]`, the words after the script's name. */
export function parseControlArguments(args: readonly string[]): ControlCommand {
  const { flags, positional } = parseScriptFlags(args, CONTROL_FLAGS, controlFlagsSchema);
  const [device, action, ...extra] = positional;
  if (device === undefined || action === undefined) {
    throw new UsageError(`give a device and an action: control.mjs <device> ${CONTROL_ACTIONS.join("|")}`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}; see --help`);
  const parsedAction = controlActionSchema.safeParse(action);
  if (!parsedAction.success) throw new UsageError(parsedAction.error.issues[0]?.message ?? "bad action");
  return { device, action: parsedAction.data, flags };
}

export interface MonitorCommand {
  /** Device names or uuids to show; empty shows every device. */
  devices: string[];
  flags: MonitorFlags;
}

/** `monitor.mjs [device ...] [flags]`, the words after the script's name. */
export function parseMonitorArguments(args: readonly string[]): MonitorCommand {
  const { flags, positional } = parseScriptFlags(args, MONITOR_FLAGS, monitorFlagsSchema);
  if (flags.raw && flags.json) throw new UsageError("--raw and --json cannot be combined: pick one output");
  return { devices: positional, flags };
}

/** Where scripts get what the flags leave out; absent with --no-stack. */
export interface StackSource {
  outputs(): Promise<StackOutputs>;
  devices(): Promise<StackDevice[]>;
}

/** The project's stack through lib/stack, read at most once per run and only when asked. */
export function stackSource(projectDir: string, stack: string | false | undefined): StackSource | undefined {
  if (stack === false) return undefined;
  const pulumi = createPulumiRunner({ projectDir, ...(stack === undefined ? {} : { stack }) });
  let outputs: Promise<StackOutputs> | undefined;
  let devices: Promise<StackDevice[]> | undefined;
  return {
    outputs: () => {
      outputs ??= readStackOutputs(pulumi);
      return outputs;
    },
    devices: () => {
      devices ??= listStackDevices(pulumi);
      return devices;
    },
  };
}

type ConnectionFlags = Pick<ControlFlags, "broker" | "ca" | "username" | "password">;

/**
 * Who logs in. Flags and the environment first; on a mysql stack, what they leave out comes from
 * its controller logins: the one --username names, else the first by name.
 */
function brokerLogin(
  flags: ConnectionFlags,
  outputs: StackOutputs | undefined,
  env: NodeJS.ProcessEnv,
): { username?: string; password?: string } {
  const password = flags.password ?? env[SECRET_ENVIRONMENT.password];
  const given = {
    ...(flags.username === undefined ? {} : { username: flags.username }),
    ...(password === undefined ? {} : { password }),
  };
  if (outputs === undefined) {
    if (flags.username !== undefined && password === undefined) {
      throw new UsageError(
        `--username ${flags.username} needs its password: set ${SECRET_ENVIRONMENT.password} (or --password)`,
      );
    }
    return given;
  }
  if (outputs.authMode !== "mysql" || (flags.username !== undefined && password !== undefined)) return given;
  const login = controllerLogin(outputs, flags.username);
  return { username: login.username, password: password ?? login.password };
}

/** The broker, its CA and the login: flags first, then the stack's first broker URL, CA and a controller login. */
export async function resolveBrokerSettings(
  flags: ConnectionFlags,
  outputs: StackOutputs | undefined,
  env: NodeJS.ProcessEnv,
): Promise<BrokerClientSettings> {
  const brokerUrl = flags.broker ?? outputs?.brokerUrls[0];
  if (brokerUrl === undefined) {
    throw new UsageError("--broker mqtts://<host>:<port> is needed without the stack (--no-stack)");
  }
  const ca = flags.ca !== undefined ? await readCaFile(flags.ca) : outputs?.caCertificatePem;
  if (ca === undefined && !usesPlainMqtt(brokerUrl)) {
    throw new UsageError(
      "--ca <the stack's CA certificate file> is needed to check the broker's TLS certificate",
    );
  }
  return { brokerUrl, ...(ca === undefined ? {} : { ca }), ...brokerLogin(flags, outputs, env) };
}

/** "mqtts://host:8883 as home-assistant": where the tool connects and as whom, for progress lines. */
export function brokerAndLogin(settings: BrokerClientSettings): string {
  return settings.username === undefined
    ? settings.brokerUrl
    : `${settings.brokerUrl} as ${settings.username}`;
}

/**
 * The key the device signs with: --key (or the environment) as given, else the one its stack config
 * entry says it holds (its own, or the stack's shared key; a uuid not in the config: the shared key).
 */
function stackKeyOf(
  device: ResolvedDevice | undefined,
  outputs: StackOutputs | undefined,
): string | undefined {
  if (outputs === undefined || device === undefined) return outputs?.deviceKey;
  return deviceKeyFor(device, stackKeys(outputs));
}

export async function resolveControllerSettings(
  flags: ControlFlags,
  outputs: StackOutputs | undefined,
  env: NodeJS.ProcessEnv,
  device?: ResolvedDevice,
): Promise<ControllerSettings> {
  const broker = await resolveBrokerSettings(flags, outputs, env);
  const key = flags.key ?? env[SECRET_ENVIRONMENT.key] ?? stackKeyOf(device, outputs);
  if (key === undefined) {
    throw new UsageError(
      `--key (or ${SECRET_ENVIRONMENT.key}) is needed without the stack: the key devices sign with`,
    );
  }
  const checkedKey = deviceKeySchema.safeParse(key);
  if (!checkedKey.success) throw new UsageError(`--key ${checkedKey.error.issues[0]?.message}`);
  return { ...broker, key: checkedKey.data, userId: flags.user ?? outputs?.userId ?? "0" };
}

/** Flags (and the environment) alone when they say everything, so the stack is read only when needed. */
async function flagsBeforeStack<T>(
  resolve: (outputs: StackOutputs | undefined) => Promise<T>,
  stack: StackSource | undefined,
): Promise<T> {
  try {
    return await resolve(undefined);
  } catch (error) {
    if (!(error instanceof UsageError) || stack === undefined) throw error;
  }
  return resolve(await stack.outputs());
}

export function controllerSettingsFrom(
  flags: ControlFlags,
  stack: StackSource | undefined,
  env: NodeJS.ProcessEnv,
  device?: ResolvedDevice,
): Promise<ControllerSettings> {
  return flagsBeforeStack((outputs) => resolveControllerSettings(flags, outputs, env, device), stack);
}

export function brokerSettingsFrom(
  flags: ConnectionFlags,
  stack: StackSource | undefined,
  env: NodeJS.ProcessEnv,
): Promise<BrokerClientSettings> {
  return flagsBeforeStack((outputs) => resolveBrokerSettings(flags, outputs, env), stack);
}

/**
 * The config's devices give names; a raw uuid still works when the stack cannot be read (no
 * Pulumi CLI on this machine), a name does not.
 */
export async function devicesFrom(stack: StackSource | undefined, needed: boolean): Promise<StackDevice[]> {
  if (stack === undefined) return [];
  try {
    return await stack.devices();
  } catch (error) {
    if (needed) throw error;
    return [];
  }
}

export async function resolveDeviceFrom(
  identifier: string,
  stack: StackSource | undefined,
): Promise<ResolvedDevice> {
  const isUuid = uuidSchema.safeParse(identifier).success;
  if (stack === undefined && !isUuid) {
    throw new UsageError(
      `without the stack (--no-stack), name the device by its 32-hex uuid, not ${JSON.stringify(identifier)}`,
    );
  }
  return resolveDevice(identifier, await devicesFrom(stack, !isUuid));
}
