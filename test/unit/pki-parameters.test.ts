import { describe, expect, it } from "vitest";
import { CertificatePlanError, certificatePlan, renewalEpoch } from "../../lib/pki/parameters.ts";

const base = { validityDays: 365, earlyRenewalDays: 30 };

describe("certificatePlan", () => {
  it("uses an RSA 2048 key, which every Meross firmware can negotiate", () => {
    const plan = certificatePlan({ host: "192.168.1.10", ...base });
    expect(plan.keyAlgorithm).toBe("RSA");
    expect(plan.rsaBits).toBe(2048);
  });

  it("puts an IP host in the CN and in the IP SANs only", () => {
    const plan = certificatePlan({ host: "192.168.1.10", ...base });
    expect(plan.server.commonName).toBe("192.168.1.10");
    expect(plan.server.ipAddresses).toEqual(["192.168.1.10"]);
    expect(plan.server.dnsNames).toEqual([]);
  });

  it("puts a DNS host in the CN and in the DNS SANs only, lowercased", () => {
    const plan = certificatePlan({ host: "Broker.Home.Arpa", ...base });
    expect(plan.server.commonName).toBe("broker.home.arpa");
    expect(plan.server.dnsNames).toEqual(["broker.home.arpa"]);
    expect(plan.server.ipAddresses).toEqual([]);
  });

  it("splits extra names into DNS names and IP addresses, host first, without duplicates", () => {
    const plan = certificatePlan({
      host: "broker.home.arpa",
      extraNames: ["10.0.0.2", "mqtt.local", "BROKER.home.arpa", "10.0.0.2", "127.0.0.1"],
      ...base,
    });
    expect(plan.server.dnsNames).toEqual(["broker.home.arpa", "mqtt.local"]);
    expect(plan.server.ipAddresses).toEqual(["10.0.0.2", "127.0.0.1"]);
  });

  it("gives the CA its own CN, different from any server CN", () => {
    const plan = certificatePlan({ host: "broker.home.arpa", ...base });
    expect(plan.ca.commonName).not.toBe(plan.server.commonName);
    expect(plan.ca.commonName).toMatch(/CA/);
  });

  it("limits each certificate to its job", () => {
    const plan = certificatePlan({ host: "10.1.2.3", ...base });
    expect([...plan.ca.allowedUses].sort()).toEqual(["cert_signing", "crl_signing"]);
    expect([...plan.server.allowedUses].sort()).toEqual([
      "digital_signature",
      "key_encipherment",
      "server_auth",
    ]);
  });

  it("converts validity and early renewal to hours; the CA lives longer by default", () => {
    const plan = certificatePlan({ host: "10.1.2.3", validityDays: 100, earlyRenewalDays: 10 });
    expect(plan.server.validityHours).toBe(2400);
    expect(plan.server.earlyRenewalHours).toBe(240);
    expect(plan.ca.validityHours).toBe(3650 * 24);
    expect(certificatePlan({ host: "10.1.2.3", ...base, caValidityDays: 400 }).ca.validityHours).toBe(9600);
  });

  it.each([
    [{ host: "not a host" }, /host "not a host" must be an IPv4 address or a DNS name/],
    [{ host: "999.1.1.1" }, /host "999.1.1.1"/],
    [{ host: "10.0.0.1", extraNames: ["ok.lan", "bad_name!"] }, /extraNames\[1\] "bad_name!"/],
    [{ host: "10.0.0.1", validityDays: 0 }, /validityDays 0 must be at least 1 day/],
    [{ host: "10.0.0.1", validityDays: 1.5 }, /validityDays 1.5 must be a whole number/],
    [
      { host: "10.0.0.1", earlyRenewalDays: 365 },
      /earlyRenewalDays 365 must be a whole number from 0 to 364/,
    ],
    [{ host: "10.0.0.1", earlyRenewalDays: -1 }, /earlyRenewalDays -1/],
    [{ host: "10.0.0.1", caValidityDays: 100 }, /caValidityDays 100 must be at least validityDays 365/],
  ])("rejects %o naming the key and the value", (override, message) => {
    expect(() => certificatePlan({ ...base, ...override })).toThrow(CertificatePlanError);
    expect(() => certificatePlan({ ...base, ...override })).toThrow(message);
  });
});

describe("renewalEpoch", () => {
  const server = certificatePlan({ host: "10.0.0.1", validityDays: 10, earlyRenewalDays: 3 }).server;
  const day = 86_400_000;

  it("changes once per validity-minus-renewal period", () => {
    const periodStart = 2900 * 7 * day;
    expect(renewalEpoch(server, new Date(periodStart))).toBe(2900);
    expect(renewalEpoch(server, new Date(periodStart + 7 * day - 1))).toBe(2900);
    expect(renewalEpoch(server, new Date(periodStart + 7 * day))).toBe(2901);
  });

  it("replaces a certificate no later than earlyRenewalDays before it expires", () => {
    for (const issuedAt of [0, 1, 3.5, 6.99].map((d) => 700 * day + d * day)) {
      const epoch = renewalEpoch(server, new Date(issuedAt));
      const firstReplacement = (epoch + 1) * 7 * day;
      const expiry = issuedAt + server.validityHours * 3_600_000;
      expect(expiry - firstReplacement).toBeGreaterThanOrEqual(3 * day);
    }
  });
});
