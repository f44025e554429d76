#!/usr/bin/env zx
// @ts-check
import { fileURLToPath } from "node:url";
import { chalk } from "zx";
import { interactive, scriptArgs, withSpinner } from "./support/cli.mjs";
import { helpText } from "./support/help.mjs";
import "./support/load-typescript.mjs";

const options = await import("../lib/provision/options.ts");
const { UsageError, parseOnlyFlags, parseScriptFlags, wantsHelp } = await import("../lib/cli/flags.ts");
const { EXIT, SCRIPT_EXIT_CODES, exitCodeFor, exitCodeHelp } = await import("../lib/cli/exit-codes.ts");
const { currentLoginBasis, provisionDevice, readDeviceInfo } = await import("../lib/provision/provision.ts");
const { checkIdentity } = await import("../lib/provision/setup.ts");
const { SetupStepError } = await import("../lib/provision/steps.ts");
const { failureAdvice } = await import("../lib/provision/advice.ts");
const { describeDevice, formatDescription } = await import("../lib/provision/summary.ts");
const { createPulumiRunner } = await import("../lib/stack/pulumi-cli.ts");
const { readStackOutputs } = await import("../lib/stack/outputs.ts");
const { formatBroker } = await import("../lib/meross/broker-url.ts");
const { withoutUndefined } = await import("../lib/meross/fields.ts");
const { deviceKeyFor } = await import("../lib/meross/device-key.ts");
const { assignDeviceKey, keyPolicyFrom } = await import("../lib/provision/keys.ts");
const { listStackDevices, matchesDevice, UnknownDeviceError } = await import("../lib/stack/devices.ts");

const PROJECT_DIR = fileURLToPath(new URL("..", import.meta.url));

const exitCodes = exitCodeHelp(SCRIPT_EXIT_CODES.provision);
const common = helpText("provision-common");
const GENERAL_HELP = helpText("provision", { exitCodes });
const INFO_HELP = helpText("provision-info", { common, exitCodes });
const SETUP_HELP = helpText("provision-setup", { common, exitCodes });
const REKEY_HELP = helpText("provision-rekey", { exitCodes });

/** @param {import("../lib/provision/steps.ts").StepEvent} event */
function printStep(event) {
  const { step } = event;
  if (event.status === "running" && !interactive) console.error(chalk.dim(`… ${step.title}`));
  if (event.status === "done") {
    console.error(`${chalk.green("✓")} ${step.title}${event.detail ? chalk.dim(` — ${event.detail}`) : ""}`);
  }
  if (event.status === "skipped")
    console.error(`${chalk.yellow("-")} ${step.title}${chalk.dim(` — skipped: ${event.detail}`)}`);
  if (event.status === "failed") console.error(`${chalk.red("✗")} ${step.title}`);
}

/** @param {false | string | undefined} stack */
function stackRunner(stack) {
  return createPulumiRunner({ projectDir: PROJECT_DIR, ...(typeof stack === "string" ? { stack } : {}) });
}

