import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalPki, makeLocalPki } from "../../lib/local-stack/pki.ts";
import { deviceMqttCredentials } from "../../lib/meross/credentials.ts";
import { containerPaths } from "../../lib/mosquitto/paths.ts";
import { renderMosquittoConf } from "../../lib/mosquitto/render.ts";
import { certificatePlan, renewalEpoch } from "../../lib/pki/parameters.ts";
import { controllerLogin, readStackOutputs } from "../../lib/stack/outputs.ts";
import { isSecretExport, type LooseInputs, type ProgramRun, resolve, runProgram } from "./harness.ts";

/** The mysql variant with an IP broker host: every device gets a login, MySQL stays on 127.0.0.1. */

const KEY = "0123456789abcdef0123456789abcdef";
const devices = [
  { name: "kitchen", mac: "48:E1:E9:00:00:01", uuid: "1".repeat(32) },
  { name: "desk", mac: "48e1e9000002", uuid: "2".repeat(32) },
];
const config = {
  brokerHost: "192.168.1.10",
  userId: "1234",
  deviceKey: KEY,
  devices,
  controllers: [{ name: "ha" }],
  plainListener: { address: "127.0.0.1" },
  timezone: "Europe/Berlin",
};

let pki: LocalPki;
let run: ProgramRun;
const startedAt = new Date();

beforeAll(async () => {
  pki = await makeLocalPki({ host: "192.168.1.10", extraNames: ["mosquitto"] });
  run = await runProgram(config, {
    caPem: pki.caPem,
    certPem: await import("node:fs/promises").then((fs) => fs.readFile(pki.certFile, "utf8")),
  });
  if (run.error) throw run.error;
});

afterAll(async () => {
  await pki?.cleanup();
});

const inputsOf = (name: string) => run.named(name).inputs as LooseInputs;

describe("mysql variant: certificates", () => {
  it("makes RSA 2048 keys for the CA and the server", () => {
    for (const name of ["pki-ca-key", "pki-server-key"]) {
      expect(inputsOf(name)).toMatchObject({ algorithm: "RSA", rsaBits: 2048 });
    }
  });

  it("makes a CA with its own CN that may only sign", () => {
    const ca = inputsOf("pki-ca-certificate");
    expect(ca.isCaCertificate).toBe(true);
    expect(ca.subject.commonName).not.toBe("192.168.1.10");
    expect(ca.allowedUses).toEqual(["cert_signing", "crl_signing"]);
  });

  it("requests the server certificate for the IP host as CN and IP SAN, plus the agent's alias as DNS SAN", () => {
    const request = inputsOf("pki-server-request");
    expect(request.subject.commonName).toBe("192.168.1.10");
    expect(request.ipAddresses).toEqual(["192.168.1.10"]);
    expect(request.dnsNames).toEqual(["mosquitto"]);
  });

  it("signs it for server auth with the configured validity, renewed by an epoch trigger", () => {
    const certificate = run.named("pki-server-certificate");
    const plan = certificatePlan({ host: "192.168.1.10", validityDays: 365, earlyRenewalDays: 30 });
    expect(certificate.inputs).toMatchObject({
      allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
      validityPeriodHours: 365 * 24,
      earlyRenewalHours: 30 * 24,
    });
    expect(certificate.replacementTrigger).toBe(renewalEpoch(plan.server, startedAt));
    expect(certificate.dependsOn).toEqual(
      expect.arrayContaining(["pki-server-request", "pki-ca-certificate"]),
    );
  });
});

