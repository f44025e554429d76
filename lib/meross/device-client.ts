import {
  buildMessage,
  checkReply,
  type MerossMessage,
  ProtocolError,
  parseMessage,
  type RequestMethod,
} from "./envelope.ts";
import { HttpTransport } from "./http-transport.ts";
import { ecdhKeyPair, ecdhSharedKey, type LanIdentity, lanAesKey } from "./lan-crypto.ts";
import {
  configKeyRequest,
  configWifiRequest,
  configWifiXRequest,
  type DeviceRequest,
  ecdheRequest,
  type KeySettings,
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

/** A device's local HTTP API (protocol §1–§4), one request at a time, encrypted once keys are exchanged. */
export class DeviceClient {
  private readonly transport: HttpTransport;
  private key: string;
  private sessionKey: Buffer | undefined;

  constructor(options: DeviceClientOptions) {
    this.transport = new HttpTransport(options);
    this.key = options.key;
  }

  get url(): string {
    return this.transport.url;
  }

  /** Whether later requests go encrypted (after `exchangeKeys`). */
  get encrypted(): boolean {
    return this.sessionKey !== undefined;
  }

  /** Signs, sends (encrypted where BS2 encrypts), and checks the reply answers this request. */
  async request(
    method: RequestMethod,
    namespace: string,
    payload: Record<string, unknown> = {},
  ): Promise<MerossMessage> {
    const message = buildMessage({ method, namespace, payload, key: this.key, from: this.transport.url });
    const encryptionKey = PLAINTEXT_NAMESPACES.has(namespace) ? undefined : this.sessionKey;
    const replyText = await this.transport.send(JSON.stringify(message), { encryptionKey });
    return checkReply(message, parseReply(replyText, namespace, encryptionKey !== undefined));
  }

  private send(request: DeviceRequest): Promise<MerossMessage> {
    return this.request(request.method, request.namespace, request.payload);
  }

  async getSystemAll(): Promise<SystemAllSummary> {
    return parseSystemAll((await this.send(systemAllRequest())).payload);
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
  }

  /** WifiX (encrypted password) when the caller passes the device identity, else legacy Config.Wifi. */
  async setWifi(network: WifiNetwork, options: { wifix?: WifixIdentity } = {}): Promise<void> {
    await this.send(options.wifix ? configWifiXRequest(network, options.wifix) : configWifiRequest(network));
  }
}

function parseReply(text: string, namespace: string, encrypted: boolean): MerossMessage {
  try {
    return parseMessage(text);
  } catch (error) {
    if (!encrypted || !(error instanceof ProtocolError)) throw error;
    throw new ProtocolError(
      `the encrypted reply to ${namespace} did not decrypt to a Meross message: ` +
        "the device and we hold different session keys. Run the key exchange again (or restart provisioning).",
    );
  }
}