/** @param {string[]} args */
async function info(args) {
  const flags = parseOnlyFlags(args, options.INFO_FLAGS, options.infoFlagsSchema);
  let outputs;
  if (flags.stack !== false) {
    try {
      outputs = await withSpinner("Reading the stack outputs", () =>
        readStackOutputs(stackRunner(flags.stack)),
      );
    } catch (error) {
      console.error(chalk.yellow(`note: ${error instanceof Error ? error.message : error}`));
    }
  }
  const policy = keyPolicyFrom(withoutUndefined({ key: flags.key }), outputs ?? {});
  const userId = flags.user ?? outputs?.userId;
  const signingKey = flags["current-key"] ?? policy?.keys.sharedKey ?? "";
  const found = await withSpinner(`Reading the device at ${flags.ip.host}:${flags.ip.port}`, () =>
    readDeviceInfo(flags.ip, signingKey, { wifiList: flags["wifi-list"] }),
  );
  checkIdentity(found.systemAll, withoutUndefined({ mac: flags.mac, uuid: flags.uuid }));
  const recorded =
    policy?.mode === "per-device" && flags.stack !== false
      ? (await listStackDevices(stackRunner(flags.stack))).find((entry) =>
          matchesDevice(entry, found.systemAll.uuid),
        )
      : undefined;
  const assigned = policy && assignDeviceKey(policy, found.systemAll.uuid, recorded);
  const credentials =
    assigned !== undefined && userId !== undefined
      ? {
          key: assigned.key,
          userId,
          basis: `user id ${userId} and ${keyBasis(flags, assigned)} (what setup sets)`,
        }
      : currentLoginBasis(found.systemAll, signingKey, userId);
  const description = describeDevice(found.systemAll, {
    credentials,
    showPassword: flags["show-password"],
    abilities: found.abilities,
    ...(found.wifiList ? { wifiList: found.wifiList } : {}),
  });
  console.log(flags.json ? JSON.stringify(description, null, 2) : formatDescription(description));
}

/**
 * Which key a device gets, for the summary lines.
 * @param {{ key?: string }} flags
 * @param {import("../lib/meross/device-key.ts").DeviceKeying} keying
 */
function keyBasis(flags, keying) {
  if (flags.key) return "--key";
  return keying.keyScheme === "per-device"
    ? `its own key (generation ${keying.keyGeneration ?? 1}, from the stack's deviceKeySecret)`
    : "the stack's deviceKey";
}

/** @param {string[]} args */
async function setup(args) {
  const flags = parseOnlyFlags(args, options.SETUP_FLAGS, options.setupFlagsSchema);
  const pulumi = flags.stack === false ? undefined : stackRunner(flags.stack);
  const outputs = pulumi
    ? await withSpinner("Reading the stack outputs", () => readStackOutputs(pulumi))
    : undefined;
  await runProvisioning(flags, pulumi, await options.resolveSetupSettings(flags, outputs));
}

/**
 * `rekey <device>`: gives a device in the stack config its next own key from the LAN: signed with the
 * key its entry says it has, Config.Key with the next generation, its login replaced. A device on the
 * shared key gets its first own key: that is the migration to per-device keys.
 * @param {string[]} args
 */
async function rekey(args) {
  const { positional, flags } = parseScriptFlags(
    args.includes("--no-wifi") ? args : [...args, "--no-wifi"],
    options.SETUP_FLAGS,
    options.setupFlagsSchema,
  );
  if (positional.length !== 1) {
    throw new UsageError("rekey takes one device: its name, MAC address or uuid from the stack config");
  }
  const identifier = String(positional[0]);
  if (flags.stack === false) {
    throw new UsageError("rekey reads the device's key from the stack config: drop --no-stack");
  }
  const pulumi = stackRunner(flags.stack);
  const outputs = await withSpinner("Reading the stack outputs", () => readStackOutputs(pulumi));
  const entry = (await listStackDevices(pulumi)).find((device) => matchesDevice(device, identifier));
  if (!entry) {
    throw new UnknownDeviceError(
      `no device ${JSON.stringify(identifier)} in the stack config; rekey is for provisioned devices (setup adds new ones)`,
    );
  }
  const settings = await options.resolveSetupSettings(
    { ...flags, name: entry.name, mac: entry.mac, uuid: entry.uuid },
    outputs,
    { rotate: true },
  );
  const current = deviceKeyFor(entry, settings.keyPolicy.keys);
  await runProvisioning(flags, pulumi, { ...settings, signingKey: flags["current-key"] ?? current });
}

/**
 * @param {import("../lib/provision/options.ts").SetupFlags} flags
 * @param {import("../lib/stack/pulumi-cli.ts").PulumiRunner | undefined} pulumi
 * @param {import("../lib/provision/options.ts").SetupSettings} settings
 */
