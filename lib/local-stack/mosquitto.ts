import { execFileSync } from "node:child_process";
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuthMode } from "../config/stack.ts";
import { renderMosquittoConf } from "../mosquitto/render.ts";
import { goAuthPluginPath } from "./go-auth.ts";
import type { LocalPki } from "./pki.ts";
import { freePort } from "./ports.ts";
import { type ServerProcess, spawnServer } from "./processes.ts";
import { findSystemBinary, REQUIREMENTS, requireInstalled } from "./requirements.ts";

const START_TIMEOUT_MS = 45_000;
const STOP_TIMEOUT_MS = 10_000;
/** The account Debian's mosquitto switches to when started as root. */
const MOSQUITTO_USER = "mosquitto";

export interface MosquittoDatabase {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /**
   * go-auth's cache lifetimes. Short by default so a test or demo that revokes an account sees it within a
   * second on the real plugin too (the stack's default is lib/mosquitto's DEFAULT_*_CACHE_SECONDS).
   */
  authCacheSeconds?: number;
  aclCacheSeconds?: number;
}

export interface StartMosquittoOptions {
  variant: AuthMode;
  pki: Pick<LocalPki, "caFile" | "certFile" | "keyFile" | "caPem" | "host">;
  /** Required for the mysql variant; a MariaDbInstance fits. */
  mysql?: MosquittoDatabase;
  /** Also listen for plain MQTT on 127.0.0.1 at this port. */
  plainPort?: number;
  /**
   * go-auth options appended after the rendered ones (the plugin keeps the last value of a key), for
   * tests of the plugin's own behaviour under settings the kit never renders.
   */
  goAuthOptions?: Record<string, string>;
  /** Return once the process runs, without waiting for the listener (e.g. while go-auth waits for MySQL). */
  noWait?: boolean;
  /** Render with debug logging (the stack's brokerDebugLog). */
  debugLog?: boolean;
}

export interface MosquittoInstance {
  /** Where the TLS listener is: always 127.0.0.1. */
  host: "127.0.0.1";
  port: number;
  /** mqtts://127.0.0.1:<port> */
  url: string;
  /** The name the server certificate is for (pass it as `servername` when dialling 127.0.0.1). */
  serverName: string;
  caPem: string;
  plainUrl?: string;
  /** Its private run directory (config, certificates, persistence), removed by stop(). */
  dir: string;
  /** The rendered mosquitto.conf the broker runs with. */
  config: string;
  /** Everything Mosquitto printed so far (its log goes to stdout), across restarts. */
  output(): string;
  /** Stops the broker (every client loses its connection) and starts it again on the same ports. */
  restart(): Promise<void>;
  /** The exit code or signal once the process has ended. */
  exitStatus(): number | NodeJS.Signals | undefined;
  /** Resolves once the TLS listener accepts connections; rejects if Mosquitto exits first. */
  listening(): Promise<void>;
  /** The running broker's process id (changes on restart). */
  pid(): number;
  stop(): Promise<void>;
}

/** How long go-auth caches answers unless told; see MosquittoDatabase. */
const SHORT_CACHE_SECONDS = 1;

/**
 * Starts Debian's Mosquitto with a config rendered by lib/mosquitto, exactly as the stack renders it
 * except for host paths: certificates and the plugin are copied into a private run directory.
 */
