/**
 * The tables go-auth reads (through lib/store/queries.ts) and lib/store/database.ts writes. Runs on
 * MySQL 8.4 and MariaDB 10.11+ alike: nothing here or in the writers uses syntax only one of them
 * has. utf8mb4_bin makes usernames compare byte for byte, so a MAC in another case is another user.
 */
import { STORED_HASH_PATTERN } from "./hash.ts";

export const ACCOUNTS_TABLE = "accounts";
export const ACLS_TABLE = "acls";

/** A CHECK constraint that later schema versions add to tables an older version created. */
export interface CheckConstraint {
  table: string;
  name: string;
  condition: string;
}

/**
 * go-auth panics (taking Mosquitto and every device down) or accepts any password on a malformed
 * password_hash, so the database itself refuses one, even from a hand-typed INSERT or UPDATE.
 * `REGEXP` is the operator both MariaDB and MySQL 8 have (MariaDB 10.11 lacks REGEXP_LIKE); the
 * column's utf8mb4_bin collation makes it case-sensitive on both. Their `$` anchor also matches
 * before a final line feed (PCRE2 and ICU alike, unlike JavaScript), hence the test of the last
 * character.
 */
export const PASSWORD_HASH_CHECK: CheckConstraint = {
  table: ACCOUNTS_TABLE,
  name: "accounts_password_hash_format",
  condition: `password_hash REGEXP '${STORED_HASH_PATTERN}' AND RIGHT(password_hash, 1) REGEXP '[A-Za-z0-9+/=]'`,
};

/** Constraints applySchema adds to an existing table that lacks them (CREATE TABLE has them already). */
export const ADDED_CHECKS: readonly CheckConstraint[] = [PASSWORD_HASH_CHECK];

export const SCHEMA_STATEMENTS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS ${ACCOUNTS_TABLE} (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT,
  username VARCHAR(191) NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  kind ENUM('device', 'controller', 'service') NOT NULL,
  name VARCHAR(191) NOT NULL,
  uuid CHAR(32) NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  UNIQUE KEY accounts_username (username),
  KEY accounts_kind (kind),
  CONSTRAINT ${PASSWORD_HASH_CHECK.name} CHECK (${PASSWORD_HASH_CHECK.condition})
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  `CREATE TABLE IF NOT EXISTS ${ACLS_TABLE} (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT,
  username VARCHAR(191) NOT NULL,
  topic VARCHAR(255) NOT NULL,
  rw TINYINT UNSIGNED NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY acls_username_topic (username, topic),
  CONSTRAINT acls_rw_bits CHECK (rw BETWEEN 1 AND 7),
  CONSTRAINT acls_account FOREIGN KEY (username) REFERENCES ${ACCOUNTS_TABLE} (username)
    ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
];

/** The same statements as one script, e.g. for a database container's init directory. */
export const SCHEMA_SQL = `${SCHEMA_STATEMENTS.join(";\n\n")};\n`;
