import { UsageError } from "../cli/flags.ts";
import { deviceNameSchema } from "../config/stack.ts";
import type { ExitCategory } from "../exit-category.ts";
import { type BrokerAddress, formatBroker } from "../meross/broker-url.ts";
import type { DeviceKeying } from "../meross/device-key.ts";
import { DeviceError, ProtocolError, WrongKeyError } from "../meross/envelope.ts";
import { withoutUndefined } from "../meross/fields.ts";
import { macAddressSchema, uuidSchema } from "../meross/identifiers.ts";
import {
  isOpenEncryption,
  type KeySettings,
  Namespace,
  networkLabel,
  type SystemAllSummary,
  type WifiAccessPoint,
  type WifiNetwork,
} from "../meross/messages/index.ts";
import type { WifixIdentity } from "../meross/wifi.ts";
import type { StackDevice } from "../stack/devices.ts";
import { type AssignedKey, assignDeviceKey } from "./keys.ts";
import type { SetupSettings } from "./options.ts";
import { executePlan, type PlannedStep, type StepEvent, type StepOutcome, StepSkipped } from "./steps.ts";

/** What setup asks of the device: the DeviceClient's methods, so tests can stand in for it. */
export interface SetupDevice {
  /** Already encrypting: the device hung up on plaintext and is spoken to with its LAN key. */
  readonly encrypted: boolean;
  getSystemAll(): Promise<SystemAllSummary>;
  getAbilities(): Promise<Record<string, unknown>>;
  exchangeKeys(identity: { uuid: string; macAddress: string; key: string }): Promise<unknown>;
  getWifiList(): Promise<WifiAccessPoint[]>;
  setTime(timezone: string, now?: Date): Promise<unknown>;
  setKey(settings: KeySettings): Promise<unknown>;
  setWifi(network: WifiNetwork, options?: { wifix?: WifixIdentity }): Promise<unknown>;
}

export type SetupStepId =
  | "read-device"
  | "read-abilities"
  | "exchange-keys"
  | "scan-wifi"
  | "set-time"
  | "register-credentials"
  | "record-in-stack"
  | "set-key"
  | "set-wifi"
  | "wait-online";

export interface SetupPlanOptions {
  authMode: SetupSettings["authMode"];
  wifi?: Pick<WifiNetwork, "ssid" | "bssid">;
  scanWifi: boolean;
  timezone?: string;
  recordInStack: boolean;
  brokers: [BrokerAddress, BrokerAddress];
  wait: boolean;
}

/**
 * The order follows protocol §6: read the device, exchange keys when it encrypts, optional Wi-Fi
 * scan and clock, then — only once every read-only step has worked — write the broker's side
 * (MySQL row, stack config) BEFORE the device's side (Config.Key, Wi-Fi), so a device that reboots
 * onto the broker always finds its credentials there.
 */
export function planSetup(options: SetupPlanOptions): PlannedStep<SetupStepId>[] {
  const [first, second] = options.brokers;
  const brokers =
    first.host === second.host && first.port === second.port
      ? formatBroker(first)
      : `${formatBroker(first)} and ${formatBroker(second)}`;
  const steps: (PlannedStep<SetupStepId> | false)[] = [
    { id: "read-device", title: "Read the device (System.All)" },
    { id: "read-abilities", title: "Read its abilities (System.Ability)" },
    { id: "exchange-keys", title: "Exchange encryption keys when it asks for them (Encrypt.ECDHE)" },
    options.wifi !== undefined &&
      options.scanWifi && {
        id: "scan-wifi",
        title: `Look for ${networkLabel(options.wifi)} in its Wi-Fi scan (Config.WifiList)`,
      },
    options.timezone !== undefined && {
      id: "set-time",
      title: `Set its clock and time zone ${options.timezone} (System.Time)`,
    },
    options.authMode === "mysql" && {
      id: "register-credentials",
      title: "Register its MQTT login and ACL in MySQL",
    },
    options.recordInStack && { id: "record-in-stack", title: "Record it in the stack config (devices)" },
    { id: "set-key", title: `Point it at the broker ${brokers} (Config.Key)` },
    options.wifi !== undefined && {
      id: "set-wifi",
      title: `Send it the Wi-Fi settings for ${networkLabel(options.wifi)} (Config.WifiX or Config.Wifi)`,
    },
    options.wait && { id: "wait-online", title: "Wait for it to connect to the broker and publish" },
  ];
  return steps.filter((step): step is PlannedStep<SetupStepId> => step !== false);
}

