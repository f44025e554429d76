import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ProtocolError } from "../../lib/meross/envelope.ts";
import { DeviceHttpError, DeviceUnreachableError, HttpTransport } from "../../lib/meross/http-transport.ts";
import { decryptLanBody, encryptLanBody } from "../../lib/meross/lan-crypto.ts";

interface RawRequest {
  requestLine: string;
  headers: Record<string, string>;
  body: string;
}

/** A bare TCP server, so replies can be as malformed or as slow as real firmware makes them. */
async function startRawServer(onRequest: (request: RawRequest, socket: Socket) => void): Promise<{
  port: number;
  connections: number[];
  server: Server;
}> {
  const connections: number[] = [];
  const server = createServer((socket) => {
    connections.push(Date.now());
    let buffered = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      const headerEnd = buffered.indexOf("\r\n\r\n");
      if (headerEnd < 0) return;
      const [requestLine = "", ...lines] = buffered.subarray(0, headerEnd).toString("latin1").split("\r\n");
      const headers = Object.fromEntries(
        lines.map((line) => [
          line.slice(0, line.indexOf(":")).toLowerCase(),
          line.slice(line.indexOf(":") + 1).trim(),
        ]),
      );
      const body = buffered.subarray(headerEnd + 4);
      if (body.length < Number(headers["content-length"] ?? 0)) return;
      onRequest({ requestLine, headers, body: body.toString("utf8") }, socket);
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push(server);
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the test server has no TCP port");
  return { port: address.port, connections, server };
}

/** The reply quirks seen on real devices: LF-only header lines, HTTPD server, connection close. */
function lfOnlyReply(socket: Socket, body: string, status = "200 OK"): void {
  socket.end(
    `HTTP/1.1 ${status}\nserver: HTTPD\ncontent-type: application/json;charset=UTF-8\n` +
      `connection: close\ndate: Thu, 01 Jan 1970 00:07:28 GMT\n\n${body}`,
  );
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
        }),
    ),
  );
});

