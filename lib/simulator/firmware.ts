import type { BrokerAddress } from "../meross/broker-url.ts";
import {
  buildReply,
  type MerossMessage,
  type Method,
  ProtocolError,
  WRONG_KEY_CODE,
} from "../meross/envelope.ts";
import { ecdhKeyPair, ecdhSharedKey } from "../meross/lan-crypto.ts";
import {
  ecdheReplyPayload,
  Namespace,
  parseConfigKey,
  parseEcdheRequest,
  parseSystemTime,
  parseToggle,
  parseToggleX,
  parseWifiRequest,
  type ToggleState,
  togglePayload,
  toggleXPayload,
  type WifiNetwork,
  wifiListPayload,
} from "../meross/messages/index.ts";
import { isSignatureValid } from "../meross/sign.ts";
import type { TimeRule } from "../meross/time-rules.ts";
import { devicePublishTopic } from "../meross/topics.ts";
import type { DeviceClock } from "./clock.ts";
import { abilities, type ModelProfile } from "./models.ts";
import { type SimulatedAccessPoint, visibleAccessPoints } from "./networks.ts";

export type DeviceMode = "pairing" | "rebooting" | "connecting" | "online";

/** The Wi-Fi settings the device received, password as the firmware decoded it (never logged). */
export interface ConfiguredWifi extends WifiNetwork {
  namespace: string;
}

export interface DeviceState {
  mode: DeviceMode;
  /** undefined until Config.Key: the factory state, in which signatures are not checked. */
  key: string | undefined;
  userId: string;
  gateways: [BrokerAddress, BrokerAddress] | undefined;
  /** The last Wi-Fi setting, password as the firmware decoded it. */
  wifi: ConfiguredWifi | undefined;
  /** Why the last Wi-Fi join failed; cleared by the next Wi-Fi setting. */
  wifiFailure: string | undefined;
  timezone: string;
  timeRule: TimeRule[];
  toggles: ToggleState[];
  /** The key agreed through Encrypt.ECDHE; forgotten at reboot. */
  lanSessionKey: Buffer | undefined;
  /** The broker of the current MQTT session. */
  broker: BrokerAddress | undefined;
  /** Which of the device's session messages the broker side has answered in this MQTT session. */
  session: { clock: boolean; bind: boolean; consumptionConfig: boolean };
}

export interface FirmwareIdentity {
  profile: ModelProfile;
  uuid: string;
  macAddress: string;
  /** The address its HTTP server answers on, reported as `firmware.innerIp`. */
  innerIp: string;
  accessPoints: readonly SimulatedAccessPoint[];
}

export interface FirmwareHooks {
  /** Wi-Fi SETACK has been sent: the device reboots onto that network. */
  onWifiConfigured(wifi: ConfiguredWifi): void;
  onToggled(changed: ToggleState[], request: MerossMessage): void;
  /** A request answered with ERROR 5000; the reason is the simulator's, the device sends none. */
  onRefused(request: MerossMessage, reason: string): void;
}

/**
 * What real firmware answers to a request it cannot carry out: `{"error":{"code":5000}}`, no detail
 * (meross_lan `emulator_traces`: msh300, ms130 and smoke-alarm hubs answering namespaces they list
 * but do not serve). Whether firmware sends 5000 or resets the connection for a namespace it does
 * not list at all, or for a malformed payload, is not documented; the traces show both for unlisted
 * namespaces. The simulator answers 5000 for both, never a code of its own (ML's emulator uses -1,
 * which no device sends).
 */
const REQUEST_FAILED_CODE = 5000;

/** The device's answer to one request, whichever transport carried it. */
export class Firmware {
  readonly state: DeviceState = {
    mode: "pairing",
    key: undefined,
    userId: "0",
    gateways: undefined,
    wifi: undefined,
    wifiFailure: undefined,
    timezone: "",
    timeRule: [],
    toggles: [{ channel: 0, on: false, lmTime: 0 }],
    lanSessionKey: undefined,
    broker: undefined,
    session: { clock: false, bind: false, consumptionConfig: false },
  };

