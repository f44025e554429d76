// @ts-check
// Help texts live beside the scripts as text (scripts/help/<name>.txt); only their values come from code.
import { readFileSync } from "node:fs";

/**
 * `template` with each `{{name}}` replaced by `values[name]`; a placeholder without a value is a bug
 * in the script, so it throws rather than print a half-filled help.
 * @param {string} template
 * @param {Record<string, string | number>} values
 */
export function renderHelp(template, values) {
  return template.replace(/\{\{(\w+)\}\}/g, (_placeholder, /** @type {string} */ name) => {
    const value = values[name];
    if (value === undefined) throw new Error(`help text needs a value for {{${name}}}`);
    return String(value);
  });
}

/**
 * The text of scripts/help/<name>.txt, filled in (see renderHelp), without its final newline.
 * @param {string} name
 * @param {Record<string, string | number>} [values]
 */
export function helpText(name, values = {}) {
  const template = readFileSync(new URL(`../help/${name}.txt`, import.meta.url), "utf8");
  return renderHelp(template, values).replace(/\n$/, "");
}