async function closedPort(): Promise<number> {
  const { port, server } = await startRawServer(() => undefined);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("HttpTransport against raw sockets on 127.0.0.1", () => {
  it("reads a reply whose header lines end in LF only, and sends what devices expect", async () => {
    const seen: RawRequest[] = [];
    const { port } = await startRawServer((request, socket) => {
      seen.push(request);
      lfOnlyReply(socket, '{"header":{},"payload":{"ok":1}}');
    });
    const transport = new HttpTransport({ ip: "127.0.0.1", port });
    expect(transport.url).toBe(`http://127.0.0.1:${port}/config`);

    await expect(transport.send('{"header":{},"payload":{}}')).resolves.toBe(
      '{"header":{},"payload":{"ok":1}}',
    );
    expect(seen[0]?.requestLine).toBe("POST /config HTTP/1.1");
    expect(seen[0]?.headers).toMatchObject({
      "content-type": "application/json; charset=utf-8",
      connection: "close",
    });
    expect(seen[0]?.body).toBe('{"header":{},"payload":{}}');
  });

  it("times out a stalled reply and retries with a doubled timeout until one answers", async () => {
    const { port, connections } = await startRawServer((_request, socket) => {
      if (connections.length >= 3) lfOnlyReply(socket, "{}");
    });
    const transport = new HttpTransport({ ip: "127.0.0.1", port, timeoutMs: 150, attempts: 3 });

    await expect(transport.send("{}")).resolves.toBe("{}");
    expect(connections).toHaveLength(3);
    const [first = 0, second = 0, third = 0] = connections;
    expect(second - first).toBeGreaterThanOrEqual(140);
    expect(third - second).toBeGreaterThanOrEqual(290);
  });

  it("gives up on a device that never answers with DeviceUnreachableError and advice", async () => {
    const { port, connections } = await startRawServer(() => undefined);
    const transport = new HttpTransport({ ip: "127.0.0.1", port, timeoutMs: 80, attempts: 2 });

    const error = await transport.send("{}").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DeviceUnreachableError);
    expect(error).toMatchObject({ code: "EUNREACHABLE" });
    expect((error as Error).message).toMatch(/after 2 attempt\(s\) \(no reply within 160 ms\)/);
    expect((error as Error).message).toMatch(/Meross_\*/);
    expect((error as Error).message).toMatch(/--ip/);
    expect(connections).toHaveLength(2);
  });

  it("reports a refused connection as unreachable after every attempt", async () => {
    const port = await closedPort();
    const transport = new HttpTransport({ ip: "127.0.0.1", port, attempts: 3, retryDelayMs: 10 });
    await expect(transport.send("{}")).rejects.toThrow(/after 3 attempt\(s\) \(connection refused\)/);
  });

  it("times out a reply that stalls after its headers", async () => {
    const { port, connections } = await startRawServer((_request, socket) => {
      socket.write("HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: 100\n\n{");
    });
    const transport = new HttpTransport({ ip: "127.0.0.1", port, timeoutMs: 80, attempts: 2 });
    await expect(transport.send("{}")).rejects.toBeInstanceOf(DeviceUnreachableError);
    expect(connections).toHaveLength(2);
  });

  it("reports a reply that is not HTTP at all as a ProtocolError, without retrying", async () => {
    const { port, connections } = await startRawServer((_request, socket) =>
      socket.end("SSH-2.0-OpenSSH\r\n"),
    );
    const transport = new HttpTransport({ ip: "127.0.0.1", port, attempts: 3 });
    await expect(transport.send("{}")).rejects.toThrow(ProtocolError);
    await expect(transport.send("{}")).rejects.toThrow(/not HTTP \(HPE_/);
    expect(connections).toHaveLength(2);
  });

  it("turns HTTP 502 into a clear DeviceHttpError without retrying", async () => {
    const { port, connections } = await startRawServer((_request, socket) => {
      lfOnlyReply(socket, "", "502 Bad Gateway");
    });
    const transport = new HttpTransport({ ip: "127.0.0.1", port, attempts: 3 });

    const error = await transport.send("{}").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DeviceHttpError);
    expect(error).toMatchObject({ status: 502 });
    expect((error as Error).message).toMatch(/answered HTTP 502 Bad Gateway/);
    expect(connections).toHaveLength(1);
  });

  it("never lets two requests to one device overlap, even from two transports", async () => {
    let active = 0;
    let mostActive = 0;
    const order: string[] = [];
    const { port } = await startRawServer((request, socket) => {
      active++;
      mostActive = Math.max(mostActive, active);
      order.push(request.body);
      setTimeout(() => {
        active--;
        lfOnlyReply(socket, request.body.toUpperCase());
      }, 40);
    });
    const first = new HttpTransport({ ip: "127.0.0.1", port });
    const second = new HttpTransport({ ip: "127.0.0.1", port });
    const bodies = ["a", "b", "c", "d", "e", "f"];

    const replies = await Promise.all(bodies.map((body, i) => (i % 2 ? second : first).send(body)));
    expect(mostActive).toBe(1);
    expect(order).toEqual(bodies);
    expect(replies).toEqual(bodies.map((body) => body.toUpperCase()));
  });

  it("keeps the queue moving after a failed request", async () => {
    const { port } = await startRawServer((request, socket) => {
      if (request.body === "fail") lfOnlyReply(socket, "", "500 Internal Server Error");
      else lfOnlyReply(socket, "ok");
    });
    const transport = new HttpTransport({ ip: "127.0.0.1", port });
    const [failed, succeeded] = await Promise.allSettled([transport.send("fail"), transport.send("next")]);
    expect(failed.status).toBe("rejected");
    expect(succeeded).toEqual({ status: "fulfilled", value: "ok" });
  });

  it("encrypts the body as base64 text/plain and decrypts the reply once keys are exchanged", async () => {
    const key = randomBytes(16).toString("hex");
    const aesKey = Buffer.from(key, "ascii");
    const seen: RawRequest[] = [];
    const { port } = await startRawServer((request, socket) => {
      seen.push(request);
      const json = decryptLanBody(request.body, aesKey);
      lfOnlyReply(socket, encryptLanBody(json.replace("GET", "GETACK"), aesKey));
    });
    const transport = new HttpTransport({ ip: "127.0.0.1", port });

    const reply = await transport.send('{"method":"GET"}', { encryptionKey: aesKey });
    expect(reply).toBe('{"method":"GETACK"}');
    expect(seen[0]?.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(seen[0]?.body).toBe(encryptLanBody('{"method":"GET"}', aesKey));
  });

  it("accepts a plain JSON reply to an encrypted request", async () => {
    const { port } = await startRawServer((_request, socket) => lfOnlyReply(socket, '{"plain":true}'));
    const transport = new HttpTransport({ ip: "127.0.0.1", port });
    await expect(transport.send("{}", { encryptionKey: randomBytes(32) })).resolves.toBe('{"plain":true}');
  });

  it("refuses a malformed address before connecting", () => {
    expect(() => new HttpTransport({ ip: "10.10.10.1/config" })).toThrow(/device ip "10.10.10.1\/config"/);
    expect(() => new HttpTransport({ ip: "127.0.0.1", port: 70000 })).toThrow(/device port 70000/);
  });
});
