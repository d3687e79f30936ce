#!/usr/bin/env bash
# run.sh - run one of the example clients in clients/ (Python, Node, Go) as a black box
# against the three daemons of a build tree, on a fresh database.
#
#   run.sh --lang python|node|go --command BIN --query BIN --projector BIN --admin BIN
#          [--cache-dir DIR] [--tls]
#
# --tls: a CA and a server certificate (CN localhost, SAN DNS:localhost, IP:127.0.0.1) are
# made with openssl, every daemon serves TLS only (--tls-cert/--tls-key), and the client
# gets TALLY_TLS_CA (the example clients then use secure channels).
#
# The database is created on the server of TALLY_TEST_DATABASE_URL (a libpq conninfo or
# URL) and dropped afterwards; without it, a throwaway cluster of our own is started
# (tests/harness/pg.sh). tally-admin migrates it and makes a tenant and a token. The
# daemons listen on free loopback ports and are always stopped; each must exit 0 after
# SIGTERM. Node: the dependencies of clients/node are installed from its package-lock.json
# with `npm ci` when node_modules does not match the lock (idempotent). Go: the client is
# built offline from Debian's packages (clients/go/build.sh); --cache-dir keeps Go's build
# cache between runs. The last line is "N passed, M failed"; the exit status is non-zero
# on any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
harness=$root/tests/harness
clients=$root/clients
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

usage() {
    echo "usage: run.sh --lang python|node|go --command BIN --query BIN --projector BIN" \
        "--admin BIN [--cache-dir DIR] [--tls]" >&2
    exit 2
}

lang=""
cache_dir=""
tls=0
declare -A bin
while [ $# -gt 0 ]; do
    if [ "$1" = --tls ]; then
        tls=1
        shift
        continue
    fi
    [ $# -ge 2 ] || usage
    case "$1" in
    --command | --query | --projector | --admin) bin[${1#--}]=$2 ;;
    --lang) lang=$2 ;;
    --cache-dir) cache_dir=$2 ;;
    *) usage ;;
    esac
    shift 2
done
case "$lang" in
python | node | go) ;;
*) usage ;;
esac
# TALLY_GO_CACHE (set by make test) is one Go build cache for every build tree, so the asan
# run does not rebuild grpc-go from source after the debug run did
cache_dir=${TALLY_GO_CACHE:-$cache_dir}
if [ -n "$cache_dir" ]; then
    mkdir -p "$cache_dir"
    cache_dir=$(cd "$cache_dir" && pwd) # GOCACHE must be absolute
fi
for k in command query projector admin; do
    [ -n "${bin[$k]:-}" ] || usage
    [ -x "${bin[$k]}" ] || {
        echo "run.sh: not built: ${bin[$k]}" >&2
        exit 1
    }
done

work=$(mktemp -d /tmp/tally-examples.XXXXXX)
own_cluster=""
server=""
dbname=tally_ex_${lang}_$$_$RANDOM
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
    if [ $failed -gt 0 ] || [ $passed -eq 0 ]; then
        exit 1
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# step NAME CMD...: one harness step; a failure ends the run
step() {
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

# ---- the client's own prerequisites first: no database for a client that cannot run ----

# node_deps: npm ci in clients/node unless node_modules was installed from this very lock
node_deps() {
    local dir=$clients/node stamp want
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "run.sh: node and npm are needed (tests/harness/deps.sh)" >&2
        return 1
    fi
    stamp=$dir/node_modules/.tally-lock.sha256
    want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    echo "run.sh: npm ci in clients/node" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || return 1
    echo "$want" >"$stamp"
}

case "$lang" in
python) step "python: /usr/bin/python3 with grpcio and grpc_tools" \
    /usr/bin/python3 -c "import grpc, grpc_tools.protoc, google.protobuf" ;;
node) step "node: clients/node dependencies (npm ci when the lock changed)" node_deps ;;
go)
    gocache=${cache_dir:-$work}/go-build
    step "go: clients/go/build.sh (offline, Debian's Go packages)" \
        env GOCACHE="$gocache" "$clients/go/build.sh" "$work/go"
    ;;
esac

# ---- the database, a tenant and a token ----
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
step "tally-admin tenant create examples" "${bin[admin]}" --db "$db" tenant create examples
token=$("${bin[admin]}" --db "$db" token create --tenant examples --name "example-$lang" --quiet)
step "tally-admin token create" test -n "$token"

# ---- TLS: a CA and the daemons' certificate, made now ----
# make_certs DIR: ca.pem, server.pem, server.key (EC P-256, valid 2 days)
make_certs() {
    local d=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=tally-examples-ca -keyout "$d/ca.key" -out "$d/ca.pem" &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
            -keyout "$d/server.key" -out "$d/server.csr" &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
            >"$d/server.ext" &&
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
            -CAcreateserial -days 2 -extfile "$d/server.ext" -out "$d/server.pem"
} 2>/dev/null >/dev/null
tls_args=()
if [ "$tls" = 1 ]; then
    step "openssl: a CA and a certificate for localhost and 127.0.0.1" make_certs "$work"
    tls_args=(--tls-cert "$work/server.pem" --tls-key "$work/server.key")
fi

# ---- the daemons, on free ports, with small pools ----
declare -A addr
for d in command query projector; do
    a=$("$harness/daemon.sh" start "tally-$d" "$work" "${bin[$d]}" --listen 127.0.0.1:0 \
        --db "$db" --workers 2 --pool-size 2 --log-level info ${tls_args[@]+"${tls_args[@]}"}) ||
        a=""
    step "tally-$d ready" test -n "$a"
    addr[$d]=$a
done

# ---- the client; each program prints "N passed, M failed" last ----
run_client() {
    local name=$1 out last p f
    shift
    echo "--- $name"
    out=$("$@" 2>&1) || true
    echo "$out"
    last=$(tail -n 1 <<<"$out")
    if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        p=${BASH_REMATCH[1]}
        f=${BASH_REMATCH[2]}
        passed=$((passed + p))
        failed=$((failed + f))
        [ "$p" -gt 0 ] || failed=$((failed + 1))
    else
        echo "FAIL $name: no summary line"
        failed=$((failed + 1))
    fi
}
export TALLY_ADDR=${addr[command]} TALLY_QUERY_ADDR=${addr[query]}
export TALLY_SUBSCRIBE_ADDR=${addr[projector]} TALLY_TOKEN=$token
unset TALLY_TLS_CA TALLY_TLS_CERT TALLY_TLS_KEY TALLY_TLS_SERVER_NAME
if [ "$tls" = 1 ]; then
    export TALLY_TLS_CA=$work/ca.pem
fi
case "$lang" in
python)
    run_client "clients/python/flow.py" /usr/bin/python3 "$clients/python/flow.py" \
        --proto-dir "$root/proto" --gen-dir "$work/py-gen"
    ;;
node)
    run_client "clients/node/flow.js" node "$clients/node/flow.js"
    run_client "clients/node/reflect.js" node "$clients/node/reflect.js"
    ;;
go)
    run_client "clients/go (tally-flow)" "$work/go/tally-flow"
    ;;
esac
echo "---"
