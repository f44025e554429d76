import * as pulumi from "@pulumi/pulumi";
import { SessionAgent } from "./components/agent.ts";
import { MosquittoBroker } from "./components/broker.ts";
import { generatedSecret } from "./components/generated.ts";
import { MysqlVariant } from "./components/mysql.ts";
import { PrivateNetwork } from "./components/network.ts";
import { BrokerPki } from "./components/pki.ts";
import {
  ConfigError,
  deviceKeyOrigin as keyOriginOf,
  parseStackConfig,
  rawStackConfig,
  type StackConfig,
  deviceKeySecretOrigin as secretOriginOf,
} from "./lib/config/stack.ts";
import { formatBroker } from "./lib/meross/broker-url.ts";
import { certificatePlan, renewalEpoch } from "./lib/pki/parameters.ts";

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

/** The key every device signs with (and hashes into its MQTT password). Secret. */
export const deviceKey = pulumi.secret(config.deviceKey ?? generatedSecret("device-key"));
/**
 * Whether that key is the generated one or a person's choice: device rows get a fast hash only for
 * a generated key (lib/store/accounts.ts passwordHashIterations). The provisioning script reads it.
 */
export const deviceKeyOrigin = keyOriginOf(config);
/** Which key provisioning gives a new device: its own (per-device) or deviceKey (shared). */
export const keyMode = config.keyMode;
/**
 * What per-device keys are derived from (HMAC-SHA256 of the device's uuid, lib/meross/device-key.ts).
 * Secret; no device ever holds it. Generated even on a shared stack, so switching keyMode needs no
 * second `pulumi up` before provisioning.
 */
export const deviceKeySecret = pulumi.secret(config.deviceKeySecret ?? generatedSecret("device-key-secret"));
/** Where deviceKeySecret came from, as deviceKeyOrigin for deviceKey: the hash cost of per-device rows. */
export const deviceKeySecretOrigin = secretOriginOf(config);
/** While the stack secret is rotated: the one before, for devices not moved yet. Secret. */
export const previousDeviceKeySecret =
  config.previousDeviceKeySecret === undefined ? undefined : pulumi.secret(config.previousDeviceKeySecret);

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

/** The authenticated variant: database, logins and rows; none on an anonymous broker. */
const mysqlVariant =
  config.authMode === "mysql"
    ? new MysqlVariant("mysql", {
        database: {
          namePrefix,
          networkName: network.name,
          image: config.images.database,
          hostPort: config.databasePort,
          alias: DATABASE_ALIAS,
          databaseName: DATABASE_NAME,
        },
        devices: config.devices,
        deviceKey,
        deviceKeyOrigin,
        deviceKeySecret,
        deviceKeySecretOrigin,
        ...(previousDeviceKeySecret ? { previousDeviceKeySecret } : {}),
        userId: config.userId,
        controllers: config.controllers.map(({ name }) => name),
      })
    : undefined;

const broker = new MosquittoBroker(
  "broker",
  {
    namePrefix,
    networkName: network.name,
    alias: BROKER_ALIAS,
    variant: config.authMode,
    image: mysqlVariant ? config.images.goAuth : config.images.mosquitto,
    tlsPort: config.tlsPort,
    tlsBindAddress: config.tlsBindAddress,
    plainListener: config.plainListener,
    debugLog: config.brokerDebugLog,
    caCertificatePem: pki.caCertificatePem,
    serverCertificatePem: pki.serverCertificatePem,
    serverPrivateKeyPem: pki.serverPrivateKeyPem,
    ...(mysqlVariant
      ? {
          mysql: {
            ...mysqlVariant.goAuthConnection,
            authCacheSeconds: config.authCacheSeconds,
            aclCacheSeconds: config.aclCacheSeconds,
          },
        }
      : {}),
  },
  // go-auth connects at start; the rows should be there before the first device does.
  { dependsOn: mysqlVariant ? [mysqlVariant] : [] },
);

new SessionAgent(
  "agent",
  {
    networkName: network.name,
    brokerUrl: broker.internalUrl,
    caPem: pki.caCertificatePem,
    deviceKey,
    deviceKeySecret,
    ...(previousDeviceKeySecret ? { previousDeviceKeySecret } : {}),
    keyGenerations: Object.fromEntries(
      config.devices.flatMap(({ uuid, keyGeneration }) =>
        keyGeneration === undefined || keyGeneration === 1 ? [] : [[uuid, keyGeneration]],
      ),
    ),
    userId: config.userId,
    ...(mysqlVariant ? { serviceAccount: mysqlVariant.serviceLogin } : {}),
    image: config.images.agent,
    timezone: config.timezone,
    sessionAnswers: config.sessionAnswers,
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
export const mysql = mysqlVariant ? pulumi.secret(mysqlVariant.scriptsConnection) : undefined;
/** One login per configured controller (Home Assistant, Node-RED…); control.mjs and monitor.mjs use one. Secret. */
export const controllerCredentials = pulumi.secret(mysqlVariant?.controllerLogins ?? {});
