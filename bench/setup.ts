import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { Connection } from "mysql2/promise";
import { AGENT_ENVIRONMENT } from "../lib/agent/settings.ts";
import type { MariaDbInstance } from "../lib/local-stack/mariadb.ts";
import { type MosquittoInstance, startMosquitto } from "../lib/local-stack/mosquitto.ts";
import { DEFAULT_ACL_CACHE_SECONDS, DEFAULT_AUTH_CACHE_SECONDS } from "../lib/mosquitto/render.ts";
import {
  ACCOUNT_KINDS,
  type Account,
  controllerAccount,
  type DeviceIdentity,
  deviceAccount,
  passwordHashIterations,
  type SecretOrigin,
  serviceAccount,
} from "../lib/store/accounts.ts";
import { applySchema, syncAccounts } from "../lib/store/database.ts";
import { hashPassword } from "../lib/store/hash.ts";
import type { RowSyncResult, Variant } from "./figures.ts";
import type { FleetDevice } from "./fleet.ts";
import type { Login } from "./probe.ts";

/**
 * What every benchmark broker shares: the stack's accounts for N plugs with MAC logins, written by
 * lib/store exactly as `pulumi up` writes them, and a broker started from the kit's rendered config
 * (lib/local-stack/mosquitto.ts) with the stack's default cache lifetimes.
 */

export const USER_ID = "1234";
/** Like the stack's generated key: 32 letters and digits. */
export const DEVICE_KEY = randomBytes(24)
  .toString("base64")
  .replace(/[^A-Za-z0-9]/g, "a")
  .slice(0, 32);
export const CONTROLLER_NAME = "bench-controller";
export const SERVICE_NAME = "session-agent";
const generatedPassword = () => randomBytes(24).toString("base64url").slice(0, 32);
export const CONTROLLER_LOGIN: Login = { username: CONTROLLER_NAME, password: generatedPassword() };
export const SERVICE_LOGIN: Login = { username: SERVICE_NAME, password: generatedPassword() };

/** Plug number `index` (0-based): a MAC in Meross's 48:e1:e9 range and a uuid ending in it, as real ones do. */
export function plug(index: number): DeviceIdentity {
  const suffix = (0x100000 + index).toString(16).padStart(6, "0");
  const mac = `48:e1:e9:${suffix.slice(0, 2)}:${suffix.slice(2, 4)}:${suffix.slice(4, 6)}`;
  return { name: `plug ${index}`, mac, uuid: `${"b".repeat(20)}48e1e9${suffix}` };
}

export function fleetDevices(count: number, from = 0): FleetDevice[] {
  return Array.from({ length: count }, (_, offset) => {
    const identity = plug(from + offset);
    const account = deviceAccount(identity, DEVICE_KEY, USER_ID);
    return { uuid: identity.uuid, username: account.username, password: account.password };
  });
}

export function accountsFor(identities: readonly DeviceIdentity[], keyOrigin: SecretOrigin): Account[] {
  return [
    ...identities.map((identity) => deviceAccount(identity, DEVICE_KEY, USER_ID, keyOrigin)),
    controllerAccount(CONTROLLER_LOGIN.username, CONTROLLER_LOGIN.password),
    serviceAccount(SERVICE_LOGIN.username, SERVICE_LOGIN.password),
  ];
}

/** The row sync `pulumi up` runs, timed, then timed again with nothing to change. */
export async function timeRowSync(conn: Connection, accounts: readonly Account[]): Promise<RowSyncResult> {
  await applySchema(conn);
  const started = performance.now();
  await syncAccounts(conn, accounts, { kinds: ACCOUNT_KINDS });
  const totalMs = performance.now() - started;
  const again = performance.now();
  await syncAccounts(conn, accounts, { kinds: ACCOUNT_KINDS });
  const unchangedMs = performance.now() - again;
  const hashingStarted = performance.now();
  for (const account of accounts) {
    hashPassword(account.password, { iterations: passwordHashIterations(account) });
  }
  const hashingMs = performance.now() - hashingStarted;
  return {
    devices: accounts.filter((account) => account.kind === "device").length,
    totalMs,
    hashingMs,
    unchangedMs,
  };
}

export async function writeRows(conn: Connection, accounts: readonly Account[]): Promise<void> {
  await applySchema(conn);
  await syncAccounts(conn, accounts, { kinds: ACCOUNT_KINDS });
}

export function startBroker(
  variant: Variant,
  pki: Parameters<typeof startMosquitto>[0]["pki"],
  db: MariaDbInstance,
): Promise<MosquittoInstance> {
  if (variant === "anonymous") return startMosquitto({ variant: "anonymous", pki });
  return startMosquitto({
    variant: "mysql",
    pki,
    mysql: {
      ...db,
      authCacheSeconds: DEFAULT_AUTH_CACHE_SECONDS,
      aclCacheSeconds: DEFAULT_ACL_CACHE_SECONDS,
    },
  });
}

/** The zone the benchmark's agent sends every connecting plug, as a stack with `timezone` set does. */
export const AGENT_TIMEZONE = "Europe/Berlin";

export interface BenchAgent {
  process: ChildProcess;
  /** Settles once the agent has subscribed to the plugs' traffic for the first time. */
  ready(timeoutMs: number): Promise<void>;
}

/** The session agent, its real entry point in its own process, answering the plugs of `broker`. */
export function startAgent(variant: Variant, broker: MosquittoInstance, caFile: string): BenchAgent {
  const { service } = loginsFor(variant);
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(new URL("../lib/agent/main.ts", import.meta.url))],
    {
      env: {
        ...process.env,
        [AGENT_ENVIRONMENT.brokerUrl]: broker.url,
        [AGENT_ENVIRONMENT.caFile]: caFile,
        [AGENT_ENVIRONMENT.key]: DEVICE_KEY,
        [AGENT_ENVIRONMENT.userId]: USER_ID,
        [AGENT_ENVIRONMENT.timezone]: AGENT_TIMEZONE,
        ...(service
          ? { [AGENT_ENVIRONMENT.username]: service.username, [AGENT_ENVIRONMENT.password]: service.password }
          : {}),
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  // Its log (one JSON line per event) is read to the end, or the agent would stall on a full pipe.
  const subscribed = new Promise<void>((resolve) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      if (line.includes('"event":"subscribed"')) resolve();
    });
  });
  return {
    process: child,
    async ready(timeoutMs) {
      const late = sleep(timeoutMs, "late" as const, { ref: false });
      if ((await Promise.race([subscribed, late])) === "late") {
        throw new Error(`the session agent did not subscribe within ${timeoutMs} ms`);
      }
    },
  };
}

export function loginsFor(variant: Variant): { controller?: Login; service?: Login } {
  return variant === "anonymous" ? {} : { controller: CONTROLLER_LOGIN, service: SERVICE_LOGIN };
}

export const now = () => performance.timeOrigin + performance.now();
