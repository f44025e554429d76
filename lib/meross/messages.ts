import { z } from "zod";
import type { BrokerAddress } from "./broker-url.ts";
import { ProtocolError, type RequestMethod, unixSeconds } from "./envelope.ts";
import {
  deviceKeySchema,
  hostSchema,
  macAddressSchema,
  portSchema,
  ssidSchema,
  userIdSchema,
  uuidSchema,
  wifiPasswordSchema,
} from "./identifiers.ts";
import { decryptWifiPassword, encryptWifiPassword, type WifixIdentity } from "./wifi.ts";

/**
 * The messages the kit sends and reads, one section per namespace: the request a client sends
 * (a builder), and a zod parser for what comes back. Device-side helpers (for the simulator) sit
 * beside the message they belong to.
 */

export const Namespace = {
  SystemAll: "Appliance.System.All",
  SystemAbility: "Appliance.System.Ability",
  SystemFirmware: "Appliance.System.Firmware",
  SystemTime: "Appliance.System.Time",
  SystemClock: "Appliance.System.Clock",
  ConfigKey: "Appliance.Config.Key",
  ConfigWifi: "Appliance.Config.Wifi",
  ConfigWifiX: "Appliance.Config.WifiX",
  ConfigWifiList: "Appliance.Config.WifiList",
  EncryptEcdhe: "Appliance.Encrypt.ECDHE",
  EncryptSuite: "Appliance.Encrypt.Suite",
  ControlToggleX: "Appliance.Control.ToggleX",
  /** Legacy firmware's single-channel toggle; the monitor reads it, the kit never sends it. */
  ControlToggle: "Appliance.Control.Toggle",
  /** Metering plugs' power readings; the monitor reads them, the kit never asks. */
  ControlElectricity: "Appliance.Control.Electricity",
  ControlBind: "Appliance.Control.Bind",
  ControlConsumptionConfig: "Appliance.Control.ConsumptionConfig",
} as const;
export type Namespace = (typeof Namespace)[keyof typeof Namespace];

/** BS2 `DeviceManager.shouldEncryptMessage`: these go in plaintext even after the ECDHE exchange (§2.6). */
export const PLAINTEXT_NAMESPACES: ReadonlySet<string> = new Set([
  Namespace.SystemAll,
  Namespace.SystemFirmware,
  Namespace.SystemAbility,
  Namespace.EncryptEcdhe,
  Namespace.EncryptSuite,
]);

export interface DeviceRequest {
  method: RequestMethod;
  namespace: Namespace;
  payload: Record<string, unknown>;
}

/** Validates a caller's value; secrets are named but never echoed. */
export function checkedInput<S extends z.ZodType>(
  schema: S,
  value: unknown,
  field: string,
  secret = false,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const shown = secret ? "" : ` ${JSON.stringify(value)}`;
  throw new RangeError(`${field}${shown} ${result.error.issues[0]?.message ?? "is not valid"}`);
}

/** Parses a device's payload; a shape we do not know is a ProtocolError naming the field. */
function parsed<S extends z.ZodType>(schema: S, namespace: string, payload: unknown): z.output<S> {
  const result = schema.safeParse(payload);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = ["payload", ...(issue?.path ?? [])].join(".");
  throw new ProtocolError(`unexpected ${namespace} payload: ${path} ${issue?.message ?? "is not valid"}`);
}

const looksLikeUuid = z.string().refine((uuid) => uuidSchema.safeParse(uuid).success, "is not a 32-hex uuid");
const looksLikeMac = z
  .string()
  .refine((mac) => macAddressSchema.safeParse(mac).success, "is not a MAC address");
/** Older firmware writes numbers as strings (§3: `port`, `userId`); accept both. */
const numeric = z.union([
  z.number(),
  z
    .string()
    .regex(/^\s*-?\d+\s*$/)
    .transform(Number),
]);
const base64Text = z.base64().transform((text) => Buffer.from(text, "base64").toString("utf8"));

function toBase64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

// ── Appliance.System.All ────────────────────────────────────────────────────────────────────────

