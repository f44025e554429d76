/**
 * Figures, not pass/fail: what a broker login costs on a go-auth cache miss, how much work and
 * memory the session agent spends per device message, the power-cut storms (bench/storm.ts), the
 * command round trip under load (bench/command-round-trip.ts) and the row sync `pulumi up` runs.
 * Run with `npm run bench` (all of it, about 5 minutes on an idle 2-core machine), or
 * `npm run bench -- --devices 100 --runs 1` for small storms, once each. Prints the tables and the
 * targets it meets or misses; writes every figure as JSON to bench/results/.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, release, totalmem, type } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SessionResponder } from "../lib/agent/responder.ts";
import { goAuthPluginInfo } from "../lib/local-stack/go-auth.ts";
import { startMariaDb } from "../lib/local-stack/mariadb.ts";
import { makeLocalPki } from "../lib/local-stack/pki.ts";
import { buildMessage } from "../lib/meross/envelope.ts";
import { Namespace } from "../lib/meross/messages/index.ts";
import { devicePublishTopic } from "../lib/meross/topics.ts";
import { CHOSEN_SECRET_ITERATIONS, GENERATED_SECRET_ITERATIONS } from "../lib/store/accounts.ts";
import { hashPassword, verifyPassword } from "../lib/store/hash.ts";
import { RESPONDER_PLUG, runCommandRoundTrip } from "./command-round-trip.ts";
import {
  type CommandRoundTripResult,
  commandTable,
  judgeTargets,
  medianRuns,
  type StormResult,
  stormTable,
  targetLines,
} from "./figures.ts";
import { accountsFor, plug, timeRowSync, writeRows } from "./setup.ts";
import { PROBE_PLUG, runStormSeries } from "./storm.ts";

const RESULTS_DIR = fileURLToPath(new URL("./results/", import.meta.url));

function timeIt(runs: number, work: () => void): number {
  const start = process.hrtime.bigint();
  for (let run = 0; run < runs; run++) work();
  return Number(process.hrtime.bigint() - start) / 1e6 / runs;
}

function loginCost(): void {
  const password = "0_14ef86a5626abee0feec7585d51feee5";
  for (const [secret, iterations] of [
    ["generated key or password", GENERATED_SECRET_ITERATIONS],
    ["user-chosen device key", CHOSEN_SECRET_ITERATIONS],
  ] as const) {
    const stored = hashPassword(password, { iterations });
    const perVerify = timeIt(Math.max(5, Math.min(20_000, Math.round(2_000_000 / iterations))), () =>
      verifyPassword(password, stored),
    );
    console.log(`PBKDF2-SHA512 x${iterations} (one login on a go-auth cache miss, ${secret})`);
    console.log(`  ${perVerify.toFixed(2)} ms per verification on one core`);
    console.log(
      `  ${Math.round(1000 / perVerify)} logins/s per core; 100 devices reconnecting at once: ${((100 * perVerify) / 1000).toFixed(1)} s of CPU`,
    );
  }
}

function agentThroughput(devices: number, rounds: number): void {
  const key = randomBytes(16).toString("hex");
  const responder = new SessionResponder({ key, timezone: "Europe/Berlin" });
  const uuids = Array.from({ length: devices }, () => randomBytes(16).toString("hex"));
  const messagesFor = (uuid: string) =>
    [
      { method: "PUSH" as const, namespace: Namespace.SystemClock, payload: { clock: { timestamp: 1 } } },
      { method: "SET" as const, namespace: Namespace.ControlBind, payload: { bind: {} } },
    ].map((request) =>
      Buffer.from(JSON.stringify(buildMessage({ ...request, key, from: devicePublishTopic(uuid) }))),
    );
  const traffic = uuids.map((uuid) => ({ topic: devicePublishTopic(uuid), payloads: messagesFor(uuid) }));

  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let handled = 0;
  let replies = 0;
  const start = process.hrtime.bigint();
  for (let round = 0; round < rounds; round++) {
    for (const { topic, payloads } of traffic) {
      for (const payload of payloads) {
        replies += responder.handle(topic, payload, new Date()).replies.length;
        handled++;
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  global.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  console.log(`Session agent: ${devices} devices x ${rounds} rounds of Clock + Bind (${handled} messages)`);
  console.log(`  ${Math.round(handled / seconds)} messages/s checked and answered (${replies} replies)`);
  console.log(
    `  heap retained: ${((heapAfter - heapBefore) / 1024).toFixed(0)} KiB, ${((heapAfter - heapBefore) / devices).toFixed(0)} bytes per device${global.gc ? "" : " (run with --expose-gc for a settled figure)"}`,
  );
}

const { values: flags } = parseArgs({
  options: {
    devices: { type: "string", default: "100,300,1000" },
    "command-devices": { type: "string", default: "100,1000" },
    "chosen-key-devices": { type: "string", default: "100" },
    runs: { type: "string", default: "3" },
  },
});
const runs = Number(flags.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 9) {
  throw new Error(`--runs ${JSON.stringify(flags.runs)} must be a whole number from 1 to 9`);
}
const sizes = (text: string) =>
  text
    .split(",")
    .filter((item) => item.trim() !== "")
    .map((item) => {
      const value = Number(item);
      if (!Number.isInteger(value) || value < 1 || value > 2000) {
        throw new Error(`device count ${JSON.stringify(item)} must be a whole number from 1 to 2000`);
      }
      return value;
    });

loginCost();
agentThroughput(1000, 5);
await powerCut({
  stormSizes: sizes(flags.devices),
  chosenKeySizes: sizes(flags["chosen-key-devices"]),
  commandSizes: sizes(flags["command-devices"]),
  runs,
});

async function powerCut(plan: {
  stormSizes: number[];
  chosenKeySizes: number[];
  commandSizes: number[];
  runs: number;
}) {
  const log = (line: string) => console.log(line);
  const startedAt = new Date();
  const loadBefore = loadavg();
  const largest = Math.max(...plan.stormSizes, ...plan.chosenKeySizes, ...plan.commandSizes);
  const plugs = Array.from({ length: largest }, (_, index) => plug(index));
  const extras = [PROBE_PLUG, RESPONDER_PLUG];
  console.log(`\nPower-cut storms on ${machine()}`);
  console.log(`  auth plugin: ${goAuthPluginInfo()}`);

  const pki = await makeLocalPki({ host: "127.0.0.1" });
  const db = await startMariaDb();
  const conn = await db.connect();
  try {
    const rowSync = await timeRowSync(conn, accountsFor([...plugs, ...extras], "generated"));
    log(
      `  row sync (what pulumi up runs) for ${rowSync.devices} devices: ${(rowSync.totalMs / 1000).toFixed(2)} s, of which hashing ${(rowSync.hashingMs / 1000).toFixed(2)} s; unchanged re-run ${(rowSync.unchangedMs / 1000).toFixed(2)} s`,
    );
    const context = { pki, db, log };
    const stormRuns: StormResult[] = [];
    for (const devices of plan.stormSizes) {
      for (let run = 1; run <= plan.runs; run++) {
        if (plan.runs > 1) log(`  N = ${devices}, run ${run} of ${plan.runs}`);
        stormRuns.push(...(await runStormSeries("anonymous", devices, context)));
        stormRuns.push(...(await runStormSeries("mysql, generated key", devices, context)));
      }
    }
    if (plan.chosenKeySizes.length > 0) {
      await writeRows(
        conn,
        accountsFor([...plugs.slice(0, Math.max(...plan.chosenKeySizes)), ...extras], "chosen"),
      );
      for (const devices of plan.chosenKeySizes) {
        stormRuns.push(...(await runStormSeries("mysql, chosen key", devices, context)));
      }
      await writeRows(conn, accountsFor([...plugs, ...extras], "generated"));
    }
    const storms = medianRuns(stormRuns);
    const commands: CommandRoundTripResult[] = [];
    for (const devices of plan.commandSizes) {
      commands.push(await runCommandRoundTrip("mysql, generated key", devices, context));
    }

    const targets = judgeTargets({ storms, commands, rowSync });
    console.log(
      `\nStorms (${machine()}; load average before ${loadBefore.join(" ")}, after ${loadavg()
        .map((load) => load.toFixed(2))
        .join(" ")})\n`,
    );
    console.log(stormTable(storms));
    console.log(`\nCommand round trip (mysql, generated key)\n`);
    console.log(commandTable(commands));
    console.log(`\nTargets\n${targetLines(targets)}`);

    await mkdir(RESULTS_DIR, { recursive: true });
    const file = join(RESULTS_DIR, `${startedAt.toISOString().replaceAll(":", "-").slice(0, 19)}.json`);
    await writeFile(
      file,
      `${JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          machine: machine(),
          loadAverage: { before: loadBefore, after: loadavg() },
          authPlugin: goAuthPluginInfo(),
          rowSync,
          storms,
          stormRuns,
          commands,
          targets,
        },
        null,
        2,
      )}\n`,
    );
    console.log(`\nJSON: ${file}`);
  } finally {
    await conn.end();
    await db.stop();
    await pki.cleanup();
  }
}

function machine(): string {
  const processors = cpus();
  const version = (command: string, args: string[]) => {
    let text: string;
    try {
      text = execFileSync(command, args, { encoding: "utf8" });
    } catch (error) {
      // `mosquitto -h` prints its version and exits non-zero.
      text = String((error as { stdout?: unknown }).stdout ?? "");
    }
    return text.split("\n")[0]?.trim() || "?";
  };
  return [
    `${processors.length} × ${processors[0]?.model.trim() ?? "unknown CPU"}`,
    `${Math.round(totalmem() / 2 ** 30)} GiB`,
    `${type()} ${release()}`,
    `Node ${process.versions.node}`,
    version("/usr/sbin/mosquitto", ["-h"]).replace(/ is an MQTT.*/, ""),
    version("mariadbd", ["--version"]).replace(/^.*Ver /, "MariaDB "),
  ].join(", ");
}