  constructor(
    readonly identity: FirmwareIdentity,
    readonly clock: DeviceClock,
    private readonly hooks: FirmwareHooks,
  ) {}

  /** Replies are signed with the device key; the factory key is empty (BS1's default). */
  get signingKey(): string {
    return this.state.key ?? "";
  }

  get publishTopic(): string {
    return devicePublishTopic(this.identity.uuid);
  }

  /** Whether the device takes this request: anything before Config.Key, only correct signatures after. */
  acceptsSignature(message: MerossMessage): boolean {
    return this.state.key === undefined || isSignatureValid(message.header, this.state.key);
  }

  reply(request: MerossMessage, payload: Record<string, unknown> = {}, method?: Method): MerossMessage {
    return buildReply(request, {
      key: this.signingKey,
      from: this.publishTopic,
      payload,
      now: this.clock.date(),
      ...(method ? { method } : {}),
    });
  }

  handle(request: MerossMessage): MerossMessage {
    if (!this.acceptsSignature(request)) {
      return this.reply(request, { error: { code: WRONG_KEY_CODE, detail: "sign error" } }, "ERROR");
    }
    try {
      return this.dispatch(request);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.hooks.onRefused(request, error.message);
      return this.reply(request, { error: { code: REQUEST_FAILED_CODE } }, "ERROR");
    }
  }

  systemAllPayload(): Record<string, unknown> {
    return {
      all: {
        system: {
          hardware: this.hardware(),
          firmware: this.firmware(),
          time: this.timePayload(),
          online: { status: this.state.mode === "online" ? 1 : 0 },
        },
        // Fw 1.x reports its relay under `control`, newer firmware its channels under `digest` (§3).
        ...(this.identity.profile.toggleNamespace === Namespace.ControlToggle
          ? { control: { ...togglePayload(this.relay), trigger: [], timer: [] } }
          : { digest: { ...toggleXPayload(this.state.toggles), triggerx: [], timerx: [] } }),
      },
    };
  }

  hardware(): Record<string, unknown> {
    const { profile, uuid, macAddress } = this.identity;
    return {
      type: profile.type,
      subType: profile.subType,
      version: profile.hardwareVersion,
      chipType: profile.chipType,
      uuid,
      macAddress,
    };
  }

  firmware(): Record<string, unknown> {
    const { profile, innerIp } = this.identity;
    const { gateways, userId, wifi, mode } = this.state;
    const number = (value: number | string) => (profile.numbersAsStrings ? String(value) : Number(value));
    return {
      version: profile.firmwareVersion,
      compileTime: profile.compileTime,
      ...(profile.encryptsLan ? { encrypt: 1 } : {}),
      wifiMac: mode === "pairing" ? "" : (wifi?.bssid ?? ""),
      innerIp,
      server: gateways?.[0].host ?? "",
      port: gateways ? number(gateways[0].port) : "",
      secondServer: gateways?.[1].host ?? "",
      secondPort: gateways ? number(gateways[1].port) : "",
      userId: number(userId),
    };
  }

  timePayload(): { timestamp: number; timezone: string; timeRule: TimeRule[] } {
    return { timestamp: this.clock.now(), timezone: this.state.timezone, timeRule: this.state.timeRule };
  }

  /** Sets channel states as a button press or a ToggleX SET would; returns the channels that changed. */
  setToggles(requested: ToggleState[]): ToggleState[] {
    const changed: ToggleState[] = [];
    for (const { channel, on } of requested) {
      const current = this.state.toggles.find((toggle) => toggle.channel === channel);
      if (!current) throw new ProtocolError(`channel ${channel} does not exist (the plug has channel 0)`);
      if (current.on === on) continue;
      current.on = on;
      current.lmTime = this.clock.now();
      changed.push({ ...current });
    }
    return changed;
  }

