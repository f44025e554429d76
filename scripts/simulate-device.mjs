#!/usr/bin/env zx
// @ts-check
import { chalk } from "zx";
import { scriptArgs } from "./support/cli.mjs";
import { helpText } from "./support/help.mjs";
import "./support/load-typescript.mjs";

const { startSimulatedDevice, MODELS, SIMULATED_HOME_NETWORK } = await import("../lib/simulator/index.ts");
const { parseSimulateArguments } = await import("../lib/simulator/flags.ts");
const { readCaFile, wantsHelp } = await import("../lib/cli/flags.ts");
const { EXIT, SCRIPT_EXIT_CODES, exitCodeFor, exitCodeHelp } = await import("../lib/cli/exit-codes.ts");

const HELP = helpText("simulate-device", {
  homeSsid: SIMULATED_HOME_NETWORK.ssid,
  homePassword: SIMULATED_HOME_NETWORK.password ?? "",
  exitCodes: exitCodeHelp(SCRIPT_EXIT_CODES["simulate-device"]),
});

/** @param {unknown} error */
function errorCode(error) {
  return /** @type {{ code?: string }} */ (error)?.code;
}

const args = scriptArgs(import.meta.url);
if (wantsHelp(args)) {
  console.log(HELP);
  process.exit(EXIT.ok);
}
/** @type {import("../lib/simulator/flags.ts").SimulateFlags} */
let flags;
/** @type {string | undefined} */
let mqttCa;
try {
  flags = parseSimulateArguments(args);
  mqttCa = flags.ca === undefined ? undefined : await readCaFile(flags.ca);
} catch (error) {
  console.error(`${chalk.red("error:")} ${/** @type {Error} */ (error).message}`);
  process.exit(exitCodeFor(error));
}
const { model, host, port } = flags;

const device = await startSimulatedDevice({
  model,
  httpHost: host,
  httpPort: port,
  requireSessionAnswers: flags["require-session-answers"],
  ...(mqttCa ? { mqttCa } : {}),
}).catch((error) => {
  const code = errorCode(error);
  const reason =
    code === "EADDRINUSE"
      ? `port ${port} on ${host} is in use: pick another --port, or 0 for any free one`
      : code === "EADDRNOTAVAIL"
        ? `${host} is not an address of this machine: use one it has, such as 127.0.0.1`
        : String(error?.message ?? error);
  console.error(`${chalk.red("error:")} could not start the simulated device: ${reason}`);
  process.exit(EXIT.unexpected);
});

const profile = MODELS[model];
console.log(
  `Simulated Meross ${profile.type} (${model} firmware: hardware ${profile.hardwareVersion}, ` +
    `firmware ${profile.firmwareVersion}) in pairing mode`,
);
console.log(`  uuid ${device.uuid}, MAC ${device.macAddress}`);
console.log(`  HTTP API: ${chalk.bold(device.httpUrl)}`);
console.log(
  `  Provision it with: npx zx scripts/provision.mjs setup --ip ${device.ip}:${device.port} ` +
    `--wifi-ssid ${SIMULATED_HOME_NETWORK.ssid} --wifi-pass ${SIMULATED_HOME_NETWORK.password} …`,
);
console.log("  Ctrl-C to stop.");

/** @param {string} event @param {string} detail */
function log(event, detail) {
  console.log(`${new Date().toISOString()} ${chalk.cyan(event)} ${detail}`);
}
/** @param {{ host: string; port: number }} broker */
const broker = ({ host, port }) => `${host}:${port}`;
const { events } = device;
events.on("http-request", (exchange) => {
  const request = `${exchange.method ?? "?"} ${exchange.namespace ?? "(unreadable)"}${exchange.encrypted ? " [encrypted]" : ""}`;
  log(
    "http-request",
    exchange.refused
      ? `${request} refused, connection reset: ${exchange.refused}`
      : `${request} -> ${exchange.replyMethod}`,
  );
});
events.on("wifi-configured", (wifi) =>
  log("wifi-configured", `${wifi.ssid ?? wifi.bssid} via ${wifi.namespace}; rebooting`),
);
events.on("wifi-failed", ({ network, reason }) =>
  log("wifi-failed", `${network}: ${reason}; back in pairing mode`),
);
events.on("mqtt-connected", (event) =>
  log("mqtt-connected", `${broker(event.broker)} as ${event.clientId} (user ${event.username})`),
);
events.on("mqtt-disconnected", (event) =>
  log("mqtt-disconnected", `${broker(event.broker)}: ${event.reason}`),
);
events.on("mqtt-error", (event) =>
  log("mqtt-error", `${event.broker ? `${broker(event.broker)}: ` : ""}${event.reason}`),
);
events.on("session-answered", ({ namespace }) => log("session-answered", namespace));
events.on("request-refused", ({ method, namespace, reason }) =>
  log("request-refused", `${method} ${namespace} -> ERROR 5000: ${reason}`),
);
events.on("command", (command) =>
  log(
    "command",
    `${command.method} ${command.namespace} ${JSON.stringify(command.payload)} -> ${command.replyMethod} on ${command.replyTopic}`,
  ),
);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  log("stopping", "");
  await device.stop();
  process.exit(0);
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
