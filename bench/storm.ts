import { setTimeout as sleep } from "node:timers/promises";
import type { MariaDbInstance } from "../lib/local-stack/mariadb.ts";
import type { MosquittoInstance } from "../lib/local-stack/mosquitto.ts";
import type { LocalPki } from "../lib/local-stack/pki.ts";
import { type Scenario, type StormResult, spread, type Variant } from "./figures.ts";
import { Fleet } from "./fleet-client.ts";
import { type PairProbe, startPairProbe } from "./probe.ts";
import { cpuMeter, listenOverflows, peakRssBytes, resetPeakRss } from "./proc.ts";
import { DEVICE_KEY, fleetDevices, loginsFor, now, plug, startAgent, startBroker, USER_ID } from "./setup.ts";

/**
 * The power-cut benchmark: N plugs dial one broker at the same moment, three ways, while an
 * already-connected controller/device pair keeps exchanging messages. Each plug starts its session
 * once online (Clock and Bind, bench/fleet.ts) and the session agent answers it, with a time zone,
 * as on a stack; the agent is itself a client of the broker and redials after a restart like
 * everyone else. The storms:
 * - cold start: a broker just started, every plug dials at once (power comes back);
 * - reconnect within cache lifetime: every plug loses its connection at once (the Wi-Fi access
 *   point restarts) and redials 1 s later, within go-auth's cache lifetime of its last login;
 * - broker restart: the broker is stopped and started again (an update); the plugs redial on the
 *   firmware's own 1 s, doubling backoff, and the storm is timed from the first dial after the
 *   broker listens again.
 */

/** A storm that has not finished by then is reported with the devices still missing. */
const STORM_TIMEOUT_MS = 60_000;
/** Between storms, for stragglers' retries and the pair's last replies. */
const SETTLE_MS = 1_000;
const PROBE_INTERVAL_MS = 20;
export const PROBE_PLUG = plug(90_000);

export interface StormContext {
  pki: LocalPki;
  db: MariaDbInstance;
  log(line: string): void;
}

export async function runStormSeries(
  variant: Variant,
  devices: number,
  context: StormContext,
): Promise<StormResult[]> {
  const broker = await startBroker(variant, context.pki, context.db);
  const agent = startAgent(variant, broker, context.pki.caFile);
  let fleet: Fleet | undefined;
  let probe: PairProbe | undefined;
  try {
    const logins = loginsFor(variant);
    const [probeDevice] = fleetDevices(1, 90_000);
    if (!probeDevice) throw new Error("no probe device");
    probe = startPairProbe({
      brokerUrl: broker.url,
      host: broker.host,
      port: broker.port,
      caPem: context.pki.caPem,
      userId: USER_ID,
      uuid: PROBE_PLUG.uuid,
      ...(logins.controller ? { controller: logins.controller } : {}),
      device: { username: probeDevice.username, password: probeDevice.password },
      intervalMs: PROBE_INTERVAL_MS,
    });
    await probe.ready();
    // In a home the agent is up before the plugs: they take seconds to boot and join the Wi-Fi.
    await agent.ready(30_000);
    fleet = await Fleet.start({
      host: broker.host,
      port: broker.port,
      key: DEVICE_KEY,
      devices: fleetDevices(devices),
    });

    const results: StormResult[] = [];
    for (const scenario of ["cold start", "reconnect within cache lifetime", "broker restart"] as const) {
      if (scenario === "broker restart") await broker.restart();
      const result = await measureStorm(variant, scenario, devices, { broker, fleet, probe, db: context.db });
      context.log(summaryLine(result));
      results.push(result);
      await sleep(SETTLE_MS);
    }
    return results;
  } finally {
    await fleet?.stop();
    await probe?.stop();
    agent.process.kill("SIGTERM");
    await broker.stop();
  }
}

async function measureStorm(
  variant: Variant,
  scenario: Scenario,
  devices: number,
  running: { broker: MosquittoInstance; fleet: Fleet; probe: PairProbe; db: MariaDbInstance },
): Promise<StormResult> {
  const brokerPid = running.broker.pid();
  resetPeakRss(brokerPid);
  const brokerCpu = cpuMeter(brokerPid);
  const databaseCpu = variant === "anonymous" ? undefined : cpuMeter(running.db.pid);
  const overflowsBefore = listenOverflows();
  const startedAt = now();
  const action = scenario === "cold start" ? "dial" : scenario === "broker restart" ? "watch" : "drop";
  const record = await running.fleet.storm(action, STORM_TIMEOUT_MS);
  const brokerCpuSeconds = brokerCpu.stop();
  const droppedSyns = listenOverflows() - overflowsBefore;
  const databaseCpuSeconds = databaseCpu?.stop();
  const brokerPeakRssBytes = peakRssBytes(brokerPid);
  // Replies to the last probe messages of the window are still on their way.
  await sleep(SETTLE_MS);
  const pair = running.probe.window(
    record.firstDialAt ?? startedAt,
    record.lastAnsweredAt ?? record.lastOnlineAt ?? now(),
  );
  const allOnline = record.online === record.devices;
  const allAnswered = record.answered === record.devices;
  return {
    variant,
    scenario,
    devices,
    ...(allOnline && record.firstDialAt !== undefined && record.lastOnlineAt !== undefined
      ? { allConnectedMs: record.lastOnlineAt - record.firstDialAt }
      : {}),
    ...(allAnswered && record.firstDialAt !== undefined && record.lastAnsweredAt !== undefined
      ? { allAnsweredMs: record.lastAnsweredAt - record.firstDialAt }
      : {}),
    notAnswered: record.devices - record.answered,
    connack: spread(record.connackMs),
    failedAttempts: record.failedAttempts,
    failureReasons: record.failureReasons,
    notConnected: record.devices - record.online,
    droppedSyns,
    brokerCpuSeconds,
    brokerPeakRssBytes,
    ...(databaseCpuSeconds === undefined ? {} : { databaseCpuSeconds }),
    fleetCpuSeconds: record.cpuSeconds,
    pairRoundTrip: spread(pair.roundTrips),
    pairLost: pair.lost,
  };
}

function summaryLine(result: StormResult): string {
  const connected =
    result.allConnectedMs === undefined
      ? `${result.notConnected} of ${result.devices} not connected`
      : `all connected in ${(result.allConnectedMs / 1000).toFixed(2)} s`;
  const answered =
    result.allAnsweredMs === undefined
      ? `${result.notAnswered} not answered`
      : `all answered in ${(result.allAnsweredMs / 1000).toFixed(2)} s`;
  const reasons = Object.entries(result.failureReasons)
    .map(([reason, count]) => `${count}× ${reason}`)
    .join("; ");
  return `  ${result.variant}, N = ${result.devices}, ${result.scenario}: ${connected}, ${answered}, ${result.failedAttempts} failed attempts${reasons ? ` (${reasons})` : ""}, ${result.droppedSyns} SYNs dropped, broker ${result.brokerCpuSeconds.toFixed(2)} s CPU, pair p99 ${result.pairRoundTrip.p99?.toFixed(1) ?? "—"} ms`;
}
