import { SIMULATED_HOME_NETWORK } from "../../lib/simulator/index.ts";

/**
 * The arguments of `provision.mjs setup` for the device at `address` (host:port) joining the
 * simulated home network. `flags` add to or replace those, in order; `true` is a flag without a
 * value (`--no-stack`).
 */
export function setupArgs(address: string, flags: Record<string, string | true> = {}): string[] {
  const all: Record<string, string | true> = {
    ip: address,
    "wifi-ssid": SIMULATED_HOME_NETWORK.ssid,
    "wifi-pass": SIMULATED_HOME_NETWORK.password,
    ...flags,
  };
  return [
    "setup",
    ...Object.entries(all).flatMap(([flag, value]) =>
      value === true ? [`--${flag}`] : [`--${flag}`, value],
    ),
  ];
}
