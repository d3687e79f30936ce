#!/usr/bin/env bash
# run.sh - the three daemons under valgrind memcheck for a short workload (issue 7, item 5).
#
#   run.sh --command BIN --query BIN --projector BIN --admin BIN --tallyctl BIN
#
# tally-command, tally-query and tally-projector each run under
#   valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
# against a fresh database (on TALLY_TEST_DATABASE_URL's server, else a throwaway cluster of
# our own, tests/harness/pg.sh). The built tallyctl drives a short workload through all three:
# open, deposit, transfer (--wait: the projector's saga), get with --min-position, a failing
# get (NOT_FOUND), a withdrawal beyond the balance (FAILED_PRECONDITION) and a bad token
# (UNAUTHENTICATED), a watch of the first events (Subscribe),
# and a watch left open while the daemons stop. Then each daemon gets SIGTERM and must exit 0:
# valgrind turns any memory error (invalid read or write, use of uninitialised memory, bad
# free) and any definitely lost block into exit status 99, and its report is printed.
#
# "Possibly lost" and still-reachable blocks do not fail the run: gRPC core keeps global
# state (its executor, iomgr and resolver singletons, absl's caches) for the life of the
# process and holds pointers into the middle of blocks, which memcheck reports as possibly
# lost. suppressions.supp (next to this script) silences known third-party reports; see
# there. Every failure prints the daemon's valgrind log.
#
# Valgrind is slow (about 20-50 times): the daemons run with one CQ thread and a pool of two,
# and the whole run takes about a minute here (limit: 3 minutes in ctest).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
harness=$root/tests/harness
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
READY_S=${VALGRIND_READY_TIMEOUT:-90}
STOP_S=${VALGRIND_STOP_TIMEOUT:-90}
prog=valgrind/run.sh

