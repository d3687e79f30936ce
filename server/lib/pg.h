/* pg.h - libpq plumbing shared by every tally process: connecting with tally's
 * session settings, bounded reconnects, SQLSTATE -> gRPC status, result checks
 * that log the full database error while the caller gets a short client-safe
 * status, and text conversions for bigint/xid8 parameters and columns.
 *
 * One PGconn per thread (libpq connections are not shared). Nothing here logs
 * a conninfo string: it may hold a password. */
#ifndef SERVER_PG_H
#define SERVER_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "trpc.h"

/* Connection options. pg_opts_init fills the defaults; then set what differs.
 * Timeouts in milliseconds: a value < 0 leaves the server's setting alone,
 * 0 disables the timeout (PostgreSQL's meaning of 0). */
struct pg_opts {
    const char *conninfo;         /* key=value or URI; NULL or "": libpq's PG* environment
                                     defaults. Borrowed; never logged. Its own values win
                                     over connect_timeout_s and client encoding. */
    const char *application_name; /* fallback_application_name: used unless the conninfo
                                     or PGAPPNAME names one. Borrowed; may be NULL */
    int statement_timeout_ms;     /* default 30000 */
    int lock_timeout_ms;          /* default 10000 */
    int idle_in_tx_timeout_ms;    /* idle_in_transaction_session_timeout; default 60000 */
    int connect_timeout_s;        /* libpq connect_timeout per attempt; default 10 */
    int connect_attempts;         /* attempts per pg_connect/pg_reconnect (>= 1); default 5 */
    int backoff_ms;               /* wait after the first failed attempt; doubles; default 100 */
    int backoff_max_ms;           /* cap of the wait between attempts; default 2000 */
};

/* Fills o with the defaults above (conninfo NULL, application_name "tally"). */
void pg_opts_init(struct pg_opts *o);

/* Opens a connection, trying up to o->connect_attempts times with exponential
 * backoff (jittered), and applies the session settings (timeouts). Returns the
 * connection (caller owns it: PQfinish) or NULL with st set to UNAVAILABLE
 * ("database unavailable"); every failed attempt is logged with libpq's
 * message. o is only read during the call. Thread-safe (blocks). */
PGconn *pg_connect(const struct pg_opts *o, trpc_status *st);

/* The libpq message of this thread's last failed connection attempt (one
 * line; names host, port and user, never the password), "" if none. For
 * tools that show it to their operator; RPC clients get "database
 * unavailable" only. Thread-local storage, valid until the next attempt. */
const char *pg_last_connect_error(void);

/* Repairs a connection whose PQstatus is CONNECTION_BAD: PQreset with the
 * same bounded backoff as pg_connect, then re-applies the session settings.
 * A good connection is left alone. Returns OK, or UNAVAILABLE with st set
 * (the connection stays bad; the caller may retry later or PQfinish it). */
grpc_status_code pg_reconnect(PGconn *conn, const struct pg_opts *o, trpc_status *st);

/* The SQLSTATE of a failed result; NULL when res is NULL or carries none
 * (connection loss and other client-side failures). Owned by res. */
const char *pg_sqlstate(const PGresult *res);

/* Maps a SQLSTATE (5 characters) to a gRPC status by gRPC's litmus test:
 * 23505 ALREADY_EXISTS; 23502, 23514, class 22 INVALID_ARGUMENT; rest of
 * class 23 FAILED_PRECONDITION; 40001, 40P01, 55P03 ABORTED (retry the
 * transaction); 57014 DEADLINE_EXCEEDED; classes 08, 53, 57P UNAVAILABLE;
 * NULL UNAVAILABLE; anything else (42xxx, 42501 included) INTERNAL. Pure. */
grpc_status_code pg_sqlstate_to_grpc_status(const char *sqlstate);

/* pg_sqlstate_to_grpc_status(pg_sqlstate(res)); res may be NULL. */
grpc_status_code pg_to_grpc_status(const PGresult *res);

/* True (1) when the whole transaction may be retried: serialization failure
 * (40001) or deadlock (40P01). res may be NULL (then 0). */
int pg_is_retryable(const PGresult *res);

/* Logs "<context>: <SQLSTATE> <full libpq error message>" (error level for
 * INTERNAL and UNAVAILABLE, warn for what a request can run into) and sets st
 * to (pg_to_grpc_status(res), msg). msg is the short client-safe text ("could
 * not open account"); the context (printf-style) may name ids but never
 * tokens or conninfo. res may be NULL. Returns the code. */
grpc_status_code pg_fail(const PGresult *res, trpc_status *st, const char *msg, const char *ctx_fmt,
                         ...) __attribute__((format(printf, 4, 5)));

/* Checks a result: the exact status `expect` (PGRES_TUPLES_OK for SELECT and
 * RETURNING, PGRES_COMMAND_OK otherwise) and, when nfields >= 0, the number of
 * columns. On a database error behaves as pg_fail; on a wrong shape logs it
 * and sets INTERNAL with msg. Returns GRPC_STATUS_OK (st untouched) or the
 * code set in st. The row count is the caller's business (0 rows is usually
 * NOT_FOUND). res may be NULL (a failure). */
grpc_status_code pg_check(const PGresult *res, ExecStatusType expect, int nfields, trpc_status *st,
                          const char *msg, const char *ctx_fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Runs a parameterless command (BEGIN, COMMIT, ROLLBACK, SET LOCAL ...) that
 * returns no rows, through PQexecParams. Returns OK or the pg_fail code with
 * st set to (code, msg). Logs failures with sql as the context. */
grpc_status_code pg_command(PGconn *conn, const char *sql, trpc_status *st, const char *msg);

/* Rolls back the current transaction if one is open or failed; for cleanup
 * paths (errors ignored, logged at debug). conn may be NULL. */
void pg_rollback_quietly(PGconn *conn);

/* Text form of a bigint / xid8 parameter: writes into buf (at least
 * PG_INT_BUF bytes) and returns buf, for use as a PQexecParams value. */
#define PG_INT_BUF 24
const char *pg_int64_param(char buf[PG_INT_BUF], int64_t v);
const char *pg_uint64_param(char buf[PG_INT_BUF], uint64_t v);

/* Parses column col of row `row` as a bigint / xid8 (decimal text). Returns 0,
 * or -1 when the value is NULL, not a number or out of range (*out is then
 * left alone). */
int pg_get_int64(const PGresult *res, int row, int col, int64_t *out);
int pg_get_uint64(const PGresult *res, int row, int col, uint64_t *out);

#endif /* SERVER_PG_H */
