import { existsSync, readFileSync } from "node:fs";
import { GO_AUTH_PLUGIN_PATH, requireInstalled } from "./requirements.ts";

const BUILD_INFO_PATH = GO_AUTH_PLUGIN_PATH.replace(/go-auth\.so$/, "BUILD-INFO");

/** The mosquitto-go-auth plugin that scripts/ci/install-test-deps.sh built. */
export function goAuthPluginPath(): string {
  requireInstalled("goAuthPlugin");
  return GO_AUTH_PLUGIN_PATH;
}

/** Which plugin was built: go-auth at its pinned commit, or the compatible stand-in (and why). */
export function goAuthPluginInfo(): string {
  goAuthPluginPath();
  return existsSync(BUILD_INFO_PATH) ? readFileSync(BUILD_INFO_PATH, "utf8").trim() : "unknown build";
}
