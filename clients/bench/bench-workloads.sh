#!/usr/bin/env bash
# bench-workloads.sh - tally-bench's transfer, mixed and subscribe-latency
# workloads against a throwaway PostgreSQL server (fsync on) and the three
# daemons, one JSON line each, then a summary:
#
#   transfer --wait      CONCURRENCY callers, Transfer of 1 cent, each call
#                        waiting for the saga's outcome
#   subscribe-latency    Deposits at RATE/s, reply -> event on one Subscribe
#                        stream from the end (tally-projector)
#   mixed                every command and the common queries (bench_mixed.c)
#   transfer             Transfer of 1 cent, no wait
#
#   clients/bench/bench-workloads.sh [BUILD_DIR]     (default build/release)
#
# Env: CONCURRENCY (16), DURATION (20 s), POOL (16), RATE (200),
# TLS=1 (the daemons and tally-bench over TLS, certificates made by openssl),
# WORKLOADS (a subset of "transfer-wait subscribe mixed transfer", in that order).
# Loopback and a unix socket only. Everything it starts, it stops.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
conc=${CONCURRENCY:-16}
dur=${DURATION:-20}
pool=${POOL:-16}
rate=${RATE:-200}
workloads=" ${WORKLOADS:-transfer-wait subscribe mixed transfer} "
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

tls_daemon=()
tls_bench=()
if [ "${TLS:-0}" = 1 ]; then
    (
        cd "$work"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj /CN=bench-ca -keyout ca.key -out ca.pem
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
            -keyout server.key -out server.csr
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext -out server.pem
    ) >/dev/null 2>&1
    tls_daemon=(--tls-cert "$work/server.pem" --tls-key "$work/server.key")
    tls_bench=(--tls-ca "$work/ca.pem")
fi

conninfo=$("$root/tests/harness/pg.sh" start "$work/pg")
psql "$conninfo" -qAtc "CREATE DATABASE bench" >/dev/null
db=$(echo "$conninfo dbname=bench" | sed 's/dbname=[^ ]* //')
"$build/server/admin/tally-admin" --db "$db" migrate --dir "$root/migrations" >/dev/null
"$build/server/admin/tally-admin" --db "$db" tenant create bench >/dev/null
token=$("$build/server/admin/tally-admin" --db "$db" token create --tenant bench --quiet)

# start NAME EXE: a daemon on a free loopback port; its address in $addr
start() {
    "$2" --db "$db" --listen 127.0.0.1:0 --pool-size "$pool" --ready-file "$work/$1.ready" \
        --log-level warn ${tls_daemon[@]+"${tls_daemon[@]}"} >"$work/$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$work/$1.ready" ] && break; sleep 0.1; done
    [ -s "$work/$1.ready" ] || { echo "bench: $1 did not start" >&2; cat "$work/$1.log" >&2; exit 1; }
    addr=$(cat "$work/$1.ready")
}
start command "$build/server/command/tally-command"
cmd_addr=$addr
start projector "$build/projector/tally-projector"
sub_addr=$addr
start query "$build/server/query/tally-query"
qry_addr=$addr

# run WORKLOAD [tally-bench flags...]: one measured run, one JSON line
run() {
    local w=$1
    shift
    "$build/clients/bench/tally-bench" --addr "$cmd_addr" --query-addr "$qry_addr" \
        --subscribe-addr "$sub_addr" --token "$token" ${tls_bench[@]+"${tls_bench[@]}"} \
        --workload "$w" --concurrency "$conc" --duration "$dur" --warmup 3 --json "$@" \
        2>"$work/bench.err" || { cat "$work/bench.err" >&2; exit 1; }
    grep -E ' x [A-Z_]+$' "$work/bench.err" >&2 || true
}
field() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; } # the first: not one of "ops"
line() {
    printf "%-30s %8.0f/s  p50 %7.2f ms  p99 %7.2f ms  p99.9 %7.2f ms  errors %s\n" \
        "$1" "$(field ops_per_sec <<<"$2")" "$(field p50_ms <<<"$2")" "$(field p99_ms <<<"$2")" \
        "$(field p999_ms <<<"$2")" "$(field errors <<<"$2")"
}

echo "bench: $conc callers, $dur s each, pool $pool, PostgreSQL" \
    "$($pgbin/postgres --version | awk '{print $3}'), $(nproc) CPUs${TLS:+, TLS=$TLS}"
# the two that need an idle projector first: a Transfer leaves saga steps for the
# projector to run after the call returned (the setups wait for the read model, which
# does not wait for those)
has() { [[ "$workloads" == *" $1 "* ]]; }
has transfer-wait && { transfer_wait=$(run transfer --wait); echo "$transfer_wait"; }
has subscribe && { sub=$(run subscribe-latency --rate "$rate"); echo "$sub"; }
has mixed && { mixed=$(run mixed); echo "$mixed"; }
has transfer && { transfer=$(run transfer); echo "$transfer"; }
echo
has transfer && line "Transfer (no wait)" "$transfer"
has transfer-wait && line "Transfer --wait (saga done)" "$transfer_wait"
has mixed && line "mixed (60% writes)" "$mixed"
if has subscribe; then
    printf "%-30s %8s/s  p50 %7.2f ms  p99 %7.2f ms  p99.9 %7.2f ms  max %.2f ms  missing %s\n" \
        "Subscribe delivery (reply->event)" "$rate" "$(field p50_ms <<<"$sub")" \
        "$(field p99_ms <<<"$sub")" "$(field p999_ms <<<"$sub")" "$(field max_ms <<<"$sub")" \
        "$(field missing <<<"$sub")"
fi
