/**
 * Every MQTT topic of the kit, in one place: the ACL rules, the agent, the scripts and the
 * simulator all build their topics here.
 */

/** Where a device publishes its replies and pushes. */
export function devicePublishTopic(uuid: string): string {
  return `/appliance/${uuid}/publish`;
}

/** Where a device listens for commands. */
export function deviceSubscribeTopic(uuid: string): string {
  return `/appliance/${uuid}/subscribe`;
}

/**
 * A controller's private reply topic, in the Meross app's own shape. Devices publish each reply to
 * the request's `from`, so controllers put this there and subscribe to it.
 */
export function controllerReplyTopic(userId: string, clientName: string): string {
  return `/app/${userId}-${clientName}/subscribe`;
}

/**
 * Home Assistant's meross_lan puts this in every request's `from` (built from its domain; no
 * setting changes it), so devices answer it here. It reads it through `/appliance/+/publish` and
 * takes the sender from `header.uuid` or `header.from`, never from the topic.
 */
export const MEROSS_LAN_REPLY_TOPIC = "/appliance/meross_lan/publish";

export const ALL_DEVICES_PUBLISH = "/appliance/+/publish";
export const ALL_DEVICES_SUBSCRIBE = "/appliance/+/subscribe";
export const ALL_CONTROLLER_REPLIES = "/app/+/subscribe";

/**
 * Which way a message under `/appliance/` goes: `…/publish` is the device speaking, anything else
 * is to it. Lenient about the uuid, for tools that show whatever arrives; undefined outside it.
 */
export function deviceTopicDirection(topic: string): "from-device" | "to-device" | undefined {
  if (!topic.startsWith("/appliance/")) return undefined;
  return topic.endsWith("/publish") ? "from-device" : "to-device";
}

/** The uuid in `/appliance/<uuid>/publish|subscribe`, or undefined for any other topic. */
export function uuidFromDeviceTopic(topic: string): string | undefined {
  return /^\/appliance\/([0-9a-f]{32})\/(?:publish|subscribe)$/.exec(topic)?.[1];
}
