import { describe, expect, it } from "vitest";
import { brokerAddressSchema, brokerPairSchema, redactBrokerUrl } from "../../lib/meross/broker-url.ts";
import { deviceMqttCredentials } from "../../lib/meross/credentials.ts";
import {
  buildMessage,
  buildReply,
  checkReply,
  DeviceError,
  type MerossMessage,
  ProtocolError,
  parseMessage,
  WrongKeyError,
} from "../../lib/meross/envelope.ts";
import { md5Hex } from "../../lib/meross/hash.ts";
import {
  hostSchema,
  macAddressSchema,
  ssidSchema,
  userIdSchema,
  uuidSchema,
  wifiPasswordSchema,
} from "../../lib/meross/identifiers.ts";
import { type DeviceTransport, requestOver } from "../../lib/meross/request.ts";
import { isSignatureValid, sign } from "../../lib/meross/sign.ts";
import {
  controllerReplyTopic,
  devicePublishTopic,
  deviceSubscribeTopic,
  deviceTopicDirection,
  uuidFromDeviceTopic,
} from "../../lib/meross/topics.ts";
import { vectors } from "../support/vectors.ts";

describe("sign", () => {
  it.each(vectors.sign)("reproduces the logged signature for $messageId", (vector) => {
    expect(sign(vector.messageId, vector.key, vector.timestamp)).toBe(vector.sign);
    expect(isSignatureValid(vector, vector.key)).toBe(true);
  });

  it("rejects a signature made with another key", () => {
    const [vector] = vectors.sign;
    expect(vector).toBeDefined();
    if (!vector) return;
    expect(isSignatureValid(vector, `${vector.key}x`)).toBe(false);
  });

  it("md5Hex matches the reference digest", () => {
    expect(md5Hex("Hello, World!")).toBe("65a8e27d8879283831b664bd8b7f0ad4");
  });
});

describe("deviceMqttCredentials", () => {
  it.each(vectors.mqttPassword)("reproduces the password for $macAddress", (vector) => {
    expect(deviceMqttCredentials(vector.macAddress, vector.key, vector.userId)).toEqual({
      username: vector.macAddress,
      password: vector.password,
    });
  });

  it.each(["48-E1-E9-B6-2C-49", "48E1E9B62C49", "48:E1:E9:B6:2C:49"])("normalises %s first", (spelling) => {
    const [vector] = vectors.mqttPassword.filter((v) => v.macAddress === "48:e1:e9:b6:2c:49");
    expect(vector).toBeDefined();
    if (!vector) return;
    expect(deviceMqttCredentials(spelling, vector.key, vector.userId).password).toBe(vector.password);
  });
});

describe("identifier schemas", () => {
  it.each(["48:e1:e9:b6:2c", "48:e1:e9:b6:2c:4g", "48:e1-e9:b6:2c:49", "", "48e1e9b62c4999"])(
    "rejects the MAC %j",
    (mac) => {
      expect(macAddressSchema.safeParse(mac).success).toBe(false);
    },
  );

  it("rejects a uuid that is not 32 hex digits", () => {
    expect(uuidSchema.safeParse("2307065833780651200148e1e9cf453").success).toBe(false);
    expect(uuidSchema.safeParse("2307065833780651200148e1e9cf453z").success).toBe(false);
    expect(uuidSchema.parse("2307065833780651200148E1E9CF4534")).toBe("2307065833780651200148e1e9cf4534");
  });

  it("takes a numeric userId as a number or digits only", () => {
    expect(userIdSchema.parse(1234)).toBe("1234");
    expect(userIdSchema.safeParse("12a").success).toBe(false);
    expect(userIdSchema.safeParse(-1).success).toBe(false);
  });

  it("bounds the SSID by bytes, not characters", () => {
    expect(ssidSchema.safeParse("").success).toBe(false);
    expect(ssidSchema.safeParse("a".repeat(32)).success).toBe(true);
    expect(ssidSchema.safeParse("é".repeat(17)).success).toBe(false);
  });

  it("takes a WPA secret only: 8-63 printable ASCII characters, or exactly 64 hex digits", () => {
    const accepts = (password: string) => wifiPasswordSchema.safeParse(password).success;
    expect(accepts("1234567")).toBe(false);
    expect(accepts("12345678")).toBe(true);
    expect(accepts(" spaces and ~punctuation! ")).toBe(true);
    expect(accepts("x".repeat(63))).toBe(true);
    expect(accepts("x".repeat(64))).toBe(false);
    expect(accepts("0123456789abcdefABCDEF".padEnd(64, "0"))).toBe(true);
    expect(accepts("0".repeat(65))).toBe(false);
    expect(accepts("newline\ninside")).toBe(false);
    expect(accepts("delete\u007fchar")).toBe(false);
    expect(accepts("ünicode-passphrase")).toBe(false);
  });

  it("takes IPv4 or DNS hosts only", () => {
    expect(hostSchema.parse("Broker.Home.Arpa")).toBe("broker.home.arpa");
    expect(hostSchema.safeParse("192.168.1.300").success).toBe(false);
    expect(hostSchema.safeParse("bad host").success).toBe(false);
  });
});

