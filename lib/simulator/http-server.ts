import { createServer, type IncomingMessage, STATUS_CODES } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** What the firmware does with one POST /config: answer it, or drop the TCP connection (RST). */
export type HttpAnswer = { body: string; contentType: string } | "reset";

export interface ConfigServerOptions {
  host: string;
  port: number;
  /** "\n" reproduces the firmware that breaks strict HTTP parsers (protocol §1). */
  lineEnding: "\n" | "\r\n";
  /** The device's clock, for the `date` header (1970 while unset, as observed). */
  now: () => Date;
  handle: (body: string) => Promise<HttpAnswer>;
  /** A request the handler failed on; the client sees a reset connection. */
  onError: (error: unknown) => void;
}

export interface ConfigServer {
  port: number;
  close(): Promise<void>;
}

/** Far above any real request; the device's own buffers are a few kB. */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * The device's HTTP endpoint. Requests are parsed by node:http, but every response is written to the
 * socket by hand: Node cannot emit LF-only header lines, and the real server sends
 * `connection: close` and closes after each answer.
 */
export async function startConfigServer(options: ConfigServerOptions): Promise<ConfigServer> {
  const server = createServer((request) => {
    const { socket } = request;
    if (request.method !== "POST" || request.url?.split("?")[0] !== "/config") {
      writeRaw(socket, options, 404, "text/plain", "not found");
      return;
    }
    readBody(request)
      .then((body) => options.handle(body))
      .then((answer) => {
        if (answer === "reset") socket.resetAndDestroy();
        else writeRaw(socket, options, 200, answer.contentType, answer.body);
      })
      .catch((error) => {
        options.onError(error);
        socket.resetAndDestroy();
      });
  });
  server.on("clientError", (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`request body over ${MAX_BODY_BYTES} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function writeRaw(
  socket: Socket,
  options: ConfigServerOptions,
  status: number,
  contentType: string,
  body: string,
): void {
  const payload = Buffer.from(body, "utf8");
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    "server: HTTPD",
    `date: ${options.now().toUTCString()}`,
    `content-type: ${contentType}`,
    `content-length: ${payload.length}`,
    "connection: close",
    "",
    "",
  ].join(options.lineEnding);
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), payload]));
}
