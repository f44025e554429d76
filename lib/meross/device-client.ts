import type { MerossMessage, RequestMethod } from "./envelope.ts";
import { DeviceHttpError, DeviceUnreachableError, HttpTransport } from "./http-transport.ts";
import { macAddressSchema, uuidSchema } from "./identifiers.ts";
import { ecdhKeyPair, ecdhSharedKey, type LanIdentity, lanAesKey } from "./lan-crypto.ts";
import {
  configKeyRequest,
  configWifiRequest,
  configWifiXRequest,
  type DeviceRequest,
  ecdheRequest,
  type KeySettings,
  Namespace,
  PLAINTEXT_NAMESPACES,
  parseAbilities,
  parseEcdheReply,
  parseSystemAll,
  parseWifiList,
  type SystemAllSummary,
  systemAbilityRequest,
  systemAllRequest,
  systemTimeRequest,
  type WifiAccessPoint,
  type WifiNetwork,
  wifiListRequest,
} from "./messages/index.ts";
import { type DeviceTransport, requestOver } from "./request.ts";
import { uuidFromDeviceTopic } from "./topics.ts";
import type { WifixIdentity } from "./wifi.ts";

export { DeviceHttpError, DeviceUnreachableError } from "./http-transport.ts";

export interface DeviceClientOptions {
  ip: string;
  port?: number;
  /** The key the device checks signatures against: BS2's "meross" or "" in pairing mode, ours afterwards. */
  key: string;
  timeoutMs?: number;
  attempts?: number;
  retryDelayMs?: number;
}

export interface ExchangeKeysOptions {
  /** Our ECDH private key: BS2's default (the LAN key of the identity) unless given, or "random". */
  privateKey?: Buffer | "random";
}

/**
 * The LAN key mode (§2.6, ML): the body of every request but System.Ability encrypted with
 * `md5(uuid[3:22] + key[1:9] + mac + key[10:28])`. Keys are tried in order, the first that the
 * device does not hang up on staying first: after Config.Key a device may derive its key from the
 * new device key (the simulator does) or keep the one of the key it had (meross_lan's emulator
 * computes it once); which one real firmware uses is not documented.
 */
interface LanKeyMode {
  identity: { uuid: string; macAddress: string };
  keys: Buffer[];
}

/** A device's local HTTP API (protocol §1–§4), one request at a time, encrypted once keys are exchanged. */
export class DeviceClient {
  private readonly transport: HttpTransport;
  /** The HTTP transport, trying the given encryption keys in turn (`undefined`: plaintext). */
  private readonly withKeyFallback: DeviceTransport<(Buffer | undefined)[]>;
  private key: string;
  private sessionKey: Buffer | undefined;
  private lanKey: LanKeyMode | undefined;

  constructor(options: DeviceClientOptions) {
    this.transport = new HttpTransport(options);
    this.withKeyFallback = {
      replyAddress: this.transport.replyAddress,
      exchange: (message, keys) => this.sendWith(message, keys),
    };
    this.key = options.key;
  }

  get url(): string {
    return this.transport.url;
  }

  /** Whether later requests go encrypted (after `exchangeKeys`, or with the LAN key). */
  get encrypted(): boolean {
    return this.sessionKey !== undefined || this.lanKey !== undefined;
  }

  /** Signs, sends (encrypted where BS2 or, with the LAN key, ML encrypts), and checks the reply answers this request. */
  async request(
    method: RequestMethod,
    namespace: string,
    payload: Record<string, unknown> = {},
  ): Promise<MerossMessage> {
    const keys = this.encryptionKeysFor(namespace);
    return requestOver(
      this.withKeyFallback,
      { method, namespace, payload },
      { key: this.key },
      keys.length > 0 ? keys : [undefined],
    );
  }

  /** Sends with the first key; a refusal moves on to the next, and the key that worked goes first. */
  private async sendWith(message: MerossMessage, keys: (Buffer | undefined)[]): Promise<MerossMessage> {
    const [encryptionKey, ...others] = keys;
    let reply: MerossMessage;
    try {
      reply = await this.transport.exchange(message, { encryptionKey });
    } catch (error) {
      if (others.length > 0 && isRefusal(error)) return this.sendWith(message, others);
      throw error;
    }
    if (this.lanKey && encryptionKey && this.lanKey.keys[0] !== encryptionKey) {
      this.lanKey.keys = [encryptionKey, ...this.lanKey.keys.filter((key) => key !== encryptionKey)];
    }
    return reply;
  }

