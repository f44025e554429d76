#!/usr/bin/env zx
// @ts-check
import { fileURLToPath } from "node:url";
import { chalk } from "zx";
import { scriptArgs, withSpinner } from "./support/cli.mjs";
import { helpText } from "./support/help.mjs";
import "./support/load-typescript.mjs";

const {
  DEFAULT_TIMEOUT_SECONDS,
  SECRET_ENVIRONMENT,
  brokerAndLogin,
  controllerSettingsFrom,
  parseControlArguments,
  resolveDeviceFrom,
  stackSource,
} = await import("../lib/control/options.ts");
const { EXIT, SCRIPT_EXIT_CODES, exitCodeFor, exitCodeHelp } = await import("../lib/cli/exit-codes.ts");
const { wantsHelp } = await import("../lib/cli/flags.ts");
const { describeResult } = await import("../lib/control/toggle.ts");
const { DeviceCommander, controlDevice } = await import("../lib/control/client.ts");
const { explainingLoginRefusal } = await import("../lib/control/login-refusal.ts");

const PROJECT_DIR = fileURLToPath(new URL("..", import.meta.url));

const HELP = helpText("control", {
  defaultTimeout: DEFAULT_TIMEOUT_SECONDS,
  passwordVariable: SECRET_ENVIRONMENT.password,
  keyVariable: SECRET_ENVIRONMENT.key,
  exitCodes: exitCodeHelp(SCRIPT_EXIT_CODES.control),
});

const args = scriptArgs(import.meta.url);
if (wantsHelp(args)) {
  console.log(HELP);
  process.exit(EXIT.ok);
}

try {
  const { device: identifier, action, flags } = parseControlArguments(args);
  const stack = stackSource(PROJECT_DIR, flags.stack);
  const device = await resolveDeviceFrom(identifier, stack);
  const settings = await controllerSettingsFrom(flags, stack, process.env, device);
  const commander = await withSpinner(`connecting to ${brokerAndLogin(settings)}`, () =>
    explainingLoginRefusal(() => DeviceCommander.connect(settings), settings, stack),
  );
  try {
    const result = await withSpinner(`${action} ${device.name ?? device.uuid}`, () =>
      controlDevice(commander, device, {
        action,
        channel: flags.channel,
        timeoutMs: flags.timeout * 1000,
        ...(flags.namespace ? { namespace: flags.namespace } : {}),
      }),
    );
    console.log(flags.json ? JSON.stringify(result) : describeResult(result));
  } finally {
    await commander.close();
  }
} catch (error) {
  console.error(chalk.red(`control: ${/** @type {Error} */ (error).message}`));
  process.exit(exitCodeFor(error));
}
