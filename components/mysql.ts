import * as pulumi from "@pulumi/pulumi";
import { SERVICE_ACCOUNT_NAME, type StackConfig } from "../lib/config/stack.ts";
import { deviceKeyFor } from "../lib/meross/device-key.ts";
import {
  type Account,
  controllerAccount,
  deviceAccount,
  type SecretOrigin,
  serviceAccount,
} from "../lib/store/accounts.ts";
import { BrokerCredentials } from "./credentials.ts";
import { BrokerDatabase, type BrokerDatabaseArgs } from "./database.ts";
import { generatedSecret } from "./generated.ts";

export interface MysqlVariantArgs {
  database: BrokerDatabaseArgs;
  devices: StackConfig["devices"];
  deviceKey: pulumi.Input<string>;
  deviceKeyOrigin: SecretOrigin;
  /** What per-device keys are derived from (lib/meross/device-key.ts), and where it came from. */
  deviceKeySecret: pulumi.Input<string>;
  deviceKeySecretOrigin: SecretOrigin;
  /** The secret before the last rotation, while devices still hold keys from it. */
  previousDeviceKeySecret?: pulumi.Input<string>;
  userId: string;
  /** Controller logins to create (Home Assistant, Node-RED…), by name. */
  controllers: readonly string[];
}

/** A database login and where it reaches the database. */
export interface DatabaseConnection {
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  user: string;
  password: pulumi.Output<string>;
  database: pulumi.Input<string>;
}

export interface BrokerLogin {
  username: string;
  password: pulumi.Output<string>;
}

/**
 * The authenticated variant's half of the stack: the database, a login per controller and one for
 * the session agent, and the rows (lib/store) that make the broker accept exactly the configured
 * devices and logins. Its fields are what the broker, the agent and the outputs need.
 */
export class MysqlVariant extends pulumi.ComponentResource {
  readonly database: BrokerDatabase;
  readonly credentials: BrokerCredentials;
  /** The session agent's broker login. */
  readonly serviceLogin: BrokerLogin;
  /** One broker login per configured controller, by name. */
  readonly controllerLogins: Record<string, BrokerLogin>;
  /** go-auth's, from inside the private network: SELECT only. */
  readonly goAuthConnection: DatabaseConnection;
  /** The scripts', from this machine (127.0.0.1): rows only. */
  readonly scriptsConnection: DatabaseConnection;

  constructor(name: string, args: MysqlVariantArgs, opts?: pulumi.ComponentResourceOptions) {
    super("meross:mysql:MysqlVariant", name, {}, opts);
    // Registered at the top of the stack before this component grouped them: keep their URNs.
    const child = { parent: this, aliases: [{ parent: pulumi.rootStackResource }] };
    const login = (username: string, passwordName: string): BrokerLogin => ({
      username,
      password: generatedSecret(`${passwordName}-password`, child),
    });

    // "database" and "credentials" predate this component and are kept, so their URNs stay the same.
    this.database = new BrokerDatabase("database", args.database, { parent: this });
    this.serviceLogin = login(SERVICE_ACCOUNT_NAME, `service-${SERVICE_ACCOUNT_NAME}`);
    this.controllerLogins = Object.fromEntries(
      args.controllers.map((controller) => [controller, login(controller, `controller-${controller}`)]),
    );

    const service = this.serviceLogin;
    const controllers = Object.values(this.controllerLogins);
    const accounts: pulumi.Output<Account[]> = pulumi
      .all([
        args.deviceKey,
        args.deviceKeySecret,
        args.previousDeviceKeySecret,
        service.password,
        pulumi.all(controllers.map((controller) => controller.password)),
      ])
      .apply(([sharedKey, keySecret, previousKeySecret, servicePassword, controllerPasswords]) => [
        // Each device's row follows the key its entry says it holds: mixed stacks stay reachable.
        ...args.devices.map((device) =>
          deviceAccount(
            device,
            deviceKeyFor(device, {
              sharedKey,
              keySecret,
              ...(previousKeySecret === undefined ? {} : { previousKeySecret }),
            }),
            args.userId,
            device.keyScheme === "per-device" ? args.deviceKeySecretOrigin : args.deviceKeyOrigin,
          ),
        ),
        ...controllers.map((controller, index) =>
          controllerAccount(controller.username, controllerPasswords[index] ?? ""),
        ),
        serviceAccount(service.username, servicePassword),
      ]);
    this.credentials = new BrokerCredentials(
      "credentials",
      { database: this.database, accounts },
      { parent: this },
    );
    const { database } = this;
    this.goAuthConnection = {
      host: database.internalHost,
      port: database.internalPort,
      ...database.broker,
      database: database.databaseName,
    };
    this.scriptsConnection = {
      host: "127.0.0.1",
      port: database.hostPort,
      ...database.provisioner,
      database: database.databaseName,
    };
    this.registerOutputs({});
  }
}
