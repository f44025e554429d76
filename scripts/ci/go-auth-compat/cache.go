package main

import (
	"fmt"
	"math/rand"
	"sync"
	"time"
)

// The auth and ACL cache of go-auth 3.5.0's default (non-Redis) store, cache/cache.go goStore over
// github.com/jellydator/ttlcache/v3 v3.4.0:
//   - keys are the plain strings of toAuthRecord / toACLRecord (3.5.0 appends sha1("") of a never
//     written hash and base64-encodes, which maps equal strings to equal keys and nothing else);
//   - a lifetime of 0 is ttlcache's DefaultTTL, i.e. the cache-wide TTL NewGoStore sets:
//     defaultExpiration*2 = 60 s; a negative lifetime never expires (ttlcache's isExpiredUnsafe);
//   - jitter as expirationWithJitter; cache_refresh touches an entry on every hit (ttlcache Get
//     without WithDisableTouchOnHit), otherwise it expires at its set time whatever the traffic;
//   - denials are stored like grants; setters are only called when the backend returned no error.
const ttlcacheDefaultTTL = 60 * time.Second

type cacheEntry struct {
	granted   bool
	ttl       time.Duration
	expiresAt time.Time
}

type goStore struct {
	mu                         sync.Mutex
	entries                    map[string]*cacheEntry
	authExpiration, authJitter time.Duration
	aclExpiration, aclJitter   time.Duration
	refreshExpiration          bool
}

func toAuthRecord(username, password string) string {
	return fmt.Sprintf("auth-%s-%s", username, password)
}

func toACLRecord(username, topic, clientid string, acc int) string {
	return fmt.Sprintf("acl-%s-%s-%s-%d", username, topic, clientid, acc)
}

func expirationWithJitter(expiration, jitter time.Duration) time.Duration {
	if jitter == 0 {
		return expiration
	}
	result := expiration + time.Duration(rand.Int63n(int64(jitter)*2)-int64(jitter))
	if result < 0 {
		return 0
	}
	return result
}

func newGoStore(authExpiration, aclExpiration, authJitter, aclJitter time.Duration, refresh bool) *goStore {
	store := &goStore{
		entries:        map[string]*cacheEntry{},
		authExpiration: authExpiration, authJitter: authJitter,
		aclExpiration: aclExpiration, aclJitter: aclJitter,
		refreshExpiration: refresh,
	}
	// ttlcache's Start() janitor: expired entries do not pile up.
	go func() {
		for range time.Tick(ttlcacheDefaultTTL) {
			store.mu.Lock()
			for key, entry := range store.entries {
				if entry.expired() {
					delete(store.entries, key)
				}
			}
			store.mu.Unlock()
		}
	}()
	return store
}

func (e *cacheEntry) expired() bool {
	return e.ttl > 0 && e.expiresAt.Before(time.Now())
}

func (s *goStore) check(record string) (present, granted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entry, ok := s.entries[record]
	if !ok || entry.expired() {
		return false, false
	}
	if s.refreshExpiration && entry.ttl > 0 {
		entry.expiresAt = time.Now().Add(entry.ttl)
	}
	return true, entry.granted
}

func (s *goStore) set(record string, granted bool, ttl time.Duration) {
	if ttl == 0 {
		ttl = ttlcacheDefaultTTL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[record] = &cacheEntry{granted: granted, ttl: ttl, expiresAt: time.Now().Add(ttl)}
}

func (s *goStore) checkAuthRecord(username, password string) (bool, bool) {
	return s.check(toAuthRecord(username, password))
}

func (s *goStore) setAuthRecord(username, password string, granted bool) {
	s.set(toAuthRecord(username, password), granted, expirationWithJitter(s.authExpiration, s.authJitter))
}

func (s *goStore) checkACLRecord(username, topic, clientid string, acc int) (bool, bool) {
	return s.check(toACLRecord(username, topic, clientid, acc))
}

func (s *goStore) setACLRecord(username, topic, clientid string, acc int, granted bool) {
	s.set(toACLRecord(username, topic, clientid, acc), granted, expirationWithJitter(s.aclExpiration, s.aclJitter))
}

// reset is Connect(ctx, reset=true): the in-memory store starts empty anyway.
func (s *goStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = map[string]*cacheEntry{}
}
