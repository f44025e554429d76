import { setTimeout as sleep } from "node:timers/promises";
import { DeviceCommander } from "../lib/control/client.ts";
import type { MariaDbInstance } from "../lib/local-stack/mariadb.ts";
import type { LocalPki } from "../lib/local-stack/pki.ts";
import { toggleXSetRequest } from "../lib/meross/messages/toggle.ts";
import { DEFAULT_TIMING } from "../lib/simulator/index.ts";
import { startOnlineDevice } from "../test/support/online-device.ts";
import { type CommandRoundTripResult, spread, type Variant } from "./figures.ts";
import { Fleet } from "./fleet-client.ts";
import { cpuMeter } from "./proc.ts";
import {
  type BenchAgent,
  CONTROLLER_LOGIN,
  DEVICE_KEY,
  fleetDevices,
  loginsFor,
  plug,
  startAgent,
  startBroker,
  USER_ID,
} from "./setup.ts";

/**
 * A signed ToggleX SET from a controller (lib/control's DeviceCommander, as control.mjs sends it)
 * to a simulated plug (lib/simulator, set up over HTTP as provisioning does) and its SETACK back,
 * through the real broker, while N other plugs each push a signed Clock every CLOCK_PERIOD_MS and
 * the session agent (its real entry point, in its own process) checks and answers every one.
 */

/** How often each plug pushes its Clock; a plug whose Clock goes unanswered repeats it about every 2 s (protocol §5.5), the worst case. */
export const CLOCK_PERIOD_MS = 2_000;
const WARM_UP_MS = 3_000;
const COMMANDS = 300;
const COMMAND_INTERVAL_MS = 50;
const REPLY_TIMEOUT_MS = 5_000;
export const RESPONDER_PLUG = plug(90_001);

export async function runCommandRoundTrip(
  variant: Variant,
  devices: number,
  context: { pki: LocalPki; db: MariaDbInstance; log(line: string): void },
): Promise<CommandRoundTripResult> {
  const broker = await startBroker(variant, context.pki, context.db);
  const logins = loginsFor(variant);
  let agent: BenchAgent | undefined;
  let fleet: Fleet | undefined;
  let responder: Awaited<ReturnType<typeof startOnlineDevice>> | undefined;
  let commander: DeviceCommander | undefined;
  try {
    agent = startAgent(variant, broker, context.pki.caFile);
    await agent.ready(30_000);
    fleet = await Fleet.start({
      host: broker.host,
      port: broker.port,
      key: DEVICE_KEY,
      devices: fleetDevices(devices),
    });
    const connected = await fleet.storm("dial", 60_000);
    if (connected.online < devices) context.log(`  only ${connected.online} of ${devices} plugs came online`);
    responder = await startOnlineDevice({
      broker: { host: broker.host, port: broker.port },
      key: DEVICE_KEY,
      userId: USER_ID,
      uuid: RESPONDER_PLUG.uuid,
      timing: DEFAULT_TIMING,
    });
    commander = await DeviceCommander.connect({
      brokerUrl: broker.url,
      ca: context.pki.caPem,
      key: DEVICE_KEY,
      userId: USER_ID,
      ...(logins.controller
        ? { username: CONTROLLER_LOGIN.username, password: CONTROLLER_LOGIN.password }
        : {}),
    });

    fleet.send({ type: "clock", periodMs: CLOCK_PERIOD_MS });
    await sleep(WARM_UP_MS);
    const brokerCpu = cpuMeter(broker.pid());
    const agentCpu = cpuMeter(agent.process.pid ?? -1);
    const fleetCpu = cpuMeter(fleet.pid);
    const roundTrips: number[] = [];
    let failed = 0;
    for (let index = 0; index < COMMANDS; index++) {
      const started = performance.now();
      try {
        await commander.request(RESPONDER_PLUG.uuid, toggleXSetRequest(index % 2 === 0), REPLY_TIMEOUT_MS);
        roundTrips.push(performance.now() - started);
      } catch {
        failed++;
      }
      await sleep(Math.max(0, COMMAND_INTERVAL_MS - (performance.now() - started)));
    }
    const result: CommandRoundTripResult = {
      devices,
      clockPeriodMs: CLOCK_PERIOD_MS,
      roundTrip: spread(roundTrips),
      failed,
      brokerCpuSeconds: brokerCpu.stop(),
      agentCpuSeconds: agentCpu.stop(),
      fleetCpuSeconds: fleetCpu.stop(),
    };
    context.log(
      `  ToggleX round trip with ${devices} plugs pushing Clock: p50 ${result.roundTrip.p50?.toFixed(1)} ms, p99 ${result.roundTrip.p99?.toFixed(1)} ms, ${failed} failed`,
    );
    return result;
  } finally {
    await commander?.close();
    await responder?.device.stop();
    await fleet?.stop();
    agent?.process.kill("SIGTERM");
    await broker.stop();
  }
}
