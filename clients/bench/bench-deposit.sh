#!/usr/bin/env bash
# bench-deposit.sh - tally's Deposit throughput next to pgbench running the
# same event+outbox+operation transaction, against the same throwaway
# PostgreSQL server (fsync on), in the same run; then tally again with a
# LISTEN session on the doorbell channel. Prints each figure and the ratios.
#
#   clients/bench/bench-deposit.sh [BUILD_DIR]     (default build/release)
#
# Env: CONCURRENCY (16), DURATION (20 s), ACCOUNTS (10000), POOL (16).
# Loopback and a unix socket only. Everything it starts, it stops.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
conc=${CONCURRENCY:-16}
dur=${DURATION:-20}
accounts=${ACCOUNTS:-10000}
pool=${POOL:-16}
pgbin=/usr/lib/postgresql/15/bin

for exe in server/command/tally-command server/admin/tally-admin clients/bench/tally-bench; do
    [ -x "$build/$exe" ] || { echo "bench: $build/$exe missing (cmake --build --preset release)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/tally-bench.XXXXXX)
chmod 755 "$work"
cmd_pid=""
listen_pid=""
cleanup() {
    [ -n "$listen_pid" ] && kill "$listen_pid" 2>/dev/null || true
    if [ -n "$cmd_pid" ]; then kill "$cmd_pid" 2>/dev/null || true; wait "$cmd_pid" 2>/dev/null || true; fi
    "$root/tests/harness/pg.sh" destroy "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

conninfo=$("$root/tests/harness/pg.sh" start "$work/pg")
psql "$conninfo" -qAtc "CREATE DATABASE bench" >/dev/null
db="$conninfo dbname=bench"
db=$(echo "$db" | sed 's/dbname=[^ ]* //')
"$build/server/admin/tally-admin" --db "$db" migrate --dir "$root/migrations" >/dev/null
tenant=$("$build/server/admin/tally-admin" --db "$db" tenant create bench)
token=$("$build/server/admin/tally-admin" --db "$db" token create --tenant bench --quiet)

"$build/server/command/tally-command" --db "$db" --listen 127.0.0.1:0 --pool-size "$pool" \
    --ready-file "$work/ready" --log-level warn >"$work/command.log" 2>&1 &
cmd_pid=$!
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
[ -s "$work/ready" ] || { echo "bench: tally-command did not start" >&2; cat "$work/command.log" >&2; exit 1; }
addr=$(cat "$work/ready")

run_tally() {
    "$build/clients/bench/tally-bench" --addr "$addr" --token "$token" --workload deposit \
        --concurrency "$conc" --duration "$dur" --warmup 3 --accounts "$accounts" --json 2>"$work/bench.err"
}
ops() { sed -n 's/.*"ops_per_sec":\([0-9.]*\).*/\1/p'; }

echo "bench: $conc callers, $dur s, $accounts accounts, pool $pool, PostgreSQL $($pgbin/postgres --version | awk '{print $3}'), $(nproc) CPUs"
tally1=$(run_tally)
echo "tally  (no listener):  $tally1"

pg=$(PGOPTIONS='' pgbench "$db" -n -M prepared -c "$conc" -j 2 -T "$dur" -D "tenant=$tenant" \
    -f "$root/clients/bench/append.sql" 2>&1)
pgtps=$(echo "$pg" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | tail -1)
echo "pgbench (same txn):    tps=$pgtps ($(echo "$pg" | grep 'latency average'))"

psql "$db" -qc "LISTEN tally_outbox; SELECT pg_sleep($((dur + 60)));" >/dev/null 2>&1 &
listen_pid=$!
sleep 0.5
tally2=$(run_tally)
echo "tally  (LISTEN open):  $tally2"

t1=$(echo "$tally1" | ops)
t2=$(echo "$tally2" | ops)
awk -v a="$t1" -v b="$pgtps" -v c="$t2" 'BEGIN {
    printf "ratio tally/pgbench            = %.2f  (target >= 0.80)\n", a / b;
    printf "ratio tally listened/unlistened = %.2f  (target >= 0.90)\n", c / a }'
