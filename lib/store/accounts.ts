import { z } from "zod";
import type { ExitCategory } from "../exit-category.ts";
import { deviceMqttCredentials } from "../meross/credentials.ts";
import { uuidSchema } from "../meross/identifiers.ts";
import {
  ALL_CONTROLLER_REPLIES,
  ALL_DEVICES_PUBLISH,
  ALL_DEVICES_SUBSCRIBE,
  devicePublishTopic,
  deviceSubscribeTopic,
  MEROSS_LAN_REPLY_TOPIC,
} from "../meross/topics.ts";
import { PBKDF2_ITERATIONS } from "./hash.ts";

/**
 * The broker accounts of the kit and what each may do. go-auth asks MySQL for these rows on every
 * CONNECT and every publish/subscribe/delivery check, so this module is the whole access policy.
 */

export const ACCOUNT_KINDS = ["device", "controller", "service"] as const;
export type AccountKind = (typeof ACCOUNT_KINDS)[number];

/**
 * Where the secret behind a password came from: the kit's random generator (a 32-character
 * RandomPassword, ~190 bits) or a person (a `deviceKey` set in the stack config or typed as --key).
 */
export const SECRET_ORIGINS = ["generated", "chosen"] as const;
export type SecretOrigin = (typeof SECRET_ORIGINS)[number];

/** One broker login. `password` is the clear text; only its hash reaches the database. */
export interface Account {
  username: string;
  password: string;
  kind: AccountKind;
  /** What the user calls it (device name from the config, controller or service name). */
  name: string;
  /** Devices only: the uuid in the device's topics. */
  uuid?: string;
  /** Decides how slow its stored hash is (passwordHashIterations). */
  secretOrigin: SecretOrigin;
}

/** Mosquitto's access bits, as go-auth passes them to the ACL query's `(rw & ?) <> 0`. */
export const ACCESS_READ = 1;
export const ACCESS_WRITE = 2;
export const ACCESS_SUBSCRIBE = 4;
const READ_AND_SUBSCRIBE = ACCESS_READ | ACCESS_SUBSCRIBE;

export interface AclRule {
  topic: string;
  access: number;
}

const MAX_USERNAME_LENGTH = 191;
const MAX_NAME_LENGTH = 191;

/** A login name for controllers and services: short, no spaces or MQTT wildcards, so it is easy to type into Home Assistant. */
const loginNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );

/** Long enough that nobody on the LAN guesses it; controllers and services get generated passwords anyway. */
const accountPasswordSchema = z.string().min(16, "must be at least 16 characters");

const nameSchema = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters`);

/** What the database layer accepts: any username the broker could be sent, stored verbatim. */
export const accountSchema = z
  .object({
    username: z
      .string()
      .min(1, "must not be empty")
      .max(MAX_USERNAME_LENGTH, `must be at most ${MAX_USERNAME_LENGTH} characters`),
    password: z.string().min(1, "must not be empty"),
    kind: z.enum(ACCOUNT_KINDS),
    name: nameSchema,
    uuid: uuidSchema.optional(),
    secretOrigin: z.enum(SECRET_ORIGINS),
  })
  .refine((account) => (account.kind === "device") === (account.uuid !== undefined), {
    message: "a device account needs a uuid, and only a device account has one",
    path: ["uuid"],
  });

/**
 * Two logins that would share one go-auth cache entry. go-auth keys its login cache on the plain
 * text `auth-<username>-<password>` (3.5.0 cache/cache.go toAuthRecord), so `home` with password
 * `assistant-<pw>` hits the entry `home-assistant` left with `<pw>`. Two different logins can only
 * produce one key when one username is the other's beginning followed by `-` (the longer username
 * then ends inside the shorter one's password), whatever the passwords are; so the kit never has
 * two such logins at once, and no kit login can ride on another's cached answer.
 */
export function cacheKeyClash(usernames: Iterable<string>): { shorter: string; longer: string } | undefined {
  const all = new Set(usernames);
  for (const longer of all) {
    for (let dash = longer.indexOf("-"); dash !== -1; dash = longer.indexOf("-", dash + 1)) {
      const shorter = longer.slice(0, dash);
      if (all.has(shorter)) return { shorter, longer };
    }
  }
  return undefined;
}

/** Why `shorter` and `longer` may not both be logins, in words a user can act on. */
export function cacheKeyClashMessage(clash: { shorter: string; longer: string }): string {
  const rest = clash.longer.slice(clash.shorter.length + 1);
  return (
    `logins ${JSON.stringify(clash.shorter)} and ${JSON.stringify(clash.longer)} cannot both exist: go-auth caches ` +
    `logins under the plain text auth-<username>-<password>, so ${JSON.stringify(clash.shorter)} with the password ` +
    `"${rest}-<password of ${clash.longer}>" would be let in on the other's cached login; rename one ` +
    "(no login may be another's beginning followed by '-')"
  );
}

export class AccountError extends Error {
  readonly exitCategory: ExitCategory = "usage";
  override name = "AccountError";
}

