#!/usr/bin/env bash
# bench-lag.sh - how far the read model trails the log under load, and how
# fast --rebuild replays it. A throwaway PostgreSQL (fsync on), tally-command
# and tally-projector from BUILD_DIR; tally-bench drives Deposits at the
# maximum rate while a sampler reads the projection lag every 100 ms:
#
#   lag_events  = committed events after the "rm" checkpoint
#   lag_seconds = age of the oldest of them (now() - recorded_at; recorded_at
#                 is the writing transaction's start, so this includes the
#                 command's own transaction)
#
# then prints p50 / p99 / max of both, and the events/s of a --rebuild of the
# whole log (the figure tally-projector logs).
#
#   tests/projector/bench-lag.sh [BUILD_DIR]      (default build/release)
#
# Env: CONCURRENCY (16), DURATION (20 s), ACCOUNTS (1000), EXTRA_EVENTS (0:
# before the rebuild, append that many more deposits straight into the log,
# to 1000 accounts, 100 to each per 100,000-event transaction, for a bigger
# replay; the live projector is stopped first, so the rebuild has the
# machine), REBUILD_BATCH (1000: --batch-size of the rebuild),
# REBUILD_LOG_LEVEL (info; debug adds where the batches' time went),
# REBUILD_REFERENCE (a tally-projector binary of another build: it rebuilds
# the same log first, for a before/after ratio from one run).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
conc=${CONCURRENCY:-16}
dur=${DURATION:-20}
accounts=${ACCOUNTS:-1000}
extra=${EXTRA_EVENTS:-0}

for exe in server/command/tally-command projector/tally-projector server/admin/tally-admin \
    clients/bench/tally-bench; do
    [ -x "$build/$exe" ] || {
        echo "bench-lag: $build/$exe missing" >&2
        exit 1
    }
done

work=$(mktemp -d /tmp/tally-lag.XXXXXX)
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
psql "$conninfo" -qAtc "CREATE DATABASE lag" >/dev/null
db=$(echo "$conninfo dbname=lag" | sed 's/dbname=[^ ]* //')
"$build/server/admin/tally-admin" --db "$db" migrate --dir "$root/migrations" >/dev/null
"$build/server/admin/tally-admin" --db "$db" tenant create lag >/dev/null
token=$("$build/server/admin/tally-admin" --db "$db" token create --tenant lag --quiet)

start() { # name, args...
    local name=$1
    shift
    "$@" --db "$db" --listen 127.0.0.1:0 --ready-file "$work/$name.ready" --log-level warn \
        >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$work/$name.ready" ] && return 0; sleep 0.1; done
    echo "bench-lag: $name did not start" >&2
    cat "$work/$name.log" >&2
    exit 1
}
start command "$build/server/command/tally-command" --pool-size 16
start projector "$build/projector/tally-projector"

sampler() {
    while :; do
        psql "$db" -qAtF' ' -c "SELECT count(*), COALESCE(round(extract(epoch FROM
            clock_timestamp() - min(e.recorded_at)) * 1000), 0)
            FROM events e, projector_checkpoints c WHERE c.name = 'rm'
            AND (e.tx_id, e.global_position) > (c.tx_id, c.global_position)" || true
        sleep 0.1
    done
}

echo "bench-lag: $conc callers, $dur s of Deposits, $(nproc) CPUs, PostgreSQL" \
    "$(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}')"
"$build/clients/bench/tally-bench" --addr "$(cat "$work/command.ready")" --token "$token" \
    --workload deposit --concurrency "$conc" --duration "$dur" --warmup 2 \
    --accounts "$accounts" --json >"$work/bench.json" 2>"$work/bench.err" &
bench_pid=$!
sleep 3 # past the warm-up (account opening)
sampler >"$work/lag.txt" &
sampler_pid=$!
pids+=("$sampler_pid")
wait "$bench_pid"
kill "$sampler_pid" 2>/dev/null || true
echo "tally-bench: $(cat "$work/bench.json")"

pct() { # column, percentile
    awk -v c="$1" '{print $c}' "$work/lag.txt" | sort -n |
        awk -v p="$2" '{v[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; print v[i]}'
}
echo "lag samples (events/ms): $(awk '{printf "%s/%s ", $1, $2}' "$work/lag.txt")"
echo "lag over $(wc -l <"$work/lag.txt") samples:" \
    "events p50 $(pct 1 50) p99 $(pct 1 99) max $(pct 1 100);" \
    "ms p50 $(pct 2 50) p99 $(pct 2 99) max $(pct 2 100)"

if [ "$extra" -gt 0 ]; then # 1000 accounts, then rounds of one deposit each
    kill "${pids[1]}" # the live projector: it would replay the bulk beside the rebuild
    wait "${pids[1]}" || true
    psql "$db" -qAt >/dev/null <<'SQL'
INSERT INTO events (event_id, tenant_id, aggregate_type, aggregate_id, version, event_type, data,
                    metadata, operation_id, correlation_id)
SELECT gen_random_uuid(), (SELECT tenant_id FROM tenants LIMIT 1), 'account', a.id, 1,
       'AccountOpened', jsonb_build_object('accountId', a.id, 'owner', 'bulk', 'currency', 'EUR'),
       '{}', gen_random_uuid(), 'bulk'
  FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, 1000)) a;
SQL
    rounds=$(((extra + 999) / 1000))
    for lo in $(seq 2 100 $((rounds + 1))); do # 100 deposits per account per transaction
        hi=$((lo + 99 < rounds + 1 ? lo + 99 : rounds + 1))
        psql "$db" -qAt -v lo=$lo -v hi=$hi >/dev/null <<'SQL'
INSERT INTO events (event_id, tenant_id, aggregate_type, aggregate_id, version, event_type, data,
                    metadata, operation_id, correlation_id)
SELECT gen_random_uuid(), a.tenant_id, 'account', a.aggregate_id, v, 'Deposited',
       '{"amount":{"minorUnits":"1","currency":"EUR"},"reference":"bulk"}', '{}',
       gen_random_uuid(), 'bulk'
  FROM generate_series(:lo, :hi) v,
       (SELECT tenant_id, aggregate_id FROM events
         WHERE correlation_id = 'bulk' AND version = 1) a
 ORDER BY v, a.aggregate_id;
SQL
    done
fi
total=$(psql "$db" -qAtc "SELECT count(*) FROM events")
rebuild() { # projector binary, label
    "$1" --db "$db" --rebuild --batch-size "${REBUILD_BATCH:-1000}" \
        --log-level "${REBUILD_LOG_LEVEL:-info}" >"$work/rebuild.log" 2>&1
    echo "rebuild$2: $(grep -o 'done: .*' "$work/rebuild.log") ($total events in the log)"
}
if [ -n "${REBUILD_REFERENCE:-}" ]; then # the same log, another build: a ratio from one run
    rebuild "$REBUILD_REFERENCE" " (reference $REBUILD_REFERENCE)"
fi
rebuild "$build/projector/tally-projector" ""
# with REBUILD_LOG_LEVEL=debug: where the batches' time went
grep -o 'projection rm_rebuild: [0-9]* events: .*' "$work/rebuild.log" |
    awk '{n += $3; r += $6; d += $9; a += $12; b++}
         END {if (b) printf "rebuild phases over %d batches, %d events: read %.1f s, decode %.1f s,"\
              " apply+commit %.1f s (%.0f/%.0f/%.0f us per event)\n", b, n, r / 1e6, d / 1e6,
              a / 1e6, r / n, d / n, a / n}' 