export function systemAllRequest(): DeviceRequest {
  return { method: "GET", namespace: Namespace.SystemAll, payload: {} };
}

const systemAllReplySchema = z.object({
  all: z
    .object({
      system: z
        .object({
          hardware: z
            .object({
              type: z.string().min(1),
              subType: z.string().default(""),
              chipType: z.string().default(""),
              version: z.string().default(""),
              uuid: looksLikeUuid,
              macAddress: looksLikeMac,
            })
            .loose(),
          firmware: z
            .object({
              version: z.string().default(""),
              innerIp: z.string().default(""),
              userId: z.union([z.number(), z.string()]).optional(),
              server: z.string().optional(),
              port: z.union([numeric, z.literal("")]).optional(),
            })
            .loose(),
        })
        .loose(),
    })
    .loose(),
});

export interface SystemAllSummary {
  type: string;
  subType: string;
  chipType: string;
  hardwareVersion: string;
  firmwareVersion: string;
  /** Verbatim, as the device spells it: the WifiX and LAN keys hash the device's own spelling. */
  uuid: string;
  macAddress: string;
  innerIp: string;
  /** Decimal string; "" when the device reports none. */
  userId: string;
  /** The broker the device dials now, when it has one. */
  server?: string;
  port?: number;
  raw: Record<string, unknown>;
}

export function parseSystemAll(payload: unknown): SystemAllSummary {
  const { all } = parsed(systemAllReplySchema, Namespace.SystemAll, payload);
  const { hardware, firmware } = all.system;
  const port = typeof firmware.port === "number" && firmware.port > 0 ? firmware.port : undefined;
  return {
    type: hardware.type,
    subType: hardware.subType,
    chipType: hardware.chipType,
    hardwareVersion: hardware.version,
    firmwareVersion: firmware.version,
    uuid: hardware.uuid,
    macAddress: hardware.macAddress,
    innerIp: firmware.innerIp,
    userId: firmware.userId === undefined ? "" : String(firmware.userId),
    ...(firmware.server ? { server: firmware.server } : {}),
    ...(port ? { port } : {}),
    raw: all,
  };
}

// ── Appliance.System.Ability ────────────────────────────────────────────────────────────────────

export function systemAbilityRequest(): DeviceRequest {
  return { method: "GET", namespace: Namespace.SystemAbility, payload: {} };
}

const abilityReplySchema = z.object({ ability: z.record(z.string(), z.unknown()) });

/** Namespace -> its parameters, e.g. `"Appliance.Control.Multiple": { maxCmdNum: 5 }`. */
export function parseAbilities(payload: unknown): Record<string, unknown> {
  return parsed(abilityReplySchema, Namespace.SystemAbility, payload).ability;
}

// ── Appliance.Config.Key ────────────────────────────────────────────────────────────────────────

export interface KeySettings {
  userId: string | number;
  key: string;
  /** Both gateways; §4.3: give the same broker twice rather than a different fallback. */
  brokers: [BrokerAddress, BrokerAddress];
}

function checkedBroker(broker: BrokerAddress, field: string): BrokerAddress {
  return {
    host: checkedInput(hostSchema, broker?.host, `${field} host`),
    port: checkedInput(portSchema, broker?.port, `${field} port`),
  };
}

/** `userId` and `key` as strings, ports as numbers, `redirect: 1`, as BS2 sends it (§4.3). */
export function configKeyRequest(settings: KeySettings): DeviceRequest {
  const userId = checkedInput(userIdSchema, settings.userId, "userId");
  const key = checkedInput(deviceKeySchema, settings.key, "device key", true);
  const first = checkedBroker(settings.brokers[0], "first broker");
  const second = checkedBroker(settings.brokers[1] ?? settings.brokers[0], "second broker");
  return {
    method: "SET",
    namespace: Namespace.ConfigKey,
    payload: {
      key: {
        userId,
        key,
        gateway: {
          host: first.host,
          port: first.port,
          secondHost: second.host,
          secondPort: second.port,
          redirect: 1,
        },
      },
    },
  };
}

