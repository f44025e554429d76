import * as pulumi from "@pulumi/pulumi";

/**
 * Runs the real index.ts under pulumi.runtime.setMocks and records what it registers. Each test
 * file runs the program once (vitest's forks pool gives every file its own process, and Pulumi's
 * runtime is process-global), so a file is one stack configuration.
 */

export const PROJECT = "meross-broker";
export const STACK = "dev";

export interface RegisteredResource {
  type: string;
  name: string;
  custom: boolean;
  /** Inputs with secrets unwrapped. */
  inputs: Record<string, unknown>;
  /** Top-level input names that arrived as secrets. */
  secretInputs: string[];
  /** Names of the resources it depends on (dependsOn and inputs taken from them). */
  dependsOn: string[];
  deleteBeforeReplace: boolean;
  additionalSecretOutputs: string[];
  /** The replacementTrigger option, as Pulumi sent it. */
  replacementTrigger: unknown;
  /** The URN of its parent ("" for the stack itself). */
  parent: string;
  /** Its own aliases (Pulumi derives its children's from them), as the alias specs Pulumi sent. */
  aliases: AliasSpec[];
}

export interface AliasSpec {
  name: string;
  type: string;
  stack: string;
  project: string;
  parenturn?: string;
  noparent?: boolean;
}

export interface CertificateFixture {
  caPem: string;
  certPem: string;
}

export interface ProgramRun {
  resources: RegisteredResource[];
  exports: Record<string, unknown>;
  error?: unknown;
  ofType(type: string): RegisteredResource[];
  named(name: string): RegisteredResource;
}

function unwrap(value: unknown): unknown {
  if (pulumi.runtime.isRpcSecret(value)) return unwrap(pulumi.runtime.unwrapRpcSecret(value));
  if (Array.isArray(value)) return value.map(unwrap);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, unwrap(inner)]));
  }
  return value;
}

function nameOfUrn(urn: string): string {
  return urn.slice(urn.lastIndexOf("::") + 2);
}

/** A PEM-shaped placeholder: the program only passes these through, so no real key is made. */
function placeholderPem(label: string, body: string): string {
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** Registered inputs as the tests read them: untyped JSON, whose shape each assertion checks. */
// biome-ignore lint/suspicious/noExplicitAny: the engine's inputs are untyped; assertions check the shape they read.
export type LooseInputs = Record<string, any>;

/** What the fake providers answer: enough state for the program's applies to run. */
function stateFor(type: string, name: string, inputs: Record<string, unknown>, pki: CertificateFixture) {
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return {
        ...inputs,
        privateKeyPem: placeholderPem("PRIVATE KEY", name),
      };
    case "tls:index/selfSignedCert:SelfSignedCert":
      return { ...inputs, certPem: pki.caPem };
    case "tls:index/certRequest:CertRequest":
      return { ...inputs, certRequestPem: placeholderPem("CERTIFICATE REQUEST", name) };
    case "tls:index/locallySignedCert:LocallySignedCert":
      return { ...inputs, certPem: pki.certPem };
    case "random:index/randomPassword:RandomPassword":
      return { ...inputs, result: `${name}-0123456789abcdef` };
    case "docker:index/remoteImage:RemoteImage":
      return { ...inputs, imageId: `sha256:${name}` };
    case "pulumi-nodejs:dynamic/meross:AccountRows": {
      const accounts = (inputs.accounts ?? []) as { username: string }[];
      return { ...inputs, usernames: accounts.map((account) => account.username).sort() };
    }
    default:
      return inputs;
  }
}

async function settle(resources: RegisteredResource[]): Promise<void> {
  let count = -1;
  while (count !== resources.length) {
    count = resources.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

/** Resolves an exported value (an Output, a plain value, or a structure of them) to plain data. */
export async function resolve(value: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) {
    return new Promise((done) => (value as pulumi.Output<unknown>).apply((inner) => done(inner)));
  }
  return value;
}

export async function isSecretExport(value: unknown): Promise<boolean> {
  return pulumi.Output.isInstance(value) ? pulumi.isSecret(value as pulumi.Output<unknown>) : false;
}

export async function runProgram(
  config: Record<string, unknown>,
  pki: CertificateFixture,
): Promise<ProgramRun> {
  const resources: RegisteredResource[] = [];
  const options = new Map<
    string,
    Omit<RegisteredResource, "type" | "name" | "custom" | "inputs" | "secretInputs">
  >();

  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const inputs = unwrap(args.inputs) as Record<string, unknown>;
        const secretInputs = Object.entries(args.inputs as Record<string, unknown>)
          .filter(([, value]) => pulumi.runtime.isRpcSecret(value))
          .map(([key]) => key);
        const recorded = options.get(args.name);
        resources.push({
          type: args.type,
          name: args.name,
          custom: args.custom ?? true,
          inputs,
          secretInputs,
          dependsOn: recorded?.dependsOn ?? [],
          deleteBeforeReplace: recorded?.deleteBeforeReplace ?? false,
          additionalSecretOutputs: recorded?.additionalSecretOutputs ?? [],
          replacementTrigger: recorded?.replacementTrigger,
          parent: recorded?.parent ?? "",
          aliases: recorded?.aliases ?? [],
        });
        return { id: `${args.name}-id`, state: stateFor(args.type, args.name, inputs, pki) };
      },
      call(args) {
        return args.inputs;
      },
    },
    PROJECT,
    STACK,
    false,
  );

  // The mock monitor drops the resource options; read them off the request on the way in.
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(request: RegisterRequest, callback: unknown): unknown;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (request, callback) => {
    const trigger = request.getReplacementTrigger?.();
    options.set(request.getName(), {
      dependsOn: request.getDependenciesList().map(nameOfUrn),
      deleteBeforeReplace: request.getDeletebeforereplace(),
      additionalSecretOutputs: request.getAdditionalsecretoutputsList(),
      replacementTrigger: trigger?.toJavaScript ? trigger.toJavaScript() : trigger,
      parent: request.getParent(),
      aliases: request.getAliasesList().flatMap((alias) => {
        const { spec } = alias.toObject();
        return spec ? [spec] : [];
      }),
    });
    return register(request, callback);
  };

  pulumi.runtime.setAllConfig(
    Object.fromEntries(
      Object.entries(config).map(([key, value]) => [
        `${PROJECT}:${key}`,
        typeof value === "string" ? value : JSON.stringify(value),
      ]),
    ),
  );

  let exports: Record<string, unknown> = {};
  let error: unknown;
  try {
    exports = { ...(await import("../../index.ts")) };
    for (const value of Object.values(exports)) await resolve(value);
  } catch (caught) {
    error = caught;
  }
  await settle(resources);

  return {
    resources,
    exports,
    error,
    ofType: (type) => resources.filter((resource) => resource.type === type),
    named: (name) => {
      const found = resources.find((resource) => resource.name === name);
      if (!found)
        throw new Error(`no resource named ${name}; registered: ${resources.map((r) => r.name).join(", ")}`);
      return found;
    },
  };
}

interface RegisterRequest {
  getName(): string;
  getDependenciesList(): string[];
  getDeletebeforereplace(): boolean;
  getAdditionalsecretoutputsList(): string[];
  getReplacementTrigger?(): { toJavaScript?(): unknown } | undefined;
  getParent(): string;
  getAliasesList(): { toObject(): { spec?: AliasSpec } }[];
}