declare -A bin
while [ $# -gt 0 ]; do
    case "$1" in
    --command | --query | --projector | --admin | --tallyctl)
        [ $# -ge 2 ] || {
            echo "$prog: $1 needs a value" >&2
            exit 2
        }
        bin[${1#--}]=$2
        shift 2
        ;;
    *)
        echo "usage: $prog --command BIN --query BIN --projector BIN --admin BIN --tallyctl BIN" >&2
        exit 2
        ;;
    esac
done
for k in command query projector admin tallyctl; do
    [ -n "${bin[$k]:-}" ] || {
        echo "$prog: --$k is required" >&2
        exit 2
    }
    [ -x "${bin[$k]}" ] || {
        echo "$prog: not built: ${bin[$k]}" >&2
        exit 1
    }
done
command -v valgrind >/dev/null || {
    echo "$prog: valgrind is not installed (tests/harness/deps.sh installs it)" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/tally-valgrind.XXXXXX")
chmod 0755 "$work" # its pg/ belongs to the postgres user when we are root
own_cluster=""
server=""
dbname=tally_vg_$$_$RANDOM
db_created=0
failed=0
watch_pid=""
declare -A pid addr

say() { echo "$prog: $*"; }
fail() {
    echo "FAIL $*"
    failed=$((failed + 1))
}

# with_db CONNINFO NAME: the same server, database NAME (key=value or URL form)
with_db() {
    local ci=$1 name=$2 base query rest
    case "$ci" in
    postgres://* | postgresql://*)
        base=${ci%%\?*}
        query=""
        [ "$base" != "$ci" ] && query="?${ci#*\?}"
        rest=${base#*://}
        echo "${base%%://*}://${rest%%/*}/$name$query"
        ;;
    *) echo "$ci dbname=$name" ;;
    esac
}

# launch NAME: the daemon under valgrind, in the background (the three start side by side:
# valgrind's start-up, reading the debug info of gRPC and its dependencies, is slow)
launch() {
    local name=$1
    valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --error-exitcode=99 --num-callers=40 \
        --suppressions="$here/suppressions.supp" --gen-suppressions=all \
        --log-file="$work/$name.valgrind" \
        "${bin[$name]}" --listen 127.0.0.1:0 --db "$db" --workers 1 --pool-size 2 \
        --log-level info --ready-file "$work/$name.addr" </dev/null >"$work/$name.log" 2>&1 &
    pid[$name]=$!
}

# ready NAME: waits for the daemon's ready file
ready() {
    local name=$1 waited=0
    until [ -s "$work/$name.addr" ]; do
        if ! kill -0 "${pid[$name]}" 2>/dev/null; then
            fail "tally-$name exited before it was ready"
            cat "$work/$name.log" "$work/$name.valgrind" >&2 || true
            exit 1
        fi
        waited=$((waited + 1))
        if [ $waited -ge $((READY_S * 10)) ]; then
            fail "tally-$name not ready after $READY_S s"
            exit 1
        fi
        sleep 0.1
    done
    addr[$name]=$(cat "$work/$name.addr")
    say "tally-$name under valgrind at ${addr[$name]} (${SECONDS}s)"
}

# term NAME: SIGTERM (stop waits for the exit)
term() {
    [ -z "${pid[$1]:-}" ] || kill -TERM "${pid[$1]}" 2>/dev/null || true
}

# stop NAME: SIGTERM if not sent yet, wait for the exit; 0 only for exit status 0
stop() {
    local name=$1 p=${pid[$1]:-} waited=0 rc
    [ -n "$p" ] || return 0
    pid[$name]=""
    kill -TERM "$p" 2>/dev/null || true
    while kill -0 "$p" 2>/dev/null; do
        waited=$((waited + 1))
        if [ $waited -ge $((STOP_S * 10)) ]; then
            kill -KILL "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
            fail "tally-$name did not exit within $STOP_S s of SIGTERM"
            return 1
        fi
        sleep 0.1
    done
    wait "$p" && rc=0 || rc=$?
    # the figures that matter, for the log
    sed -n 's/^==[0-9]*== *\(definitely lost\|indirectly lost\|possibly lost\|ERROR SUMMARY\)/    \1/p' \
        "$work/$name.valgrind" | sed "s/^/tally-$name:/"
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -eq 99 ]; then
            fail "tally-$name: valgrind found memory errors or definite leaks; its report:"
        else
            fail "tally-$name exited with status $rc after SIGTERM; its log and report:"
            cat "$work/$name.log"
        fi
        cat "$work/$name.valgrind"
        return 1
    fi
    echo "ok   tally-$name: exit 0 under valgrind after SIGTERM (${SECONDS}s)"
}

cleanup() {
    local rc=$? d
    set +e
    if [ -n "$watch_pid" ]; then
        kill -TERM "$watch_pid" 2>/dev/null
        wait "$watch_pid" 2>/dev/null
    fi
    for d in projector query command; do
        stop "$d"
    done
    if [ "$db_created" = 1 ]; then
        "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$server" \
            -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" >/dev/null
    fi
    [ -n "$own_cluster" ] && "$harness/pg.sh" destroy "$own_cluster"
    rm -rf "$work"
    if [ $failed -gt 0 ] || [ $rc -ne 0 ]; then
        echo "valgrind: FAILED ($failed failures, status $rc)"
        exit 1
    fi
    echo "valgrind: passed in ${SECONDS}s"
    exit 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ctl EXPECTED_EXIT ARGS...: one tallyctl call that must exit with EXPECTED_EXIT
ctl() {
    local want=$1 rc
    shift
    "${bin[tallyctl]}" --addr "${addr[command]}" --query-addr "${addr[query]}" \
        --subscribe-addr "${addr[projector]}" --token "$token" --timeout 60s "$@" \
        >"$work/ctl.out" 2>"$work/ctl.err" && rc=0 || rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "tallyctl $* exited $rc, expected $want"
        cat "$work/ctl.out" "$work/ctl.err"
        exit 1
    fi
    echo "ok   tallyctl $* (exit $rc, ${SECONDS}s)"
}

# the database
if [ -n "${TALLY_TEST_DATABASE_URL:-}" ]; then
    server=$TALLY_TEST_DATABASE_URL
else
    own_cluster=$work/pg
    server=$("$harness/pg.sh" start "$own_cluster")
fi
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$server" -c "CREATE DATABASE $dbname" >/dev/null
db_created=1
db=$(with_db "$server" "$dbname")
"${bin[admin]}" --db "$db" migrate --dir "$root/migrations" >/dev/null
"${bin[admin]}" --db "$db" tenant create valgrind >/dev/null
token=$("${bin[admin]}" --db "$db" token create --tenant valgrind --name valgrind --quiet)
[ -n "$token" ] || {
    fail "no token"
    exit 1
}

for d in command query projector; do
    launch "$d"
done
for d in command query projector; do
    ready "$d"
done

# the workload
a=$(cat /proc/sys/kernel/random/uuid)
b=$(cat /proc/sys/kernel/random/uuid)
ctl 0 open "valgrind a" EUR --account-id "$a"
ctl 0 open "valgrind b" EUR --account-id "$b"
ctl 0 deposit "$a" 100.00 EUR --idempotency-key vg-1
ctl 0 deposit "$a" 100.00 EUR --idempotency-key vg-1 # the stored answer
ctl 0 transfer "$a" "$b" 30.00 EUR --wait
pos=$(sed -n 's/^position: *//p' "$work/ctl.out" | head -n 1)
[ -n "$pos" ] || {
    fail "transfer printed no position"
    cat "$work/ctl.out"
    exit 1
}
ctl 0 get "$b" --min-position "$pos"
grep -q '30.00' "$work/ctl.out" || {
    fail "get $b: balance 30.00 EUR expected"
    cat "$work/ctl.out"
    exit 1
}
ctl 0 entries "$a" --min-position "$pos"
ctl 0 log
ctl 4 get "$(cat /proc/sys/kernel/random/uuid)"
ctl 6 withdraw "$b" 1000.00 EUR
token_ok=$token
token=not-a-token
ctl 8 get "$a"
token=$token_ok
ctl 0 watch --from start --count 5
# a stream still open when the projector stops: its shutdown path runs too
"${bin[tallyctl]}" --subscribe-addr "${addr[projector]}" --token "$token" watch --from start \
    >"$work/watch.out" 2>"$work/watch.err" &
watch_pid=$!
for i in $(seq 1 600); do
    [ "$(wc -l <"$work/watch.out")" -gt 0 ] && break
    sleep 0.1
done
[ "$(wc -l <"$work/watch.out")" -gt 0 ] || fail "the open watch received nothing"

# stop: SIGTERM to all three at once (the open watch ends with UNAVAILABLE), then each exit
for d in projector query command; do
    term "$d"
done
for d in projector query command; do
    stop "$d" || true
done
wait "$watch_pid" 2>/dev/null || true
watch_pid=""
