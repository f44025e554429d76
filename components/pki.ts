import { X509Certificate } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { CertificatePlan } from "../lib/pki/parameters.ts";
import { formerly } from "./generated.ts";

export interface BrokerPkiArgs {
  /** From lib/pki/parameters.ts certificatePlan(): the single description of both certificates. */
  plan: CertificatePlan;
  /**
   * Changes once per renewal period (lib/pki renewalEpoch). Pulumi does not act on the TLS
   * provider's readyForRenewal, so a new value is what makes `pulumi up` issue a new server certificate.
   */
  renewalEpoch: number;
}

/**
 * A private CA and the broker's server certificate, both made by @pulumi/tls on this machine.
 * Private keys leave this component only as secrets.
 */
export class BrokerPki extends pulumi.ComponentResource {
  readonly caCertificatePem: pulumi.Output<string>;
  readonly serverCertificatePem: pulumi.Output<string>;
  readonly serverPrivateKeyPem: pulumi.Output<string>;
  /** SHA-256 of the server certificate (DER), colon-separated upper-case hex as openssl prints it. */
  readonly serverCertificateSha256: pulumi.Output<string>;
  /** The server certificate's notAfter, ISO 8601. */
  readonly serverCertificateExpiry: pulumi.Output<string>;

  constructor(name: string, args: BrokerPkiArgs, opts?: pulumi.ComponentResourceOptions) {
    super("meross:pki:BrokerPki", name, {}, formerly("meross:stack:BrokerPki", opts));
    const { plan } = args;
    const parent = { parent: this };

    const caKey = new tls.PrivateKey(
      `${name}-ca-key`,
      { algorithm: plan.keyAlgorithm, rsaBits: plan.rsaBits },
      parent,
    );
    const caCertificate = new tls.SelfSignedCert(
      `${name}-ca-certificate`,
      {
        privateKeyPem: caKey.privateKeyPem,
        isCaCertificate: true,
        subject: { commonName: plan.ca.commonName, organization: plan.ca.organization },
        validityPeriodHours: plan.ca.validityHours,
        allowedUses: plan.ca.allowedUses,
      },
      parent,
    );

    const serverKey = new tls.PrivateKey(
      `${name}-server-key`,
      { algorithm: plan.keyAlgorithm, rsaBits: plan.rsaBits },
      parent,
    );
    const request = new tls.CertRequest(
      `${name}-server-request`,
      {
        privateKeyPem: serverKey.privateKeyPem,
        subject: { commonName: plan.server.commonName, organization: plan.server.organization },
        dnsNames: plan.server.dnsNames,
        ipAddresses: plan.server.ipAddresses,
      },
      parent,
    );
    const serverCertificate = new tls.LocallySignedCert(
      `${name}-server-certificate`,
      {
        certRequestPem: request.certRequestPem,
        caPrivateKeyPem: caKey.privateKeyPem,
        caCertPem: caCertificate.certPem,
        validityPeriodHours: plan.server.validityHours,
        earlyRenewalHours: plan.server.earlyRenewalHours,
        allowedUses: plan.server.allowedUses,
      },
      { parent: this, replacementTrigger: args.renewalEpoch },
    );

    const parsed = serverCertificate.certPem.apply((pem) => new X509Certificate(pem));
    this.caCertificatePem = caCertificate.certPem;
    this.serverCertificatePem = serverCertificate.certPem;
    this.serverPrivateKeyPem = pulumi.secret(serverKey.privateKeyPem);
    this.serverCertificateSha256 = parsed.apply((certificate) => certificate.fingerprint256);
    this.serverCertificateExpiry = parsed.apply((certificate) => new Date(certificate.validTo).toISOString());
    this.registerOutputs({
      caCertificatePem: this.caCertificatePem,
      serverCertificatePem: this.serverCertificatePem,
      serverPrivateKeyPem: this.serverPrivateKeyPem,
      serverCertificateSha256: this.serverCertificateSha256,
      serverCertificateExpiry: this.serverCertificateExpiry,
    });
  }
}
