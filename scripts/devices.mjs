#!/usr/bin/env zx
// @ts-check
import { fileURLToPath } from "node:url";
import { chalk } from "zx";
import { scriptArgs } from "./support/cli.mjs";
import { helpText } from "./support/help.mjs";
import "./support/load-typescript.mjs";

const options = await import("../lib/provision/options.ts");
const { UsageError, parseScriptFlags, wantsHelp } = await import("../lib/cli/flags.ts");
const { EXIT, SCRIPT_EXIT_CODES, exitCodeFor, exitCodeHelp } = await import("../lib/cli/exit-codes.ts");
const { listInventory, revokeDevice } = await import("../lib/provision/inventory.ts");
const { connectDatabase } = await import("../lib/provision/database.ts");
const { createPulumiRunner } = await import("../lib/stack/pulumi-cli.ts");
const { readStackOutputs, stackKeys } = await import("../lib/stack/outputs.ts");
const { listStackDevices, matchesDevice, UnknownDeviceError } = await import("../lib/stack/devices.ts");
const { deviceKeyFor } = await import("../lib/meross/device-key.ts");
const { startSecretRotation } = await import("../lib/stack/secret-rotation.ts");

const PROJECT_DIR = fileURLToPath(new URL("..", import.meta.url));

const HELP = helpText("devices", { exitCodes: exitCodeHelp(SCRIPT_EXIT_CODES.devices) });

/** @param {import("../lib/provision/options.ts").DevicesFlags} flags */
async function openSources(flags) {
  const pulumi =
    flags.stack === false
      ? undefined
      : createPulumiRunner({
          projectDir: PROJECT_DIR,
          ...(typeof flags.stack === "string" ? { stack: flags.stack } : {}),
        });
  const outputs = pulumi && !flags.mysql ? await readStackOutputs(pulumi) : undefined;
  const mysql = flags.mysql ?? outputs?.mysql;
  if (!pulumi && !mysql)
    throw new UsageError("--no-stack needs --mysql mysql://user:password@host:port/database");
  const conn = mysql ? await connectDatabase(mysql) : undefined;
  return { ...(pulumi ? { pulumi } : {}), ...(conn ? { conn } : {}) };
}

/** @param {{ keyScheme?: string, keyGeneration?: number, keySecret?: string }} entry */
function keyLabel(entry) {
  if (entry.keyScheme === undefined) return "-";
  if (entry.keyScheme === "shared") return "shared";
  return `own (gen ${entry.keyGeneration}${entry.keySecret === "previous" ? ", previous secret" : ""})`;
}

