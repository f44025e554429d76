import { readFileSync, writeFileSync } from "node:fs";

/**
 * CPU time and peak memory of another process, and the kernel's TCP counters, from Linux's /proc
 * (the broker and the database are separate processes; the benchmark reads them without touching
 * their code).
 */

/** Clock ticks per second of /proc/<pid>/stat's times; 100 on every Linux this kit runs on (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime of `pid` in seconds (10 ms resolution). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const userTicks = Number(fields[11]);
  const systemTicks = Number(fields[12]);
  return (userTicks + systemTicks) / CLOCK_TICKS_PER_SECOND;
}

/**
 * Starts a new peak-memory window: writing 5 to clear_refs resets VmHWM to the current RSS
 * (Linux ≥ 4.0; needs the same user as the process, or root).
 */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

/** The largest resident set since the last resetPeakRss (or the start), in bytes. */
export function peakRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`/proc/${pid}/status has no VmHWM line`);
  return Number(match[1]) * 1024;
}

/** CPU seconds a process spends between start() and stop(). */
export function cpuMeter(pid: number): { stop(): number } {
  const before = cpuSeconds(pid);
  return { stop: () => cpuSeconds(pid) - before };
}

/**
 * TcpExt ListenOverflows of this network namespace: connection attempts the kernel dropped because a
 * listening socket's accept queue was full (Mosquitto listens with a fixed backlog of 100). The
 * client's SYN goes unanswered and it retries after its 1 s SYN timeout, then 3 s. Counted for the
 * whole namespace; during a storm the broker is the only busy listener.
 */
export function listenOverflows(): number {
  const lines = readFileSync("/proc/net/netstat", "utf8").split("\n");
  const names = lines.find((line) => line.startsWith("TcpExt:"))?.split(/\s+/) ?? [];
  const values = lines.filter((line) => line.startsWith("TcpExt:"))[1]?.split(/\s+/) ?? [];
  const index = names.indexOf("ListenOverflows");
  if (index < 0 || values[index] === undefined)
    throw new Error("/proc/net/netstat has no TcpExt ListenOverflows");
  return Number(values[index]);
}
