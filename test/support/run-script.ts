import { type ChildProcessByStdio, spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { killOnExit } from "../../lib/local-stack/processes.ts";

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
 * Runs a command line exactly as a user types it (`npx zx scripts/… `) in bash at the repository
 * root, in its own process group so that `interrupt()` reaches the script as Ctrl-C does.
 */
export function spawnCommandLine(line: string, env: NodeJS.ProcessEnv = process.env) {
  const child = spawn("bash", ["-c", line], {
    cwd: REPO,
    env: { ...env, FORCE_COLOR: "0", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const running = collected(child);
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  return {
    ...running,
    exited,
    /** Ctrl-C: SIGINT to the whole process group (bash, npx, node). */
    interrupt(): Promise<number | null> {
      if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, "SIGINT");
      return exited;
    },
  };
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
  return collected(child);
}

/** Keeps what `child` prints, and kills it if the test process exits first. */
function collected(child: ChildProcessByStdio<null, Readable, Readable>): RunningScript {
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