describe("mysql variant: database", () => {
  it("publishes MySQL only on 127.0.0.1, at the configured port", () => {
    const database = inputsOf("database-container");
    expect(database.ports).toEqual([{ internal: 3306, external: 13306, ip: "127.0.0.1" }]);
    for (const container of run.ofType("docker:index/container:Container")) {
      const ports = (container.inputs.ports ?? []) as { internal: number; ip: string }[];
      for (const port of ports.filter((p) => p.internal === 3306)) expect(port.ip).toBe("127.0.0.1");
    }
  });

  it("runs the pinned image on the private network under an alias, with its data on a named volume", () => {
    const database = inputsOf("database-container");
    expect(inputsOf("database-image").name).toBe("mariadb:11.8");
    expect(database.image).toBe("sha256:database-image");
    expect(database.networksAdvanced).toEqual([{ name: "meross-dev-network", aliases: ["database"] }]);
    expect(database.volumes).toEqual([
      { volumeName: "meross-dev-database-data", containerPath: "/var/lib/mysql" },
    ]);
  });

  it("waits until healthy, keeps the generated root password secret, and replaces delete-first", () => {
    const database = run.named("database-container");
    expect(database.inputs.wait).toBe(true);
    expect((database.inputs.healthcheck as { tests: string[] }).tests[0]).toBe("CMD-SHELL");
    expect(database.secretInputs).toContain("envs");
    expect(database.inputs.envs).toContain("MYSQL_ROOT_PASSWORD=database-root-password-0123456789abcdef");
    expect(database.deleteBeforeReplace).toBe(true);
  });
});

describe("mysql variant: account rows", () => {
  const rows = () => run.ofType("pulumi-nodejs:dynamic/meross:AccountRows")[0];

  it("writes one row per configured device with the device's own password formula", () => {
    const accounts = rows()?.inputs.accounts as {
      username: string;
      password: string;
      kind: string;
      uuid?: string;
    }[];
    const deviceRows = accounts.filter((account) => account.kind === "device");
    expect(deviceRows).toEqual(
      devices.map((device) => ({
        ...deviceMqttCredentials(device.mac, KEY, "1234"),
        kind: "device",
        name: device.name,
        uuid: device.uuid,
        // deviceKey is set in the config, so a person chose it: the rows keep the slow hash.
        secretOrigin: "chosen",
      })),
    );
    expect(deviceRows.map((row) => row.username)).toEqual(["48:e1:e9:00:00:01", "48:e1:e9:00:00:02"]);
  });

  it("adds the controller and the agent's service login", () => {
    const accounts = rows()?.inputs.accounts as { username: string; kind: string; secretOrigin: string }[];
    expect(
      accounts.filter((a) => a.kind !== "device").map((a) => [a.kind, a.username, a.secretOrigin]),
    ).toEqual([
      ["controller", "ha", "generated"],
      ["service", "session-agent", "generated"],
    ]);
  });

  it("connects as root over 127.0.0.1 and grants go-auth read and the scripts read/write", () => {
    const inputs = rows()?.inputs as LooseInputs;
    expect(inputs.admin).toMatchObject({ host: "127.0.0.1", port: 13306, user: "root", database: "meross" });
    expect(
      inputs.grants.map((grant: { user: string; access: string }) => [grant.user, grant.access]),
    ).toEqual([
      ["mqtt_broker", "read"],
      ["provisioner", "readwrite"],
    ]);
  });

  it("keeps every password secret in state, and ships its provider as serialized code", () => {
    const resource = rows();
    expect(resource?.secretInputs).toEqual(expect.arrayContaining(["admin", "grants", "accounts"]));
    expect(resource?.additionalSecretOutputs).toEqual(
      expect.arrayContaining(["admin", "grants", "accounts"]),
    );
    expect(resource?.inputs.__provider).toMatch(/^exports\.handler = /);
    expect(resource?.inputs.__provider).not.toContain(KEY);
  });

  it("runs after the database is up", () => {
    expect(rows()?.dependsOn).toContain("database-container");
  });
});

