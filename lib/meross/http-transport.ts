import { request as httpRequest } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { ExitCategory } from "../exit-category.ts";
import { type MerossMessage, ProtocolError, parseMessage } from "./envelope.ts";
import { checkedInput } from "./fields.ts";
import { hostSchema, portSchema } from "./identifiers.ts";
import { decryptLanBody, encryptLanBody } from "./lan-crypto.ts";
import type { DeviceTransport } from "./request.ts";

/** The device did not answer at all: wrong network, wrong address, or it is rebooting. */
export class DeviceUnreachableError extends Error {
  readonly exitCategory: ExitCategory = "unreachable";
  readonly code = "EUNREACHABLE";
  constructor(url: string, attempts: number, cause: unknown) {
    const reason = describeNetworkError(cause);
    super(
      `no answer from the device at ${url} after ${attempts} attempt(s) (${reason}). ` +
        "Join the device's Meross_* Wi-Fi (pairing mode: hold its button ~5 s until the LED alternates), " +
        "or check --ip if it is already on your LAN.",
      { cause },
    );
    this.name = "DeviceUnreachableError";
  }
}

/** The device answered, but not with 200: it is there, so retrying blindly would not help. */
export class DeviceHttpError extends Error {
  readonly exitCategory: ExitCategory = "deviceError";
  readonly status: number;
  constructor(url: string, status: number, statusText: string) {
    const reason = `${status} ${statusText}`.trim();
    super(`the device at ${url} answered HTTP ${reason}; try again in a few seconds`);
    this.name = "DeviceHttpError";
    this.status = status;
  }
}

class AttemptTimeout extends Error {
  readonly code = "ETIMEDOUT";
  constructor(ms: number) {
    super(`no reply within ${ms} ms`);
  }
}

function describeNetworkError(error: unknown): string {
  const code = (error as { code?: string })?.code;
  if (code === "ECONNRESET")
    return "the connection was reset; newer firmware does this to unencrypted requests";
  if (code === "ECONNREFUSED") return "connection refused";
  if (error instanceof AttemptTimeout) return error.message;
  return code ?? (error instanceof Error ? error.message : String(error));
}

/** llhttp's codes (HPE_*): the device answered, but with something that is not HTTP even to a lenient parser. */
function asParseError(error: unknown, url: string): ProtocolError | undefined {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string" || !code.startsWith("HPE_")) return undefined;
  return new ProtocolError(`the device at ${url} sent a reply that is not HTTP (${code})`);
}

/** Errors after which the same request may simply be sent again. */
function isRetryable(error: unknown): boolean {
  return !(error instanceof DeviceHttpError || error instanceof ProtocolError);
}

export interface HttpTransportOptions {
  ip: string;
  port?: number;
  /** First attempt's connect+response limit; each retry doubles it (meross_lan does the same). */
  timeoutMs?: number;
  attempts?: number;
  /** Pause before retrying a failure that was not a timeout, such as a refused connection. */
  retryDelayMs?: number;
}

export interface SendOptions {
  /** Once keys are exchanged: the body goes AES-encrypted as base64 text/plain (§2.6). */
  encryptionKey?: Buffer;
}

const DEVICE_PATH = "/config";
const MAX_REPLY_BYTES = 1024 * 1024;

/**
 * Devices serve one request at a time (meross_lan `limit_per_host=1`), whoever sends it, so the
 * queue is per device address rather than per transport object.
 */
const deviceQueues = new Map<string, Promise<unknown>>();

function enqueue<T>(device: string, task: () => Promise<T>): Promise<T> {
  const previous = deviceQueues.get(device) ?? Promise.resolve();
  const run = previous.then(task, task);
  const settled = run.catch(() => undefined);
  deviceQueues.set(device, settled);
  void settled.then(() => {
    if (deviceQueues.get(device) === settled) deviceQueues.delete(device);
  });
  return run;
}

/** A device's local HTTP API (protocol §1): one POST per request, retried while the device does not answer. */
export class HttpTransport implements DeviceTransport<SendOptions> {
  readonly url: string;
  private readonly host: string;
  private readonly port: number;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly retryDelayMs: number;