export interface OnlineReport {
  /** The device's own System.All as it answered over MQTT, when it did. */
  systemAll?: SystemAllSummary;
  /** What arrived first from the device: `<method> <namespace>`. */
  firstMessage: string;
  seconds: number;
}

/** The side effects beyond the device, injected so the same plan runs in tests and for real. */
export interface SetupServices {
  /** A client for the device that signs with `key`. */
  openDevice: (key: string) => SetupDevice;
  /** What the stack config says about the device's key now (re-runs keep its generation, rekey adds one). */
  recordedKeying?: (uuid: string) => Promise<Partial<DeviceKeying> | undefined>;
  registerCredentials?: (device: StackDevice, key: AssignedKey) => Promise<string>;
  recordInStack?: (device: StackDevice) => Promise<string>;
  /**
   * Starts watching the broker for the device before its settings are sent, so that its old session
   * (if it had one) can be told from the new one; see lib/provision/online.ts. It asks the device over
   * MQTT with `key`, the one it is being given.
   */
  watchOnline?: (
    device: SystemAllSummary,
    options: { hadSession: boolean; key: string },
  ) => Promise<ArrivalWatch>;
  /** Said once the Wi-Fi settings went out and the device reboots (or, with --no-wifi, must be power-cycled). */
  onHandOff?: (message: string) => void;
}

/** The broker side of the wait: ready before Config.Key, told when the set-up was acknowledged. */
export interface ArrivalWatch {
  ready(withinMs: number): Promise<boolean>;
  acknowledged(): void;
  result(): Promise<OnlineReport>;
  stop(): Promise<void>;
}

/** How long Config.Key waits for the broker watch when the device is on a broker now (the laptop is on the LAN). */
const WATCH_READY_MS = 10_000;

export interface SetupResult {
  device: SystemAllSummary;
  name: string;
  /** Which key it was given (not the key itself). */
  keying: DeviceKeying;
  wifiNamespace?: string;
  /** The network as sent, without its password. */
  wifi?: Omit<WifiNetwork, "password">;
  online?: OnlineReport;
  completed: SetupStepId[];
}

/** The name the device gets when the user gives none: its type and the end of its MAC, e.g. `mss310-b62c49`. */
export function defaultDeviceName(device: Pick<SystemAllSummary, "type" | "macAddress">): string {
  const suffix = device.macAddress
    .replace(/[^0-9a-f]/gi, "")
    .slice(-6)
    .toLowerCase();
  const type =
    device.type
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "") || "meross";
  return deviceNameSchema.parse(`${type}-${suffix}`);
}

/** The access point the user means: by SSID the strongest one the device saw, else the one with that BSSID. */
export function pickAccessPoint(
  accessPoints: WifiAccessPoint[],
  network: Pick<WifiNetwork, "ssid" | "bssid">,
): WifiAccessPoint | undefined {
  const bssid = network.bssid?.toLowerCase().replaceAll("-", ":");
  return accessPoints
    .filter((accessPoint) =>
      network.ssid !== undefined
        ? accessPoint.ssid === network.ssid
        : accessPoint.bssid.toLowerCase().replaceAll("-", ":") === bssid,
    )
    .sort((a, b) => (b.signal ?? 0) - (a.signal ?? 0))[0];
}

/** The scan says whether the network is open; a password that does not fit it is refused before anything is sent. */
function checkSecurityAgainstScan(network: WifiNetwork, accessPoint: WifiAccessPoint): void {
  if (accessPoint.encryption === undefined) return;
  const open = isOpenEncryption(accessPoint.encryption);
  if (open && network.password !== "") {
    throw new UsageError(
      `${networkLabel(network)} is an open network in the device's scan (encryption 0): drop --wifi-pass`,
    );
  }
  if (!open && network.password === "") {
    throw new UsageError(
      `${networkLabel(network)} is secured in the device's scan (encryption ${accessPoint.encryption}): give its password with --wifi-pass`,
    );
  }
}

/** The device at the address is not the one --mac/--uuid names. */
export class DeviceMismatchError extends Error {
  readonly exitCategory: ExitCategory = "deviceError";
  override name = "DeviceMismatchError";
}

