/**
 * The pure part of the benchmarks: percentiles, the result table and the targets. No I/O, so the
 * unit tests can hold it to account; bench/storm.ts and bench/command-round-trip.ts measure.
 */

/** Nearest-rank percentile (the smallest value with at least p% of the values at or below it); undefined for no values. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} must be above 0 and at most 100`);
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1];
}

export interface Spread {
  count: number;
  p50?: number;
  p99?: number;
  max?: number;
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { count: 0 };
  return {
    count: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: Math.max(...values),
  };
}

export const SCENARIOS = ["cold start", "reconnect within cache lifetime", "broker restart"] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** The brokers compared: the anonymous variant, and the mysql variant with the key the stack generated or one a person chose. */
export const VARIANTS = ["anonymous", "mysql, generated key", "mysql, chosen key"] as const;
export type Variant = (typeof VARIANTS)[number];

/** One storm: N devices dialling one broker at once, and what it cost. Times in milliseconds. */
export interface StormResult {
  variant: Variant;
  scenario: Scenario;
  devices: number;
  /** From the first device's dial to the last one online (CONNACK + SUBACK); undefined when some never made it. */
  allConnectedMs?: number;
  /** From the first device's dial to the last one with its Clock and Bind answered by the session agent; undefined when some never were. */
  allAnsweredMs?: number;
  /** Devices whose Clock or Bind was still unanswered when the storm's time ran out. */
  notAnswered: number;
  /** Per device: from its first dial in the storm to its CONNACK. */
  connack: Spread;
  /** Connection attempts that ended before the device was online (reset, timeout, refused). */
  failedAttempts: number;
  /** How many failed attempts ended for which reason (numbers blanked out, so equal causes add up). */
  failureReasons: Record<string, number>;
  /** Devices still not online when the storm's time ran out. */
  notConnected: number;
  /** Connection attempts the kernel dropped because the broker's listen queue was full (bench/proc.ts listenOverflows); each waits for a SYN retry. */
  droppedSyns: number;
  brokerCpuSeconds: number;
  brokerPeakRssBytes: number;
  /** The database's CPU during the storm (mysql variants). */
  databaseCpuSeconds?: number;
  /** The device fleet's own CPU (the client side of the storm, in its own process). */
  fleetCpuSeconds: number;
  /** Round trips of an already-connected controller/device pair during the storm. */
  pairRoundTrip: Spread;
  /** Probe messages sent during the storm that never came back. */
  pairLost: number;
  /** When the storm was run several times and this is the median run: every run's all-connected time (null: did not finish). */
  runsAllConnectedMs?: (number | null)[];
}

export interface CommandRoundTripResult {
  devices: number;
  /** How often each device pushed its Clock through the agent meanwhile. */
  clockPeriodMs: number;
  roundTrip: Spread;
  failed: number;
  brokerCpuSeconds: number;
  agentCpuSeconds: number;
  fleetCpuSeconds: number;
}

export interface RowSyncResult {
  devices: number;
  /** The whole sync, as `pulumi up` runs it: schema, hashing, rows and ACLs in one transaction. */
  totalMs: number;
  /** The hashing part alone (one PBKDF2 per row at the policy's iterations). */
  hashingMs: number;
  /** The same sync again with nothing changed (one verification per row). */
  unchangedMs: number;
}

/**
 * Several runs of one storm (same variant, scenario and N) folded into their median run by
 * all-connected time, a run that did not finish counting as the slowest; on 2 shared cores one run
 * can be a third faster or slower than the next. A storm run once is returned as it is.
 */
