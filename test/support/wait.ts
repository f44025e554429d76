import { setTimeout as sleep } from "node:timers/promises";

/**
 * Polls `probe` every 50 ms until it returns something truthy, and returns that. After `timeoutMs`
 * it fails naming `what`, with `context()` (say, a process's output) to show why.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | null | false,
  timeoutMs = 15_000,
  context: () => string = () => "",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) {
      const detail = context();
      throw new Error(`timed out waiting for ${what}${detail ? `\n${detail}` : ""}`);
    }
    await sleep(50);
  }
}
