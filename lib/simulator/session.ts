import type { BrokerAddress } from "../meross/broker-url.ts";
import { deviceMqttCredentials } from "../meross/credentials.ts";
import {
  buildMessage,
  type MerossMessage,
  ProtocolError,
  parseMessage,
  type RequestMethod,
} from "../meross/envelope.ts";
import {
  bindPayload,
  clockPayload,
  consumptionConfigPayload,
  Namespace,
  parseClock,
  type ToggleState,
  togglePayload,
  toggleXPayload,
} from "../meross/messages/index.ts";
import { deviceSubscribeTopic } from "../meross/topics.ts";
import type { Backoff } from "../mqtt/reconnect.ts";
import type { Firmware } from "./firmware.ts";
import { MqttLink } from "./mqtt-link.ts";

export interface SessionTiming {
  /** MQTT keepalive; real plugs use 120 s, some 30 s (protocol §5.1). */
  keepaliveSeconds: number;
  connectTimeoutMs: number;
  reconnect: Backoff;
  /** How often an unanswered Clock is repeated (about every 2 s, bytespider issue #8)… */
  clockRetryMs: number;
  /** …and how often at most (10 attempts, AR `provisioning.md`). */
  clockAttempts: number;
  /** With `requireSessionAnswers`: how long Clock and Bind may go unanswered before the device hangs up. */
  sessionTimeoutMs: number;
}

export interface SessionReport {
  online(broker: BrokerAddress, clientId: string): void;
  offline(broker: BrokerAddress, reason: string): void;
  attemptFailed(broker: BrokerAddress, reason: string): void;
  answered(answer: MerossMessage): void;
  command(request: MerossMessage, reply: MerossMessage, replyTopic: string): void;
}

/** AR `doc/protocol.md`: what a metering plug reports after connecting. */
const CONSUMPTION_CONFIG = { voltageRatio: 188, electricityRatio: 102, maxElectricityCurrent: 11000 };

/**
 * The device after its reboot: one broker connection at a time, the session messages newer firmware
 * sends on every connect (protocol §5.5), and requests arriving on its subscribe topic.
 */
