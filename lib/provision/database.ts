import mysql, { type Connection } from "mysql2/promise";
import type { ExitCategory } from "../exit-category.ts";
import type { MysqlSettings } from "../stack/outputs.ts";

export class DatabaseUnavailableError extends Error {
  readonly exitCategory: ExitCategory = "stackOrDatabase";
  readonly code = "EDATABASE";
  constructor(settings: MysqlSettings, cause: unknown) {
    const reason =
      (cause as { code?: string; message?: string })?.code ?? (cause as Error)?.message ?? String(cause);
    super(
      `cannot open MySQL at ${settings.host}:${settings.port} as ${settings.user} (database ${settings.database}): ${reason}. ` +
        "Is the stack up (`pulumi up`) and is its MySQL port published on this machine? " +
        "Without the stack, pass --mysql mysql://user:password@host:port/database.",
      { cause },
    );
    this.name = "DatabaseUnavailableError";
  }
}

/** One connection for a script run; opened before anything is sent to a device, so a dead database changes nothing. */
export async function connectDatabase(settings: MysqlSettings): Promise<Connection> {
  try {
    const conn = await mysql.createConnection({
      host: settings.host,
      port: settings.port,
      user: settings.user,
      password: settings.password,
      database: settings.database,
      connectTimeout: 10_000,
    });
    await conn.ping();
    return conn;
  } catch (error) {
    throw new DatabaseUnavailableError(settings, error);
  }
}
