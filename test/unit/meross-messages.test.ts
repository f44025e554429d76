import { describe, expect, it } from "vitest";
import { brokerPairSchema } from "../../lib/meross/broker-url.ts";
import { ProtocolError } from "../../lib/meross/envelope.ts";
import { ecdhKeyPair } from "../../lib/meross/lan-crypto.ts";
import {
  bindPayload,
  clockPayload,
  configKeyRequest,
  configWifiRequest,
  configWifiXRequest,
  consumptionConfigPayload,
  ecdheReplyPayload,
  ecdheRequest,
  Namespace,
  PLAINTEXT_NAMESPACES,
  parseAbilities,
  parseBind,
  parseClock,
  parseConfigKey,
  parseConsumptionConfig,
  parseEcdheReply,
  parseEcdheRequest,
  parseSystemAll,
  parseSystemTime,
  parseToggleX,
  parseWifiList,
  parseWifiRequest,
  systemAbilityRequest,
  systemAllRequest,
  systemTimeRequest,
  toggleXGetRequest,
  toggleXPayload,
  toggleXSetRequest,
  WifiCipher,
  WifiEncryption,
  wifiListPayload,
  wifiListRequest,
} from "../../lib/meross/messages/index.ts";
import { timeRules } from "../../lib/meross/time-rules.ts";
import { encryptWifiPassword } from "../../lib/meross/wifi.ts";
import { vectors } from "../support/vectors.ts";

const [wifix] = vectors.wifixPassword;
if (!wifix) throw new Error("the shared vectors file has no wifixPassword entry");

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

function systemAllReply(firmware: Record<string, unknown>) {
  return {
    all: {
      system: {
        hardware: {
          type: "mss110",
          subType: "un",
          version: "7.0.0",
          chipType: "rtl8710cf",
          uuid: "2307065833780651200148e1e9cf4534",
          macAddress: "48:e1:e9:cf:45:34",
        },
        firmware: { version: "7.3.37", innerIp: "10.10.10.1", ...firmware },
        time: { timestamp: 448, timezone: "", timeRule: [] },
      },
      digest: { togglex: [{ channel: 0, onoff: 0, lmTime: 0 }] },
    },
  };
}

describe("namespaces", () => {
  it("spells the namespaces as the devices do", () => {
    expect(Namespace.SystemAll).toBe("Appliance.System.All");
    expect(Namespace.ConfigWifiX).toBe("Appliance.Config.WifiX");
    expect(Namespace.EncryptEcdhe).toBe("Appliance.Encrypt.ECDHE");
    expect(Namespace.ControlConsumptionConfig).toBe("Appliance.Control.ConsumptionConfig");
  });

  it("keeps exactly BS2's never-encrypted namespaces in plaintext", () => {
    expect([...PLAINTEXT_NAMESPACES].sort()).toEqual(
      [
        "Appliance.Encrypt.ECDHE",
        "Appliance.Encrypt.Suite",
        "Appliance.System.Ability",
        "Appliance.System.All",
        "Appliance.System.Firmware",
      ].sort(),
    );
    expect(PLAINTEXT_NAMESPACES.has(Namespace.ConfigKey)).toBe(false);
  });
});

describe("Appliance.System.All", () => {
  it("is a GET with an empty payload", () => {
    expect(systemAllRequest()).toEqual({ method: "GET", namespace: "Appliance.System.All", payload: {} });
  });

  it("summarises newer firmware (numbers as numbers)", () => {
    const reply = systemAllReply({ userId: 1234, server: "192.168.1.2", port: 8883 });
    expect(parseSystemAll(reply)).toEqual({
      type: "mss110",
      subType: "un",
      chipType: "rtl8710cf",
      hardwareVersion: "7.0.0",
      firmwareVersion: "7.3.37",
      uuid: "2307065833780651200148e1e9cf4534",
      macAddress: "48:e1:e9:cf:45:34",
      innerIp: "10.10.10.1",
      userId: "1234",
      server: "192.168.1.2",
      port: 8883,
      raw: reply.all,
    });
  });

  it("accepts legacy firmware's numbers written as strings", () => {
    const summary = parseSystemAll(systemAllReply({ userId: "0", server: "10.0.0.7", port: "8883" }));
    expect(summary.userId).toBe("0");
    expect(summary.port).toBe(8883);
  });

  it("leaves out the broker of a factory-fresh device", () => {
    const summary = parseSystemAll(systemAllReply({ server: "", port: 0 }));
    expect(summary).not.toHaveProperty("server");
    expect(summary).not.toHaveProperty("port");
    expect(summary.userId).toBe("");
  });

  it("keeps the device's own spelling of the MAC and uuid", () => {
    const reply = systemAllReply({});
    reply.all.system.hardware.macAddress = "48:E1:E9:CF:45:34";
    expect(parseSystemAll(reply).macAddress).toBe("48:E1:E9:CF:45:34");
  });

  it("names the missing field in a ProtocolError", () => {
    const reply = systemAllReply({});
    reply.all.system.hardware.uuid = "short";
    expect(() => parseSystemAll(reply)).toThrow(ProtocolError);
    expect(() => parseSystemAll(reply)).toThrow(/payload\.all\.system\.hardware\.uuid/);
    expect(() => parseSystemAll({})).toThrow(/Appliance\.System\.All payload: payload\.all/);
  });
});

