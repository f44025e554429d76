import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import mysql, { type Connection } from "mysql2/promise";
import { freePort } from "./ports.ts";
import { type ServerProcess, spawnServer } from "./processes.ts";
import { findSystemBinary, requireInstalled } from "./requirements.ts";

const run = promisify(execFile);
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;

/** A private MariaDB server on 127.0.0.1, in its own temporary data directory. */
export interface MariaDbInstance {
  host: "127.0.0.1";
  port: number;
  user: "root";
  password: string;
  database: string;
  /** Its private directory (data, socket), removed by stop(). */
  dir: string;
  /** A new connection to `database` as root over TCP; the caller ends it. */
  connect(): Promise<Connection>;
  /** mariadbd's process id (of the first start). */
  pid: number;
  output(): string;
  /** Stops the server and keeps its data, e.g. to start something before the database is up. */
  halt(): Promise<void>;
  /** Starts a halted server again, same data and port; resolves once it accepts connections. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

function mariadbBinary(name: string): string {
  requireInstalled("mariadb");
  return findSystemBinary(name) as string;
}

export async function startMariaDb(options: { database?: string } = {}): Promise<MariaDbInstance> {
  const installDb = mariadbBinary("mariadb-install-db");
  const serverBinary = mariadbBinary("mariadbd");
  const database = options.database ?? "meross";
  const dir = await mkdtemp(join(tmpdir(), "meross-mariadb-"));
  const dataDir = join(dir, "data");
  const socketPath = join(dir, "mysqld.sock");
  // Each instance keeps its temporary tables in its own folder: in the shared /tmp, two instances
  // started at once (parallel test files, the demo beside a test run) can pick the same
  // #sql-temptable name and one fails to start with "Error on delete of '/tmp/#sql-temptable…'".
  const tmpDir = join(dir, "tmp");
  const asRoot = process.getuid?.() === 0;
  const userFlag = asRoot ? ["--user=root"] : [];
  const password = randomBytes(12).toString("hex");
  let server: ServerProcess | undefined;
  let earlierOutput = "";

  const stop = async (): Promise<void> => {
    await server?.stop(STOP_TIMEOUT_MS);
    await rm(dir, { recursive: true, force: true });
  };
  const launch = (port: number) => {
    server = spawnServer(serverBinary, [
      "--no-defaults",
      `--datadir=${dataDir}`,
      `--socket=${socketPath}`,
      `--tmpdir=${tmpDir}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      "--skip-name-resolve",
      `--pid-file=${join(dir, "mariadbd.pid")}`,
      "--innodb-buffer-pool-size=32M",
      ...userFlag,
    ]);
    return server;
  };

  try {
    await mkdir(tmpDir);
    try {
      await run(installDb, [
        "--no-defaults",
        `--datadir=${dataDir}`,
        `--tmpdir=${tmpDir}`,
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--skip-name-resolve",
        ...userFlag,
      ]);
    } catch (error) {
      throw new Error(`mariadb-install-db failed: ${(error as { stderr?: string }).stderr ?? error}`);
    }

    const port = await freePort();
    const running = launch(port);

    const admin = await waitForSocket(socketPath, running);
    try {
      // root@localhost serves the socket; tests and the broker come over TCP as root@127.0.0.1.
      await admin.query("ALTER USER 'root'@'localhost' IDENTIFIED BY ?", [password]);
      await admin.query("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'");
      await admin.query("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY ?", [password]);
      await admin.query("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION");
      await admin.query(
        `CREATE DATABASE ${mysql.escapeId(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
      );
    } finally {
      await admin.end();
    }

    return {
      host: "127.0.0.1",
      port,
      user: "root",
      password,
      database,
      dir,
      connect: () => mysql.createConnection({ host: "127.0.0.1", port, user: "root", password, database }),
      pid: running.child.pid ?? -1,
      output: () => earlierOutput + (server?.output() ?? ""),
      async halt() {
        await server?.stop(STOP_TIMEOUT_MS);
        earlierOutput += server?.output() ?? "";
      },
      async resume() {
        // root@localhost has the password since the first start.
        const admin = await waitForSocket(socketPath, launch(port), password);
        await admin.end();
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw new Error(
      `could not start a private MariaDB: ${(error as Error).message}\n--- mariadbd output ---\n${server?.output() ?? ""}`,
    );
  }
}

async function waitForSocket(
  socketPath: string,
  server: ServerProcess,
  password?: string,
): Promise<Connection> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const exited = server.exitStatus();
    if (exited !== undefined) {
      throw new Error(`mariadbd exited (${exited}) before accepting connections`);
    }
    if (existsSync(socketPath)) {
      try {
        return await mysql.createConnection({ socketPath, user: "root", ...(password ? { password } : {}) });
      } catch {
        // Socket file exists before the server accepts; retry.
      }
    }
    if (Date.now() > deadline) {
      throw new Error(
        `mariadbd did not accept connections within ${START_TIMEOUT_MS / 1000} s\n${server.output()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
