import { type ChildProcess, spawn } from "node:child_process";

/** Kills `child` if this process exits without stopping it (a crashed test suite or demo leaves no server behind). */
export function killOnExit(child: ChildProcess): void {
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", kill);
  child.once("exit", () => process.removeListener("exit", kill));
}

/** A server we started (MariaDB, Mosquitto): what it printed, whether it died, and a clean stop. */
export interface ServerProcess {
  readonly child: ChildProcess;
  /** Everything it printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Its exit code or signal once it has exited, else undefined. */
  exitStatus(): number | NodeJS.Signals | undefined;
  /** SIGTERM, then SIGKILL if it is still running after `graceMs`; resolves once it has exited. */
  stop(graceMs: number): Promise<void>;
}

export function spawnServer(command: string, args: string[], options: { cwd?: string } = {}): ServerProcess {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  killOnExit(child);
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const exitStatus = () => child.exitCode ?? child.signalCode ?? undefined;
  return {
    child,
    output: () => output,
    exitStatus,
    async stop(graceMs) {
      if (exitStatus() !== undefined) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
