import { type ChildProcessByStdio, spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { killOnExit } from "./processes.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const ZX = fileURLToPath(new URL("../../node_modules/.bin/zx", import.meta.url));

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunningScript {
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** What it printed so far. */
  stdout(): string;
  stderr(): string;
}

/**
 * Starts `zx scripts/<script> …` as a user would, from the repository root and without colours;
 * the caller ends it (it is killed if the test process exits first).
 */
export function spawnScript(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): RunningScript {
  const child = spawn(ZX, [`scripts/${script}`, ...args], {
    cwd: REPO,
    env: { ...env, FORCE_COLOR: "0", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  killOnExit(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  return { child, stdout: () => stdout, stderr: () => stderr };
}

/**
 * Runs a script to its end (spawnScript) and collects its output. Never rejects on a non-zero
 * exit: tests assert the code.
 */
export function runScript(
  script: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const { child, stdout, stderr } = spawnScript(script, args, options.env);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `zx scripts/${script} ${args.join(" ")} ran over ${options.timeoutMs} ms\n${stdout()}\n${stderr()}`,
        ),
      );
    }, options.timeoutMs ?? 60_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: stdout(), stderr: stderr() });
    });
  });
}
