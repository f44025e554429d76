import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { containerPaths } from "../../lib/mosquitto/paths.ts";
import { renderMosquittoConf } from "../../lib/mosquitto/render.ts";
import { isSecretExport, type LooseInputs, type ProgramRun, resolve, runProgram } from "./harness.ts";

/**
 * The anonymous variant with a DNS broker host: no database, no logins, a generated device key;
 * Home Assistant's meross_lan answers the devices, and the broker logs at debug level.
 */

const config = {
  brokerHost: "Broker.Home.Arpa",
  brokerExtraNames: ["10.0.0.5"],
  userId: 0,
  authMode: "anonymous",
  tlsPort: 18883,
  tlsBindAddress: "192.168.1.10",
  sessionAnswers: "meross_lan",
  brokerDebugLog: "true",
  devices: [{ name: "kitchen", mac: "48:e1:e9:00:00:01", uuid: "1".repeat(32) }],
};

let pki: LocalPki;
let run: ProgramRun;

beforeAll(async () => {
  pki = await makeLocalPki({ host: "broker.home.arpa", extraNames: ["10.0.0.5", "mosquitto"] });
  run = await runProgram(config, { caPem: pki.caPem, certPem: await readFile(pki.certFile, "utf8") });
  if (run.error) throw run.error;
});

afterAll(async () => {
  await pki?.cleanup();
});

const inputsOf = (name: string) => run.named(name).inputs as LooseInputs;

describe("anonymous variant", () => {
  it("creates no database, no rows and no logins", () => {
    const names = run.resources.map((resource) => resource.name);
    expect(names.filter((name) => /database|credentials|password/.test(name))).toEqual([]);
    expect(run.resources.filter((resource) => resource.type.startsWith("pulumi-nodejs:dynamic"))).toEqual([]);
    expect(names).toContain("device-key");
  });

  it("requests the certificate for the DNS host as CN and DNS SAN, the extra IP as IP SAN", () => {
    const request = inputsOf("pki-server-request");
    expect(request.subject.commonName).toBe("broker.home.arpa");
    expect(request.dnsNames).toEqual(["broker.home.arpa", "mosquitto"]);
    expect(request.ipAddresses).toEqual(["10.0.0.5"]);
    expect(inputsOf("pki-server-key")).toMatchObject({ algorithm: "RSA", rsaBits: 2048 });
  });

  it("runs the go-auth image's Mosquitto 2.1.2 (plugin not loaded) with exactly the rendered anonymous config, debug log included", () => {
    const broker = inputsOf("broker-container");
    expect(inputsOf("broker-image").name).toBe("ghcr.io/lhns/mosquitto-go-auth:3.5.0-mosquitto_2.1.2");
    const uploads = broker.uploads as { file: string; content: string }[];
    expect(uploads.find((upload) => upload.file === containerPaths.config)?.content).toBe(
      renderMosquittoConf({
        variant: "anonymous",
        tls: {
          port: 18883,
          bindAddress: "0.0.0.0",
          cafile: containerPaths.caFile,
          certfile: containerPaths.certFile,
          keyfile: containerPaths.keyFile,
        },
        persistenceDir: containerPaths.persistenceDir,
        debugLog: true,
      }),
    );
  });

  it("publishes only the TLS port, on the configured address", () => {
    expect(inputsOf("broker-container").ports).toEqual([
      { internal: 18883, external: 18883, ip: "192.168.1.10" },
    ]);
  });

  it("keeps the server key secret even though the config is not", () => {
    expect(run.named("broker-container").secretInputs).toContain("uploads");
  });

  it("runs the agent without a login, told that meross_lan answers the devices", () => {
    const agent = inputsOf("agent-container");
    expect(agent.networksAdvanced).toEqual([{ name: "meross-dev-network" }]);
    const uploads = agent.uploads as { file: string; content: string }[];
    const settings = JSON.parse(
      uploads.find((upload) => upload.file.endsWith("/settings.json"))?.content ?? "{}",
    );
    expect(settings).toMatchObject({ sessionAnswers: "meross_lan" });
    expect(settings).not.toHaveProperty("username");
    expect(settings).not.toHaveProperty("timezone");
  });

  it("exports URLs for every name, no MySQL endpoint, and the generated key as a secret", async () => {
    expect(await resolve(run.exports.brokerUrls)).toEqual([
      "mqtts://broker.home.arpa:18883",
      "mqtts://10.0.0.5:18883",
    ]);
    expect(run.exports.mysql).toBeUndefined();
    expect(await resolve(run.exports.authMode)).toBe("anonymous");
    expect(await resolve(run.exports.userId)).toBe("0");
    expect(run.exports.monitorCommand).toBeUndefined();
    expect(await resolve(run.exports.controllerCredentials)).toEqual({});
    expect(await resolve(run.exports.deviceKey)).toBe("device-key-0123456789abcdef");
    expect(await isSecretExport(run.exports.deviceKey)).toBe(true);
    expect(await resolve(run.exports.deviceKeyOrigin)).toBe("generated");
    expect(await isSecretExport(run.exports.caCertificatePem)).toBe(false);
  });
});
