import { randomBytes } from "node:crypto";
import type { Connection } from "mysql2/promise";
import { UsageError } from "../cli/flags.ts";
import { DeviceClient } from "../meross/device-client.ts";
import { keyingOf } from "../meross/device-key.ts";
import { userIdSchema } from "../meross/identifiers.ts";
import {
  Namespace,
  networkLabel,
  type SystemAllSummary,
  type WifiAccessPoint,
} from "../meross/messages/index.ts";
import { listStackDevices, matchesDevice, recordStackDevice } from "../stack/devices.ts";
import type { PulumiRunner } from "../stack/pulumi-cli.ts";
import { controllerAccount, deviceAccount } from "../store/accounts.ts";
import { revokeAccount, upsertAccount } from "../store/database.ts";
import { offlineAdvice } from "./advice.ts";
import { connectDatabase } from "./database.ts";
import { DeviceOfflineError, OnlineTimeoutError, watchDeviceOnline } from "./online.ts";
import type { DeviceAddress, SetupSettings } from "./options.ts";
import { type ArrivalWatch, type RunSetupOptions, runSetup, type SetupResult } from "./setup.ts";

/**
 * The real services behind the setup plan: the device over HTTP, MySQL through lib/store, the stack
 * config through lib/stack, and the broker through MQTT.js. The script only parses and prints.
 */

export function openDeviceClient(address: DeviceAddress, key: string): DeviceClient {
  return new DeviceClient({ ip: address.host, port: address.port, key });
}

export interface ProvisionOptions extends RunSetupOptions {
  /** The stack to record the device in; required when settings.recordInStack. */
  pulumi?: PulumiRunner;
  onHandOff?: (message: string) => void;
}

export async function provisionDevice(
  settings: SetupSettings,
  options: ProvisionOptions = {},
): Promise<SetupResult> {
  const conn = settings.mysql ? await connectDatabase(settings.mysql) : undefined;
  try {
    return await runSetup(
      settings,
      {
        openDevice: (key) => openDeviceClient(settings.device, key),
        ...(options.pulumi
          ? { recordedKeying: (uuid) => recordedKeying(options.pulumi as PulumiRunner, uuid) }
          : {}),
        ...(conn
          ? {
              registerCredentials: async (device, assigned) => {
                const outcome = await upsertAccount(
                  conn,
                  deviceAccount(device, assigned.key, settings.userId, assigned.origin),
                );
                return `${device.mac} ${outcome}`;
              },
            }
          : {}),
        ...(settings.recordInStack && options.pulumi
          ? {
              recordInStack: async (device) => {
                const outcome = await recordStackDevice(options.pulumi as PulumiRunner, device);
                return `"${device.name}" ${outcome}`;
              },
            }
          : {}),
        watchOnline: (device, watchOptions) => watchDevice(settings, device, conn, watchOptions),
        ...(options.onHandOff ? { onHandOff: options.onHandOff } : {}),
      },
      options,
    );
  } finally {
    await conn?.end();
  }
}

/** The key scheme and generation the stack config records for the device with this uuid. */
async function recordedKeying(pulumi: PulumiRunner, uuid: string) {
  const entry = (await listStackDevices(pulumi)).find((device) => matchesDevice(device, uuid));
  return entry && keyingOf(entry);
}

/**
 * On the mysql broker the watcher needs a login: a controller account made for this one wait, with a
 * random password, removed afterwards (a leftover one is harmless and `pulumi up` drops it).
 */
async function watchDevice(
  settings: SetupSettings,
  device: SystemAllSummary,
  conn: Connection | undefined,
  { key, ...options }: { hadSession: boolean; key: string },
): Promise<ArrivalWatch> {
  const login = conn
    ? controllerAccount(`provision-${randomBytes(4).toString("hex")}`, randomBytes(18).toString("base64url"))
    : undefined;
  if (conn && login) await upsertAccount(conn, login);
  const watch = watchDeviceOnline(
    device,
    {
      brokerUrl: settings.brokerUrl,
      ...(settings.caPem ? { caPem: settings.caPem } : {}),
      ...(login ? { username: login.username, password: login.password } : {}),
      key,
      userId: settings.userId,
      timeoutMs: settings.timeoutMs,
    },
    options,
  );
  return {
    ready: (withinMs) => watch.ready(withinMs),
    acknowledged: () => watch.acknowledged(),
    result: () =>
      watch.result().catch((error: unknown) => {
        if (!(error instanceof OnlineTimeoutError)) throw error;
        throw new DeviceOfflineError(
          `${error.message}.\n\n${offlineAdvice({
            observation: error.observation,
            brokerUrl: settings.brokerUrl,
            broker: settings.brokers[0],
            authMode: settings.authMode,
            macAddress: device.macAddress,
            awaitedNewSession: error.awaitedNewSession,
            ...(settings.wifi ? { network: networkLabel(settings.wifi) } : {}),
          })}`,
        );
      }),
    stop: async () => {
      watch.stop();
      if (conn && login) await revokeAccount(conn, login.username).catch(() => undefined);
    },
  };
}

/**
 * The MQTT login `info` shows when the stack and --key/--user do not give both: the device's own user
 * id (or --user) and the key it was signed with. A user id that is not a number (meross_lan traces
 * anonymise it as "@0") cannot make a password, so it is a usage error naming --user.
 */
export function currentLoginBasis(systemAll: SystemAllSummary, signingKey: string, givenUserId?: string) {
  const userId = givenUserId ?? (systemAll.userId || "0");
  if (!userIdSchema.safeParse(userId).success) {
    throw new UsageError(
      `the device reports user id ${JSON.stringify(userId)}, which is not a number, so its MQTT login cannot be computed: pass --user <id>`,
    );
  }
  return {
    key: signingKey,
    userId,
    basis: `${givenUserId === undefined ? "its current user id" : `user id ${userId}`} and the key it was signed with (pass --key and --user, or run in the project)`,
  };
}

export interface DeviceInfo {
  systemAll: SystemAllSummary;
  abilities: Record<string, unknown>;
  wifiList?: WifiAccessPoint[];
}

/** `info`: read-only — System.All, Ability, and with `wifiList` the networks it sees (after ECDHE when it encrypts). */
export async function readDeviceInfo(
  address: DeviceAddress,
  key: string,
  options: { wifiList: boolean },
): Promise<DeviceInfo> {
  const device = openDeviceClient(address, key);
  const systemAll = await device.getSystemAll();
  const abilities = await device.getAbilities();
  if (!options.wifiList) return { systemAll, abilities };
  if (Namespace.EncryptEcdhe in abilities && !device.encrypted) {
    await device.exchangeKeys({ uuid: systemAll.uuid, macAddress: systemAll.macAddress, key });
  }
  return { systemAll, abilities, wifiList: await device.getWifiList() };
}
