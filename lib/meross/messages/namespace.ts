import type { RequestMethod } from "../envelope.ts";

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
  /** Older firmware's one-relay switch (mss310 fw 1.x lists it instead of ToggleX). */
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
