import mqtt, { ErrorWithSubackPacket, type MqttClient } from "mqtt";
import { buildMessage, buildReply, type MerossMessage, parseMessage } from "../../lib/meross/envelope.ts";
import { clockPayload, Namespace } from "../../lib/meross/messages/index.ts";
import { ALL_DEVICES_PUBLISH, devicePublishTopic, deviceSubscribeTopic } from "../../lib/meross/topics.ts";

/**
 * Home Assistant's meross_lan (v5.6.0, commit 111c5e9) as the broker sees it, written from its
 * source, not from our code (../shared/reference/meross-lan-notes.md; component_api.py
 * HAMQTTConnection, mqtt_profile.py MQTTConnection, merossclient/protocol/message.py):
 * - HA's MQTT client: MQTT 3.1.1, clean session; one subscription, `/appliance/+/publish` at QoS 0.
 * - Requests go to `/appliance/<uuid>/subscribe` at QoS 0, not retained, with header.from
 *   `/appliance/meross_lan/publish` (`mc.TOPIC_RESPONSE.format(DOMAIN)`), triggerSrc `meross_lan`,
 *   signed with the hub key; the reply is matched by messageId and namespace within 5 s.
 * - The sender of every message is header.uuid, else the middle of header.from; never the topic.
 * - Every message that is not an awaited reply goes through its session handlers: Clock PUSH and
 *   ConsumptionConfig PUSH are echoed (the device's header, uuid dropped, triggerSrc CloudControl;
 *   Clock with the current time), Bind SET gets a SETACK of the same messageId signed with the key,
 *   from `/appliance/<uuid>/publish`.
 */

/** `mc.TOPIC_RESPONSE.format(mlc.DOMAIN)` */
export const MEROSS_LAN_FROM = "/appliance/meross_lan/publish";
/** `MQTTConnection.DEFAULT_RESPONSE_TIMEOUT` */
export const MEROSS_LAN_TIMEOUT_MS = 5_000;
const CLOUD_CONTROL = "CloudControl";

export interface ReceivedMessage {
  topic: string;
  /** Who meross_lan thinks sent it (`get_message_uuid`). */
  deviceId: string;
  message: MerossMessage;
}

export interface SentAnswer {
  deviceId: string;
  message: MerossMessage;
}

export interface MerossLanController {
  client: MqttClient;
  /** The SUBACK codes of its subscription (0 granted, 128 refused). */
  granted: number[];
  received: ReceivedMessage[];
  /** Session answers it published, in order. */
  answers: SentAnswer[];
  /** GET/SET like `async_mqtt_publish`: the reply, or undefined after 5 s. */
  request(
    deviceId: string,
    method: "GET" | "SET",
    namespace: string,
    payload: Record<string, unknown>,
  ): Promise<MerossMessage | undefined>;
  stop(): Promise<void>;
}

/**
 * The SUBACK codes of one subscription (0 granted at QoS 0, 128 refused). Home Assistant's client
 * ignores them; MQTT.js rejects a refusal, so the codes are taken from its error.
 */
export async function grantedQos(client: MqttClient, topic: string): Promise<number[]> {
  try {
    return (await client.subscribeAsync(topic, { qos: 0 })).map((grant) => grant.qos);
  } catch (error) {
    if (!(error instanceof ErrorWithSubackPacket)) throw error;
    return (error.packet as { granted?: number[] }).granted ?? [];
  }
}

/** `get_message_uuid`: header.uuid, else `RE_PATTERN_TOPIC_UUID = r"/.+/(.*)/.+"` on header.from. */
export function merossLanDeviceId(header: MerossMessage["header"]): string | undefined {
  return header.uuid || /^\/.+\/(.*)\/.+$/.exec(header.from ?? "")?.[1];
}

