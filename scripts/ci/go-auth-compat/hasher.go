package main

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"strconv"
	"strings"
)

// compareHash is go-auth 3.5.0's pbkdf2Hasher.Compare (hashing/pbkdf2.go) for the
// PBKDF2$<algorithm>$<iterations>$<salt>$<key> form with base64 salts, misbehaviour included, so
// tests show what the kit must never store:
//   - the hash is split with strings.FieldsFunc on '$' (empty fields vanish) and fields 1 to 4 are
//     indexed without counting: a row with fewer fields panics, which takes Mosquitto down;
//   - the key is derived with the stored key's length and compared over it (compareBytes), so an
//     empty stored key matches every password and a short one matches many;
//   - any algorithm other than sha256 is treated as sha512 (hashWithSalt).
//
// Its pbkdf2-sha512 (PHC) form and utf-8 salts are not implemented here: the kit writes neither.
func compareHash(password, passwordHash string) bool {
	hashSplit := strings.FieldsFunc(passwordHash, func(r rune) bool { return r == '$' })
	if hashSplit[0] != "PBKDF2" {
		logf(logError, "invalid PBKDF2 hash supplied, unrecognized format (or a form this stand-in does not implement)")
		return false
	}
	algorithm := hashSplit[1]
	iterations, err := strconv.Atoi(hashSplit[2])
	if err != nil {
		logf(logError, "iterations error: %s", err)
		return false
	}
	salt, err := base64.StdEncoding.DecodeString(hashSplit[3])
	if err != nil {
		logf(logError, "base64 salt error: %s", err)
		return false
	}
	stored, err := base64.StdEncoding.DecodeString(hashSplit[4])
	if err != nil {
		logf(logError, "base64 hash decoding error: %s", err)
		return false
	}
	if len(stored) == 0 {
		return true // compareBytes over an empty stored key never finds a difference
	}
	newHash := func() hash.Hash { return sha512.New() }
	if algorithm == "sha256" {
		newHash = sha256.New
	}
	derived, err := pbkdf2.Key(newHash, password, salt, iterations, len(stored))
	if err != nil {
		logf(logError, "pbkdf2: %s", err)
		return false
	}
	for i, x := range stored {
		if derived[i] != x {
			return false
		}
	}
	return true
}