describe("broker addresses", () => {
  it.each([
    ["mqtts://192.168.1.10:8883", { host: "192.168.1.10", port: 8883 }],
    ["mqtt://broker.lan:2001", { host: "broker.lan", port: 2001 }],
    ["broker.lan:8884", { host: "broker.lan", port: 8884 }],
    ["mqtts://broker.lan", { host: "broker.lan", port: 8883 }],
  ])("parses %s", (text, expected) => {
    expect(brokerAddressSchema.parse(text)).toEqual(expected);
  });

  it.each([
    "http://broker:80",
    "broker",
    "mqtts://broker:70000",
    "mqtts://broker:8883/path",
    "mqtts://u:p@b:1",
    "mqtts://:p@b:1",
    "mqtts://b:1#fragment",
  ])("rejects %s", (text) => {
    expect(brokerAddressSchema.safeParse(text).success).toBe(false);
  });

  it("masks a typed user:password in URLs shown in errors", () => {
    expect(redactBrokerUrl("mqtts://me:s3cret@broker.lan:8883")).toBe("mqtts://***@broker.lan:8883");
    expect(redactBrokerUrl("me:s3cret@broker.lan:8883")).toBe("***@broker.lan:8883");
    expect(redactBrokerUrl("mqtts://broker.lan:8883")).toBe("mqtts://broker.lan:8883");
  });

  it("duplicates a single broker and keeps only the first two", () => {
    expect(brokerPairSchema.parse(["a.lan:1"])).toEqual([
      { host: "a.lan", port: 1 },
      { host: "a.lan", port: 1 },
    ]);
    expect(brokerPairSchema.parse(["a.lan:1", "b.lan:2", "c.lan:3"])).toEqual([
      { host: "a.lan", port: 1 },
      { host: "b.lan", port: 2 },
    ]);
    expect(brokerPairSchema.safeParse([]).success).toBe(false);
  });
});