/** What a device reads from Config.Key; BS1, CMP and MIOT send ports as strings, so both are accepted. */
export const configKeyPayloadSchema = z.object({
  key: z.object({
    userId: z.union([z.string(), z.number()]).transform(String),
    key: z.string(),
    gateway: z
      .object({
        host: z.string().min(1),
        port: numeric,
        secondHost: z.string().optional(),
        secondPort: numeric.optional(),
        redirect: z.number().optional(),
      })
      .loose(),
  }),
});

export function parseConfigKey(payload: unknown): z.output<typeof configKeyPayloadSchema>["key"] {
  return parsed(configKeyPayloadSchema, Namespace.ConfigKey, payload).key;
}

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
  ssid: string;
  password: string;
  /** As WifiList reported it; sent verbatim because some firmware spells it with dashes. */
  bssid?: string;
  channel?: number;
  encryption?: number;
  cipher?: number;
}

const channelSchema = z
  .number()
  .int()
  .min(1, "must be a 2.4 GHz channel, 1 to 13")
  .max(13, "must be a 2.4 GHz channel, 1 to 13");
const encryptionSchema = z.number().int().min(0).max(8, "must be 0 to 8 (6 = WPA2PSK)");
const cipherSchema = z.number().int().min(0).max(4, "must be 0 to 4 (3 = AES)");

function wifiPayload(network: WifiNetwork, password: string): Record<string, unknown> {
  const optional = {
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
  };
  const present = Object.entries(optional).filter(([, value]) => value !== undefined);
  return { wifi: { ssid: toBase64(network.ssid), password, ...Object.fromEntries(present) } };
}

function checkedNetwork(network: WifiNetwork): void {
  checkedInput(ssidSchema, network.ssid, "wifi ssid");
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
        ssid: base64Text,
        password,
        bssid: z.string().optional(),
        channel: numeric.optional(),
        encryption: numeric.optional(),
        cipher: numeric.optional(),
      })
      .loose(),
  });
}

/** The device side of Config.Wifi(X): decodes the SSID and recovers the password. */
export function parseWifiRequest(namespace: string, payload: unknown, device: WifixIdentity): WifiNetwork {
  const encrypted = namespace === Namespace.ConfigWifiX;
  const { wifi } = parsed(wifiRequestSchema(encrypted ? z.string() : base64Text), namespace, payload);
  const password = encrypted ? decryptWifiPassword(wifi.password, device) : wifi.password;
  const { ssid, bssid, channel, encryption, cipher } = wifi;
  const optional = Object.entries({ bssid, channel, encryption, cipher }).filter(([, v]) => v !== undefined);
  return { ssid, password, ...Object.fromEntries(optional) };
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
    ({ ssid, bssid, signal, channel, encryption, cipher }) => {
      const optional = Object.entries({ signal, channel, encryption, cipher }).filter(
        ([, v]) => v !== undefined,
      );
      return { ssid, bssid, ...Object.fromEntries(optional) };
    },
  );
}

/** The device side: SSIDs go base64 on the wire. */
export function wifiListPayload(accessPoints: WifiAccessPoint[]): Record<string, unknown> {
  return {
    wifiList: accessPoints.map((accessPoint) => ({ ...accessPoint, ssid: toBase64(accessPoint.ssid) })),
  };
}

// ── Appliance.Encrypt.ECDHE ─────────────────────────────────────────────────────────────────────

/** Step 1 of BS2's exchange: our uncompressed P-256 public key, base64. */
export function ecdheRequest(publicKey: Buffer): DeviceRequest {
  return {
    method: "SET",
    namespace: Namespace.EncryptEcdhe,
    payload: { ecdhe: { step: 1, pubkey: publicKey.toString("base64") } },
  };
}

const ecdhePayloadSchema = z.object({ ecdhe: z.object({ pubkey: z.base64().min(1) }).loose() });

