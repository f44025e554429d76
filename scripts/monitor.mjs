#!/usr/bin/env zx
// @ts-check
import { fileURLToPath } from "node:url";
import { chalk, parseArgv } from "zx";
import { scriptArgs } from "./support/cli.mjs";
import "./support/load-typescript.mjs";

const {
  MONITOR_FLAGS,
  SECRET_ENVIRONMENT,
  brokerAndLogin,
  brokerSettingsFrom,
  devicesFrom,
  parseMonitorArguments,
  resolveDeviceFrom,
  stackSource,
} = await import("../lib/control/options.ts");
const { EXIT, exitCodeFor } = await import("../lib/cli/exit-codes.ts");
const { MONITOR_EXIT_CODE_HELP } = await import("../lib/control/exit-codes.ts");
const { decodeTraffic, formatRawLine, formatTrafficJson, formatTrafficLine } = await import(
  "../lib/monitor/format.ts"
);
const { monitorTopics, startMonitor } = await import("../lib/monitor/watch.ts");

const PROJECT_DIR = fileURLToPath(new URL("..", import.meta.url));

const HELP = `Watch your Meross devices' MQTT traffic, one decoded line per message.

Usage: npx zx scripts/monitor.mjs [device ...] [flags]

  device              only these devices: names from the stack config, MACs or uuids (default: all)

Each line: local time, device (config name, else uuid), direction (-> from the device, <- to it),
method, namespace, and a short summary of the payload, e.g.

  12:00:01.251  kitchen       -> SETACK  Appliance.Control.ToggleX  ok
  12:00:01.252  kitchen       -> PUSH    Appliance.Control.ToggleX  ch0 on

A controller login (mysql variant) may not read commands sent to devices, so <- lines appear only
where the login may read /appliance/+/subscribe (the anonymous variant).

Flags:
  --json              one JSON object per message (time, topic, device, method, namespace, summary, payload)
  --raw               the topic and the message exactly as received
  --no-replies        leave out device replies to controllers (/app/+/subscribe)
  --count N           stop after N messages
  --broker URL        broker to use (default: the stack's first brokerUrls output)
  --ca FILE           CA certificate of the broker (default: the stack's caCertificatePem output)
  --username NAME     broker login (mysql variant; default: the stack's first controller login by
                      name, from its controllerCredentials output; a controller named here takes
                      its password from there too)
  --password PASS     its password; better: set ${SECRET_ENVIRONMENT.password}
  --stack NAME        read outputs and devices from this stack instead of the selected one
  --no-stack          do not run pulumi: take everything from the flags (devices shown by uuid)
  --help              this text

Stop it with Ctrl-C.

${MONITOR_EXIT_CODE_HELP}`;

const args = parseArgv(scriptArgs(import.meta.url), MONITOR_FLAGS);
if (args.help) {
  console.log(HELP);
  process.exit(EXIT.ok);
}

/** @param {string} text */
const notice = (text) => console.error(chalk.dim(`monitor: ${text}`));

try {
  const { devices: filters, flags } = parseMonitorArguments(args);
  const stack = stackSource(PROJECT_DIR, flags.stack);
  const uuids = (await Promise.all(filters.map((filter) => resolveDeviceFrom(filter, stack)))).map(
    (device) => device.uuid,
  );
  const known = await devicesFrom(stack, false);
  const names = new Map(known.map((device) => [device.uuid.toLowerCase(), device.name]));
  const deviceWidth = Math.max(12, ...[...names.values()].map((name) => name.length));
  const settings = await brokerSettingsFrom(flags, stack, process.env);

  let seen = 0;
  /** @type {Awaited<ReturnType<typeof startMonitor>> | undefined} */
  let monitor;
  const stop = async () => {
    await monitor?.stop();
    process.exit(EXIT.ok);
  };
  monitor = await startMonitor({
    ...settings,
    topics: monitorTopics(uuids, flags.replies),
    onNotice: notice,
    onMessage(topic, payload) {
      const record = decodeTraffic(topic, payload, { names });
      // Replies to controllers are on shared topics: filter them by the device they came from.
      if (uuids.length > 0 && !(record.uuid && uuids.includes(record.uuid))) return;
      if (flags.raw) console.log(formatRawLine(topic, payload));
      else if (flags.json) console.log(formatTrafficJson(record));
      else console.log(formatTrafficLine(record, { deviceWidth }));
      seen += 1;
      if (flags.count !== undefined && seen >= flags.count) void stop();
    },
  });
  notice(`watching ${monitor.topics.join(", ")} on ${brokerAndLogin(settings)} (Ctrl-C to stop)`);
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
} catch (error) {
  console.error(chalk.red(`monitor: ${/** @type {Error} */ (error).message}`));
  process.exit(exitCodeFor(error));
}