describe("mysql variant: broker", () => {
  it("uploads exactly the rendered go-auth config, and nothing by bind mount", () => {
    const broker = inputsOf("broker-container");
    const uploads = broker.uploads as { file: string; content: string; permissions: string }[];
    const expected = renderMosquittoConf({
      variant: "mysql",
      tls: {
        port: 8883,
        bindAddress: "0.0.0.0",
        cafile: containerPaths.caFile,
        certfile: containerPaths.certFile,
        keyfile: containerPaths.keyFile,
      },
      plainListener: { address: "0.0.0.0", port: 1883 },
      persistenceDir: containerPaths.persistenceDir,
      mysql: {
        host: "database",
        port: 3306,
        user: "mqtt_broker",
        password: "database-broker-password-0123456789abcdef",
        database: "meross",
        pluginPath: containerPaths.goAuthPlugin,
        authCacheSeconds: 30,
        aclCacheSeconds: 30,
      },
    });
    expect(uploads.find((upload) => upload.file === containerPaths.config)?.content).toBe(expected);
    expect(broker.mounts).toBeUndefined();
    expect((broker.volumes as { hostPath?: string }[]).every((volume) => volume.hostPath === undefined)).toBe(
      true,
    );
  });

  it("uploads the CA, the certificate and the key (0600, secret) where the config points", () => {
    const broker = run.named("broker-container");
    const uploads = broker.inputs.uploads as { file: string; content: string; permissions: string }[];
    const byFile = new Map(uploads.map((upload) => [upload.file, upload]));
    expect(byFile.get(containerPaths.caFile)?.content).toBe(pki.caPem);
    expect(byFile.get(containerPaths.certFile)?.content).toContain("BEGIN CERTIFICATE");
    expect(byFile.get(containerPaths.keyFile)?.content).toContain("pki-server-key");
    expect(byFile.get(containerPaths.keyFile)?.permissions).toBe("0600");
    expect(broker.secretInputs).toContain("uploads");
  });

  it("runs the go-auth image by id, hands the key to the mosquitto user, and keeps data on a volume", () => {
    const broker = inputsOf("broker-container");
    expect(inputsOf("broker-image").name).toBe("ghcr.io/lhns/mosquitto-go-auth:3.5.0-mosquitto_2.1.2");
    expect(broker.image).toBe("sha256:broker-image");
    expect(broker.command.join(" ")).toContain(`chown -R mosquitto:mosquitto ${containerPaths.certDir}`);
    expect(broker.volumes).toEqual([
      { volumeName: "meross-dev-mosquitto-data", containerPath: containerPaths.persistenceDir },
    ]);
  });

  it("publishes TLS on the configured address and plain MQTT only on the named one", () => {
    expect(inputsOf("broker-container").ports).toEqual([
      { internal: 8883, external: 8883, ip: "0.0.0.0" },
      { internal: 1883, external: 1883, ip: "127.0.0.1" },
    ]);
  });

  it("restarts by itself, has a healthcheck, and starts after the database and the rows", () => {
    const broker = run.named("broker-container");
    expect(broker.inputs.restart).toBe("unless-stopped");
    expect(broker.inputs.wait).toBe(true);
    expect((broker.inputs.healthcheck as { tests: string[] }).tests.join(" ")).toContain("mosquitto_sub");
    expect(broker.deleteBeforeReplace).toBe(true);
    expect(broker.dependsOn).toEqual(expect.arrayContaining(["database-container", "credentials-rows"]));
  });
});

describe("mysql variant: session agent", () => {
  it("joins the private network after the broker is up", () => {
    expect(inputsOf("agent-container").networksAdvanced).toEqual([{ name: "meross-dev-network" }]);
    expect(run.named("agent-container").dependsOn).toContain("broker-container");
  });

  it("answers the devices itself by default and sets the configured zone", () => {
    const uploads = inputsOf("agent-container").uploads as { file: string; content: string }[];
    const settings = JSON.parse(
      uploads.find((upload) => upload.file.endsWith("/settings.json"))?.content ?? "{}",
    );
    expect(settings).toMatchObject({
      sessionAnswers: "agent",
      timezone: "Europe/Berlin",
      username: "session-agent",
    });
  });
});