export function medianRuns(results: readonly StormResult[]): StormResult[] {
  const groups = new Map<string, StormResult[]>();
  for (const result of results) {
    const key = `${result.variant}|${result.scenario}|${result.devices}`;
    groups.set(key, [...(groups.get(key) ?? []), result]);
  }
  return [...groups.values()].map((runs) => {
    if (runs.length === 1) return runs[0] as StormResult;
    const time = (run: StormResult) => run.allConnectedMs ?? Number.POSITIVE_INFINITY;
    const sorted = [...runs].sort((a, b) => time(a) - time(b));
    const median = sorted[Math.floor((sorted.length - 1) / 2)] as StormResult;
    return { ...median, runsAllConnectedMs: runs.map((run) => run.allConnectedMs ?? null) };
  });
}

function seconds(ms: number | undefined, digits = 2): string {
  return ms === undefined ? "—" : `${(ms / 1000).toFixed(digits)} s`;
}

function milliseconds(value: number | undefined): string {
  if (value === undefined) return "—";
  return value >= 100 ? `${Math.round(value)}` : value.toFixed(1);
}

function pair(spread: Spread): string {
  return spread.count === 0 ? "—" : `${milliseconds(spread.p50)} / ${milliseconds(spread.p99)} ms`;
}

/** How many times the anonymous variant's time in the same N and scenario; "—" when either did not finish. */
export function ratioToAnonymous(result: StormResult, all: readonly StormResult[]): number | undefined {
  const anonymous = all.find(
    (other) =>
      other.variant === "anonymous" && other.scenario === result.scenario && other.devices === result.devices,
  );
  if (anonymous?.allConnectedMs === undefined || result.allConnectedMs === undefined) return undefined;
  return result.allConnectedMs / Math.max(anonymous.allConnectedMs, 1);
}

/** A Markdown table, one row per storm, sorted by N, scenario and variant as the constants list them. */
export function stormTable(results: readonly StormResult[]): string {
  const order = (result: StormResult) => [
    result.devices,
    SCENARIOS.indexOf(result.scenario),
    VARIANTS.indexOf(result.variant),
  ];
  const sorted = [...results].sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    return (x[0] ?? 0) - (y[0] ?? 0) || (x[1] ?? 0) - (y[1] ?? 0) || (x[2] ?? 0) - (y[2] ?? 0);
  });
  const header = [
    "N",
    "scenario",
    "variant",
    "all connected",
    "× anonymous",
    "all answered (Clock, Bind)",
    "CONNACK p50 / p99",
    "failed attempts",
    "not connected",
    "SYNs dropped, queue full",
    "broker CPU",
    "broker peak RSS",
    "pair round trip p50 / p99",
    "fleet CPU",
  ];
  const rows = sorted.map((result) => {
    const ratio = ratioToAnonymous(result, results);
    return [
      String(result.devices),
      result.scenario,
      result.variant,
      `${seconds(result.allConnectedMs)}${runRange(result.runsAllConnectedMs)}`,
      result.variant === "anonymous" ? "1" : ratio === undefined ? "—" : `${ratio.toFixed(1)}×`,
      result.allAnsweredMs === undefined ? `${result.notAnswered} unanswered` : seconds(result.allAnsweredMs),
      pair(result.connack),
      String(result.failedAttempts),
      String(result.notConnected),
      String(result.droppedSyns),
      `${result.brokerCpuSeconds.toFixed(2)} s`,
      `${(result.brokerPeakRssBytes / 2 ** 20).toFixed(1)} MiB`,
      `${pair(result.pairRoundTrip)}${result.pairLost > 0 ? ` (${result.pairLost} lost)` : ""}`,
      `${result.fleetCpuSeconds.toFixed(2)} s`,
    ];
  });
  return markdownTable(header, rows);
}

/** " (1.80–2.95 s, 3 runs)" beside a median run; how many did not finish, if any did not. */
function runRange(runs: readonly (number | null)[] | undefined): string {
  if (runs === undefined) return "";
  const finished = runs.filter((ms): ms is number => ms !== null);
  const unfinished = runs.length - finished.length;
  const range =
    finished.length > 0 ? `${seconds(Math.min(...finished))}–${seconds(Math.max(...finished))}, ` : "";
  return ` (${range}${runs.length} runs${unfinished > 0 ? `, ${unfinished} unfinished` : ""})`;
}

