import { describe, expect, it } from "vitest";
import {
  type CommandRoundTripResult,
  commandTable,
  judgeTargets,
  markdownTable,
  medianRuns,
  percentile,
  ratioToAnonymous,
  type StormResult,
  spread,
  stormTable,
} from "../../bench/figures.ts";

const oneToHundred = Array.from({ length: 100 }, (_, index) => index + 1);

function storm(overrides: Partial<StormResult>): StormResult {
  return {
    variant: "anonymous",
    scenario: "broker restart",
    devices: 1000,
    allConnectedMs: 2_000,
    allAnsweredMs: 2_600,
    notAnswered: 0,
    connack: spread([10, 20, 30]),
    failedAttempts: 0,
    failureReasons: {},
    notConnected: 0,
    droppedSyns: 0,
    brokerCpuSeconds: 1.5,
    brokerPeakRssBytes: 20 * 2 ** 20,
    fleetCpuSeconds: 3,
    pairRoundTrip: spread([1, 2, 3]),
    pairLost: 0,
    ...overrides,
  };
}

const command = (overrides: Partial<CommandRoundTripResult> = {}): CommandRoundTripResult => ({
  devices: 1000,
  clockPeriodMs: 2000,
  roundTrip: spread([5, 6, 7]),
  failed: 0,
  brokerCpuSeconds: 1,
  agentCpuSeconds: 1,
  fleetCpuSeconds: 1,
  ...overrides,
});

describe("percentile (nearest rank)", () => {
  it("gives the value at or below which p% of the values lie", () => {
    expect(percentile(oneToHundred, 50)).toBe(50);
    expect(percentile(oneToHundred, 99)).toBe(99);
    expect(percentile(oneToHundred, 100)).toBe(100);
    expect(percentile([3, 1, 2], 50)).toBe(2);
  });

  it("does not depend on the order of the values and leaves them unsorted", () => {
    const shuffled = [5, 1, 4, 2, 3];
    expect(percentile(shuffled, 99)).toBe(5);
    expect(shuffled).toEqual([5, 1, 4, 2, 3]);
  });

  it("takes the largest value for p99 of a small sample, and nothing of an empty one", () => {
    expect(percentile([7, 100, 8], 99)).toBe(100);
    expect(percentile([42], 50)).toBe(42);
    expect(percentile([], 50)).toBeUndefined();
  });

  it("refuses a percentile outside (0, 100]", () => {
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });

  it("spread() reports count, p50, p99 and max", () => {
    expect(spread(oneToHundred)).toEqual({ count: 100, p50: 50, p99: 99, max: 100 });
    expect(spread([])).toEqual({ count: 0 });
  });
});

describe("stormTable", () => {
  const anonymous = storm({ allConnectedMs: 2_000 });
  const mysql = storm({ variant: "mysql, generated key", allConnectedMs: 2_500, droppedSyns: 412 });
  const unfinished = storm({
    variant: "mysql, chosen key",
    allConnectedMs: undefined,
    notConnected: 39,
    allAnsweredMs: undefined,
    notAnswered: 41,
  });
  const small = storm({ devices: 100, scenario: "cold start", allConnectedMs: 280 });

  it("puts the mysql/anonymous ratio of the same N and scenario beside each row", () => {
    expect(ratioToAnonymous(mysql, [anonymous, mysql])).toBe(1.25);
    expect(ratioToAnonymous(unfinished, [anonymous, unfinished])).toBeUndefined();
    expect(ratioToAnonymous(mysql, [small, mysql])).toBeUndefined();
  });

  it("renders one Markdown row per storm, ordered by N, scenario and variant, with units", () => {
    const lines = stormTable([unfinished, mysql, anonymous, small]).split("\n");
    expect(lines[0]).toMatch(/^\| N \| scenario \| variant \| all connected \| × anonymous \|/);
    expect(lines[1]).toMatch(/^\| --- \|/);
    expect(lines.slice(2).map((line) => line.split(" | ").slice(0, 3).join(" | "))).toEqual([
      "| 100 | cold start | anonymous",
      "| 1000 | broker restart | anonymous",
      "| 1000 | broker restart | mysql, generated key",
      "| 1000 | broker restart | mysql, chosen key",
    ]);
    expect(lines[4]).toContain(
      "| 2.50 s | 1.3× | 2.60 s | 20.0 / 30.0 ms | 0 | 0 | 412 | 1.50 s | 20.0 MiB | 2.0 / 3.0 ms | 3.00 s |",
    );
    expect(lines[5]).toContain("| — | — | 41 unanswered |");
    expect(lines[5]).toContain("| 39 |");
  });

  it("notes lost pair messages and escapes a | inside a cell", () => {
    expect(stormTable([storm({ pairLost: 3 })])).toContain("2.0 / 3.0 ms (3 lost)");
    expect(markdownTable(["a"], [["x|y"]])).toBe("| a |\n| --- |\n| x\\|y |");
  });

  it("shows the Clock load of the command round trip as pushes per second", () => {
    expect(commandTable([command()]).split("\n")[2]).toBe(
      "| 1000 | 500/s | 6.0 / 7.0 ms | 7.0 ms | 0 | 1.00 s | 1.00 s | 1.00 s |",
    );
  });
});