/** The device's public key from the SETACK. */
export function parseEcdheReply(payload: unknown): Buffer {
  return Buffer.from(parsed(ecdhePayloadSchema, Namespace.EncryptEcdhe, payload).ecdhe.pubkey, "base64");
}

/** The device side: the controller's public key from the SET. */
export const parseEcdheRequest = parseEcdheReply;

export function ecdheReplyPayload(publicKey: Buffer): Record<string, unknown> {
  return { ecdhe: { pubkey: publicKey.toString("base64") } };
}

// ── Appliance.System.Time ───────────────────────────────────────────────────────────────────────

/** `[epoch seconds when it starts, UTC offset in seconds, 1 if daylight saving time]`. */
export type TimeRule = [number, number, 0 | 1];

function zoneFormatter(timezone: string): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: timezone, timeZoneName: "longOffset" });
  } catch {
    throw new RangeError(
      `time zone ${JSON.stringify(timezone)} is not an IANA zone name; use one such as Europe/Dublin or UTC`,
    );
  }
}

function utcOffsetSeconds(formatter: Intl.DateTimeFormat, epochSeconds: number): number {
  const name = formatter
    .formatToParts(epochSeconds * 1000)
    .find((part) => part.type === "timeZoneName")?.value;
  const match = /^GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(name ?? "");
  if (!match) throw new Error(`cannot read a UTC offset from ${JSON.stringify(name)}`);
  const [, sign, hours = "0", minutes = "0", seconds = "0"] = match;
  return (sign === "-" ? -1 : 1) * (Number(hours) * 3600 + Number(minutes) * 60 + Number(seconds));
}

const DAY_SECONDS = 86_400;
/** The Meross app sends 20 entries and MerossBLE 20 transitions (§4.1): about ten years of DST. */
const MAX_TIME_RULES = 20;
const TIME_RULE_YEARS = 10;

/** The first second in (after, until] whose offset differs from the one at `after`. */
function transitionSecond(offsetAt: (s: number) => number, after: number, until: number): number {
  const before = offsetAt(after);
  let low = after;
  let high = until;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (offsetAt(middle) === before) low = middle;
    else high = middle;
  }
  return high;
}

/**
 * The zone's rules from 1 January of the UTC year of `now`: the rule in force then (so the device
 * knows its offset before the first change), then each transition, up to 20 entries. The device
 * keeps the last rule for ever, so the list runs years ahead: a plug stays connected for months
 * and would otherwise miss next year's changes. DST is "offset above the lowest", which also holds
 * for southern zones and Dublin's inverted legal definition.
 */
export function timeRules(timezone: string, now: Date = new Date()): TimeRule[] {
  const formatter = zoneFormatter(timezone);
  const offsetAt = (epochSeconds: number) => utcOffsetSeconds(formatter, epochSeconds);
  const year = now.getUTCFullYear();
  const start = Date.UTC(year, 0, 1) / 1000;
  const end = Date.UTC(year + TIME_RULE_YEARS, 0, 1) / 1000;
  const changes: [number, number][] = [[start, offsetAt(start)]];
  let offset = offsetAt(start);
  for (let day = start; day < end && changes.length < MAX_TIME_RULES; day += DAY_SECONDS) {
    const next = offsetAt(day + DAY_SECONDS);
    if (next !== offset) {
      const second = transitionSecond(offsetAt, day, day + DAY_SECONDS);
      if (second < end) changes.push([second, offsetAt(second)]);
    }
    offset = next;
  }
  const standard = Math.min(...changes.map(([, offset]) => offset));
  return changes.map(([epoch, offset]) => [epoch, offset, offset > standard ? 1 : 0]);
}

export function systemTimeRequest(timezone: string, now: Date = new Date()): DeviceRequest {
  const zone = timezone.trim();
  return {
    method: "SET",
    namespace: Namespace.SystemTime,
    payload: { time: { timezone: zone, timestamp: unixSeconds(now), timeRule: timeRules(zone, now) } },
  };
}

const timeSchema = z
  .object({
    timestamp: numeric,
    timezone: z.string().default(""),
    timeRule: z.array(z.tuple([z.number(), z.number(), z.number()])).default([]),
  })
  .loose();

