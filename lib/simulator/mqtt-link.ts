import { randomInt } from "node:crypto";
import type { ConnectionOptions } from "node:tls";
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import type { BrokerAddress } from "../meross/broker-url.ts";
import type { MqttCredentials } from "../meross/credentials.ts";
import { deviceSubscribeTopic } from "../meross/topics.ts";
import type { Backoff } from "../mqtt/reconnect.ts";

export interface MqttLinkOptions {
  uuid: string;
  gateways: readonly [BrokerAddress, BrokerAddress];
  credentials: MqttCredentials;
  /** PEM the device trusts. Without it the device accepts any certificate, as real firmware does (protocol §5.3). */
  ca?: string;
  keepaliveSeconds: number;
  connectTimeoutMs: number;
  backoff: Backoff;
  /** Connected and subscribed: the device may start its session. */
  onOnline(broker: BrokerAddress, clientId: string): void;
  onMessage(topic: string, payload: Buffer): void;
  onOffline(broker: BrokerAddress, reason: string): void;
  onAttemptFailed(broker: BrokerAddress, reason: string): void;
  /** A dial starts (TCP + TLS + CONNECT); for timing it, e.g. in the storm benchmark. */
  onDialing?(broker: BrokerAddress): void;
  /** The broker accepted the login (CONNACK), before the subscription that makes the device online. */
  onConnected?(broker: BrokerAddress): void;
}

const CLIENT_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** `fmware:<uuid>_<16 random [A-Za-z0-9]>`, 56 characters: longer than MQTT 3.1 allows (protocol §5.1). */
export function firmwareClientId(uuid: string): string {
  let suffix = "";
  for (let i = 0; i < 16; i++) suffix += CLIENT_ID_ALPHABET[randomInt(CLIENT_ID_ALPHABET.length)];
  return `fmware:${uuid}_${suffix}`;
}

/**
 * The device's broker connection: MQTT 3.1 over TLS 1.2 to the first gateway, the second when that
 * fails, then both again after a doubling pause. Reconnection is ours, not MQTT.js's, because the
 * firmware alternates between two brokers.
 */
interface Connection {
  client: MqttClient;
  broker: BrokerAddress;
  online: boolean;
  /** Why it ended, for the offline/failed report. */
  reason: string;
}

export class MqttLink {
  private connection: Connection | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private readonly clientId: string;

  constructor(private readonly options: MqttLinkOptions) {
    this.clientId = firmwareClientId(options.uuid);
  }

  start(): void {
    this.dial();
  }

  publish(topic: string, message: unknown): void {
    if (this.connection?.online) this.connection.client.publish(topic, JSON.stringify(message), { qos: 0 });
  }

  /** Hang up as the firmware does: no DISCONNECT packet, just a closed socket; then dial again. */
  drop(reason: string): void {
    if (!this.connection) return;
    this.connection.reason = reason;
    this.connection.client.end(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const connection = this.connection;
    this.connection = undefined;
    if (connection) await connection.client.endAsync(true);
  }

  private get gateways(): BrokerAddress[] {
    const [first, second] = this.options.gateways;
    return first.host === second.host && first.port === second.port ? [first] : [first, second];
  }

  private dial(): void {
    if (this.stopped) return;
    const gateways = this.gateways;
    const broker = gateways[this.attempt % gateways.length] as BrokerAddress;
    const { credentials, ca } = this.options;
    const connectOptions: IClientOptions & Pick<ConnectionOptions, "minVersion" | "maxVersion"> = {
      host: broker.host,
      port: broker.port,
      protocol: "mqtts",
      protocolId: "MQIsdp",
      protocolVersion: 3,
      clientId: this.clientId,
      username: credentials.username,
      password: credentials.password,
      clean: true,
      keepalive: this.options.keepaliveSeconds,
      connectTimeout: this.options.connectTimeoutMs,
      reconnectPeriod: 0,
      minVersion: "TLSv1.2",
      maxVersion: "TLSv1.2",
      rejectUnauthorized: ca !== undefined,
      ...(ca === undefined ? {} : { ca }),
    };
    this.options.onDialing?.(broker);
    // MQTT.js hands the whole options object to tls.connect, TLS version pins included.
    const client = connect(connectOptions);
    const connection: Connection = { client, broker, online: false, reason: "connection closed" };
    this.connection = connection;
    client.on("error", (error) => {
      connection.reason = error.message;
    });
    client.on("connect", () => {
      this.options.onConnected?.(broker);
      client.subscribe(deviceSubscribeTopic(this.options.uuid), { qos: 1 }, (error) => {
        if (error) {
          this.drop(`subscribe refused: ${error.message}`);
          return;
        }
        connection.online = true;
        this.attempt = 0;
        this.options.onOnline(broker, this.clientId);
      });
    });
    client.on("message", (topic, payload) => this.options.onMessage(topic, payload));
    client.once("close", () => {
      if (this.connection !== connection) return;
      this.connection = undefined;
      if (connection.online) {
        this.options.onOffline(broker, connection.reason);
        this.schedule(this.options.backoff.initialMs);
        return;
      }
      this.options.onAttemptFailed(broker, connection.reason);
      this.attempt++;
      if (this.attempt % gateways.length !== 0) this.dial();
      else this.schedule(this.backoffDelay(this.attempt / gateways.length));
    });
  }

  private backoffDelay(round: number): number {
    const { initialMs, maxMs } = this.options.backoff;
    return Math.min(maxMs, initialMs * 2 ** (round - 1));
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => this.dial(), delayMs);
  }
}
