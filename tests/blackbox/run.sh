#!/usr/bin/env bash
# run.sh - the black-box tests: the three daemons from a build tree against a fresh
# database, probed by the Python and Node clients.
#
#   run.sh --command BIN --query BIN --projector BIN --admin BIN
#
# The database is created on the server of TALLY_TEST_DATABASE_URL (a libpq conninfo or
# URL) and dropped afterwards; without it, a throwaway cluster of our own is started
# (tests/harness/pg.sh). The daemons listen on free loopback ports and are always stopped;
# each must exit 0 after SIGTERM (under ASan that includes the leak check). The last line
# is "N passed, M failed"; the exit status is non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
harness=$root/tests/harness
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

declare -A bin
while [ $# -gt 0 ]; do
    case "$1" in
    --command | --query | --projector | --admin)
        [ $# -ge 2 ] || {
            echo "run.sh: $1 needs a value" >&2
            exit 2
        }
        bin[${1#--}]=$2
        shift 2
        ;;
    *)
        echo "usage: run.sh --command BIN --query BIN --projector BIN --admin BIN" >&2
        exit 2
        ;;
    esac
done
for k in command query projector admin; do
    [ -n "${bin[$k]:-}" ] || {
        echo "run.sh: --$k is required" >&2
        exit 2
    }
    [ -x "${bin[$k]}" ] || {
        echo "run.sh: not built: ${bin[$k]}" >&2
        exit 1
    }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tally-blackbox.XXXXXX") # make test finds it there
chmod 0755 "$work" # its pg/ belongs to the postgres user when we are root
own_cluster=""
server=""
dbname=tally_bb_$$_$RANDOM
db_created=0
passed=0
failed=0

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

cleanup() {
    local rc=$?
    for d in command query projector; do
        if ! "$harness/daemon.sh" stop "tally-$d" "$work"; then
            echo "FAIL tally-$d did not shut down cleanly (see above)"
            failed=$((failed + 1))
        fi
    done
    if [ "$db_created" = 1 ]; then
        "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$server" \
            -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" >/dev/null || true
    fi
    if [ -n "$own_cluster" ]; then
        "$harness/pg.sh" destroy "$own_cluster" || true
    fi
    rm -rf "$work"
    echo "$passed passed, $failed failed"
    if [ -n "$signal" ]; then
        # die of the signal, so that ctest and the shells above see an interrupt
        trap - EXIT "$signal"
        kill -s "$signal" $$
    fi
    if [ $failed -gt 0 ] || [ $passed -eq 0 ]; then
        exit 1
    fi
    exit $rc
}
signal=""
trap cleanup EXIT
trap 'signal=INT; exit 130' INT
trap 'signal=TERM; exit 143' TERM

step() {
    # step NAME CMD...: one harness step; a failure ends the run
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        exit 1
    fi
}

# the database
if [ -n "${TALLY_TEST_DATABASE_URL:-}" ]; then
    server=$TALLY_TEST_DATABASE_URL
else
    own_cluster=$work/pg
    server=$("$harness/pg.sh" start "$own_cluster")
fi
step "create database $dbname" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$server" \
    -c "CREATE DATABASE $dbname"
db_created=1
db=$(with_db "$server" "$dbname")
step "tally-admin migrate" "${bin[admin]}" --db "$db" migrate --dir "$root/migrations"
step "tally-admin tenant create blackbox" "${bin[admin]}" --db "$db" tenant create blackbox
token=$("${bin[admin]}" --db "$db" token create --tenant blackbox --name blackbox --quiet)
step "tally-admin token create" test -n "$token"

# the daemons, on free ports, with small pools
declare -A addr
for d in command query projector; do
    a=$("$harness/daemon.sh" start "tally-$d" "$work" "${bin[$d]}" --listen 127.0.0.1:0 \
        --db "$db" --workers 2 --pool-size 2 --log-level info) || a=""
    step "tally-$d ready" test -n "$a"
    addr[$d]=$a
done

# the clients; each prints "N passed, M failed" last
run_client() {
    local name=$1 rc last p f
    shift
    echo "--- $name"
    "$@" 2>&1 | tee "$work/$name.out" && rc=0 || rc=$?
    last=$(tail -n 1 "$work/$name.out")
    if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        p=${BASH_REMATCH[1]}
        f=${BASH_REMATCH[2]}
        passed=$((passed + p))
        failed=$((failed + f))
        if [ "$p" -eq 0 ] || { [ "$f" -eq 0 ] && [ $rc -ne 0 ]; }; then
            echo "FAIL $name: exit status $rc after $p passed, $f failed"
            failed=$((failed + 1))
        fi
    else
        echo "FAIL $name: exit status $rc, no summary line"
        failed=$((failed + 1))
    fi
}
client_args=(--command "${addr[command]}" --query "${addr[query]}"
    --projector "${addr[projector]}" --token "$token" --proto-dir "$root/proto")
run_client python /usr/bin/python3 "$here/python/test_blackbox.py" "${client_args[@]}"
[ -d "$here/node/node_modules" ] || {
    echo "FAIL node: tests/blackbox/node/node_modules missing (run tests/harness/deps.sh)"
    failed=$((failed + 1))
}
run_client node node "$here/node/test.js" "${client_args[@]}"
echo "---"