  constructor(options: HttpTransportOptions) {
    this.host = checkedInput(hostSchema, options.ip, "device ip");
    this.port = checkedInput(portSchema, options.port ?? 80, "device port");
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.attempts = Math.max(1, options.attempts ?? 3);
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.url = `http://${this.host}${this.port === 80 ? "" : `:${this.port}`}${DEVICE_PATH}`;
  }

  /** Devices put their URL in `from` when asked over HTTP, and answer in the HTTP response anyway. */
  get replyAddress(): string {
    return this.url;
  }

  /** POSTs `request` (encrypted when `encryptionKey` is given) and parses the answer. */
  async exchange(request: MerossMessage, options: SendOptions = {}): Promise<MerossMessage> {
    const reply = await this.send(JSON.stringify(request), options);
    return parseReply(reply, request.header.namespace, options.encryptionKey !== undefined);
  }

  /** POSTs one message and returns the reply text (decrypted when `encryptionKey` is given). */
  send(json: string, options: SendOptions = {}): Promise<string> {
    return enqueue(`${this.host}:${this.port}`, () => this.sendWithRetries(json, options));
  }

  private async sendWithRetries(json: string, { encryptionKey }: SendOptions): Promise<string> {
    const body = encryptionKey ? encryptLanBody(json, encryptionKey) : json;
    let lastError: unknown;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      if (attempt > 0 && !(lastError instanceof AttemptTimeout)) await sleep(this.retryDelayMs);
      try {
        const reply = await this.post(body, encryptionKey !== undefined, this.timeoutMs * 2 ** attempt);
        return encryptionKey ? readEncryptedReply(reply, encryptionKey) : reply;
      } catch (error) {
        if (!isRetryable(error)) throw error;
        lastError = error;
      }
    }
    throw new DeviceUnreachableError(this.url, this.attempts, lastError);
  }

  private post(body: string, encrypted: boolean, timeoutMs: number): Promise<string> {
    const contentType = encrypted ? "text/plain; charset=utf-8" : "application/json; charset=utf-8";
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        {
          host: this.host,
          port: this.port,
          path: DEVICE_PATH,
          method: "POST",
          agent: false,
          // Some firmware ends header lines with a bare LF, which Node's strict parser refuses (§1).
          insecureHTTPParser: true,
          headers: {
            "Content-Type": contentType,
            Accept: encrypted ? "text/plain" : "application/json",
            "Content-Length": Buffer.byteLength(body),
            Connection: "close",
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_REPLY_BYTES) {
              request.destroy(
                new ProtocolError(`the reply from ${this.url} is larger than ${MAX_REPLY_BYTES} bytes`),
              );
            } else chunks.push(chunk);
          });
          response.on("end", () => {
            clearTimeout(timer);
            const status = response.statusCode ?? 0;
            if (status !== 200) reject(new DeviceHttpError(this.url, status, response.statusMessage ?? ""));
            else resolve(Buffer.concat(chunks).toString("utf8"));
          });
          response.on("error", reject);
        },
      );
      const timer = setTimeout(() => request.destroy(new AttemptTimeout(timeoutMs)), timeoutMs);
      request.on("error", (error) => {
        clearTimeout(timer);
        reject(asParseError(error, this.url) ?? error);
      });
      request.end(body);
    });
  }
}

/** Devices answer an encrypted request encrypted, but an error may come back as plain JSON. */
function readEncryptedReply(reply: string, key: Buffer): string {
  return reply.trimStart().startsWith("{") ? reply : decryptLanBody(reply, key);
}

function parseReply(text: string, namespace: string, encrypted: boolean): MerossMessage {
  try {
    return parseMessage(text);
  } catch (error) {
    if (!encrypted || !(error instanceof ProtocolError)) throw error;
    throw new ProtocolError(
      `the encrypted reply to ${namespace} did not decrypt to a Meross message: ` +
        "the device and we hold different session keys. Run the key exchange again (or restart provisioning).",
    );
  }
}
