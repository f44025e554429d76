import * as pulumi from "@pulumi/pulumi";
import type { Account } from "../lib/store/accounts.ts";
import { AccountRows } from "./credentials-provider.ts";
import type { BrokerDatabase } from "./database.ts";
import { formerly } from "./generated.ts";

export interface BrokerCredentialsArgs {
  database: BrokerDatabase;
  /** Every device, controller and service login; built with lib/store/accounts.ts. Secret. */
  accounts: pulumi.Input<Account[]>;
}

/**
 * Makes the database hold exactly the configured accounts: schema (lib/store/schema.ts), go-auth's
 * read-only login, the scripts' login, and one row per account with its ACL rows, written by
 * lib/store/database.ts syncAccounts (added, updated, removed to match the config).
 */
export class BrokerCredentials extends pulumi.ComponentResource {
  readonly usernames: pulumi.Output<string[]>;

  constructor(name: string, args: BrokerCredentialsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("meross:credentials:BrokerCredentials", name, {}, formerly("meross:stack:BrokerCredentials", opts));
    const { database } = args;

    const rows = new AccountRows(
      `${name}-rows`,
      {
        admin: pulumi.secret({
          host: "127.0.0.1",
          port: database.hostPort,
          user: database.root.user,
          password: database.root.password,
          database: database.databaseName,
        }),
        grants: pulumi.secret([
          { user: database.broker.user, password: database.broker.password, access: "read" as const },
          {
            user: database.provisioner.user,
            password: database.provisioner.password,
            access: "readwrite" as const,
          },
        ]),
        accounts: pulumi.secret(args.accounts),
        databaseContainerId: database.containerId,
      },
      // The container reports healthy before this runs (wait: true on it).
      { parent: this, dependsOn: [database] },
    );

    this.usernames = rows.usernames;
    this.registerOutputs({ usernames: this.usernames });
  }
}
