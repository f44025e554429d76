import { Namespace, type SystemAllSummary, type ToggleNamespace } from "../meross/messages/index.ts";

export type SimulatedModel = "gen1" | "legacy" | "encrypted";

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
  /**
   * The switch namespace: Toggle (one relay, state in System.All `control.toggle`) on fw 1.x, ToggleX
   * (channels, state in `digest.togglex`) from fw 2.x on (AR's table: Toggle 1.1.13, ToggleX 6.1.8;
   * meross_lan traces: mss310 fw 1.1.18 lists Toggle only, fw 2.1.17 ToggleX only).
   */
  toggleNamespace: ToggleNamespace;
}

export const MODELS: Record<SimulatedModel, ModelProfile> = {
  // meross_lan `emulator_traces/…1B-Kpippo-mss310.2024-04-29…csv`: a real mss310 on fw 1.1.18.
  gen1: {
    model: "gen1",
    type: "mss310",
    subType: "us",
    chipType: "MT7688",
    hardwareVersion: "1.0.0",
    firmwareVersion: "1.1.18",
    compileTime: "2018-12-03 11:15:36",
    encryptsLan: false,
    wifiNamespace: Namespace.ConfigWifi,
    numbersAsStrings: true,
    headerLineEnding: "\n",
    metering: true,
    toggleNamespace: Namespace.ControlToggle,
  },
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
    toggleNamespace: Namespace.ControlToggleX,
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
    toggleNamespace: Namespace.ControlToggleX,
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
    profile.toggleNamespace,
    Namespace.ControlBind,
    ...(profile.metering ? [Namespace.ControlConsumptionConfig] : []),
    ...(profile.encryptsLan ? [Namespace.EncryptEcdhe, Namespace.EncryptSuite] : []),
  ];
  return Object.fromEntries(namespaces.map((namespace) => [namespace, {}]));
}
