import type { MqttClient } from "mqtt";
import { DeviceError, type MerossMessage } from "../meross/envelope.ts";
import {
  type DeviceRequest,
  Namespace,
  parseAbilities,
  systemAbilityRequest,
  type ToggleNamespace,
  toggleNamespaceOf,
} from "../meross/messages/index.ts";
import { requestOver } from "../meross/request.ts";
import { controllerReplyTopic } from "../meross/topics.ts";
import {
  type BrokerClientSettings,
  BrokerConnectionError,
  connectOnce,
  trySubscribe,
  uniqueClientId,
} from "../mqtt/connection.ts";
import { MqttDeviceTransport } from "../mqtt/device-transport.ts";
import {
  type ControlAction,
  type ControlResult,
  channelState,
  checkChannelFor,
  type ResolvedDevice,
  requestFor,
} from "./toggle.ts";

export interface ControllerSettings extends BrokerClientSettings {
  /** The stack's device key: requests are signed with it and replies checked against it. */
  key: string;
  userId: string;
}

/**
 * A controller on the broker, as the Meross app is on the cloud: it owns a reply topic, puts it in
 * each request's `from`, and matches replies by messageId (lib/mqtt/device-transport.ts).
 */
export class DeviceCommander {
  private readonly transport: MqttDeviceTransport;

  private constructor(
    private readonly client: MqttClient,
    private readonly settings: ControllerSettings,
    readonly replyTopic: string,
  ) {
    this.transport = new MqttDeviceTransport(client, replyTopic);
  }

  /** Connects and subscribes to the reply topic before anything is sent, so no reply can be missed. */
  static async connect(
    settings: ControllerSettings,
    options: { timeoutMs?: number } = {},
  ): Promise<DeviceCommander> {
    const clientId = uniqueClientId("control");
    const client = await connectOnce(settings, { clientId, ...options });
    const replyTopic = controllerReplyTopic(settings.userId, clientId);
    try {
      if (!(await trySubscribe(client, replyTopic, 1))) {
        throw new BrokerConnectionError(
          "ECONNREFUSED_AUTH",
          `the broker does not let ${settings.username ?? "this client"} read its reply topic ${replyTopic}; ` +
            "use a controller account",
        );
      }
    } catch (error) {
      await client.endAsync(true);
      throw error;
    }
    return new DeviceCommander(client, settings, replyTopic);
  }

  /** Sends one signed request and waits for the device's checked reply (ERROR becomes DeviceError). */
  async request(
    uuid: string,
    request: DeviceRequest,
    timeoutMs: number,
  ): Promise<{ reply: MerossMessage; roundTripMs: number }> {
    const started = Date.now();
    const reply = await requestOver(
      this.transport,
      request,
      { key: this.settings.key, verifyReply: true },
      { uuid, timeoutMs },
    );
    return { reply, roundTripMs: Date.now() - started };
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/**
 * Which switch namespace the device speaks, from its own ability list (asked every run: firmware
 * updates change it, so nothing is cached).
 */
export async function switchNamespaceOf(
  commander: DeviceCommander,
  device: ResolvedDevice,
  timeoutMs: number,
): Promise<ToggleNamespace> {
  const { reply } = await commander.request(device.uuid, systemAbilityRequest(), timeoutMs);
  const namespace = toggleNamespaceOf(parseAbilities(reply.payload));
  if (namespace === undefined) {
    throw new DeviceError(
      Namespace.SystemAbility,
      "no-switch",
      `${device.name ?? device.uuid} lists neither ${Namespace.ControlToggleX} nor ${Namespace.ControlToggle}: it is not a switch this tool can drive`,
    );
  }
  return namespace;
}

/**
 * One control.mjs run: on/off are a SET, status a GET, toggle a GET then the opposite SET, in
 * ToggleX or Toggle as the device's ability list says (or `namespace` when the user forced one).
 */
export async function controlDevice(
  commander: DeviceCommander,
  device: ResolvedDevice,
  command: { action: ControlAction; channel: number; timeoutMs: number; namespace?: ToggleNamespace },
): Promise<ControlResult> {
  const { action, channel, timeoutMs } = command;
  const namespace = command.namespace ?? (await switchNamespaceOf(commander, device, timeoutMs));
  checkChannelFor(namespace, channel);
  const about = { action, device, channel, namespace };
  const { reply, roundTripMs } = await commander.request(
    device.uuid,
    requestFor(namespace, action, channel),
    timeoutMs,
  );
  if (action === "status") {
    return { ...about, on: channelState(namespace, reply.payload, channel).on, roundTripMs };
  }
  if (action === "toggle") {
    const current = channelState(namespace, reply.payload, channel);
    const second = await commander.request(
      device.uuid,
      requestFor(namespace, action, channel, current),
      timeoutMs,
    );
    return { ...about, on: !current.on, roundTripMs: second.roundTripMs };
  }
  return { ...about, on: action === "on", roundTripMs };
}
