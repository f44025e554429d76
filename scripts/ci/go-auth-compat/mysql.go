package main

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The MySQL backend of go-auth 3.5.0 (backends/mysql.go NewMysql, GetUser, GetSuperuser, CheckAcl)
// with the database opening of backends/db.go OpenDatabase, over the same driver version.
type mysqlBackend struct {
	db                                  *sql.DB
	userQuery, superuserQuery, aclQuery string
}

func newMysqlBackend(options map[string]string) (*mysqlBackend, error) {
	var missing []string
	required := func(key string) string {
		value, ok := options[key]
		if !ok {
			missing = append(missing, key)
		}
		return value
	}
	config := mysql.NewConfig()
	config.DBName = required("mysql_dbname")
	config.User = required("mysql_user")
	config.Passwd = required("mysql_password")
	backend := &mysqlBackend{
		userQuery:      required("mysql_userquery"),
		superuserQuery: options["mysql_superquery"],
		aclQuery:       options["mysql_aclquery"],
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("MySql backend error: missing options: %s", strings.Join(missing, " "))
	}
	host, port := optionOr(options, "mysql_host", "localhost"), optionOr(options, "mysql_port", "3306")
	config.Net = "tcp"
	config.Addr = net.JoinHostPort(host, port)
	config.AllowNativePasswords = options["mysql_allow_native_passwords"] == "true"

	connectTries := 0
	if tries, ok := options["mysql_connect_tries"]; ok {
		if parsed, err := strconv.Atoi(tries); err != nil {
			logf(logWarning, "invalid mysql connect tries options: %s", err)
		} else {
			connectTries = parsed
		}
	}
	var maxLifeTime int64
	if lifeTime, ok := options["mysql_max_life_time"]; ok {
		if parsed, err := strconv.ParseInt(lifeTime, 10, 64); err == nil {
			maxLifeTime = parsed
		}
	}
	connector, err := mysql.NewConnector(config)
	if err != nil {
		return nil, fmt.Errorf("MySql backend error: %w", err)
	}
	backend.db = sql.OpenDB(connector)
	if err := openDatabase(backend.db, connectTries, maxLifeTime); err != nil {
		return nil, fmt.Errorf("MySql backend error: couldn't open db: %w", err)
	}
	return backend, nil
}

// openDatabase is OpenDatabase: 0 tries means one; a negative count retries forever; each failed
// ping waits 2 s, also after the last one.
func openDatabase(db *sql.DB, tries int, maxLifeTime int64) error {
	if tries == 0 {
		tries = 1
	}
	var err error
	for tries != 0 {
		if err = db.Ping(); err != nil {
			logf(logError, "ping database mysql error, will retry in 2s: %s", err)
			time.Sleep(2 * time.Second)
		} else {
			break
		}
		if tries > 0 {
			tries--
		}
	}
	if tries == 0 {
		return fmt.Errorf("couldn't ping database mysql: %s", err)
	}
	if maxLifeTime > 0 {
		db.SetConnMaxLifetime(time.Duration(maxLifeTime) * time.Second)
	}
	return nil
}

func (b *mysqlBackend) getUser(username, password string) (bool, error) {
	var pwHash sql.NullString
	err := b.db.QueryRow(b.userQuery, username).Scan(&pwHash)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !pwHash.Valid {
		return false, nil
	}
	return compareHash(password, pwHash.String), nil
}

func (b *mysqlBackend) getSuperuser(username string) (bool, error) {
	if b.superuserQuery == "" {
		return false, nil
	}
	var count sql.NullInt64
	err := b.db.QueryRow(b.superuserQuery, username).Scan(&count)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return count.Valid && count.Int64 > 0, nil
}

func (b *mysqlBackend) checkACL(username, topic, clientid string, acc int) (bool, error) {
	if b.aclQuery == "" {
		return true, nil
	}
	rows, err := b.db.Query(b.aclQuery, username, acc)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	var acls []string
	for rows.Next() {
		var acl string
		if err := rows.Scan(&acl); err != nil {
			return false, err
		}
		acls = append(acls, acl)
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	for _, acl := range acls {
		pattern := strings.ReplaceAll(strings.ReplaceAll(acl, "%c", clientid), "%u", username)
		if topicMatches(pattern, topic) {
			return true, nil
		}
	}
	return false, nil
}

// topicMatches applies an ACL pattern the way go-auth's topics.Match does: `+` stands for one
// level, `#` for the rest; a wildcard in the checked topic (a subscription filter) only matches the
// same wildcard.
func topicMatches(pattern, topic string) bool {
	if pattern == topic {
		return true
	}
	patternLevels, topicLevels := strings.Split(pattern, "/"), strings.Split(topic, "/")
	for i, level := range patternLevels {
		if level == "#" {
			return true
		}
		if i >= len(topicLevels) || (level != "+" && level != topicLevels[i]) {
			return false
		}
	}
	return len(patternLevels) == len(topicLevels)
}

func (b *mysqlBackend) halt() {
	if b.db != nil {
		b.db.Close()
	}
}

func optionOr(options map[string]string, key, fallback string) string {
	if value, ok := options[key]; ok {
		return value
	}
	return fallback
}
