import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { type ProgramRun, runProgram } from "./harness.ts";

/** A bad config stops the program before it registers anything. */

let run: ProgramRun;

beforeAll(async () => {
  run = await runProgram(
    {
      brokerHost: "192.168.1.300",
      userId: "1234",
      deviceKey: "short-secret",
      devices: [{ name: "kitchen", mac: "not-a-mac", uuid: "1".repeat(32) }],
    },
    { caPem: "", certPem: "" },
  );
});

describe("a config error", () => {
  it("fails the program with a clean error naming each bad key and value", () => {
    expect(run.error).toBeInstanceOf(pulumi.RunError);
    const message = (run.error as Error).message;
    expect(message).toContain('brokerHost: "192.168.1.300" must be an IPv4 address or a DNS name');
    expect(message).toContain('devices[0].mac: "not-a-mac" must be a MAC address');
    expect(message).toContain("deviceKey: (secret value not shown) must be at least 16 characters");
    expect(message).not.toContain("short-secret");
  });

  it("registers no resource at all", () => {
    expect(run.resources).toEqual([]);
  });
});
