import { createHash } from "node:crypto";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { AGENT_BUNDLE_NAME, bundleAgent } from "../lib/agent/bundle.ts";
import { AGENT_ENVIRONMENT, type AgentSettings, parseAgentSettings } from "../lib/agent/settings.ts";
import type { SessionAnswerer } from "../lib/config/stack.ts";

export interface SessionAgentArgs {
  /** The private Docker network the broker is on. */
  networkName: pulumi.Input<string>;
  /** The broker as seen from inside that network, e.g. mqtts://mosquitto:8883; its host must be in the server certificate. */
  brokerUrl: pulumi.Input<string>;
  caPem: pulumi.Input<string>;
  /** The stack's device key: the agent signs Bind acknowledgements with it and checks device messages against it. */
  deviceKey: pulumi.Input<string>;
  /** The stack secret per-device keys are derived from: the agent derives each device's key from its uuid. */
  deviceKeySecret: pulumi.Input<string>;
  /** The secret before the last rotation, while devices still hold keys from it. */
  previousDeviceKeySecret?: pulumi.Input<string>;
  /** Per-device key generations above 1, by uuid, from the stack config. */
  keyGenerations: Record<string, number>;
  userId: pulumi.Input<string>;
  /** The agent's own broker login (mysql variant: a `service` account); omit on an anonymous broker. */
  serviceAccount?: { username: pulumi.Input<string>; password: pulumi.Input<string> };
  /** An official Node image, e.g. node:20-alpine (config key images.agent). */
  image: pulumi.Input<string>;
  /** IANA zone the agent sets on each device, e.g. Europe/Dublin; omit to leave devices' zones alone. */
  timezone?: pulumi.Input<string | undefined>;
  /** Who answers the devices' session messages (config key sessionAnswers); "agent" when omitted. */
  sessionAnswers?: SessionAnswerer;
  containerName?: pulumi.Input<string>;
}

/** Where the agent lives inside its container. */
export const AGENT_DIR = "/opt/meross-agent";
const BUNDLE_PATH = `${AGENT_DIR}/${AGENT_BUNDLE_NAME}`;
const SETTINGS_PATH = `${AGENT_DIR}/settings.json`;
/** The `node` user of the official Node images: the agent needs no root. */
const NODE_USER = "1000";

/**
 * The session agent (lib/agent) as its own container: a stock Node image running the agent
 * bundled into one file at program time, so nothing is built on the user's machine.
 */
export class SessionAgent extends pulumi.ComponentResource {
  readonly containerName: pulumi.Output<string>;
  /** sha256 of the uploaded bundle: changes exactly when the agent's code does. */
  readonly bundleSha256: pulumi.Output<string>;

  constructor(name: string, args: SessionAgentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("meross:agent:SessionAgent", name, {}, opts);

    const bundle = bundleAgent();
    const bundleSha256 = createHash("sha256").update(bundle).digest("hex");

    const settingsJson = pulumi.secret(
      pulumi
        .all([
          args.brokerUrl,
          args.caPem,
          args.deviceKey,
          args.deviceKeySecret,
          args.previousDeviceKeySecret,
          args.userId,
          args.serviceAccount?.username,
          args.serviceAccount?.password,
          args.timezone,
        ])
        .apply(([brokerUrl, ca, key, keySecret, previousKeySecret, userId, username, password, timezone]) => {
          const settings: AgentSettings = parseAgentSettings(
            {
              brokerUrl,
              ca,
              key,
              keySecret,
              previousKeySecret,
              keyGenerations: args.keyGenerations,
              userId,
              username,
              password,
              timezone,
              sessionAnswers: args.sessionAnswers,
            },
            `the arguments of SessionAgent ${name}`,
          );
          return JSON.stringify(settings);
        }),
    );

    const image = new docker.RemoteImage(
      `${name}-image`,
      { name: args.image, keepLocally: true },
      { parent: this },
    );

    const container = new docker.Container(
      `${name}-container`,
      {
        name: args.containerName ?? "meross-session-agent",
        image: image.imageId,
        user: `${NODE_USER}:${NODE_USER}`,
        command: ["node", BUNDLE_PATH],
        envs: [`${AGENT_ENVIRONMENT.settingsFile}=${SETTINGS_PATH}`, "NODE_ENV=production"],
        uploads: [
          { file: BUNDLE_PATH, content: bundle },
          {
            file: SETTINGS_PATH,
            content: settingsJson,
            owner: NODE_USER,
            group: NODE_USER,
            permissions: "0400",
          },
        ],
        networksAdvanced: [{ name: args.networkName }],
        restart: "unless-stopped",
        // One line per device event; rotate so a chatty plug cannot fill the disk.
        logDriver: "json-file",
        logOpts: { "max-size": "5m", "max-file": "3" },
      },
      // Children do not inherit the component's dependsOn: the container itself waits for the broker.
      { parent: this, deleteBeforeReplace: true, dependsOn: opts?.dependsOn },
    );

    this.containerName = container.name;
    this.bundleSha256 = pulumi.output(bundleSha256);
    this.registerOutputs({ containerName: this.containerName, bundleSha256: this.bundleSha256 });
  }
}
