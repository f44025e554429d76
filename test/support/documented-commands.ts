import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

/** A repository file as the user reads it (README.md, docs/…). */
export function readRepoFile(path: string): Promise<string> {
  return readFile(`${REPO}/${path}`, "utf8");
}

/** The command lines of a markdown text's ```sh blocks, without their `# …` comments. */
export function shellBlockCommands(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)].map(
    (match) => match[1] ?? "",
  );
  return blocks
    .flatMap((block) => block.split("\n"))
    .map((line) => line.replace(/\s+#\s.*$/, "").trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

/** The one command of `markdown`'s shell blocks that starts with `prefix`; fails if there is not exactly one. */
export function documentedCommand(markdown: string, prefix: string): string {
  const found = shellBlockCommands(markdown).filter((line) => line.startsWith(prefix));
  if (found.length !== 1)
    throw new Error(`expected one "${prefix}…" command, found ${JSON.stringify(found)}`);
  return found[0] as string;
}

export const SCRIPT_COMMAND = "npx zx scripts/";

/**
 * Every `npx zx scripts/…` command in a text (markdown, --help, an error message), as far as it goes:
 * up to the end of the line, a backtick (or the backslash escaping it in a source file), a closing
 * parenthesis, a shell comment, `&&`, `;` or ` | `,
 * or a column gap of two spaces (help texts put descriptions there).
 */
export function scriptCommands(text: string): string[] {
  const commands: string[] = [];
  for (
    let start = text.indexOf(SCRIPT_COMMAND);
    start !== -1;
    start = text.indexOf(SCRIPT_COMMAND, start + 1)
  ) {
    let quote: string | undefined;
    let depth = 0;
    let end = start;
    for (; end < text.length; end += 1) {
      const char = text[end] as string;
      const rest = text.slice(end);
      if (quote !== undefined) {
        if (char === quote) quote = undefined;
        else if (char === "\n") break;
        continue;
      }
      if (char === "'" || char === '"') quote = char;
      else if (char === "(") depth += 1;
      else if (char === ")" && depth-- === 0) break;
      else if (char === "\n" || char === "`" || char === "\\" || char === ";") break;
      else if (
        rest.startsWith("  ") ||
        rest.startsWith(" #") ||
        rest.startsWith("&&") ||
        rest.startsWith(" | ")
      ) {
        break;
      }
    }
    commands.push(text.slice(start, end).trim());
  }
  return commands;
}

/** Words as a shell splits them (quotes kept together, not removed: only flags and subcommands matter). */
export function shellWords(command: string): string[] {
  return command.match(/(?:'[^']*'|"[^"]*"|[^\s'"])+/g) ?? [];
}
