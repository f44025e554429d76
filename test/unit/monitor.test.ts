import { describe, expect, it } from "vitest";
import { buildMessage } from "../../lib/meross/envelope.ts";
import {
  decodeTraffic,
  formatRawLine,
  formatTrafficJson,
  formatTrafficLine,
  summarizePayload,
} from "../../lib/monitor/format.ts";
import { monitorShows, monitorTopics } from "../../lib/monitor/watch.ts";

const UUID = "2307065833780651200148e1e9cf4534";
const NOW = new Date("2025-03-01T12:00:00.123Z");
const names = new Map([[UUID, "kitchen"]]);

function wire(
  method: "GET" | "SET" | "PUSH",
  namespace: string,
  payload: Record<string, unknown>,
  from: string,
) {
  return Buffer.from(JSON.stringify(buildMessage({ method, namespace, payload, key: "k", from })));
}

describe("decodeTraffic + formatTrafficLine", () => {
  it("shows a device's state PUSH with its configured name", () => {
    const topic = `/appliance/${UUID}/publish`;
    const record = decodeTraffic(
      topic,
      wire("PUSH", "Appliance.Control.ToggleX", { togglex: [{ channel: 0, onoff: 1, lmTime: 1 }] }, topic),
      { names, now: NOW },
    );
    expect(record).toMatchObject({
      direction: "from-device",
      uuid: UUID,
      device: "kitchen",
      method: "PUSH",
      namespace: "Appliance.Control.ToggleX",
      summary: "ch0 on",
    });
    expect(formatTrafficLine(record, { timeZone: "UTC" })).toBe(
      "12:00:00.123  kitchen       -> PUSH    Appliance.Control.ToggleX  ch0 on",
    );
  });

  it("shows a command to a device with an arrow towards it, by uuid when it has no name", () => {
    const topic = `/appliance/${UUID}/subscribe`;
    const record = decodeTraffic(
      topic,
      wire(
        "SET",
        "Appliance.Control.ToggleX",
        { togglex: { channel: 1, onoff: 0 } },
        "/app/0-control/subscribe",
      ),
      { now: NOW },
    );
    expect(formatTrafficLine(record, { timeZone: "UTC" })).toBe(
      `12:00:00.123  ${UUID}  <- SET     Appliance.Control.ToggleX  ch1 off`,
    );
  });

  it("places a reply on a controller topic by the device topic in its `from`", () => {
    const message = buildMessage({
      method: "SET",
      namespace: "Appliance.Control.ToggleX",
      key: "k",
      from: `/appliance/${UUID}/publish`,
    });
    const reply = { ...message, header: { ...message.header, method: "SETACK" } };
    const record = decodeTraffic("/app/0-control/subscribe", Buffer.from(JSON.stringify(reply)), {
      names,
      now: NOW,
    });
    expect(record).toMatchObject({ direction: "reply", device: "kitchen", method: "SETACK", summary: "ok" });
  });

  it("never throws on garbage and says what it got", () => {
    const topic = `/appliance/${UUID}/publish`;
    expect(decodeTraffic(topic, Buffer.from("\u0000\u0001garbage"), { names, now: NOW })).toMatchObject({
      device: "kitchen",
      summary: "not JSON (9 bytes)",
    });
    expect(decodeTraffic(topic, Buffer.from('{"a":1}'), { now: NOW }).summary).toBe(
      'not a Meross message: {"a":1}',
    );
    expect(decodeTraffic("/app/x/subscribe", Buffer.from("[]"), { now: NOW }).device).toBe("?");
  });

  it("JSON mode writes one parseable object per line with the decoded payload", () => {
    const topic = `/appliance/${UUID}/publish`;
    const record = decodeTraffic(
      topic,
      wire("PUSH", "Appliance.System.Clock", { clock: { timestamp: 4 } }, topic),
      {
        names,
        now: NOW,
      },
    );
    const line = formatTrafficJson(record);
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toMatchObject({
      time: NOW.toISOString(),
      device: "kitchen",
      namespace: "Appliance.System.Clock",
      summary: "timestamp 4",
      payload: { clock: { timestamp: 4 } },
    });
  });

  it("raw mode prints the topic and the bytes unchanged", () => {
    expect(formatRawLine("/appliance/x/publish", Buffer.from('{"a": 1}'), NOW)).toBe(
      '2025-03-01T12:00:00.123Z /appliance/x/publish {"a": 1}',
    );
  });
});

describe("secrets in watched traffic", () => {
  const topic = `/appliance/${UUID}/subscribe`;
  const deviceKey = "device-key-0123456789";
  const wifiPassword = "correct horse battery";

  it.each([
    [
      "Appliance.Config.Key",
      {
        key: {
          userId: "0",
          key: deviceKey,
          gateway: { host: "10.0.0.2", port: 8883, secondHost: "10.0.0.2", secondPort: 8883, redirect: 1 },
        },
      },
      [deviceKey],
    ],
    [
      "Appliance.Config.Wifi",
      {
        wifi: {
          ssid: Buffer.from("home").toString("base64"),
          password: Buffer.from(wifiPassword).toString("base64"),
        },
      },
      [wifiPassword, Buffer.from(wifiPassword).toString("base64")],
    ],
  ])("%s: neither the line nor --json shows the secret", (namespace, payload, secrets) => {
    const record = decodeTraffic(topic, wire("SET", namespace, payload, "/app/0-x/subscribe"), {
      now: NOW,
    });
    const printed = `${formatTrafficLine(record)}\n${formatTrafficJson(record)}`;
    for (const secret of secrets) expect(printed).not.toContain(secret);
    expect(printed).toContain("(hidden)");
    if (namespace === "Appliance.Config.Key") expect(printed).toContain("10.0.0.2");
  });
});

