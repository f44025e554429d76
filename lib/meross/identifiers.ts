import { z } from "zod";

/**
 * Field schemas for everything a user or a device hands us. lib/config composes them into the
 * stack and script schemas, so each rule (and its error message) exists once.
 */

const MAC_PATTERN = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$/i;

/** A MAC address in any common spelling, normalised to the device's own form: `aa:bb:cc:dd:ee:ff`. */
export const macAddressSchema = z
  .string()
  .trim()
  .regex(MAC_PATTERN, "must be a MAC address such as 48:e1:e9:b6:2c:49 (colons, dashes or none)")
  .transform((mac) =>
    mac
      .replace(/[:-]/g, "")
      .toLowerCase()
      .replace(/(..)(?!$)/g, "$1:"),
  );

/** A device uuid: 32 hex digits, lowercase. */
export const uuidSchema = z
  .string()
  .trim()
  .regex(/^[0-9a-f]{32}$/i, "must be the device uuid: 32 hex digits")
  .transform((uuid) => uuid.toLowerCase());

/** The numeric Meross user id the device puts in front of its MQTT password. */
export const userIdSchema = z.union([
  z
    .number()
    .int()
    .nonnegative()
    .transform((n) => String(n)),
  z
    .string()
    .trim()
    .regex(/^\d{1,20}$/, "must be a number of 1 to 20 digits, such as 0 or 1234"),
]);

/**
 * The key a device signs with now: anything it may already hold. Factory devices have none (""), BS2
 * and meross_lan default to "meross", the Meross app sets the account's 32-hex cloud key. Printable
 * ASCII without spaces only because a key is typed on command lines.
 */
export const deviceKeySchema = z
  .string()
  .max(64, "must be at most 64 characters")
  .regex(/^[\x21-\x7e]*$/, "must be printable ASCII without spaces");

export const NEW_KEY_MIN_LENGTH = 16;

/**
 * A key we set on devices ourselves. It is the only secret between a device and anyone on the LAN:
 * it signs every command over HTTP and MQTT, and md5(mac + key) is the device's broker password, so
 * with 16 random-looking characters nobody can guess it or brute-force it from a sniffed signature.
 */
export const newDeviceKeySchema = deviceKeySchema.min(
  NEW_KEY_MIN_LENGTH,
  `must be at least ${NEW_KEY_MIN_LENGTH} characters (it signs every command and makes the device's broker password)`,
);

export const ssidSchema = z.string().refine((ssid) => {
  const bytes = Buffer.byteLength(ssid, "utf8");
  return bytes >= 1 && bytes <= 32;
}, "must be 1 to 32 bytes long (Wi-Fi limit)");

/**
 * A WPA/WPA2-PSK secret (IEEE 802.11i): a passphrase of 8 to 63 printable ASCII characters, or the
 * 256-bit key itself as exactly 64 hex digits. Anything else cannot join a WPA network.
 */
export const wifiPasswordSchema = z
  .string()
  .refine(
    (password) => /^[\x20-\x7e]{8,63}$/.test(password) || /^[0-9a-f]{64}$/i.test(password),
    "must be 8 to 63 printable ASCII characters (no control characters), or exactly 64 hex digits (WPA)",
  );

const HOSTNAME_PATTERN =
  /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const IPV4_PATTERN = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function isIpv4(host: string): boolean {
  return IPV4_PATTERN.test(host);
}

/** A broker host as the device will dial it: an IPv4 address or a DNS name (devices have no IPv6). */
export const hostSchema = z
  .string()
  .trim()
  .refine(
    (host) => isIpv4(host) || (HOSTNAME_PATTERN.test(host) && !/^[\d.]+$/.test(host)),
    "must be an IPv4 address or a DNS name, such as 192.168.1.10 or broker.home.arpa",
  )
  .transform((host) => host.toLowerCase());

export const portSchema = z.coerce
  .number()
  .int("must be a whole number")
  .min(1, "must be a port from 1 to 65535")
  .max(65535, "must be a port from 1 to 65535");
