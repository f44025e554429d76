import { z } from "zod";
import {
  deviceKeySecretSchema,
  keyGenerationSchema,
  keySchemeSchema,
  keySecretSchema,
} from "../meross/device-key.ts";
import {
  hostSchema,
  isIpv4,
  macAddressSchema,
  newDeviceKeySchema,
  portSchema,
  userIdSchema,
  uuidSchema,
} from "../meross/identifiers.ts";
import { cacheKeyClash, cacheKeyClashMessage, SECRET_ORIGINS, type SecretOrigin } from "../store/accounts.ts";

/**
 * The stack configuration, validated once at the start of `pulumi up`. Field rules come from
 * lib/meross/identifiers.ts, so a MAC or a host is judged the same here, in the scripts and on
 * the device. No Pulumi import: index.ts hands in the raw values.
 */

/** How clients log in to the broker; the stack, the rendered config and the scripts all mean these two. */
export const AUTH_MODES = ["anonymous", "mysql"] as const;
export type AuthMode = (typeof AUTH_MODES)[number];
export const authModeSchema = z.enum(AUTH_MODES, {
  error: 'must be "mysql" (logins per device) or "anonymous" (no logins)',
});

/** The session agent's broker login; controllers may not take this name. */
export const SERVICE_ACCOUNT_NAME = "session-agent";

/**
 * The maintained continuation of mosquitto-go-auth (github.com/lhns/mosquitto-go-auth; iegomez's was
 * archived in 2025 with Mosquitto 2.0.18): release 3.5.0 with Mosquitto 2.1.2 on Debian bookworm,
 * pinned by its exact tag. The stand-in CI tests against follows this release (docs/testing.md).
 */
const GO_AUTH_IMAGE = "ghcr.io/lhns/mosquitto-go-auth:3.5.0-mosquitto_2.1.2";

export const DEFAULT_IMAGES = {
  /**
   * The anonymous variant runs the same image without loading the plugin: the same Mosquitto 2.1.2,
   * and Debian bookworm's OpenSSL 3.0, which still offers the RSA key-exchange ciphers older plugs
   * need (AES128-SHA) and is the OpenSSL the TLS tests run against on Debian 12. The official
   * eclipse-mosquitto 2.1 line is Alpine-only (eclipse-mosquitto:2.1.2-alpine, a newer OpenSSL these
   * tests cannot check); it still works as an override.
   */
  mosquitto: GO_AUTH_IMAGE,
  goAuth: GO_AUTH_IMAGE,
  database: "mariadb:11.8",
  agent: "node:20-alpine",
} as const;

export const ipv4Schema = z
  .string()
  .trim()
  .refine(isIpv4, "must be an IPv4 address such as 0.0.0.0 (all addresses) or 192.168.1.10");

/** A name people read in logs and outputs; also safe inside an MQTT topic and a mosquitto.conf line. */
export const deviceNameSchema = z
  .string()
  .trim()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/,
    "must be 1 to 64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit",
  );

/** A controller's login and the `<name>` in its reply topic `/app/<userId>-<name>/subscribe`. */
export const controllerNameSchema = z
  .string()
  .trim()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (it is the MQTT login)",
  )
  .refine((name) => name !== SERVICE_ACCOUNT_NAME, `is reserved for the session agent's own login`);

/**
 * A device as provisioning records it. `keyScheme` says which key it holds (absent: the shared key,
 * as every device provisioned before per-device keys), `keyGeneration` which per-device key.
 */
export const deviceSchema = z
  .strictObject({
    name: deviceNameSchema,
    mac: macAddressSchema,
    uuid: uuidSchema,
    keyScheme: keySchemeSchema.optional(),
    keyGeneration: keyGenerationSchema.optional(),
    keySecret: keySecretSchema.optional(),
  })
  .refine((device) => device.keyGeneration === undefined || device.keyScheme === "per-device", {
    path: ["keyGeneration"],
    message: 'only means something with keyScheme "per-device"',
  })
  .refine((device) => device.keySecret === undefined || device.keyScheme === "per-device", {
    path: ["keySecret"],
    message: 'only means something with keyScheme "per-device"',
  });

export const controllerSchema = z.strictObject({ name: controllerNameSchema });

