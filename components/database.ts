import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { formerly, generatedSecret } from "./generated.ts";

export interface BrokerDatabaseArgs {
  /** Prefix for Docker object names, unique per stack on one engine. */
  namePrefix: string;
  networkName: pulumi.Input<string>;
  /** MySQL 8.4 or MariaDB 10.11+ official image; both read the MYSQL_* variables below. */
  image: string;
  /** Host port, published on 127.0.0.1 only: the provisioning scripts and `pulumi up` use it. */
  hostPort: number;
  /** Name the broker reaches the database by on the private network. */
  alias: string;
  databaseName: string;
}

export interface DatabaseLogin {
  user: string;
  password: pulumi.Output<string>;
}

const CONTAINER_PORT = 3306;
const DATA_DIR = "/var/lib/mysql";
export const BROKER_LOGIN = "mqtt_broker";
export const PROVISIONER_LOGIN = "provisioner";

/**
 * The MySQL-compatible database go-auth reads accounts from. It holds nothing the stack config
 * cannot rebuild (credentials.ts writes every row), so its volume goes with `pulumi destroy`.
 */
export class BrokerDatabase extends pulumi.ComponentResource {
  /** Inside the private network: `alias:3306`. */
  readonly internalHost: pulumi.Output<string>;
  readonly internalPort: pulumi.Output<number>;
  /** From this machine: 127.0.0.1:hostPort. */
  readonly hostPort: pulumi.Output<number>;
  readonly databaseName: pulumi.Output<string>;
  /** root: only `pulumi up` (credentials.ts) uses it; it creates the two logins below. */
  readonly root: DatabaseLogin;
  /** go-auth's login: SELECT only. */
  readonly broker: DatabaseLogin;
  /** The scripts' login: reads and writes the account tables, nothing else. */
  readonly provisioner: DatabaseLogin;
  /** Changes when the container is replaced, so the rows are written again into a fresh server. */
  readonly containerId: pulumi.Output<string>;

  constructor(name: string, args: BrokerDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("meross:database:BrokerDatabase", name, {}, formerly("meross:stack:BrokerDatabase", opts));
    const parent = { parent: this };

    const password = (login: string) => generatedSecret(`${name}-${login}-password`, parent);
    this.root = { user: "root", password: password("root") };
    this.broker = { user: BROKER_LOGIN, password: password("broker") };
    this.provisioner = { user: PROVISIONER_LOGIN, password: password("provisioner") };

    const image = new docker.RemoteImage(`${name}-image`, { name: args.image, keepLocally: true }, parent);
    const volume = new docker.Volume(`${name}-data`, { name: `${args.namePrefix}-database-data` }, parent);

    const container = new docker.Container(
      `${name}-container`,
      {
        name: `${args.namePrefix}-database`,
        image: image.imageId,
        envs: [
          pulumi.interpolate`MYSQL_ROOT_PASSWORD=${this.root.password}`,
          `MYSQL_DATABASE=${args.databaseName}`,
        ],
        volumes: [{ volumeName: volume.name, containerPath: DATA_DIR }],
        networksAdvanced: [{ name: args.networkName, aliases: [args.alias] }],
        ports: [{ internal: CONTAINER_PORT, external: args.hostPort, ip: "127.0.0.1" }],
        healthcheck: {
          // MariaDB images ship healthcheck.sh (its own healthcheck login); MySQL images answer
          // mysqladmin ping, which succeeds once the real server (not the init one) listens on TCP.
          tests: [
            "CMD-SHELL",
            "if command -v healthcheck.sh >/dev/null 2>&1; then healthcheck.sh --connect --innodb_initialized; " +
              "else mysqladmin ping -h 127.0.0.1 --silent; fi",
          ],
          interval: "5s",
          timeout: "5s",
          retries: 30,
          startPeriod: "30s",
        },
        // `pulumi up` goes on (broker, rows) only once the server answers.
        wait: true,
        waitTimeout: 300,
        restart: "unless-stopped",
        logDriver: "json-file",
        logOpts: { "max-size": "5m", "max-file": "3" },
      },
      // A fixed name and a published port cannot exist twice, so the old container goes first.
      { parent: this, deleteBeforeReplace: true },
    );

    this.internalHost = pulumi.output(args.alias);
    this.internalPort = pulumi.output(CONTAINER_PORT);
    this.hostPort = pulumi.output(args.hostPort);
    this.databaseName = pulumi.output(args.databaseName);
    this.containerId = container.id;
    this.registerOutputs({
      internalHost: this.internalHost,
      internalPort: this.internalPort,
      hostPort: this.hostPort,
      databaseName: this.databaseName,
      containerId: this.containerId,
    });
  }
}
