#!/usr/bin/env bash
# Installs what the integration suite runs against: Debian's Mosquitto and MariaDB, openssl, and the
# mosquitto-go-auth plugin built from the Go module proxy into .cache/go-auth/go-auth.so, at the
# release the kit's default broker image ships (lib/config/stack.ts DEFAULT_IMAGES).
# Idempotent: installed packages and a plugin built from the same pinned source are reused.
#
# If the module proxy refuses to serve go-auth (it does on the kit's CI machines), the plugin is built
# instead from scripts/ci/go-auth-compat: a stand-in that follows that release wherever a test or a
# benchmark depends on it (options, queries, hasher, cache). That fallback is announced loudly and
# recorded in .cache/go-auth/BUILD-INFO, which the tests print.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT="$PWD"

# The maintained fork github.com/lhns/mosquitto-go-auth, release 3.5.0 (the default image is
# ghcr.io/lhns/mosquitto-go-auth:3.5.0-mosquitto_2.1.2). iegomez's original was archived in June 2025
# with five commits after 05bbc60 (2024-03-02), which earlier versions of this script pinned.
# The fork's go.mod still declares the module path github.com/iegomez/mosquitto-go-auth, so it is
# fetched as a replacement of that path. Its release tags are not Go module versions ("3.5.0", no
# "v"), so the pin is the pseudo-version of the tag's commit 428c367bd0ecec39578cd5d45a70326a96b9b55d
# (committed 2026-04-22 23:51:35 UTC).
GO_AUTH_MODULE="github.com/iegomez/mosquitto-go-auth"
GO_AUTH_FORK="github.com/lhns/mosquitto-go-auth"
GO_AUTH_RELEASE="3.5.0"
GO_AUTH_VERSION="v0.0.0-20260422235135-428c367bd0ec"
GO_AUTH_COMMIT="428c367bd0ecec39578cd5d45a70326a96b9b55d"
# GO_AUTH_SOURCE=<dir>: build the real plugin from a copy of that release's source (a clone at tag
# 3.5.0, or its archive) instead of fetching it, e.g. where the proxy refuses the fork; its
# dependencies still come from the module proxy.
GO_AUTH_SOURCE="${GO_AUTH_SOURCE:-}"

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

# go-auth's own two-step build (its Makefile and Dockerfile): a c-archive build of go-auth.go writes
# go-auth.h, which auth-plugin.c includes; then the c-shared build links the plugin against
# Mosquitto's headers, leaving Mosquitto's symbols to be resolved when the broker loads it.
build_go_auth() {
  local fetch="$CACHE_DIR/fetch" src="$CACHE_DIR/src" log="$CACHE_DIR/go-auth-build.log" dir
  rm -rf "$fetch" "$src" && mkdir -p "$fetch"
  if [[ -n "$GO_AUTH_SOURCE" ]]; then
    dir="$GO_AUTH_SOURCE"
    grep -q "^module $GO_AUTH_MODULE\$" "$dir/go.mod" 2>/dev/null ||
      fail "GO_AUTH_SOURCE=$dir does not hold go-auth (no go.mod declaring module $GO_AUTH_MODULE)"
    : >"$log"
  else
    cat >"$fetch/go.mod" <<EOF
module meross-local-broker-kit/go-auth-fetch

go 1.25

require $GO_AUTH_MODULE v0.0.0-00010101000000-000000000000

replace $GO_AUTH_MODULE => $GO_AUTH_FORK $GO_AUTH_VERSION
EOF
    if ! (cd "$fetch" && GOFLAGS=-mod=mod go mod download "$GO_AUTH_MODULE") >"$log" 2>&1; then
      return 1
    fi
    dir="$(cd "$fetch" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' "$GO_AUTH_MODULE")" ||
      fail "go-auth $GO_AUTH_RELEASE was downloaded but its source directory is unknown; see $log"
  fi
  # The module cache is read-only, and the first step writes go-auth.h beside the sources.
  cp -R "$dir" "$src" && chmod -R u+w "$src"
  (
    cd "$src"
    export CGO_ENABLED=1 GOFLAGS="-mod=mod -buildvcs=false" CGO_CFLAGS="-I/usr/include -fPIC"
    go build -buildmode=c-archive go-auth.go &&
      CGO_LDFLAGS="-shared -Wl,-unresolved-symbols=ignore-all" go build -buildmode=c-shared -o "$PLUGIN.tmp"
  ) >>"$log" 2>&1 ||
    fail "go-auth $GO_AUTH_RELEASE was downloaded but did not build; see $log:
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
  local real_info="go-auth $GO_AUTH_RELEASE ($GO_AUTH_FORK@$GO_AUTH_VERSION)"
  if [[ -n "$GO_AUTH_SOURCE" ]]; then
    local commit
    commit="$(git -C "$GO_AUTH_SOURCE" rev-parse HEAD 2>/dev/null || echo "not a git checkout")"
    [[ "$commit" == "not a git checkout" || "$commit" == "$GO_AUTH_COMMIT" ]] ||
      fail "GO_AUTH_SOURCE=$GO_AUTH_SOURCE is at $commit, not go-auth $GO_AUTH_RELEASE ($GO_AUTH_COMMIT)"
    real_info="go-auth $GO_AUTH_RELEASE (built from GO_AUTH_SOURCE=$GO_AUTH_SOURCE, commit: $commit)"
  fi
  local compat_info="go-auth-compat $(compat_fingerprint) (stand-in following go-auth $GO_AUTH_RELEASE; the Go module proxy refused $GO_AUTH_FORK@$GO_AUTH_VERSION)"
  local built=""
  [[ -f "$PLUGIN" && -f "$BUILD_INFO" ]] && built="$(cat "$BUILD_INFO")"

  if [[ "$built" == "$real_info" ]]; then
    step "go-auth: reusing $PLUGIN ($real_info)"
    return
  fi
  step "go-auth: building $GO_AUTH_RELEASE from ${GO_AUTH_SOURCE:-$GO_AUTH_FORK@$GO_AUTH_VERSION}"
  if build_go_auth; then
    mv "$PLUGIN.tmp" "$PLUGIN" && echo "$real_info" >"$BUILD_INFO"
    step "go-auth: built $PLUGIN"
    return
  fi
  cat >&2 <<EOF
######################################################################################################
# WARNING: the Go module proxy did not serve go-auth $GO_AUTH_RELEASE ($GO_AUTH_FORK@$GO_AUTH_VERSION):
$(grep -m3 -E 'Forbidden|not available|error|Error' "$CACHE_DIR/go-auth-build.log" | sed 's/^/#   /')
# The integration suite will run against scripts/ci/go-auth-compat, a stand-in that follows go-auth
# $GO_AUTH_RELEASE's MySQL backend, pbkdf2 hasher and cache where the tests depend on them, NOT go-auth.
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
