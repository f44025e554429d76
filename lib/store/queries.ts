import { ACCOUNTS_TABLE, ACLS_TABLE } from "./schema.ts";

/**
 * The queries go-auth's MySQL backend runs, with `?` placeholders it binds (never string-built):
 * `user` gets the username and returns the stored hash; `acl` gets the username and Mosquitto's
 * access bit (1 read, 2 write, 4 subscribe) and returns the topic patterns that grant it. There is
 * no superuser query: go-auth then treats nobody as superuser. Each is one line, because
 * mosquitto.conf options are.
 */
export interface GoAuthQueries {
  user: string;
  superuser?: string;
  acl: string;
}

export const GO_AUTH_QUERIES: GoAuthQueries = {
  user: `SELECT password_hash FROM ${ACCOUNTS_TABLE} WHERE username = ? LIMIT 1`,
  // A bitmask test is exact; `rw >= ?` would let a write-only row pass a read check.
  acl: `SELECT topic FROM ${ACLS_TABLE} WHERE username = ? AND (rw & ?) <> 0`,
};
