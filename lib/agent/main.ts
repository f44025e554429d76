import { startSessionAgent } from "./agent.ts";
import { type AgentLogEntry, errorText, formatLogLine } from "./log.ts";
import { loadAgentSettings } from "./settings.ts";

/**
 * The container's entry point (bundled into one file by lib/agent/bundle.ts). No top-level await:
 * the bundle is CommonJS so that the bundled CommonJS dependencies keep their `require`.
 */

function writeLog(entry: AgentLogEntry): void {
  process.stdout.write(`${formatLogLine(entry)}\n`);
}

function main(): void {
  let settings: ReturnType<typeof loadAgentSettings>;
  try {
    settings = loadAgentSettings(process.env);
  } catch (error) {
    writeLog({ level: "error", event: "settings-invalid", error: errorText(error) });
    // 78 (EX_CONFIG): a restart policy cannot fix bad settings, and the log says which.
    process.exit(78);
  }
  process.on("uncaughtException", (error) => {
    // Message handling catches its own errors; anything reaching here is a bug, and the restart policy recovers.
    writeLog({ level: "error", event: "crashed", error: errorText(error) });
    process.exit(70);
  });
  const agent = startSessionAgent({ ...settings, log: writeLog });
  const shutdown = () => {
    agent.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

main();
