import { exitCodeHelp } from "../cli/exit-codes.ts";

/** What the codes of lib/cli's EXIT table mean for `provision.mjs` and `devices.mjs`; `--help` prints this. */
export const EXIT_CODE_HELP = exitCodeHelp({
  usage: "bad flags or values; nothing was sent to the device",
  unreachable: "the device did not answer over HTTP (not joined to its Meross_* Wi-Fi? wrong --ip?)",
  wrongKey: "the device rejected our signature: it has another key (--current-key)",
  deviceError: "the device answered with an error, or is not the device --mac/--uuid names",
  stackOrDatabase: "the stack outputs, stack config or MySQL could not be read or written",
  timeout: "setup was sent but the device did not come online before --timeout",
  notFound: "(devices.mjs) no device by that name, MAC or uuid",
});
