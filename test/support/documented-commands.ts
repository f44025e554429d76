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
