/** `[epoch seconds when it starts, UTC offset in seconds, 1 if daylight saving time]`. */
export type TimeRule = [number, number, 0 | 1];

function zoneFormatter(timezone: string): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: timezone, timeZoneName: "longOffset" });
  } catch {
    throw new RangeError(
      `time zone ${JSON.stringify(timezone)} is not an IANA zone name; use one such as Europe/Dublin or UTC`,
    );
  }
}

function utcOffsetSeconds(formatter: Intl.DateTimeFormat, epochSeconds: number): number {
  const name = formatter
    .formatToParts(epochSeconds * 1000)
    .find((part) => part.type === "timeZoneName")?.value;
  const match = /^GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(name ?? "");
  if (!match) throw new Error(`cannot read a UTC offset from ${JSON.stringify(name)}`);
  const [, sign, hours = "0", minutes = "0", seconds = "0"] = match;
  return (sign === "-" ? -1 : 1) * (Number(hours) * 3600 + Number(minutes) * 60 + Number(seconds));
}

const DAY_SECONDS = 86_400;
/** The Meross app sends 20 entries and MerossBLE 20 transitions (§4.1): about ten years of DST. */
const MAX_TIME_RULES = 20;
const TIME_RULE_YEARS = 10;

/** The first second in (after, until] whose offset differs from the one at `after`. */
function transitionSecond(offsetAt: (s: number) => number, after: number, until: number): number {
  const before = offsetAt(after);
  let low = after;
  let high = until;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (offsetAt(middle) === before) low = middle;
    else high = middle;
  }
  return high;
}

/**
 * The zone's rules from 1 January of the UTC year of `now`: the rule in force then (so the device
 * knows its offset before the first change), then each transition, up to 20 entries. The device
 * keeps the last rule for ever, so the list runs years ahead: a plug stays connected for months
 * and would otherwise miss next year's changes. DST is "offset above the lowest", which also holds
 * for southern zones and Dublin's inverted legal definition.
 */
export function timeRules(timezone: string, now: Date = new Date()): TimeRule[] {
  const year = now.getUTCFullYear();
  const rememberedAs = `${timezone} ${year}`;
  let rules = remembered.get(rememberedAs);
  if (rules === undefined) {
    rules = computeTimeRules(timezone, year);
    if (remembered.size >= MAX_REMEMBERED) remembered.clear();
    remembered.set(rememberedAs, rules);
  }
  return rules.map(([epoch, offset, dst]) => [epoch, offset, dst]);
}

/**
 * The rules depend only on the zone and the year, and computing them takes thousands of Intl
 * lookups (~10 ms). The agent sends every device its zone on each connection, so after a power cut
 * it would spend ~10 s of CPU on 1 000 plugs recomputing the same list; each zone-year is computed
 * once instead. Bounded, for a long-lived process that sees many zones or years.
 */
const remembered = new Map<string, readonly TimeRule[]>();
const MAX_REMEMBERED = 16;

function computeTimeRules(timezone: string, year: number): TimeRule[] {
  const formatter = zoneFormatter(timezone);
  const offsetAt = (epochSeconds: number) => utcOffsetSeconds(formatter, epochSeconds);
  const start = Date.UTC(year, 0, 1) / 1000;
  const end = Date.UTC(year + TIME_RULE_YEARS, 0, 1) / 1000;
  const changes: [number, number][] = [[start, offsetAt(start)]];
  let offset = offsetAt(start);
  for (let day = start; day < end && changes.length < MAX_TIME_RULES; day += DAY_SECONDS) {
    const next = offsetAt(day + DAY_SECONDS);
    if (next !== offset) {
      const second = transitionSecond(offsetAt, day, day + DAY_SECONDS);
      if (second < end) changes.push([second, offsetAt(second)]);
    }
    offset = next;
  }
  const standard = Math.min(...changes.map(([, offset]) => offset));
  return changes.map(([epoch, offset]) => [epoch, offset, offset > standard ? 1 : 0]);
}
