#!/usr/bin/env bash
# pg.sh - a project-local PostgreSQL 15 cluster in a directory of our own.
#
#   pg.sh start DIR     initdb on first use, start (or reuse a running one), print the conninfo
#   pg.sh stop DIR      fast shutdown, keep the data
#   pg.sh status DIR    print the conninfo and exit 0 if running, exit 3 if not
#   pg.sh destroy DIR   stop, then delete DIR and everything in it
#
# The cluster listens on a unix socket only (listen_addresses = ''), in its own directory,
# mode 0700, with trust authentication: only its owner (and root) can connect. The port
# only names the socket; a free one is picked on first start and kept in DIR/port. fsync
# stays on. stdout carries exactly one line (the conninfo) for start and status; the server
# log is DIR/server.log.
#
# initdb and postgres refuse to run as root, so as root the cluster belongs to the
# `postgres` user. If that user cannot reach DIR (e.g. a clone under /root, mode 0700) or
# the socket path would be too long for a unix socket, the cluster lives in
# /var/tmp/tally-pg-<hash of DIR> instead and DIR/cluster points at it.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
prog=$(basename "$0")

die() {
    echo "$prog: $*" >&2
    exit 1
}

usage() {
    echo "usage: $prog start|stop|status|destroy DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
case "$dir" in
/*) ;;
*) dir="$(pwd)/$dir" ;;
esac
dir=${dir%/}

[ -x "$PG_BIN/initdb" ] || die "no PostgreSQL 15 in $PG_BIN (run tests/harness/deps.sh)"

# as_owner CMD...: run as the cluster's owner, from / (postgres may not be able to read
# the caller's working directory).
if [ "$(id -u)" -eq 0 ]; then
    getent passwd postgres >/dev/null || die "no 'postgres' user (is postgresql-15 installed?)"
    as_owner() { (cd / && runuser -u postgres -- "$@"); }
else
    as_owner() { (cd / && "$@"); }
fi

# The directory the cluster really lives in (see the header).
cluster_dir() {
    if [ -f "$dir/cluster" ]; then
        cat "$dir/cluster"
        return
    fi
    echo "$dir"
}

# usable_here PATH: can the owner create the cluster in PATH, and is the socket path short
# enough (sun_path is 108 bytes) and free of characters that need conninfo quoting?
usable_here() {
    local p=$1
    [ $((${#p} + 17)) -le 107 ] || return 1
    case "$p" in *[[:space:]\'\"\\]*) return 1 ;; esac
    as_owner test -d "$p" -a -x "$p" -a -w "$p"
}

prepare_dir() {
    local alt
    mkdir -p "$dir"
    [ -f "$dir/cluster" ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
    fi
    chmod 0700 "$dir"
    if ! usable_here "$dir"; then
        alt=/var/tmp/tally-pg-$(printf '%s' "$dir" | sha256sum | cut -c1-16)
        mkdir -p "$alt"
        if [ "$(id -u)" -eq 0 ]; then
            chown postgres: "$alt"
            chown root: "$dir"
        fi
        chmod 0700 "$alt"
        usable_here "$alt" || die "cannot create a cluster in $dir nor in $alt"
        echo "$alt" >"$dir/cluster"
    fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((54000 + (RANDOM % 5000)))
        if ! port_in_use "$p" && [ ! -e "$1/.s.PGSQL.$p" ]; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

conninfo() {
    local c=$1
    echo "host=$c port=$(cat "$c/port") dbname=postgres user=postgres"
}

is_running() {
    local c=$1
    [ -f "$c/data/PG_VERSION" ] && [ -f "$c/port" ] || return 1
    as_owner "$PG_BIN/pg_ctl" status -D "$c/data" >/dev/null 2>&1
}

do_start() {
    local c port
    prepare_dir
    c=$(cluster_dir)
    if is_running "$c"; then
        conninfo "$c"
        return 0
    fi
    if [ ! -f "$c/data/PG_VERSION" ]; then
        rm -rf "$c/data"
        if ! as_owner "$PG_BIN/initdb" -D "$c/data" -U postgres -A trust -E UTF8 \
            --locale=C.UTF-8 >"$c/initdb.log" 2>&1; then
            cat "$c/initdb.log" >&2
            die "initdb failed in $c/data"
        fi
        as_owner tee -a "$c/data/postgresql.conf" >/dev/null <<EOF

# tally: local cluster made by tests/harness/pg.sh (unix socket only, trust, fsync on)
listen_addresses = ''
unix_socket_directories = '$c'
unix_socket_permissions = 0700
max_connections = 200
EOF
    fi
    port=""
    [ -f "$c/port" ] && port=$(cat "$c/port")
    if [ -z "$port" ] || port_in_use "$port"; then
        port=$(pick_port "$c")
        as_owner tee "$c/port" >/dev/null <<<"$port"
    fi
    if ! as_owner "$PG_BIN/pg_ctl" start -D "$c/data" -l "$c/server.log" -w -t 60 \
        -o "-p $port" >/dev/null; then
        tail -n 20 "$c/server.log" >&2 || true
        die "PostgreSQL did not start in $c"
    fi
    conninfo "$c"
}

do_stop() {
    local c
    [ -d "$dir" ] || return 0
    c=$(cluster_dir)
    if is_running "$c"; then
        as_owner "$PG_BIN/pg_ctl" stop -D "$c/data" -m fast -w -t 60 >/dev/null ||
            die "PostgreSQL in $c did not stop"
    fi
}

case "$cmd" in
start) do_start ;;
stop) do_stop ;;
status)
    [ -d "$dir" ] || exit 3
    c=$(cluster_dir)
    is_running "$c" || exit 3
    conninfo "$c"
    ;;
destroy)
    do_stop
    if [ -d "$dir" ]; then
        c=$(cluster_dir)
        [ "$c" != "$dir" ] && rm -rf "$c"
        rm -rf "$dir"
    fi
    ;;
*) usage ;;
esac
