#!/usr/bin/env bash
# Installs what the integration suite runs against: Debian's Mosquitto and MariaDB, openssl, and the
# mosquitto-go-auth plugin built from the Go module proxy into .cache/go-auth/go-auth.so.
# Idempotent: installed packages and a plugin built from the same pinned source are reused.
#
# If the module proxy refuses to serve go-auth (it does on the kit's CI machines), the plugin is built
# instead from scripts/ci/go-auth-compat: a small stand-in that reads the same options, runs the same
# queries and verifies the same hashes. That fallback is announced loudly and recorded in
# .cache/go-auth/BUILD-INFO, which the tests print.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT="$PWD"

# github.com/iegomez/mosquitto-go-auth, pinned to one commit (upstream's last, archived June 2025;
# its release tags are not Go module versions, so a commit is the exact pin).
GO_AUTH_MODULE="github.com/iegomez/mosquitto-go-auth"
GO_AUTH_REF="05bbc603802b222975e748e814f3191ef26431d6"

CACHE_DIR="$ROOT/.cache/go-auth"
PLUGIN="$CACHE_DIR/go-auth.so"
BUILD_INFO="$CACHE_DIR/BUILD-INFO"
COMPAT_SRC="$ROOT/scripts/ci/go-auth-compat"
APT_PACKAGES=(mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev mariadb-server openssl gcc libc6-dev)

fail() {
  echo "install-test-deps: ERROR: $*" >&2
  exit 1
}
step() { echo "== $*"; }

install_packages() {
  local missing=()
  for package in "${APT_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" != "install ok installed" ]]; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]} == 0)); then
    step "apt: ${APT_PACKAGES[*]} already installed"
    return
  fi
  [[ $EUID -eq 0 ]] || fail "apt packages missing (${missing[*]}) and not running as root: run this script with sudo"
  step "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    fail "apt-get install ${missing[*]} failed"
}

check_tools() {
  for tool in mosquitto mariadbd mariadb-install-db mariadb-admin openssl go gcc; do
    command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || fail "$tool not found after installing packages"
  done
  [[ -f /usr/include/mosquitto_broker.h && -f /usr/include/mosquitto_plugin.h ]] ||
    fail "Mosquitto plugin headers missing (/usr/include/mosquitto_broker.h): install mosquitto-dev"
}

compat_fingerprint() {
  (cd "$COMPAT_SRC" && cat go.mod go.sum ./*.go ./*.c) | sha256sum | cut -c1-16
}

build_go_auth() {
  local src="$CACHE_DIR/src"
  rm -rf "$src" && mkdir -p "$src"
  cat >"$src/go.mod" <<EOF
module meross-local-broker-kit/go-auth-build

go 1.24
EOF
  # A blank import keeps the dependency in go.mod; the build target is go-auth's own main package.
  cat >"$src/tools.go" <<EOF
//go:build tools

package tools

import _ "$GO_AUTH_MODULE"
EOF
  local log="$CACHE_DIR/go-auth-build.log"
  if ! (cd "$src" && GOFLAGS=-mod=mod go get "$GO_AUTH_MODULE@$GO_AUTH_REF") >"$log" 2>&1; then
    return 1
  fi
  (cd "$src" && CGO_ENABLED=1 CGO_CFLAGS="-I/usr/include -fPIC" GOFLAGS="-mod=mod -buildvcs=false" \
    go build -buildmode=c-shared -o "$PLUGIN.tmp" "$GO_AUTH_MODULE") >>"$log" 2>&1 ||
    fail "go-auth $GO_AUTH_REF was downloaded but did not build; see $log:
$(tail -20 "$log")"
}

build_compat() {
  local log="$CACHE_DIR/compat-build.log"
  (cd "$COMPAT_SRC" && CGO_ENABLED=1 GOFLAGS="-mod=readonly -buildvcs=false" go build -buildmode=c-shared -o "$PLUGIN.tmp" .) >"$log" 2>&1 ||
    fail "the go-auth stand-in (scripts/ci/go-auth-compat) did not build; see $log:
$(tail -20 "$log")"
}

install_plugin() {
  mkdir -p "$CACHE_DIR"
  local real_info="go-auth $GO_AUTH_MODULE@$GO_AUTH_REF"
  local compat_info="go-auth-compat $(compat_fingerprint) (stand-in following go-auth 3.5.0; the Go module proxy refused $GO_AUTH_MODULE@$GO_AUTH_REF)"
  local built=""
  [[ -f "$PLUGIN" && -f "$BUILD_INFO" ]] && built="$(cat "$BUILD_INFO")"

  if [[ "$built" == "$real_info" ]]; then
    step "go-auth: reusing $PLUGIN ($real_info)"
    return
  fi
  step "go-auth: building $GO_AUTH_MODULE@$GO_AUTH_REF"
  if build_go_auth; then
    mv "$PLUGIN.tmp" "$PLUGIN" && echo "$real_info" >"$BUILD_INFO"
    step "go-auth: built $PLUGIN"
    return
  fi
  cat >&2 <<EOF
######################################################################################################
# WARNING: the Go module proxy did not serve $GO_AUTH_MODULE@$GO_AUTH_REF:
$(grep -m3 -E 'Forbidden|not available|error|Error' "$CACHE_DIR/go-auth-build.log" | sed 's/^/#   /')
# The integration suite will run against scripts/ci/go-auth-compat, a stand-in that implements
# go-auth's MySQL backend and pbkdf2 hasher (same options, queries and hash format), NOT go-auth.
######################################################################################################
EOF
  if [[ "$built" == "$compat_info" ]]; then
    step "go-auth: reusing the stand-in $PLUGIN"
    return
  fi
  step "go-auth: building the stand-in from scripts/ci/go-auth-compat"
  build_compat
  mv "$PLUGIN.tmp" "$PLUGIN" && echo "$compat_info" >"$BUILD_INFO"
  step "go-auth: built $PLUGIN (stand-in)"
}

install_packages
check_tools
install_plugin
step "test dependencies ready: $(cat "$BUILD_INFO")"