  private dispatch(request: MerossMessage): MerossMessage {
    const { method, namespace } = request.header;
    const { profile } = this.identity;
    const route = `${method} ${namespace}`;
    switch (route) {
      case `GET ${Namespace.SystemAll}`:
        return this.reply(request, this.systemAllPayload());
      case `GET ${Namespace.SystemAbility}`:
        return this.reply(request, { ability: abilities(profile) });
      case `SET ${Namespace.SystemTime}`: {
        const time = parseSystemTime(request.payload);
        this.clock.set(time.timestamp);
        this.state.timezone = time.timezone;
        this.state.timeRule = time.timeRule as TimeRule[];
        return this.reply(request);
      }
      case `SET ${Namespace.ConfigKey}`:
        return this.setKey(request);
      case `GET ${Namespace.ConfigWifiList}`:
        return this.reply(request, wifiListPayload(visibleAccessPoints(this.identity.accessPoints)));
      case `SET ${profile.wifiNamespace}`:
        return this.setWifi(request);
    }
    if (namespace === profile.toggleNamespace) return this.toggleRequest(request);

    if (profile.encryptsLan && route === `SET ${Namespace.EncryptEcdhe}`) return this.exchangeKeys(request);
    throw new ProtocolError(`${route} is not supported by this ${profile.type} firmware`);
  }

  /** The one relay of a Toggle (fw 1.x) device. */
  private get relay(): ToggleState {
    return this.state.toggles[0] as ToggleState;
  }

  /** GET/SET of the firmware's switch namespace; the other one is not implemented, as on the device. */
  private toggleRequest(request: MerossMessage): MerossMessage {
    const legacy = request.header.namespace === Namespace.ControlToggle;
    if (request.header.method === "GET") {
      return this.reply(request, legacy ? togglePayload(this.relay) : toggleXPayload(this.state.toggles));
    }
    if (request.header.method !== "SET") {
      throw new ProtocolError(`${request.header.method} ${request.header.namespace} is not a request`);
    }
    const changed = this.setToggles(legacy ? parseToggle(request.payload) : parseToggleX(request.payload));
    const reply = this.reply(request);
    if (changed.length > 0) this.hooks.onToggled(changed, request);
    return reply;
  }

  private setKey(request: MerossMessage): MerossMessage {
    const { key, userId, gateway } = parseConfigKey(request.payload);
    const first: BrokerAddress = { host: gateway.host, port: gateway.port };
    const second: BrokerAddress =
      gateway.secondHost && gateway.secondPort
        ? { host: gateway.secondHost, port: gateway.secondPort }
        : { ...first };
    this.state.gateways = [first, second];
    // The device stores what it was sent; an empty user id becomes 0 in its MQTT password (protocol §5.2).
    this.state.userId = userId === "" ? "0" : userId;
    this.state.key = key;
    // Signed with the new key already: from now on the device checks every request against it.
    return this.reply(request);
  }

  private setWifi(request: MerossMessage): MerossMessage {
    const { namespace } = request.header;
    const { profile, uuid, macAddress } = this.identity;
    const network = parseWifiRequest(namespace, request.payload, { type: profile.type, uuid, macAddress });
    // The firmware reads the password as a C string: a PKCS#7 tail after the NULs is ignored,
    // a password padded with no NUL at all runs into the padding (protocol §4.4).
    const password = network.password.split("\0")[0] as string;
    const wifi: ConfiguredWifi = { ...network, password, namespace };
    this.state.wifi = wifi;
    this.state.wifiFailure = undefined;
    const reply = this.reply(request);
    this.hooks.onWifiConfigured(wifi);
    return reply;
  }

  private exchangeKeys(request: MerossMessage): MerossMessage {
    const theirs = parseEcdheRequest(request.payload);
    const ours = ecdhKeyPair();
    const sharedKey = ecdhSharedKey(ours.privateKey, theirs);
    const reply = this.reply(request, ecdheReplyPayload(ours.publicKey));
    this.state.lanSessionKey = sharedKey;
    return reply;
  }
}
