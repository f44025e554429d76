#!/usr/bin/env zx
// @ts-check
import { fileURLToPath } from "node:url";
import { chalk, minimist } from "zx";
import { interactive, scriptArgs, withSpinner } from "./support/cli.mjs";
import "./support/load-typescript.mjs";

const options = await import("../lib/provision/options.ts");
const { UsageError, unknownFlagError, validateFlags } = await import("../lib/cli/flags.ts");
const { EXIT, exitCodeFor } = await import("../lib/cli/exit-codes.ts");
const { EXIT_CODE_HELP } = await import("../lib/provision/exit-codes.ts");
const { currentLoginBasis, provisionDevice, readDeviceInfo } = await import("../lib/provision/provision.ts");
const { checkIdentity } = await import("../lib/provision/setup.ts");
const { SetupStepError } = await import("../lib/provision/steps.ts");
const { failureAdvice } = await import("../lib/provision/advice.ts");
const { describeDevice, formatDescription } = await import("../lib/provision/summary.ts");
const { createPulumiRunner } = await import("../lib/stack/pulumi-cli.ts");
const { readStackOutputs } = await import("../lib/stack/outputs.ts");
const { formatBroker } = await import("../lib/meross/broker-url.ts");
const { withoutUndefined } = await import("../lib/meross/fields.ts");

const PROJECT_DIR = fileURLToPath(new URL("..", import.meta.url));

const COMMON_HELP = `Device:
  --ip <address>          the device's address, host or host:port (default 10.10.10.1, where a
                          device in pairing mode answers; a simulated device prints its own)
  --current-key <key>     the key the device signs with now, when it is not the one being set: any
                          value it may hold, the Meross app's 32-hex cloud key, "meross" (BS2 and
                          meross_lan), or '' (empty). Pairing-mode devices do not check it
  --mac <mac>             only go on if the device has this MAC address
  --uuid <uuid>           only go on if the device has this uuid

Stack (run inside the project after \`pulumi up\`; flags override the stack's outputs):
  --stack <name>          use this Pulumi stack instead of the selected one
  --no-stack              do not run \`pulumi\` at all: take everything from the flags
  --mqtt <url>            broker URL (mqtts://host:port); repeat for a second gateway (first two
                          used; one is used twice). Default: the stack's first brokerUrls entry
                          (its brokerHost), for both gateways
  --user <id>             numeric user id (default: the stack's userId)
  --key <key>             the device key (default: the stack's deviceKey). A key this kit sets must
                          be 16+ printable characters without spaces: it signs every command to the
                          device and md5(mac + key) is its broker password, so anyone on your LAN who
                          guesses it controls the plug; "meross" or a short word is guessed at once

  --json                  print the result as JSON on stdout (progress still goes to stderr)
  --help                  this text`;

const GENERAL_HELP = `Usage: npx zx scripts/provision.mjs <info|setup> [flags]

Moves a Meross plug from pairing mode onto your own broker. Put the device in pairing mode (hold
its button ~5 s until the LED alternates amber/green), join its Meross_XXXX Wi-Fi, then:

  npx zx scripts/provision.mjs info             what the device is, and the MQTT login it will use
  npx zx scripts/provision.mjs setup --wifi-ssid <ssid> --wifi-pass <password>

The same commands work on a simulated device (npx zx scripts/simulate-device.mjs) with --ip.
See \`npx zx scripts/provision.mjs info --help\` and \`npx zx scripts/provision.mjs setup --help\`.

${EXIT_CODE_HELP}`;

const INFO_HELP = `Usage: npx zx scripts/provision.mjs info [flags]

Reads the device (System.All, System.Ability) and prints its type, hardware and firmware, uuid,
MAC, IP, the broker it dials now, the MQTT username and password it will use with this stack's
userId and key, and its topics. It changes nothing on the device.

  --show-password         also print the MQTT password. It is a secret (anyone with it can act as
                          the device on the broker), so it is hidden unless you ask for it.
  --wifi-list             also list the Wi-Fi networks the device sees (bssid, channel, encryption,
                          cipher), to pass to setup for a network it struggles to join

${COMMON_HELP}

${EXIT_CODE_HELP}`;