const imageSchema = z
  .string()
  .trim()
  .regex(
    /^[a-z0-9][a-z0-9._/-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/,
    "must be a Docker image reference such as mariadb:11.8 or registry.lan/team/image:tag",
  );

const daysSchema = z.coerce.number().int("must be a whole number of days").min(1, "must be at least 1 day");
const cacheSecondsSchema = z.coerce
  .number()
  .int("must be a whole number of seconds")
  .min(0, "must not be negative")
  .max(86_400, "must be at most 86400 (one day)");

/**
 * go-auth has one switch for its whole cache (auth_opt_cache) and reads a lifetime of 0 as its cache
 * library's default (60 s in 3.5.0's ttlcache, ~30 s in older go-cache builds), not as "off". So the
 * kit takes 0 as "off" only when both lifetimes are 0 (rendered as auth_opt_cache false) and refuses
 * one 0 alone, which the plugin would silently turn into a minute.
 */
export function cacheSecondsProblem(authCacheSeconds: number, aclCacheSeconds: number): string | undefined {
  if ((authCacheSeconds === 0) === (aclCacheSeconds === 0)) return undefined;
  return "authCacheSeconds and aclCacheSeconds must both be 0 (go-auth's cache off) or both at least 1: go-auth reads a single 0 as its default lifetime of 60 s";
}

export const timezoneSchema = z
  .string()
  .trim()
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat("en", { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, "must be an IANA time zone such as Europe/Berlin or America/New_York");

/**
 * Who answers the devices' session messages (Clock, Bind, ConsumptionConfig) and owns their clock,
 * time zone and DST rules. Home Assistant's meross_lan answers every device on the broker it is
 * connected to and cannot be told not to, so when it is there the agent must stand back.
 */
export const SESSION_ANSWERERS = ["agent", "meross_lan"] as const;
export type SessionAnswerer = (typeof SESSION_ANSWERERS)[number];
export const sessionAnswersSchema = z.enum(SESSION_ANSWERERS, {
  error:
    'must be "agent" (the kit\'s session agent answers the devices) or "meross_lan" (Home Assistant\'s meross_lan, connected to this broker, does and the agent stays quiet)',
});

/** One owner for a device's zone: with meross_lan answering, a `timezone` for the agent would fight it. */
export function refuseTimezoneForMerossLan(
  settings: { sessionAnswers?: SessionAnswerer | undefined; timezone?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if (settings.sessionAnswers === "meross_lan" && settings.timezone !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["timezone"],
      input: settings.timezone,
      message:
        "must be unset when sessionAnswers is meross_lan: Home Assistant's meross_lan then sets the devices' clock, zone and DST rules (choose the zone in its device options)",
    });
  }
}

function unique<T>(
  items: readonly T[],
  key: (item: T) => string,
  what: string,
  ctx: z.RefinementCtx,
  path: string,
) {
  const seen = new Map<string, number>();
  items.forEach((item, index) => {
    const value = key(item).toLowerCase();
    const first = seen.get(value);
    if (first === undefined) {
      seen.set(value, index);
    } else {
      ctx.addIssue({
        code: "custom",
        path: [path, index, what],
        input: key(item),
        message: `is already used by ${path}[${first}]; each ${what} may appear only once`,
      });
    }
  });
}

export const stackConfigSchema = z
  .strictObject({
    brokerHost: hostSchema,
    brokerExtraNames: z.array(hostSchema).default([]),
    tlsPort: portSchema.default(8883),
    tlsBindAddress: ipv4Schema.default("0.0.0.0"),
    plainListener: z.strictObject({ address: ipv4Schema, port: portSchema.default(1883) }).optional(),
    authMode: authModeSchema.default("mysql"),
    userId: userIdSchema,
    deviceKey: newDeviceKeySchema.optional(),
    /** Only with deviceKey: "generated" when it is a pinned generated key (it then keeps the fast hash). */
    deviceKeyOrigin: z.enum(SECRET_ORIGINS).optional(),
    /** Which key provisioning gives a device; docs/security.md says why per-device is the default. */
    keyMode: keySchemeSchema.default("per-device"),
    /** What per-device keys are derived from; generated by the stack when unset. */
    deviceKeySecret: deviceKeySecretSchema.optional(),
    /** Only with deviceKeySecret: "generated" when it is a pinned generated secret (fast hash kept). */
    deviceKeySecretOrigin: z.enum(SECRET_ORIGINS).optional(),
    /** The secret before the last rotation, kept while devices marked keySecret "previous" move. */
    previousDeviceKeySecret: deviceKeySecretSchema.optional(),
    devices: z.array(deviceSchema).default([]),
    controllers: z.array(controllerSchema).default([]),
    certificateValidityDays: daysSchema.default(365),
    certificateRenewalDays: z.coerce.number().int("must be a whole number of days").min(0).default(30),
    caValidityDays: daysSchema.default(3650),
    images: z
      .strictObject({
        mosquitto: imageSchema.default(DEFAULT_IMAGES.mosquitto),
        goAuth: imageSchema.default(DEFAULT_IMAGES.goAuth),
        database: imageSchema.default(DEFAULT_IMAGES.database),
        agent: imageSchema.default(DEFAULT_IMAGES.agent),
      })
      .default({ ...DEFAULT_IMAGES }),
    databasePort: portSchema.default(13306),
    authCacheSeconds: cacheSecondsSchema.default(30),
    aclCacheSeconds: cacheSecondsSchema.default(30),
    timezone: timezoneSchema.optional(),
    sessionAnswers: sessionAnswersSchema.default("agent"),
    brokerDebugLog: z
      .union([z.boolean(), z.stringbool({ error: "must be true or false" })], {
        error: "must be true or false",
      })
      .default(false),
  })
  .superRefine((config, ctx) => {
    unique(config.devices, (device) => device.name, "name", ctx, "devices");
    unique(config.devices, (device) => device.mac, "mac", ctx, "devices");
    unique(config.devices, (device) => device.uuid, "uuid", ctx, "devices");
    unique(config.controllers, (controller) => controller.name, "name", ctx, "controllers");
    const logins = [SERVICE_ACCOUNT_NAME, ...config.controllers.map((controller) => controller.name)];
    const clash = cacheKeyClash(logins);
    if (clash) {
      const index = config.controllers.findIndex((controller) => controller.name === clash.shorter);
      const at =
        index === -1 ? config.controllers.findIndex((controller) => controller.name === clash.longer) : index;
      ctx.addIssue({
        code: "custom",
        path: ["controllers", at, "name"],
        input: config.controllers[at]?.name,
        message: cacheKeyClashMessage(clash),
      });
    }
    refuseTimezoneForMerossLan(config, ctx);
    if (config.deviceKeyOrigin !== undefined && config.deviceKey === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["deviceKeyOrigin"],
        input: config.deviceKeyOrigin,
        message: "only means something with deviceKey set (without it the stack generates the key)",
      });
    }
    const cacheProblem = cacheSecondsProblem(config.authCacheSeconds, config.aclCacheSeconds);
    if (cacheProblem) {
      const key = config.authCacheSeconds === 0 ? "authCacheSeconds" : "aclCacheSeconds";
      ctx.addIssue({ code: "custom", path: [key], input: 0, message: cacheProblem });
    }
    if (config.deviceKeySecretOrigin !== undefined && config.deviceKeySecret === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["deviceKeySecretOrigin"],
        input: config.deviceKeySecretOrigin,
        message: "only means something with deviceKeySecret set (without it the stack generates the secret)",
      });
    }
    if (config.previousDeviceKeySecret === undefined) {
      config.devices.forEach((device, index) => {
        if (device.keySecret === undefined) return;
        ctx.addIssue({
          code: "custom",
          path: ["devices", index, "keySecret"],
          input: device.keySecret,
          message:
            "needs previousDeviceKeySecret, the secret this device's key comes from; run `npx zx scripts/provision.mjs rekey` for it, or set previousDeviceKeySecret again",
        });
      });
    }
    if (config.certificateRenewalDays >= config.certificateValidityDays) {
      ctx.addIssue({
        code: "custom",
        path: ["certificateRenewalDays"],
        input: config.certificateRenewalDays,
        message: `must be less than certificateValidityDays (${config.certificateValidityDays})`,
      });
    }
    if (config.caValidityDays < config.certificateValidityDays) {
      ctx.addIssue({
        code: "custom",
        path: ["caValidityDays"],
        input: config.caValidityDays,
        message: `must be at least certificateValidityDays (${config.certificateValidityDays}): a certificate cannot outlive its CA`,
      });
    }
    const hostPorts = [
      { key: "tlsPort", port: config.tlsPort },
      ...(config.plainListener ? [{ key: "plainListener.port", port: config.plainListener.port }] : []),
      ...(config.authMode === "mysql" ? [{ key: "databasePort", port: config.databasePort }] : []),
    ];
    hostPorts.forEach(({ key, port }, index) => {
      const earlier = hostPorts.slice(0, index).find((other) => other.port === port);
      if (earlier) {
        ctx.addIssue({
          code: "custom",
          path: key.split("."),
          input: port,
          message: `is already taken by ${earlier.key}; every published port must differ`,
        });
      }
    });
  });

