import { readFile } from "node:fs/promises";
import tls from "node:tls";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MosquittoInstance, startMosquitto } from "../../lib/local-stack/mosquitto.ts";
import { type LocalCa, type LocalPki, makeLocalPki, makeOtherCa } from "../../lib/local-stack/pki.ts";
import { freePort } from "../../lib/local-stack/ports.ts";

const DNS_HOST = "broker.test";
const IP_HOST = "127.0.0.1";

interface Handshake {
  protocol: string | null;
  cipher: string;
  peer: tls.DetailedPeerCertificate;
  keyType: string | undefined;
}

/** One TLS handshake against 127.0.0.1:`port`; resolves with what was negotiated or rejects with the TLS error. */
function handshake(port: number, options: tls.ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ...options }, () => {
      const result = {
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        peer: socket.getPeerCertificate(true),
        keyType: socket.getPeerX509Certificate()?.publicKey.asymmetricKeyType,
      };
      socket.end();
      resolve(result);
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error("TLS handshake timed out")));
    socket.once("error", reject);
  });
}

// TLS 1.1 is only possible from the client side with OpenSSL's security level lowered.
const TLS11_CLIENT: tls.ConnectionOptions = {
  minVersion: "TLSv1.1",
  maxVersion: "TLSv1.1",
  ciphers: "DEFAULT@SECLEVEL=0",
};

let dnsPki: LocalPki;
let ipPki: LocalPki;
let otherCa: LocalCa;
let dnsBroker: MosquittoInstance;
let ipBroker: MosquittoInstance;

beforeAll(async () => {
  [dnsPki, ipPki, otherCa] = await Promise.all([
    makeLocalPki({ host: DNS_HOST }),
    makeLocalPki({ host: IP_HOST }),
    makeOtherCa(),
  ]);
  dnsBroker = await startMosquitto({ variant: "anonymous", pki: dnsPki });
  ipBroker = await startMosquitto({ variant: "anonymous", pki: ipPki });
});

afterAll(async () => {
  await dnsBroker?.stop();
  await ipBroker?.stop();
  await Promise.all([dnsPki?.cleanup(), ipPki?.cleanup(), otherCa?.cleanup()]);
});

describe("certificate verification", () => {
  it("an MQTT client trusting the CA, with servername = the configured DNS host, connects", async () => {
    const client = await mqtt.connectAsync(dnsBroker.url, {
      ca: dnsPki.caPem,
      servername: DNS_HOST,
      rejectUnauthorized: true,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    });
    expect(client.connected).toBe(true);
    await client.endAsync();
  });

  it("a host given as an IP address is verified against the certificate's IP SAN", async () => {
    const result = await handshake(ipBroker.port, { ca: ipPki.caPem, rejectUnauthorized: true });
    expect(result.peer.subject.CN).toBe(IP_HOST);
    expect(result.peer.subjectaltname).toBe(`IP Address:${IP_HOST}`);
  });

  it("a client trusting another CA is refused", async () => {
    await expect(
      handshake(dnsBroker.port, { ca: otherCa.caPem, servername: DNS_HOST }),
    ).rejects.toMatchObject({
      code: expect.stringMatching(
        /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/,
      ),
    });
    await expect(
      mqtt.connectAsync(dnsBroker.url, {
        ca: otherCa.caPem,
        servername: DNS_HOST,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      }),
    ).rejects.toThrow();
  });

  it("a client expecting another host name is refused", async () => {
    await expect(
      handshake(dnsBroker.port, { ca: dnsPki.caPem, servername: "other.test" }),
    ).rejects.toMatchObject({
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
    });
  });

  it("the chain is the server certificate for the host, issued by a CA with a different CN", async () => {
    const { peer } = await handshake(dnsBroker.port, { ca: dnsPki.caPem, servername: DNS_HOST });
    expect(peer.subject.CN).toBe(DNS_HOST);
    expect(peer.subjectaltname).toBe(`DNS:${DNS_HOST}`);
    expect(peer.issuer.CN).toBe(dnsPki.plan.ca.commonName);
    expect(peer.issuer.CN).not.toBe(DNS_HOST);
  });
});

describe("what Meross firmware needs", () => {
  it("the server key is RSA 2048", async () => {
    const result = await handshake(dnsBroker.port, { ca: dnsPki.caPem, servername: DNS_HOST });
    expect(result.keyType).toBe("rsa");
    expect(result.peer.bits).toBe(2048);
  });

  it("TLS 1.2 is accepted", async () => {
    const result = await handshake(dnsBroker.port, {
      ca: dnsPki.caPem,
      servername: DNS_HOST,
      minVersion: "TLSv1.2",
      maxVersion: "TLSv1.2",
    });
    expect(result.protocol).toBe("TLSv1.2");
  });

  it("an RSA key-exchange cipher (AES128-SHA) is offered for older chips", async () => {
    const result = await handshake(dnsBroker.port, {
      ca: dnsPki.caPem,
      servername: DNS_HOST,
      maxVersion: "TLSv1.2",
      ciphers: "AES128-SHA",
    });
    expect(result.cipher).toBe("AES128-SHA");
  });

  it("TLS 1.1 is refused by the broker (the same client completes TLS 1.1 with a server that allows it)", async () => {
    const [cert, key] = await Promise.all([readFile(dnsPki.certFile), readFile(dnsPki.keyFile)]);
    const permissive = tls.createServer(
      { cert, key, minVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" },
      (s) => s.end(),
    );
    const port = await freePort();
    await new Promise<void>((resolve) => permissive.listen(port, "127.0.0.1", resolve));
    try {
      const control = await handshake(port, { ...TLS11_CLIENT, ca: dnsPki.caPem, servername: DNS_HOST });
      expect(control.protocol).toBe("TLSv1.1");
    } finally {
      permissive.close();
    }

    // Alert 70 (protocol_version) comes from the server: the client offered TLS 1.1 and was told no.
    await expect(
      handshake(dnsBroker.port, { ...TLS11_CLIENT, ca: dnsPki.caPem, servername: DNS_HOST }),
    ).rejects.toMatchObject({ code: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" });
  });
});
