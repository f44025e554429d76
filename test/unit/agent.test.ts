import { describe, expect, it } from "vitest";
import { formatLogLine } from "../../lib/agent/log.ts";
import { SessionResponder } from "../../lib/agent/responder.ts";
import { answerSessionMessage, inspectDeviceMessage, SESSION_TRIGGER_SRC } from "../../lib/agent/session.ts";
import { AgentSettingsError, loadAgentSettings, parseAgentSettings } from "../../lib/agent/settings.ts";
import { derivePerDeviceKey } from "../../lib/meross/device-key.ts";
import { buildMessage, buildReply, type MerossMessage } from "../../lib/meross/envelope.ts";
import { Namespace } from "../../lib/meross/messages/index.ts";
import { isSignatureValid, sign } from "../../lib/meross/sign.ts";
import { reconnectDelayMs } from "../../lib/mqtt/reconnect.ts";

const CLOCK_NAMESPACE = Namespace.SystemClock;
const BIND_NAMESPACE = Namespace.ControlBind;
const CONSUMPTION_CONFIG_NAMESPACE = Namespace.ControlConsumptionConfig;

const KEY = "a-stack-device-key-0123456789";
const UUID = "2307065833780651200148e1e9cf4534";
const PUBLISH = `/appliance/${UUID}/publish`;
const SUBSCRIBE = `/appliance/${UUID}/subscribe`;
const NOW = new Date("2025-03-01T12:00:00Z");
const NOW_SECONDS = Math.floor(NOW.getTime() / 1000);

/** A message as a device sends it: from its own publish topic, signed with its key, with its uuid in the header. */
function deviceMessage(
  method: "PUSH" | "SET" | "GET",
  namespace: string,
  payload: Record<string, unknown>,
  key = KEY,
): MerossMessage {
  const message = buildMessage({
    method,
    namespace,
    payload,
    key,
    from: PUBLISH,
    triggerSrc: "DevBoot",
    now: new Date("2025-03-01T11:59:58Z"),
  });
  return { ...message, header: { ...message.header, timestampMs: 612, uuid: UUID } };
}

const asBuffer = (message: unknown) => Buffer.from(JSON.stringify(message));

describe("answerSessionMessage", () => {
  it("echoes a Clock PUSH with the device's header, no uuid, the cloud's triggerSrc and the current time", () => {
    const clock = deviceMessage("PUSH", CLOCK_NAMESPACE, { clock: { timestamp: 4 } });
    const answer = answerSessionMessage(UUID, clock, { key: KEY, now: NOW });
    expect(answer?.event).toBe("clock-answered");
    expect(answer?.topic).toBe(SUBSCRIBE);
    const { uuid: _uuid, triggerSrc: _trigger, ...deviceHeader } = clock.header;
    expect(answer?.message.header).toEqual({ ...deviceHeader, triggerSrc: SESSION_TRIGGER_SRC });
    expect(answer?.message.header).not.toHaveProperty("uuid");
    expect(answer?.message.payload).toEqual({ clock: { timestamp: NOW_SECONDS } });
    // The echoed header keeps the device's own signature, which still verifies.
    expect(isSignatureValid(answer?.message.header ?? clock.header, KEY)).toBe(true);
  });

  it("acknowledges a Bind SET with a SETACK carrying the same messageId, signed now with the key", () => {
    const bind = deviceMessage("SET", BIND_NAMESPACE, { bind: { bindTime: 1, hardware: { uuid: UUID } } });
    const answer = answerSessionMessage(UUID, bind, { key: KEY, now: NOW });
    expect(answer?.event).toBe("bind-acknowledged");
    expect(answer?.topic).toBe(SUBSCRIBE);
    expect(answer?.message.header).toMatchObject({
      messageId: bind.header.messageId,
      method: "SETACK",
      namespace: BIND_NAMESPACE,
      payloadVersion: 1,
      from: PUBLISH,
      timestamp: NOW_SECONDS,
      timestampMs: 0,
      triggerSrc: SESSION_TRIGGER_SRC,
      sign: sign(bind.header.messageId, KEY, NOW_SECONDS),
    });
    expect(answer?.message.payload).toEqual({});
  });

  it("echoes a ConsumptionConfig PUSH unchanged apart from uuid and triggerSrc", () => {
    const payload = { config: { voltageRatio: 188, electricityRatio: 102, maxElectricityCurrent: 11000 } };
    const push = deviceMessage("PUSH", CONSUMPTION_CONFIG_NAMESPACE, payload);
    const answer = answerSessionMessage(UUID, push, { key: KEY, now: NOW });
    expect(answer?.event).toBe("consumption-config-echoed");
    expect(answer?.topic).toBe(SUBSCRIBE);
    expect(answer?.message.payload).toEqual(payload);
    expect(answer?.message.header.messageId).toBe(push.header.messageId);
    expect(answer?.message.header.sign).toBe(push.header.sign);
    expect(answer?.message.header.method).toBe("PUSH");
    expect(answer?.message.header).not.toHaveProperty("uuid");
  });

  it("leaves every other message alone", () => {
    const others = [
      deviceMessage("PUSH", "Appliance.Control.ToggleX", { togglex: [{ channel: 0, onoff: 1 }] }),
      deviceMessage("GET", CLOCK_NAMESPACE, {}),
      deviceMessage("PUSH", BIND_NAMESPACE, { bind: {} }),
      deviceMessage("PUSH", "Appliance.System.Report", { report: [] }),
    ];
    for (const message of others) {
      expect(answerSessionMessage(UUID, message, { key: KEY, now: NOW })).toBeUndefined();
    }
  });
});

