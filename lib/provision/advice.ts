import type { AuthMode } from "../config/stack.ts";
import { type BrokerAddress, formatBroker } from "../meross/broker-url.ts";
import type { BrokerObservation } from "./online.ts";
import type { SetupStepId } from "./setup.ts";
import type { SetupStepError } from "./steps.ts";

/**
 * What to tell the user when something went wrong: which state things are in, the likely causes,
 * and a command to check each. Kept apart from the steps so the wording can be read in one place.
 */

export interface OfflineContext {
  observation: BrokerObservation;
  /** The broker this machine watched, as given. */
  brokerUrl: string;
  /** The gateway the device was given. */
  broker: BrokerAddress;
  authMode: AuthMode;
  macAddress: string;
  /** The network the device was sent, as `networkLabel` names it; absent with --no-wifi. */
  network?: string;
  /** The device had a session before the set-up and no new connection came (see online.ts). */
  awaitedNewSession?: boolean;
}

export function offlineAdvice(context: OfflineContext): string {
  const { observation, broker, brokerUrl } = context;
  const host = broker.host;
  const lines: string[] = [];
  if (!observation.reachedBroker) {
    lines.push(
      `This computer could not reach the broker at ${brokerUrl} either` +
        `${observation.lastBrokerError ? ` (${observation.lastBrokerError})` : ""}.`,
      "  - Is this computer back on your normal network (not the device's Meross_* Wi-Fi)?",
      "  - Is the broker running? `pulumi stack output brokerUrls`, then `docker ps` on the Docker host.",
      "",
    );
  }
  lines.push("Likely causes, most likely first:");
  if (context.awaitedNewSession && context.network === undefined) {
    lines.push(
      "  Restart: the device took the new settings but is still on the connection it had before (real firmware",
      "    keeps its old broker until it restarts; a reply from that old session does not count). Unplug it, plug",
      "    it back in, and run the same command again; or give --wifi-ssid/--wifi-pass so setup restarts it.",
    );
  } else if (context.network !== undefined) {
    lines.push(
      `  Wi-Fi: the device did not join ${context.network}. If its LED alternates amber/green again it is back in`,
      "    pairing mode: check the SSID and password (case-sensitive), that the network is 2.4 GHz (the",
      "    devices have no 5 GHz radio) and not hidden. Re-run setup; to pin the access point, read its",
      "    bssid/channel with `npx zx scripts/provision.mjs info --wifi-list` and pass --wifi-bssid/--wifi-channel.",
    );
  } else {
    lines.push(
      "  Restart: with --no-wifi the device keeps its old broker until it restarts. Unplug it, plug it back",
      "    in, and run the same command again.",
    );
  }
  lines.push(
    `  TLS: the device dials ${formatBroker(broker)} with TLS and gives up on a certificate it cannot use.`,
    `    The server certificate must be RSA and name exactly "${host}" (the host given to the device), and`,
    `    port ${broker.port} must be reachable from the device's network. Check with`,
    `    \`openssl s_client -connect ${host}:${broker.port} -servername ${host} -CAfile ca.pem\`: look for`,
    `    "Server public key is 2048 bit" and ${host} under the certificate's names. The broker's log says`,
    '    "no shared cipher" or "tlsv1 alert" when this is the cause.',
  );
  if (context.authMode === "mysql") {
    lines.push(
      `  Credentials: the broker's log says "not authorised" or "bad user name or password" for ${context.macAddress}.`,
      `    \`npx zx scripts/devices.mjs list\` must show ${context.macAddress}; its password is made from the stack's`,
      "    userId and deviceKey, so re-running setup (same flags) rewrites both the row and the device's key.",
    );
  }
  return lines.join("\n");
}

const DEVICE_WRITES: readonly SetupStepId[] = ["set-time", "set-key", "set-wifi"];

/** After a failed step: what was already changed, and whether simply re-running is the fix. */
export function failureAdvice(error: SetupStepError<SetupStepId>): string {
  const { completed, step } = error;
  const changedDevice = completed.some((id) => DEVICE_WRITES.includes(id));
  const registered = completed.includes("register-credentials") || completed.includes("record-in-stack");
  if (step.id === "wait-online") return "";
  if (!changedDevice && !registered) {
    return "Nothing was changed: not on the device, not in MySQL, not in the stack config.";
  }
  const done: string[] = [];
  if (completed.includes("register-credentials")) done.push("its MySQL login is registered");
  if (completed.includes("record-in-stack")) done.push("it is recorded in the stack config");
  if (completed.includes("set-key")) done.push("the device has the broker settings and the new key");
  else if (completed.includes("set-time")) done.push("the device's clock was set");
  const state = done.length > 0 ? `So far ${done.join(", ")}. ` : "";
  return (
    `${state}Every step is safe to repeat: fix the cause and run the same command again. ` +
    "To give up on this device instead, `npx zx scripts/devices.mjs revoke <its MAC>` removes its login and config entry."
  );
}
