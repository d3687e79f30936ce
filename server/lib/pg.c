/* pg.c - see pg.h. */
#include "pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

void pg_opts_init(struct pg_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->conninfo = NULL;
    o->application_name = "tally";
    o->statement_timeout_ms = 30000;
    o->lock_timeout_ms = 10000;
    o->idle_in_tx_timeout_ms = 60000;
    o->connect_timeout_s = 10;
    o->connect_attempts = 5;
    o->backoff_ms = 100;
    o->backoff_max_ms = 2000;
}

static void sleep_ms(int ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Waits between attempts: half the current backoff plus a random half, so
 * that many workers losing the database together do not reconnect in step.
 * Returns the next backoff (doubled, capped). */
static int backoff_wait(int backoff, int cap)
{
    static _Thread_local unsigned int seed;
    struct timespec now;
    int half;

    if (seed == 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        seed = (unsigned int)now.tv_nsec ^ (unsigned int)(uintptr_t)&now;
    }
    if (backoff < 1)
        backoff = 1;
    half = backoff / 2;
    sleep_ms(half + (half > 0 ? rand_r(&seed) % (half + 1) : 1));
    if (backoff > cap / 2)
        return cap > 0 ? cap : backoff;
    return backoff * 2;
}

static const char *ms_value(char buf[PG_INT_BUF], int ms)
{
    return ms < 0 ? NULL : pg_int64_param(buf, ms);
}

/* Session settings for tally's own connections, in one round trip. A NULL
 * parameter keeps the current value (conninfo options, role defaults). */
static int apply_settings(PGconn *conn, const struct pg_opts *o)
{
    static const char sql[] =
        "SELECT set_config('statement_timeout', "
        "coalesce($1, current_setting('statement_timeout')), false), "
        "set_config('lock_timeout', coalesce($2, current_setting('lock_timeout')), false), "
        "set_config('idle_in_transaction_session_timeout', "
        "coalesce($3, current_setting('idle_in_transaction_session_timeout')), false)";
    char b1[PG_INT_BUF], b2[PG_INT_BUF], b3[PG_INT_BUF];
    const char *params[3];
    PGresult *res;
    int rc = 0;

    params[0] = ms_value(b1, o->statement_timeout_ms);
    params[1] = ms_value(b2, o->lock_timeout_ms);
    params[2] = ms_value(b3, o->idle_in_tx_timeout_ms);
    res = PQexecParams(conn, sql, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_warn("applying session settings failed: %s",
                 res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* Server notices and warnings go to our log, not raw to stderr. */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    if (strncmp(message, "WARNING", 7) == 0)
        log_warn("database: %s", message);
    else
        log_debug("database: %s", message);
}

static PGconn *connect_once(const struct pg_opts *o)
{
    const char *keys[5];
    const char *vals[5];
    char timeout[PG_INT_BUF];
    PGconn *conn;
    int n = 0;

    /* Our defaults come before dbname: with expand_dbname the conninfo's own
     * values are processed later and win (libpq keeps the last value). */
    if (o->connect_timeout_s > 0) {
        keys[n] = "connect_timeout";
        vals[n++] = pg_int64_param(timeout, o->connect_timeout_s);
    }
    keys[n] = "client_encoding";
    vals[n++] = "UTF8";
    if (o->conninfo != NULL && o->conninfo[0] != '\0') {
        keys[n] = "dbname";
        vals[n++] = o->conninfo;
    }
    if (o->application_name != NULL) {
        keys[n] = "fallback_application_name";
        vals[n++] = o->application_name;
    }
    keys[n] = NULL;
    vals[n] = NULL;
    conn = PQconnectdbParams(keys, vals, 1);
    if (conn != NULL)
        PQsetNoticeProcessor(conn, notice_to_log, NULL); /* kept across PQreset */
    return conn;
}

static void fold_lines(char *dst, size_t cap, const char *src);

static _Thread_local char last_connect_error[512];

const char *pg_last_connect_error(void)
{
    return last_connect_error;
}

/* libpq's connection messages name host, port and user, never the password. */
static void log_attempt(PGconn *conn, int attempt, int attempts)
{
    const char *err = conn ? PQerrorMessage(conn) : "out of memory";

    if (err[0] == '\0')
        err = "session settings failed";
    fold_lines(last_connect_error, sizeof(last_connect_error), err);
    log_warn("database connection attempt %d/%d failed: %s", attempt, attempts, last_connect_error);
}

PGconn *pg_connect(const struct pg_opts *o, trpc_status *st)
{
    int attempts = o->connect_attempts > 0 ? o->connect_attempts : 1;
    int backoff = o->backoff_ms;
    PGconn *conn = NULL;

    for (int attempt = 1;; attempt++) {
        conn = connect_once(o);
        if (conn != NULL && PQstatus(conn) == CONNECTION_OK && apply_settings(conn, o) == 0)
            return conn;
        log_attempt(conn, attempt, attempts);
        PQfinish(conn);
        conn = NULL;
        if (attempt >= attempts)
            break;
        backoff = backoff_wait(backoff, o->backoff_max_ms);
    }
    trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
    return NULL;
}

grpc_status_code pg_reconnect(PGconn *conn, const struct pg_opts *o, trpc_status *st)
{
    int attempts = o->connect_attempts > 0 ? o->connect_attempts : 1;
    int backoff = o->backoff_ms;

    if (conn == NULL)
        return trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
    if (PQstatus(conn) == CONNECTION_OK)
        return GRPC_STATUS_OK;
    for (int attempt = 1;; attempt++) {
        PQreset(conn); /* same parameters as the original connect */
        if (PQstatus(conn) == CONNECTION_OK && apply_settings(conn, o) == 0) {
            log_info("database connection re-established (attempt %d)", attempt);
            return GRPC_STATUS_OK;
        }
        log_attempt(conn, attempt, attempts);
        if (attempt >= attempts)
            break;
        backoff = backoff_wait(backoff, o->backoff_max_ms);
    }
    return trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
}

const char *pg_sqlstate(const PGresult *res)
{
    return res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
}

grpc_status_code pg_sqlstate_to_grpc_status(const char *s)
{
    if (s == NULL) /* no result / no SQLSTATE: connection trouble */
        return GRPC_STATUS_UNAVAILABLE;
    if (strcmp(s, "23505") == 0) /* unique_violation */
        return GRPC_STATUS_ALREADY_EXISTS;
    if (strcmp(s, "23502") == 0 || strcmp(s, "23514") == 0 || strncmp(s, "22", 2) == 0)
        return GRPC_STATUS_INVALID_ARGUMENT; /* not-null, check, data exception */
    if (strncmp(s, "23", 2) == 0)            /* FK, exclusion: depends on current state */
        return GRPC_STATUS_FAILED_PRECONDITION;
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "55P03") == 0)
        return GRPC_STATUS_ABORTED; /* serialization, deadlock, lock: retry txn */
    if (strcmp(s, "57014") == 0)    /* query_canceled (statement_timeout) */
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0 || strncmp(s, "57P", 3) == 0)
        return GRPC_STATUS_UNAVAILABLE; /* connection, resources, shutdown */
    return GRPC_STATUS_INTERNAL;        /* 42xxx etc.: our bug or a missing migration */
}