describe("inspectDeviceMessage", () => {
  it("accepts a signed message on a device publish topic and takes the uuid from the topic", () => {
    const clock = deviceMessage("PUSH", CLOCK_NAMESPACE, { clock: { timestamp: 4 } });
    const inspection = inspectDeviceMessage(PUBLISH, asBuffer(clock), { keysFor: () => [KEY] });
    expect(inspection).toEqual({ ok: true, uuid: UUID, message: clock, key: KEY });
  });

  it("names the candidate key the message is signed with", () => {
    const clock = deviceMessage("PUSH", CLOCK_NAMESPACE, { clock: { timestamp: 4 } }, "its-own-key");
    const inspection = inspectDeviceMessage(PUBLISH, asBuffer(clock), {
      keysFor: () => [KEY, "its-own-key"],
    });
    expect(inspection).toMatchObject({ ok: true, key: "its-own-key" });
  });

  it.each([
    ["not JSON", PUBLISH, Buffer.from("{not json"), "not-json"],
    ["JSON but no envelope", PUBLISH, asBuffer({ hello: "world" }), "not-meross"],
    [
      "signed with another key",
      PUBLISH,
      asBuffer(deviceMessage("PUSH", CLOCK_NAMESPACE, {}, "other-key")),
      "bad-signature",
    ],
    [
      "on another topic",
      "/app/0-x/subscribe",
      asBuffer(deviceMessage("PUSH", CLOCK_NAMESPACE, {})),
      "unexpected-topic",
    ],
    [
      "on a device's command topic",
      SUBSCRIBE,
      asBuffer(deviceMessage("PUSH", CLOCK_NAMESPACE, {})),
      "unexpected-topic",
    ],
  ])("rejects a message %s", (_what, topic, payload, reason) => {
    const inspection = inspectDeviceMessage(topic, payload, { keysFor: () => [KEY] });
    expect(inspection.ok).toBe(false);
    expect(inspection.ok === false && inspection.reason).toBe(reason);
  });

  it("rejects a payload over the size limit before parsing it", () => {
    const huge = Buffer.alloc(70_000, "x");
    const inspection = inspectDeviceMessage(PUBLISH, huge, { keysFor: () => [KEY] });
    expect(inspection).toMatchObject({ ok: false, uuid: UUID, reason: "too-large" });
    const small = inspectDeviceMessage(PUBLISH, Buffer.alloc(200, " "), {
      keysFor: () => [KEY],
      maxBytes: 100,
    });
    expect(small).toMatchObject({ ok: false, reason: "too-large" });
  });
});

