import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AuthMode } from "../config/stack.ts";
import type { ExitCategory } from "../exit-category.ts";

/**
 * What the stack needs to run as local processes (the tests, `npm run demo`) and, when something is
 * missing, the one command that gets it on Debian/Ubuntu, with sudo unless we already are root.
 */

const asRoot = process.getuid?.() === 0;
const sudo = asRoot ? "" : "sudo ";
/** Installs every package below and builds the auth plugin (idempotent). */
export const INSTALL_ALL_COMMAND = `${sudo}bash scripts/ci/install-test-deps.sh`;

const SYSTEM_DIRS = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"];

/** The first of SYSTEM_DIRS holding `name`, or undefined. */
export function findSystemBinary(name: string): string | undefined {
  return SYSTEM_DIRS.map((dir) => join(dir, name)).find((path) => existsSync(path));
}

export const GO_AUTH_PLUGIN_PATH = fileURLToPath(new URL("../../.cache/go-auth/go-auth.so", import.meta.url));

function onPath(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** How requirements are looked for: this machine by default, another answer in tests. */
export interface RequirementProbe {
  systemBinary(name: string): boolean;
  onPath(command: string): boolean;
  file(path: string): boolean;
}

export const THIS_MACHINE: RequirementProbe = {
  systemBinary: (name) => findSystemBinary(name) !== undefined,
  onPath,
  file: existsSync,
};

interface Requirement {
  present(probe: RequirementProbe): boolean;
  /** One line: what is missing and the command that installs it. */
  missing(probe: RequirementProbe): string;
}

export const REQUIREMENTS = {
  openssl: {
    present: (probe) => probe.onPath("openssl"),
    missing: () => `openssl is not installed (it makes the certificates): ${sudo}apt-get install -y openssl`,
  },
  mosquitto: {
    present: (probe) => probe.systemBinary("mosquitto"),
    missing: () => `Mosquitto is not installed: ${sudo}apt-get install -y mosquitto`,
  },
  mariadb: {
    present: (probe) => probe.systemBinary("mariadbd") && probe.systemBinary("mariadb-install-db"),
    missing: () =>
      `MariaDB is not installed (mariadbd, mariadb-install-db): ${sudo}apt-get install -y mariadb-server`,
  },
  goAuthPlugin: {
    present: (probe) => probe.file(GO_AUTH_PLUGIN_PATH),
    missing: (probe) =>
      probe.onPath("go")
        ? `the broker's auth plugin is not built (${GO_AUTH_PLUGIN_PATH}): ${INSTALL_ALL_COMMAND}`
        : "the broker's auth plugin is not built and Go (1.24 or newer) is not installed to build it: " +
          `install Go (https://go.dev/doc/install), then ${INSTALL_ALL_COMMAND}`,
  },
} satisfies Record<string, Requirement>;

export type RequirementName = keyof typeof REQUIREMENTS;

/** What each variant runs on: the anonymous one needs no database and no plugin. */
export function requirementsOf(variant: AuthMode): RequirementName[] {
  return variant === "mysql" ? ["openssl", "mosquitto", "mariadb", "goAuthPlugin"] : ["openssl", "mosquitto"];
}

/** One line per missing requirement of `variant`, each with the command that installs it. */
export function missingRequirements(variant: AuthMode, probe: RequirementProbe = THIS_MACHINE): string[] {
  return requirementsOf(variant).flatMap((name) => {
    const requirement: Requirement = REQUIREMENTS[name];
    return requirement.present(probe) ? [] : [requirement.missing(probe)];
  });
}

export class MissingRequirementError extends Error {
  override name = "MissingRequirementError";
  readonly exitCategory: ExitCategory = "stackOrDatabase";
}

/** Throws the one-line "what is missing and how to get it" unless `name` is installed. */
export function requireInstalled(name: RequirementName): void {
  const requirement: Requirement = REQUIREMENTS[name];
  if (!requirement.present(THIS_MACHINE))
    throw new MissingRequirementError(requirement.missing(THIS_MACHINE));
}
