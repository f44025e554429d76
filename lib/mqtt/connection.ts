import { randomBytes } from "node:crypto";
import mqtt, { ErrorWithReasonCode, ErrorWithSubackPacket, type IClientOptions, type MqttClient } from "mqtt";
import type { ExitCategory } from "../exit-category.ts";
import { brokerAddressSchema, redactBrokerUrl } from "../meross/broker-url.ts";

/**
 * How the kit's own clients (session agent, provision's online wait, control, monitor) reach the
 * broker. Unlike devices, they honour the scheme: `mqtt://` is plain (a local test listener),
 * anything else is TLS checked against the stack's CA. A client that lives on after a lost
 * connection adds the one reconnect policy, reconnectWithBackoff (./reconnect.ts).
 */
export interface BrokerClientSettings {
  brokerUrl: string;
  /** PEM of the CA that signed the broker's certificate; without it Node's default roots apply. */
  ca?: string;
  username?: string;
  password?: string;
}

/** `mqtt://` is plain; `mqtts://` and a bare `host:port` are TLS. */
export function usesPlainMqtt(brokerUrl: string): boolean {
  return /^mqtt:\/\//i.test(brokerUrl.trim());
}

export class BrokerConnectionError extends Error {
  readonly exitCategory: ExitCategory = "unreachable";
  /** ECLOSED: the broker hung up after the TLS handshake without answering the login (CONNACK). */
  readonly code: "ECONNREFUSED_AUTH" | "ECONNECT" | "ECLOSED" | "ETIMEDOUT";
  constructor(code: BrokerConnectionError["code"], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BrokerConnectionError";
    this.code = code;
  }
}

export function brokerClientOptions(
  settings: BrokerClientSettings,
  extra: { clientId: string; connectTimeoutMs?: number },
): IClientOptions {
  const parsed = brokerAddressSchema.safeParse(settings.brokerUrl);
  if (!parsed.success) {
    throw new Error(
      `broker URL ${JSON.stringify(redactBrokerUrl(settings.brokerUrl))} ${parsed.error.issues[0]?.message}; ` +
        "write it as mqtts://host:port",
    );
  }
  const plain = usesPlainMqtt(settings.brokerUrl);
  return {
    protocol: plain ? "mqtt" : "mqtts",
    host: parsed.data.host,
    port: parsed.data.port,
    ...(plain ? {} : { ca: settings.ca, rejectUnauthorized: true }),
    ...(settings.username === undefined ? {} : { username: settings.username }),
    ...(settings.password === undefined ? {} : { password: settings.password }),
    clientId: extra.clientId,
    clean: true,
    protocolVersion: 4,
    // Off until a long-lived client turns on the one policy, reconnectWithBackoff.
    reconnectPeriod: 0,
    connectTimeout: extra.connectTimeoutMs ?? 10_000,
    resubscribe: false,
  };
}

/** A client id that names the tool and cannot collide with a second copy of it. */
export function uniqueClientId(tool: string): string {
  return `${tool}-${randomBytes(4).toString("hex")}`;
}

/** CONNACK codes that refuse the login: MQTT 3.1.1 §3.2.2.3 and their MQTT 5 reason codes (§3.2.2.2.). */
const LOGIN_REFUSED: ReadonlySet<number> = new Set([
  4, // bad user name or password
  5, // not authorized
  0x86, // MQTT 5: bad user name or password
  0x87, // MQTT 5: not authorized
]);

/** MQTT.js reports a refused CONNACK as an ErrorWithReasonCode carrying the broker's code. */
function isLoginRefusal(error: unknown): boolean {
  return error instanceof ErrorWithReasonCode && LOGIN_REFUSED.has(error.code);
}

/** One connection attempt that settles: connected, refused, or timed out, never retrying on its own. */
export function connectOnce(
  settings: BrokerClientSettings,
  options: { clientId: string; timeoutMs?: number },
): Promise<MqttClient> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const clientOptions = brokerClientOptions(settings, {
    clientId: options.clientId,
    connectTimeoutMs: timeoutMs,
  });
  const where = `${clientOptions.protocol}://${clientOptions.host}:${clientOptions.port}`;
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(clientOptions);
    // Only our own listeners come off: MQTT.js's own (its reconnect on "close") must stay.
    const settle = () => {
      clearTimeout(timer);
      client.off("connect", onConnect);
      client.off("error", onError);
      client.off("close", onClose);
      client.on("error", () => {});
    };
    const fail = (error: BrokerConnectionError) => {
      settle();
      client.end(true);
      reject(error);
    };
    const timer = setTimeout(
      () =>
        fail(
          new BrokerConnectionError("ETIMEDOUT", `no answer from the broker at ${where} in ${timeoutMs} ms`),
        ),
      timeoutMs,
    );
    const onConnect = () => {
      settle();
      resolve(client);
    };
    const onError = (error: Error) => {
      if (isLoginRefusal(error)) {
        fail(
          new BrokerConnectionError(
            "ECONNREFUSED_AUTH",
            `the broker at ${where} refused the credentials${settings.username ? ` of ${settings.username}` : ""}: ` +
              `${error.message}. Check --username/--password.`,
            { cause: error },
          ),
        );
      } else {
        fail(
          new BrokerConnectionError(
            "ECONNECT",
            `cannot connect to the broker at ${where}: ${error.message}. ` +
              "Check the URL, that the broker runs, and that --ca is the stack's CA.",
            { cause: error },
          ),
        );
      }
    };
    const onClose = () =>
      fail(
        new BrokerConnectionError(
          "ECLOSED",
          `the broker at ${where} closed the connection before accepting it`,
        ),
      );
    client.once("connect", onConnect);
    client.once("error", onError);
    client.once("close", onClose);
  });
}

const SUBACK_FAILURE = 0x80;

/**
 * Subscribes to one topic and says whether the broker allowed it. MQTT.js reports a refusal
 * (SUBACK 0x80, e.g. an ACL denial) as an error; here it is an answer, and only real failures throw.
 */
export async function trySubscribe(client: MqttClient, topic: string, qos: 0 | 1): Promise<boolean> {
  try {
    const granted = await client.subscribeAsync(topic, { qos });
    return granted.every((grant) => (grant.qos & SUBACK_FAILURE) === 0);
  } catch (error) {
    // MQTT.js 5 rejects a refusal with an ErrorWithSubackPacket carrying the SUBACK's return codes.
    if (
      error instanceof ErrorWithSubackPacket &&
      error.packet.granted.some((code) => typeof code === "number" && (code & SUBACK_FAILURE) !== 0)
    ) {
      return false;
    }
    throw error;
  }
}
