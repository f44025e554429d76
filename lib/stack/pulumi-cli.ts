import { execFile } from "node:child_process";
import type { ExitCategory } from "../exit-category.ts";

/**
 * The one place the kit runs the Pulumi CLI. Everything in lib/stack talks to this interface, so
 * tests (this machine has no Pulumi CLI) put a fake `pulumi` executable first on PATH and the code
 * under test runs unchanged.
 */
export interface PulumiRunner {
  /**
   * Runs `pulumi <args>` in the project and returns its stdout; throws PulumiCommandError on failure.
   * `input` goes to its standard input: `config set <key>` without a value reads the value from there,
   * which keeps a secret out of the process list (`ps` shows every argument to every local user).
   */
  run(args: readonly string[], options?: { input?: string }): Promise<string>;
}

export interface PulumiRunnerOptions {
  /** The directory holding Pulumi.yaml. */
  projectDir: string;
  /** A stack other than the selected one (`--stack`). */
  stack?: string;
  env?: NodeJS.ProcessEnv;
  executable?: string;
}

export class PulumiCommandError extends Error {
  readonly exitCategory: ExitCategory = "stackOrDatabase";
  readonly code: "ENOPULUMI" | "EPULUMI";
  readonly stderr: string;
  constructor(code: PulumiCommandError["code"], message: string, stderr = "") {
    super(message);
    this.name = "PulumiCommandError";
    this.code = code;
    this.stderr = stderr;
  }
}

const PULUMI_TIMEOUT_MS = 60_000;

/** Shows which command failed without its values: `config set` arguments may name devices, never secrets, but stay terse. */
function describeCommand(args: readonly string[]): string {
  return ["pulumi", ...args.filter((arg) => arg.startsWith("-") || /^[a-z]+$/.test(arg))].join(" ");
}

export function createPulumiRunner(options: PulumiRunnerOptions): PulumiRunner {
  const executable = options.executable ?? "pulumi";
  const stackArgs = options.stack ? ["--stack", options.stack] : [];
  return {
    run(args, runOptions = {}) {
      const fullArgs = [...args, ...stackArgs, "--non-interactive"];
      return new Promise((resolve, reject) => {
        const child = execFile(
          executable,
          fullArgs,
          {
            cwd: options.projectDir,
            env: options.env ?? process.env,
            timeout: PULUMI_TIMEOUT_MS,
            maxBuffer: 16 * 1024 * 1024,
          },
          (error, stdout, stderr) => {
            if (!error) {
              resolve(stdout);
              return;
            }
            if ((error as NodeJS.ErrnoException).code === "ENOENT") {
              reject(
                new PulumiCommandError(
                  "ENOPULUMI",
                  `the Pulumi CLI (${executable}) is not installed or not on PATH: ` +
                    "install it (https://www.pulumi.com/docs/iac/download-install/)",
                ),
              );
              return;
            }
            const reason = stderr.trim().split("\n").slice(-3).join(" ") || error.message;
            reject(
              new PulumiCommandError("EPULUMI", `\`${describeCommand(args)}\` failed: ${reason}`, stderr),
            );
          },
        );
        // Closed in every case, so a command that unexpectedly reads its input ends instead of waiting.
        child.stdin?.on("error", () => {});
        child.stdin?.end(runOptions.input ?? "");
      });
    },
  };
}
