#!/usr/bin/env zx
// @ts-check
import { fileURLToPath } from "node:url";
import { chalk } from "zx";
import { scriptArgs } from "./support/cli.mjs";
import { helpText } from "./support/help.mjs";
import "./support/load-typescript.mjs";

const {
  SECRET_ENVIRONMENT,
  brokerAndLogin,
  brokerSettingsFrom,
  devicesFrom,
  parseMonitorArguments,
  resolveDeviceFrom,
  stackSource,
} = await import("../lib/control/options.ts");
const { EXIT, SCRIPT_EXIT_CODES, exitCodeFor, exitCodeHelp } = await import("../lib/cli/exit-codes.ts");
const { wantsHelp } = await import("../lib/cli/flags.ts");
const { decodeTraffic, formatRawLine, formatTrafficJson, formatTrafficLine } = await import(
  "../lib/monitor/format.ts"
);
const { monitorShows, monitorTopics, startMonitor } = await import("../lib/monitor/watch.ts");
const { explainingLoginRefusal } = await import("../lib/control/login-refusal.ts");

const PROJECT_DIR = fileURLToPath(new URL("..", import.meta.url));

const HELP = helpText("monitor", {
  passwordVariable: SECRET_ENVIRONMENT.password,
  exitCodes: exitCodeHelp(SCRIPT_EXIT_CODES.monitor),
});

const args = scriptArgs(import.meta.url);
if (wantsHelp(args)) {
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
  monitor = await explainingLoginRefusal(
    () =>
      startMonitor({
        ...settings,
        topics: monitorTopics(uuids, flags.replies),
        onNotice: notice,
        onMessage(topic, payload) {
          const record = decodeTraffic(topic, payload, { names });
          if (!monitorShows(topic, record.uuid, { uuids, replies: flags.replies })) return;
          if (flags.raw) console.log(formatRawLine(topic, payload));
          else if (flags.json) console.log(formatTrafficJson(record));
          else console.log(formatTrafficLine(record, { deviceWidth }));
          seen += 1;
          if (flags.count !== undefined && seen >= flags.count) void stop();
        },
      }),
    settings,
    stack,
  );
  notice(`watching ${monitor.topics.join(", ")} on ${brokerAndLogin(settings)} (Ctrl-C to stop)`);
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
} catch (error) {
  console.error(chalk.red(`monitor: ${/** @type {Error} */ (error).message}`));
  process.exit(exitCodeFor(error));
}
