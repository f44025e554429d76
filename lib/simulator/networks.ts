import { wifiPasswordSchema } from "../meross/identifiers.ts";
import type { WifiAccessPoint, WifiNetwork } from "../meross/messages/index.ts";
import { WifiCipher, WifiEncryption } from "../meross/messages/index.ts";

/** An access point the simulated device can "see", with the passphrase it will accept (undefined = open). */
export interface SimulatedAccessPoint extends WifiAccessPoint {
  password?: string;
}

/** The network tests and users name when they provision a simulated device. */
export const SIMULATED_HOME_NETWORK = {
  ssid: "SimulatedHome",
  password: "simulated-wifi-pass",
  bssid: "2c:6e:a4:55:c6:47",
  signal: 100,
  channel: 3,
  encryption: WifiEncryption.WPA2PSK,
  cipher: WifiCipher.AES,
} as const satisfies SimulatedAccessPoint;

export const DEFAULT_ACCESS_POINTS: readonly SimulatedAccessPoint[] = [
  SIMULATED_HOME_NETWORK,
  {
    ssid: "Neighbour-2.4G",
    password: "not-your-network",
    bssid: "a0:63:91:1e:0b:7d",
    signal: 41,
    channel: 11,
    encryption: WifiEncryption.WPA1PSKWPA2PSK,
    cipher: WifiCipher.TKIPAES,
  },
  {
    ssid: "Cafe Guest",
    bssid: "f4:f2:6d:90:12:3c",
    signal: 18,
    channel: 6,
    encryption: WifiEncryption.OPEN,
    cipher: WifiCipher.NONE,
  },
];

/** What the access point list on the wire shows: never the passphrases. */
export function visibleAccessPoints(accessPoints: readonly SimulatedAccessPoint[]): WifiAccessPoint[] {
  return accessPoints.map(({ password: _password, ...visible }) => visible);
}

/**
 * Whether the device would join `network` after its reboot, and if not why.
 * - Named by SSID: a listed SSID needs its passphrase (and its BSSID when one is given); an unlisted
 *   one is taken as a hidden network in range, so users can provision the simulator with their own
 *   SSID: open when no password came, else the password must be a WPA secret (garbage from a wrong
 *   WifiX key is not).
 * - Named by BSSID alone (BS2 sends that form when only `--wifi-bssid` is given, §4.1): the access
 *   point with that BSSID, if the device can see one. Whether real firmware joins on a BSSID alone is
 *   not documented anywhere; BS2 relies on it, so the simulator does too.
 * An open access point (OPEN/NONE in the scan, as Custom-Meross-Pairer sends it) is joined with an
 * empty password.
 */
export function joinFailure(
  network: WifiNetwork,
  accessPoints: readonly SimulatedAccessPoint[],
): string | undefined {
  if (network.ssid === undefined) {
    if (network.bssid === undefined) return "no SSID and no BSSID: nothing to join";
    const byBssid = accessPoints.find(
      (candidate) => normalBssid(candidate.bssid) === normalBssid(network.bssid as string),
    );
    if (byBssid === undefined) return `no access point ${network.bssid} in range`;
    return passwordFailure(network, byBssid);
  }
  const accessPoint = accessPoints.find((candidate) => candidate.ssid === network.ssid);
  if (accessPoint === undefined) {
    return network.password === "" || isWpaSecret(network.password)
      ? undefined
      : "the password does not decode to a WPA passphrase (wrong WifiX key or padding?)";
  }
  if (network.bssid !== undefined && normalBssid(network.bssid) !== normalBssid(accessPoint.bssid)) {
    return `no access point ${network.bssid} for SSID ${network.ssid} (it is ${accessPoint.bssid})`;
  }
  return passwordFailure(network, accessPoint);
}

function passwordFailure(network: WifiNetwork, accessPoint: SimulatedAccessPoint): string | undefined {
  if (accessPoint.password === undefined) return undefined;
  return network.password === accessPoint.password
    ? undefined
    : `wrong password for ${accessPoint.ssid || accessPoint.bssid} (authentication failed)`;
}

function normalBssid(bssid: string): string {
  return bssid.toLowerCase().replaceAll("-", ":");
}

/** U+FFFD is what undecodable bytes become: a wrong key or padding, not something a user typed. */
function isWpaSecret(password: string): boolean {
  return wifiPasswordSchema.safeParse(password).success && !/[\p{Cc}\ufffd]/u.test(password);
}
