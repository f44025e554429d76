import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const CACHE_DIR = fileURLToPath(new URL("../../.cache/go-auth/", import.meta.url));
const PLUGIN_PATH = `${CACHE_DIR}go-auth.so`;
const BUILD_INFO_PATH = `${CACHE_DIR}BUILD-INFO`;
const INSTALL_HINT =
  "run `bash scripts/ci/install-test-deps.sh` (as root: it installs Debian packages and builds the plugin)";

/** The mosquitto-go-auth plugin that scripts/ci/install-test-deps.sh built. */
export function goAuthPluginPath(): string {
  if (!existsSync(PLUGIN_PATH)) {
    throw new Error(`the mosquitto-go-auth plugin is not built (${PLUGIN_PATH} is missing): ${INSTALL_HINT}`);
  }
  return PLUGIN_PATH;
}

/** Which plugin was built: go-auth at its pinned commit, or the compatible stand-in (and why). */
export function goAuthPluginInfo(): string {
  goAuthPluginPath();
  return existsSync(BUILD_INFO_PATH) ? readFileSync(BUILD_INFO_PATH, "utf8").trim() : "unknown build";
}
