#!/usr/bin/env bash
# bench-sublat.sh - how soon a committed command is visible: commit-to-
# Subscribe latency at a fixed command rate, and read-your-writes latency
# (GetAccount with min_position right after the command). A throwaway
# PostgreSQL (fsync on), tally-command, tally-projector and tally-query from
# BUILD_DIR, and the probe tests/projector/sublat.c (built as
# BUILD_DIR/tests/projector/sublat):
#
#   subscribe: Deposits paced at RATE/s for DURATION s from SENDERS threads
#              (one account each); from each Deposit's reply to its event's
#              arrival on a live Subscribe stream (START_END): p50/p90/p99/max.
#   ryw:       COUNT times in a row, Deposit then GetAccount(min_position =
#              its position); the GetAccount latency p50/p90/p99/max (the
#              Deposit's own latency is printed as the reference).
#
#   tests/projector/bench-sublat.sh [BUILD_DIR]      (default build/release)
#
# Env: RATE (500), DURATION (10), SENDERS (8), COUNT (200), WHAT ("subscribe
# ryw"), PROJECTOR_ARGS (extra tally-projector flags).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
rate=${RATE:-500}
dur=${DURATION:-10}
senders=${SENDERS:-8}
count=${COUNT:-200}
what=${WHAT:-subscribe ryw}

for exe in server/command/tally-command server/query/tally-query projector/tally-projector \
    server/admin/tally-admin tests/projector/sublat; do
    [ -x "$build/$exe" ] || {
        echo "bench-sublat: $build/$exe missing" >&2
        exit 1
    }
done

work=$(mktemp -d /tmp/tally-sublat.XXXXXX)
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
psql "$conninfo" -qAtc "CREATE DATABASE sublat" >/dev/null
db=$(echo "$conninfo dbname=sublat" | sed 's/dbname=[^ ]* //')
"$build/server/admin/tally-admin" --db "$db" migrate --dir "$root/migrations" >/dev/null
"$build/server/admin/tally-admin" --db "$db" tenant create sublat >/dev/null
token=$("$build/server/admin/tally-admin" --db "$db" token create --tenant sublat --quiet)

start() { # name, args...
    local name=$1
    shift
    "$@" --db "$db" --listen 127.0.0.1:0 --ready-file "$work/$name.ready" --log-level warn \
        >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$work/$name.ready" ] && return 0; sleep 0.1; done
    echo "bench-sublat: $name did not start" >&2
    cat "$work/$name.log" >&2
    exit 1
}
start command "$build/server/command/tally-command" --pool-size 16
# shellcheck disable=SC2086 # PROJECTOR_ARGS is a list of flags
start projector "$build/projector/tally-projector" ${PROJECTOR_ARGS:-}
start query "$build/server/query/tally-query"

echo "bench-sublat: $(nproc) CPUs, PostgreSQL" \
    "$(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}'), $build"
for w in $what; do
    case "$w" in
    subscribe)
        echo "== commit-to-Subscribe: $rate Deposits/s for $dur s, $senders senders"
        "$build/tests/projector/sublat" subscribe --cmd "$(cat "$work/command.ready")" \
            --proj "$(cat "$work/projector.ready")" --token "$token" --rate "$rate" \
            --duration "$dur" --senders "$senders"
        ;;
    ryw)
        echo "== read-your-writes: $count x (Deposit, GetAccount(min_position))"
        "$build/tests/projector/sublat" ryw --cmd "$(cat "$work/command.ready")" \
            --query "$(cat "$work/query.ready")" --token "$token" --count "$count"
        ;;
    *)
        echo "bench-sublat: unknown WHAT $w" >&2
        exit 2
        ;;
    esac
done
