import { z } from "zod";
import { type FlagSpec, parseScriptFlags, single, stackFlag, UsageError } from "../cli/flags.ts";
import { brokerAddressSchema } from "../meross/broker-url.ts";
import { controllerLogin, type StackOutputs } from "./outputs.ts";

/**
 * What a controller such as Home Assistant needs to log in to the stack's broker, taken from the
 * stack outputs: where to connect, the login, the CA to trust, and the names the server
 * certificate is for (the client must dial one of them, or host name verification fails).
 */
export interface BrokerLogin {
  host: string;
  port: number;
  /** Absent on the anonymous variant, which has no logins. */
  username?: string;
  password?: string;
  caCertificatePem: string;
  certificateNames: string[];
}

export function brokerLoginFrom(outputs: StackOutputs, name?: string): BrokerLogin {
  const addresses = outputs.brokerUrls.map((url) => brokerAddressSchema.parse(url));
  const [first] = addresses;
  if (first === undefined) throw new Error("the stack outputs have no brokerUrls");
  const login = outputs.authMode === "mysql" ? controllerLogin(outputs, name) : undefined;
  if (login === undefined && name !== undefined) {
    throw new UsageError(
      `the stack is anonymous: it has no logins, so ${JSON.stringify(name)} means nothing`,
    );
  }
  return {
    host: first.host,
    port: first.port,
    ...(login ? { username: login.username, password: login.password } : {}),
    caCertificatePem: outputs.caCertificatePem,
    certificateNames: addresses.map((address) => address.host),
  };
}

export const BROKER_LOGIN_FLAGS: FlagSpec = {
  string: ["ca-file", "stack"],
  boolean: ["show-password", "json"],
  default: {},
};

const brokerLoginFlagsSchema = z.object({
  "ca-file": single(z.string().trim().min(1, "needs a file name")).optional(),
  "show-password": z.boolean().default(false),
  json: z.boolean().default(false),
  stack: stackFlag.refine(
    (stack) => stack !== false,
    "the login lives in the stack outputs; --no-stack has none",
  ),
});

export interface BrokerLoginCommand {
  name?: string;
  caFile?: string;
  showPassword: boolean;
  json: boolean;
  stack?: string;
}

/** `controller-login.mjs [name] [flags]`. */
export function parseBrokerLoginArguments(args: readonly string[]): BrokerLoginCommand {
  const { flags, positional } = parseScriptFlags(args, BROKER_LOGIN_FLAGS, brokerLoginFlagsSchema);
  const [name, ...extra] = positional;
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}; see --help`);
  return {
    ...(name === undefined ? {} : { name }),
    ...(flags["ca-file"] === undefined ? {} : { caFile: flags["ca-file"] }),
    showPassword: flags["show-password"],
    json: flags.json,
    ...(typeof flags.stack === "string" ? { stack: flags.stack } : {}),
  };
}

/** One JSON object; the password only when asked for. */
export function brokerLoginJson(login: BrokerLogin, showPassword: boolean): string {
  const { password, ...shown } = login;
  return JSON.stringify(showPassword && password !== undefined ? { ...shown, password } : shown);
}

/**
 * The login as Home Assistant's MQTT settings ask for it, field by field; the CA as the file
 * written for its upload, or as PEM to paste into one.
 */
export function formatBrokerLogin(
  login: BrokerLogin,
  options: { showPassword: boolean; caFile?: string },
): string {
  const password =
    login.password === undefined
      ? undefined
      : options.showPassword
        ? login.password
        : "(hidden: run again with --show-password)";
  const others = login.certificateNames.filter((name) => name !== login.host);
  const lines = [
    "Home Assistant: Settings > Devices & services > MQTT (add it, or Reconfigure it):",
    `  Broker                         ${login.host}`,
    `  Port                           ${login.port}`,
    ...(login.username === undefined
      ? ["  Username, Password             (none: this broker is anonymous)"]
      : [
          `  Username                       ${login.username}`,
          `  Password                       ${password}`,
        ]),
    "Advanced options (shown when Advanced mode is on in your HA user profile):",
    "  MQTT protocol                  3.1.1",
    "  Broker certificate validation  Custom",
    `  CA certificate file            ${options.caFile ?? "a file holding the PEM below"}`,
    "",
    `The server certificate names ${[login.host, ...others].join(", ")}: Broker must be ${
      others.length > 0 ? "one of these" : "exactly this"
    }, written the same way, or TLS host name verification fails.`,
    "meross_lan's MQTT hub key is the stack's shared device key: pulumi stack output --show-secrets deviceKey",
    "(a device with its own key: npx zx scripts/devices.mjs key <device>, see docs/home-assistant.md)",
  ];
  if (options.caFile === undefined) lines.push("", login.caCertificatePem.trimEnd());
  return `${lines.join("\n")}\n`;
}
