/**
 * The tables go-auth reads (through lib/store/queries.ts) and lib/store/database.ts writes. Runs on
 * MySQL 8.4 and MariaDB 10.11+ alike: nothing here or in the writers uses syntax only one of them
 * has. utf8mb4_bin makes usernames compare byte for byte, so a MAC in another case is another user.
 */
export const ACCOUNTS_TABLE = "accounts";
export const ACLS_TABLE = "acls";

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
  KEY accounts_kind (kind)
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
