import { type MerossMessage, parseMessage } from "../meross/envelope.ts";
import { decryptLanBody, encryptLanBody, lanAesKey } from "../meross/lan-crypto.ts";
import { Namespace, PLAINTEXT_NAMESPACES } from "../meross/messages/index.ts";
import type { Firmware } from "./firmware.ts";
import type { HttpAnswer } from "./http-server.ts";

export interface HttpExchange {
  method?: string;
  namespace?: string;
  encrypted: boolean;
  /** Set when the device hung up instead of answering, with why. */
  refused?: string;
  replyMethod?: string;
}

/**
 * One POST /config as the firmware handles it. Encrypting firmware resets the TCP connection on a
 * plaintext request rather than answering an error: ML's emulator (`emulator/mixins/__init__.py`,
 * "when a non encrypted request is received the device actually resets the TCP connection") models
 * the device that way. Which namespaces pass in plaintext depends on where the device is
 * (`plaintextAllowed`).
 */
export function answerLanRequest(
  firmware: Firmware,
  body: string,
  report: (exchange: HttpExchange) => void,
): HttpAnswer {
  const { encryptsLan } = firmware.identity.profile;
  const isPlaintext = body.trimStart().startsWith("{");
  let request: MerossMessage;
  let key: Buffer | undefined;
  try {
    if (isPlaintext) {
      request = parseMessage(body);
    } else {
      if (!encryptsLan) throw new Error("this firmware does not decrypt request bodies");
      ({ request, key } = decrypt(firmware, body));
    }
  } catch (error) {
    report({ encrypted: !isPlaintext, refused: (error as Error).message });
    return "reset";
  }
  const { method, namespace } = request.header;
  if (encryptsLan && isPlaintext && !plaintextAllowed(firmware, namespace)) {
    report({ method, namespace, encrypted: false, refused: "plaintext request to an encrypting device" });
    return "reset";
  }
  const reply = firmware.handle(request);
  report({ method, namespace, encrypted: key !== undefined, replyMethod: reply.header.method });
  const json = JSON.stringify(reply);
  return key
    ? { body: encryptLanBody(json, key), contentType: "text/plain;charset=UTF-8" }
    : { body: json, contentType: "application/json;charset=UTF-8" };
}

/**
 * In pairing mode BS2's five plaintext namespaces pass (BS2 sets real devices up that way). Once the
 * device is on a LAN, only System.Ability does: that is the device meross_lan meets (its emulator
 * exempts System.Ability alone, and its config flow reads System.All in plaintext only to fall back
 * to the LAN key when that fails; meross_lan issue #456, a paired mss110 on fw 7.3.x).
 */
function plaintextAllowed(firmware: Firmware, namespace: string): boolean {
  return firmware.state.mode === "pairing"
    ? PLAINTEXT_NAMESPACES.has(namespace)
    : namespace === Namespace.SystemAbility;
}

/**
 * The ECDHE session key when one was agreed; otherwise the static key ML derives from the device
 * identity and key (protocol §2.6). Which of the two real firmware takes without an exchange is an
 * open question (§9.1), so the simulator takes either.
 */
function decrypt(firmware: Firmware, body: string): { request: MerossMessage; key: Buffer } {
  const { uuid, macAddress } = firmware.identity;
  const candidates = [
    firmware.state.lanSessionKey,
    lanAesKey({ uuid, macAddress, key: firmware.signingKey }),
  ].filter((key): key is Buffer => key !== undefined);
  let lastError: unknown;
  for (const key of candidates) {
    try {
      return { request: parseMessage(decryptLanBody(body, key)), key };
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(
    `the body does not decrypt to a Meross message with the LAN key: ${(lastError as Error).message}`,
  );
}
