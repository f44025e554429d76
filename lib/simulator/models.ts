import { Namespace, type SystemAllSummary } from "../meross/messages/index.ts";

export type SimulatedModel = "legacy" | "encrypted";

/** What distinguishes one firmware generation from the other, as far as a client can observe it. */
export interface ModelProfile
  extends Pick<SystemAllSummary, "type" | "subType" | "chipType" | "hardwareVersion" | "firmwareVersion"> {
  model: SimulatedModel;
  compileTime: string;
  /** `firmware.encrypt: 1`, Encrypt.ECDHE in the ability list, and HTTP bodies encrypted (protocol §2.6). */
  encryptsLan: boolean;
  /** The one Wi-Fi namespace the firmware implements: WifiX devices are set up with WifiX only. */
  wifiNamespace: typeof Namespace.ConfigWifi | typeof Namespace.ConfigWifiX;
  /** Older traces write `port` and `userId` as strings (protocol §3, mss310 fw 1.1.18 vs mss110 7.3.37). */
  numbersAsStrings: boolean;
  /** Older firmware ends HTTP header lines with a bare LF (protocol §1, HTTP quirks). */
  headerLineEnding: "\n" | "\r\n";
  /** Metering plugs PUSH ConsumptionConfig after connecting (protocol §5.5). */
  metering: boolean;
}

export const MODELS: Record<SimulatedModel, ModelProfile> = {
  legacy: {
    model: "legacy",
    type: "mss310",
    subType: "us",
    chipType: "mt7682",
    hardwareVersion: "2.0.0",
    firmwareVersion: "2.1.17",
    compileTime: "2019/08/20 11:05:53 GMT +08:00",
    encryptsLan: false,
    wifiNamespace: Namespace.ConfigWifi,
    numbersAsStrings: true,
    headerLineEnding: "\n",
    metering: true,
  },
  encrypted: {
    model: "encrypted",
    type: "mss110",
    subType: "eu",
    chipType: "rtl8710cf",
    hardwareVersion: "7.0.0",
    firmwareVersion: "7.3.37",
    compileTime: "2024/04/12-19:13:08",
    encryptsLan: true,
    wifiNamespace: Namespace.ConfigWifiX,
    numbersAsStrings: false,
    headerLineEnding: "\r\n",
    metering: false,
  },
};

/** Only what the simulator answers: a client that relies on an unlisted namespace should fail here too. */
export function abilities(profile: ModelProfile): Record<string, Record<string, unknown>> {
  const namespaces = [
    Namespace.SystemAll,
    Namespace.SystemAbility,
    Namespace.SystemTime,
    Namespace.SystemClock,
    Namespace.ConfigKey,
    Namespace.ConfigWifiList,
    profile.wifiNamespace,
    Namespace.ControlToggleX,
    Namespace.ControlBind,
    ...(profile.metering ? [Namespace.ControlConsumptionConfig] : []),
    ...(profile.encryptsLan ? [Namespace.EncryptEcdhe, Namespace.EncryptSuite] : []),
  ];
  return Object.fromEntries(namespaces.map((namespace) => [namespace, {}]));
}
