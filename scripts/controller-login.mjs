#!/usr/bin/env zx
// @ts-check
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chalk } from "zx";
import { scriptArgs } from "./support/cli.mjs";
import { helpText } from "./support/help.mjs";
import "./support/load-typescript.mjs";

const { brokerLoginFrom, brokerLoginJson, formatBrokerLogin, parseBrokerLoginArguments } = await import(
  "../lib/stack/broker-login.ts"
);
const { EXIT, SCRIPT_EXIT_CODES, exitCodeFor, exitCodeHelp } = await import("../lib/cli/exit-codes.ts");
const { UsageError, wantsHelp } = await import("../lib/cli/flags.ts");
const { createPulumiRunner } = await import("../lib/stack/pulumi-cli.ts");
const { readStackOutputs } = await import("../lib/stack/outputs.ts");

const PROJECT_DIR = fileURLToPath(new URL("..", import.meta.url));

const args = scriptArgs(import.meta.url);
if (wantsHelp(args)) {
  console.log(
    helpText("controller-login", { exitCodes: exitCodeHelp(SCRIPT_EXIT_CODES["controller-login"]) }),
  );
  process.exit(EXIT.ok);
}

try {
  const command = parseBrokerLoginArguments(args);
  const pulumi = createPulumiRunner({
    projectDir: PROJECT_DIR,
    ...(command.stack === undefined ? {} : { stack: command.stack }),
  });
  const login = brokerLoginFrom(await readStackOutputs(pulumi), command.name);
  if (command.caFile !== undefined) {
    try {
      await writeFile(command.caFile, login.caCertificatePem, { mode: 0o644 });
    } catch (error) {
      throw new UsageError(
        `--ca-file: cannot write ${command.caFile}: ${/** @type {Error} */ (error).message}`,
      );
    }
  }
  console.log(
    command.json
      ? brokerLoginJson(login, command.showPassword)
      : formatBrokerLogin(login, {
          showPassword: command.showPassword,
          ...(command.caFile === undefined ? {} : { caFile: command.caFile }),
        }).trimEnd(),
  );
} catch (error) {
  console.error(chalk.red(`controller-login: ${/** @type {Error} */ (error).message}`));
  process.exit(exitCodeFor(error));
}