grpc_status_code pg_to_grpc_status(const PGresult *res)
{
    return pg_sqlstate_to_grpc_status(pg_sqlstate(res));
}

int pg_is_retryable(const PGresult *res)
{
    const char *s = pg_sqlstate(res);

    return s != NULL && (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0);
}

/* libpq's message spans lines (ERROR, DETAIL, HINT, each ending in '\n');
 * the log takes one line per event, so fold them. */
static void fold_lines(char *dst, size_t cap, const char *src)
{
    size_t n = 0;

    for (; *src != '\0' && n + 1 < cap; src++) {
        if (*src == '\n') {
            while (src[1] == ' ' || src[1] == '\t') /* libpq indents hint lines */
                src++;
            if (src[1] != '\0' && n + 3 < cap) {
                memcpy(dst + n, " | ", 3);
                n += 3;
            }
            continue;
        }
        dst[n++] = *src == '\t' ? ' ' : *src;
    }
    dst[n] = '\0';
}

static grpc_status_code vfail(const PGresult *res, trpc_status *st, const char *msg,
                              const char *ctx_fmt, va_list ap)
{
    grpc_status_code code = pg_to_grpc_status(res);
    const char *sqlstate = pg_sqlstate(res);
    const char *err = res ? PQresultErrorMessage(res) : "";
    char ctx[512];
    char text[1024];

    vsnprintf(ctx, sizeof(ctx), ctx_fmt, ap);
    if (err[0] == '\0')
        err = res ? "no error message (connection lost?)" : "no result (out of memory?)";
    fold_lines(text, sizeof(text), err);
    /* error: our bug or the infrastructure; warn: what the request ran into */
    if (code != GRPC_STATUS_INTERNAL && code != GRPC_STATUS_UNAVAILABLE)
        log_warn("%s: %s %s", ctx, sqlstate ? sqlstate : "-----", text);
    else
        log_error("%s: %s %s", ctx, sqlstate ? sqlstate : "-----", text);
    return trpc_status_set(st, code, "%s", msg);
}

