import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The shared known-answer file, read where CI and developers both have it: ../shared beside the repo. */
const VECTORS_PATH = fileURLToPath(
  new URL("../../../shared/reference/meross-test-vectors.json", import.meta.url),
);

export interface TestVectors {
  sign: { messageId: string; key: string; timestamp: number; sign: string }[];
  mqttPassword: { macAddress: string; key: string; userId: string; password: string }[];
  wifixPassword: {
    type: string;
    uuid: string;
    macAddress: string;
    aesKeyAscii: string;
    password: string;
    encrypted: string;
  }[];
  lanEncryption: {
    uuid: string;
    macAddress: string;
    key: string;
    keySource: string;
    aesKeyAscii: string;
    plaintext: string;
    encrypted: string;
  }[];
}

export const vectors: TestVectors = JSON.parse(readFileSync(VECTORS_PATH, "utf8"));
