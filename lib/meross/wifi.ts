import { md5Hex } from "./hash.ts";
import { asciiKey, decryptNulPadded, encryptNulPadded } from "./lan-crypto.ts";

/** The hardware fields the WifiX key is made of, verbatim from System.All: the device hashes its own spelling. */
export interface WifixIdentity {
  type: string;
  uuid: string;
  macAddress: string;
}

/** `md5hex(type + uuid + mac)` as 32 ASCII bytes (protocol §4.4, BS2 `wifi.ts`). */
export function wifixKey({ type, uuid, macAddress }: WifixIdentity): Buffer {
  return asciiKey(md5Hex(`${type}${uuid}${macAddress}`));
}

/** The `password` field of Config.WifiX: always 1–16 NULs, no PKCS#7, so 16/32/48/64-byte passwords stay intact. */
export function encryptWifiPassword(password: string, device: WifixIdentity): string {
  return encryptNulPadded(Buffer.from(password, "utf8"), wifixKey(device));
}

export function decryptWifiPassword(encrypted: string, device: WifixIdentity): string {
  return decryptNulPadded(encrypted, wifixKey(device)).toString("utf8");
}