describe("Appliance.System.Ability", () => {
  it("is a GET and returns the namespace map", () => {
    expect(systemAbilityRequest()).toEqual({
      method: "GET",
      namespace: "Appliance.System.Ability",
      payload: {},
    });
    const ability = { "Appliance.Config.WifiX": {}, "Appliance.Control.Multiple": { maxCmdNum: 5 } };
    expect(parseAbilities({ ability })).toEqual(ability);
  });

  it("rejects a reply without the map", () => {
    expect(() => parseAbilities({ abilities: {} })).toThrow(ProtocolError);
  });
});

describe("Appliance.Config.Key", () => {
  const brokers = brokerPairSchema.parse(["mqtts://192.168.1.2:8883"]);

  it("sends both gateways, strings for user and key, numbers for ports, redirect 1", () => {
    expect(configKeyRequest({ userId: 0, key: "meross", brokers })).toEqual({
      method: "SET",
      namespace: "Appliance.Config.Key",
      payload: {
        key: {
          userId: "0",
          key: "meross",
          gateway: {
            host: "192.168.1.2",
            port: 8883,
            secondHost: "192.168.1.2",
            secondPort: 8883,
            redirect: 1,
          },
        },
      },
    });
  });

  it("puts a second broker in second*", () => {
    const pair = brokerPairSchema.parse(["broker.home.arpa:8883", "10.0.0.2:8884"]);
    const { gateway } = parseConfigKey(configKeyRequest({ userId: "42", key: "k", brokers: pair }).payload);
    expect(gateway).toMatchObject({
      host: "broker.home.arpa",
      port: 8883,
      secondHost: "10.0.0.2",
      secondPort: 8884,
    });
  });

  it("refuses a key with spaces without echoing it", () => {
    const attempt = () => configKeyRequest({ userId: 0, key: "my secret key", brokers });
    expect(attempt).toThrow(/device key/);
    expect(attempt).not.toThrow(/my secret key/);
  });

  it("names a bad userId or broker", () => {
    expect(() => configKeyRequest({ userId: "abc", key: "k", brokers })).toThrow(/userId "abc"/);
    const bad = [{ host: "bad host", port: 8883 }, brokers[1]] as typeof brokers;
    expect(() => configKeyRequest({ userId: 0, key: "k", brokers: bad })).toThrow(
      /first broker host "bad host"/,
    );
  });

  it("reads BS1's string ports on the device side", () => {
    const key = parseConfigKey({
      key: {
        userId: "0",
        key: "",
        gateway: { host: "h", port: "8883", secondHost: "h", secondPort: "8883" },
      },
    });
    expect(key).toMatchObject({ userId: "0", key: "", gateway: { port: 8883, secondPort: 8883 } });
  });
});