/** @param {{ name: string, mac?: string, uuid?: string, kind: string, createdAt?: Date, inStackConfig?: boolean, hasLogin?: boolean, keyScheme?: string, keyGeneration?: number, keySecret?: string }[]} entries */
function table(entries) {
  const header = ["NAME", "MAC", "UUID", "KIND", "KEY", "CREATED", "STACK CONFIG"];
  const rows = [
    header,
    ...entries.map((entry) => [
      entry.name,
      entry.mac ?? "-",
      entry.uuid ?? "-",
      entry.hasLogin === false ? `${entry.kind} (no login)` : entry.kind,
      keyLabel(entry),
      entry.createdAt ? entry.createdAt.toISOString().replace("T", " ").slice(0, 19) : "-",
      entry.kind !== "device" || entry.inStackConfig === undefined ? "-" : entry.inStackConfig ? "yes" : "NO",
    ]),
  ];
  const widths = header.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

const [command, ...rest] = scriptArgs(import.meta.url);
const json = rest.includes("--json");
if (command === undefined || command === "help" || wantsHelp([command, ...rest])) {
  console.log(HELP);
  process.exit(command === undefined ? EXIT.usage : EXIT.ok);
}

/** @type {Awaited<ReturnType<typeof openSources>> | undefined} */
let sources;
try {
  const { positional, flags } = parseScriptFlags(rest, options.DEVICES_FLAGS, options.devicesFlagsSchema);
  if (command === "list") {
    if (positional.length > 0)
      throw new UsageError(`list takes no argument, got ${JSON.stringify(positional[0])}`);
    sources = await openSources(flags);
    const inventory = await listInventory(sources);
    if (json) {
      console.log(JSON.stringify(inventory, null, 2));
    } else {
      console.log(inventory.entries.length > 0 ? table(inventory.entries) : "No devices or logins yet.");
      for (const line of inventory.drift) console.error(chalk.yellow(`note: ${line}`));
    }
  } else if (command === "revoke") {
    if (positional.length !== 1)
      throw new UsageError("revoke takes one device: its name, MAC address or uuid");
    sources = await openSources(flags);
    const revoked = await revokeDevice(String(positional[0]), sources);
    if (json) {
      console.log(JSON.stringify(revoked, null, 2));
    } else {
      const who = revoked.account
        ? `${revoked.account.name} (${revoked.account.username})`
        : `${revoked.removedFromStack[0]?.name} (${revoked.removedFromStack[0]?.mac})`;
      console.log(`Revoked ${who}.`);
      console.log(
        revoked.account
          ? "  MySQL login removed: its next connection is refused."
          : sources.conn
            ? "  It had no MySQL login."
            : "  The broker takes no logins (anonymous variant): nothing stops it connecting; only the record is gone.",
      );
      console.log(
        revoked.removedFromStack.length > 0
          ? "  Stack config entry removed: `pulumi up` will not bring it back."
          : sources.pulumi
            ? "  It was not in the stack config."
            : "  The stack config was not changed (--no-stack): remove it from `devices` or `pulumi up` restores its login.",
      );
    }
  } else if (command === "key") {
    if (positional.length !== 1) throw new UsageError("key takes one device: its name, MAC address or uuid");
    if (flags.stack === false) {
      throw new UsageError("key reads the device's entry from the stack config: drop --no-stack");
    }
    const pulumi = createPulumiRunner({
      projectDir: PROJECT_DIR,
      ...(typeof flags.stack === "string" ? { stack: flags.stack } : {}),
    });
    const identifier = String(positional[0]);
    const entry = (await listStackDevices(pulumi)).find((device) => matchesDevice(device, identifier));
    if (!entry) {
      throw new UnknownDeviceError(
        `no device ${JSON.stringify(identifier)} in the stack config; see \`npx zx scripts/devices.mjs list\``,
      );
    }
    const outputs = await readStackOutputs(pulumi);
    const key = deviceKeyFor(entry, stackKeys(outputs));
    console.log(json ? JSON.stringify({ name: entry.name, uuid: entry.uuid, key }, null, 2) : key);
  } else if (command === "rotate-secret") {
    if (positional.length > 0) throw new UsageError("rotate-secret takes no argument");
    if (flags.stack === false)
      throw new UsageError("rotate-secret changes the stack config: drop --no-stack");
    const pulumi = createPulumiRunner({
      projectDir: PROJECT_DIR,
      ...(typeof flags.stack === "string" ? { stack: flags.stack } : {}),
    });
    const moving = await startSecretRotation(pulumi, await readStackOutputs(pulumi));
    if (json) {
      console.log(JSON.stringify({ moving: moving.map((device) => device.name) }, null, 2));
    } else {
      console.log("New deviceKeySecret set; the old one is kept as previousDeviceKeySecret. Next:");
      console.log("  1. pulumi up   (every device keeps its login and stays online)");
      console.log(
        moving.length > 0
          ? `  2. for each of ${moving.map((device) => device.name).join(", ")}, on your LAN:\n` +
              "     npx zx scripts/provision.mjs rekey <name> --ip <its address>"
          : "  2. (no device has a key of its own yet: nothing to move)",
      );
      console.log("  3. then: pulumi config rm previousDeviceKeySecret && pulumi up");
    }
  } else {
    throw new UsageError(
      `unknown command ${JSON.stringify(command)}: use list, revoke, key or rotate-secret (see --help)`,
    );
  }
  await sources?.conn?.end();
  process.exit(EXIT.ok);
} catch (error) {
  await sources?.conn?.end().catch(() => undefined);
  const code = exitCodeFor(error);
  const message = error instanceof Error ? error.message : String(error);
  if (json) console.log(JSON.stringify({ error: message, exitCode: code }, null, 2));
  console.error(`${chalk.red("error:")} ${message}`);
  process.exit(code);
}