describe("reconnectDelayMs", () => {
  const backoff = { initialMs: 1_000, maxMs: 30_000 };

  it("doubles from the initial delay up to the maximum", () => {
    const ceiling = (attempt: number) => reconnectDelayMs(attempt, backoff, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(ceiling)).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });

  it("spreads retries over the upper half of the window", () => {
    expect(reconnectDelayMs(3, backoff, () => 0)).toBe(2_000);
    expect(reconnectDelayMs(3, backoff, () => 0.5)).toBe(3_000);
  });
});

describe("formatLogLine", () => {
  it("writes one JSON object with the time first and no line breaks", () => {
    const line = formatLogLine({ level: "info", event: "clock-answered", uuid: UUID, messageId: "m" }, NOW);
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({
      time: NOW.toISOString(),
      level: "info",
      event: "clock-answered",
      uuid: UUID,
      messageId: "m",
    });
  });
});

describe("SessionResponder", () => {
  const ZONE = "Europe/Dublin";
  const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);
  const handle = (
    responder: SessionResponder,
    message: MerossMessage | Buffer,
    when = NOW,
    topic = PUBLISH,
  ) => responder.handle(topic, Buffer.isBuffer(message) ? message : asBuffer(message), when);
  const events = (response: { log: { event: string }[]; replies: { logEntry: { event: string } }[] }) => [
    ...response.log.map((entry) => entry.event),
    ...response.replies.map((reply) => reply.logEntry.event),
  ];

  it("answers a connecting device's Clock and Bind and sends its zone once, to its command topic", () => {
    const responder = new SessionResponder({ key: KEY, timezone: ZONE });
    const first = handle(responder, deviceMessage("PUSH", CLOCK_NAMESPACE, { clock: { timestamp: 4 } }));
    expect(events(first)).toEqual(["device-seen", "clock-answered", "time-zone-sent"]);
    const zone = first.replies[1] as (typeof first.replies)[number];
    expect(zone.topic).toBe(SUBSCRIBE);
    expect(zone.message.header).toMatchObject({
      method: "SET",
      namespace: Namespace.SystemTime,
      from: PUBLISH,
    });
    expect(isSignatureValid(zone.message.header, KEY)).toBe(true);
    expect(zone.message.payload).toMatchObject({ time: { timezone: ZONE } });

    const bind = handle(responder, deviceMessage("SET", BIND_NAMESPACE, { bind: {} }), at(1));
    expect(events(bind)).toEqual(["bind-acknowledged"]);
  });

  it("logs the device's answer to the zone, and sends it again when the device boots later", () => {
    const responder = new SessionResponder({ key: KEY, timezone: ZONE });
    const sent = handle(responder, deviceMessage("SET", BIND_NAMESPACE, { bind: {} })).replies[1]?.message;
    expect(sent?.header.namespace).toBe(Namespace.SystemTime);
    const ack = buildReply(sent as MerossMessage, { key: KEY, from: PUBLISH, now: at(1) });
    expect(handle(responder, ack, at(1)).log).toEqual([
      { level: "info", event: "time-zone-set", uuid: UUID, timezone: ZONE },
    ]);
    expect(events(handle(responder, deviceMessage("PUSH", CLOCK_NAMESPACE, {}), at(5)))).toEqual([
      "clock-answered",
    ]);
    const reboot = handle(responder, deviceMessage("SET", BIND_NAMESPACE, { bind: {} }), at(3600));
    expect(events(reboot)).toEqual(["bind-acknowledged", "time-zone-sent"]);
  });

  it("sends no zone without one configured, and ignores a SETACK it did not ask for", () => {
    const responder = new SessionResponder({ key: KEY });
    expect(events(handle(responder, deviceMessage("SET", BIND_NAMESPACE, { bind: {} })))).toEqual([
      "device-seen",
      "bind-acknowledged",
    ]);
    const stray = buildReply(deviceMessage("SET", Namespace.SystemTime, {}), {
      key: KEY,
      from: PUBLISH,
      now: NOW,
    });
    expect(events(handle(responder, stray))).toEqual([]);
  });

  it("passes over devices' replies to Home Assistant's meross_lan with one info line, never a warning", () => {
    const responder = new SessionResponder({ key: KEY, timezone: ZONE });
    const reply = buildReply(deviceMessage("GET", Namespace.SystemAll, {}), {
      key: KEY,
      from: PUBLISH,
      now: NOW,
    });
    // Even one that looks like a session message: it answers meross_lan, not the cloud.
    const clock = deviceMessage("PUSH", CLOCK_NAMESPACE, { clock: { timestamp: 4 } });
    const topic = "/appliance/meross_lan/publish";
    expect(handle(responder, reply, NOW, topic)).toEqual({
      log: [{ level: "info", event: "meross-lan-seen", topic }],
      replies: [],
    });
    for (const message of [reply, clock, Buffer.from("not json")]) {
      expect(handle(responder, message, NOW, topic)).toEqual({ log: [], replies: [] });
    }
    expect(events(handle(responder, clock))).toEqual(["device-seen", "clock-answered", "time-zone-sent"]);
  });

  it("answers a per-device device with its own key and a shared-key device with the shared key", () => {
    const secret = "a-stack-secret-of-32-characters-or-more";
    const other = "22222222222222222222222222222222";
    const ownKey = derivePerDeviceKey(secret, UUID, 2);
    const responder = new SessionResponder({ key: KEY, keySecret: secret, keyGenerations: { [UUID]: 2 } });
    const bindOf = (uuid: string, key: string) => {
      const message = deviceMessage("SET", BIND_NAMESPACE, { bind: {} }, key);
      const header = { ...message.header, from: `/appliance/${uuid}/subscribe` };
      return handle(responder, { ...message, header }, NOW, `/appliance/${uuid}/publish`);
    };
    const own = bindOf(UUID, ownKey).replies[0]?.message.header;
    expect(own && isSignatureValid(own, ownKey)).toBe(true);
    const shared = bindOf(other, KEY).replies[0]?.message.header;
    expect(shared && isSignatureValid(shared, KEY)).toBe(true);
    // A device rotated since the last `pulumi up` (generation 3) is still answered...
    const rotated = derivePerDeviceKey(secret, UUID, 3);
    const next = bindOf(UUID, rotated).replies[0]?.message.header;
    expect(next && isSignatureValid(next, rotated)).toBe(true);
    // ...but another device's own key does not pass for this one.
    expect(bindOf(other, ownKey).log).toMatchObject([{ event: "message-ignored", reason: "bad-signature" }]);
  });

  it("answers nothing and sends no zone when meross_lan answers the devices, but still checks what arrives", () => {
    const responder = new SessionResponder({ key: KEY, sessionAnswers: "meross_lan" });
    const session = [
      deviceMessage("PUSH", CLOCK_NAMESPACE, { clock: { timestamp: 4 } }),
      deviceMessage("SET", BIND_NAMESPACE, { bind: {} }),
      deviceMessage("PUSH", CONSUMPTION_CONFIG_NAMESPACE, { config: { voltageRatio: 188 } }),
    ];
    const responses = session.map((message) => handle(responder, message));
    expect(responses.flatMap((response) => response.replies)).toEqual([]);
    expect(responses.flatMap(events)).toEqual(["device-seen"]);
    expect(events(handle(responder, deviceMessage("PUSH", CLOCK_NAMESPACE, {}, "other-key")))).toEqual([
      "message-ignored",
    ]);
    expect(() => new SessionResponder({ key: KEY, sessionAnswers: "meross_lan", timezone: ZONE })).toThrow(
      /meross_lan owns the devices' zone/,
    );
  });

  it("turns a rejected message into one warning and no reply", () => {
    const responder = new SessionResponder({ key: KEY, timezone: ZONE, maxMessageBytes: 10 });
    const response = handle(responder, Buffer.from("01234567890"));
    expect(response.replies).toEqual([]);
    expect(response.log).toEqual([
      {
        level: "warn",
        event: "message-ignored",
        uuid: UUID,
        reason: "too-large",
        detail: "11 bytes, limit 10",
      },
    ]);
  });
});

