import { md5Hex } from "./hash.ts";
import { macAddressSchema, userIdSchema } from "./identifiers.ts";

export interface MqttCredentials {
  username: string;
  password: string;
}

/**
 * What a device sends in its MQTT CONNECT: its MAC as the username and `<userId>_md5(mac + key)`
 * as the password (protocol §5.2). The MAC is normalised first because the device hashes its own
 * lowercase, colon-separated spelling.
 */
export function deviceMqttCredentials(
  macAddress: string,
  key: string,
  userId: string | number,
): MqttCredentials {
  const mac = macAddressSchema.parse(macAddress);
  const user = userIdSchema.parse(userId);
  return { username: mac, password: `${user}_${md5Hex(mac + key)}` };
}
