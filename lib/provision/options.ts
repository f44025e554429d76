import { z } from "zod";
import { type FlagSpec, readCaFile, single, stackFlag, UsageError } from "../cli/flags.ts";
import { type AuthMode, authModeSchema, deviceNameSchema, timezoneSchema } from "../config/stack.ts";
import {
  type BrokerAddress,
  brokerAddressSchema,
  brokerPairSchema,
  redactBrokerUrl,
} from "../meross/broker-url.ts";
import { withoutUndefined } from "../meross/fields.ts";
import {
  deviceKeySchema,
  hostSchema,
  macAddressSchema,
  newDeviceKeySchema,
  portSchema,
  ssidSchema,
  userIdSchema,
  uuidSchema,
  wifiPasswordSchema,
} from "../meross/identifiers.ts";
import { isOpenEncryption, WifiCipher, WifiEncryption, type WifiNetwork } from "../meross/messages/index.ts";
import { usesPlainMqtt } from "../mqtt/connection.ts";
import type { MysqlSettings, StackOutputs } from "../stack/outputs.ts";
import { type KeyPolicy, keyPolicyFrom } from "./keys.ts";

/**
 * The flags of `provision.mjs info|setup` and `devices.mjs`, validated in full before anything is
 * sent anywhere. Schema keys are the flag names, so every message names the flag to fix.
 */

const SHARED_STRING_FLAGS = ["ip", "key", "current-key", "user", "mqtt", "stack", "mac", "uuid"];

export const INFO_FLAGS: FlagSpec = {
  string: [...SHARED_STRING_FLAGS],
  boolean: ["json", "show-password", "wifi-list", "help"],
  default: { ip: "10.10.10.1" },
};

/** Normally read from the device's own scan of the SSID; given, they override it. */
const WIFI_DETAIL_FLAGS = ["wifi-bssid", "wifi-channel", "wifi-encryption", "wifi-cipher"] as const;
const WIFI_FLAGS = ["wifi-ssid", "wifi-pass", ...WIFI_DETAIL_FLAGS] as const;

export const SETUP_FLAGS: FlagSpec = {
  string: [...SHARED_STRING_FLAGS, ...WIFI_FLAGS, "timezone", "name", "auth-mode", "ca", "mysql", "timeout"],
  boolean: ["wifi", "set-time", "wait", "json", "help"],
  default: { ip: "10.10.10.1", wifi: true, wait: true },
};

export const DEVICES_FLAGS: FlagSpec = {
  string: ["mysql", "stack"],
  boolean: ["json", "help"],
  default: {},
};

const optionalText = <T extends z.ZodType>(schema: T) => single(schema).optional();

export interface DeviceAddress {
  host: string;
  port: number;
}

/** `--ip`: the device's address, `host` or `host:port` (the simulator listens on a chosen port). */
export const deviceAddressSchema = z
  .string()
  .trim()
  .transform((text, ctx): DeviceAddress => {
    const match = /^(?:http:\/\/)?([^:/]+)(?::(\d+))?\/?(?:config)?$/i.exec(text);
    const host = hostSchema.safeParse(match?.[1] ?? "");
    const port = portSchema.safeParse(match?.[2] ?? 80);
    if (!match || !host.success || !port.success) {
      ctx.addIssue({
        code: "custom",
        message: "must be the device's IPv4 address or host name, optionally with :port (default 10.10.10.1)",
      });
      return z.NEVER;
    }
    return { host: host.data, port: port.data };
  });

function enumOrNumber(names: Record<string, number>, max: number, hint: string) {
  return z
    .string()
    .trim()
    .transform((text, ctx) => {
      const byName = names[text.toUpperCase()];
      const value = byName ?? (/^\d+$/.test(text) ? Number(text) : Number.NaN);
      if (!(value >= 0 && value <= max)) {
        ctx.addIssue({ code: "custom", message: hint });
        return z.NEVER;
      }
      return value;
    });
}

const channelFlag = z
  .string()
  .trim()
  .regex(/^\d+$/, "must be a 2.4 GHz channel, 1 to 13")
  .transform(Number)
  .pipe(
    z.number().min(1, "must be a 2.4 GHz channel, 1 to 13").max(13, "must be a 2.4 GHz channel, 1 to 13"),
  );

