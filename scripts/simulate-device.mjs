#!/usr/bin/env zx
// @ts-check
import { argv, chalk, fs } from "zx";
import "./support/load-typescript.mjs";

const { startSimulatedDevice, MODELS, SIMULATED_HOME_NETWORK } = await import("../lib/simulator/index.ts");
const { hostSchema } = await import("../lib/meross/identifiers.ts");

const EXIT_USAGE = 2;
const EXIT_FAILED = 1;
const KNOWN_FLAGS = new Set(["_", "help", "h", "model", "host", "port", "require-session-answers", "ca"]);

const HELP = `Usage: npx zx scripts/simulate-device.mjs [flags]

Runs a simulated Meross smart plug in pairing mode, for trying the kit without hardware.
Provision it like a real device (point provision.mjs --ip at the printed address). After its
Wi-Fi is set it "reboots" and dials the brokers from Config.Key over TLS 1.2 with MQTT 3.1,
then answers Toggle or ToggleX commands (by model). Events are logged one per line. Ctrl-C stops it.

Flags:
  --model gen1|legacy|encrypted
                               gen1: mss310 fw 1.1 (Appliance.Control.Toggle only, no ToggleX; Config.Wifi,
                               plain HTTP, LF-only headers); legacy: mss310 fw 2.1 (ToggleX, Config.Wifi,
                               plain HTTP, LF-only headers); encrypted: mss110 fw 7.3 (WifiX, ECDHE,
                               encrypted HTTP). Default legacy.
  --host <ipv4>                address for its HTTP API (default 127.0.0.1)
  --port <n>                   port for its HTTP API (default 0: any free port)
  --require-session-answers    hang up when Clock/Bind go unanswered, as newer firmware does
  --ca <file>                  PEM CA the device trusts, checked with the broker's name; without it the
                               device accepts any certificate, like real devices
  --help                       this text

Simulated Wi-Fi: "${SIMULATED_HOME_NETWORK.ssid}" with passphrase "${SIMULATED_HOME_NETWORK.password}"; any other SSID
counts as a hidden network in range: open when no password is sent, else any WPA passphrase (8-63
printable ASCII characters or 64 hex digits) joins it. "Cafe Guest" is an open network in its scan.`;

/** @param {string} message @returns {never} */
function usage(message) {
  console.error(`${chalk.red("error:")} ${message}\nRun with --help for the flags.`);
  process.exit(EXIT_USAGE);
}

/** @param {unknown} error */
function errorCode(error) {
  return /** @type {{ code?: string }} */ (error)?.code;
}

if (argv.help || argv.h) {
  console.log(HELP);
  process.exit(0);
}
const unknown = Object.keys(argv).filter((flag) => !KNOWN_FLAGS.has(flag));
if (unknown.length > 0) usage(`unknown flag ${unknown.map((flag) => `--${flag}`).join(", ")}`);
if (argv._.length > 0) usage(`unexpected argument ${JSON.stringify(String(argv._[0]))}`);

const modelName = String(argv.model ?? "legacy");
if (!Object.hasOwn(MODELS, modelName)) {
  usage(`--model ${modelName} is not one of: ${Object.keys(MODELS).join(", ")}`);
}
const model = /** @type {keyof typeof MODELS} */ (modelName);

const host = hostSchema.safeParse(String(argv.host ?? "127.0.0.1"));
if (!host.success) usage(`--host ${argv.host}: ${host.error.issues[0]?.message}`);

const port = Number(argv.port ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  usage(`--port ${argv.port} must be 0 to 65535 (0: any free port)`);
}

/** @param {string} path @returns {Promise<string>} */
async function readCa(path) {
  const pem = await fs.readFile(path, "utf8").catch((/** @type {unknown} */ error) => {
    usage(`--ca ${path}: cannot read it (${errorCode(error) ?? String(error)})`);
  });
  if (!pem?.includes("-----BEGIN CERTIFICATE-----")) usage(`--ca ${path} holds no PEM certificate`);
  return pem;
}
if (argv.ca !== undefined && typeof argv.ca !== "string") usage("--ca needs the path of a PEM file");
const mqttCa = argv.ca === undefined ? undefined : await readCa(argv.ca);

const device = await startSimulatedDevice({
  model,
  httpHost: host.data,
  httpPort: port,
  requireSessionAnswers: Boolean(argv["require-session-answers"]),
  ...(mqttCa ? { mqttCa } : {}),
}).catch((error) => {
  const code = errorCode(error);
  const reason =
    code === "EADDRINUSE"
      ? `port ${port} on ${host.data} is in use: pick another --port, or 0 for any free one`
      : code === "EADDRNOTAVAIL"
        ? `${host.data} is not an address of this machine: use one it has, such as 127.0.0.1`
        : String(error?.message ?? error);
  console.error(`${chalk.red("error:")} could not start the simulated device: ${reason}`);
  process.exit(EXIT_FAILED);
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
