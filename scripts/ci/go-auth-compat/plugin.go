// A Mosquitto auth plugin that stands in for mosquitto-go-auth 3.5.0 (github.com/lhns/mosquitto-go-auth,
// the release the kit's default image ships) with its MySQL backend, pbkdf2 hasher and in-memory cache.
// The integration suite falls back to it only when the Go module proxy refuses to serve go-auth
// itself (scripts/ci/install-test-deps.sh says so loudly). It follows 3.5.0 wherever a test or a
// benchmark depends on it, including where 3.5.0 misbehaves, so the tests show that the kit never
// reaches that behaviour:
//   - go-auth.go: option parsing, the cache (cache.go here), retry_count, empty credentials refused
//     as an error, answers granted / rejected / error (MOSQ_ERR_SUCCESS / _AUTH or _ACL_DENIED / _UNKNOWN);
//   - backends/mysql.go and db.go: queries, connect tries and connection lifetime (mysql.go here);
//   - hashing/pbkdf2.go: Compare, panics included (hasher.go here).
//
// Every check runs on Mosquitto's only network thread, one at a time, as go-auth's do.
// Options it does not implement are refused at start rather than ignored.
package main

/*
#include <stdlib.h>
#include <mosquitto.h>
extern void compat_log(int level, char *message);
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// go-auth.go's answers to auth-plugin.c.
const (
	authRejected = 0
	authGranted  = 1
	authError    = 2
)

const (
	logError   = int(C.MOSQ_LOG_ERR)
	logWarning = int(C.MOSQ_LOG_WARNING)
	logNotice  = int(C.MOSQ_LOG_NOTICE)
)

var (
	options    = map[string]string{}
	backend    *mysqlBackend
	cache      *goStore
	retryCount int
)

// Options that only tune logging or how go-auth hashes passwords it creates itself: they do not
// change any answer, so the stand-in accepts and ignores them.
var ignoredOptions = map[string]bool{
	"log_level": true, "log_dest": true, "log_file": true,
	"hasher_salt_size": true, "hasher_iterations": true, "hasher_keylen": true, "hasher_algorithm": true,
	"exhaust_backend_first": true,
}

var implementedOptions = map[string]bool{
	"backends": true, "hasher": true, "hasher_salt_encoding": true, "disable_superuser": true, "retry_count": true,
	"cache": true, "cache_type": true, "cache_reset": true, "cache_refresh": true,
	"auth_cache_seconds": true, "acl_cache_seconds": true, "auth_jitter_seconds": true, "acl_jitter_seconds": true,
	"mysql_host": true, "mysql_port": true, "mysql_dbname": true, "mysql_user": true, "mysql_password": true,
	"mysql_protocol": true, "mysql_sslmode": true, "mysql_allow_native_passwords": true,
	"mysql_userquery": true, "mysql_superquery": true, "mysql_aclquery": true,
	"mysql_connect_tries": true, "mysql_max_life_time": true,
}

func logf(level int, format string, args ...any) {
	message := C.CString(fmt.Sprintf(format, args...))
	defer C.free(unsafe.Pointer(message))
	C.compat_log(C.int(level), message)
}

//export compatSetOption
func compatSetOption(key, value *C.char) {
	options[C.GoString(key)] = C.GoString(value)
}

// compatStart is AuthPluginInit: any failure there is log.Fatalf, which ends the whole Mosquitto
// process at once (exit status 1), so does this.
//
//export compatStart
func compatStart() {
	if err := start(); err != nil {
		logf(logError, "%s", err)
		os.Exit(1)
	}
	cacheState := "no cache"
	if cache != nil {
		cacheState = fmt.Sprintf("cache auth %s acl %s refresh %t",
			cache.authExpiration, cache.aclExpiration, cache.refreshExpiration)
	}
	logf(logNotice, "ready: mysql backend, pbkdf2 hasher, %s (follows go-auth 3.5.0)", cacheState)
}

func start() error {
	var unknown []string
	for key := range options {
		if !implementedOptions[key] && !ignoredOptions[key] {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("options this go-auth stand-in does not implement: auth_opt_%s", strings.Join(unknown, ", auth_opt_"))
	}
	for key, want := range map[string]string{
		"backends": "mysql", "hasher": "pbkdf2", "hasher_salt_encoding": "base64",
		"mysql_protocol": "tcp", "mysql_sslmode": "false", "disable_superuser": "true",
	} {
		if value, ok := options[key]; ok && value != want {
			return fmt.Errorf("auth_opt_%s %q is not implemented by this stand-in (only %q)", key, value, want)
		}
	}
	if _, ok := options["backends"]; !ok {
		return errors.New("missing option auth_opt_backends")
	}
	if value, ok := options["retry_count"]; ok {
		if parsed, err := strconv.Atoi(value); err == nil {
			retryCount = parsed
		} else {
			logf(logWarning, "couldn't parse retryCount (err: %s), defaulting to 0", err)
		}
	}
	var err error
	if backend, err = newMysqlBackend(options); err != nil {
		return fmt.Errorf("error initializing backends: %w", err)
	}
	if options["disable_superuser"] == "true" {
		backend.superuserQuery = ""
	}
	if strings.ReplaceAll(options["cache"], " ", "") == "true" {
		return setCache()
	}
	return nil
}

// setCache is go-auth.go setCache for the default (in-memory) cache type.
func setCache() error {
	if cacheType := options["cache_type"]; cacheType == "redis" {
		return errors.New("auth_opt_cache_type redis is not implemented by this stand-in")
	}
	seconds := func(key string, fallback int64) int64 {
		value, ok := options[key]
		if !ok {
			return fallback
		}
		parsed, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			logf(logWarning, "couldn't parse %s (err: %s), defaulting to %d", key, err, fallback)
			return fallback
		}
		return parsed
	}
	authSeconds, aclSeconds := seconds("auth_cache_seconds", 30), seconds("acl_cache_seconds", 30)
	authJitter, aclJitter := min(seconds("auth_jitter_seconds", 0), authSeconds), min(seconds("acl_jitter_seconds", 0), aclSeconds)
	cache = newGoStore(
		time.Duration(authSeconds)*time.Second, time.Duration(aclSeconds)*time.Second,
		time.Duration(authJitter)*time.Second, time.Duration(aclJitter)*time.Second,
		options["cache_refresh"] == "true",
	)
	if options["cache_reset"] == "true" {
		cache.reset()
	}
	return nil
}

//export compatStop
func compatStop() {
	backend.halt()
}

func withRetries(check func() (bool, error)) C.int {
	var ok bool
	var err error
	for try := 0; try <= retryCount; try++ {
		if ok, err = check(); err == nil {
			break
		}
	}
	if err != nil {
		logf(logError, "%s", err)
		return authError
	}
	if ok {
		return authGranted
	}
	return authRejected
}

//export compatBasicAuth
func compatBasicAuth(username, password *C.char) C.int {
	user, pass := C.GoString(username), C.GoString(password)
	return withRetries(func() (bool, error) {
		if user == "" || pass == "" {
			return false, errors.New("empty username or password not allowed")
		}
		if cache != nil {
			if cached, granted := cache.checkAuthRecord(user, pass); cached {
				return granted, nil
			}
		}
		granted, err := backend.getUser(user, pass)
		if cache != nil && err == nil {
			cache.setAuthRecord(user, pass, granted)
		}
		return granted, err
	})
}

//export compatAclCheck
func compatAclCheck(username, clientID, topic *C.char, access C.int) C.int {
	user, client, wanted, acc := C.GoString(username), C.GoString(clientID), C.GoString(topic), int(access)
	return withRetries(func() (bool, error) {
		if cache != nil {
			if cached, granted := cache.checkACLRecord(user, wanted, client, acc); cached {
				return granted, nil
			}
		}
		granted, err := checkSuperuserThenACL(user, wanted, client, acc)
		if cache != nil && err == nil {
			cache.setACLRecord(user, wanted, client, acc, granted)
		}
		return granted, err
	})
}

// checkSuperuserThenACL is backends.go's: the first error is kept while later checks still run.
func checkSuperuserThenACL(user, topic, client string, acc int) (bool, error) {
	superuser, err := backend.getSuperuser(user)
	if superuser && err == nil {
		return true, nil
	}
	granted, aclErr := backend.checkACL(user, topic, client, acc)
	if granted && aclErr == nil {
		return true, nil
	}
	if err == nil {
		err = aclErr
	}
	return false, err
}

func main() {}