export function parseSystemTime(payload: unknown): z.output<typeof timeSchema> {
  return parsed(z.object({ time: timeSchema }), Namespace.SystemTime, payload).time;
}

// ── Appliance.Control.ToggleX ───────────────────────────────────────────────────────────────────

export function toggleXSetRequest(on: boolean, channel = 0): DeviceRequest {
  return {
    method: "SET",
    namespace: Namespace.ControlToggleX,
    payload: {
      togglex: {
        channel: checkedInput(z.number().int().nonnegative(), channel, "channel"),
        onoff: on ? 1 : 0,
      },
    },
  };
}

export function toggleXGetRequest(channel = 0): DeviceRequest {
  return {
    method: "GET",
    namespace: Namespace.ControlToggleX,
    payload: { togglex: { channel: checkedInput(z.number().int().nonnegative(), channel, "channel") } },
  };
}

export interface ToggleState {
  channel: number;
  on: boolean;
  /** When it last changed, epoch seconds (device clock). */
  lmTime?: number;
}

const toggleSchema = z
  .object({ channel: numeric.default(0), onoff: numeric, lmTime: numeric.optional() })
  .loose();
const toggleXSchema = z.object({ togglex: z.union([toggleSchema, z.array(toggleSchema)]) });

/** A SET, GETACK or PUSH: devices send one object or a list of channels; both come back as a list. */
export function parseToggleX(payload: unknown): ToggleState[] {
  const { togglex } = parsed(toggleXSchema, Namespace.ControlToggleX, payload);
  return (Array.isArray(togglex) ? togglex : [togglex]).map(({ channel, onoff, lmTime }) => ({
    channel,
    on: onoff === 1,
    ...(lmTime === undefined ? {} : { lmTime }),
  }));
}

export function toggleXPayload(states: ToggleState[]): Record<string, unknown> {
  return {
    togglex: states.map(({ channel, on, lmTime }) => ({
      channel,
      onoff: on ? 1 : 0,
      ...(lmTime === undefined ? {} : { lmTime }),
    })),
  };
}

// ── Appliance.System.Clock ──────────────────────────────────────────────────────────────────────

/** The device PUSHes its uptime (or epoch) this way; the cloud answers with the epoch now (§5.5). */
export function clockPayload(timestamp: number): Record<string, unknown> {
  return { clock: { timestamp } };
}

export function parseClock(payload: unknown): { timestamp: number } {
  return parsed(z.object({ clock: z.object({ timestamp: numeric }).loose() }), Namespace.SystemClock, payload)
    .clock;
}

// ── Appliance.Control.Bind ──────────────────────────────────────────────────────────────────────

const bindSchema = z.object({
  bind: z
    .object({
      bindTime: numeric.optional(),
      time: timeSchema.optional(),
      hardware: z.record(z.string(), z.unknown()).optional(),
      firmware: z.record(z.string(), z.unknown()).optional(),
    })
    .loose(),
});

export type BindInfo = z.output<typeof bindSchema>["bind"];

/** What newer firmware SETs after connecting: its System.All hardware/firmware and clock. */
export function bindPayload(bind: BindInfo): Record<string, unknown> {
  return { bind };
}

export function parseBind(payload: unknown): BindInfo {
  return parsed(bindSchema, Namespace.ControlBind, payload).bind;
}

// ── Appliance.Control.ConsumptionConfig ─────────────────────────────────────────────────────────

const consumptionConfigSchema = z.object({
  config: z
    .object({ voltageRatio: numeric, electricityRatio: numeric, maxElectricityCurrent: numeric.optional() })
    .loose(),
});

export type ConsumptionConfig = z.output<typeof consumptionConfigSchema>["config"];

export function consumptionConfigPayload(config: ConsumptionConfig): Record<string, unknown> {
  return { config };
}

export function parseConsumptionConfig(payload: unknown): ConsumptionConfig {
  return parsed(consumptionConfigSchema, Namespace.ControlConsumptionConfig, payload).config;
}
