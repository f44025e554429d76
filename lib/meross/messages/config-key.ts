import { z } from "zod";
import type { BrokerAddress } from "../broker-url.ts";
import { checkedInput } from "../fields.ts";
import { deviceKeySchema, hostSchema, portSchema, userIdSchema } from "../identifiers.ts";
import { type DeviceRequest, Namespace } from "./namespace.ts";
import { numeric, parsed } from "./payload.ts";

// ── Appliance.Config.Key ────────────────────────────────────────────────────────────────────────

export interface KeySettings {
  userId: string | number;
  key: string;
  /** Both gateways; §4.3: give the same broker twice rather than a different fallback. */
  brokers: [BrokerAddress, BrokerAddress];
}

function checkedBroker(broker: BrokerAddress, field: string): BrokerAddress {
  return {
    host: checkedInput(hostSchema, broker?.host, `${field} host`),
    port: checkedInput(portSchema, broker?.port, `${field} port`),
  };
}

/** `userId` and `key` as strings, ports as numbers, `redirect: 1`, as BS2 sends it (§4.3). */
export function configKeyRequest(settings: KeySettings): DeviceRequest {
  const userId = checkedInput(userIdSchema, settings.userId, "userId");
  const key = checkedInput(deviceKeySchema, settings.key, "device key", true);
  const first = checkedBroker(settings.brokers[0], "first broker");
  const second = checkedBroker(settings.brokers[1] ?? settings.brokers[0], "second broker");
  return {
    method: "SET",
    namespace: Namespace.ConfigKey,
    payload: {
      key: {
        userId,
        key,
        gateway: {
          host: first.host,
          port: first.port,
          secondHost: second.host,
          secondPort: second.port,
          redirect: 1,
        },
      },
    },
  };
}

/** What a device reads from Config.Key; BS1, CMP and MIOT send ports as strings, so both are accepted. */
export const configKeyPayloadSchema = z.object({
  key: z.object({
    userId: z.union([z.string(), z.number()]).transform(String),
    key: z.string(),
    gateway: z
      .object({
        host: z.string().min(1),
        port: numeric,
        secondHost: z.string().optional(),
        secondPort: numeric.optional(),
        redirect: z.number().optional(),
      })
      .loose(),
  }),
});

export function parseConfigKey(payload: unknown): z.output<typeof configKeyPayloadSchema>["key"] {
  return parsed(configKeyPayloadSchema, Namespace.ConfigKey, payload).key;
}
