// A Mosquitto auth plugin that reads the same options, runs the same MySQL queries and verifies the
// same PBKDF2 hashes as github.com/iegomez/mosquitto-go-auth (MySQL backend, pbkdf2 hasher). The
// integration suite falls back to it only when the Go module proxy refuses to serve go-auth itself
// (scripts/ci/install-test-deps.sh says so loudly), so the kit's rendered config, schema, queries and
// hashes are still exercised by a real broker. Deliberate differences from go-auth: no cache (every
// check hits MySQL), and a stored key must match the derived key in full length (go-auth accepts a
// truncated stored key; lib/store never writes one).
package main

/*
#include <stdlib.h>
#include <mosquitto.h>
extern void compat_log(int level, char *message);
*/
import "C"

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/go-sql-driver/mysql"
)

type settings struct {
	userQuery      string
	superuserQuery string
	aclQuery       string
}

var (
	options = map[string]string{}
	db      *sql.DB
	active  settings
)

// Options that only tune go-auth's caching, logging or hashing of new passwords: they do not change
// whether a check passes, so the compat plugin accepts and ignores them.
var ignoredOptions = map[string]bool{
	"log_level": true, "log_dest": true, "log_file": true,
	"cache": true, "cache_type": true, "cache_reset": true, "cache_refresh": true,
	"auth_cache_seconds": true, "acl_cache_seconds": true, "auth_jitter_seconds": true, "acl_jitter_seconds": true,
	"hasher_salt_size": true, "hasher_iterations": true, "hasher_keylen": true, "hasher_algorithm": true,
	"retry_count": true, "exhaust_backend_first": true, "disable_superuser": true,
	"mysql_allow_native_passwords": true,
}

func logf(level C.int, format string, args ...any) {
	message := C.CString(fmt.Sprintf(format, args...))
	defer C.free(unsafe.Pointer(message))
	C.compat_log(level, message)
}

//export compatSetOption
func compatSetOption(key, value *C.char) {
	options[C.GoString(key)] = C.GoString(value)
}

//export compatStart
func compatStart() *C.char {
	if err := start(); err != nil {
		return C.CString(err.Error())
	}
	logf(C.MOSQ_LOG_NOTICE, "ready: mysql backend, pbkdf2 hasher, no cache")
	return nil
}

func start() error {
	required := func(key string) (string, error) {
		value, ok := options[key]
		if !ok || value == "" {
			return "", fmt.Errorf("missing option auth_opt_%s", key)
		}
		return value, nil
	}
	known := map[string]bool{
		"backends": true, "hasher": true, "hasher_salt_encoding": true, "mysql_salt_encoding": true,
		"mysql_host": true, "mysql_port": true, "mysql_dbname": true, "mysql_user": true, "mysql_password": true,
		"mysql_protocol": true, "mysql_sslmode": true,
		"mysql_userquery": true, "mysql_superquery": true, "mysql_aclquery": true,
	}
	var unknown []string
	for key := range options {
		if !known[key] && !ignoredOptions[key] {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("options this go-auth stand-in does not implement: auth_opt_%s", strings.Join(unknown, ", auth_opt_"))
	}
	if backends, _ := required("backends"); backends != "mysql" {
		return fmt.Errorf("auth_opt_backends must be mysql, got %q", backends)
	}
	if hasher := options["hasher"]; hasher != "" && hasher != "pbkdf2" {
		return fmt.Errorf("auth_opt_hasher must be pbkdf2, got %q", hasher)
	}
	for _, key := range []string{"hasher_salt_encoding", "mysql_salt_encoding"} {
		if encoding := options[key]; encoding != "" && encoding != "base64" {
			return fmt.Errorf("auth_opt_%s must be base64, got %q", key, encoding)
		}
	}
	if protocol := options["mysql_protocol"]; protocol != "" && protocol != "tcp" {
		return fmt.Errorf("auth_opt_mysql_protocol must be tcp, got %q", protocol)
	}
	if sslmode := options["mysql_sslmode"]; sslmode != "" && sslmode != "false" {
		return fmt.Errorf("auth_opt_mysql_sslmode %q is not implemented", sslmode)
	}
	var err error
	config := mysql.NewConfig()
	if config.DBName, err = required("mysql_dbname"); err != nil {
		return err
	}
	if config.User, err = required("mysql_user"); err != nil {
		return err
	}
	if config.Passwd, err = required("mysql_password"); err != nil {
		return err
	}
	if active.userQuery, err = required("mysql_userquery"); err != nil {
		return err
	}
	if options["disable_superuser"] != "true" {
		active.superuserQuery = options["mysql_superquery"]
	}
	active.aclQuery = options["mysql_aclquery"]
	host, port := options["mysql_host"], options["mysql_port"]
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "3306"
	}
	config.Net = "tcp"
	config.Addr = net.JoinHostPort(host, port)
	config.AllowNativePasswords = options["mysql_allow_native_passwords"] == "true"
	config.Timeout = 5 * time.Second
	config.ReadTimeout = 10 * time.Second
	config.WriteTimeout = 10 * time.Second

	connector, err := mysql.NewConnector(config)
	if err != nil {
		return fmt.Errorf("mysql settings: %w", err)
	}
	db = sql.OpenDB(connector)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = db.Ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cannot reach mysql at %s as %s: %w", config.Addr, config.User, err)
		}
		time.Sleep(time.Second)
	}
}

