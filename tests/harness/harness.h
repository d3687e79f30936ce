/* harness.h - the integration-test harness: a throwaway PostgreSQL, a fresh
 * migrated database per test, tenants and tokens, and the real daemons as
 * child processes.
 *
 * PostgreSQL: if TALLY_TEST_DATABASE_URL is set, that server is used (its
 * role must be allowed to CREATE DATABASE); otherwise the first call that
 * needs a database starts a private server for this process: initdb (trust
 * auth) in a temporary folder, postgres listening only on a Unix socket in
 * that folder (so ports never collide). When run as root, the server runs as
 * the `postgres` user. It is stopped (fast shutdown) and its folder removed at
 * exit; it also gets SIGQUIT if this process dies (PR_SET_PDEATHSIG).
 *
 * Every child (postgres, daemons, tally-admin) writes its output to files in
 * one temporary folder per test process ($TMPDIR/tally-test-XXXXXX, or /tmp when TMPDIR is unset or
 * too long for a socket path), never to a pipe; the folder is removed at exit unless
 * TALLY_TEST_KEEP=1. Daemons still running at exit are killed, and a daemon dies with this process
 * (PR_SET_PDEATHSIG). On SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV, SIGBUS
 * and SIGFPE (unless the test handles them) the children are killed and the
 * folder removed before the signal takes its course. A folder left behind
 * anyway (SIGKILL, a sanitizer's _exit) is removed by the next test process
 * that uses the harness, once its owner and its postmaster are gone.
 *
 * Failing to get a database is an error the caller must treat as a test
 * failure (CU_ASSERT_FATAL), never a skip. Every function prints the reason
 * of a failure to stderr, prefixed "harness: ".
 *
 * Not thread-safe: call from the test's main thread only (children are tied
 * to the thread that started them).
 */
#ifndef TESTS_HARNESS_H
#define TESTS_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#define HARNESS_CONNINFO_MAX 1024
#define HARNESS_TOKEN_MAX    256
#define HARNESS_ID_MAX       64
#define HARNESS_ADDR_MAX     64
#define HARNESS_PATH_MAX     512

/* ---- database ---- */

/* Creates a database with a unique name on the test server (starting the
 * server first if needed) and applies every migration by running
 * `tally-admin --db <conninfo> migrate`. Writes its libpq conninfo
 * (key=value form) to conninfo (HARNESS_CONNINFO_MAX bytes). Returns 0, or -1
 * after printing why. Databases on a TALLY_TEST_DATABASE_URL server are
 * dropped at exit. */
int harness_db_create(char conninfo[HARNESS_CONNINFO_MAX]);

/* Creates tenant tenant_name in the database (`tally-admin tenant create`)
 * and a token for it (`tally-admin token create --tenant NAME --quiet`).
 * Writes the token to token (HARNESS_TOKEN_MAX bytes) and, if tenant_id is not
 * NULL, the tenant's id (HARNESS_ID_MAX bytes). Returns 0, or -1 after
 * printing why. */
int harness_tenant_token(const char *conninfo, const char *tenant_name,
                         char tenant_id[HARNESS_ID_MAX], char token[HARNESS_TOKEN_MAX]);

/* ---- the private server (fault tests) ----
 * These act on the private server only: run such a test with
 * TALLY_TEST_DATABASE_URL unset (e.g. ctest ENVIRONMENT_MODIFICATION
 * TALLY_TEST_DATABASE_URL=unset:). Each starts the server first if needed. */

/* 1 when the harness runs its own private server (TALLY_TEST_DATABASE_URL
 * unset), 0 when it uses an external one or cannot get a server. */
int harness_pg_is_private(void);

/* Fast shutdown of the private server (SIGINT, as pg_ctl stop -m fast:
 * sessions are ended, a checkpoint is written), waiting up to 30 s; after
 * that, immediate shutdown and -1. Its socket disappears: connections fail
 * until harness_pg_start. Returns 0, or -1 after printing why (no private
 * server, or it is stopped already). */
int harness_pg_stop(void);

/* Starts the stopped private server again on the same data folder and
 * socket (every conninfo handed out stays valid) and waits until it accepts
 * connections. Its output goes to a new file in harness_tmpdir(). Returns 0,
 * or -1 after printing why. */