export function checkIdentity(device: SystemAllSummary, expected: SetupSettings["expected"]): void {
  const mac = macAddressSchema.safeParse(device.macAddress);
  const uuid = uuidSchema.safeParse(device.uuid);
  if (!mac.success || !uuid.success) {
    throw new ProtocolError(
      `the device reported MAC ${JSON.stringify(device.macAddress)} and uuid ${JSON.stringify(device.uuid)}, ` +
        "which are not a MAC address and a 32-hex uuid; is this a Meross device?",
    );
  }
  if (expected.mac !== undefined && mac.data !== expected.mac) {
    throw new DeviceMismatchError(
      `the device at this address has MAC ${mac.data}, not ${expected.mac} (--mac); nothing was changed. ` +
        "Check --ip, or that you joined the right Meross_* network.",
    );
  }
  if (expected.uuid !== undefined && uuid.data !== expected.uuid) {
    throw new DeviceMismatchError(
      `the device at this address has uuid ${uuid.data}, not ${expected.uuid} (--uuid); nothing was changed.`,
    );
  }
}

export interface RunSetupOptions {
  onEvent?: (event: StepEvent<SetupStepId>) => void;
  around?: (step: PlannedStep<SetupStepId>, action: () => Promise<StepOutcome>) => Promise<StepOutcome>;
}