describe("envelope", () => {
  const uuid = "2307065833780651200148e1e9cf4534";
  const request = buildMessage({
    method: "SET",
    namespace: "Appliance.Control.ToggleX",
    payload: { togglex: { channel: 0, onoff: 1 } },
    key: "k",
    from: "/app/0-test/subscribe",
  });

  it("signs what it builds", () => {
    expect(request.header.messageId).toMatch(/^[0-9a-f]{32}$/);
    expect(isSignatureValid(request.header, "k")).toBe(true);
    expect(parseMessage(JSON.stringify(request))).toEqual(request);
  });

  it("accepts the paired, signed reply", () => {
    const reply = buildReply(request, { key: "k", from: `/appliance/${uuid}/publish` });
    expect(reply.header.method).toBe("SETACK");
    expect(checkReply(request, reply, "k")).toBe(reply);
  });

  it("rejects a reply signed with another key, for another message or of the wrong method", () => {
    const from = `/appliance/${uuid}/publish`;
    expect(() => checkReply(request, buildReply(request, { key: "other", from }), "k")).toThrow(
      ProtocolError,
    );
    const stranger = buildReply(
      { ...request, header: { ...request.header, messageId: "0".repeat(32) } },
      { key: "k", from },
    );
    expect(() => checkReply(request, stranger, "k")).toThrow(/another messageId/);
    expect(() => checkReply(request, buildReply(request, { key: "k", from, method: "GETACK" }))).toThrow(
      /expected SETACK/,
    );
  });

  it("maps ERROR 5001 to WrongKeyError and others to DeviceError", () => {
    const from = `/appliance/${uuid}/publish`;
    const signError = buildReply(request, {
      key: "k",
      from,
      method: "ERROR",
      payload: { error: { code: 5001, detail: "sign error" } },
    });
    expect(() => checkReply(request, signError)).toThrow(WrongKeyError);
    const other = buildReply(request, {
      key: "k",
      from,
      method: "ERROR",
      payload: { error: { code: 5000, detail: "x" } },
    });
    expect(() => checkReply(request, other)).toThrow(DeviceError);
  });

  it("reads the device's error text from whichever field it sent", () => {
    const from = `/appliance/${uuid}/publish`;
    const refusal = (error: Record<string, unknown>) =>
      buildReply(request, { key: "k", from, method: "ERROR", payload: { error } });
    const message = (error: Record<string, unknown>) => {
      try {
        checkReply(request, refusal(error));
      } catch (caught) {
        return (caught as Error).message;
      }
      throw new Error("expected a DeviceError");
    };
    expect(message({ code: 5000, detail: "channel busy" })).toMatch(/: channel busy \(error 5000\)$/);
    expect(message({ code: -1, message: "KeyError('toggle')" })).toMatch(
      /: KeyError\('toggle'\) \(error -1\)$/,
    );
    expect(message({ code: 5000 })).toMatch(/: no reason given \(error 5000\)$/);
    expect(message({})).toMatch(/\(error unknown\)$/);
  });

  it("requestOver signs with the key, names the transport's reply address, and checks the answer", async () => {
    const from = `/appliance/${uuid}/publish`;
    const sent: { message: MerossMessage; options: string }[] = [];
    const device = (answer: (message: MerossMessage) => MerossMessage): DeviceTransport<string> => ({
      replyAddress: "/app/0-test/subscribe",
      async exchange(message, options) {
        sent.push({ message, options });
        return answer(message);
      },
    });
    const content = { method: "GET", namespace: "Appliance.System.All", payload: {} } as const;
    const honest = device((message) => buildReply(message, { key: "k", from }));

    const reply = await requestOver(honest, content, { key: "k", verifyReply: true }, "as given");
    expect(reply.header).toMatchObject({ method: "GETACK", namespace: "Appliance.System.All" });
    expect(sent[0]?.options).toBe("as given");
    expect(sent[0]?.message.header).toMatchObject({ method: "GET", from: "/app/0-test/subscribe" });
    expect(isSignatureValid(sent[0]?.message.header ?? request.header, "k")).toBe(true);
    expect(reply.header.messageId).toBe(sent[0]?.message.header.messageId);

    const forger = device((message) => buildReply(message, { key: "other", from }));
    await expect(requestOver(forger, content, { key: "k", verifyReply: true }, "")).rejects.toThrow(
      /not signed with our key/,
    );
    await expect(requestOver(forger, content, { key: "k" }, "")).resolves.toBeDefined();
    const refuser = device((message) =>
      buildReply(message, { key: "k", from, method: "ERROR", payload: { error: { code: 5001 } } }),
    );
    await expect(requestOver(refuser, content, { key: "k" }, "")).rejects.toThrow(WrongKeyError);
    const stranger = device((message) =>
      buildReply(
        { ...message, header: { ...message.header, messageId: "0".repeat(32) } },
        { key: "k", from },
      ),
    );
    await expect(requestOver(stranger, content, { key: "k" }, "")).rejects.toThrow(/another messageId/);
  });

  it("refuses text that is not a Meross message", () => {
    expect(() => parseMessage("nope")).toThrow(/not JSON/);
    expect(() => parseMessage({ header: {}, payload: {} })).toThrow(ProtocolError);
  });

  it("finds the uuid in device topics only", () => {
    expect(uuidFromDeviceTopic(deviceSubscribeTopic(uuid))).toBe(uuid);
    expect(uuidFromDeviceTopic(`/app/0-x/subscribe`)).toBeUndefined();
  });

  it("tells which way a device topic goes, even with a malformed uuid", () => {
    expect(deviceTopicDirection(devicePublishTopic(uuid))).toBe("from-device");
    expect(deviceTopicDirection(deviceSubscribeTopic(uuid))).toBe("to-device");
    expect(deviceTopicDirection("/appliance/not-a-uuid/publish")).toBe("from-device");
    expect(deviceTopicDirection(controllerReplyTopic("0", "x"))).toBeUndefined();
  });
});