int harness_pg_start(void);

/* harness_pg_stop, then harness_pg_start. Returns 0 or -1. */
int harness_pg_restart(void);

/* ---- processes ---- */

/* Runs argv (argv[0] is a path, argv NULL-terminated) with env (NULL or a
 * NULL-terminated list of "NAME=VALUE", added to or replacing this process's
 * environment) and waits up to timeout_ms. If out / err are not NULL they
 * receive the child's stdout / stderr as malloc'd NUL-terminated strings
 * (free()), also on failure when available. Returns the exit status
 * (0..255, or 128 + signal number if the child was killed by a signal), or -1
 * if it could not be run or did not finish in time (then it is killed). */
int harness_run(const char *const *argv, const char *const *env, int timeout_ms, char **out,
                char **err);

/* This process's temporary folder (created on first use; removed at exit),
 * for files a test makes. NULL after printing why if it cannot be made. */
const char *harness_tmpdir(void);

/* Path of the built tally-admin, or NULL if the build had no such target. */
const char *harness_admin_path(void);

/* ---- daemons ---- */

enum harness_daemon_kind {
    HARNESS_COMMAND = 0, /* tally-command */
    HARNESS_QUERY,       /* tally-query */
    HARNESS_PROJECTOR,   /* tally-projector */
};

/* A running daemon. Caller-allocated; filled by harness_daemon_start. */
struct harness_daemon {
    enum harness_daemon_kind kind;
    const char *name;                  /* "tally-command" (static) */
    pid_t pid;                         /* > 0 while running */
    char addr[HARNESS_ADDR_MAX];       /* "127.0.0.1:PORT" from the ready file */
    char log_path[HARNESS_PATH_MAX];   /* stdout + stderr, kept until exit */
    char ready_path[HARNESS_PATH_MAX]; /* the --ready-file */
    int exit_status;                   /* after it ended: 0..255 or 128 + signal; -1 before */
    long stop_ms;                      /* harness_daemon_stop: signal to exit, milliseconds */
};

/* Path of the built daemon executable, or NULL if the build had none. */
const char *harness_daemon_path(enum harness_daemon_kind kind);

/* "tally-command", "tally-query", "tally-projector". */
const char *harness_daemon_name(enum harness_daemon_kind kind);

/* Starts the daemon with `--listen 127.0.0.1:0 --ready-file <tmp> --db
 * <conninfo>` followed by args (NULL or NULL-terminated; later flags win),
 * env as in harness_run, output to d->log_path. Waits (up to 20 s) until the
 * ready file appears and fills d->addr. Returns 0, or -1 after printing why
 * and the daemon's log (it exited early: d->exit_status set; or it was not
 * ready in time: it is killed). conninfo may be NULL (no --db). */
int harness_daemon_start(struct harness_daemon *d, enum harness_daemon_kind kind,
                         const char *conninfo, const char *const *args, const char *const *env);

/* Sends sig (SIGTERM, SIGINT) and waits up to timeout_ms for the exit; after
 * that, SIGKILL (reported on stderr). Sets d->stop_ms and d->exit_status and
 * returns the exit status (128 + 9 after a SIGKILL); prints the log unless
 * the status is 0. A daemon that already ended just returns its status. */
int harness_daemon_signal_stop(struct harness_daemon *d, int sig, int timeout_ms);

/* harness_daemon_signal_stop(d, SIGTERM, timeout_ms). */
int harness_daemon_stop(struct harness_daemon *d, int timeout_ms);

/* SIGKILL and wait (a crash). Returns the exit status (128 + 9). */
int harness_daemon_kill9(struct harness_daemon *d);

/* 1 while the daemon runs; 0 once it has ended (then it is reaped: pid 0,
 * exit_status set, and its log printed) or was never started. */
int harness_daemon_running(struct harness_daemon *d);

/* The daemon's output so far, malloc'd and NUL-terminated (free()); NULL if
 * unreadable. */
char *harness_daemon_log(const struct harness_daemon *d);

/* Prints the daemon's output so far to stderr, framed with its name. */
void harness_daemon_print_log(const struct harness_daemon *d);

#endif /* TESTS_HARNESS_H */
