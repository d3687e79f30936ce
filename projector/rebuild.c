/* rebuild.c - see rebuild.h. */
#include "rebuild.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "leader.h"
#include "log.h"
#include "pconn.h"
#include "rmproj.h"

#define REBUILD_CHECKPOINT "rm_rebuild"
#define REBUILD_SCHEMA     "rm_rebuild"
#define SWAP_ATTEMPTS      20
#define STEP_ERRORS_MAX    20

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Runs a parameterless statement list (no results wanted). */
static grpc_status_code exec(PGconn *conn, const char *sql, trpc_status *st)
{
    return pg_command(conn, sql, st, "rebuild failed");
}

/* A fresh rm_rebuild schema, checkpoint and dead-letter slate. */
static grpc_status_code prepare(PGconn *conn, trpc_status *st)
{
    static const char reset[] =
        "DELETE FROM projector_checkpoints WHERE name = '" REBUILD_CHECKPOINT "'";
    static const char dead[] =
        "WITH x AS (UPDATE dead_letters SET queued_behind = NULL"
        "            WHERE projection = '" REBUILD_CHECKPOINT "' RETURNING id)"
        " SELECT count(*) FROM x";
    static const char drop_dead[] =
        "DELETE FROM dead_letters WHERE projection = '" REBUILD_CHECKPOINT "'";
    PGresult *res;

    if (exec(conn, "BEGIN", st) != GRPC_STATUS_OK ||
        exec(conn, "DROP SCHEMA IF EXISTS " REBUILD_SCHEMA " CASCADE", st) != GRPC_STATUS_OK)
        goto fail;
    res = PQexecParams(conn, "SELECT rm_create_tables('" REBUILD_SCHEMA "')", 0, NULL, NULL, NULL,
                       NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 1, st, "rebuild failed", "create %s", REBUILD_SCHEMA) !=
        GRPC_STATUS_OK) {
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    res = PQexecParams(conn, dead, 0, NULL, NULL, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 1, st, "rebuild failed", "reset dead letters") !=
        GRPC_STATUS_OK) {
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    if (exec(conn, drop_dead, st) != GRPC_STATUS_OK || exec(conn, reset, st) != GRPC_STATUS_OK ||
        rmproj_checkpoint_ensure(conn, REBUILD_CHECKPOINT, st) != GRPC_STATUS_OK ||
        exec(conn, "COMMIT", st) != GRPC_STATUS_OK)
        goto fail;
    return GRPC_STATUS_OK;
fail:
    pg_rollback_quietly(conn);
    return st->code;
}

/* The secondary indexes of the rebuild's tables (those that back no
 * constraint: the projection's statements use only primary keys), dropped
 * while the log is replayed and created again, each in one pass, before
 * the swap: maintaining them row by row made most of a replay's cost. */
struct deferred_indexes {
    PGresult *defs; /* column 0: CREATE INDEX statement */
};

static grpc_status_code drop_indexes(PGconn *conn, struct deferred_indexes *d, trpc_status *st)
{
    static const char list[] =
        "SELECT pg_get_indexdef(i.indexrelid), quote_ident(n.nspname) || '.' ||"
        "       quote_ident(c.relname)"
        "  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        "  JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = '" REBUILD_SCHEMA "'"
        "   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        " ORDER BY c.relname";
    char sql[256];

    d->defs = PQexecParams(conn, list, 0, NULL, NULL, NULL, NULL, 0);
    if (pg_check(d->defs, PGRES_TUPLES_OK, 2, st, "rebuild failed", "list indexes") !=
        GRPC_STATUS_OK) {
        PQclear(d->defs);
        d->defs = NULL;
        return st->code;
    }
    for (int i = 0; i < PQntuples(d->defs); i++) {
        snprintf(sql, sizeof(sql), "DROP INDEX %s", PQgetvalue(d->defs, i, 1));
        if (exec(conn, sql, st) != GRPC_STATUS_OK)
            return st->code;
    }
    log_info("rebuild: %d secondary indexes deferred to the end of the replay", PQntuples(d->defs));
    return GRPC_STATUS_OK;
}

/* Creates the dropped indexes again (idempotent: a swap attempt that failed
 * may have created them already). */
static grpc_status_code create_indexes(PGconn *conn, struct deferred_indexes *d, trpc_status *st)
{
    long t0 = now_ms();

    for (int i = 0; d->defs && i < PQntuples(d->defs); i++) {
        static const char prefix[] = "CREATE INDEX ";
        const char *def = PQgetvalue(d->defs, i, 0);
        char sql[1024];

        if (strncmp(def, prefix, sizeof(prefix) - 1) != 0)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "unexpected index definition");
        /* CONCURRENTLY: its build holds no xid, so it does not hold the
           commit fence (DESIGN §5) for everyone while it scans; a failure
           leaves an invalid index, but then the rebuild gives up */
        snprintf(sql, sizeof(sql), "CREATE INDEX CONCURRENTLY IF NOT EXISTS %s",
                 def + sizeof(prefix) - 1);
        if (exec(conn, sql, st) != GRPC_STATUS_OK)
            return st->code;
    }
    if (d->defs)
        log_info("rebuild: %d secondary indexes created in %ld ms", PQntuples(d->defs),
                 now_ms() - t0);
    PQclear(d->defs);
    d->defs = NULL;
    return GRPC_STATUS_OK;
}

