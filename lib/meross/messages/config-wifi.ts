import { z } from "zod";
import { checkedInput, withoutUndefined } from "../fields.ts";
import { ssidSchema, wifiPasswordSchema } from "../identifiers.ts";
import { decryptWifiPassword, encryptWifiPassword, type WifixIdentity } from "../wifi.ts";
import { type DeviceRequest, Namespace } from "./namespace.ts";
import { base64Text, looksLikeMac, numeric, parsed, toBase64 } from "./payload.ts";

// ── Appliance.Config.Wifi / Appliance.Config.WifiX ──────────────────────────────────────────────

/** §4.4 enums (BS2 `wifi.ts`, CMP). */
export const WifiEncryption = {
  OPEN: 0,
  SHARE: 1,
  WEPAUTO: 2,
  WPA1: 3,
  WPA1PSK: 4,
  WPA2: 5,
  WPA2PSK: 6,
  WPA1WPA2: 7,
  WPA1PSKWPA2PSK: 8,
} as const;
export const WifiCipher = { NONE: 0, WEP: 1, TKIP: 2, AES: 3, TKIPAES: 4 } as const;

export interface WifiNetwork {
  /** Absent when the network is named by `bssid` alone (BS2 sends that form, §4.1). */
  ssid?: string;
  /** "" for an open network. */
  password: string;
  /** As WifiList reported it; sent verbatim because some firmware spells it with dashes. */
  bssid?: string;
  channel?: number;
  encryption?: number;
  cipher?: number;
}

/** How a message or a log line names the network: its SSID, or its BSSID when that is all there is. */
export function networkLabel(network: Pick<WifiNetwork, "ssid" | "bssid">): string {
  return network.ssid !== undefined ? `"${network.ssid}"` : `the access point ${network.bssid ?? "(none)"}`;
}

/** Whether `encryption` (§4.4 enum) is an open network: OPEN, as WifiList reports one. */
export function isOpenEncryption(encryption: number | undefined): boolean {
  return encryption === WifiEncryption.OPEN;
}

const channelSchema = z
  .number()
  .int()
  .min(1, "must be a 2.4 GHz channel, 1 to 13")
  .max(13, "must be a 2.4 GHz channel, 1 to 13");
const encryptionSchema = z.number().int().min(0).max(8, "must be 0 to 8 (6 = WPA2PSK)");
const cipherSchema = z.number().int().min(0).max(4, "must be 0 to 4 (3 = AES)");

/**
 * Optional keys are left out rather than sent empty, as BS2 does (`filterUndefined`). An open network
 * still carries `password`, empty (base64 of "" for Config.Wifi, the encryption of "" for WifiX), as
 * Custom-Meross-Pairer and MerossBLE send it.
 */
function wifiPayload(network: WifiNetwork, password: string): Record<string, unknown> {
  const optional = withoutUndefined({
    bssid: network.bssid === undefined ? undefined : checkedInput(looksLikeMac, network.bssid, "wifi bssid"),
    channel:
      network.channel === undefined
        ? undefined
        : checkedInput(channelSchema, network.channel, "wifi channel"),
    encryption:
      network.encryption === undefined
        ? undefined
        : checkedInput(encryptionSchema, network.encryption, "wifi encryption"),
    cipher:
      network.cipher === undefined ? undefined : checkedInput(cipherSchema, network.cipher, "wifi cipher"),
  });
  const ssid = network.ssid === undefined ? {} : { ssid: toBase64(network.ssid) };
  return { wifi: { ...ssid, password, ...optional } };
}

/** WPA rules before anything is sent: an open network has no password, any other a WPA secret. */
function checkedNetwork(network: WifiNetwork): void {
  if (network.ssid === undefined && network.bssid === undefined) {
    throw new RangeError("wifi network needs an ssid or a bssid");
  }
  if (network.ssid !== undefined) checkedInput(ssidSchema, network.ssid, "wifi ssid");
  if (network.password === "") {
    if (network.encryption !== undefined && !isOpenEncryption(network.encryption)) {
      throw new RangeError(
        `wifi password is empty but encryption ${network.encryption} is not an open network (0)`,
      );
    }
    return;
  }
  if (isOpenEncryption(network.encryption)) {
    throw new RangeError("wifi password was given for an open network (encryption 0); leave it out");
  }
  checkedInput(wifiPasswordSchema, network.password, "wifi password", true);
}

/** Legacy firmware: the password travels base64-encoded only. */
export function configWifiRequest(network: WifiNetwork): DeviceRequest {
  checkedNetwork(network);
  return {
    method: "SET",
    namespace: Namespace.ConfigWifi,
    payload: wifiPayload(network, toBase64(network.password)),
  };
}

/** Devices listing Config.WifiX: same payload, password AES-encrypted with the device's own identity. */
export function configWifiXRequest(network: WifiNetwork, device: WifixIdentity): DeviceRequest {
  checkedNetwork(network);
  return {
    method: "SET",
    namespace: Namespace.ConfigWifiX,
    payload: wifiPayload(network, encryptWifiPassword(network.password, device)),
  };
}

function wifiRequestSchema(password: z.ZodType<string>) {
  return z.object({
    wifi: z
      .object({
        ssid: base64Text.optional(),
        password: password.default(""),
        bssid: z.string().optional(),
        channel: numeric.optional(),
        encryption: numeric.optional(),
        cipher: numeric.optional(),
      })
      .loose(),
  });
}

/** The device side of Config.Wifi(X): decodes the SSID and recovers the password ("" when none was sent). */
export function parseWifiRequest(namespace: string, payload: unknown, device: WifixIdentity): WifiNetwork {
  const encrypted = namespace === Namespace.ConfigWifiX;
  const { wifi } = parsed(wifiRequestSchema(encrypted ? z.string() : base64Text), namespace, payload);
  const password =
    encrypted && wifi.password !== "" ? decryptWifiPassword(wifi.password, device) : wifi.password;
  const { ssid, bssid, channel, encryption, cipher } = wifi;
  return { password, ...withoutUndefined({ ssid, bssid, channel, encryption, cipher }) };
}

// ── Appliance.Config.WifiList ───────────────────────────────────────────────────────────────────

/** BS2 sends `{trace: {}}`; BS1's `{}` works too. */
export function wifiListRequest(): DeviceRequest {
  return { method: "GET", namespace: Namespace.ConfigWifiList, payload: { trace: {} } };
}

export interface WifiAccessPoint {
  ssid: string;
  bssid: string;
  /** 0–100. */
  signal?: number;
  channel?: number;
  encryption?: number;
  cipher?: number;
}

const wifiListReplySchema = z.object({
  wifiList: z.array(
    z
      .object({
        ssid: base64Text,
        bssid: z.string(),
        signal: numeric.optional(),
        channel: numeric.optional(),
        encryption: numeric.optional(),
        cipher: numeric.optional(),
      })
      .loose(),
  ),
});

export function parseWifiList(payload: unknown): WifiAccessPoint[] {
  return parsed(wifiListReplySchema, Namespace.ConfigWifiList, payload).wifiList.map(
    ({ ssid, bssid, signal, channel, encryption, cipher }) => ({
      ssid,
      bssid,
      ...withoutUndefined({ signal, channel, encryption, cipher }),
    }),
  );
}

/** The device side: SSIDs go base64 on the wire. */
export function wifiListPayload(accessPoints: WifiAccessPoint[]): Record<string, unknown> {
  return {
    wifiList: accessPoints.map((accessPoint) => ({ ...accessPoint, ssid: toBase64(accessPoint.ssid) })),
  };
}
