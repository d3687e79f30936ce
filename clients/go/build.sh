#!/usr/bin/env bash
# build.sh - build the Go example client offline, from Debian 12's packages only.
#
#   build.sh OUTDIR
#
# Generates the tally.v1 stubs with protoc-gen-go and protoc-gen-go-grpc into a GOPATH
# under OUTDIR (import path "tally/gen/go/tally/v1", from the protos' go_package), copies
# this folder next to them (import path "tally/clients/go/..."), checks gofmt and go vet,
# and builds OUTDIR/tally-flow. Go runs in GOPATH mode (GO111MODULE=off) with
# /usr/share/gocode, where Debian's golang-*-dev packages put their sources, and with
# GOPROXY=off: nothing is downloaded. GOCACHE may point at a cache kept between runs.
#
# Needs: golang-go golang-google-grpc-dev golang-google-protobuf-dev
# golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc protobuf-compiler
# (see README.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# -eq 1 ] || {
    echo "usage: build.sh OUTDIR" >&2
    exit 2
}
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

missing=()
for cmd in go protoc protoc-gen-go protoc-gen-go-grpc; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
done
[ -d /usr/share/gocode/src/google.golang.org/grpc ] || missing+=(golang-google-grpc-dev)
[ -d /usr/share/gocode/src/google.golang.org/protobuf ] || missing+=(golang-google-protobuf-dev)
# grpc-go 1.33's codec marshals with github.com/golang/protobuf. Debian's 1.3 of it
# (golang-github-golang-protobuf-1-3-dev, what apt picks for golang-google-grpc-dev by
# default) predates APIv2 and panics on protoc-gen-go 1.28's messages ("protobuf tag not
# enough fields in ....state"); 1.5 is built on APIv2.
if ! grep -qs 'google.golang.org/protobuf' /usr/share/gocode/src/github.com/golang/protobuf/proto/*.go; then
    missing+=(golang-github-golang-protobuf-1-5-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "build.sh: missing ${missing[*]}: apt-get install golang-go golang-google-grpc-dev" \
        "golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev protoc-gen-go" \
        "protoc-gen-go-grpc (or tests/harness/deps.sh)" >&2
    exit 1
fi

gopath=$out/gopath
rm -rf "$gopath"
mkdir -p "$gopath/src/tally/clients"
protoc -I"$root/proto" -I/usr/include \
    --go_out="$gopath/src" --go_opt=paths=import \
    --go-grpc_out="$gopath/src" --go-grpc_opt=paths=import \
    "$root"/proto/tally/v1/*.proto
cp -r "$here" "$gopath/src/tally/clients/go"
rm -f "$gopath/src/tally/clients/go/build.sh" "$gopath/src/tally/clients/go/README.md"

unformatted=$(gofmt -l "$here")
if [ -n "$unformatted" ]; then
    echo "build.sh: not gofmt-clean: $unformatted" >&2
    exit 1
fi

export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOPROXY=off GOFLAGS='' \
    GOCACHE=${GOCACHE:-$out/go-build}
cd "$gopath/src/tally/clients/go"
go vet ./...
go build -o "$out/tally-flow" ./cmd/tally-flow
