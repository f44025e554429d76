import { type ChildProcessByStdio, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { startSessionAgent } from "../agent/agent.ts";
import type { AuthMode } from "../config/stack.ts";
import { type MosquittoInstance, startMosquitto } from "../local-stack/mosquitto.ts";
import { startMysqlVariant } from "../local-stack/mysql-variant.ts";
import { type LocalPki, makeLocalPki } from "../local-stack/pki.ts";
import { killOnExit } from "../local-stack/processes.ts";
import {
  MissingRequirementError,
  missingRequirements,
  type RequirementProbe,
  THIS_MACHINE,
} from "../local-stack/requirements.ts";
import { SIMULATED_HOME_NETWORK, type SimulatedDevice, startSimulatedDevice } from "../simulator/index.ts";
import { controllerAccount, serviceAccount } from "../store/accounts.ts";

/**
 * `npm run demo`: the kit's whole journey on this machine, with no Pulumi, no Docker and no plug.
 * The broker (and, for the mysql variant, MariaDB with the auth plugin) runs as local processes
 * from lib/local-stack, as in the tests; a simulated plug waits in pairing mode; the real scripts
 * provision, switch and watch it with --no-stack; everything started is stopped and removed at the
 * end, on failure and on Ctrl-C (the abort signal).
 */

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const ZX = `${REPO}node_modules/.bin/zx`;
const HOST = "127.0.0.1";
const USER_ID = "0";
const CONTROLLER_NAME = "demo-controller";
const DEVICE_NAME = "demo-plug";
/** How long the monitor keeps showing traffic after the last switch. */
const SETTLE_MS = 1_500;

export interface DemoOptions {
  variant: AuthMode;
  /** One line of progress for the person watching. */
  print(line: string): void;
  /** Aborted on Ctrl-C: the demo stops where it is and cleans up. */
  signal: AbortSignal;
  /** Where requirements are looked for; this machine unless a test says otherwise. */
  probe?: RequirementProbe;
}

export class DemoAbortedError extends Error {
  override name = "DemoAbortedError";
}

export class DemoStepError extends Error {
  override name = "DemoStepError";
}

interface ScriptRun {
  /** Resolves with the exit code once the script ends. */
  exited: Promise<number | null>;
  /** SIGINT, as Ctrl-C would; resolves once it has ended. */
  interrupt(): Promise<number | null>;
}

/**
 * What each step left running, stopped in reverse order however the demo ends. A step still under
 * way when Ctrl-C came is waited for first, so that what it was starting is stopped too.
 */
class Cleanup {
  private readonly steps: { what: string; stop: () => Promise<unknown> }[] = [];
  private readonly pending: Promise<unknown>[] = [];
  /** Returns what takes it off the list again, for something that ended by itself. */
  add(what: string, stop: () => Promise<unknown>): () => void {
    const entry = { what, stop };
    this.steps.push(entry);
    return () => this.steps.splice(this.steps.indexOf(entry), 1);
  }
  track<T>(action: Promise<T>): Promise<T> {
    this.pending.push(action);
    return action;
  }
  async run(print: (line: string) => void): Promise<void> {
    await Promise.allSettled(this.pending);
    for (const { what, stop } of this.steps.reverse()) {
      try {
        await stop();
        print(`  stopped ${what}`);
      } catch (error) {
        print(`  could not stop ${what}: ${(error as Error).message}`);
      }
    }
  }
}

/** Rejects with DemoAbortedError as soon as `signal` aborts, else settles as `promise` does. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new DemoAbortedError("stopped"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new DemoAbortedError("stopped"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** `npx zx scripts/<script> …` as shown to the user: secret values (flags and environment) as ••••. */
function shown(
  script: string,
  args: readonly string[],
  secretFlags: readonly string[],
  env: NodeJS.ProcessEnv,
): string {
  const words = args.map((arg, index) => (secretFlags.includes(args[index - 1] ?? "") ? "••••" : arg));
  const assignments = Object.keys(env).map((name) => `${name}=•••• `);
  return `$ ${assignments.join("")}npx zx scripts/${script} ${words.join(" ")}`;
}

/**
 * Runs one of the kit's scripts as a child, every line it prints passed to `line` (stderr too: that
 * is where the scripts put progress). An abort interrupts it as Ctrl-C would, also when only the
 * demo got the signal (a supervisor's SIGTERM).
 */
function runScript(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  line: (text: string, stream: "stdout" | "stderr") => void,
): ScriptRun {
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(ZX, [`scripts/${script}`, ...args], {
    cwd: REPO,
    env: { ...process.env, ...env, FORCE_COLOR: "0", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    signal,
    killSignal: "SIGINT",
  });
  killOnExit(child);
  for (const stream of ["stdout", "stderr"] as const) {
    let pending = "";
    child[stream].on("data", (chunk: Buffer) => {
      const lines = (pending + chunk.toString("utf8")).split("\n");
      pending = lines.pop() ?? "";
      for (const text of lines) if (text.trim() !== "") line(text, stream);
    });
    child[stream].on("end", () => {
      if (pending.trim() !== "") line(pending, stream);
    });
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once("close", (code) => resolve(code));
    child.once("error", () => resolve(null));
  });
  return {
    exited,
    interrupt() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      return exited;
    },
  };
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const { variant, print, signal, probe = THIS_MACHINE } = options;
  const missing = missingRequirements(variant, probe);
  if (missing.length > 0) {
    const anonymousWorks = variant === "mysql" && missingRequirements("anonymous", probe).length === 0;
    throw new MissingRequirementError(
      [
        `the demo needs what is missing below; nothing was started`,
        ...missing.map((line) => `  - ${line}`),
        ...(anonymousWorks
          ? ["  (the anonymous variant needs only Mosquitto and openssl: npm run demo -- --anonymous)"]
          : []),
      ].join("\n"),
    );
  }

  const cleanup = new Cleanup();
  const started = Date.now();
  const step = async <T>(
    title: string,
    action: () => Promise<T>,
    done?: (value: T) => string,
  ): Promise<T> => {
    print(`▸ ${title}…`);
    const at = Date.now();
    const value = await unlessAborted(cleanup.track(action()), signal);
    const seconds = ((Date.now() - at) / 1000).toFixed(1);
    print(`✓ ${title}${done ? ` — ${done(value)}` : ""} (${seconds} s)`);
    return value;
  };

  try {
    print(`Demo of the ${variant} variant: a broker on this machine, a simulated plug, the kit's scripts.`);
    const pki = await step(
      `Make a private CA and an RSA server certificate for ${HOST} (openssl)`,
      async () => {
        const made = await makeLocalPki({ host: HOST });
        cleanup.add("the certificates (removed)", () => made.cleanup());
        return made;
      },
      (made: LocalPki) => made.caFile,
    );

    const key = randomBytes(12).toString("hex");
    const controller = controllerAccount(CONTROLLER_NAME, randomBytes(16).toString("hex"));
    const agentAccount = serviceAccount("session-agent", randomBytes(16).toString("hex"));
    let broker: MosquittoInstance;
    let mysqlUrl: string | undefined;
    if (variant === "mysql") {
      const services = await step(
        "Start MariaDB with the schema and the controller and agent logins, then Mosquitto with the auth plugin",
        async () => {
          const running = await startMysqlVariant(pki, [controller, agentAccount]);
          cleanup.add("Mosquitto and MariaDB (their folders removed)", () => running.stop());
          return running;
        },
        (running) => `${running.broker.url} in ${running.broker.dir}, database in ${running.db.dir}`,
      );
      broker = services.broker;
      const { db } = services;
      mysqlUrl = `mysql://${db.user}:${encodeURIComponent(db.password)}@${db.host}:${db.port}/${db.database}`;
    } else {
      broker = await step(
        "Start Mosquitto (anonymous: no logins)",
        async () => {
          const running = await startMosquitto({ variant: "anonymous", pki });
          cleanup.add("Mosquitto (its folder removed)", () => running.stop());
          return running;
        },
        (running) => `${running.url} in ${running.dir}`,
      );
    }

    await step(
      "Start the session agent (answers the plug's Clock and Bind, as the Meross cloud would)",
      async () => {
        const running = startSessionAgent({
          brokerUrl: broker.url,
          ca: pki.caPem,
          ...(variant === "mysql"
            ? { username: agentAccount.username, password: agentAccount.password }
            : {}),
          key,
          userId: USER_ID,
          log: () => {},
        });
        cleanup.add("the session agent", () => running.stop());
        await running.ready;
      },
    );

    const device: SimulatedDevice = await step(
      "Start a simulated plug in pairing mode (an mss110 with newer firmware: ECDHE, WifiX)",
      async () => {
        const simulated = await startSimulatedDevice({
          model: "encrypted",
          mqttCa: pki.caPem,
          requireSessionAnswers: true,
        });
        cleanup.add("the simulated plug", () => simulated.stop());
        return simulated;
      },
      (simulated) => `HTTP API at ${simulated.ip}:${simulated.port}, uuid ${simulated.uuid}`,
    );

    const brokerFlags = ["--no-stack", "--broker", broker.url, "--ca", pki.caFile];
    const passwordEnv = variant === "mysql" ? { MEROSS_MQTT_PASSWORD: controller.password } : {};
    const monitorArgs = [...brokerFlags, ...(variant === "mysql" ? ["--username", controller.username] : [])];
    print(shown("monitor.mjs", monitorArgs, [], passwordEnv));
    let watching = false;
    const monitor = runScript("monitor.mjs", monitorArgs, passwordEnv, signal, (text) => {
      if (text.includes("watching")) watching = true;
      print(`  monitor │ ${text}`);
    });
    cleanup.add("monitor.mjs", () => monitor.interrupt());
    await step("Start monitor.mjs, which prints the broker traffic it may see", async () => {
      const deadline = Date.now() + 30_000;
      while (!watching && !signal.aborted) {
        const code = await Promise.race([monitor.exited, sleep(100)]);
        if (code !== undefined) throw new DemoStepError(`monitor.mjs ended with exit code ${code}`);
        if (Date.now() > deadline) throw new DemoStepError("monitor.mjs did not subscribe within 30 s");
      }
    });

    const setupArgs = [
      "setup",
      "--no-stack",
      "--ip",
      `${device.ip}:${device.port}`,
      "--wifi-ssid",
      SIMULATED_HOME_NETWORK.ssid,
      "--wifi-pass",
      SIMULATED_HOME_NETWORK.password,
      "--name",
      DEVICE_NAME,
      "--mqtt",
      broker.url,
      "--ca",
      pki.caFile,
      "--user",
      USER_ID,
      "--key",
      key,
      "--auth-mode",
      variant,
      ...(mysqlUrl === undefined ? [] : ["--mysql", mysqlUrl]),
      "--timeout",
      "60",
    ];
    await step("Provision the plug with provision.mjs setup", async () => {
      print(shown("provision.mjs", setupArgs, ["--key", "--mysql", "--wifi-pass"], {}));
      const setup = runScript("provision.mjs", setupArgs, {}, signal, (text) =>
        print(`  provision │ ${text}`),
      );
      const ended = cleanup.add("provision.mjs", () => setup.interrupt());
      const code = await setup.exited;
      ended();
      if (code !== 0) throw new DemoStepError(`provision.mjs setup ended with exit code ${code}`);
    });

    const controlArgs = (action: string) => [device.uuid, action, ...monitorArgs, "--user", USER_ID];
    for (const action of ["on", "off"]) {
      await step(`Switch it ${action} with control.mjs`, async () => {
        const args = controlArgs(action);
        const env = { ...passwordEnv, MEROSS_DEVICE_KEY: key };
        print(shown("control.mjs", args, [], env));
        const control = runScript("control.mjs", args, env, signal, (text) => print(`  control │ ${text}`));
        const ended = cleanup.add("control.mjs", () => control.interrupt());
        const code = await control.exited;
        ended();
        if (code !== 0) throw new DemoStepError(`control.mjs ${action} ended with exit code ${code}`);
      });
    }
    await unlessAborted(sleep(SETTLE_MS), signal);
    print(
      `Done in ${((Date.now() - started) / 1000).toFixed(1)} s: the plug went from pairing mode to online on your ` +
        `broker and obeyed control.mjs. With a real plug, README's quick start does the same with \`pulumi up\`.`,
    );
  } finally {
    print("Cleaning up everything the demo started:");
    await cleanup.run(print);
  }
}
