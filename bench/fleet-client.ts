import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FleetCommand, FleetDevice, FleetEvent, FleetStormRecord } from "./fleet.ts";

/** The parent's handle on bench/fleet.ts: start it, run storm windows, read their records. */
export class Fleet {
  private readonly waiting = new Set<(event: FleetEvent) => void>();
  private exited = false;

  private constructor(private readonly child: ChildProcess) {
    child.on("message", (event: FleetEvent) => {
      if (event.type === "error") console.error(`fleet: ${event.message}`);
      for (const listener of [...this.waiting]) listener(event);
    });
    child.once("exit", () => {
      this.exited = true;
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  static async start(options: {
    host: string;
    port: number;
    key: string;
    devices: FleetDevice[];
  }): Promise<Fleet> {
    const child = fork(fileURLToPath(new URL("./fleet.ts", import.meta.url)), [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const fleet = new Fleet(child);
    const ready = fleet.next("ready", 60_000);
    fleet.send({ type: "init", ...options });
    await ready;
    return fleet;
  }

  send(command: FleetCommand): void {
    this.child.send(command);
  }

  /** The next event of `type`, or undefined after `timeoutMs`. */
  next<T extends FleetEvent["type"]>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<FleetEvent, { type: T }> | undefined> {
    return new Promise((resolve) => {
      const listener = (event: FleetEvent) => {
        if (event.type !== type) return;
        done(event as Extract<FleetEvent, { type: T }>);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const done = (event: Extract<FleetEvent, { type: T }> | undefined) => {
        clearTimeout(timer);
        this.waiting.delete(listener);
        resolve(event);
      };
      this.waiting.add(listener);
    });
  }

  /**
   * Starts a storm window and waits until every device is online and has its session answered, or
   * `timeoutMs` passed; then reports.
   */
  async storm(action: "dial" | "drop" | "watch", timeoutMs: number): Promise<FleetStormRecord> {
    const allAnswered = this.next("all-answered", timeoutMs);
    this.send({ type: "storm", action });
    await allAnswered;
    return this.report();
  }

  async report(): Promise<FleetStormRecord> {
    const reply = this.next("report", 30_000);
    this.send({ type: "report" });
    const event = await reply;
    if (!event) throw new Error("the device fleet did not report within 30 s");
    return event.record;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.send({ type: "stop" });
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }
}
