/**
 * Figures, not pass/fail: what a broker login costs on a go-auth cache miss, and how much work and
 * memory the session agent spends per device message. Run with `npm run bench`.
 */
import { randomBytes } from "node:crypto";
import { SessionResponder } from "../lib/agent/responder.ts";
import { buildMessage } from "../lib/meross/envelope.ts";
import { Namespace } from "../lib/meross/messages/index.ts";
import { devicePublishTopic } from "../lib/meross/topics.ts";
import { hashPassword, PBKDF2_ITERATIONS, verifyPassword } from "../lib/store/hash.ts";

function timeIt(runs: number, work: () => void): number {
  const start = process.hrtime.bigint();
  for (let run = 0; run < runs; run++) work();
  return Number(process.hrtime.bigint() - start) / 1e6 / runs;
}

function loginCost(): void {
  const stored = hashPassword("0_14ef86a5626abee0feec7585d51feee5");
  const perVerify = timeIt(20, () => verifyPassword("0_14ef86a5626abee0feec7585d51feee5", stored));
  console.log(`PBKDF2-SHA512 x${PBKDF2_ITERATIONS} (one device login on a go-auth cache miss)`);
  console.log(`  ${perVerify.toFixed(1)} ms per verification on one core`);
  console.log(
    `  ${Math.round(1000 / perVerify)} logins/s per core; 100 devices reconnecting at once: ${((100 * perVerify) / 1000).toFixed(1)} s of CPU`,
  );
}

function agentThroughput(devices: number, rounds: number): void {
  const key = randomBytes(16).toString("hex");
  const responder = new SessionResponder({ key, timezone: "Europe/Berlin" });
  const uuids = Array.from({ length: devices }, () => randomBytes(16).toString("hex"));
  const messagesFor = (uuid: string) =>
    [
      { method: "PUSH" as const, namespace: Namespace.SystemClock, payload: { clock: { timestamp: 1 } } },
      { method: "SET" as const, namespace: Namespace.ControlBind, payload: { bind: {} } },
    ].map((request) =>
      Buffer.from(JSON.stringify(buildMessage({ ...request, key, from: devicePublishTopic(uuid) }))),
    );
  const traffic = uuids.map((uuid) => ({ topic: devicePublishTopic(uuid), payloads: messagesFor(uuid) }));

  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let handled = 0;
  let replies = 0;
  const start = process.hrtime.bigint();
  for (let round = 0; round < rounds; round++) {
    for (const { topic, payloads } of traffic) {
      for (const payload of payloads) {
        replies += responder.handle(topic, payload, new Date()).replies.length;
        handled++;
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  global.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  console.log(`Session agent: ${devices} devices x ${rounds} rounds of Clock + Bind (${handled} messages)`);
  console.log(`  ${Math.round(handled / seconds)} messages/s checked and answered (${replies} replies)`);
  console.log(
    `  heap retained: ${((heapAfter - heapBefore) / 1024).toFixed(0)} KiB, ${((heapAfter - heapBefore) / devices).toFixed(0)} bytes per device${global.gc ? "" : " (run with --expose-gc for a settled figure)"}`,
  );
}

loginCost();
agentThroughput(1000, 5);
