import { UsageError } from "../cli/flags.ts";
import { type DeviceKeying, deviceKeyFor, type KeyScheme, type StackKeys } from "../meross/device-key.ts";
import { withoutUndefined } from "../meross/fields.ts";
import type { SecretOrigin } from "../store/accounts.ts";

/**
 * Which key provisioning gives a device. The uuid is known only once the device has answered, so
 * the policy is decided from the flags and stack outputs first and applied to the device later.
 */
export interface KeyPolicy {
  /** per-device: its own key (lib/meross/device-key.ts); shared: the stack's deviceKey or --key. */
  mode: KeyScheme;
  keys: StackKeys;
  /** Where each kind of key comes from: decides the hash cost of the device's row. */
  origins: Record<KeyScheme, SecretOrigin>;
  /** `rekey`: one generation past the one recorded (a shared-key device gets its first own key). */
  rotate: boolean;
}

/** The key a device is given, and what its stack config entry records about it. */
export interface AssignedKey extends DeviceKeying {
  key: string;
  origin: SecretOrigin;
}

/**
 * Re-running setup on a device keeps the generation it has (a rotated key never goes back to an
 * older one); rotating adds one; a device that had the shared key starts at generation 1. The key
 * always comes from the current secret: a device still on the previous one moves off it.
 */
export function assignDeviceKey(
  policy: KeyPolicy,
  uuid: string,
  recorded?: Partial<DeviceKeying>,
): AssignedKey {
  if (policy.mode === "shared") {
    return { keyScheme: "shared", key: policy.keys.sharedKey, origin: policy.origins.shared };
  }
  const current = recorded?.keyScheme === "per-device" ? (recorded.keyGeneration ?? 1) : 0;
  const keyGeneration = policy.rotate ? current + 1 : Math.max(current, 1);
  const keying = { keyScheme: "per-device", keyGeneration } as const;
  return {
    ...keying,
    key: deviceKeyFor({ uuid, ...keying }, policy.keys),
    origin: policy.origins["per-device"],
  };
}

/**
 * The policy from the flags and the stack: `--key` is a key a person chose for this device, given
 * as is (shared scheme); otherwise the stack's keyMode, with its shared key and secret.
 */
export function keyPolicyFrom(
  given: { key?: string; rotate?: boolean },
  stack: {
    deviceKey?: string;
    deviceKeyOrigin?: SecretOrigin;
    keyMode?: KeyScheme;
    deviceKeySecret?: string;
    deviceKeySecretOrigin?: SecretOrigin;
    previousDeviceKeySecret?: string;
  },
): KeyPolicy | undefined {
  const sharedKey = given.key ?? stack.deviceKey;
  if (sharedKey === undefined) return undefined;
  const mode = given.key !== undefined ? "shared" : (stack.keyMode ?? "shared");
  if (given.rotate && mode === "shared") {
    throw new UsageError(
      given.key !== undefined
        ? "rekey derives the device's next key from the stack secret; it takes no --key"
        : 'rekey gives a device its own key, but this stack has keyMode "shared": set it to per-device and run `pulumi up` first',
    );
  }
  if (mode === "per-device" && stack.deviceKeySecret === undefined) {
    throw new UsageError(
      "the stack has keyMode per-device but no deviceKeySecret output: run `pulumi up` with this version first",
    );
  }
  return {
    mode,
    keys: withoutUndefined({
      sharedKey,
      keySecret: stack.deviceKeySecret,
      previousKeySecret: stack.previousDeviceKeySecret,
    }),
    origins: {
      shared: given.key === undefined && stack.deviceKeyOrigin === "generated" ? "generated" : "chosen",
      "per-device": stack.deviceKeySecretOrigin ?? "chosen",
    },
    rotate: given.rotate ?? false,
  };
}
