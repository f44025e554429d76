import { z } from "zod";
import { hostSchema, portSchema } from "./identifiers.ts";

export interface BrokerAddress {
  host: string;
  port: number;
}

const DEFAULT_PORTS: Record<string, number> = { "mqtt:": 1883, "mqtts:": 8883 };

/**
 * A broker as the user writes it: `mqtts://host:port`, `mqtt://host:port` or `host:port`.
 * Devices always dial TLS whatever the scheme says; the scheme only picks the default port.
 */
export const brokerAddressSchema = z
  .string()
  .trim()
  .transform((text, ctx): BrokerAddress => {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `mqtts://${text}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      ctx.addIssue({ code: "custom", message: "must look like mqtts://host:port or host:port" });
      return z.NEVER;
    }
    const defaultPort = DEFAULT_PORTS[url.protocol];
    if (defaultPort === undefined) {
      ctx.addIssue({ code: "custom", message: `scheme ${url.protocol}// is not mqtt:// or mqtts://` });
      return z.NEVER;
    }
    if (url.pathname.replace(/\/+$/, "") !== "" || url.search || url.hash || url.username || url.password) {
      ctx.addIssue({
        code: "custom",
        message: "must be only a host and port, without path, query, fragment or user:password",
      });
      return z.NEVER;
    }
    if (!/^[a-z]+:\/\//i.test(text) && url.port === "") {
      ctx.addIssue({ code: "custom", message: "needs a port when written without a scheme (host:port)" });
      return z.NEVER;
    }
    const host = hostSchema.safeParse(url.hostname);
    if (!host.success) {
      ctx.addIssue({ code: "custom", message: `host ${url.hostname}: ${host.error.issues[0]?.message}` });
      return z.NEVER;
    }
    const port = url.port === "" ? defaultPort : portSchema.parse(url.port);
    return { host: host.data, port };
  });

/** A broker URL kept as written (the kit's own clients honour its scheme), if brokerAddressSchema reads it. */
export const brokerUrlSchema = z
  .string()
  .refine((url) => brokerAddressSchema.safeParse(url).success, "must look like mqtts://host:port");

/** The two gateways a device takes: the first two brokers given, one given counts twice. */
export const brokerPairSchema = z
  .array(brokerAddressSchema)
  .min(1, "needs at least one broker")
  .transform((brokers): [BrokerAddress, BrokerAddress] => {
    const [first, second] = brokers as [BrokerAddress, BrokerAddress | undefined];
    return [first, second ?? first];
  });

/** A broker URL as it may appear in an error: any `user:password@` the user typed is masked. */
export function redactBrokerUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/@]*@/i, "$1***@");
}

export function formatBroker(broker: BrokerAddress): string {
  return `mqtts://${broker.host}:${broker.port}`;
}
