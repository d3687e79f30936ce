#!/usr/bin/env bash
# daemon.sh - start and stop one tally daemon in the background, with a pid file we can trust.
#
#   daemon.sh start NAME RUNDIR BINARY [ARGS...]
#       Runs BINARY ARGS --ready-file RUNDIR/NAME.addr in a new session, stdout and stderr
#       appended to RUNDIR/NAME.log, and waits (DAEMON_READY_TIMEOUT seconds, default 60)
#       until the daemon has written its bound address there; prints that address. If the
#       daemon exits first, prints the end of its log and fails. When it ends, its exit
#       status goes to RUNDIR/NAME.exit.
#   daemon.sh stop NAME RUNDIR
#       SIGTERM, wait (DAEMON_STOP_TIMEOUT, default 30 s), then SIGKILL. Exits 0 only if the
#       daemon was not running or shut down cleanly with status 0.
#   daemon.sh status NAME RUNDIR
#       Prints the address and exits 0 if the daemon is running, else exits 3.
#
# RUNDIR/NAME.pid holds "PID STARTTIME EXE": a process is ours only if /proc/PID still has
# that start time (field 22 of /proc/PID/stat) and that executable, so a recycled pid is
# never signalled.
set -euo pipefail

prog=daemon.sh
die() {
    echo "$prog: $*" >&2
    exit 1
}
[ $# -ge 3 ] || {
    echo "usage: $prog start NAME RUNDIR BINARY [ARGS...] | stop NAME RUNDIR | status NAME RUNDIR" >&2
    exit 2
}
cmd=$1
name=$2
rundir=$3
shift 3
pidfile=$rundir/$name.pid
addrfile=$rundir/$name.addr
logfile=$rundir/$name.log
exitfile=$rundir/$name.exit

starttime() {
    local stat f
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) } # after the command name, which may hold spaces: field 3 on
    read -r -a f <<<"$stat"
    echo "${f[19]}"
}

# log_tail: the current run's part of the log (from the last start marker), at most 40 lines
log_tail() {
    awk '/^=== .* starting /{n=0} {l[n++]=$0} END{for(i=(n>40?n-40:0);i<n;i++) print l[i]}' \
        "$logfile" >&2 || true
}

# alive_ours PID STARTTIME EXE: is that very process still running?
alive_ours() {
    local exe
    [ "$(starttime "$1" || true)" = "$2" ] || return 1
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    exe=${exe% (deleted)} # the binary was rebuilt while it ran
    [ "$exe" = "$3" ]
}

# running: true if the pid file names a live process of ours; sets pid, st, exe.
running() {
    [ -f "$pidfile" ] || return 1
    read -r pid st exe <"$pidfile" || return 1
    alive_ours "$pid" "$st" "$exe"
}

do_start() {
    local bin waited limit
    [ $# -ge 1 ] || die "start: no binary"
    bin=$(readlink -f "$1")
    shift
    [ -x "$bin" ] || die "$name: no executable $bin (build first)"
    mkdir -p "$rundir"
    if running; then
        die "$name is already running (pid $pid)"
    fi
    rm -f "$pidfile" "$addrfile" "$exitfile"
    echo "=== $(date '+%F %T') starting $bin $*" >>"$logfile"
    # The wrapper subshell waits for the daemon to record its exit status; the daemon
    # itself is what the pid file names.
    # shellcheck disable=SC2016 # expanded by the inner bash
    LOG="$logfile" PIDTMP="$pidfile.tmp" EXITFILE="$exitfile" setsid bash -c '
        "$@" </dev/null >>"$LOG" 2>&1 &
        pid=$!
        echo "$pid" >"$PIDTMP"
        wait "$pid" && rc=0 || rc=$?
        echo "$rc" >"$EXITFILE"
        echo "=== $(date "+%F %T") exited with status $rc" >>"$LOG"
    ' wrapper "$bin" "$@" --ready-file "$addrfile" </dev/null >/dev/null 2>&1 &
    disown $! 2>/dev/null || true
    # the pid of the daemon, then its start time
    limit=$((${DAEMON_READY_TIMEOUT:-60} * 10))
    waited=0
    until [ -s "$pidfile.tmp" ]; do
        sleep 0.05
        waited=$((waited + 1))
        [ $waited -lt 200 ] || die "$name: did not start"
    done
    pid=$(cat "$pidfile.tmp")
    rm -f "$pidfile.tmp"
    st=$(starttime "$pid" || true)
    if [ -n "$st" ]; then
        echo "$pid $st $bin" >"$pidfile"
    fi
    waited=0
    until [ -s "$addrfile" ]; do
        if [ -z "$st" ] || ! alive_ours "$pid" "$st" "$bin"; then
            sleep 0.2 # let the wrapper record the status
            echo "$prog: $name exited before it was ready (status $(cat "$exitfile" 2>/dev/null || echo '?')); end of $logfile:" >&2
            log_tail
            rm -f "$pidfile"
            exit 1
        fi
        waited=$((waited + 1))
        if [ $waited -ge $limit ]; then
            echo "$prog: $name not ready after ${DAEMON_READY_TIMEOUT:-60} s; end of $logfile:" >&2
            log_tail
            do_stop || true
            exit 1
        fi
        sleep 0.1
    done
    cat "$addrfile"
}

do_stop() {
    local waited limit rc
    if ! running; then
        rm -f "$pidfile" "$addrfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    limit=$((${DAEMON_STOP_TIMEOUT:-30} * 10))
    waited=0
    while alive_ours "$pid" "$st" "$exe"; do
        waited=$((waited + 1))
        if [ $waited -ge $limit ]; then
            echo "$prog: $name (pid $pid) ignored SIGTERM for ${DAEMON_STOP_TIMEOUT:-30} s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            rm -f "$pidfile" "$addrfile"
            return 1
        fi
        sleep 0.1
    done
    rm -f "$pidfile" "$addrfile"
    # the wrapper writes the status right after the daemon is reaped
    waited=0
    while [ ! -s "$exitfile" ] && [ $waited -lt 50 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    rc=$(cat "$exitfile" 2>/dev/null || echo '?')
    if [ "$rc" != 0 ]; then
        echo "$prog: $name exited with status $rc after SIGTERM; end of $logfile:" >&2
        log_tail
        return 1
    fi
}

case "$cmd" in
start) do_start "$@" ;;
stop) do_stop ;;
status)
    running || exit 3
    cat "$addrfile" 2>/dev/null || true
    ;;
*) die "unknown command $cmd" ;;
esac
