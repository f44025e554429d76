import type { ChildProcess } from "node:child_process";

/** Kills `child` if the test process exits without stopping it (a crashed suite leaves no server behind). */
export function killOnExit(child: ChildProcess): void {
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", kill);
  child.once("exit", () => process.removeListener("exit", kill));
}
