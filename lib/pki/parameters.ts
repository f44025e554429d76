import { z } from "zod";
import { hostSchema, isIpv4 } from "../meross/identifiers.ts";

/**
 * The certificates of the kit, described once. components/pki turns this plan into @pulumi/tls
 * resources and lib/local-stack/pki.ts into openssl calls, so the tests run against certificates
 * made with the same parameters as the stack's.
 */

/** @pulumi/tls `allowedUses` values (snake_case, as the provider spells them). */
export type AllowedUse =
  | "cert_signing"
  | "crl_signing"
  | "digital_signature"
  | "key_encipherment"
  | "server_auth";

export interface CertificatePlanInput {
  /** The broker host the devices dial: an IPv4 address or a DNS name. Becomes the server CN and first SAN. */
  host: string;
  /** More names or IPv4 addresses the server certificate is valid for (other ways to reach the broker). */
  extraNames?: readonly string[];
  /** Lifetime of the server certificate. */
  validityDays: number;
  /** How long before expiry a `pulumi up` replaces the server certificate. */
  earlyRenewalDays: number;
  /** Lifetime of the CA certificate; the CA is not rotated, so it outlives many server certificates. */
  caValidityDays?: number;
}

export interface CertificatePlan {
  /** Some Meross firmware only completes TLS with an RSA server key ("no shared cipher" otherwise). */
  keyAlgorithm: "RSA";
  rsaBits: 2048;
  ca: {
    commonName: string;
    organization: string;
    validityHours: number;
    allowedUses: AllowedUse[];
  };
  server: {
    commonName: string;
    organization: string;
    dnsNames: string[];
    ipAddresses: string[];
    validityHours: number;
    earlyRenewalHours: number;
    allowedUses: AllowedUse[];
  };
}

export const ORGANIZATION = "Meross local broker kit";
/** Never a valid host name (it has spaces), so the CA's CN can never equal the server's. */
export const CA_COMMON_NAME = "Meross local broker CA";
export const DEFAULT_CA_VALIDITY_DAYS = 3650;

const HOURS_PER_DAY = 24;

const daysSchema = z.number().int("must be a whole number of days").positive("must be at least 1 day");

export class CertificatePlanError extends Error {
  override name = "CertificatePlanError";
}

/** The CA and server certificate parameters for a broker reachable at `host` (and `extraNames`). */
export function certificatePlan(input: CertificatePlanInput): CertificatePlan {
  const host = parseHost("host", input.host);
  const extraNames = (input.extraNames ?? []).map((name, index) => parseHost(`extraNames[${index}]`, name));
  const validityDays = parseDays("validityDays", input.validityDays);
  const caValidityDays = parseDays("caValidityDays", input.caValidityDays ?? DEFAULT_CA_VALIDITY_DAYS);
  const earlyRenewalDays = input.earlyRenewalDays;
  if (!Number.isInteger(earlyRenewalDays) || earlyRenewalDays < 0 || earlyRenewalDays >= validityDays) {
    throw new CertificatePlanError(
      `earlyRenewalDays ${earlyRenewalDays} must be a whole number from 0 to ${validityDays - 1} (below validityDays ${validityDays})`,
    );
  }
  if (caValidityDays < validityDays) {
    throw new CertificatePlanError(
      `caValidityDays ${caValidityDays} must be at least validityDays ${validityDays}: a server certificate cannot outlive its CA`,
    );
  }

  const names = [...new Set([host, ...extraNames])];
  return {
    keyAlgorithm: "RSA",
    rsaBits: 2048,
    ca: {
      commonName: CA_COMMON_NAME,
      organization: ORGANIZATION,
      validityHours: caValidityDays * HOURS_PER_DAY,
      allowedUses: ["cert_signing", "crl_signing"],
    },
    server: {
      commonName: host,
      organization: ORGANIZATION,
      dnsNames: names.filter((name) => !isIpv4(name)),
      ipAddresses: names.filter(isIpv4),
      validityHours: validityDays * HOURS_PER_DAY,
      earlyRenewalHours: earlyRenewalDays * HOURS_PER_DAY,
      allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
    },
  };
}

/**
 * A number that changes once per renewal period (validity minus early renewal). Pulumi does not
 * act on the TLS provider's `readyForRenewal` (pulumi-tls#39), so components/pki feeds this into
 * the server certificate's `replacementTrigger`: a cert issued at any time in period k is replaced
 * by the first `pulumi up` in period k+1, which starts at least `earlyRenewalDays` before it expires.
 */
export function renewalEpoch(
  plan: Pick<CertificatePlan["server"], "validityHours" | "earlyRenewalHours">,
  now: Date,
): number {
  const periodMs = (plan.validityHours - plan.earlyRenewalHours) * 3_600_000;
  return Math.floor(now.getTime() / periodMs);
}

function parseHost(key: string, value: string): string {
  const parsed = hostSchema.safeParse(value);
  if (!parsed.success) {
    throw new CertificatePlanError(`${key} ${JSON.stringify(value)} ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data;
}

function parseDays(key: string, value: number): number {
  const parsed = daysSchema.safeParse(value);
  if (!parsed.success) {
    throw new CertificatePlanError(`${key} ${value} ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data;
}
