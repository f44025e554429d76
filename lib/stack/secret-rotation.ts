import { randomBytes } from "node:crypto";
import type { ExitCategory } from "../exit-category.ts";
import { listStackDevices, type StackDevice } from "./devices.ts";
import type { StackOutputs } from "./outputs.ts";
import type { PulumiRunner } from "./pulumi-cli.ts";

/** A rotation cannot start: the message says what to do first. */
export class SecretRotationError extends Error {
  readonly exitCategory: ExitCategory = "stackOrDatabase";
  override name = "SecretRotationError";
}

/** 32 letters and digits, as the stack generates it (components/generated.ts): ~190 bits. */
function newSecret(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  // 248 = 4 × 62: bytes above it are dropped, so every character is equally likely.
  const characters = [...randomBytes(128)].filter((byte) => byte < 248).map((byte) => alphabet[byte % 62]);
  return characters.slice(0, 32).join("");
}

/**
 * Starts a rotation of the stack secret without losing a device: the current secret becomes
 * `previousDeviceKeySecret`, a new one is generated, and every device holding a key of its own is
 * marked `keySecret: previous`, so the next `pulumi up` keeps its login and the agent keeps answering
 * it. Each device then moves with `provision.mjs rekey`; returns the devices still to move.
 */
export async function startSecretRotation(
  pulumi: PulumiRunner,
  outputs: StackOutputs,
): Promise<StackDevice[]> {
  if (outputs.deviceKeySecret === undefined) {
    throw new SecretRotationError(
      "the stack has no deviceKeySecret output yet: run `pulumi up` with this version first",
    );
  }
  const devices = await listStackDevices(pulumi);
  const unmoved = devices.filter((device) => device.keySecret === "previous");
  if (unmoved.length > 0 || outputs.previousDeviceKeySecret !== undefined) {
    throw new SecretRotationError(
      `a rotation is still under way (${unmoved.map((device) => device.name).join(", ") || "previousDeviceKeySecret is still set"}): ` +
        "move those devices with `npx zx scripts/provision.mjs rekey <name> --ip <address>`, then " +
        "`pulumi config rm previousDeviceKeySecret && pulumi up`, before starting another",
    );
  }
  const set = (key: string, value: string) =>
    pulumi.run(["config", "set", "--path", "--type", "string", key, value]);
  // A secret goes through standard input, never the command line that every local user can see in `ps`.
  const setSecret = (key: string, value: string) =>
    pulumi.run(["config", "set", "--secret", "--path", "--type", "string", key], { input: value });
  await setSecret("previousDeviceKeySecret", outputs.deviceKeySecret);
  await setSecret("deviceKeySecret", newSecret());
  await set("deviceKeySecretOrigin", "generated");
  const moving: StackDevice[] = [];
  for (const [index, device] of devices.entries()) {
    if (device.keyScheme !== "per-device") continue;
    await set(`devices[${index}].keySecret`, "previous");
    moving.push(device);
  }
  return moving;
}
