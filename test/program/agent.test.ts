import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

interface Upload {
  file: string;
  content?: unknown;
  owner?: string;
  permissions?: string;
}

const created: pulumi.runtime.MockResourceArgs[] = [];

const KEY = "stack-device-key-for-the-agent-test";
const KEY_SECRET = "stack-secret-per-device-keys-come-from";
const PASSWORD = "service-password-0123456789";
const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("components/agent SessionAgent", () => {
  let agent: import("../../components/agent.ts").SessionAgent;
  let workDir: string;

  beforeAll(async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          created.push(args);
          const state =
            args.type === "docker:index/remoteImage:RemoteImage"
              ? { ...args.inputs, imageId: `sha256:${"a".repeat(64)}` }
              : args.inputs;
          return { id: `${args.name}-id`, state };
        },
        call: () => ({}),
      },
      "meross-local-broker",
      "test",
      false,
    );
    const { SessionAgent } = await import("../../components/agent.ts");
    agent = new SessionAgent("agent", {
      networkName: "meross-net",
      brokerUrl: "mqtts://mosquitto:8883",
      caPem: CA,
      deviceKey: pulumi.secret(KEY),
      deviceKeySecret: pulumi.secret(KEY_SECRET),
      keyGenerations: {},
      userId: "1234",
      serviceAccount: { username: "session-agent", password: pulumi.secret(PASSWORD) },
      image: "node:20-alpine",
      timezone: "Europe/Dublin",
    });
    await new Promise<void>((resolve) => agent.containerName.apply(() => resolve()));
    workDir = mkdtempSync(join(tmpdir(), "agent-bundle-"));
  });

  afterAll(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  const container = () => {
    const found = created.find((resource) => resource.type === "docker:index/container:Container");
    expect(found, "a docker Container resource").toBeDefined();
    return found as pulumi.runtime.MockResourceArgs;
  };
  /** Secret inputs reach the mock wrapped; any secret part makes the whole list secret. */
  const uploads = () => {
    const raw = container().inputs.uploads;
    return (pulumi.runtime.isRpcSecret(raw) ? pulumi.runtime.unwrapRpcSecret(raw) : raw) as Upload[];
  };

  it("runs the official Node image it is given, on the private network, restarting on failure", () => {
    const image = created.find((resource) => resource.type === "docker:index/remoteImage:RemoteImage");
    expect(image?.inputs).toMatchObject({ name: "node:20-alpine", keepLocally: true });
    expect(container().inputs).toMatchObject({
      image: `sha256:${"a".repeat(64)}`,
      networksAdvanced: [{ name: "meross-net" }],
      restart: "unless-stopped",
      user: "1000:1000",
    });
    expect(container().inputs.command).toEqual(["node", "/opt/meross-agent/session-agent.cjs"]);
  });

  it("uploads a bundle that runs on bare Node with no node_modules (self-contained)", () => {
    const bundle = uploads().find((upload) => upload.file === "/opt/meross-agent/session-agent.cjs");
    expect(typeof bundle?.content).toBe("string");
    const path = join(workDir, "session-agent.cjs");
    writeFileSync(path, bundle?.content as string);
    // Started with no settings, a complete bundle gets as far as validating them; a missing
    // dependency would die earlier with "Cannot find module".
    const run = spawnSync(process.execPath, [path], {
      cwd: workDir,
      env: { PATH: process.env.PATH },
      encoding: "utf8",
    });
    expect(run.stderr).not.toContain("Cannot find module");
    expect(run.status).toBe(78);
    expect(JSON.parse(run.stdout.trim())).toMatchObject({ event: "settings-invalid" });
  });

  it("uploads the settings as a secret, readable only by the agent's user", () => {
    const settings = uploads().find((upload) => upload.file === "/opt/meross-agent/settings.json");
    expect(settings).toMatchObject({ owner: "1000", permissions: "0400" });
    const content = settings?.content;
    expect(
      pulumi.runtime.isRpcSecret(container().inputs.uploads) || pulumi.runtime.isRpcSecret(content),
    ).toBe(true);
    const text = pulumi.runtime.isRpcSecret(content) ? pulumi.runtime.unwrapRpcSecret(content) : content;
    expect(JSON.parse(text as string)).toEqual({
      brokerUrl: "mqtts://mosquitto:8883",
      ca: CA,
      key: KEY,
      keySecret: KEY_SECRET,
      keyGenerations: {},
      userId: "1234",
      username: "session-agent",
      password: PASSWORD,
      timezone: "Europe/Dublin",
      sessionAnswers: "agent",
    });
  });

  it("tells the agent where its settings are and nothing secret in the environment", () => {
    const envs = container().inputs.envs as string[];
    expect(envs).toContain("AGENT_SETTINGS_FILE=/opt/meross-agent/settings.json");
    expect(envs.join(" ")).not.toContain(KEY);
    expect(envs.join(" ")).not.toContain(KEY_SECRET);
    expect(envs.join(" ")).not.toContain(PASSWORD);
  });
});
