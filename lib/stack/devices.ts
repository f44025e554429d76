import { z } from "zod";
import type { ExitCategory } from "../exit-category.ts";
import {
  type DeviceKeying,
  keyGenerationSchema,
  keyingOf,
  keySchemeSchema,
  keySecretSchema,
} from "../meross/device-key.ts";
import { macAddressSchema, uuidSchema } from "../meross/identifiers.ts";
import type { PulumiRunner } from "./pulumi-cli.ts";

/**
 * The stack config's `devices` list is the source of truth for which devices exist: `pulumi up`
 * makes the MySQL rows match it. Provisioning writes the row at once (so the device can connect
 * now) and records the device here (so the next `pulumi up` keeps the row); revoking removes both.
 */
export interface StackDevice extends Partial<DeviceKeying> {
  name: string;
  mac: string;
  uuid: string;
}

const DEVICES_KEY = "devices";

const configValueSchema = z
  .object({ value: z.string().optional(), objectValue: z.unknown().optional() })
  .loose();

/** Hand-edited YAML may hold numbers, and an interrupted write may leave a field out. */
const storedTextSchema = z
  .union([z.string(), z.number()])
  .optional()
  .transform((value) => (value === undefined ? "" : String(value)));

/** A key scheme or generation that does not parse counts as absent; `pulumi up` names the bad value. */
const storedDeviceSchema = z
  .object({
    name: storedTextSchema,
    mac: storedTextSchema,
    uuid: storedTextSchema,
    keyScheme: keySchemeSchema.optional().catch(undefined),
    keyGeneration: keyGenerationSchema.optional().catch(undefined),
    keySecret: keySecretSchema.optional().catch(undefined),
  })
  .loose();

/** No device by that name, MAC or uuid: in the stack config, or in MySQL. */
export class UnknownDeviceError extends Error {
  readonly exitCategory: ExitCategory = "notFound";
  override name = "UnknownDeviceError";
}

export class StackConfigError extends Error {
  readonly exitCategory: ExitCategory = "stackOrDatabase";
  constructor(message: string) {
    super(message);
    this.name = "StackConfigError";
  }
}

/** `pulumi config --json` keys are `<project>:<name>`; ours is the project's own `devices`. */
function findDevicesValue(config: Record<string, unknown>): unknown {
  const entry = Object.entries(config).find(
    ([key]) => key === DEVICES_KEY || (key.endsWith(`:${DEVICES_KEY}`) && key.split(":").length === 2),
  );
  if (!entry) return [];
  const value = configValueSchema.parse(entry[1]);
  if (value.objectValue !== undefined) return value.objectValue;
  if (value.value === undefined) return [];
  try {
    return JSON.parse(value.value);
  } catch {
    throw new StackConfigError(
      `stack config \`${DEVICES_KEY}\` is not a list; fix it in Pulumi.<stack>.yaml`,
    );
  }
}

export async function listStackDevices(pulumi: PulumiRunner): Promise<StackDevice[]> {
  const stdout = await pulumi.run(["config", "--json"]);
  let config: unknown;
  try {
    config = JSON.parse(stdout);
  } catch {
    throw new StackConfigError("`pulumi config --json` did not print JSON");
  }
  const devices = z.array(storedDeviceSchema).safeParse(findDevicesValue(config as Record<string, unknown>));
  if (!devices.success) {
    throw new StackConfigError(
      `stack config \`${DEVICES_KEY}\` must be a list of {name, mac, uuid}; fix it in Pulumi.<stack>.yaml`,
    );
  }
  return devices.data.map((entry) => ({
    name: entry.name,
    mac: entry.mac,
    uuid: entry.uuid,
    ...keyingOf(entry),
  }));
}

function sameDevice(entry: StackDevice, device: StackDevice): boolean {
  return sameMac(entry.mac, device.mac) || entry.uuid.toLowerCase() === device.uuid;
}

/** An entry an interrupted earlier run started for this device: its name, but no MAC or uuid yet. */
function unfinishedEntryOf(entry: StackDevice, device: StackDevice): boolean {
  return entry.name === device.name && (entry.mac === "" || entry.uuid === "");
}

function sameMac(a: string, b: string): boolean {
  const left = macAddressSchema.safeParse(a);
  const right = macAddressSchema.safeParse(b);
  return left.success && right.success && left.data === right.data;
}

/** Whether `identifier` (a name, MAC or uuid) names this entry. */
export function matchesDevice(entry: StackDevice, identifier: string): boolean {
  const uuid = uuidSchema.safeParse(identifier);
  return (
    entry.name === identifier ||
    sameMac(entry.mac, identifier) ||
    (uuid.success && entry.uuid.toLowerCase() === uuid.data)
  );
}

export type RecordOutcome = "added" | "updated" | "unchanged";

/**
 * Adds the device to the stack config, or updates the entry with the same MAC or uuid, so running
 * it twice changes nothing. Values are written as strings (`--type string`): a name such as `42`
 * or an all-digit uuid would otherwise become a YAML number. The key scheme, generation and secret say
 * which key the device was given; a field the device no longer has (a generation after a move back to
 * the shared key, "previous" after a move to the current secret) is removed.
 */
export async function recordStackDevice(pulumi: PulumiRunner, device: StackDevice): Promise<RecordOutcome> {
  const existing = await listStackDevices(pulumi);
  let index = existing.findIndex((entry) => sameDevice(entry, device));
  if (index === -1) index = existing.findIndex((entry) => unfinishedEntryOf(entry, device));
  const clash = existing.find((entry, i) => i !== index && entry.name === device.name);
  if (clash) {
    throw new StackConfigError(
      `the stack config already has a device named "${device.name}" (MAC ${clash.mac}); ` +
        "pick another --name, or revoke that one first (npx zx scripts/devices.mjs revoke <name>)",
    );
  }
  const target = index === -1 ? existing.length : index;
  const current = existing[target];
  let changed = false;
  for (const field of ["name", "mac", "uuid", "keyScheme", "keyGeneration", "keySecret"] as const) {
    const value = device[field];
    if (current?.[field] === value) continue;
    const path = `${DEVICES_KEY}[${target}].${field}`;
    if (value === undefined) {
      await pulumi.run(["config", "rm", "--path", path]);
    } else {
      await pulumi.run(["config", "set", "--path", "--type", "string", path, String(value)]);
    }
    changed = true;
  }
  if (!changed) return "unchanged";
  return index === -1 ? "added" : "updated";
}

/** Removes every entry `identifier` names; returns what was removed. */
export async function removeStackDevice(pulumi: PulumiRunner, identifier: string): Promise<StackDevice[]> {
  const existing = await listStackDevices(pulumi);
  const removed: StackDevice[] = [];
  // From the end, so the indexes of the entries still to remove do not shift.
  for (let index = existing.length - 1; index >= 0; index--) {
    const entry = existing[index] as StackDevice;
    if (!matchesDevice(entry, identifier)) continue;
    await pulumi.run(["config", "rm", "--path", `${DEVICES_KEY}[${index}]`]);
    removed.unshift(entry);
  }
  return removed;
}