describe("summarizePayload", () => {
  it.each([
    [
      "Appliance.Control.ToggleX",
      "PUSH",
      {
        togglex: [
          { channel: 0, onoff: 0 },
          { channel: 1, onoff: 1 },
        ],
      },
      "ch0 off, ch1 on",
    ],
    ["Appliance.Control.Toggle", "PUSH", { toggle: { onoff: 1, lmTime: 5 } }, "ch0 on"],
    ["Appliance.Control.ToggleX", "GET", { togglex: { channel: 2 } }, "ch2"],
    ["Appliance.System.Clock", "PUSH", { clock: { timestamp: 1740830400 } }, "timestamp 1740830400"],
    [
      "Appliance.Control.Bind",
      "SET",
      {
        bind: { bindTime: 1, hardware: { type: "mss310", version: "6.0.0" }, firmware: { version: "6.1.8" } },
      },
      "bind mss310 hw 6.0.0 fw 6.1.8",
    ],
    [
      "Appliance.Control.ConsumptionConfig",
      "PUSH",
      { config: { voltageRatio: 188, electricityRatio: 102 } },
      "voltageRatio=188 electricityRatio=102",
    ],
    [
      "Appliance.Control.Electricity",
      "GETACK",
      { electricity: { channel: 0, current: 150, voltage: 2301, power: 34500 } },
      "34.50 W 230.10 V 0.15 A",
    ],
    [
      "Appliance.System.Time",
      "SET",
      {
        time: {
          timezone: "Europe/Berlin",
          timestamp: 1,
          timeRule: [
            [1, 3600, 0],
            [2, 7200, 1],
          ],
        },
      },
      "timezone Europe/Berlin, 2 DST rules",
    ],
    [
      "Appliance.System.All",
      "GETACK",
      {
        all: {
          system: { hardware: { type: "mss310" }, firmware: { version: "6.1.8" } },
          digest: { togglex: [{ channel: 0, onoff: 1 }] },
        },
      },
      "mss310 fw 6.1.8 ch0 on",
    ],
    // A real mss310 fw 1.1.18 (meross_lan trace): one relay, no channel.
    ["Appliance.Control.Toggle", "PUSH", { toggle: { onoff: 1, lmTime: 1714431601 } }, "ch0 on"],
    ["Appliance.Control.Toggle", "SET", { channel: 0, toggle: { onoff: 0 } }, "ch0 off"],
    [
      "Appliance.System.All",
      "GETACK",
      {
        all: {
          system: { hardware: { type: "mss310" }, firmware: { version: "1.1.18" } },
          control: { toggle: { onoff: 1, lmTime: 1713865630 }, trigger: [], timer: [] },
        },
      },
      "mss310 fw 1.1.18 ch0 on",
    ],
    [
      "Appliance.Control.ToggleX",
      "ERROR",
      { error: { code: 5001, detail: "sign error" } },
      "error 5001 sign error",
    ],
    [
      "Appliance.Control.Toggle",
      "ERROR",
      { error: { code: -1, message: "channel 1 unknown" } },
      "error -1 channel 1 unknown",
    ],
    ["Appliance.Control.ToggleX", "SETACK", {}, "ok"],
    [
      "Appliance.System.Report",
      "PUSH",
      { report: [{ type: "1", value: "1" }] },
      '{"report":[{"type":"1","value":"1"}]}',
    ],
  ])("%s %s", (namespace, method, payload, expected) => {
    expect(summarizePayload(namespace, method, payload)).toBe(expected);
  });

  it("cuts long unknown payloads to one screen line", () => {
    const summary = summarizePayload("Appliance.Unknown", "PUSH", { blob: "x".repeat(500) });
    expect(summary.length).toBe(100);
    expect(summary.endsWith("…")).toBe(true);
  });
});

describe("monitorTopics", () => {
  it("watches every device, or only the named ones, plus controller replies unless left out", () => {
    expect(monitorTopics([], true)).toEqual([
      "/appliance/+/publish",
      "/appliance/+/subscribe",
      "/app/+/subscribe",
    ]);
    expect(monitorTopics([UUID], false)).toEqual([
      `/appliance/${UUID}/publish`,
      `/appliance/${UUID}/subscribe`,
    ]);
  });

  it("names Home Assistant's reply topic for a device filter, which /appliance/+/publish covers otherwise", () => {
    expect(monitorTopics([UUID], true)).toEqual([
      `/appliance/${UUID}/publish`,
      `/appliance/${UUID}/subscribe`,
      "/app/+/subscribe",
      "/appliance/meross_lan/publish",
    ]);
  });
});

describe("monitorShows", () => {
  const OTHER = "0".repeat(32);

  it("keeps replies on shared topics to the named devices", () => {
    const filter = { uuids: [UUID], replies: true };
    expect(monitorShows("/appliance/meross_lan/publish", UUID, filter)).toBe(true);
    expect(monitorShows("/appliance/meross_lan/publish", OTHER, filter)).toBe(false);
    expect(monitorShows("/app/1-x/subscribe", undefined, filter)).toBe(false);
    expect(monitorShows("/app/1-x/subscribe", OTHER, { uuids: [], replies: true })).toBe(true);
  });

  it("leaves out Home Assistant's replies with the others when replies are off", () => {
    expect(monitorShows("/appliance/meross_lan/publish", UUID, { uuids: [], replies: false })).toBe(false);
    expect(monitorShows(`/appliance/${UUID}/publish`, UUID, { uuids: [], replies: false })).toBe(true);
  });
});