export async function startMosquitto(options: StartMosquittoOptions): Promise<MosquittoInstance> {
  requireInstalled("mosquitto");
  const mosquitto = findSystemBinary("mosquitto") as string;
  if (options.variant === "mysql" && !options.mysql) {
    throw new Error("startMosquitto: the mysql variant needs `mysql` (e.g. the result of startMariaDb())");
  }
  const pluginSource = options.variant === "mysql" ? goAuthPluginPath() : undefined;

  const dir = await mkdtemp(join(tmpdir(), "meross-mosquitto-"));
  let server: ServerProcess | undefined;
  let earlierOutput = "";

  const stop = async (): Promise<void> => {
    await server?.stop(STOP_TIMEOUT_MS);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const paths = {
      config: join(dir, "mosquitto.conf"),
      caFile: join(dir, "certs", "ca.crt"),
      certFile: join(dir, "certs", "server.crt"),
      keyFile: join(dir, "certs", "server.key"),
      persistenceDir: join(dir, "data"),
      plugin: join(dir, "go-auth.so"),
    };
    await mkdir(join(dir, "certs"));
    await mkdir(paths.persistenceDir);
    await copyFile(options.pki.caFile, paths.caFile);
    await copyFile(options.pki.certFile, paths.certFile);
    await copyFile(options.pki.keyFile, paths.keyFile);
    await chmod(paths.keyFile, 0o600);
    if (pluginSource) await copyFile(pluginSource, paths.plugin);

    const port = await freePort();
    const config = renderMosquittoConf({
      variant: options.variant,
      tls: {
        port,
        bindAddress: "127.0.0.1",
        cafile: paths.caFile,
        certfile: paths.certFile,
        keyfile: paths.keyFile,
      },
      ...(options.plainPort ? { plainListener: { address: "127.0.0.1", port: options.plainPort } } : {}),
      persistenceDir: paths.persistenceDir,
      ...(options.debugLog ? { debugLog: true } : {}),
      ...(options.mysql
        ? {
            mysql: {
              host: options.mysql.host,
              port: options.mysql.port,
              user: options.mysql.user,
              password: options.mysql.password,
              database: options.mysql.database,
              pluginPath: paths.plugin,
              authCacheSeconds: options.mysql.authCacheSeconds ?? SHORT_CACHE_SECONDS,
              aclCacheSeconds: options.mysql.aclCacheSeconds ?? SHORT_CACHE_SECONDS,
            },
          }
        : {}),
    });
    const extra = Object.entries(options.goAuthOptions ?? {}).map(
      ([key, value]) => `auth_opt_${key} ${value}\n`,
    );
    await writeFile(paths.config, config + extra.join(""), { mode: 0o600 });
    await handOverToMosquittoUser(dir);

    const listening = async () => {
      const running = server as ServerProcess;
      await waitForPort(port, running);
      if (options.plainPort) await waitForPort(options.plainPort, running);
    };
    const launch = async (wait: boolean) => {
      // Mosquitto's stdout is block-buffered into a pipe; line buffering makes output() current.
      server = spawnServer("stdbuf", ["-oL", "-eL", mosquitto, "-c", paths.config], { cwd: dir });
      if (wait) await listening();
    };
    await launch(!options.noWait);

    return {
      host: "127.0.0.1",
      port,
      url: `mqtts://127.0.0.1:${port}`,
      serverName: options.pki.host,
      caPem: options.pki.caPem,
      ...(options.plainPort ? { plainUrl: `mqtt://127.0.0.1:${options.plainPort}` } : {}),
      dir,
      config,
      output: () => earlierOutput + (server?.output() ?? ""),
      exitStatus: () => server?.exitStatus(),
      // stdbuf execs Mosquitto, so the child's pid is the broker's.
      pid: () => server?.child.pid ?? -1,
      listening,
      async restart() {
        await server?.stop(STOP_TIMEOUT_MS);
        earlierOutput += server?.output() ?? "";
        await launch(true);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw new Error(
      `could not start Mosquitto: ${(error as Error).message}\n--- mosquitto output ---\n${server?.output() ?? ""}`,
    );
  }
}

/**
 * Started as root, Mosquitto 2 switches to the `mosquitto` user before it reads the TLS key and
 * loads plugins, so that user must own the run directory (as uid 1883 owns them in the images).
 */
async function handOverToMosquittoUser(dir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  let uid: number;
  let gid: number;
  try {
    uid = Number(execFileSync("id", ["-u", MOSQUITTO_USER], { encoding: "utf8" }).trim());
    gid = Number(execFileSync("id", ["-g", MOSQUITTO_USER], { encoding: "utf8" }).trim());
  } catch {
    throw new Error(
      `user ${MOSQUITTO_USER} does not exist, so a root-started Mosquitto cannot drop privileges: ${REQUIREMENTS.mosquitto.missing()}`,
    );
  }
  const chownTree = async (path: string): Promise<void> => {
    await chown(path, uid, gid);
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) await chownTree(child);
      else await chown(child, uid, gid);
    }
  };
  await chownTree(dir);
}

async function waitForPort(port: number, server: ServerProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const exited = server.exitStatus();
    if (exited !== undefined) {
      throw new Error(`mosquitto exited (${exited}) before listening on ${port}`);
    }
    if (await accepts(port)) return;
    if (Date.now() > deadline) {
      throw new Error(`mosquitto did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
