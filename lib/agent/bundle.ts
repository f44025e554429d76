import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

/** The file the agent container runs; .cjs because the bundle is CommonJS (see main.ts). */
export const AGENT_BUNDLE_NAME = "session-agent.cjs";

/**
 * The agent and everything it imports (MQTT.js, zod, lib/meross) as one self-contained script, so
 * the stack runs it on a stock Node image instead of building an image on the user's machine.
 * Synchronous because Pulumi components build their inputs in the constructor.
 */
export function bundleAgent(): string {
  const result = buildSync({
    entryPoints: [fileURLToPath(new URL("./main.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    write: false,
    legalComments: "none",
    // Pulumi keeps uploaded file contents in the stack state: shrink it, but keep names for stack traces.
    minify: true,
    keepNames: true,
    logLevel: "silent",
    // Same bytes for the same sources, so an unchanged agent does not replace the container.
    banner: { js: "// Meross session agent, bundled by lib/agent/bundle.ts" },
  });
  const [output] = result.outputFiles;
  if (output === undefined) throw new Error("esbuild produced no agent bundle");
  return output.text;
}
