import type { SessionAnswerer } from "../config/stack.ts";
import { candidateDeviceKeys } from "../meross/device-key.ts";
import type { MerossMessage } from "../meross/envelope.ts";
import { withoutUndefined } from "../meross/fields.ts";
import { Namespace } from "../meross/messages/index.ts";
import { deviceSubscribeTopic, MEROSS_LAN_REPLY_TOPIC } from "../meross/topics.ts";
import type { AgentLogEntry } from "./log.ts";
import { answerSessionMessage, inspectDeviceMessage, timeZoneRequest } from "./session.ts";

/** A message to publish, and the log line to write once it has gone out. */
export interface Outgoing {
  topic: string;
  message: MerossMessage;
  logEntry: AgentLogEntry;
}

export interface Response {
  /** Written whatever happens to the replies. */
  log: AgentLogEntry[];
  replies: Outgoing[];
}

export interface SessionResponderOptions {
  /** The stack's shared device key. */
  key: string;
  /** The stack secret per-device keys come from; without it every device must hold `key`. */
  keySecret?: string;
  /** The stack secret before the last rotation. */
  previousKeySecret?: string;
  /** Per-device key generations above 1, by uuid (the stack config's, as of the last `pulumi up`). */
  keyGenerations?: Record<string, number>;
  /** Default "agent". With "meross_lan" it answers nothing and sends no zone: Home Assistant does. */
  sessionAnswers?: SessionAnswerer;
  timezone?: string;
  maxMessageBytes?: number;
}

/** A device sends Clock and Bind back to back on connect: one zone per connection is enough. */
const ZONE_RESEND_AFTER_BOOT_MS = 30_000;

/**
 * The agent's decisions, without MQTT: which device messages to drop, what to answer, and when a
 * device is due its time zone. The runner only feeds it messages and publishes what it returns.
 */
export class SessionResponder {
  private readonly seenDevices = new Set<string>();
  private merossLanSeen = false;
  /** uuid -> the last Time SET sent; one entry per device, so it cannot grow without bound. */
  private readonly zoneRequests = new Map<string, { messageId: string; sentAt: number }>();
  /** uuid -> the key its last valid message was signed with: tried first next time. */
  private readonly verifiedKeys = new Map<string, string>();

  constructor(private readonly options: SessionResponderOptions) {
    if (options.sessionAnswers === "meross_lan" && options.timezone !== undefined) {
      throw new RangeError("no timezone with sessionAnswers meross_lan: meross_lan owns the devices' zone");
    }
  }

  handle(topic: string, payload: Buffer, now: Date): Response {
    const { maxMessageBytes } = this.options;
    if (topic === MEROSS_LAN_REPLY_TOPIC) return this.merossLanReply();
    const inspection = inspectDeviceMessage(topic, payload, {
      keysFor: (uuid) => this.keysFor(uuid),
      ...(maxMessageBytes === undefined ? {} : { maxBytes: maxMessageBytes }),
    });
    if (!inspection.ok) {
      const { uuid, reason, detail } = inspection;
      return {
        log: [
          {
            level: "warn",
            event: "message-ignored",
            ...(uuid === undefined ? {} : { uuid }),
            reason,
            detail,
          },
        ],
        replies: [],
      };
    }
    const { uuid, message, key } = inspection;
    this.verifiedKeys.set(uuid, key);
    const log: AgentLogEntry[] = [];
    const replies: Outgoing[] = [];
    if (!this.seenDevices.has(uuid)) {
      this.seenDevices.add(uuid);
      log.push({ level: "info", event: "device-seen", uuid });
    }
    if (this.options.sessionAnswers === "meross_lan") return { log, replies };
    const answer = answerSessionMessage(uuid, message, { key, now });
    if (answer !== undefined) {
      replies.push({
        topic: answer.topic,
        message: answer.message,
        logEntry: { level: "info", event: answer.event, uuid, messageId: message.header.messageId },
      });
    }
    const zoneReply = this.zoneReply(uuid, message);
    if (zoneReply) log.push(zoneReply);
    const zone = this.zoneRequest(uuid, key, answer?.event === "bind-acknowledged", now);
    if (zone) replies.push(zone);
    return { log, replies };
  }

  /**
   * The device's last verified key first, then the shared key and its per-device keys. Lazy: a device
   * that still signs with the key it used last costs no HMAC derivation per message.
   */
  private *keysFor(uuid: string): Generator<string> {
    const last = this.verifiedKeys.get(uuid);
    if (last !== undefined) yield last;
    const { key, keySecret, previousKeySecret, keyGenerations } = this.options;
    for (const candidate of candidateDeviceKeys(
      uuid,
      withoutUndefined({ sharedKey: key, keySecret, previousKeySecret }),
      keyGenerations?.[uuid],
    )) {
      if (candidate !== last) yield candidate;
    }
  }

  /**
   * Devices answering Home Assistant's meross_lan, on a topic our `/appliance/+/publish` also
   * matches. Those are not device messages for us: one line says Home Assistant is talking to the
   * devices, then nothing, however many it sends.
   */
  private merossLanReply(): Response {
    if (this.merossLanSeen) return { log: [], replies: [] };
    this.merossLanSeen = true;
    return {
      log: [{ level: "info", event: "meross-lan-seen", topic: MEROSS_LAN_REPLY_TOPIC }],
      replies: [],
    };
  }

  /** The device's SETACK (or ERROR) to our Time SET, which it publishes on its own topic. */
  private zoneReply(uuid: string, message: MerossMessage): AgentLogEntry | undefined {
    const { header } = message;
    if (
      header.namespace !== Namespace.SystemTime ||
      this.zoneRequests.get(uuid)?.messageId !== header.messageId
    ) {
      return undefined;
    }
    const accepted = header.method === "SETACK";
    return {
      level: accepted ? "info" : "warn",
      event: accepted ? "time-zone-set" : "time-zone-refused",
      uuid,
      timezone: this.options.timezone,
      ...(accepted ? {} : { reply: header.method, payload: message.payload }),
    };
  }

  /** Due once per device, and again when a Bind says it booted on a later connection. */
  private zoneRequest(uuid: string, key: string, booted: boolean, now: Date): Outgoing | undefined {
    const { timezone } = this.options;
    if (timezone === undefined) return undefined;
    const last = this.zoneRequests.get(uuid);
    const due = last === undefined || (booted && now.getTime() - last.sentAt > ZONE_RESEND_AFTER_BOOT_MS);
    if (!due) return undefined;
    const message = timeZoneRequest(uuid, timezone, key, now);
    this.zoneRequests.set(uuid, { messageId: message.header.messageId, sentAt: now.getTime() });
    return {
      topic: deviceSubscribeTopic(uuid),
      message,
      logEntry: { level: "info", event: "time-zone-sent", uuid, timezone },
    };
  }
}
