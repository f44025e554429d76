import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

/**
 * The kit's one recipe for a secret it generates (the device key, database and broker logins): 32
 * letters and digits, so it survives URLs, shell lines and config files unquoted. Kept in the state;
 * stable across runs.
 */
export function generatedSecret(name: string, opts?: pulumi.CustomResourceOptions): pulumi.Output<string> {
  return pulumi.secret(new random.RandomPassword(name, { length: 32, special: false }, opts).result);
}

/**
 * Options for a component whose type token changed from `meross:stack:<Type>` at the top of the stack
 * (before December 2026) to `meross:<module>:<Type>`: the alias names its old URN, so `pulumi up`
 * moves it and everything under it in the state instead of replacing containers, volumes and rows.
 */
export function formerly(
  oldType: string,
  opts: pulumi.ComponentResourceOptions | undefined,
): pulumi.ComponentResourceOptions {
  return {
    ...opts,
    aliases: [...(opts?.aliases ?? []), { type: oldType, parent: pulumi.rootStackResource }],
  };
}