/** `mysql://user:password@host:port/database`, the override for the stack's `mysql` output. */
export const mysqlUrlSchema = z
  .string()
  .trim()
  .transform((text, ctx): MysqlSettings => {
    let url: URL | undefined;
    try {
      url = new URL(text);
    } catch {
      url = undefined;
    }
    const database = decodeURIComponent(url?.pathname.replace(/^\//, "") ?? "");
    const host = z.union([hostSchema, z.literal("localhost")]).safeParse(url?.hostname ?? "");
    if (url?.protocol !== "mysql:" || !url.username || !database || !host.success) {
      ctx.addIssue({
        code: "custom",
        message: "must look like mysql://user:password@127.0.0.1:3306/database",
      });
      return z.NEVER;
    }
    return {
      host: host.data,
      port: url.port ? Number(url.port) : 3306,
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database,
    };
  });

/** Keeps the URLs as typed (the watcher honours the scheme) after checking each is a broker address. */
const brokerUrlsFlag = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((value) =>
    (value === undefined ? [] : Array.isArray(value) ? value : [value]).map((url) => url.trim()),
  )
  .superRefine((urls, ctx) => {
    for (const url of urls) {
      const parsed = brokerAddressSchema.safeParse(url);
      if (!parsed.success) {
        ctx.addIssue({
          code: "custom",
          message: `${JSON.stringify(redactBrokerUrl(url))} ${parsed.error.issues[0]?.message}`,
        });
      }
    }
  });

const sharedShape = {
  ip: single(deviceAddressSchema),
  key: optionalText(deviceKeySchema),
  "current-key": optionalText(deviceKeySchema),
  user: optionalText(userIdSchema),
  mqtt: brokerUrlsFlag,
  stack: stackFlag,
  mac: optionalText(macAddressSchema),
  uuid: optionalText(uuidSchema),
  json: z.boolean().default(false),
};

export const infoFlagsSchema = z.object({
  ...sharedShape,
  "show-password": z.boolean().default(false),
  "wifi-list": z.boolean().default(false),
});
export type InfoFlags = z.output<typeof infoFlagsSchema>;

export const setupFlagsSchema = z
  .object({
    ...sharedShape,
    key: optionalText(newDeviceKeySchema),
    "wifi-ssid": optionalText(ssidSchema),
    "wifi-pass": optionalText(wifiPasswordSchema),
    "wifi-bssid": optionalText(macAddressSchema),
    "wifi-channel": optionalText(channelFlag),
    "wifi-encryption": optionalText(
      enumOrNumber(WifiEncryption, 8, "must be 0 to 8 or a name such as WPA2PSK (6)"),
    ),
    "wifi-cipher": optionalText(enumOrNumber(WifiCipher, 4, "must be 0 to 4 or a name such as AES (3)")),
    wifi: z.boolean().default(true),
    "set-time": z.boolean().default(false),
    timezone: optionalText(timezoneSchema),
    name: optionalText(deviceNameSchema),
    "auth-mode": optionalText(authModeSchema),
    ca: optionalText(z.string().trim().min(1, "needs the path of the broker's CA certificate (PEM)")),
    mysql: optionalText(mysqlUrlSchema),
    timeout: optionalText(
      z
        .string()
        .trim()
        .regex(/^\d+$/, "must be a number of seconds")
        .transform(Number)
        .pipe(z.number().min(1, "must be at least 1 second").max(3600, "must be at most 3600 seconds")),
    ),
    wait: z.boolean().default(true),
  })
  .superRefine((flags, ctx) => {
    if (flags.timezone !== undefined && !flags["set-time"]) {
      ctx.addIssue({ code: "custom", path: ["timezone"], message: "does nothing without --set-time" });
    }
    if (!flags.wifi) {
      for (const flag of WIFI_FLAGS) {
        if (flags[flag] !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: [flag],
            message: "does nothing with --no-wifi; drop one of them",
          });
        }
      }
      return;
    }
    if (flags["wifi-ssid"] === undefined && flags["wifi-bssid"] === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["wifi-ssid"],
        message:
          "is required: the 2.4 GHz network the device should join (or --wifi-bssid, or --no-wifi for a device already on it)",
      });
    }
    const encryption = flags["wifi-encryption"];
    if (flags["wifi-pass"] === undefined && encryption !== undefined && !isOpenEncryption(encryption)) {
      ctx.addIssue({
        code: "custom",
        path: ["wifi-pass"],
        message: `is required with --wifi-encryption ${encryption}; leave both out for an open network`,
      });
    }
    if (flags["wifi-pass"] !== undefined && isOpenEncryption(encryption)) {
      ctx.addIssue({
        code: "custom",
        path: ["wifi-pass"],
        message: "is for a secured network, but --wifi-encryption says it is open (0); drop one of them",
      });
    }
  });
export type SetupFlags = z.output<typeof setupFlagsSchema>;

export const devicesFlagsSchema = z.object({
  mysql: optionalText(mysqlUrlSchema),
  stack: stackFlag,
  json: z.boolean().default(false),
});
export type DevicesFlags = z.output<typeof devicesFlagsSchema>;

/** Everything `setup` needs, merged from the flags and the stack outputs (flags win). */
export interface SetupSettings {
  device: DeviceAddress;
  /** What requests are signed with until Config.Key: the device's current key. */
  signingKey: string;
  /** Which key the device is given (its own, or the shared one), applied once its uuid is known. */
  keyPolicy: KeyPolicy;
  userId: string;
  brokers: [BrokerAddress, BrokerAddress];
  /** The first broker as written, for this machine's own connection (it honours mqtt:// vs mqtts://). */
  brokerUrl: string;
  caPem?: string;
  authMode: AuthMode;
  mysql?: MysqlSettings;
  wifi?: WifiNetwork;
  /** The user gave bssid/channel/encryption/cipher: do not replace them with the device's scan. */
  wifiDetailsGiven: boolean;
  timezone?: string;
  name?: string;
  expected: { mac?: string; uuid?: string };
  recordInStack: boolean;
  wait: boolean;
  timeoutMs: number;
}

