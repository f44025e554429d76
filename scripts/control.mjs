#!/usr/bin/env zx
// @ts-check
import { fileURLToPath } from "node:url";
import { chalk, parseArgv } from "zx";
import { scriptArgs, withSpinner } from "./support/cli.mjs";
import "./support/load-typescript.mjs";

const {
  CONTROL_FLAGS,
  DEFAULT_TIMEOUT_SECONDS,
  SECRET_ENVIRONMENT,
  brokerAndLogin,
  controllerSettingsFrom,
  parseControlArguments,
  resolveDeviceFrom,
  stackSource,
} = await import("../lib/control/options.ts");
const { EXIT, exitCodeFor } = await import("../lib/cli/exit-codes.ts");
const { EXIT_CODE_HELP } = await import("../lib/control/exit-codes.ts");
const { describeResult } = await import("../lib/control/toggle.ts");
const { DeviceCommander, controlDevice } = await import("../lib/control/client.ts");

const PROJECT_DIR = fileURLToPath(new URL("..", import.meta.url));

const HELP = `Switch a Meross plug through your broker, or read its state.

Usage: npx zx scripts/control.mjs <device> on|off|toggle|status [flags]

  <device>            a name from the stack config's devices list, its MAC, or its 32-hex uuid

Flags:
  --channel N         the plug's channel (default 0; power strips have more)
  --namespace NS      togglex or toggle: the switch namespace to speak. By default control asks
                      the device's ability list (System.Ability) on every run and speaks
                      Appliance.Control.ToggleX when listed, else Appliance.Control.Toggle (older
                      firmware such as mss310 fw 1.x: one relay, channel 0 only)
  --timeout S         seconds to wait for the device's reply (default ${DEFAULT_TIMEOUT_SECONDS})
  --json              print the result as one JSON object
  --broker URL        broker to use (default: the stack's first brokerUrls output)
  --ca FILE           CA certificate of the broker (default: the stack's caCertificatePem output)
  --username NAME     broker login (mysql variant; default: the stack's first controller login by
                      name, from its controllerCredentials output; a controller named here takes
                      its password from there too)
  --password PASS     its password; better: set ${SECRET_ENVIRONMENT.password}
  --key KEY           the key devices sign with (default: the stack's deviceKey); or set ${SECRET_ENVIRONMENT.key}
  --user ID           the Meross user id (default: the stack's userId, else 0)
  --stack NAME        read outputs and devices from this stack instead of the selected one
  --no-stack          do not run pulumi: take everything from the flags (devices by uuid only)
  --help              this text

Requests are signed with the device key and carry a private reply topic that control subscribes
to before it sends, so no reply can be missed.

${EXIT_CODE_HELP}`;

const args = parseArgv(scriptArgs(import.meta.url), CONTROL_FLAGS);
if (args.help) {
  console.log(HELP);
  process.exit(EXIT.ok);
}

try {
  const { device: identifier, action, flags } = parseControlArguments(args);
  const stack = stackSource(PROJECT_DIR, flags.stack);
  const device = await resolveDeviceFrom(identifier, stack);
  const settings = await controllerSettingsFrom(flags, stack, process.env);
  const commander = await withSpinner(`connecting to ${brokerAndLogin(settings)}`, () =>
    DeviceCommander.connect(settings),
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