describe("Appliance.Config.Wifi and WifiX", () => {
  const network = {
    ssid: "Home Wi-Fi ☕",
    password: wifix.password,
    bssid: "2c:6e:a4:55:c6:47",
    channel: 3,
    encryption: WifiEncryption.WPA2PSK,
    cipher: WifiCipher.AES,
  };

  it("Config.Wifi sends SSID and password base64-encoded", () => {
    expect(configWifiRequest(network)).toEqual({
      method: "SET",
      namespace: "Appliance.Config.Wifi",
      payload: {
        wifi: {
          ssid: b64(network.ssid),
          password: b64(network.password),
          bssid: "2c:6e:a4:55:c6:47",
          channel: 3,
          encryption: 6,
          cipher: 3,
        },
      },
    });
  });

  it("leaves out what the caller did not give", () => {
    const { payload } = configWifiRequest({ ssid: "net", password: "12345678" });
    expect(payload).toEqual({ wifi: { ssid: b64("net"), password: b64("12345678") } });
  });

  it("Config.WifiX sends the password AES-encrypted for the device (shared vector)", () => {
    const request = configWifiXRequest(network, wifix);
    expect(request.namespace).toBe("Appliance.Config.WifiX");
    expect(request.payload).toMatchObject({ wifi: { ssid: b64(network.ssid), password: wifix.encrypted } });
  });

  it.each([
    ["Config.Wifi", configWifiRequest(network)],
    ["Config.WifiX", configWifiXRequest(network, wifix)],
  ])("%s round-trips through the device-side parser", (_, request) => {
    expect(parseWifiRequest(request.namespace, request.payload, wifix)).toEqual(network);
  });

  it("WifiX of a 16-byte password still decrypts to it", () => {
    const sixteen = { ssid: "net", password: "0123456789abcdef" };
    const request = configWifiXRequest(sixteen, wifix);
    expect(request.payload).toMatchObject({
      wifi: { password: encryptWifiPassword(sixteen.password, wifix) },
    });
    expect(parseWifiRequest(request.namespace, request.payload, wifix)).toEqual(sixteen);
  });

  it("sends an open network with an empty password: base64 of nothing, or the encryption of nothing", () => {
    const open = { ssid: "Cafe Guest", password: "", encryption: 0, cipher: 0 };
    expect(configWifiRequest(open).payload).toEqual({
      wifi: { ssid: Buffer.from("Cafe Guest").toString("base64"), encryption: 0, cipher: 0, password: "" },
    });
    const wifixOpen = configWifiXRequest(open, wifix);
    expect(parseWifiRequest(Namespace.ConfigWifiX, wifixOpen.payload, wifix)).toEqual(open);
    expect(() => configWifiRequest({ ...open, encryption: 6 })).toThrow(/empty but encryption 6/);
    expect(() => configWifiRequest({ ...open, password: "12345678" })).toThrow(/open network/);
  });

  it("names a network by BSSID alone, as BS2 does, and needs one of SSID or BSSID", () => {
    const request = configWifiRequest({ bssid: "2c:6e:a4:55:c6:47", password: "12345678" });
    expect(request.payload).toEqual({
      wifi: { bssid: "2c:6e:a4:55:c6:47", password: Buffer.from("12345678").toString("base64") },
    });
    expect(parseWifiRequest(Namespace.ConfigWifi, request.payload, wifix)).toEqual({
      bssid: "2c:6e:a4:55:c6:47",
      password: "12345678",
    });
    expect(() => configWifiRequest({ password: "12345678" })).toThrow(/needs an ssid or a bssid/);
  });

  it("refuses a long SSID, a short password (not echoed) and a 5 GHz channel", () => {
    expect(() => configWifiRequest({ ssid: "x".repeat(33), password: "12345678" })).toThrow(/wifi ssid/);
    const short = () => configWifiXRequest({ ssid: "net", password: "hunter2" }, wifix);
    expect(short).toThrow(/wifi password must be 8 to 63 printable ASCII characters/);
    expect(short).not.toThrow(/hunter2/);
    expect(() => configWifiRequest({ ssid: "net", password: "12345678", channel: 36 })).toThrow(
      /wifi channel 36/,
    );
    expect(() => configWifiRequest({ ssid: "net", password: "12345678", bssid: "nope" })).toThrow(/bssid/);
  });
});