/** Validates an account, naming the bad field; the password is never part of the message. */
export function parseAccount(account: Account): Account {
  const parsed = accountSchema.safeParse(account);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") || "account";
    throw new AccountError(`account ${JSON.stringify(account.name)}: ${field} ${issue?.message}`);
  }
  return parsed.data;
}

export interface DeviceIdentity {
  name: string;
  mac: string;
  uuid: string;
}

/**
 * The login a device makes on its own: its MAC and `<userId>_md5(mac + key)`. `keyOrigin` says
 * whether the stack generated the key or a person chose it; only the second needs a slow hash, so
 * a caller that cannot tell gets the slow one.
 */
export function deviceAccount(
  device: DeviceIdentity,
  key: string,
  userId: string | number,
  keyOrigin: SecretOrigin = "chosen",
): Account {
  const { username, password } = deviceMqttCredentials(device.mac, key, userId);
  return parseAccount({
    username,
    password,
    kind: "device",
    name: device.name,
    uuid: device.uuid,
    secretOrigin: keyOrigin,
  });
}

/**
 * A controller such as Home Assistant's meross_lan: sees every device, commands every device. Its
 * password is generated (the stack's RandomPassword, or the provisioning script's random bytes).
 */
export function controllerAccount(name: string, password: string): Account {
  return parseAccount({ ...checkLogin(name, password), kind: "controller", name, secretOrigin: "generated" });
}

/** The kit's session agent: answers devices' requests, so it reads and writes device topics only. Generated password. */
export function serviceAccount(name: string, password: string): Account {
  return parseAccount({ ...checkLogin(name, password), kind: "service", name, secretOrigin: "generated" });
}

/**
 * PBKDF2 iterations for an account's stored hash; each row carries its own count, so go-auth needs
 * no setting. The attacker it answers is someone holding a copy of the database (a backup, the
 * volume, the disk), guessing passwords offline; docs/security.md gives the reasoning. A generated
 * secret has at least 128 bits (a device password is an md5 of a generated or HMAC-derived key, a
 * controller's a 32-character random string): no guessing finishes, whatever one guess costs, so the
 * row needs a salted one-way function and nothing slower. One PBKDF2 round is a salted HMAC-SHA512,
 * what NIST SP 800-63B asks of a verifier for secrets of 112 bits or more; every further round costs
 * the broker's only thread during a reconnect storm and buys no security. A chosen key may be
 * guessable, so its hash stays slow, whatever that costs after a power cut.
 */
export const GENERATED_SECRET_ITERATIONS = 1;
export const CHOSEN_SECRET_ITERATIONS = PBKDF2_ITERATIONS;

export function passwordHashIterations(account: Pick<Account, "secretOrigin">): number {
  return account.secretOrigin === "generated" ? GENERATED_SECRET_ITERATIONS : CHOSEN_SECRET_ITERATIONS;
}

function checkLogin(name: string, password: string): { username: string; password: string } {
  const login = loginNameSchema.safeParse(name);
  if (!login.success) {
    throw new AccountError(`account name ${JSON.stringify(name)} ${login.error.issues[0]?.message}`);
  }
  const secret = accountPasswordSchema.safeParse(password);
  if (!secret.success) {
    throw new AccountError(`password of account ${JSON.stringify(name)} ${secret.error.issues[0]?.message}`);
  }
  return { username: name, password };
}

/**
 * Least privilege per kind. A device reads only its own command topic and writes only its own
 * publish topic plus the reply topics of the controllers we support (it answers each request on
 * the request's `from`): our scripts' `/app/…/subscribe` and Home Assistant's fixed
 * `/appliance/meross_lan/publish`. Controllers already read the latter through
 * `/appliance/+/publish`. Nobody but controllers and the agent can command a device.
 */
export function aclRules(account: Pick<Account, "kind" | "uuid">): AclRule[] {
  switch (account.kind) {
    case "device": {
      const uuid = uuidSchema.parse(account.uuid);
      return [
        { topic: deviceSubscribeTopic(uuid), access: READ_AND_SUBSCRIBE },
        { topic: devicePublishTopic(uuid), access: ACCESS_WRITE },
        { topic: ALL_CONTROLLER_REPLIES, access: ACCESS_WRITE },
        { topic: MEROSS_LAN_REPLY_TOPIC, access: ACCESS_WRITE },
      ];
    }
    case "controller":
      return [
        { topic: ALL_DEVICES_PUBLISH, access: READ_AND_SUBSCRIBE },
        { topic: ALL_CONTROLLER_REPLIES, access: READ_AND_SUBSCRIBE },
        { topic: ALL_DEVICES_SUBSCRIBE, access: ACCESS_WRITE },
      ];
    case "service":
      return [
        { topic: ALL_DEVICES_PUBLISH, access: READ_AND_SUBSCRIBE },
        { topic: ALL_DEVICES_SUBSCRIBE, access: ACCESS_WRITE },
      ];
  }
}
