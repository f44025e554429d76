import type { Connection } from "mysql2/promise";
import type { Account } from "../store/accounts.ts";
import { applySchema, upsertAccount } from "../store/database.ts";
import { type MariaDbInstance, startMariaDb } from "./mariadb.ts";
import { type MosquittoInstance, startMosquitto } from "./mosquitto.ts";
import type { LocalPki } from "./pki.ts";

export interface MysqlVariant {
  db: MariaDbInstance;
  /** Open as root on the database, for the caller's own reads and writes. */
  conn: Connection;
  broker: MosquittoInstance;
  stop(): Promise<void>;
}

/**
 * What `pulumi up` leaves for the mysql variant: MariaDB with the schema and these accounts, and
 * Mosquitto checking every login and topic against it through the go-auth plugin.
 */
export async function startMysqlVariant(
  pki: LocalPki,
  accounts: readonly Account[],
  options: { debugLog?: boolean } = {},
): Promise<MysqlVariant> {
  const db = await startMariaDb();
  let conn: Connection | undefined;
  try {
    conn = await db.connect();
    await applySchema(conn);
    for (const account of accounts) await upsertAccount(conn, account);
    const broker = await startMosquitto({ variant: "mysql", pki, mysql: db, ...options });
    const open = conn;
    return {
      db,
      conn: open,
      broker,
      async stop() {
        await broker.stop();
        await open.end();
        await db.stop();
      },
    };
  } catch (error) {
    await conn?.end();
    await db.stop();
    throw error;
  }
}
