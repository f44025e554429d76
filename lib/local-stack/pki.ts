import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type AllowedUse, type CertificatePlan, certificatePlan } from "../pki/parameters.ts";
import { requireInstalled } from "./requirements.ts";

const run = promisify(execFile);

/** Certificates made by openssl from the same plan components/pki gives @pulumi/tls. */
export interface LocalPki {
  dir: string;
  host: string;
  plan: CertificatePlan;
  caFile: string;
  certFile: string;
  keyFile: string;
  caPem: string;
  cleanup(): Promise<void>;
}

export interface LocalCa {
  dir: string;
  caFile: string;
  keyFile: string;
  caPem: string;
  cleanup(): Promise<void>;
}

const KEY_USAGE: Partial<Record<AllowedUse, string>> = {
  cert_signing: "keyCertSign",
  crl_signing: "cRLSign",
  digital_signature: "digitalSignature",
  key_encipherment: "keyEncipherment",
};
const EXTENDED_KEY_USAGE: Partial<Record<AllowedUse, string>> = { server_auth: "serverAuth" };

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") requireInstalled("openssl");
    const detail = (error as { stderr?: string }).stderr || String(error);
    throw new Error(`openssl ${args[0]} failed: ${detail}`);
  }
}

function usageExtensions(uses: AllowedUse[]): string[] {
  const keyUsage = uses.flatMap((use) => KEY_USAGE[use] ?? []);
  const extended = uses.flatMap((use) => EXTENDED_KEY_USAGE[use] ?? []);
  return [
    ...(keyUsage.length > 0 ? [`keyUsage=critical,${keyUsage.join(",")}`] : []),
    ...(extended.length > 0 ? [`extendedKeyUsage=${extended.join(",")}`] : []),
  ];
}

function subject(organization: string, commonName: string): string {
  return `/O=${organization}/CN=${commonName}`;
}

function days(hours: number): string {
  return String(Math.max(1, Math.ceil(hours / 24)));
}

async function rsaKey(plan: CertificatePlan, file: string): Promise<void> {
  await openssl([
    "genpkey",
    "-algorithm",
    plan.keyAlgorithm,
    "-pkeyopt",
    `rsa_keygen_bits:${plan.rsaBits}`,
    "-out",
    file,
  ]);
}

async function makeCa(dir: string, plan: CertificatePlan): Promise<LocalCa> {
  const caFile = join(dir, "ca.crt");
  const keyFile = join(dir, "ca.key");
  await rsaKey(plan, keyFile);
  const extensions = ["basicConstraints=critical,CA:TRUE", ...usageExtensions(plan.ca.allowedUses)];
  await openssl([
    "req",
    "-x509",
    "-new",
    "-sha256",
    "-key",
    keyFile,
    "-subj",
    subject(plan.ca.organization, plan.ca.commonName),
    "-days",
    days(plan.ca.validityHours),
    ...extensions.flatMap((extension) => ["-addext", extension]),
    "-out",
    caFile,
  ]);
  return {
    dir,
    caFile,
    keyFile,
    caPem: await readFile(caFile, "utf8"),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

const SHORT_VALIDITY = { validityDays: 30, earlyRenewalDays: 1 };

/** A private CA and an RSA server certificate for `host` (plus `extraNames`), as the stack would make them. */
export async function makeLocalPki(options: { host: string; extraNames?: string[] }): Promise<LocalPki> {
  const plan = certificatePlan({
    host: options.host,
    extraNames: options.extraNames ?? [],
    ...SHORT_VALIDITY,
  });
  const dir = await mkdtemp(join(tmpdir(), "meross-pki-"));
  try {
    const ca = await makeCa(dir, plan);
    const keyFile = join(dir, "server.key");
    const csrFile = join(dir, "server.csr");
    const certFile = join(dir, "server.crt");
    const extFile = join(dir, "server.ext");
    await rsaKey(plan, keyFile);
    await openssl([
      "req",
      "-new",
      "-key",
      keyFile,
      "-subj",
      subject(plan.server.organization, plan.server.commonName),
      "-out",
      csrFile,
    ]);
    const altNames = [
      ...plan.server.dnsNames.map((name) => `DNS:${name}`),
      ...plan.server.ipAddresses.map((ip) => `IP:${ip}`),
    ];
    await writeFile(
      extFile,
      [
        "basicConstraints=critical,CA:FALSE",
        ...usageExtensions(plan.server.allowedUses),
        `subjectAltName=${altNames.join(",")}`,
        "",
      ].join("\n"),
    );
    await openssl([
      "x509",
      "-req",
      "-sha256",
      "-in",
      csrFile,
      "-CA",
      ca.caFile,
      "-CAkey",
      ca.keyFile,
      "-CAcreateserial",
      "-days",
      days(plan.server.validityHours),
      "-extfile",
      extFile,
      "-out",
      certFile,
    ]);
    return {
      dir,
      host: plan.server.commonName,
      plan,
      caFile: ca.caFile,
      certFile,
      keyFile,
      caPem: ca.caPem,
      cleanup: ca.cleanup,
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Another CA with the same parameters but its own key: clients trusting it must reject the local broker. */
export async function makeOtherCa(): Promise<LocalCa> {
  const plan = certificatePlan({ host: "other-ca.invalid", ...SHORT_VALIDITY });
  const dir = await mkdtemp(join(tmpdir(), "meross-other-ca-"));
  try {
    return await makeCa(dir, plan);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