grpc_status_code pg_fail(const PGresult *res, trpc_status *st, const char *msg, const char *ctx_fmt,
                         ...)
{
    grpc_status_code code;
    va_list ap;

    va_start(ap, ctx_fmt);
    code = vfail(res, st, msg, ctx_fmt, ap);
    va_end(ap);
    return code;
}

grpc_status_code pg_check(const PGresult *res, ExecStatusType expect, int nfields, trpc_status *st,
                          const char *msg, const char *ctx_fmt, ...)
{
    grpc_status_code code = GRPC_STATUS_OK;
    ExecStatusType got = PQresultStatus(res); /* NULL -> PGRES_FATAL_ERROR */
    char ctx[512];
    va_list ap;

    va_start(ap, ctx_fmt);
    if (got != expect) {
        if (got == PGRES_FATAL_ERROR || got == PGRES_NONFATAL_ERROR || got == PGRES_BAD_RESPONSE) {
            code = vfail(res, st, msg, ctx_fmt, ap);
        } else {
            vsnprintf(ctx, sizeof(ctx), ctx_fmt, ap);
            log_error("%s: unexpected result status %s (expected %s)", ctx, PQresStatus(got),
                      PQresStatus(expect));
            code = trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s", msg);
        }
    } else if (nfields >= 0 && PQnfields(res) != nfields) {
        vsnprintf(ctx, sizeof(ctx), ctx_fmt, ap);
        log_error("%s: unexpected result shape: %d columns (expected %d)", ctx, PQnfields(res),
                  nfields);
        code = trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s", msg);
    }
    va_end(ap);
    return code;
}

grpc_status_code pg_command(PGconn *conn, const char *sql, trpc_status *st, const char *msg)
{
    PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    grpc_status_code code = pg_check(res, PGRES_COMMAND_OK, -1, st, msg, "%s", sql);

    PQclear(res);
    return code;
}

void pg_rollback_quietly(PGconn *conn)
{
    PGTransactionStatusType ts;
    PGresult *res;

    if (conn == NULL)
        return;
    ts = PQtransactionStatus(conn);
    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)
        return;
    res = PQexecParams(conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        log_debug("rollback failed: %s", res ? PQresultErrorMessage(res) : "no result");
    PQclear(res);
}

const char *pg_int64_param(char buf[PG_INT_BUF], int64_t v)
{
    snprintf(buf, PG_INT_BUF, "%" PRId64, v);
    return buf;
}

const char *pg_uint64_param(char buf[PG_INT_BUF], uint64_t v)
{
    snprintf(buf, PG_INT_BUF, "%" PRIu64, v);
    return buf;
}

static const char *column_text(const PGresult *res, int row, int col)
{
    if (res == NULL || row < 0 || row >= PQntuples(res) || col < 0 || col >= PQnfields(res) ||
        PQgetisnull(res, row, col))
        return NULL;
    return PQgetvalue(res, row, col);
}

int pg_get_int64(const PGresult *res, int row, int col, int64_t *out)
{
    const char *s = column_text(res, row, col);
    char *end;
    long long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

int pg_get_uint64(const PGresult *res, int row, int col, uint64_t *out)
{
    const char *s = column_text(res, row, col);
    char *end;
    unsigned long long v;

    /* strtoull accepts "-1" (wrapping it): a sign is never a valid xid8 */
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}
