import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { SessionAgent } from "./components/agent.ts";
import { MosquittoBroker } from "./components/broker.ts";
import { BrokerCredentials } from "./components/credentials.ts";
import { BrokerDatabase } from "./components/database.ts";
import { PrivateNetwork } from "./components/network.ts";
import { BrokerPki } from "./components/pki.ts";
import {
  ConfigError,
  deviceKeyOrigin as keyOriginOf,
  parseStackConfig,
  rawStackConfig,
  SERVICE_ACCOUNT_NAME,
  type StackConfig,
} from "./lib/config/stack.ts";
import { formatBroker } from "./lib/meross/broker-url.ts";
import { certificatePlan, renewalEpoch } from "./lib/pki/parameters.ts";
import { type Account, controllerAccount, deviceAccount, serviceAccount } from "./lib/store/accounts.ts";

/**
 * The composition root: read and validate the stack config once, then wire the components.
 * A bad config stops here, before any resource is registered.
 */

const BROKER_ALIAS = "mosquitto";
const DATABASE_ALIAS = "database";
const DATABASE_NAME = "meross";

function readConfig(): StackConfig {
  try {
    return parseStackConfig(rawStackConfig(pulumi.runtime.allConfig(), pulumi.getProject()));
  } catch (error) {
    // RunError: Pulumi prints the message alone, without a stack trace.
    if (error instanceof ConfigError) throw new pulumi.RunError(error.message);
    throw error;
  }
}

const config = readConfig();
const namePrefix = `meross-${pulumi.getStack()}`;
const mysqlMode = config.authMode === "mysql";

/** The key every device signs with (and hashes into its MQTT password). Secret. */
export const deviceKey = pulumi.secret(
  config.deviceKey ?? new random.RandomPassword("device-key", { length: 32, special: false }).result,
);
/**
 * Whether that key is the generated one or a person's choice: device rows get a fast hash only for
 * a generated key (lib/store/accounts.ts passwordHashIterations). The provisioning script reads it.
 */
export const deviceKeyOrigin = keyOriginOf(config);

const plan = certificatePlan({
  host: config.brokerHost,
  // The agent dials the broker by its network alias and verifies the certificate like any client.
  extraNames: [...config.brokerExtraNames, BROKER_ALIAS],
  validityDays: config.certificateValidityDays,
  earlyRenewalDays: config.certificateRenewalDays,
  caValidityDays: config.caValidityDays,
});
const pki = new BrokerPki("pki", { plan, renewalEpoch: renewalEpoch(plan.server, new Date()) });

const network = new PrivateNetwork("network", { name: `${namePrefix}-network` });

const password = (name: string) =>
  new random.RandomPassword(`${name}-password`, { length: 32, special: false }).result;

let database: BrokerDatabase | undefined;
let credentials: BrokerCredentials | undefined;
let serviceLogin: { username: string; password: pulumi.Output<string> } | undefined;
let controllerLogins: Record<string, { username: string; password: pulumi.Output<string> }> = {};

if (mysqlMode) {
  database = new BrokerDatabase("database", {
    namePrefix,
    networkName: network.name,
    image: config.images.database,
    hostPort: config.databasePort,
    alias: DATABASE_ALIAS,
    databaseName: DATABASE_NAME,
  });
  serviceLogin = { username: SERVICE_ACCOUNT_NAME, password: password(`service-${SERVICE_ACCOUNT_NAME}`) };
  controllerLogins = Object.fromEntries(
    config.controllers.map(({ name }) => [
      name,
      { username: name, password: password(`controller-${name}`) },
    ]),
  );
  const service = serviceLogin;
  const controllers = Object.values(controllerLogins);
  const accounts: pulumi.Output<Account[]> = pulumi
    .all([deviceKey, service.password, pulumi.all(controllers.map((controller) => controller.password))])
    .apply(([key, servicePassword, controllerPasswords]) => [
      ...config.devices.map((device) => deviceAccount(device, key, config.userId, deviceKeyOrigin)),
      ...controllers.map((controller, index) =>
        controllerAccount(controller.username, controllerPasswords[index] ?? ""),
      ),
      serviceAccount(service.username, servicePassword),
    ]);
  credentials = new BrokerCredentials("credentials", { database, accounts });
}

const broker = new MosquittoBroker(
  "broker",
  {
    namePrefix,
    networkName: network.name,
    alias: BROKER_ALIAS,
    variant: config.authMode,
    image: mysqlMode ? config.images.goAuth : config.images.mosquitto,
    tlsPort: config.tlsPort,
    tlsBindAddress: config.tlsBindAddress,
    plainListener: config.plainListener,
    caCertificatePem: pki.caCertificatePem,
    serverCertificatePem: pki.serverCertificatePem,
    serverPrivateKeyPem: pki.serverPrivateKeyPem,
    ...(database
      ? {
          mysql: {
            host: database.internalHost,
            port: database.internalPort,
            user: database.broker.user,
            password: database.broker.password,
            database: database.databaseName,
            authCacheSeconds: config.authCacheSeconds,
            aclCacheSeconds: config.aclCacheSeconds,
          },
        }
      : {}),
  },
  // go-auth connects at start; the rows should be there before the first device does.
  { dependsOn: [database, credentials].filter((resource) => resource !== undefined) },
);

new SessionAgent(
  "agent",
  {
    networkName: network.name,
    brokerUrl: broker.internalUrl,
    caPem: pki.caCertificatePem,
    deviceKey,
    userId: config.userId,
    ...(serviceLogin ? { serviceAccount: serviceLogin } : {}),
    image: config.images.agent,
    timezone: config.timezone,
    containerName: `${namePrefix}-session-agent`,
  },
  { dependsOn: [broker] },
);

export const authMode = config.authMode;
/** Where devices and controllers connect; the provisioning script gives devices the first two. */
export const brokerUrls = [config.brokerHost, ...config.brokerExtraNames].map((host) =>
  formatBroker({ host, port: config.tlsPort }),
);
export const plainBrokerUrl = config.plainListener
  ? `mqtt://${config.plainListener.address}:${config.plainListener.port}`
  : undefined;
export const caCertificatePem = pki.caCertificatePem;
export const serverCertificateSha256 = pki.serverCertificateSha256;
export const serverCertificateExpiry = pki.serverCertificateExpiry;
export const userId = config.userId;
/** For the scripts (provisioning, revoking): the database on this machine, rows only. Secret. */
export const mysql = database
  ? pulumi.secret({
      host: "127.0.0.1",
      port: database.hostPort,
      user: database.provisioner.user,
      password: database.provisioner.password,
      database: database.databaseName,
    })
  : undefined;
/** One login per configured controller (Home Assistant, Node-RED…); control.mjs and monitor.mjs use one. Secret. */
export const controllerCredentials = pulumi.secret(controllerLogins);