export const DEFAULT_ONLINE_TIMEOUT_SECONDS = 180;

function hostTimezone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/**
 * A device setup records in the stack gets its broker login rebuilt from the stack's userId and keys
 * at every `pulumi up`: a different --key or --user would work until then and lock the plug out
 * after. Such a device is provisioned with --no-stack, and nothing records it.
 */
function refuseLoginTheStackWouldUndo(flags: SetupFlags, outputs: StackOutputs): void {
  const differs = [
    flags.key !== undefined && flags.key !== outputs.deviceKey && "--key is not the stack's deviceKey",
    flags.user !== undefined &&
      flags.user !== outputs.userId &&
      `--user is not the stack's userId (${outputs.userId})`,
  ].filter((reason): reason is string => typeof reason === "string");
  if (differs.length === 0) return;
  throw new UsageError(
    `${differs.join(", and ")}: the next \`pulumi up\` would rebuild this device's broker login from ` +
      "the stack's and lock the plug out. Leave them out (the stack gives the device its key and user " +
      "id), or add --no-stack to provision it without recording it in the stack.",
  );
}

export async function resolveSetupSettings(
  flags: SetupFlags,
  outputs?: StackOutputs,
  options: { rotate?: boolean } = {},
): Promise<SetupSettings> {
  if (outputs) refuseLoginTheStackWouldUndo(flags, outputs);
  const missing: string[] = [];
  // brokerHost, the stack's first URL, is the address meant for devices; the extra names are for
  // other clients, so by default the device gets brokerHost as both gateways (protocol §4.3).
  const brokerUrls = flags.mqtt.length > 0 ? flags.mqtt : (outputs?.brokerUrls.slice(0, 1) ?? []);
  if (brokerUrls.length === 0) missing.push("--mqtt mqtts://<broker host>:<port>");
  const keyPolicy = keyPolicyFrom({ ...withoutUndefined({ key: flags.key }), ...options }, outputs ?? {});
  if (keyPolicy === undefined) missing.push("--key <the key devices sign with, 16+ characters>");
  const userId = flags.user ?? outputs?.userId;
  if (userId === undefined) missing.push("--user <numeric user id>");
  const authMode = flags["auth-mode"] ?? outputs?.authMode ?? "anonymous";
  const mysql = flags.mysql ?? outputs?.mysql;
  if (authMode === "mysql" && !mysql) missing.push("--mysql mysql://user:password@host:port/database");
  if (
    flags.wait &&
    flags.ca === undefined &&
    !outputs?.caCertificatePem &&
    brokerUrls.some((url) => !usesPlainMqtt(url))
  ) {
    missing.push("--ca <broker CA certificate file> (to watch the device come online; or --no-wait)");
  }
  if (missing.length > 0) {
    throw new UsageError(
      `${outputs ? "the stack outputs and flags" : "without the stack (--no-stack), the flags"} do not say:\n` +
        missing.map((item) => `  ${item}`).join("\n"),
    );
  }
  const caPem = flags.ca !== undefined ? await readCaFile(flags.ca) : outputs?.caCertificatePem;
  const open = flags["wifi-pass"] === undefined;
  const wifi: WifiNetwork | undefined =
    flags.wifi && (flags["wifi-ssid"] !== undefined || flags["wifi-bssid"] !== undefined)
      ? withoutUndefined({
          ssid: flags["wifi-ssid"],
          // No password: an open network, sent as Custom-Meross-Pairer does (empty, OPEN/NONE).
          password: flags["wifi-pass"] ?? "",
          bssid: flags["wifi-bssid"],
          channel: flags["wifi-channel"],
          encryption: flags["wifi-encryption"] ?? (open ? WifiEncryption.OPEN : undefined),
          cipher: flags["wifi-cipher"] ?? (open ? WifiCipher.NONE : undefined),
        })
      : undefined;
  return {
    device: flags.ip,
    signingKey: flags["current-key"] ?? (keyPolicy as KeyPolicy).keys.sharedKey,
    keyPolicy: keyPolicy as KeyPolicy,
    userId: userId as string,
    brokers: brokerPairSchema.parse(brokerUrls),
    brokerUrl: brokerUrls[0] as string,
    ...(caPem ? { caPem } : {}),
    authMode,
    ...(authMode === "mysql" && mysql ? { mysql } : {}),
    ...(wifi ? { wifi } : {}),
    wifiDetailsGiven: WIFI_DETAIL_FLAGS.some((flag) => flags[flag] !== undefined),
    ...(flags["set-time"] ? { timezone: flags.timezone ?? hostTimezone() } : {}),
    ...(flags.name ? { name: flags.name } : {}),
    expected: withoutUndefined({ mac: flags.mac, uuid: flags.uuid }),
    recordInStack: outputs !== undefined,
    wait: flags.wait,
    timeoutMs: (flags.timeout ?? DEFAULT_ONLINE_TIMEOUT_SECONDS) * 1000,
  };
}