  private encryptionKeysFor(namespace: string): Buffer[] {
    if (this.lanKey) return namespace === Namespace.SystemAbility ? [] : [...this.lanKey.keys];
    if (this.sessionKey && !PLAINTEXT_NAMESPACES.has(namespace)) return [this.sessionKey];
    return [];
  }

  private send(request: DeviceRequest): Promise<MerossMessage> {
    return this.request(request.method, request.namespace, request.payload);
  }

  /**
   * System.All, in plaintext as BS2 reads devices in pairing mode. A device on a LAN whose firmware
   * encrypts refuses that instead: it hangs up (meross_lan issue #456) or, as meross_lan's emulator
   * does, answers HTTP 500. Then, as meross_lan's config flow does, the plaintext System.Ability
   * decides: when it lists Encrypt.ECDHE or Encrypt.Suite, the uuid comes from its reply's `from`,
   * the MAC from the uuid's last 12 digits (ML `get_macaddress_from_uuid`), and every later request
   * goes with the LAN key of the key this client signs with.
   */
  async getSystemAll(): Promise<SystemAllSummary> {
    try {
      return parseSystemAll((await this.send(systemAllRequest())).payload);
    } catch (error) {
      if (this.encrypted || !isRefusal(error)) throw error;
      const identity = await this.encryptingIdentity().catch(() => undefined);
      if (!identity) throw error;
      this.lanKey = { identity, keys: [lanAesKey({ ...identity, key: this.key })] };
    }
    return parseSystemAll((await this.send(systemAllRequest())).payload);
  }

  /** The uuid a device names in its System.Ability reply (`from`, else `uuid`) and its MAC, if it encrypts. */
  private async encryptingIdentity(): Promise<{ uuid: string; macAddress: string } | undefined> {
    const reply = await this.send(systemAbilityRequest());
    const abilities = parseAbilities(reply.payload);
    if (!(Namespace.EncryptEcdhe in abilities || Namespace.EncryptSuite in abilities)) return undefined;
    const uuid = uuidSchema.safeParse(uuidFromDeviceTopic(reply.header.from ?? "") ?? reply.header.uuid);
    if (!uuid.success) return undefined;
    return { uuid: uuid.data, macAddress: macAddressSchema.parse(uuid.data.slice(-12)) };
  }

  async getAbilities(): Promise<Record<string, unknown>> {
    return parseAbilities((await this.send(systemAbilityRequest())).payload);
  }

  /**
   * BS2's Encrypt.ECDHE step (§2.6): send our P-256 public key, derive the shared AES key from the
   * device's. Every later request except the plaintext namespaces is then encrypted.
   */
  async exchangeKeys(identity: LanIdentity, options: ExchangeKeysOptions = {}): Promise<void> {
    const privateKey = options.privateKey ?? lanAesKey(identity);
    const ours = ecdhKeyPair(privateKey === "random" ? undefined : privateKey);
    const reply = await this.send(ecdheRequest(ours.publicKey));
    this.sessionKey = ecdhSharedKey(ours.privateKey, parseEcdheReply(reply.payload));
  }

  async getWifiList(): Promise<WifiAccessPoint[]> {
    return parseWifiList((await this.send(wifiListRequest())).payload);
  }

  async setTime(timezone: string, now: Date = new Date()): Promise<void> {
    await this.send(systemTimeRequest(timezone, now));
  }

  /** The device checks signatures against the new key from now on, so later requests use it. */
  async setKey(settings: KeySettings): Promise<void> {
    await this.send(configKeyRequest(settings));
    this.key = settings.key;
    if (this.lanKey) this.lanKey.keys.unshift(lanAesKey({ ...this.lanKey.identity, key: settings.key }));
  }

  /** WifiX (encrypted password) when the caller passes the device identity, else legacy Config.Wifi. */
  async setWifi(network: WifiNetwork, options: { wifix?: WifixIdentity } = {}): Promise<void> {
    await this.send(options.wifix ? configWifiXRequest(network, options.wifix) : configWifiRequest(network));
  }
}

/**
 * How encrypting firmware turns down a body it cannot read: it hangs up (ML's note on real devices),
 * or answers an HTTP error (meross_lan's emulator: 500 "Encryption required").
 */
function isRefusal(error: unknown): boolean {
  if (error instanceof DeviceHttpError) return true;
  return (
    error instanceof DeviceUnreachableError && (error.cause as { code?: unknown })?.code === "ECONNRESET"
  );
}
