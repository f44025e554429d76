#!/usr/bin/env zx
// @ts-check
import { chalk } from "zx";
import { scriptArgs } from "./support/cli.mjs";
import { helpText } from "./support/help.mjs";
import "./support/load-typescript.mjs";

const { z } = await import("zod");
const { parseOnlyFlags, wantsHelp } = await import("../lib/cli/flags.ts");
const { EXIT, SCRIPT_EXIT_CODES, exitCodeFor, exitCodeHelp } = await import("../lib/cli/exit-codes.ts");
const { DemoAbortedError, runDemo } = await import("../lib/demo/demo.ts");

const HELP = helpText("demo", { exitCodes: exitCodeHelp(SCRIPT_EXIT_CODES.demo) });
/** What a shell reports for a program stopped with Ctrl-C (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;

const args = scriptArgs(import.meta.url);
if (wantsHelp(args)) {
  console.log(HELP);
  process.exit(EXIT.ok);
}

const controller = new AbortController();
/** @param {NodeJS.Signals} signal */
const stop = (signal) => {
  if (controller.signal.aborted) return;
  console.log(chalk.yellow(`Stopping (${signal === "SIGINT" ? "Ctrl-C" : signal})…`));
  controller.abort();
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

try {
  const flags = parseOnlyFlags(
    args,
    { string: [], boolean: ["anonymous"], default: {} },
    z.object({ anonymous: z.boolean() }),
  );
  await runDemo({
    variant: flags.anonymous ? "anonymous" : "mysql",
    print: (line) => console.log(line.startsWith("✓") ? chalk.green(line) : line),
    signal: controller.signal,
  });
  process.exit(EXIT.ok);
} catch (error) {
  if (error instanceof DemoAbortedError) process.exit(EXIT_INTERRUPTED);
  console.error(chalk.red(`demo: ${/** @type {Error} */ (error).message}`));
  process.exit(exitCodeFor(error));
}
