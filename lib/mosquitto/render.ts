import { fileURLToPath } from "node:url";
import { Liquid } from "liquidjs";
import { z } from "zod";
import { type AuthMode, authModeSchema, cacheSecondsProblem } from "../config/stack.ts";
import { hostSchema, isIpv4, portSchema } from "../meross/identifiers.ts";
import { PBKDF2_ALGORITHM, PBKDF2_ITERATIONS, PBKDF2_KEY_LENGTH, PBKDF2_SALT_LENGTH } from "../store/hash.ts";
import { GO_AUTH_QUERIES } from "../store/queries.ts";

export interface MosquittoSettings {
  variant: AuthMode;
  tls: { port: number; bindAddress: string; cafile: string; certfile: string; keyfile: string };
  plainListener?: { address: string; port: number };
  persistenceDir: string;
  /** Also log at debug level, where Mosquitto reports what its ACLs refuse ("Denied PUBLISH from ..."). */
  debugLog?: boolean;
  mysql?: {
    host: string;
    port: number;
    user: string;
    password: string;
    database: string;
    pluginPath: string;
    authCacheSeconds?: number;
    aclCacheSeconds?: number;
  };
}

/** How long go-auth trusts a login / an ACL answer before asking the database again. */
export const DEFAULT_AUTH_CACHE_SECONDS = 30;
export const DEFAULT_ACL_CACHE_SECONDS = 30;

/**
 * Broker limits, the same for both variants.
 * - maxPacketBytes: the largest Meross payloads are a hub's System.All with its sub-devices, tens of
 *   KiB (issue 10, fact 7); a plug's own HTTP answers are cut at 2 to 4 kB (meross_lan emulator
 *   MAXIMUM_RESPONSE_SIZE, in the shared meross-protocol.md notes), and the session agent drops anything over
 *   64 KiB unparsed (lib/agent/session.ts). 256 KiB leaves 4x headroom over the agent's bound while a
 *   client can no longer push the 150 MB measured in fact 7 (Mosquitto 2.0 accepts up to 256 MB;
 *   2.1's default is 2 MB).
 * - maxQueuedMessages: Mosquitto's default, stated so it cannot drift; maxQueuedBytes caps the same
 *   queue in bytes (unbounded by default), 4 MiB per offline or slow client.
 * - persistentClientExpiration: a week, so a controller that went away for good does not keep a queue.
 */
export const BROKER_LIMITS = {
  maxPacketBytes: 256 * 1024,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 4 * 1024 * 1024,
  persistentClientExpiration: "7d",
} as const;

export class MosquittoConfigError extends Error {
  override name = "MosquittoConfigError";
}

// Mosquitto reads one directive per line and takes the rest of the line as the value, so every
// value is held to a character set that cannot end the line or start another directive.
const pathSchema = z
  .string()
  .regex(/^\/[A-Za-z0-9._/-]*$/, "must be an absolute path of letters, digits, '.', '_', '-' and '/'");
const bindAddressSchema = z.string().refine(isIpv4, "must be an IPv4 address such as 0.0.0.0 or 127.0.0.1");
const cacheSecondsSchema = z.number().int("must be a whole number of seconds").min(0, "must not be negative");
const singleLineSchema = z.string().regex(/^[^\r\n\0]+$/, "must be one non-empty line");

const settingsSchema = z.object({
  variant: authModeSchema,
  tls: z.object({
    port: portSchema,
    bindAddress: bindAddressSchema,
    cafile: pathSchema,
    certfile: pathSchema,
    keyfile: pathSchema,
  }),
  plainListener: z.object({ address: bindAddressSchema, port: portSchema }).optional(),
  persistenceDir: pathSchema,
  debugLog: z.boolean().default(false),
  mysql: z
    .object({
      host: hostSchema,
      port: portSchema,
      user: z.string().regex(/^[A-Za-z0-9_]{1,32}$/, "must be 1 to 32 letters, digits or '_'"),
      // The message never repeats the value: it is a secret.
      password: z
        .string()
        .regex(/^[\x21-\x7e]{1,128}$/, "must be 1 to 128 printable ASCII characters without spaces"),
      database: z.string().regex(/^[A-Za-z0-9_]{1,64}$/, "must be 1 to 64 letters, digits or '_'"),
      pluginPath: pathSchema,
      authCacheSeconds: cacheSecondsSchema.default(DEFAULT_AUTH_CACHE_SECONDS),
      aclCacheSeconds: cacheSecondsSchema.default(DEFAULT_ACL_CACHE_SECONDS),
    })
    .superRefine((mysql, ctx) => {
      const problem = cacheSecondsProblem(mysql.authCacheSeconds, mysql.aclCacheSeconds);
      if (problem) ctx.addIssue({ code: "custom", path: ["authCacheSeconds"], message: problem });
    })
    .optional(),
});

const SECRET_KEYS = new Set(["password"]);

const TEMPLATES_DIR = fileURLToPath(new URL("../../templates/", import.meta.url));

const engine = new Liquid({ root: TEMPLATES_DIR, strictVariables: true, strictFilters: true });

/**
 * mosquitto.conf text for one variant. Pure apart from reading templates/: the same settings
 * always give the same text, so the stack can upload it and the tests can compare it.
 * Throws MosquittoConfigError naming the bad setting when a value could break or extend the file.
 */
export function renderMosquittoConf(settings: MosquittoSettings): string {
  const parsed = settingsSchema.safeParse(settings);
  if (!parsed.success) {
    throw new MosquittoConfigError(
      parsed.error.issues
        .map((issue) => {
          const key = issue.path.join(".");
          const leaf = issue.path.at(-1);
          const shown =
            typeof leaf === "string" && SECRET_KEYS.has(leaf) ? "" : ` ${describe(settings, issue.path)}`;
          return `mosquitto setting ${key}${shown}: ${issue.message}`;
        })
        .join("\n"),
    );
  }
  const valid = parsed.data;
  if (valid.variant === "mysql" && !valid.mysql) {
    throw new MosquittoConfigError(
      "mosquitto setting mysql: the mysql variant needs the database connection",
    );
  }
  const queries = {
    user: singleLine("GO_AUTH_QUERIES.user", GO_AUTH_QUERIES.user),
    superuser: GO_AUTH_QUERIES.superuser
      ? singleLine("GO_AUTH_QUERIES.superuser", GO_AUTH_QUERIES.superuser)
      : null,
    acl: singleLine("GO_AUTH_QUERIES.acl", GO_AUTH_QUERIES.acl),
  };
  const text: string = engine.renderFileSync("mosquitto.conf.liquid", {
    variant: valid.variant,
    tls: valid.tls,
    plainListener: valid.plainListener ?? null,
    persistenceDir: valid.persistenceDir,
    limits: BROKER_LIMITS,
    debugLog: valid.debugLog,
    mysql: valid.variant === "mysql" ? valid.mysql : null,
    queries,
    hasher: {
      algorithm: PBKDF2_ALGORITHM,
      iterations: PBKDF2_ITERATIONS,
      keyLength: PBKDF2_KEY_LENGTH,
      saltSize: PBKDF2_SALT_LENGTH,
    },
  });
  return `${text.replace(/\n{3,}/g, "\n\n").trimEnd()}\n`;
}

function singleLine(name: string, value: string): string {
  const parsed = singleLineSchema.safeParse(value);
  if (!parsed.success) throw new MosquittoConfigError(`${name}: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

function describe(settings: unknown, path: PropertyKey[]): string {
  let value: unknown = settings;
  for (const key of path) {
    value =
      value !== null && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  }
  return JSON.stringify(value) ?? "undefined";
}