/* Steps until the rebuild is at the fence. Returns 0, or -1 when it keeps
 * failing. *conn may be replaced (reconnects). */
static int catch_up(rmproj *p, PGconn **conn, const struct pg_opts *o, long *events)
{
    int errors = 0;

    for (;;) {
        size_t applied = 0;

        switch (rmproj_step(p, *conn, &applied)) {
        case RMPROJ_IDLE:
            return 0;
        case RMPROJ_PROGRESS:
            *events += (long)applied;
            errors = 0;
            break;
        case RMPROJ_RETRY_LATER:
            sleep_ms(rmproj_retry_delay_ms(p));
            break;
        default: {
            trpc_status st = {0};

            if (++errors > STEP_ERRORS_MAX)
                return -1;
            PQfinish(*conn);
            sleep_ms(200L * errors);
            *conn = pconn_open(o, REBUILD_SCHEMA, &st);
            if (*conn == NULL)
                return -1;
            rmproj_invalidate(p);
            break;
        }
        }
    }
}

/* The swap transaction (see rebuild.h, step 4). Returns OK, or an error
 * after which nothing changed (rolled back). */
static grpc_status_code swap(rmproj *p, PGconn *conn, trpc_status *st)
{
    static const char lock_live[] = "SELECT tx_id::text, global_position FROM projector_checkpoints"
                                    " WHERE name = 'rm' FOR UPDATE";
    static const char set_live[] =
        "UPDATE projector_checkpoints SET tx_id = $1::xid8, global_position = $2::bigint,"
        "       epoch = epoch + 1, updated_at = now() WHERE name = 'rm'";
    static const char mark_outbox[] =
        "UPDATE outbox SET published_at = now()"
        " WHERE published_at IS NULL AND (tx_id, global_position) <= ($1::xid8, $2::bigint)";
    static const char dead_letters[] =
        "WITH old AS ("
        "  UPDATE dead_letters SET queued_behind = NULL,"
        "         resolved_at = COALESCE(resolved_at, now())"
        "   WHERE projection = 'rm' RETURNING id"
        "), gone AS ("
        "  DELETE FROM dead_letters d WHERE d.projection = 'rm' AND EXISTS ("
        "    SELECT 1 FROM dead_letters r WHERE r.projection = '" REBUILD_CHECKPOINT "'"
        "       AND r.global_position = d.global_position) RETURNING id"
        ") SELECT (SELECT count(*) FROM old), (SELECT count(*) FROM gone)";
    PGresult *res = NULL;
    struct store_position live = {0}, rebuilt;
    char tx[PG_INT_BUF], gp[PG_INT_BUF];
    const char *values[2];

    if (exec(conn, "BEGIN", st) != GRPC_STATUS_OK)
        goto fail;
    res = PQexecParams(conn, lock_live, 0, NULL, NULL, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 2, st, "rebuild failed", "lock the live checkpoint") !=
        GRPC_STATUS_OK)
        goto fail;
    if (PQntuples(res) == 1) {
        pg_get_uint64(res, 0, 0, &live.tx_id);
        pg_get_int64(res, 0, 1, &live.global_position);
    }
    PQclear(res);
    res = NULL;
    /* the live consumer cannot commit now: catch up past it */
    if (rmproj_catch_up_in_txn(p, conn, st) != GRPC_STATUS_OK)
        goto fail;
    rebuilt = rmproj_checkpoint(p);
    if (logread_position_cmp(rebuilt, live) < 0) {
        trpc_status_set(st, GRPC_STATUS_ABORTED, "the live read model is ahead of the fence");
        goto fail;
    }
    /* the old dead letters: those the rebuild met again are replaced, the
       others are resolved by the rebuild (their events applied) */
    res = PQexecParams(conn, dead_letters, 0, NULL, NULL, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 2, st, "rebuild failed", "swap dead letters") !=
        GRPC_STATUS_OK)
        goto fail;
    PQclear(res);
    res = NULL;
    values[0] = pg_uint64_param(tx, rebuilt.tx_id);
    values[1] = pg_int64_param(gp, rebuilt.global_position);
    res = PQexecParams(conn, set_live, 2, NULL, values, NULL, NULL, 0);
    if (pg_check(res, PGRES_COMMAND_OK, 0, st, "rebuild failed", "set the live checkpoint") !=
        GRPC_STATUS_OK)
        goto fail;
    PQclear(res);
    /* the events the rebuild applied past the live checkpoint are projected
       now: their outbox rows are published (the live consumer will not see
       them) */
    res = PQexecParams(conn, mark_outbox, 2, NULL, values, NULL, NULL, 0);
    if (pg_check(res, PGRES_COMMAND_OK, 0, st, "rebuild failed", "mark the outbox") !=
        GRPC_STATUS_OK)
        goto fail;
    PQclear(res);
    res = NULL;
    if (exec(conn,
             "UPDATE dead_letters SET projection = 'rm'"
             " WHERE projection = '" REBUILD_CHECKPOINT "'",
             st) != GRPC_STATUS_OK ||
        exec(conn, "DELETE FROM projector_checkpoints WHERE name = '" REBUILD_CHECKPOINT "'", st) !=
            GRPC_STATUS_OK ||
        exec(conn, "ALTER SCHEMA rm RENAME TO rm_old", st) != GRPC_STATUS_OK ||
        exec(conn, "ALTER SCHEMA " REBUILD_SCHEMA " RENAME TO rm", st) != GRPC_STATUS_OK ||
        exec(conn, "DROP SCHEMA rm_old CASCADE", st) != GRPC_STATUS_OK ||
        exec(conn, "COMMIT", st) != GRPC_STATUS_OK)
        goto fail;
    log_info("rebuild: swapped in at %" PRIu64 "/%" PRId64 " (live was at %" PRIu64 "/%" PRId64 ")",
             rebuilt.tx_id, rebuilt.global_position, live.tx_id, live.global_position);
    return GRPC_STATUS_OK;
