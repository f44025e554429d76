import { deviceMqttCredentials } from "../meross/credentials.ts";
import { withoutUndefined } from "../meross/fields.ts";
import {
  Namespace,
  type SystemAllSummary,
  toggleNamespaceOf,
  type WifiAccessPoint,
} from "../meross/messages/index.ts";
import { devicePublishTopic, deviceSubscribeTopic } from "../meross/topics.ts";

/** What `info` and the end of `setup` print about a device; the MQTT password only on request. */
export interface DeviceDescription
  extends Pick<
    SystemAllSummary,
    "type" | "subType" | "chipType" | "hardwareVersion" | "firmwareVersion" | "uuid" | "macAddress" | "userId"
  > {
  name?: string;
  /** System.All's `innerIp`. */
  ip: string;
  /** `host:port` it dials now, or undefined when it has none (factory state). */
  currentBroker?: string;
  /** Whether its HTTP API needs the ECDHE exchange, and which Wi-Fi message it takes. */
  encrypted?: boolean;
  wifiNamespace?: string;
  /** ToggleX, or Toggle on older firmware; absent when it lists neither. */
  switchNamespace?: string;
  mqtt: {
    username: string;
    /** Present only with an explicit request (--show-password): it is a secret. */
    password?: string;
    /** Whose key and user id the password is computed from. */
    basis: string;
  };
  topics: { publish: string; subscribe: string };
  wifiList?: WifiAccessPoint[];
}

export interface DescribeOptions {
  name?: string;
  /** The key and user id the device will use (the stack's, or --key/--user); else its current user id and key. */
  credentials: { key: string; userId: string; basis: string };
  showPassword: boolean;
  abilities?: Record<string, unknown>;
  wifiList?: WifiAccessPoint[];
}

export function describeDevice(device: SystemAllSummary, options: DescribeOptions): DeviceDescription {
  const { username, password } = deviceMqttCredentials(
    device.macAddress,
    options.credentials.key,
    options.credentials.userId,
  );
  const abilities = options.abilities;
  return {
    ...(options.name ? { name: options.name } : {}),
    type: device.type,
    subType: device.subType,
    chipType: device.chipType,
    hardwareVersion: device.hardwareVersion,
    firmwareVersion: device.firmwareVersion,
    uuid: device.uuid,
    macAddress: device.macAddress,
    ip: device.innerIp,
    ...(device.server ? { currentBroker: `${device.server}:${device.port ?? "?"}` } : {}),
    userId: device.userId,
    ...(abilities
      ? {
          encrypted: Namespace.EncryptEcdhe in abilities,
          wifiNamespace: Namespace.ConfigWifiX in abilities ? Namespace.ConfigWifiX : Namespace.ConfigWifi,
          ...withoutUndefined({ switchNamespace: toggleNamespaceOf(abilities) }),
        }
      : {}),
    mqtt: {
      username,
      ...(options.showPassword ? { password } : {}),
      basis: options.credentials.basis,
    },
    topics: { publish: devicePublishTopic(device.uuid), subscribe: deviceSubscribeTopic(device.uuid) },
    ...(options.wifiList ? { wifiList: options.wifiList } : {}),
  };
}

const PASSWORD_HINT = "(secret: add --show-password to print it)";

/** `passwordHint` replaces the hidden password's text where --show-password is not a flag (setup). */
export function formatDescription(description: DeviceDescription, passwordHint = PASSWORD_HINT): string {
  const rows: [string, string][] = [
    ...(description.name ? ([["Name", description.name]] as [string, string][]) : []),
    [
      "Device",
      `${description.type} ${description.subType} ${description.chipType} ` +
        `(hardware ${description.hardwareVersion}, firmware ${description.firmwareVersion})`.replace(
          /\s+/g,
          " ",
        ),
    ],
    ["UUID", description.uuid],
    ["MAC address", description.macAddress],
    ["IP address", description.ip || "(unknown)"],
    ["Current MQTT broker", description.currentBroker ?? "(none set)"],
    ["User id", description.userId || "(none)"],
  ];
  if (description.encrypted !== undefined) {
    rows.push(["HTTP encryption", description.encrypted ? "yes (ECDHE key exchange before setup)" : "no"]);
  }
  if (description.wifiNamespace) rows.push(["Wi-Fi message", description.wifiNamespace]);
  if (description.switchNamespace) rows.push(["Switch message", description.switchNamespace]);
  rows.push(
    ["MQTT username", description.mqtt.username],
    ["MQTT password", description.mqtt.password ?? passwordHint],
    ["  computed from", description.mqtt.basis],
    ["Publishes to", description.topics.publish],
    ["Subscribes to", description.topics.subscribe],
  );
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`);
  if (description.wifiList) {
    lines.push("", "Wi-Fi networks it sees:");
    for (const accessPoint of description.wifiList) {
      lines.push(
        `  ${accessPoint.ssid || "(hidden)"}  bssid ${accessPoint.bssid}  channel ${accessPoint.channel ?? "?"}  ` +
          `signal ${accessPoint.signal ?? "?"}  encryption ${accessPoint.encryption ?? "?"}  cipher ${accessPoint.cipher ?? "?"}`,
      );
    }
  }
  return lines.join("\n");
}
