#!/usr/bin/env bash
# deps.sh - install what building and testing tally needs on Debian 12, and nothing more.
#
# The one list of system packages lives here. Each is checked with dpkg-query; only when
# something is missing does this run `apt-get update` and install the missing ones (as root,
# or through sudo). Then the Node test dependencies are installed from the committed
# package-lock.json with `npm ci`, again only when node_modules does not match the lock.
# Idempotent; prints nothing when nothing is missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
prog=deps.sh

PACKAGES=(
    # compiler, build system
    build-essential cmake pkg-config
    # gRPC C core, protobuf-c, protoc (+ plugin.proto from libprotoc-dev), health/reflection protos
    libgrpc-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev libprotoc-dev grpc-proto
    # libraries the C code links
    libpq-dev libjansson-dev libssl-dev libcunit1-dev
    # the local and throwaway PostgreSQL clusters (tests/harness/pg.sh), psql
    postgresql-15
    # Python black-box tests (Debian's grpcio, _pb2_grpc from grpc_tools)
    python3 python3-grpcio python3-protobuf python3-grpc-tools
    # Node black-box tests: npm fetches from the registry over https
    ca-certificates
    # make format; the libFuzzer build (tests/fuzz) needs clang and its runtime
    clang-format clang libclang-rt-14-dev
    # TLS tests make their certificates with the openssl tool
    openssl
    valgrind # tests/valgrind: the daemons under memcheck (valgrind/daemons, debug build only)
    # Go example client (clients/go), built offline from Debian's Go packages; the 1.5
    # golang/protobuf replaces 1.3, which panics on today's generated code
    golang-go golang-google-grpc-dev golang-google-protobuf-dev
    golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc
)
# Node and npm are checked by command, not by package: a NodeSource nodejs already
# bundles npm, and Debian's npm package conflicts with it.
COMMAND_PACKAGES=(node:nodejs npm:npm)

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done
for cp in "${COMMAND_PACKAGES[@]}"; do
    command -v "${cp%%:*}" >/dev/null 2>&1 || missing+=("${cp#*:}")
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "$prog: missing packages: ${missing[*]}; run as root or install sudo" >&2
        exit 1
    fi
    echo "$prog: installing ${missing[*]}" >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold "${missing[@]}" >&2
fi

# Node test dependencies, pinned by package-lock.json. The stamp records the lock file
# that node_modules was installed from.
node_dir=$root/tests/blackbox/node
stamp=$node_dir/node_modules/.tally-lock.sha256
want=$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "$prog: npm ci in tests/blackbox/node" >&2
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$want" >"$stamp"
fi