/**
 * Where the stack's device key came from: generated by the stack, or set in the config (a person's
 * choice unless deviceKeyOrigin says it is a pinned generated key).
 */
export function deviceKeyOrigin(config: Pick<StackConfig, "deviceKey" | "deviceKeyOrigin">): SecretOrigin {
  return config.deviceKey === undefined ? "generated" : (config.deviceKeyOrigin ?? "chosen");
}

/** Where deviceKeySecret came from: generated by the stack, or set in the config (chosen unless pinned). */
export function deviceKeySecretOrigin(
  config: Pick<StackConfig, "deviceKeySecret" | "deviceKeySecretOrigin">,
): SecretOrigin {
  return config.deviceKeySecret === undefined ? "generated" : (config.deviceKeySecretOrigin ?? "chosen");
}

export type StackConfigInput = z.input<typeof stackConfigSchema>;
export type StackConfig = z.output<typeof stackConfigSchema>;

/** Keys whose Pulumi config value is JSON (lists and objects); all others are plain text. */
export const STRUCTURED_KEYS: ReadonlySet<string> = new Set([
  "brokerExtraNames",
  "plainListener",
  "devices",
  "controllers",
  "images",
]);

/** Never echoed in an error message. */
const SECRET_KEYS: ReadonlySet<string> = new Set(["deviceKey", "deviceKeySecret", "previousDeviceKeySecret"]);

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Turns Pulumi's flat string map (`<project>:<key>` → text) into the object the schema reads:
 * only this project's keys, JSON parsed for list and object keys.
 */