export function commandTable(results: readonly CommandRoundTripResult[]): string {
  return markdownTable(
    [
      "N",
      "Clock pushes",
      "ToggleX round trip p50 / p99",
      "max",
      "failed",
      "broker CPU",
      "agent CPU",
      "fleet CPU",
    ],
    results.map((result) => [
      String(result.devices),
      `${Math.round((result.devices * 1000) / result.clockPeriodMs)}/s`,
      pair(result.roundTrip),
      `${milliseconds(result.roundTrip.max)} ms`,
      String(result.failed),
      `${result.brokerCpuSeconds.toFixed(2)} s`,
      `${result.agentCpuSeconds.toFixed(2)} s`,
      `${result.fleetCpuSeconds.toFixed(2)} s`,
    ]),
  );
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

export interface Target {
  name: string;
  met: boolean;
  /** What was measured, in words. */
  measured: string;
}

/** The issue's targets, judged from one run's figures; a figure the run did not produce counts as missed. */
export function judgeTargets(figures: {
  storms: readonly StormResult[];
  commands: readonly CommandRoundTripResult[];
  rowSync?: RowSyncResult;
}): Target[] {
  const restart = (variant: Variant) =>
    figures.storms.find(
      (result) =>
        result.variant === variant && result.scenario === "broker restart" && result.devices === 1000,
    );
  const mysql = restart("mysql, generated key");
  const anonymous = restart("anonymous");
  const ratio = mysql ? ratioToAnonymous(mysql, figures.storms) : undefined;
  const command = figures.commands.find((result) => result.devices === 1000);
  const missing = "not measured";
  return [
    {
      name: "broker restart, N = 1000, mysql with a generated key: all connected, none failed, within 1.5× anonymous",
      met:
        mysql !== undefined &&
        mysql.notConnected === 0 &&
        mysql.failedAttempts === 0 &&
        ratio !== undefined &&
        ratio <= 1.5,
      measured: mysql
        ? `${mysql.runsAllConnectedMs ? `median of ${mysql.runsAllConnectedMs.length} runs ` : ""}${seconds(mysql.allConnectedMs)} (${ratio === undefined ? "—" : `${ratio.toFixed(2)}×`} anonymous), ${mysql.failedAttempts} failed attempts, ${mysql.notConnected} not connected`
        : missing,
    },
    {
      name: "round trip of an already-connected pair during that storm: p99 < 250 ms",
      met: mysql?.pairRoundTrip.p99 !== undefined && mysql.pairRoundTrip.p99 < 250 && mysql.pairLost === 0,
      measured: mysql
        ? `p99 ${milliseconds(mysql.pairRoundTrip.p99)} ms, ${mysql.pairLost} lost (anonymous broker, same storm: p99 ${milliseconds(anonymous?.pairRoundTrip.p99)} ms)`
        : missing,
    },
    {
      name: "command round trip at N = 1000: p99 < 50 ms",
      met: command?.roundTrip.p99 !== undefined && command.roundTrip.p99 < 50 && command.failed === 0,
      measured: command ? `p99 ${milliseconds(command.roundTrip.p99)} ms, ${command.failed} failed` : missing,
    },
    {
      name: "row sync for 1000 devices: under 10 s of hashing",
      met:
        figures.rowSync !== undefined &&
        figures.rowSync.devices >= 1000 &&
        figures.rowSync.hashingMs < 10_000,
      measured: figures.rowSync
        ? `${seconds(figures.rowSync.hashingMs)} hashing, ${seconds(figures.rowSync.totalMs)} in all for ${figures.rowSync.devices} devices`
        : missing,
    },
  ];
}

export function targetLines(targets: readonly Target[]): string {
  return targets
    .map((target) => `${target.met ? "MET   " : "MISSED"} ${target.name}: ${target.measured}`)
    .join("\n");
}
