import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { formerly } from "./generated.ts";

export interface PrivateNetworkArgs {
  /** Docker network name; containers find each other on it by their aliases. */
  name: pulumi.Input<string>;
}

/**
 * A user-defined bridge network for the broker, the database and the agent. Docker resolves
 * container aliases only on such networks, and nothing on it is reachable from the LAN except the
 * ports the containers publish.
 */
export class PrivateNetwork extends pulumi.ComponentResource {
  readonly name: pulumi.Output<string>;

  constructor(name: string, args: PrivateNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("meross:network:PrivateNetwork", name, {}, formerly("meross:stack:PrivateNetwork", opts));
    const network = new docker.Network(
      `${name}-network`,
      { name: args.name, driver: "bridge", attachable: false },
      { parent: this },
    );
    this.name = network.name;
    this.registerOutputs({ name: this.name });
  }
}
