import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { buildSync } from "esbuild";
import type * as Runtime from "./credentials-runtime.ts";

/**
 * credentials-runtime.ts and lib/store as one CommonJS text. Packages (mysql2, zod) stay outside:
 * the dynamic provider host resolves them from the project's node_modules, as the program does.
 */
export function bundleCredentialsRuntime(): string {
  const result = buildSync({
    entryPoints: [fileURLToPath(new URL("./credentials-runtime.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    packages: "external",
    write: false,
    legalComments: "none",
    logLevel: "silent",
  });
  const [output] = result.outputFiles;
  if (output === undefined) throw new Error("esbuild produced no credentials runtime bundle");
  return output.text;
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * The AccountRows provider. Pulumi serializes these methods into the state and runs them in its
 * dynamic provider host; all they capture is the bundle's text, which they evaluate with the host's
 * `require`. So nothing depends on the ESM/tsx module graph of the program (whose closures do not
 * serialize reliably), and `pulumi destroy` works from the state alone, even after the source moved.
 */
export function accountRowsProvider(runtimeSource: string): pulumi.dynamic.ResourceProvider {
  const load = (): typeof Runtime => {
    const module = { exports: {} };
    new Function("module", "exports", "require", runtimeSource)(module, module.exports, require);
    return module.exports as typeof Runtime;
  };
  return {
    async diff(_id, olds, news) {
      return { changes: load().accountRowsChanged(olds, news as Runtime.AccountRowsInputs) };
    },
    async create(inputs) {
      const outs = await load().applyAccountRows(inputs as Runtime.AccountRowsInputs);
      return { id: `account-rows-${outs.admin.database}`, outs };
    },
    async update(_id, _olds, news) {
      return { outs: await load().applyAccountRows(news as Runtime.AccountRowsInputs) };
    },
    async delete(_id, props) {
      await load().removeAccountRows(props as Runtime.AccountRowsInputs);
    },
  };
}

type Inputs<T> = { [K in keyof T]: pulumi.Input<T[K]> };

/** What the rows are made from; the runtime's digest is added by AccountRows itself. */
export type AccountRowsArgs = Inputs<Omit<Runtime.AccountRowsInputs, "runtimeSha256">>;

/**
 * The broker accounts as rows in the database (one dynamic resource for the whole set), written by
 * the bundled runtime; its digest is an input, so a changed runtime rewrites the rows.
 */
export class AccountRows extends pulumi.dynamic.Resource {
  declare readonly usernames: pulumi.Output<string[]>;

  constructor(name: string, args: AccountRowsArgs, opts?: pulumi.CustomResourceOptions) {
    const runtimeSource = bundleCredentialsRuntime();
    super(
      accountRowsProvider(runtimeSource),
      name,
      { ...args, runtimeSha256: sha256(runtimeSource), usernames: undefined },
      // The logins' and accounts' passwords are in these; keep them encrypted in the state.
      { ...opts, additionalSecretOutputs: ["admin", "grants", "accounts"] },
      "meross",
      "AccountRows",
    );
  }
}
