import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { AuthMode } from "../lib/config/stack.ts";
import { containerPaths } from "../lib/mosquitto/paths.ts";
import { type MosquittoSettings, renderMosquittoConf } from "../lib/mosquitto/render.ts";
import { formerly } from "./generated.ts";

export interface MosquittoBrokerArgs {
  /** Prefix for Docker object names, unique per stack on one engine. */
  namePrefix: string;
  networkName: pulumi.Input<string>;
  /** Name the agent reaches the broker by on the private network (also in the server certificate). */
  alias: string;
  variant: AuthMode;
  /** A Mosquitto 2 image with /usr/sbin/mosquitto and /mosquitto; for mysql, one with go-auth in it. */
  image: string;
  /** The TLS port, the same inside the container and on the host. */
  tlsPort: number;
  /** Host address the TLS port is published on. */
  tlsBindAddress: string;
  plainListener?: { address: string; port: number };
  /** Log at debug level too (config key brokerDebugLog), where Mosquitto reports ACL denials. */
  debugLog?: boolean;
  caCertificatePem: pulumi.Input<string>;
  serverCertificatePem: pulumi.Input<string>;
  serverPrivateKeyPem: pulumi.Input<string>;
  /** mysql variant: where go-auth reads the accounts. */
  mysql?: {
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    user: string;
    password: pulumi.Input<string>;
    database: pulumi.Input<string>;
    authCacheSeconds: number;
    aclCacheSeconds: number;
  };
}

/**
 * Inside the container every listener binds all of the container's addresses; which host address
 * a port is reachable on is decided by Docker's port publishing below (the configured addresses).
 */
const IN_CONTAINER_ADDRESS = "0.0.0.0";

/**
 * Mosquitto starts as root, drops to its `mosquitto` user and only then reads the TLS key and
 * writes persistence. Uploaded files are root's, and the go-auth images (unlike eclipse-mosquitto)
 * do not chown /mosquitto themselves, so the start command hands the key and the data volume to that
 * user, whatever uid each image gives it.
 */
const START_COMMAND = [
  "/bin/sh",
  "-c",
  `chown -R mosquitto:mosquitto ${containerPaths.certDir} ${containerPaths.persistenceDir} && exec /usr/sbin/mosquitto -c ${containerPaths.config}`,
];

/** Mosquitto in a container: the rendered config and the certificates uploaded (no host bind mounts). */
export class MosquittoBroker extends pulumi.ComponentResource {
  /** The mosquitto.conf uploaded into the container (secret in the mysql variant: it holds go-auth's password). */
  readonly configText: pulumi.Output<string>;
  readonly containerName: pulumi.Output<string>;
  /** mqtts://alias:port: the broker as containers on the private network reach it. */
  readonly internalUrl: pulumi.Output<string>;

  constructor(name: string, args: MosquittoBrokerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("meross:broker:MosquittoBroker", name, {}, formerly("meross:stack:MosquittoBroker", opts));
    const parent = { parent: this };

    const base: Omit<MosquittoSettings, "mysql"> = {
      variant: args.variant,
      tls: {
        port: args.tlsPort,
        bindAddress: IN_CONTAINER_ADDRESS,
        cafile: containerPaths.caFile,
        certfile: containerPaths.certFile,
        keyfile: containerPaths.keyFile,
      },
      ...(args.plainListener
        ? { plainListener: { address: IN_CONTAINER_ADDRESS, port: args.plainListener.port } }
        : {}),
      persistenceDir: containerPaths.persistenceDir,
      debugLog: args.debugLog ?? false,
    };
    const { mysql } = args;
    this.configText = mysql
      ? pulumi.secret(
          pulumi
            .all([mysql.host, mysql.port, mysql.password, mysql.database])
            .apply(([host, port, password, database]) =>
              renderMosquittoConf({
                ...base,
                mysql: {
                  host,
                  port,
                  user: mysql.user,
                  password,
                  database,
                  pluginPath: containerPaths.goAuthPlugin,
                  authCacheSeconds: mysql.authCacheSeconds,
                  aclCacheSeconds: mysql.aclCacheSeconds,
                },
              }),
            ),
        )
      : pulumi.output(renderMosquittoConf(base));

    const image = new docker.RemoteImage(`${name}-image`, { name: args.image, keepLocally: true }, parent);
    const data = new docker.Volume(`${name}-data`, { name: `${args.namePrefix}-mosquitto-data` }, parent);

    const ports: docker.types.input.ContainerPort[] = [
      { internal: args.tlsPort, external: args.tlsPort, ip: args.tlsBindAddress },
    ];
    if (args.plainListener) {
      ports.push({
        internal: args.plainListener.port,
        external: args.plainListener.port,
        ip: args.plainListener.address,
      });
    }

    const container = new docker.Container(
      `${name}-container`,
      {
        name: `${args.namePrefix}-mosquitto`,
        image: image.imageId,
        command: START_COMMAND,
        uploads: [
          { file: containerPaths.config, content: this.configText, permissions: "0600" },
          { file: containerPaths.caFile, content: args.caCertificatePem, permissions: "0644" },
          { file: containerPaths.certFile, content: args.serverCertificatePem, permissions: "0644" },
          {
            file: containerPaths.keyFile,
            content: pulumi.secret(args.serverPrivateKeyPem),
            permissions: "0600",
          },
        ],
        volumes: [{ volumeName: data.name, containerPath: containerPaths.persistenceDir }],
        networksAdvanced: [{ name: args.networkName, aliases: [args.alias] }],
        ports,
        healthcheck: {
          // Healthy once the TLS listener answers an MQTT CONNECT: with the uptime on an open
          // broker, with "not authorised" on one that requires logins.
          tests: [
            "CMD-SHELL",
            `mosquitto_sub -h 127.0.0.1 -p ${args.tlsPort} --cafile ${containerPaths.caFile} --insecure ` +
              `-t '$SYS/broker/uptime' -C 1 -W 5 2>&1 | grep -Eq 'seconds|not authori'`,
          ],
          interval: "10s",
          timeout: "8s",
          retries: 6,
          startPeriod: "10s",
        },
        wait: true,
        waitTimeout: 120,
        restart: "unless-stopped",
        logDriver: "json-file",
        logOpts: { "max-size": "10m", "max-file": "3" },
      },
      // A fixed name and published ports cannot exist twice; any upload change replaces the container.
      // Children do not inherit the component's dependsOn; the container itself must wait (and be
      // deleted before what it depends on).
      { parent: this, deleteBeforeReplace: true, dependsOn: opts?.dependsOn },
    );

    this.containerName = container.name;
    this.internalUrl = pulumi.output(`mqtts://${args.alias}:${args.tlsPort}`);
    this.registerOutputs({
      configText: this.configText,
      containerName: this.containerName,
      internalUrl: this.internalUrl,
    });
  }
}