describe("agent settings", () => {
  const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const file = JSON.stringify({
    brokerUrl: "mqtts://mosquitto:8883",
    ca: CA,
    username: "session-agent",
    password: "service-password-0123",
    key: KEY,
    userId: "1234",
    timezone: "Europe/Dublin",
  });
  const files: Record<string, string> = { "/settings.json": file, "/ca.pem": CA };
  const read = (path: string) => {
    const text = files[path];
    if (text === undefined) throw new Error(`ENOENT: ${path}`);
    return text;
  };

  it("reads the file the container is given", () => {
    expect(loadAgentSettings({ AGENT_SETTINGS_FILE: "/settings.json" }, read)).toEqual({
      ...JSON.parse(file),
      sessionAnswers: "agent",
    });
  });

  it("lets AGENT_* variables override or replace the file, for running the agent by hand", () => {
    const settings = loadAgentSettings(
      {
        AGENT_SETTINGS_FILE: "/settings.json",
        AGENT_TIMEZONE: "UTC",
        AGENT_BROKER_URL: "mqtt://127.0.0.1:1883",
      },
      read,
    );
    expect(settings).toMatchObject({ timezone: "UTC", brokerUrl: "mqtt://127.0.0.1:1883", key: KEY });
    expect(
      loadAgentSettings(
        { AGENT_BROKER_URL: "mqtts://h:8883", AGENT_CA_FILE: "/ca.pem", AGENT_KEY: KEY, AGENT_USER_ID: "0" },
        read,
      ),
    ).toEqual({ brokerUrl: "mqtts://h:8883", ca: CA, key: KEY, userId: "0", sessionAnswers: "agent" });
    expect(
      loadAgentSettings(
        {
          AGENT_BROKER_URL: "mqtts://h:8883",
          AGENT_KEY: KEY,
          AGENT_USER_ID: "0",
          AGENT_SESSION_ANSWERS: "meross_lan",
        },
        read,
      ),
    ).toMatchObject({ sessionAnswers: "meross_lan" });
  });

  it("refuses a zone of its own while meross_lan answers the devices", () => {
    expect(() => parseAgentSettings({ ...JSON.parse(file), sessionAnswers: "meross_lan" }, "test")).toThrow(
      /timezone: must be unset when sessionAnswers is meross_lan/,
    );
    expect(() => parseAgentSettings({ ...JSON.parse(file), sessionAnswers: "cloud" }, "test")).toThrow(
      /sessionAnswers: must be "agent"/,
    );
  });

  it("names every bad field and never repeats a secret", () => {
    const bad = { brokerUrl: "http://x", key: "has a space secret", userId: "me", timezone: "Mars/Olympus" };
    let message = "";
    try {
      parseAgentSettings(bad, "test");
    } catch (error) {
      expect(error).toBeInstanceOf(AgentSettingsError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/brokerUrl/);
    expect(message).toMatch(/key/);
    expect(message).toMatch(/userId/);
    expect(message).toMatch(/timezone: must be an IANA time zone/);
    expect(message).not.toContain("has a space secret");
  });

  it("refuses unknown fields (a typo would otherwise be silently ignored)", () => {
    expect(() => parseAgentSettings({ ...JSON.parse(file), timeZone: "UTC" }, "test")).toThrow(/timeZone/);
  });

  it("says which file it could not read", () => {
    expect(() => loadAgentSettings({ AGENT_SETTINGS_FILE: "/missing.json" }, read)).toThrow(
      /AGENT_SETTINGS_FILE=\/missing.json/,
    );
  });
});