export class BrokerSession {
  private link: MqttLink | undefined;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly firmware: Firmware,
    private readonly options: {
      ca?: string;
      requireSessionAnswers: boolean;
      timing: SessionTiming;
      report: SessionReport;
    },
  ) {}

  start(gateways: [BrokerAddress, BrokerAddress]): void {
    // One connection per device, even if two reboots overlap.
    void this.link?.stop();
    const { state, identity } = this.firmware;
    const { timing, ca } = this.options;
    this.link = new MqttLink({
      uuid: identity.uuid,
      gateways,
      credentials: deviceMqttCredentials(identity.macAddress, state.key ?? "", state.userId),
      ...(ca === undefined ? {} : { ca }),
      keepaliveSeconds: timing.keepaliveSeconds,
      connectTimeoutMs: timing.connectTimeoutMs,
      backoff: timing.reconnect,
      onOnline: (broker, clientId) => this.onOnline(broker, clientId),
      onMessage: (_topic, payload) => this.onMessage(payload),
      onOffline: (broker, reason) => {
        this.clearTimers();
        this.options.report.offline(broker, reason);
      },
      onAttemptFailed: (broker, reason) => this.options.report.attemptFailed(broker, reason),
    });
    this.link.start();
  }

  async stop(): Promise<void> {
    this.clearTimers();
    await this.link?.stop();
    this.link = undefined;
  }

  /** State changes go out as PUSH on the publish topic, whoever caused them. */
  pushToggles(changed: ToggleState[]): void {
    const namespace = this.firmware.identity.profile.toggleNamespace;
    const [relay] = changed;
    // Fw 1.x pushes `{"toggle":{"onoff","lmTime"}}` (ML trace of mss310 fw 1.1.18; AR).
    const payload =
      namespace === Namespace.ControlToggle && relay ? togglePayload(relay) : toggleXPayload(changed);
    this.publishOwn("PUSH", namespace, payload, "Device");
  }

  private onOnline(broker: BrokerAddress, clientId: string): void {
    const { firmware } = this;
    const { timing, requireSessionAnswers } = this.options;
    firmware.state.session = { clock: false, bind: false, consumptionConfig: false };
    this.options.report.online(broker, clientId);

    this.pushClock();
    for (let attempt = 1; attempt < timing.clockAttempts; attempt++) {
      this.later(attempt * timing.clockRetryMs, () => {
        if (!firmware.state.session.clock) this.pushClock();
      });
    }
    this.publishOwn(
      "SET",
      Namespace.ControlBind,
      bindPayload({
        bindTime: firmware.clock.now(),
        time: firmware.timePayload(),
        hardware: firmware.hardware(),
        firmware: firmware.firmware(),
      }),
      "DevBoot",
      // ML's emulator, from cloud captures: the Bind SETACK is expected on the subscribe topic.
      deviceSubscribeTopic(firmware.identity.uuid),
    );
    if (firmware.identity.profile.metering) {
      this.publishOwn(
        "PUSH",
        Namespace.ControlConsumptionConfig,
        consumptionConfigPayload(CONSUMPTION_CONFIG),
      );
    }
    if (requireSessionAnswers) {
      this.later(timing.sessionTimeoutMs, () => {
        const { clock, bind } = firmware.state.session;
        const missing = [clock ? "" : "Clock", bind ? "" : "Bind"].filter(Boolean);
        if (missing.length > 0) {
          this.link?.drop(`no answer to ${missing.join(" and ")} within ${timing.sessionTimeoutMs} ms`);
        }
      });
    }
  }

  private pushClock(): void {
    this.publishOwn("PUSH", Namespace.SystemClock, clockPayload(this.firmware.clock.now()), "DevBoot");
  }

  private publishOwn(
    method: RequestMethod,
    namespace: string,
    payload: Record<string, unknown>,
    triggerSrc = "Device",
    from = this.firmware.publishTopic,
  ): void {
    const message = buildMessage({
      method,
      namespace,
      payload,
      key: this.firmware.signingKey,
      from,
      triggerSrc,
      now: this.firmware.clock.date(),
    });
    this.link?.publish(this.firmware.publishTopic, message);
  }

  /** Whatever arrives, the firmware keeps running: malformed messages are dropped, as on the device. */
  private onMessage(raw: Buffer): void {
    try {
      this.takeMessage(parseMessage(raw));
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
    }
  }

  private takeMessage(message: MerossMessage): void {
    const { firmware } = this;
    const { method, namespace } = message.header;
    const isRequest = method === "GET" || method === "SET" || (method === "PUSH" && isPushQuery(message));
    if (isRequest) {
      if (method === "PUSH") {
        if (namespace === Namespace.SystemClock && firmware.acceptsSignature(message)) this.pushClock();
        return;
      }
      const reply = firmware.handle(message);
      const replyTopic = message.header.from || firmware.publishTopic;
      this.link?.publish(replyTopic, reply);
      this.options.report.command(message, reply, replyTopic);
      return;
    }
    if (!firmware.acceptsSignature(message)) return;
    this.takeSessionAnswer(message);
  }

  private takeSessionAnswer(message: MerossMessage): void {
    const { session } = this.firmware.state;
    const { method, namespace } = message.header;
    if (method === "PUSH" && namespace === Namespace.SystemClock) {
      this.firmware.clock.set(parseClock(message.payload).timestamp);
      session.clock = true;
    } else if (method === "SETACK" && namespace === Namespace.ControlBind) {
      session.bind = true;
    } else if (method === "PUSH" && namespace === Namespace.ControlConsumptionConfig) {
      session.consumptionConfig = true;
    } else {
      return;
    }
    this.options.report.answered(message);
  }

  private later(delayMs: number, action: () => void): void {
    this.timers.push(setTimeout(action, delayMs));
  }

  private clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
  }
}

/** A PUSH with an empty payload asks the device to push that namespace (ML `request_push`). */
function isPushQuery(message: MerossMessage): boolean {
  return Object.keys(message.payload).length === 0;
}
