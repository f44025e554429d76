import { exitCodeHelp } from "../cli/exit-codes.ts";

/** What the codes of lib/cli's EXIT table mean for `control.mjs`. */
export const EXIT_CODE_HELP = exitCodeHelp({
  usage: "bad arguments or flags; nothing was sent",
  unreachable: "cannot connect to the broker, or it refused the credentials or a subscription",
  wrongKey: "the device rejected the signature (error 5001): --key is not the key it was set up with",
  deviceError: "the device answered with an error (e.g. no such channel)",
  stackOrDatabase: "the stack outputs or config could not be read (pass the values as flags with --no-stack)",
  timeout: "no reply from the device before --timeout (offline? watch it with monitor.mjs)",
  notFound: "no device by that name in the stack config",
});

/** `monitor.mjs` runs until stopped and sends nothing, so only these codes can end it. */
export const MONITOR_EXIT_CODE_HELP = exitCodeHelp({
  ok: "stopped",
  usage: "bad flags",
  unreachable: "cannot connect to the broker (or it refused every subscription)",
  stackOrDatabase: "the stack could not be read",
  notFound: "no device by that name",
});
