// @ts-check
// What the zx scripts share besides lib/: finding their own arguments, and spinners only for a person.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { spinner } from "zx";

/**
 * The words after the script's path, untouched by zx's own type-guessing argv (`--key 0012` must
 * stay a string). Paths are compared resolved, so `zx ./scripts/x.mjs` and a symlinked checkout match.
 * @param {string} scriptUrl the script's `import.meta.url`
 */
export function scriptArgs(scriptUrl) {
  const self = fileURLToPath(scriptUrl);
  const index = process.argv.findIndex((arg, i) => i > 0 && realpathOrAsGiven(arg) === self);
  return process.argv.slice(index === -1 ? 2 : index + 1);
}

/** @param {string} path */
function realpathOrAsGiven(path) {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** A spinner only at a terminal: Node-RED's exec node, CI and other scripts get just the result lines. */
export const interactive = Boolean(process.stderr.isTTY);

/**
 * @template T
 * @param {string} title
 * @param {() => Promise<T>} action
 * @returns {Promise<T>}
 */
export function withSpinner(title, action) {
  return interactive ? /** @type {Promise<T>} */ (spinner(title, action)) : action();
}