fail:
    PQclear(res);
    pg_rollback_quietly(conn);
    rmproj_invalidate(p); /* the in-memory checkpoint may be ahead of the table */
    return st->code;
}

int rebuild_run(const struct pg_opts *o, const struct projector_options *po)
{
    struct rmproj_opts ro = {0};
    rmproj *p = NULL;
    PGconn *ctl = NULL, *conn = NULL;
    trpc_status st = {0};
    long events = 0, t0 = now_ms();
    struct deferred_indexes deferred = {NULL};
    int rc = 1;

    ctl = pconn_open(o, NULL, &st);
    if (ctl == NULL)
        goto out;
    switch (leader_try_lock(ctl, LEADER_KEY_REBUILD)) {
    case 1:
        break;
    case 0:
        log_error("rebuild: another rebuild is running");
        goto out;
    default:
        goto out;
    }
    if (prepare(ctl, &st) != GRPC_STATUS_OK) {
        log_error("rebuild: cannot prepare schema %s: %s", REBUILD_SCHEMA, st.msg);
        goto out;
    }
    if (drop_indexes(ctl, &deferred, &st) != GRPC_STATUS_OK) {
        log_error("rebuild: cannot defer the indexes: %s", st.msg);
        goto out;
    }
    conn = pconn_open(o, REBUILD_SCHEMA, &st);
    if (conn == NULL)
        goto out;
    ro.checkpoint = REBUILD_CHECKPOINT;
    ro.mark_outbox = 0;
    ro.batch_size = po->batch_size;
    ro.max_attempts = po->max_attempts;
    ro.backoff_ms = po->backoff_ms;
    ro.backoff_max_ms = 30000;
    p = rmproj_new(&ro);
    if (p == NULL)
        goto out;
    log_info("rebuild: replaying the event log into %s", REBUILD_SCHEMA);
    for (int attempt = 1;; attempt++) {
        if (catch_up(p, &conn, o, &events) != 0) {
            log_error("rebuild: replay keeps failing; giving up (%s left in place)",
                      REBUILD_SCHEMA);
            goto out;
        }
        /* outside the swap: it must stay short (it holds the live checkpoint) */
        if (create_indexes(ctl, &deferred, &st) != GRPC_STATUS_OK) {
            log_error("rebuild: cannot create the indexes: %s", st.msg);
            goto out;
        }
        if (swap(p, conn, &st) == GRPC_STATUS_OK)
            break;
        if (attempt >= SWAP_ATTEMPTS) {
            log_error("rebuild: cannot swap: %s", st.msg);
            goto out;
        }
        log_warn("rebuild: swap attempt %d failed (%s); catching up again", attempt, st.msg);
        if (PQstatus(conn) == CONNECTION_BAD) {
            PQfinish(conn);
            conn = pconn_open(o, REBUILD_SCHEMA, &st);
            if (conn == NULL)
                goto out;
        }
    }
    {
        long ms = now_ms() - t0;

        log_info("rebuild: done: %ld events in %ld ms (%.0f events/s)", events, ms,
                 ms > 0 ? (double)events * 1000.0 / (double)ms : 0.0);
    }
    rc = 0;
out:
    PQclear(deferred.defs);
    rmproj_free(p);
    PQfinish(conn);
    PQfinish(ctl); /* releases the rebuild lock */
    return rc;
}