async function runProvisioning(flags, pulumi, settings) {
  if (settings.authMode === "mysql" && !settings.recordInStack) {
    console.error(
      chalk.yellow(
        "warning: --no-stack: the device is not recorded in the stack config, so the next `pulumi up` removes its\n" +
          "MySQL login. Add it to `devices` in Pulumi.<stack>.yaml (name, mac, uuid) to keep it.",
      ),
    );
  }
  const result = await provisionDevice(settings, {
    ...(pulumi ? { pulumi } : {}),
    onEvent: printStep,
    around: (step, action) => withSpinner(step.title, action),
    onHandOff: (message) => console.error(chalk.cyan(message)),
  });
  const description = describeDevice(result.online?.systemAll ?? result.device, {
    name: result.name,
    credentials: {
      key: deviceKeyFor({ uuid: result.device.uuid, ...result.keying }, settings.keyPolicy.keys),
      userId: settings.userId,
      basis: `user id ${settings.userId} and ${keyBasis(flags, result.keying)}`,
    },
    showPassword: false,
  });
  if (flags.json) {
    console.log(
      JSON.stringify(
        {
          name: result.name,
          keying: result.keying,
          online: result.online
            ? { seconds: result.online.seconds, firstMessage: result.online.firstMessage }
            : null,
          broker: formatBroker(settings.brokers[0]),
          wifi: result.wifi ?? null,
          wifiNamespace: result.wifiNamespace ?? null,
          steps: result.completed,
          device: description,
        },
        null,
        2,
      ),
    );
    return;
  }
  console.log(
    result.online
      ? `\n${chalk.green("Online:")} ${result.name} connected to ${formatBroker(settings.brokers[0])} and published ` +
          `(${result.online.firstMessage}) ${result.online.seconds} s after setup.`
      : `\n${chalk.green("Sent:")} ${result.name} now restarts and dials ${formatBroker(settings.brokers[0])}.`,
  );
  console.log(
    `${formatDescription(description, "(secret: `npx zx scripts/provision.mjs info --show-password` prints it)")}\n`,
  );
}

const COMMANDS = {
  info: { run: info, help: INFO_HELP },
  setup: { run: setup, help: SETUP_HELP },
  rekey: { run: rekey, help: REKEY_HELP },
};
const [commandName, ...rest] = scriptArgs(import.meta.url);
const command = commandName ? COMMANDS[/** @type {"info" | "setup" | "rekey"} */ (commandName)] : undefined;

const json = rest.includes("--json");

if (commandName === undefined || commandName === "--help" || commandName === "-h" || commandName === "help") {
  console.log(GENERAL_HELP);
  process.exit(commandName === undefined ? EXIT.usage : EXIT.ok);
}
if (!command) {
  console.error(
    `${chalk.red("error:")} unknown command ${JSON.stringify(commandName)}: use info, setup or rekey (see --help)`,
  );
  process.exit(EXIT.usage);
}
if (wantsHelp(rest)) {
  console.log(command.help);
  process.exit(EXIT.ok);
}
try {
  await command.run(rest);
  process.exit(EXIT.ok);
} catch (error) {
  const code = exitCodeFor(error);
  let message = error instanceof Error ? error.message : String(error);
  if (error instanceof SetupStepError) {
    const advice = failureAdvice(error);
    message = `${error.step.title} failed: ${error.cause instanceof Error ? error.cause.message : String(error.cause)}`;
    if (advice) message += `\n\n${advice}`;
  }
  if (code === EXIT.wrongKey && commandName !== "info") {
    message += "\nWith setup, --current-key is the key the device has now; --key stays the one to set.";
  }
  if (code === EXIT.unexpected && error instanceof Error && error.stack) message += `\n${error.stack}`;
  if (json) console.log(JSON.stringify({ error: message, exitCode: code }, null, 2));
  console.error(`${chalk.red("error:")} ${message}`);
  process.exit(code);
}
