import { buildMessage, checkReply, type MerossMessage, type RequestOptions } from "./envelope.ts";

/**
 * How a request reaches a device and its answer comes back: HTTP on the LAN
 * (./http-transport.ts) or the broker (lib/mqtt/device-transport.ts). `Options` is what one
 * exchange needs beyond the message (an encryption key over HTTP, the device and a timeout on MQTT).
 */
export interface DeviceTransport<Options> {
  /** Goes into every request's `from`: where the device answers (its URL over HTTP, a reply topic on MQTT). */
  readonly replyAddress: string;
  /**
   * Delivers `request` and resolves with the device's answer carrying its messageId, unchecked.
   * Not reaching the device, and no answer in time, reject with the transport's own error.
   */
  exchange(request: MerossMessage, options: Options): Promise<MerossMessage>;
}

export type RequestContent = Pick<RequestOptions, "method" | "namespace" | "payload">;

export interface RequestSigning {
  /** What the request is signed with: the key the device checks signatures against. */
  key: string;
  /** Also require the answer to be signed with `key` (on a broker, where others may write to the reply topic). */
  verifyReply?: boolean;
}

/**
 * The one request/response path (protocol §2): a signed envelope whose `from` is the transport's
 * reply address, sent over `transport`, and its answer checked (same messageId, paired method,
 * signature if asked); an ERROR answer becomes a DeviceError (WrongKeyError for 5001) with the
 * device's own text.
 */
export async function requestOver<Options>(
  transport: DeviceTransport<Options>,
  content: RequestContent,
  signing: RequestSigning,
  options: Options,
): Promise<MerossMessage> {
  const request = buildMessage({ ...content, key: signing.key, from: transport.replyAddress });
  const reply = await transport.exchange(request, options);
  return checkReply(request, reply, signing.verifyReply ? signing.key : undefined);
}
