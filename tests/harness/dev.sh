#!/usr/bin/env bash
# dev.sh - the local development stack behind `make up` and `make down`.
#
#   dev.sh up     local cluster in .run/pg (reused), database `tally`, migrations, the three
#                 daemons from build/release (restarted if running), tenant "dev" and a
#                 token kept in .run/dev-token; prints addresses and example calls
#   dev.sh down   stops the daemons dev.sh started (pid files in .run/) and the cluster
#
# Expects `cmake --build --preset release` to have run (make up does it).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
harness=$root/tests/harness
run=$root/.run
bindir=${TALLY_BUILD_DIR:-$root/build/release} # the tree whose daemons run
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DAEMONS=(command query projector)
declare -A DEFAULT_PORT=([command]=50051 [query]=50052 [projector]=50053)
declare -A SERVICE=([command]=tally.v1.CommandService [query]=tally.v1.QueryService
    [projector]=tally.v1.SubscriptionService)

die() {
    echo "dev.sh: $*" >&2
    exit 1
}

# find_bin NAME: the one executable NAME in the release build tree
find_bin() {
    local found
    found=$(find "$bindir" -name "$1" -type f -perm -u+x -not -path '*/CMakeFiles/*' 2>/dev/null)
    [ -n "$found" ] || die "$1 is not built in $bindir (run make build)"
    [ "$(wc -l <<<"$found")" -eq 1 ] || die "more than one $1 in $bindir: $found"
    echo "$found"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

psql_q() {
    # psql_q CONNINFO SQL [VAR=VALUE...]: run SQL, print unaligned tuples only
    local ci=$1 sql=$2
    shift 2
    local vars=()
    for v in "$@"; do vars+=(-v "$v"); done
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "${vars[@]}" -d "$ci" <<<"$sql"
}

up() {
    local admin ci db d port listen addr token tenant_exists valid
    declare -A bin addr_of
    admin=$(find_bin tally-admin)
    for d in "${DAEMONS[@]}"; do bin[$d]=$(find_bin "tally-$d"); done
    mkdir -p "$run"

    ci=$("$harness/pg.sh" start "$run/pg")
    db=${ci/dbname=postgres/dbname=tally}
    if [ -z "$(psql_q "$ci" "SELECT 1 FROM pg_database WHERE datname = 'tally'")" ]; then
        psql_q "$ci" "CREATE DATABASE tally" >/dev/null
    fi
    "$admin" --db "$db" migrate --dir "$root/migrations"

    # a running daemon of ours is restarted, so that it runs the binary just built
    for d in "${DAEMONS[@]}"; do
        if "$harness/daemon.sh" status "tally-$d" "$run" >/dev/null; then
            echo "restarting tally-$d"
            "$harness/daemon.sh" stop "tally-$d" "$run" || true
        fi
    done
    for d in "${DAEMONS[@]}"; do
        port=${DEFAULT_PORT[$d]}
        listen=127.0.0.1:$port
        if port_in_use "$port"; then
            echo "port $port is taken: tally-$d gets a free one"
            listen=127.0.0.1:0
        fi
        addr=$("$harness/daemon.sh" start "tally-$d" "$run" "${bin[$d]}" --listen "$listen" \
            --db "$db") || die "tally-$d did not start (log: .run/tally-$d.log)"
        addr_of[$d]=$addr
    done

    # tenant "dev" and its token, made once and reused while they are valid
    tenant_exists=$(psql_q "$db" "SELECT 1 FROM tenants WHERE name = 'dev'")
    if [ -z "$tenant_exists" ]; then
        "$admin" --db "$db" tenant create dev >/dev/null
    fi
    valid=""
    if [ -s "$run/dev-token" ]; then
        valid=$(psql_q "$db" "SELECT 1 FROM api_tokens t JOIN tenants n USING (tenant_id)
            WHERE n.name = 'dev' AND t.revoked_at IS NULL
              AND t.token_hash = sha256(convert_to(:'tok', 'UTF8'))" "tok=$(cat "$run/dev-token")")
    fi
    if [ -z "$valid" ]; then
        (umask 077 && "$admin" --db "$db" token create --tenant dev --name dev --quiet \
            >"$run/dev-token.tmp")
        mv "$run/dev-token.tmp" "$run/dev-token"
    fi
    token=$(cat "$run/dev-token")

    cat <<EOF

tally is up (pid files and logs in .run/; \`make down\` stops it)
  tally-command    ${addr_of[command]}  ${SERVICE[command]}
  tally-query      ${addr_of[query]}  ${SERVICE[query]}
  tally-projector  ${addr_of[projector]}  ${SERVICE[projector]}
  database         $db
  tenant "dev", token (.run/dev-token):
    $token

Examples (grpcurl uses server reflection; no .proto files needed):
  grpcurl -plaintext ${addr_of[command]} list
  grpcurl -plaintext ${addr_of[query]} describe ${SERVICE[query]}
  grpcurl -plaintext -d '{}' ${addr_of[query]} grpc.health.v1.Health/Check
  grpcurl -plaintext -H 'authorization: Bearer $token' \\
      -d '{"owner": "alice", "currency": "EUR"}' ${addr_of[command]} tally.v1.CommandService/OpenAccount
  psql "$db"
From Python (Debian's grpcio, /usr/bin/python3) and Node (@grpc/grpc-js), through reflection:
  /usr/bin/python3 tests/blackbox/python/test_blackbox.py --command ${addr_of[command]} \\
      --query ${addr_of[query]} --projector ${addr_of[projector]} --token $token --proto-dir proto
  node tests/blackbox/node/test.js --command ${addr_of[command]} \\
      --query ${addr_of[query]} --projector ${addr_of[projector]} --token $token --proto-dir proto
EOF
}

down() {
    local d rc=0
    for d in projector query command; do
        "$harness/daemon.sh" stop "tally-$d" "$run" || rc=1
    done
    "$harness/pg.sh" stop "$run/pg" || rc=1
    [ $rc -eq 0 ] && echo "tally is down"
    return $rc
}

case "${1:-}" in
up) up ;;
down) down ;;
*)
    echo "usage: dev.sh up|down" >&2
    exit 2
    ;;
esac
