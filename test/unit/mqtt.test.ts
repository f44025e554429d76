import { EventEmitter } from "node:events";
import type { IClientOptions, MqttClient } from "mqtt";
import { describe, expect, it } from "vitest";
import { type ReconnectEvent, reconnectWithBackoff } from "../../lib/mqtt/reconnect.ts";

/** What reconnectWithBackoff reads and writes of an MQTT.js client; MQTT.js itself does the dialling. */
class FakeClient extends EventEmitter {
  options: IClientOptions = { reconnectPeriod: 0 };
  connected = false;
  disconnecting = false;
  connect() {
    this.connected = true;
    this.emit("connect");
  }
  close() {
    this.connected = false;
    this.emit("close");
  }
}

const within = (ceiling: number) => expect.toSatisfy((ms: number) => ms >= ceiling / 2 && ms <= ceiling);

describe("reconnectWithBackoff", () => {
  it("sets MQTT.js's next reconnect period: doubling per failed attempt, jittered, capped, reset once connected", () => {
    const client = new FakeClient();
    const events: ReconnectEvent[] = [];
    reconnectWithBackoff(client as unknown as MqttClient, {
      backoff: { initialMs: 1_000, maxMs: 4_000 },
      onEvent: (event) => events.push(event),
    });
    expect(client.options.reconnectOnConnackError).toBe(true);
    expect(client.options.reconnectPeriod).toEqual(within(1_000));

    client.connect();
    client.close();
    expect(events).toEqual([
      { event: "lost" },
      { event: "retrying", attempt: 1, inMs: client.options.reconnectPeriod },
    ]);
    for (const ceiling of [2_000, 4_000, 4_000]) {
      client.emit("reconnect");
      expect(client.options.reconnectPeriod).toEqual(within(ceiling));
      client.close();
    }
    expect(events.map((event) => (event.event === "retrying" ? event.attempt : event.event))).toEqual([
      "lost",
      1,
      2,
      3,
      4,
    ]);

    client.emit("reconnect");
    client.connect();
    expect(events.at(-1)).toEqual({ event: "reconnected" });
    expect(client.options.reconnectPeriod).toEqual(within(1_000));
  });

  it("is quiet when the client is ended on purpose", () => {
    const client = new FakeClient();
    const events: ReconnectEvent[] = [];
    reconnectWithBackoff(client as unknown as MqttClient, { onEvent: (event) => events.push(event) });
    client.connect();
    client.disconnecting = true;
    client.close();
    expect(events).toEqual([]);
  });
});
