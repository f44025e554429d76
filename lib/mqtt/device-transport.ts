import type { MqttClient } from "mqtt";
import type { ExitCategory } from "../exit-category.ts";
import { type MerossMessage, parseMessage } from "../meross/envelope.ts";
import type { DeviceTransport } from "../meross/request.ts";
import { deviceSubscribeTopic } from "../meross/topics.ts";
import { BrokerConnectionError } from "./connection.ts";

/** The device did not answer a request in time. */
export class ReplyTimeoutError extends Error {
  readonly exitCategory: ExitCategory = "timeout";
  override name = "ReplyTimeoutError";
}

export interface MqttExchangeOptions {
  /** The device asked: the request goes to its subscribe topic. */
  uuid: string;
  timeoutMs: number;
  /** 1 (the default) when the broker must take the request; 0 for a poll that is sent again anyway. */
  qos?: 0 | 1;
}

interface Pending {
  resolve(reply: MerossMessage): void;
  reject(error: Error): void;
}

/**
 * Requests to devices over the broker, as the Meross app sends them on the cloud: each one goes to
 * the device's subscribe topic with this client's reply topic in `from`, and the answer published
 * there is matched by messageId. The caller subscribes to `replyAddress` (before sending, so no
 * answer is missed); requests still waiting when the connection closes fail.
 */
export class MqttDeviceTransport implements DeviceTransport<MqttExchangeOptions> {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly client: MqttClient,
    readonly replyAddress: string,
  ) {
    client.on("message", (topic, payload) => {
      if (topic !== replyAddress) return;
      let reply: MerossMessage;
      try {
        reply = parseMessage(payload);
      } catch {
        return;
      }
      const waiting = this.pending.get(reply.header.messageId);
      if (waiting) {
        this.pending.delete(reply.header.messageId);
        waiting.resolve(reply);
      }
    });
    client.on("close", () =>
      this.abandon(
        new BrokerConnectionError("ECONNECT", "the broker closed the connection before the reply came"),
      ),
    );
  }

  exchange(
    request: MerossMessage,
    { uuid, timeoutMs, qos = 1 }: MqttExchangeOptions,
  ): Promise<MerossMessage> {
    const { messageId, method, namespace } = request.header;
    let timer: NodeJS.Timeout | undefined;
    return new Promise<MerossMessage>((resolve, reject) => {
      this.pending.set(messageId, { resolve, reject });
      timer = setTimeout(() => {
        this.pending.delete(messageId);
        reject(
          new ReplyTimeoutError(
            `no reply to ${method} ${namespace} from ${uuid} within ${timeoutMs} ms: ` +
              "is the device online? (watch it with npx zx scripts/monitor.mjs)",
          ),
        );
      }, timeoutMs);
      this.client.publish(deviceSubscribeTopic(uuid), JSON.stringify(request), { qos }, (error) => {
        if (!error) return;
        this.pending.delete(messageId);
        reject(new BrokerConnectionError("ECONNECT", `could not publish to the broker: ${error.message}`));
      });
    }).finally(() => clearTimeout(timer));
  }

  /** Fails every request still waiting for its answer. */
  abandon(error: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }
}