describe("Appliance.Config.WifiList", () => {
  it("is a GET with BS2's trace payload", () => {
    expect(wifiListRequest()).toEqual({
      method: "GET",
      namespace: "Appliance.Config.WifiList",
      payload: { trace: {} },
    });
  });

  it("decodes base64 SSIDs and accepts numbers written as strings", () => {
    const payload = {
      wifiList: [
        { ssid: b64("Home"), bssid: "2c:6e:a4:55:c6:47", signal: 100, channel: 3, encryption: 6, cipher: 3 },
        { ssid: b64("Café"), bssid: "2c-6e-a4-55-c6-48", signal: "40", channel: "11" },
      ],
    };
    expect(parseWifiList(payload)).toEqual([
      { ssid: "Home", bssid: "2c:6e:a4:55:c6:47", signal: 100, channel: 3, encryption: 6, cipher: 3 },
      { ssid: "Café", bssid: "2c-6e-a4-55-c6-48", signal: 40, channel: 11 },
    ]);
  });

  it("round-trips the device-side payload", () => {
    const list = [
      { ssid: "net ☕", bssid: "aa:bb:cc:dd:ee:ff", signal: 80, channel: 6, encryption: 6, cipher: 3 },
    ];
    expect(parseWifiList(wifiListPayload(list))).toEqual(list);
  });

  it("rejects an SSID that is not base64", () => {
    expect(() => parseWifiList({ wifiList: [{ ssid: "not base64!", bssid: "x" }] })).toThrow(ProtocolError);
  });
});

describe("Appliance.Encrypt.ECDHE", () => {
  it("sends step 1 with our public key and reads the device's", () => {
    const ours = ecdhKeyPair();
    const request = ecdheRequest(ours.publicKey);
    expect(request).toEqual({
      method: "SET",
      namespace: "Appliance.Encrypt.ECDHE",
      payload: { ecdhe: { step: 1, pubkey: ours.publicKey.toString("base64") } },
    });
    expect(parseEcdheRequest(request.payload)).toEqual(ours.publicKey);

    const device = ecdhKeyPair();
    expect(parseEcdheReply(ecdheReplyPayload(device.publicKey))).toEqual(device.publicKey);
  });

  it("rejects a reply without a public key", () => {
    expect(() => parseEcdheReply({ ecdhe: {} })).toThrow(/payload\.ecdhe\.pubkey/);
  });
});

describe("Appliance.System.Time", () => {
  const midsummer2025 = new Date(Date.UTC(2025, 5, 21, 12));
  const jan1 = Date.UTC(2025, 0, 1) / 1000;

  it("gives Europe/Dublin its 2025 rule and both DST transitions", () => {
    expect(timeRules("Europe/Dublin", midsummer2025).slice(0, 3)).toEqual([
      [jan1, 0, 0],
      [Date.UTC(2025, 2, 30, 1) / 1000, 3600, 1],
      [Date.UTC(2025, 9, 26, 1) / 1000, 0, 0],
    ]);
  });

  // A plug stays connected for months; with only this year's rules it would miss next year's DST.
  it("goes on past the end of the year, to 20 rules as the Meross app sends (§4.1)", () => {
    const rules = timeRules("Europe/Dublin", midsummer2025);
    expect(rules).toHaveLength(20);
    expect(rules[3]).toEqual([Date.UTC(2026, 2, 29, 1) / 1000, 3600, 1]);
    expect(rules[4]).toEqual([Date.UTC(2026, 9, 25, 1) / 1000, 0, 0]);
    expect(rules.at(-1)).toEqual([Date.UTC(2034, 2, 26, 1) / 1000, 3600, 1]);
    const starts = rules.map(([epoch]) => epoch);
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
  });

  it("marks southern-hemisphere summer (January) as DST", () => {
    expect(timeRules("Australia/Sydney", midsummer2025).slice(0, 3)).toEqual([
      [jan1, 39600, 1],
      [Date.UTC(2025, 3, 5, 16) / 1000, 36000, 0],
      [Date.UTC(2025, 9, 4, 16) / 1000, 39600, 1],
    ]);
  });

  it("handles negative half-hour offsets", () => {
    const rules = timeRules("America/St_Johns", midsummer2025);
    expect(rules[0]).toEqual([jan1, -12600, 0]);
    expect(rules[1]).toEqual([Date.UTC(2025, 2, 9, 5, 30) / 1000, -9000, 1]);
  });

  it.each([
    ["Asia/Kolkata", 19800],
    ["UTC", 0],
  ])("gives %s, which has no DST, a single rule", (zone, offset) => {
    expect(timeRules(zone, midsummer2025)).toEqual([[jan1, offset, 0]]);
  });

  it("uses the year of `now`", () => {
    const rules = timeRules("Europe/Dublin", new Date(Date.UTC(2026, 0, 15)));
    expect(rules[0]?.[0]).toBe(Date.UTC(2026, 0, 1) / 1000);
    expect(rules[1]).toEqual([Date.UTC(2026, 2, 29, 1) / 1000, 3600, 1]);
  });

  it("gives the same rules for any day of a year, each call its own copy", () => {
    const first = timeRules("Europe/Dublin", midsummer2025);
    first[0]?.splice(0, 3, 0, 0, 0);
    first.pop();
    const again = timeRules("Europe/Dublin", new Date(Date.UTC(2025, 11, 31, 23, 59)));
    expect(again[0]).toEqual([Date.UTC(2025, 0, 1) / 1000, 0, 0]);
    expect(again).toHaveLength(20);
    expect(timeRules("Europe/Dublin", new Date(Date.UTC(2026, 0, 1)))[0]?.[0]).toBe(
      Date.UTC(2026, 0, 1) / 1000,
    );
  });

  it("refuses a zone that is not IANA", () => {
    expect(() => timeRules("Mars/Olympus_Mons")).toThrow(/"Mars\/Olympus_Mons" is not an IANA zone/);
  });

  it("sends timezone, timestamp in seconds and the rules", () => {
    const request = systemTimeRequest("Europe/Dublin", midsummer2025);
    expect(request).toEqual({
      method: "SET",
      namespace: "Appliance.System.Time",
      payload: {
        time: {
          timezone: "Europe/Dublin",
          timestamp: midsummer2025.getTime() / 1000,
          timeRule: timeRules("Europe/Dublin", midsummer2025),
        },
      },
    });
    expect(parseSystemTime(request.payload)).toEqual((request.payload as { time: unknown }).time);
  });
});