export function rawStackConfig(values: Record<string, string>, project: string): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [fullKey, text] of Object.entries(values)) {
    if (!fullKey.startsWith(`${project}:`)) continue;
    const key = fullKey.slice(project.length + 1);
    if (!STRUCTURED_KEYS.has(key)) {
      raw[key] = text;
      continue;
    }
    try {
      raw[key] = JSON.parse(text);
    } catch {
      problems.push(
        `  - ${key}: ${JSON.stringify(text)} is not a list or object; set it with \`pulumi config set --path\``,
      );
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(`Stack configuration is invalid:\n${problems.join("\n")}`);
  }
  return raw;
}

/** Validates the raw config; throws ConfigError with formatConfigError's text. */
export function parseStackConfig(raw: unknown): StackConfig {
  const parsed = stackConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(formatConfigError(parsed.error, raw));
  }
  return parsed.data;
}

/** One line per problem: the key (as `pulumi config set --path` spells it), the bad value, what is allowed. */
export function formatConfigError(error: z.ZodError, raw: unknown): string {
  const lines = error.issues.map((issue) => {
    const key = configPath(issue.path);
    const value = valueAt(raw, issue.path);
    const secret = issue.path.some((part) => typeof part === "string" && SECRET_KEYS.has(part));
    if (issue.code === "unrecognized_keys") {
      const where = key ? `${key}: ` : "";
      return `  - ${where}unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}; check the spelling against Pulumi.yaml`;
    }
    if (value === undefined) {
      const command = /[[.]/.test(key) ? `--path '${key}'` : key;
      return `  - ${key}: is not set; run \`pulumi config set ${command} <value>\` (${REQUIRED_HINTS[key] ?? expected(issue)})`;
    }
    const shown = secret ? "(secret value not shown)" : JSON.stringify(value);
    return `  - ${key}: ${shown} ${expected(issue)}`;
  });
  return `Stack configuration is invalid; nothing was changed:\n${lines.join("\n")}`;
}

const REQUIRED_HINTS: Record<string, string> = {
  brokerHost:
    "the address devices dial: an IPv4 address such as 192.168.1.10 or a DNS name such as broker.home.arpa",
  userId: "the number devices put in front of their MQTT password, such as 0 or 1234",
};

const TYPE_NAMES: Record<string, string> = {
  array: "a list",
  object: "an object",
  string: "text",
  number: "a number",
};

/** Zod's own type messages ("Invalid input: expected number, received NaN") in plain words; ours as written. */
function expected(issue: z.core.$ZodIssue): string {
  if (issue.code !== "invalid_type" || !issue.message.startsWith("Invalid input")) return issue.message;
  return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
}

function configPath(path: PropertyKey[]): string {
  return path
    .map((part, index) =>
      typeof part === "number" ? `[${part}]` : index === 0 ? String(part) : `.${String(part)}`,
    )
    .join("");
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let value = raw;
  for (const part of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}