describe("medianRuns", () => {
  it("folds the runs of one storm into the median run by all-connected time, listing every run", () => {
    const runs = [3_000, 1_800, 2_400].map((ms) =>
      storm({ allConnectedMs: ms, brokerCpuSeconds: ms / 1000 }),
    );
    const [median] = medianRuns(runs);
    expect(median?.allConnectedMs).toBe(2_400);
    expect(median?.brokerCpuSeconds).toBe(2.4);
    expect(median?.runsAllConnectedMs).toEqual([3_000, 1_800, 2_400]);
    expect(stormTable([median as StormResult])).toContain("| 2.40 s (1.80 s–3.00 s, 3 runs) |");
  });

  it("counts a run that did not finish as the slowest, and says so", () => {
    const runs = [undefined, 2_000, undefined].map((ms) =>
      storm({ allConnectedMs: ms, notConnected: ms === undefined ? 5 : 0 }),
    );
    const [median] = medianRuns(runs);
    expect(median?.allConnectedMs).toBeUndefined();
    expect(stormTable([median as StormResult])).toContain("| — (2.00 s–2.00 s, 3 runs, 2 unfinished) |");
  });

  it("keeps storms of another variant, scenario or N apart, and a single run as it is", () => {
    const single = storm({ devices: 100 });
    const folded = medianRuns([
      storm({ allConnectedMs: 1_000 }),
      storm({ allConnectedMs: 2_000 }),
      storm({ variant: "mysql, generated key" }),
      storm({ scenario: "cold start" }),
      single,
    ]);
    expect(folded).toHaveLength(4);
    expect(folded[0]?.allConnectedMs).toBe(1_000);
    expect(folded).toContain(single);
    expect(folded.filter((result) => result.runsAllConnectedMs !== undefined)).toHaveLength(1);
  });
});

describe("judgeTargets", () => {
  const met = {
    storms: [
      storm({ allConnectedMs: 2_000 }),
      storm({ variant: "mysql, generated key", allConnectedMs: 2_900, pairRoundTrip: spread([10, 200]) }),
    ],
    commands: [command({ roundTrip: spread([5, 49]) })],
    rowSync: { devices: 1000, totalMs: 4_000, hashingMs: 900, unchangedMs: 1_000 },
  };

  it("meets every target with figures inside the bounds", () => {
    expect(judgeTargets(met).map((target) => target.met)).toEqual([true, true, true, true]);
  });

  it.each([
    ["slower than 1.5× anonymous", { allConnectedMs: 3_100 }, 0],
    ["one failed attempt", { failedAttempts: 1 }, 0],
    ["a device left out", { notConnected: 1, allConnectedMs: undefined }, 0],
    ["pair p99 at 250 ms", { pairRoundTrip: spread([250]) }, 1],
    ["a lost pair message", { pairLost: 1 }, 1],
  ])("misses on %s", (_, overrides, index) => {
    const [anonymous, mysql] = met.storms as [StormResult, StormResult];
    const targets = judgeTargets({ ...met, storms: [anonymous, { ...mysql, ...overrides }] });
    expect(targets[index]?.met).toBe(false);
  });

  it("puts the anonymous broker's pair p99 in the same storm beside the mysql one", () => {
    const [anonymous, mysql] = met.storms as [StormResult, StormResult];
    const targets = judgeTargets({ ...met, storms: [{ ...anonymous, pairRoundTrip: spread([300]) }, mysql] });
    expect(targets[1]?.measured).toBe("p99 200 ms, 0 lost (anonymous broker, same storm: p99 300 ms)");
  });

  it("misses the command and row-sync targets past their bounds, and anything not measured", () => {
    expect(judgeTargets({ ...met, commands: [command({ roundTrip: spread([50]) })] })[2]?.met).toBe(false);
    expect(
      judgeTargets({
        ...met,
        rowSync: { devices: 1000, totalMs: 20_000, hashingMs: 10_000, unchangedMs: 0 },
      })[3]?.met,
    ).toBe(false);
    expect(judgeTargets({ ...met, rowSync: { ...met.rowSync, devices: 100 } })[3]?.met).toBe(false);
    const nothing = judgeTargets({ storms: [], commands: [] });
    expect(nothing.every((target) => !target.met && target.measured === "not measured")).toBe(true);
  });
});