describe("Appliance.Control.ToggleX", () => {
  it("builds SET and GET for a channel", () => {
    expect(toggleXSetRequest(true)).toEqual({
      method: "SET",
      namespace: "Appliance.Control.ToggleX",
      payload: { togglex: { channel: 0, onoff: 1 } },
    });
    expect(toggleXSetRequest(false, 2).payload).toEqual({ togglex: { channel: 2, onoff: 0 } });
    expect(toggleXGetRequest(1)).toEqual({
      method: "GET",
      namespace: "Appliance.Control.ToggleX",
      payload: { togglex: { channel: 1 } },
    });
    expect(() => toggleXSetRequest(true, -1)).toThrow(/channel -1/);
  });

  it("reads a single object (SET) and a channel list (PUSH) alike", () => {
    expect(parseToggleX({ togglex: { channel: 0, onoff: 1 } })).toEqual([{ channel: 0, on: true }]);
    expect(parseToggleX({ togglex: [{ channel: 0, onoff: 0, lmTime: 1700000000 }] })).toEqual([
      { channel: 0, on: false, lmTime: 1700000000 },
    ]);
  });

  it("round-trips the device-side PUSH payload", () => {
    const states = [{ channel: 0, on: true, lmTime: 5 }];
    expect(toggleXPayload(states)).toEqual({ togglex: [{ channel: 0, onoff: 1, lmTime: 5 }] });
    expect(parseToggleX(toggleXPayload(states))).toEqual(states);
  });

  it("rejects a payload without onoff", () => {
    expect(() => parseToggleX({ togglex: { channel: 0 } })).toThrow(/payload\.togglex/);
  });
});

describe("session messages", () => {
  it("Clock carries a timestamp", () => {
    expect(clockPayload(4)).toEqual({ clock: { timestamp: 4 } });
    expect(parseClock(clockPayload(1_700_000_000))).toEqual({ timestamp: 1_700_000_000 });
    expect(() => parseClock({ clock: {} })).toThrow(ProtocolError);
  });

  it("Bind carries the device's identity and clock", () => {
    const bind = {
      bindTime: 1_700_000_000,
      time: { timestamp: 1_700_000_000, timezone: "", timeRule: [] },
      hardware: { type: "mss110", uuid: "2307065833780651200148e1e9cf4534" },
      firmware: { version: "7.3.37", userId: 0 },
    };
    expect(parseBind(bindPayload(bind))).toEqual(bind);
    expect(() => parseBind({})).toThrow(/Appliance\.Control\.Bind/);
  });

  it("ConsumptionConfig carries the metering ratios", () => {
    const config = { voltageRatio: 188, electricityRatio: 102, maxElectricityCurrent: 11000 };
    expect(parseConsumptionConfig(consumptionConfigPayload(config))).toEqual(config);
    expect(() => parseConsumptionConfig({ config: { voltageRatio: 188 } })).toThrow(/electricityRatio/);
  });
});
