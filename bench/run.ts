/**
 * Figures, not pass/fail: what a broker login costs on a go-auth cache miss, and how much work and
 * memory the session agent spends per device message. Run with `npm run bench`.
 */
import { randomBytes } from "node:crypto";
import { SessionResponder } from "../lib/agent/responder.ts";
import { buildMessage } from "../lib/meross/envelope.ts";
import { Namespace } from "../lib/meross/messages/index.ts";
import { devicePublishTopic } from "../lib/meross/topics.ts";
import { CHOSEN_SECRET_ITERATIONS, GENERATED_SECRET_ITERATIONS } from "../lib/store/accounts.ts";
import { hashPassword, verifyPassword } from "../lib/store/hash.ts";

function timeIt(runs: number, work: () => void): number {
  const start = process.hrtime.bigint();
  for (let run = 0; run < runs; run++) work();
  return Number(process.hrtime.bigint() - start) / 1e6 / runs;
}

function loginCost(): void {
  const password = "0_14ef86a5626abee0feec7585d51feee5";
  for (const [secret, iterations] of [
    ["generated key or password", GENERATED_SECRET_ITERATIONS],
    ["user-chosen device key", CHOSEN_SECRET_ITERATIONS],
  ] as const) {
    const stored = hashPassword(password, { iterations });
    const perVerify = timeIt(Math.max(5, Math.round(2_000_000 / iterations)), () =>
      verifyPassword(password, stored),
    );
    console.log(`PBKDF2-SHA512 x${iterations} (one login on a go-auth cache miss, ${secret})`);
    console.log(`  ${perVerify.toFixed(2)} ms per verification on one core`);
    console.log(
      `  ${Math.round(1000 / perVerify)} logins/s per core; 100 devices reconnecting at once: ${((100 * perVerify) / 1000).toFixed(1)} s of CPU`,
    );
  }
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