//export compatStop
func compatStop() {
	if db != nil {
		db.Close()
	}
}

//export compatBasicAuth
func compatBasicAuth(username, password *C.char) bool {
	user := C.GoString(username)
	var stored sql.NullString
	err := db.QueryRow(active.userQuery, user).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !stored.Valid) {
		logf(C.MOSQ_LOG_INFO, "unknown user %q", user)
		return false
	}
	if err != nil {
		logf(C.MOSQ_LOG_ERR, "user query failed for %q: %v", user, err)
		return false
	}
	ok, err := verifyPBKDF2(C.GoString(password), stored.String)
	if err != nil {
		logf(C.MOSQ_LOG_ERR, "stored hash of %q: %v", user, err)
	}
	return ok
}

func verifyPBKDF2(password, stored string) (bool, error) {
	fields := strings.Split(stored, "$")
	if len(fields) != 5 || fields[0] != "PBKDF2" {
		return false, errors.New("not PBKDF2$<algorithm>$<iterations>$<salt>$<key>")
	}
	var newHash func() hash.Hash
	switch fields[1] {
	case "sha512":
		newHash = sha512.New
	case "sha256":
		newHash = sha256.New
	default:
		return false, fmt.Errorf("unknown algorithm %q", fields[1])
	}
	iterations, err := strconv.Atoi(fields[2])
	if err != nil || iterations < 1 {
		return false, fmt.Errorf("bad iteration count %q", fields[2])
	}
	salt, err := base64.StdEncoding.DecodeString(fields[3])
	if err != nil {
		return false, fmt.Errorf("salt is not base64: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(fields[4])
	if err != nil || len(key) == 0 {
		return false, errors.New("key is empty or not base64")
	}
	derived, err := pbkdf2.Key(newHash, password, salt, iterations, len(key))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(derived, key) == 1, nil
}

//export compatAclCheck
func compatAclCheck(username, clientID, topic *C.char, access C.int) bool {
	user, client, wanted := C.GoString(username), C.GoString(clientID), C.GoString(topic)
	if active.superuserQuery != "" {
		var count sql.NullInt64
		if err := db.QueryRow(active.superuserQuery, user).Scan(&count); err == nil && count.Int64 > 0 {
			return true
		}
	}
	// go-auth's rule: without an ACL query every authenticated user may do anything.
	if active.aclQuery == "" {
		return true
	}
	rows, err := db.Query(active.aclQuery, user, int(access))
	if err != nil {
		logf(C.MOSQ_LOG_ERR, "acl query failed for %q: %v", user, err)
		return false
	}
	defer rows.Close()
	for rows.Next() {
		var pattern string
		if err := rows.Scan(&pattern); err != nil {
			logf(C.MOSQ_LOG_ERR, "acl row for %q: %v", user, err)
			return false
		}
		pattern = strings.ReplaceAll(strings.ReplaceAll(pattern, "%c", client), "%u", user)
		if topicMatches(pattern, wanted) {
			return true
		}
	}
	if err := rows.Err(); err != nil {
		logf(C.MOSQ_LOG_ERR, "acl rows for %q: %v", user, err)
	}
	return false
}

// topicMatches applies an ACL pattern the way go-auth does: `+` stands for one level, `#` for the
// rest; a wildcard in the checked topic (a subscription filter) only matches the same wildcard.
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

func main() {}