describe("mysql variant: outputs", () => {
  const output = (name: string) => resolve(run.exports[name]);

  it("exports the broker URL, the CA, and the fingerprint and expiry of the certificate it uploaded", async () => {
    const certificate = new X509Certificate(
      await import("node:fs/promises").then((fs) => fs.readFile(pki.certFile, "utf8")),
    );
    expect(await output("brokerUrls")).toEqual(["mqtts://192.168.1.10:8883"]);
    expect(await output("caCertificatePem")).toBe(pki.caPem);
    expect(await output("serverCertificateSha256")).toBe(certificate.fingerprint256);
    expect(await output("serverCertificateExpiry")).toBe(new Date(certificate.validTo).toISOString());
    expect(await output("userId")).toBe("1234");
    expect(await output("authMode")).toBe("mysql");
    expect(await output("plainBrokerUrl")).toBe("mqtt://127.0.0.1:1883");
    expect(await output("deviceKeyOrigin")).toBe("chosen");
  });

  it("exports the MySQL endpoint for the scripts: 127.0.0.1, the provisioner login", async () => {
    expect(await output("mysql")).toEqual({
      host: "127.0.0.1",
      port: 13306,
      user: "provisioner",
      password: "database-provisioner-password-0123456789abcdef",
      database: "meross",
    });
  });

  it("exports the controller logins, which control.mjs and monitor.mjs read from the outputs", async () => {
    const ha = { username: "ha", password: "controller-ha-password-0123456789abcdef" };
    expect(await output("controllerCredentials")).toEqual({ ha });
    const printed = Object.fromEntries(
      await Promise.all(
        Object.entries(run.exports).map(async ([name, value]) => [name, await resolve(value)]),
      ),
    );
    const outputs = await readStackOutputs({ run: async () => JSON.stringify(printed) });
    expect(controllerLogin(outputs)).toEqual(ha);
    expect(controllerLogin(outputs, "ha")).toEqual(ha);
    expect(() => controllerLogin(outputs, "node-red")).toThrow(
      /no controller login named "node-red" \(it has ha\)/,
    );
  });

  it("marks exactly the outputs that hold secrets as secret", async () => {
    const secret = ["deviceKey", "deviceKeySecret", "mysql", "controllerCredentials"];
    for (const [name, value] of Object.entries(run.exports)) {
      expect(await isSecretExport(value), name).toBe(secret.includes(name));
    }
    expect(await output("deviceKey")).toBe(KEY);
  });
});

describe("mysql variant: component types and aliases", () => {
  const components = () => run.resources.filter((resource) => resource.type.startsWith("meross:"));

  it("registers every component as meross:<its components/ module>:<Type>", () => {
    expect(Object.fromEntries(components().map((resource) => [resource.name, resource.type]))).toEqual({
      pki: "meross:pki:BrokerPki",
      network: "meross:network:PrivateNetwork",
      mysql: "meross:mysql:MysqlVariant",
      database: "meross:database:BrokerDatabase",
      credentials: "meross:credentials:BrokerCredentials",
      broker: "meross:broker:MosquittoBroker",
      agent: "meross:agent:SessionAgent",
    });
  });

  it("groups the variant's database, rows and logins under one component", () => {
    const mysqlUrn = "urn:pulumi:dev::meross-broker::meross:mysql:MysqlVariant::mysql";
    for (const name of [
      "database",
      "credentials",
      "service-session-agent-password",
      "controller-ha-password",
    ]) {
      expect(run.named(name).parent, name).toBe(mysqlUrn);
    }
  });

  it("aliases each renamed or regrouped resource to its URN before (top level, meross:stack:<Type>), so nothing is replaced", () => {
    const topLevel = (type: string) => ({ name: "", type, stack: "", project: "", noparent: true });
    for (const name of ["pki", "network", "database", "credentials", "broker"]) {
      const { type, aliases } = run.named(name);
      expect(aliases, name).toEqual([topLevel(type.replace(/^meross:[a-z-]+:/, "meross:stack:"))]);
    }
    for (const name of ["service-session-agent-password", "controller-ha-password"]) {
      expect(run.named(name).aliases, name).toEqual([topLevel("")]);
    }
    // Unchanged since before: no alias needed.
    expect(run.named("agent").aliases).toEqual([]);
  });
});
