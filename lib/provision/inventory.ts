import type { Connection } from "mysql2/promise";
import type { KeyScheme } from "../meross/device-key.ts";
import {
  listStackDevices,
  matchesDevice,
  removeStackDevice,
  StackConfigError,
  type StackDevice,
  UnknownDeviceError,
} from "../stack/devices.ts";
import type { PulumiRunner } from "../stack/pulumi-cli.ts";
import { AccountError } from "../store/accounts.ts";
import { listAccounts, revokeAccount, type StoredAccount } from "../store/database.ts";

/**
 * `devices.mjs`: what the broker knows (MySQL logins) next to what the stack config says (the
 * source of truth), and revoking a device from both.
 */

export interface InventoryEntry {
  name: string;
  /** Devices: the MAC they log in with. */
  mac?: string;
  uuid?: string;
  kind: StoredAccount["kind"];
  createdAt?: Date;
  /** undefined when the stack was not consulted. */
  inStackConfig?: boolean;
  /** undefined on the anonymous broker (no logins). */
  hasLogin?: boolean;
  /** Devices in the stack config: which key they hold (never the key itself). */
  keyScheme?: KeyScheme;
  keyGeneration?: number;
  /** "previous": still on the stack secret before the last rotation. */
  keySecret?: "previous";
}

/** What the stack config entry says about a device's key; an entry without a scheme holds the shared key. */
function keyingOf(
  entry: StackDevice | undefined,
): Pick<InventoryEntry, "keyScheme" | "keyGeneration" | "keySecret"> {
  if (entry === undefined) return {};
  const keyScheme = entry.keyScheme ?? "shared";
  if (keyScheme === "shared") return { keyScheme };
  return {
    keyScheme,
    keyGeneration: entry.keyGeneration ?? 1,
    ...(entry.keySecret === undefined ? {} : { keySecret: entry.keySecret }),
  };
}

export interface Inventory {
  entries: InventoryEntry[];
  /** Differences between MySQL and the stack config, with what each means. */
  drift: string[];
}

function asStackDevice(account: StoredAccount): StackDevice {
  return { name: account.name, mac: account.username, uuid: account.uuid ?? "" };
}

export async function listInventory(sources: {
  conn?: Connection;
  pulumi?: PulumiRunner;
}): Promise<Inventory> {
  const accounts = sources.conn ? await listAccounts(sources.conn) : undefined;
  const configured = sources.pulumi ? await listStackDevices(sources.pulumi) : undefined;
  const entries: InventoryEntry[] = [];
  const drift: string[] = [];
  for (const account of accounts ?? []) {
    const device = account.kind === "device";
    const entry = device
      ? configured?.find((candidate) => matchesDevice(candidate, account.username))
      : undefined;
    const inStackConfig = device && configured ? entry !== undefined : undefined;
    entries.push({
      name: account.name,
      ...(device ? { mac: account.username } : {}),
      ...(account.uuid ? { uuid: account.uuid } : {}),
      kind: account.kind,
      createdAt: account.createdAt,
      ...(inStackConfig === undefined ? {} : { inStackConfig }),
      hasLogin: true,
      ...keyingOf(entry),
    });
    if (inStackConfig === false) {
      drift.push(
        `${account.name} (${account.username}) has a login but is not in the stack config: the next \`pulumi up\` removes it ` +
          "(re-run provision.mjs setup for it, or add it to `devices`).",
      );
    }
  }
  for (const entry of configured ?? []) {
    const login = accounts?.find(
      (account) => account.kind === "device" && matchesDevice(entry, account.username),
    );
    if (login) continue;
    entries.push({
      name: entry.name,
      mac: entry.mac,
      uuid: entry.uuid,
      kind: "device",
      inStackConfig: true,
      ...(accounts ? { hasLogin: false } : {}),
      ...keyingOf(entry),
    });
    if (accounts) {
      drift.push(
        `${entry.name} (${entry.mac}) is in the stack config but has no login yet: run \`pulumi up\`.`,
      );
    }
  }
  return { entries, drift };
}

export interface Revocation {
  account?: StoredAccount;
  removedFromStack: StackDevice[];
}

/**
 * Removes the device's login (so its next connect is refused) and then its stack config entry (so
 * `pulumi up` does not bring the login back). Running it again finishes a revocation that stopped
 * half-way. Controllers and the agent are not devices: they live in the stack config's own keys.
 */
export async function revokeDevice(
  identifier: string,
  sources: { conn?: Connection; pulumi?: PulumiRunner },
): Promise<Revocation> {
  const needle = identifier.trim();
  if (needle === "") throw new AccountError("revoke needs a device name, MAC address or uuid");
  let account: StoredAccount | undefined;
  if (sources.conn) {
    const matches = (await listAccounts(sources.conn)).filter((stored) =>
      matchesDevice(asStackDevice(stored), needle),
    );
    const devices = matches.filter((stored) => stored.kind === "device");
    const others = matches.filter((stored) => stored.kind !== "device");
    if (devices.length > 1) {
      throw new AccountError(
        `"${needle}" names ${devices.length} devices (${devices.map((d) => `${d.name} ${d.username}`).join(", ")}); ` +
          "revoke by MAC address or uuid instead",
      );
    }
    if (devices.length === 0 && others.length > 0) {
      throw new AccountError(
        `"${needle}" is a ${others[0]?.kind} login, not a device: controllers are listed under \`controllers\` in the ` +
          "stack config; remove it there and run `pulumi up`",
      );
    }
    if (devices[0]) account = await revokeAccount(sources.conn, devices[0].username);
  }
  let removedFromStack: StackDevice[] = [];
  try {
    if (sources.pulumi)
      removedFromStack = await removeStackDevice(sources.pulumi, account ? account.username : needle);
  } catch (error) {
    if (!account) throw error;
    throw new StackConfigError(
      `its login is removed, but its stack config entry is not (${(error as Error).message}); ` +
        "run the same revoke again, or `pulumi up` brings the login back",
    );
  }
  if (!account && removedFromStack.length === 0) {
    throw new UnknownDeviceError(
      `no device named "${needle}" (by name, MAC or uuid)${sources.conn ? " in MySQL" : ""}` +
        `${sources.pulumi ? `${sources.conn ? " or" : ""} in the stack config` : ""}; see \`npx zx scripts/devices.mjs list\``,
    );
  }
  return { ...(account ? { account } : {}), removedFromStack };
}