export async function startMerossLan(options: {
  brokerUrl: string;
  ca: string;
  username: string;
  password: string;
  /** The hub entry's key; also each configured device's key here (the stack's deviceKey). */
  key: string;
  now?: () => Date;
}): Promise<MerossLanController> {
  const now = options.now ?? (() => new Date());
  const client = await mqtt.connectAsync(options.brokerUrl, {
    protocolVersion: 4,
    clean: true,
    clientId: `homeassistant-${Math.random().toString(36).slice(2, 12)}`,
    username: options.username,
    password: options.password,
    ca: options.ca,
    reconnectPeriod: 0,
  });
  const received: ReceivedMessage[] = [];
  const answers: SentAnswer[] = [];
  const pending = new Map<string, { namespace: string; resolve: (message: MerossMessage) => void }>();

  const publish = (deviceId: string, message: MerossMessage) =>
    client.publishAsync(deviceSubscribeTopic(deviceId), JSON.stringify(message), { qos: 0, retain: false });

  const sessionAnswer = (deviceId: string, message: MerossMessage): MerossMessage | undefined => {
    const { method, namespace } = message.header;
    const echo = (payload: Record<string, unknown>): MerossMessage => {
      const { uuid: _dropped, ...header } = message.header;
      return { header: { ...header, triggerSrc: CLOUD_CONTROL }, payload };
    };
    if (namespace === Namespace.SystemClock && method === "PUSH") {
      return echo(clockPayload(Math.floor(now().getTime() / 1000)));
    }
    if (namespace === Namespace.ControlConsumptionConfig && method === "PUSH") return echo(message.payload);
    if (namespace === Namespace.ControlBind && method === "SET") {
      const ack = buildReply(message, {
        key: options.key,
        from: devicePublishTopic(deviceId),
        method: "SETACK",
        now: now(),
      });
      return { ...ack, header: { ...ack.header, triggerSrc: CLOUD_CONTROL } };
    }
    return undefined;
  };

  client.on("message", (topic, payload) => {
    let message: MerossMessage;
    try {
      message = parseMessage(payload);
    } catch {
      return;
    }
    const deviceId = merossLanDeviceId(message.header);
    if (deviceId === undefined) return;
    received.push({ topic, deviceId, message });
    const { messageId, namespace } = message.header;
    const waiting = pending.get(messageId);
    if (waiting?.namespace === namespace) {
      pending.delete(messageId);
      waiting.resolve(message);
      return;
    }
    const answer = sessionAnswer(deviceId, message);
    if (answer) {
      answers.push({ deviceId, message: answer });
      void publish(deviceId, answer);
    }
  });

  return {
    client,
    granted: await grantedQos(client, ALL_DEVICES_PUBLISH),
    received,
    answers,
    async request(deviceId, method, namespace, payload) {
      const request = buildMessage({
        method,
        namespace,
        payload,
        key: options.key,
        from: MEROSS_LAN_FROM,
        triggerSrc: "meross_lan",
        now: now(),
      });
      const { messageId } = request.header;
      const reply = new Promise<MerossMessage | undefined>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(messageId);
          resolve(undefined);
        }, MEROSS_LAN_TIMEOUT_MS);
        pending.set(messageId, {
          namespace,
          resolve: (message) => {
            clearTimeout(timer);
            resolve(message);
          },
        });
      });
      await publish(deviceId, request);
      return reply;
    },
    stop: () => client.endAsync(true),
  };
}

const WEEK_SECONDS = 604_800; // mlc.PARAM_TIMEZONE_CHECK_OK_PERIOD

/**
 * `Device._check_device_timerules`: whether meross_lan would send its own Time SET to "fix" the
 * DST rules a device reports (it runs about once a day for a device on a local broker whose clock
 * is within 5 s). Ported with its Python semantics: the offset compared is `utcoffset.seconds`,
 * which for zones west of UTC is the offset plus one day, so there it always asks for a fix.
 * `dst()` is "offset above the year's lowest", which is what Python's zoneinfo says except for
 * zones with a negative DST in tzdata (Europe/Dublin): do not use those here.
 */
export function merossLanWantsTimeFix(
  time: { timezone?: string; timeRule?: readonly (readonly number[])[] },
  deviceTimestamp: number,
): boolean {
  const rules = time.timeRule ?? [];
  const zone = time.timezone;
  if (!zone) return rules.length > 0;
  if (rules.length === 0) return true;
  const index = rules.filter((rule) => (rule[0] ?? 0) <= deviceTimestamp).length;
  const current = rules[index - 1];
  if (current === undefined) return true;
  const offsetAt = (epoch: number) => {
    const name = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" })
      .formatToParts(epoch * 1000)
      .find((part) => part.type === "timeZoneName")?.value;
    const [, sign, hours = "0", minutes = "0"] = /^GMT(?:([+-])(\d{2}):(\d{2}))?$/.exec(name ?? "") ?? [];
    return (sign === "-" ? -1 : 1) * (Number(hours) * 3600 + Number(minutes) * 60);
  };
  const incorrect = (epoch: number, rule: readonly number[]) => {
    const offset = offsetAt(epoch);
    const pythonSeconds = ((offset % 86_400) + 86_400) % 86_400;
    if (rule[1] !== pythonSeconds) return true;
    const year = new Date(epoch * 1000).getUTCFullYear();
    const standard = Math.min(offsetAt(Date.UTC(year, 0, 1) / 1000), offsetAt(Date.UTC(year, 6, 1) / 1000));
    return rule[2] !== (offset > standard ? 1 : 0);
  };
  if (incorrect(deviceTimestamp, current)) return true;
  const future = deviceTimestamp + WEEK_SECONDS;
  const next = rules[index];
  if (next !== undefined && future >= (next[0] ?? 0)) {
    return incorrect((next[0] ?? 0) - 1, current) || incorrect((next[0] ?? 0) + 1, next);
  }
  return incorrect(future, current);
}