/** Runs the whole setup; a failure is a SetupStepError naming the step and what had completed. */
export async function runSetup(
  settings: SetupSettings,
  services: SetupServices,
  options: RunSetupOptions = {},
): Promise<SetupResult> {
  const plan = planSetup({
    authMode: settings.authMode,
    ...(settings.wifi ? { wifi: settings.wifi } : {}),
    scanWifi: !settings.wifiDetailsGiven || settings.wifi?.ssid === undefined,
    ...(settings.timezone ? { timezone: settings.timezone } : {}),
    recordInStack: settings.recordInStack,
    brokers: settings.brokers,
    wait: settings.wait,
  });
  let device = services.openDevice(settings.signingKey);
  let identity: SystemAllSummary | undefined;
  let abilities: Record<string, unknown> = {};
  let wifi = settings.wifi;
  let wifiNamespace: string | undefined;
  let online: OnlineReport | undefined;
  let name = settings.name;
  let watch: ArrivalWatch | undefined;
  /** It had a broker session when read (System.All online.status 1): a device already on a LAN. */
  const hadSession = () => known().onlineStatus === 1;
  let assigned: AssignedKey | undefined;

  const known = (): SystemAllSummary => {
    if (!identity) throw new Error("the device has not been read yet");
    return identity;
  };
  const keyFor = async (uuid: string): Promise<AssignedKey> =>
    assignDeviceKey(settings.keyPolicy, uuid, await services.recordedKeying?.(uuid));
  const newKey = (): AssignedKey => {
    if (!assigned) throw new Error("the device's new key has not been decided yet");
    return assigned;
  };
  const stackDevice = (): StackDevice => {
    const { macAddress, uuid } = known();
    const { keyScheme, keyGeneration } = newKey();
    // An entry without a scheme holds the shared key: shared-key entries stay as they always were.
    return {
      name: name as string,
      mac: macAddressSchema.parse(macAddress),
      uuid: uuidSchema.parse(uuid),
      ...(keyScheme === "shared" ? {} : { keyScheme, keyGeneration }),
    };
  };

  const completed = await executePlan(
    plan,
    {
      "read-device": async () => {
        let note = "";
        try {
          identity = await device.getSystemAll();
        } catch (error) {
          // An earlier run that got past Config.Key left the device on the new key: carry on with it.
          // A device's own key needs its uuid, so that retry needs --uuid (rekey always has it).
          const uuid = settings.expected.uuid;
          const retry =
            settings.keyPolicy.mode === "shared"
              ? settings.keyPolicy.keys.sharedKey
              : uuid === undefined
                ? undefined
                : (await keyFor(uuid)).key;
          if (!(error instanceof WrongKeyError) || retry === undefined || retry === settings.signingKey) {
            throw error;
          }
          device = services.openDevice(retry);
          identity = await device.getSystemAll();
          note = " (it already has the new key from an earlier run)";
        }
        checkIdentity(identity, settings.expected);
        name ??= defaultDeviceName(identity);
        assigned = await keyFor(uuidSchema.parse(identity.uuid));
        return `${identity.type} ${identity.macAddress} uuid ${identity.uuid}, will be named "${name}"${note}`;
      },
      "read-abilities": async () => {
        abilities = await device.getAbilities();
        return `${Object.keys(abilities).length} namespaces`;
      },
      "exchange-keys": async () => {
        if (!(Namespace.EncryptEcdhe in abilities))
          return new StepSkipped("it does not encrypt its HTTP API");
        if (device.encrypted) {
          return new StepSkipped("it refused plaintext, so requests already go encrypted with its LAN key");
        }
        const { uuid, macAddress } = known();
        await device.exchangeKeys({ uuid, macAddress, key: settings.signingKey });
        return "requests are encrypted from here on";
      },
      "scan-wifi": async () => {
        if (!wifi) return new StepSkipped("no Wi-Fi settings");
        let accessPoints: WifiAccessPoint[];
        try {
          accessPoints = await device.getWifiList();
        } catch (error) {
          if (error instanceof DeviceError || error instanceof ProtocolError) {
            return new StepSkipped(
              `it did not list networks (${error.message}); sending the SSID and password only`,
            );
          }
          throw error;
        }
        const accessPoint = pickAccessPoint(accessPoints, wifi);
        if (!accessPoint) {
          return new StepSkipped(
            `it does not see ${networkLabel(wifi)} (hidden, out of range, or 5 GHz only?); sending the settings as given`,
          );
        }
        checkSecurityAgainstScan(wifi, accessPoint);
        const { ssid, bssid, channel, encryption, cipher } = accessPoint;
        // A BSSID alone gets the SSID the scan shows for it, unless the network hides it; details
        // the user typed win over the scan.
        const scanned = {
          ...(ssid === "" ? {} : { ssid }),
          bssid,
          ...withoutUndefined({ channel, encryption, cipher }),
        };
        wifi = settings.wifiDetailsGiven ? { ...scanned, ...wifi } : { ...wifi, ...scanned };
        return `found: ${ssid ? `"${ssid}" ` : ""}bssid ${bssid}, channel ${channel ?? "?"}, encryption ${encryption ?? "?"}, cipher ${cipher ?? "?"}`;
      },
      "set-time": async () => {
        await device.setTime(settings.timezone as string);
        return undefined;
      },
      "register-credentials": async () => {
        if (!services.registerCredentials)
          throw new Error("no credential store was given for the mysql variant");
        return services.registerCredentials(stackDevice(), newKey());
      },
      "record-in-stack": async () => {
        if (!services.recordInStack) throw new Error("no stack to record the device in");
        return services.recordInStack(stackDevice());
      },
      "set-key": async () => {
        const { key, keyScheme, keyGeneration } = newKey();
        if (settings.wait && services.watchOnline) {
          watch = await services.watchOnline(known(), { hadSession: hadSession(), key });
          // A device on a broker may reconnect the moment it has the new key: be subscribed first.
          if (hadSession()) await watch.ready(WATCH_READY_MS);
        }
        await device.setKey({ userId: settings.userId, key, brokers: settings.brokers });
        if (!settings.wifi) {
          watch?.acknowledged();
          services.onHandOff?.(
            "Some firmware moves to the new broker at once; most keeps its current connection until it restarts, " +
              "and no Meross message restarts it. If it does not arrive, unplug it and plug it back in now, or run " +
              "setup again with --wifi-ssid/--wifi-pass of the network it is on: the Wi-Fi step restarts it.",
          );
        }
        return `user id ${settings.userId}, ${keyScheme === "shared" ? "the shared key" : `its own key (generation ${keyGeneration})`}`;
      },
      "set-wifi": async () => {
        const { type, uuid, macAddress } = known();
        const wifix = Namespace.ConfigWifiX in abilities;
        wifiNamespace = wifix ? Namespace.ConfigWifiX : Namespace.ConfigWifi;
        await device.setWifi(wifi as WifiNetwork, wifix ? { wifix: { type, uuid, macAddress } } : {});
        watch?.acknowledged();
        services.onHandOff?.(
          hadSession()
            ? `The device now restarts, rejoins ${networkLabel(wifi as WifiNetwork)} and dials the new broker.`
            : `The device now restarts and joins ${networkLabel(wifi as WifiNetwork)}; its Meross_* network disappears. ` +
                "Reconnect this computer to your normal network.",
        );
        return `sent as ${wifiNamespace}`;
      },
      "wait-online": async () => {
        if (!watch) throw new Error("no broker to watch");
        online = await watch.result();
        const proof = hadSession() ? " (a new connection)" : "";
        return `first message after ${online.seconds} s: ${online.firstMessage}${proof}`;
      },
    },
    options,
  ).finally(() => watch?.stop());
  const { keyScheme, keyGeneration } = newKey();
  return {
    device: known(),
    name: name as string,
    keying: { keyScheme, ...(keyGeneration === undefined ? {} : { keyGeneration }) },
    ...(wifiNamespace ? { wifiNamespace } : {}),
    ...(wifi ? { wifi: withoutPassword(wifi) } : {}),
    ...(online ? { online } : {}),
    completed,
  };
}

function withoutPassword({ password: _password, ...network }: WifiNetwork): Omit<WifiNetwork, "password"> {
  return network;
}