const SETUP_HELP = `Usage: npx zx scripts/provision.mjs setup --wifi-ssid <ssid> [--wifi-pass <password>] [flags]

Steps (protocol §6): read the device (System.All, System.Ability) → exchange encryption keys when it
lists Encrypt.ECDHE → look up your network in its Wi-Fi scan → optionally set its clock → on the
mysql variant register its MQTT login and ACL in MySQL → record it in the stack config (so the
next \`pulumi up\` keeps it) → Config.Key (the broker, twice, with userId and key) → Config.WifiX
(or Config.Wifi on older firmware) → wait until it connects to the broker and publishes.
Every value is checked before anything is sent; every step is safe to repeat, so after a failure
fix the cause and run the same command again.

Wi-Fi (the device only has 2.4 GHz):
  --wifi-ssid <ssid>      network to join (1-32 bytes)
  --wifi-pass <password>  its WPA password: 8-63 printable ASCII characters, or exactly 64 hex
                          digits (the raw key); no control characters. Leave it out for an open
                          network (no password): it is then sent as open (encryption 0, cipher 0)
  --wifi-bssid <mac>      \\  normally read from the device's own scan of the network; give them
  --wifi-channel <1-13>    | to override it (encryption: 0-8 or a name such as WPA2PSK; cipher:
  --wifi-encryption <n>    | 0-4 or a name such as AES). --wifi-bssid without --wifi-ssid names
  --wifi-cipher <n>       /  the access point alone: its SSID comes from the scan (none if hidden)
  --no-wifi               re-point a device that is already on your network (--ip its LAN address,
                          --current-key its key): send only Config.Key, then restart it by hand

Device record:
  --name <name>           its name in the stack config and in \`devices.mjs list\`
                          (default: <type>-<last 6 MAC digits>, e.g. mss310-b62c49)
  --set-time              set the device clock and time zone (with DST rules)
  --timezone <zone>       IANA zone for --set-time (default: this computer's)

Waiting:
  --timeout <seconds>     how long to wait for the device on the broker (default 180)
  --no-wait               send the settings and return without waiting

Without the stack (with --no-stack, or to override its outputs):
  --auth-mode anonymous|mysql   the broker's variant (default: the stack's)
  --ca <file>             the broker's CA certificate (PEM), to watch the device come online
  --mysql <url>           mysql://user:password@host:port/database, where device logins go
                          (other users of this machine can read command lines: prefer the stack)

${COMMON_HELP}

${EXIT_CODE_HELP}`;

/** @param {string[]} args @param {import("../lib/cli/flags.ts").FlagSpec} spec */
function parseFlags(args, spec) {
  /** @type {string[]} */
  const unknown = [];
  const parsed = minimist(args, {
    string: spec.string,
    boolean: spec.boolean,
    default: spec.default,
    unknown: (arg) => {
      unknown.push(arg);
      return true;
    },
  });
  const error = unknownFlagError(unknown);
  if (error) throw error;
  if (parsed._.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(String(parsed._[0]))}`);
  return parsed;
}

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
  const flags = validateFlags(options.infoFlagsSchema, parseFlags(args, options.INFO_FLAGS));
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
  const key = flags.key ?? outputs?.deviceKey;
  const userId = flags.user ?? outputs?.userId;
  const signingKey = flags["current-key"] ?? key ?? "";
  const found = await withSpinner(`Reading the device at ${flags.ip.host}:${flags.ip.port}`, () =>
    readDeviceInfo(flags.ip, signingKey, { wifiList: flags["wifi-list"] }),
  );
  checkIdentity(found.systemAll, withoutUndefined({ mac: flags.mac, uuid: flags.uuid }));
  const credentials =
    key !== undefined && userId !== undefined
      ? {
          key,
          userId,
          basis: `user id ${userId} and ${flags.key ? "--key" : "the stack's deviceKey"} (what setup sets)`,
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

/** @param {string[]} args */
async function setup(args) {
  const flags = validateFlags(options.setupFlagsSchema, parseFlags(args, options.SETUP_FLAGS));
  const pulumi = flags.stack === false ? undefined : stackRunner(flags.stack);
  const outputs = pulumi
    ? await withSpinner("Reading the stack outputs", () => readStackOutputs(pulumi))
    : undefined;
  const settings = await options.resolveSetupSettings(flags, outputs);
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
      key: settings.key,
      userId: settings.userId,
      basis: `user id ${settings.userId} and ${flags.key ? "--key" : "the stack's deviceKey"}`,
    },
    showPassword: false,
  });
  if (flags.json) {
    console.log(
      JSON.stringify(
        {
          name: result.name,
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
    `${formatDescription(description, "(secret: `provision.mjs info --show-password` prints it)")}\n`,
  );
}

const COMMANDS = { info: { run: info, help: INFO_HELP }, setup: { run: setup, help: SETUP_HELP } };
const [commandName, ...rest] = scriptArgs(import.meta.url);
const command = commandName ? COMMANDS[/** @type {"info" | "setup"} */ (commandName)] : undefined;
const wantsHelp = rest.includes("--help") || rest.includes("-h");
const json = rest.includes("--json");

if (commandName === undefined || commandName === "--help" || commandName === "-h" || commandName === "help") {
  console.log(GENERAL_HELP);
  process.exit(commandName === undefined ? EXIT.usage : EXIT.ok);
}
if (!command) {
  console.error(
    `${chalk.red("error:")} unknown command ${JSON.stringify(commandName)}: use info or setup (see --help)`,
  );
  process.exit(EXIT.usage);
}
if (wantsHelp) {
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
  if (code === EXIT.wrongKey && commandName === "setup") {
    message += "\nWith setup, --current-key is the key the device has now; --key stays the one to set.";
  }
  if (code === EXIT.unexpected && error instanceof Error && error.stack) message += `\n${error.stack}`;
  if (json) console.log(JSON.stringify({ error: message, exitCode: code }, null, 2));
  console.error(`${chalk.red("error:")} ${message}`);
  process.exit(code);
}
