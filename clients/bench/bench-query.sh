#!/usr/bin/env bash
# bench-query.sh - QueryService throughput and latency with commands flowing,
# against a throwaway PostgreSQL server (fsync on) and the three daemons:
#
#   GetAccount              CONCURRENCY callers, WRITERS depositing meanwhile
#   ListEntries (100/page)  the same, accounts with 150 events
#   GetAccountAt            random versions of an account with 100 events, then
#                           of one with 10,000 (snapshots every 100 events keep
#                           the replay short: the two figures should be close)
#
#   clients/bench/bench-query.sh [BUILD_DIR]     (default build/release)
#
# Env: CONCURRENCY (16), WRITERS (4), DURATION (20 s), POOL (16).
# Loopback and a unix socket only. Everything it starts, it stops.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
conc=${CONCURRENCY:-16}
writers=${WRITERS:-4}
dur=${DURATION:-20}
pool=${POOL:-16}
pgbin=/usr/lib/postgresql/15/bin

for exe in server/command/tally-command server/query/tally-query projector/tally-projector \
    server/admin/tally-admin clients/bench/tally-bench; do
    [ -x "$build/$exe" ] || { echo "bench: $build/$exe missing (cmake --build --preset release)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/tally-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    "$root/tests/harness/pg.sh" destroy "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

conninfo=$("$root/tests/harness/pg.sh" start "$work/pg")
psql "$conninfo" -qAtc "CREATE DATABASE bench" >/dev/null
db=$(echo "$conninfo dbname=bench" | sed 's/dbname=[^ ]* //')
"$build/server/admin/tally-admin" --db "$db" migrate --dir "$root/migrations" >/dev/null
"$build/server/admin/tally-admin" --db "$db" tenant create bench >/dev/null
token=$("$build/server/admin/tally-admin" --db "$db" token create --tenant bench --quiet)

# start NAME EXE: a daemon on a free loopback port; its address in $addr
start() {
    "$2" --db "$db" --listen 127.0.0.1:0 --pool-size "$pool" --ready-file "$work/$1.ready" \
        --log-level warn >"$work/$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$work/$1.ready" ] && break; sleep 0.1; done
    [ -s "$work/$1.ready" ] || { echo "bench: $1 did not start" >&2; cat "$work/$1.log" >&2; exit 1; }
    addr=$(cat "$work/$1.ready")
}
start command "$build/server/command/tally-command"
cmd_addr=$addr
start projector "$build/projector/tally-projector"
start query "$build/server/query/tally-query"
qry_addr=$addr

# run QUERY [tally-bench flags...]: one measured run, one JSON line
run() {
    local q=$1
    shift
    "$build/clients/bench/tally-bench" --addr "$cmd_addr" --query-addr "$qry_addr" --token "$token" \
        --workload query --query "$q" --concurrency "$conc" --writers "$writers" \
        --duration "$dur" --warmup 3 --json "$@" 2>"$work/bench.err" ||
        { cat "$work/bench.err" >&2; exit 1; }
}
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
line() {
    printf "%-34s %9.0f/s  p50 %7.2f ms  p99 %7.2f ms  errors %s  deposits meanwhile %6.0f/s\n" \
        "$1" "$(field ops_per_sec <<<"$2")" "$(field p50_ms <<<"$2")" "$(field p99_ms <<<"$2")" \
        "$(field errors <<<"$2")" "$(field writes_per_sec <<<"$2")"
}

echo "bench: $conc callers, $writers writers depositing, $dur s each, pool $pool," \
    "PostgreSQL $($pgbin/postgres --version | awk '{print $3}'), $(nproc) CPUs"
get=$(run get-account --accounts 1000 --history 2)
echo "$get"
entries=$(run list-entries --accounts 64 --history 150)
echo "$entries"
at100=$(run account-at --accounts 1 --history 100)
echo "$at100"
at10k=$(run account-at --accounts 1 --history 10000)
echo "$at10k"
echo
line "GetAccount" "$get"
line "ListEntries (page of 100)" "$entries"
line "GetAccountAt (100 events)" "$at100"
line "GetAccountAt (10,000 events)" "$at10k"
awk -v a="$(field p50_ms <<<"$at100")" -v b="$(field p50_ms <<<"$at10k")" \
    'BEGIN { printf "GetAccountAt p50 10,000 / 100 events = %.2f  (snapshots: expect about 1)\n", b / a }'
