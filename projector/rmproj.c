/* rmproj.c - see rmproj.h.
 *
 * One batch = one transaction, sent as one libpq pipeline (one round trip
 * for all its statements, DESIGN §8):
 *
 *   BEGIN
 *   SET LOCAL synchronous_commit = off                     -- see ASYNC_COMMIT_SQL
 *   SELECT projector_checkpoint_cas(name, before, after)   -- first: it takes the
 *                                                             checkpoint row lock
 *   <one statement per event>   (or the row parking it behind its dead letter)
 *   UPDATE outbox SET published_at = now() ... (before, after]   -- live only
 *   Sync
 *
 * then COMMIT (or ROLLBACK) once every result is checked: a guard that
 * refuses an event is a row count, not an SQL error, so the decision to
 * commit is taken here, not by the server. */
#include "rmproj.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadletter.h"
#include "log.h"
#include "pg.h"
#include "rmapply.h"

#define RETRY_CHECK_EVERY_MS 1000
#define RETRY_CHAINS_MAX     16

static const char CAS_SQL[] =
    "SELECT projector_checkpoint_cas($1, $6::bigint, $2::xid8, $3::bigint,"
    "                                $4::xid8, $5::bigint)";
/* The batch's commit does not wait for its WAL flush: it holds the commit
 * fence (DESIGN §5: every reader of the log waits for the oldest running
 * transaction) only while its statements run, not through an fsync. Safe:
 * the read model and its checkpoint move in this one transaction, and both
 * are a function of the log, so a crash that loses the last batches rolls
 * them back together and they are applied again. */
static const char ASYNC_COMMIT_SQL[] = "SET LOCAL synchronous_commit = off";
static const char OUTBOX_SQL[] = "UPDATE outbox SET published_at = now()"
                                 " WHERE published_at IS NULL"
                                 "   AND (tx_id, global_position) > ($1::xid8, $2::bigint)"
                                 "   AND (tx_id, global_position) <= ($3::xid8, $4::bigint)";

struct rmproj {
    struct rmproj_opts o;
    struct dl_set dl;
    struct store_position cp;
    int64_t epoch;
    int loaded;
    long next_retry_check_ms;
    /* the event being retried */
    struct store_position poison;
    int attempts;
    int delay_ms;
    struct rmapply_change *changes; /* decode buffer, batch_size entries */
    struct rmapply_usage usage;     /* the batch's usage rows */
    PGconn *prepared;               /* the connection the statements are prepared on */
};

enum apply_result {
    APPLY_OK = 0,
    APPLY_EVENT_FAILED, /* the statement of event *failed refused or failed */
    APPLY_CAS_LOST,     /* the checkpoint moved under us */
    APPLY_TRANSIENT,    /* connection trouble, serialization failure...: not the event's fault */
};

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

rmproj *rmproj_new(const struct rmproj_opts *o)
{
    rmproj *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->o = *o;
    if (p->o.batch_size < 1)
        p->o.batch_size = 1;
    if (p->o.max_attempts < 1)
        p->o.max_attempts = 1;
    dl_set_init(&p->dl, o->checkpoint);
    p->changes = calloc((size_t)p->o.batch_size, sizeof(*p->changes));
    if (p->changes == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

void rmproj_free(rmproj *p)
{
    if (p == NULL)
        return;
    dl_set_cleanup(&p->dl);
    rmapply_usage_cleanup(&p->usage);
    free(p->changes);
    free(p);
}

void rmproj_invalidate(rmproj *p)
{
    p->loaded = 0;
    p->prepared = NULL;
}

struct store_position rmproj_checkpoint(const rmproj *p)
{
    return p->cp;
}

int rmproj_retry_delay_ms(const rmproj *p)
{
    return p->delay_ms;
}

grpc_status_code rmproj_checkpoint_ensure(PGconn *conn, const char *name, trpc_status *st)
{
    static const char sql[] =
        "INSERT INTO projector_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING";
    const char *values[1] = {name};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, values, NULL, NULL, 0);
    grpc_status_code code = pg_check(res, PGRES_COMMAND_OK, 0, st,
                                     "could not create the checkpoint", "checkpoint %s", name);

    PQclear(res);
    return code; /* pg_check leaves st alone on success */
}

grpc_status_code rmproj_checkpoint_read(PGconn *conn, const char *name, struct store_position *pos,
                                        int64_t *epoch, trpc_status *st)
{
    static const char sql[] = "SELECT tx_id::text, global_position, epoch"
                              "  FROM projector_checkpoints WHERE name = $1";
    const char *values[1] = {name};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, values, NULL, NULL, 0);

    if (pg_check(res, PGRES_TUPLES_OK, 3, st, "could not read the checkpoint", "checkpoint %s",
                 name) != GRPC_STATUS_OK)
        goto out;
    if (PQntuples(res) != 1) {
        trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "checkpoint %s not found", name);
        goto out;
    }
    if (pg_get_uint64(res, 0, 0, &pos->tx_id) != 0 ||
        pg_get_int64(res, 0, 1, &pos->global_position) != 0 ||
        (epoch && pg_get_int64(res, 0, 2, epoch) != 0)) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "unreadable checkpoint %s", name);
        goto out;
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
out:
    PQclear(res);
    return st->code;
}

/* Not the event's fault: connection trouble, resources, shutdown,
 * serialization failure, deadlock, lock or statement timeout. */
static int transient(const PGresult *res)
{
    const char *s = pg_sqlstate(res);

    if (s == NULL)
        return 1;
    return strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0 || strncmp(s, "57", 2) == 0 ||
           strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "55P03") == 0;
}

static int cas_lost(const PGresult *res)
{
    const char *s = pg_sqlstate(res);

    return s && strcmp(s, "TLCAS") == 0;
}

static int send_cas(PGconn *conn, const char *name, int64_t epoch, struct store_position from,
                    struct store_position to)
{
    char t1[PG_INT_BUF], g1[PG_INT_BUF], t2[PG_INT_BUF], g2[PG_INT_BUF], e[PG_INT_BUF];
    const char *values[6] = {name,
                             pg_uint64_param(t1, from.tx_id),
                             pg_int64_param(g1, from.global_position),
                             pg_uint64_param(t2, to.tx_id),
                             pg_int64_param(g2, to.global_position),
                             pg_int64_param(e, epoch)};

    return PQsendQueryParams(conn, CAS_SQL, 6, NULL, values, NULL, NULL, 0);
}

static int send_outbox(PGconn *conn, struct store_position from, struct store_position to)
{
    char t1[PG_INT_BUF], g1[PG_INT_BUF], t2[PG_INT_BUF], g2[PG_INT_BUF];
    const char *values[4] = {pg_uint64_param(t1, from.tx_id),
                             pg_int64_param(g1, from.global_position),
                             pg_uint64_param(t2, to.tx_id), pg_int64_param(g2, to.global_position)};

    return PQsendQueryParams(conn, OUTBOX_SQL, 4, NULL, values, NULL, NULL, 0);
}

/* The one result of the next query in the pipeline (NULL: the connection is
 * broken); consumes the NULL that ends it. */
static PGresult *pipeline_result(PGconn *conn)
{
    PGresult *res = PQgetResult(conn), *extra;

    if (res == NULL)
        return NULL;
    while ((extra = PQgetResult(conn)) != NULL)
        PQclear(extra);
    return res;
}

/* The result of one PQsendQueryParams outside pipeline mode. */
static PGresult *sent_result(PGconn *conn)
{
    PGresult *res = PQgetResult(conn), *extra;

    while (res && (extra = PQgetResult(conn)) != NULL)
        PQclear(extra);
    return res;
}

static void blocked_key(const struct rawlog_event *ev, char *key, size_t len)
{
    dl_key(ev->tenant_id, ev->aggregate_type, ev->aggregate_id, key, len);
}

/* The connection failed mid-pipeline: the caller must drop it. */
static enum apply_result broken(trpc_status *st)
{
    trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
    return APPLY_TRANSIENT;
}

/* Applies b->ev[0..n) (the changes decoded in p->changes) and moves the
 * checkpoint from b->after to b->ev[n-1].pos, in one transaction. in_txn:
 * inside the caller's open transaction instead (no BEGIN, compare-and-set or
 * COMMIT; an error rolls the caller's transaction back). */
static enum apply_result apply_prefix(rmproj *p, PGconn *conn, const struct rawlog_batch *b,
                                      size_t n, size_t *failed, trpc_status *st, int in_txn)
{
    struct store_position to = b->ev[n - 1].pos;
    enum apply_result r = APPLY_OK;
    PGresult *res;
    int queued_ok = 1, usage_sent = 0;

    *failed = 0;
    rmapply_usage_reset(&p->usage);
    if (!PQenterPipelineMode(conn))
        return broken(st);
    /* in_txn: the caller's transaction, none of the three */
    queued_ok =
        in_txn || (PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
                   PQsendQueryParams(conn, ASYNC_COMMIT_SQL, 0, NULL, NULL, NULL, NULL, 0) &&
                   send_cas(conn, p->o.checkpoint, p->epoch, b->after, to));
    for (size_t i = 0; queued_ok && i < n; i++) {
        const struct rawlog_event *ev = &b->ev[i];
        char key[128];
        int64_t head;

        blocked_key(ev, key, sizeof(key));
        head = dl_blocked_head(&p->dl, key);
        if (head)
            queued_ok = dl_send_queued(conn, &p->dl, ev, ev->aggregate_type, ev->aggregate_id, head,
                                       st) == GRPC_STATUS_OK;
        else
            queued_ok = rmapply_send(conn, ev, &p->changes[i], st) == GRPC_STATUS_OK &&
                        rmapply_usage_add(&p->usage, ev, &p->changes[i]) == 0;
    }
    if (queued_ok && p->usage.n > 0) {
        queued_ok = rmapply_usage_send(conn, &p->usage, st) == GRPC_STATUS_OK;
        usage_sent = 1;
    }
    if (queued_ok && p->o.mark_outbox)
        queued_ok = send_outbox(conn, b->after, to);
    if (!queued_ok || !PQpipelineSync(conn)) {
        log_warn("projection %s: cannot send a batch: %s", p->o.checkpoint, PQerrorMessage(conn));
        trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
        return APPLY_TRANSIENT; /* the caller drops the connection */
    }

    /* BEGIN, SET LOCAL, CAS */
    for (int q = 0; q < (in_txn ? 0 : 3); q++) {
        res = pipeline_result(conn);
        if (res == NULL)
            return broken(st);
        if (r == APPLY_OK && PQresultStatus(res) != (q < 2 ? PGRES_COMMAND_OK : PGRES_TUPLES_OK)) {
            if (cas_lost(res)) {
                r = APPLY_CAS_LOST;
                log_info("projection %s: checkpoint moved by someone else; reloading",
                         p->o.checkpoint);
            } else {
                r = APPLY_TRANSIENT;
                pg_fail(res, st, "database unavailable", "projection %s: batch start",
                        p->o.checkpoint);
            }
        }
        PQclear(res);
    }
    for (size_t i = 0; i < n; i++) {
        const struct rawlog_event *ev = &b->ev[i];
        char key[128];

        res = pipeline_result(conn);
        if (res == NULL)
            return broken(st);
        if (r == APPLY_OK) {
            blocked_key(ev, key, sizeof(key));
            if (dl_blocked_head(&p->dl, key)) {
                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                    pg_fail(res, st, "could not park an event", "projection %s: park %" PRId64,
                            p->o.checkpoint, ev->pos.global_position);
                    r = APPLY_TRANSIENT;
                }
            } else if (rmapply_check(res, ev, st) != GRPC_STATUS_OK) {
                if (PQresultStatus(res) == PGRES_FATAL_ERROR && transient(res)) {
                    r = APPLY_TRANSIENT;
                } else {
                    r = APPLY_EVENT_FAILED;
                    *failed = i;
                }
            }
        }
        PQclear(res);
    }
    if (usage_sent) {
        res = pipeline_result(conn);
        if (res == NULL)
            return broken(st);
        if (r == APPLY_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            /* a sum out of range would be the batch's fault, not one event's:
               retried, not dead-lettered */
            pg_fail(res, st, "could not count usage", "projection %s: usage", p->o.checkpoint);
            r = APPLY_TRANSIENT;
        }
        PQclear(res);
    }
    if (p->o.mark_outbox) {
        res = pipeline_result(conn);
        if (res == NULL)
            return broken(st);
        if (r == APPLY_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            pg_fail(res, st, "could not mark the outbox", "projection %s: outbox", p->o.checkpoint);
            r = APPLY_TRANSIENT;
        }
        PQclear(res);
    }
    res = PQgetResult(conn); /* the Sync */
    if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
        PQclear(res);
        return broken(st);
    }
    PQclear(res);
    if (!PQexitPipelineMode(conn))
        return broken(st);
    if (r != APPLY_OK) {
        pg_rollback_quietly(conn);
        return r;
    }
    if (in_txn)
        return APPLY_OK;
    if (pg_command(conn, "COMMIT", st, "database unavailable") != GRPC_STATUS_OK)
        return APPLY_TRANSIENT;
    return APPLY_OK;
}

/* ---- steps ---- */

static grpc_status_code load(rmproj *p, PGconn *conn, trpc_status *st)
{
    if (rmproj_checkpoint_ensure(conn, p->o.checkpoint, st) != GRPC_STATUS_OK ||
        rmproj_checkpoint_read(conn, p->o.checkpoint, &p->cp, &p->epoch, st) != GRPC_STATUS_OK ||
        dl_load(conn, &p->dl, st) != GRPC_STATUS_OK)
        return st->code;
    p->loaded = 1;
    log_debug("projection %s: checkpoint %" PRIu64 "/%" PRId64, p->o.checkpoint, p->cp.tx_id,
              p->cp.global_position);
    return GRPC_STATUS_OK;
}

static void committed(rmproj *p, const struct rawlog_batch *b, size_t n)
{
    p->cp = b->ev[n - 1].pos;
    if (p->attempts && logread_position_cmp(p->poison, p->cp) <= 0)
        p->attempts = 0; /* the event that failed is behind us now */
    if (p->o.on_commit)
        p->o.on_commit(p->o.on_commit_arg, b, n);
}

/* Event b->ev[0] failed with st: retry later, or make it a dead letter. */
static enum rmproj_step poison(rmproj *p, PGconn *conn, const struct rawlog_batch *b,
                               const trpc_status *why)
{
    const struct rawlog_event *ev = &b->ev[0];
    trpc_status st = {0};
    char key[128];
    int64_t id = 0;

    if (p->attempts > 0 && logread_position_cmp(p->poison, ev->pos) == 0) {
        p->attempts++;
    } else {
        p->poison = ev->pos;
        p->attempts = 1;
    }
    log_warn("projection %s: %s %s v%" PRId64 " at %" PRId64 " failed (attempt %d of %d): %s",
             p->o.checkpoint, ev->event_type, ev->aggregate_id, ev->version,
             ev->pos.global_position, p->attempts, p->o.max_attempts, why->msg);
    if (p->attempts < p->o.max_attempts) {
        long d = p->o.backoff_ms;

        for (int i = 1; i < p->attempts && d < p->o.backoff_max_ms; i++)
            d *= 2;
        p->delay_ms = (int)(d < p->o.backoff_max_ms ? d : p->o.backoff_max_ms);
        return RMPROJ_RETRY_LATER;
    }
    /* a dead letter: parked, and the checkpoint moves past it, atomically */
    if (pg_command(conn, "BEGIN", &st, "database unavailable") != GRPC_STATUS_OK)
        goto fail;
    {
        PGresult *res;
        char t1[PG_INT_BUF], g1[PG_INT_BUF], t2[PG_INT_BUF], g2[PG_INT_BUF], e[PG_INT_BUF];
        const char *values[6] = {p->o.checkpoint,
                                 pg_uint64_param(t1, b->after.tx_id),
                                 pg_int64_param(g1, b->after.global_position),
                                 pg_uint64_param(t2, ev->pos.tx_id),
                                 pg_int64_param(g2, ev->pos.global_position),
                                 pg_int64_param(e, p->epoch)};

        res = PQexecParams(conn, CAS_SQL, 6, NULL, values, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            int lost = cas_lost(res);

            pg_fail(res, &st, "database unavailable", "projection %s: dead letter",
                    p->o.checkpoint);
            PQclear(res);
            pg_rollback_quietly(conn);
            if (lost) {
                p->loaded = 0;
                return RMPROJ_PROGRESS;
            }
            goto fail;
        }
        PQclear(res);
    }
    if (dl_insert_head(conn, &p->dl, ev, ev->aggregate_type, ev->aggregate_id, why->msg,
                       p->attempts, &id, &st) != GRPC_STATUS_OK ||
        pg_command(conn, "COMMIT", &st, "database unavailable") != GRPC_STATUS_OK) {
        pg_rollback_quietly(conn);
        goto fail;
    }
    log_error("projection %s: %s %s v%" PRId64 " at %" PRId64 " is dead letter %" PRId64
              "; later events of %s %s wait behind it",
              p->o.checkpoint, ev->event_type, ev->aggregate_id, ev->version,
              ev->pos.global_position, id, ev->aggregate_type, ev->aggregate_id);
    blocked_key(ev, key, sizeof(key));
    if (dl_block(&p->dl, key, id) != 0)
        p->loaded = 0; /* OOM: reload from the table */
    committed(p, b, 1);
    p->attempts = 0;
    return RMPROJ_PROGRESS;
fail:
    p->loaded = 0;
    return RMPROJ_DB_ERROR;
}

/* Re-applies one parked event (the retry of a dead-letter chain) and
 * resolves its row, in one transaction that also checks the checkpoint is
 * still ours. */
static enum apply_result retry_one(rmproj *p, PGconn *conn, const struct rawlog_event *ev,
                                   int64_t id, trpc_status *st)
{
    struct rmapply_change c;
    PGresult *res = NULL;
    char t1[PG_INT_BUF], g1[PG_INT_BUF], e[PG_INT_BUF];
    const char *values[6] = {p->o.checkpoint,
                             pg_uint64_param(t1, p->cp.tx_id),
                             pg_int64_param(g1, p->cp.global_position),
                             t1,
                             g1,
                             pg_int64_param(e, p->epoch)};
    enum apply_result r = APPLY_OK;

    if (rmapply_decode(ev, &c, st) != GRPC_STATUS_OK)
        return APPLY_EVENT_FAILED;
    if (pg_command(conn, "BEGIN", st, "database unavailable") != GRPC_STATUS_OK)
        return APPLY_TRANSIENT;
    res = PQexecParams(conn, CAS_SQL, 6, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = cas_lost(res) ? APPLY_CAS_LOST : APPLY_TRANSIENT;
        pg_fail(res, st, "database unavailable", "projection %s: retry", p->o.checkpoint);
        goto out;
    }
    PQclear(res);
    res = NULL;
    if (rmapply_send(conn, ev, &c, st) != GRPC_STATUS_OK) {
        r = APPLY_TRANSIENT;
        goto out;
    }
    res = sent_result(conn);
    if (rmapply_check(res, ev, st) != GRPC_STATUS_OK) {
        r = res && PQresultStatus(res) == PGRES_FATAL_ERROR && transient(res) ? APPLY_TRANSIENT
                                                                              : APPLY_EVENT_FAILED;
        goto out;
    }
    PQclear(res);
    res = NULL;
    rmapply_usage_reset(&p->usage);
    if (rmapply_usage_add(&p->usage, ev, &c) != 0 ||
        rmapply_usage_send(conn, &p->usage, st) != GRPC_STATUS_OK) {
        r = APPLY_TRANSIENT;
        goto out;
    }
    res = sent_result(conn);
    if (pg_check(res, PGRES_COMMAND_OK, 0, st, "could not count usage", "projection %s: usage",
                 p->o.checkpoint) != GRPC_STATUS_OK) {
        r = APPLY_TRANSIENT;
        goto out;
    }
    if (dl_resolve(conn, id, st) != GRPC_STATUS_OK ||
        pg_command(conn, "COMMIT", st, "database unavailable") != GRPC_STATUS_OK)
        r = APPLY_TRANSIENT;
out:
    PQclear(res);
    if (r != APPLY_OK)
        pg_rollback_quietly(conn);
    return r;
}

/* Retries the chains an operator asked for. Returns OK, or an error after
 * which the caller reconnects (CAS lost: reload). */
static grpc_status_code process_retries(rmproj *p, PGconn *conn, trpc_status *st)
{
    struct dl_chain *chains = NULL;
    size_t nc = 0;

    if (dl_retry_requests(conn, &p->dl, RETRY_CHAINS_MAX, &chains, &nc, st) != GRPC_STATUS_OK)
        return st->code;
    for (size_t i = 0; i < nc; i++) {
        struct dl_chain *c = &chains[i];
        struct rawlog_batch b;
        char key[128];
        size_t done = 0;

        dl_key(c->tenant_id, c->aggregate_type, c->aggregate_id, key, sizeof(key));
        if (rawlog_positions(conn, c->positions, c->n, &b, st) != GRPC_STATUS_OK)
            break;
        if (b.n != c->n) {
            rawlog_batch_cleanup(&b);
            trpc_status_set(st, GRPC_STATUS_INTERNAL, "dead letter without its event");
            break;
        }
        log_info("projection %s: retrying %zu dead letter(s) of %s %s", p->o.checkpoint, c->n,
                 c->aggregate_type, c->aggregate_id);
        for (; done < c->n; done++) {
            trpc_status est = {0};
            enum apply_result r = retry_one(p, conn, &b.ev[done], c->ids[done], &est);

            if (r == APPLY_OK)
                continue;
            if (r == APPLY_EVENT_FAILED) {
                log_error("projection %s: dead letter %" PRId64 " failed again: %s",
                          p->o.checkpoint, c->ids[done], est.msg);
                if (dl_retry_failed(conn, &p->dl, c, c->ids[done], est.msg, st) != GRPC_STATUS_OK)
                    p->loaded = 0;
                else if (dl_block(&p->dl, key, c->ids[done]) != 0)
                    p->loaded = 0;
                break;
            }
            if (r == APPLY_CAS_LOST)
                p->loaded = 0;
            *st = est;
            rawlog_batch_cleanup(&b);
            dl_chains_free(chains, nc);
            return st->code ? st->code : GRPC_STATUS_ABORTED;
        }
        if (done == c->n) {
            log_info("projection %s: %s %s unblocked", p->o.checkpoint, c->aggregate_type,
                     c->aggregate_id);
            dl_unblock(&p->dl, key);
        }
        rawlog_batch_cleanup(&b);
    }
    dl_chains_free(chains, nc);
    if (st->code == GRPC_STATUS_OK)
        st->msg[0] = '\0';
    return st->code;
}

enum rmproj_step rmproj_step(rmproj *p, PGconn *conn, size_t *applied)
{
    struct rawlog_batch b;
    trpc_status st = {0};
    enum rmproj_step step = RMPROJ_DB_ERROR;
    size_t n, k, failed;
    long now = now_ms(), t_read, t_decode, t_apply;

    if (applied)
        *applied = 0;
    if (!p->loaded && load(p, conn, &st) != GRPC_STATUS_OK)
        return RMPROJ_DB_ERROR;
    if (p->prepared != conn) {
        if (rmapply_prepare(conn, &st) != GRPC_STATUS_OK) {
            p->loaded = 0;
            return RMPROJ_DB_ERROR;
        }
        p->prepared = conn;
    }
    if (now >= p->next_retry_check_ms) {
        p->next_retry_check_ms = now + RETRY_CHECK_EVERY_MS;
        if (process_retries(p, conn, &st) != GRPC_STATUS_OK) {
            p->loaded = 0;
            return RMPROJ_DB_ERROR;
        }
        if (!p->loaded)
            return RMPROJ_PROGRESS;
    }
    t_read = now_us();
    if (rawlog_next(conn, p->cp, p->o.batch_size, &b, &st) != GRPC_STATUS_OK) {
        p->loaded = 0;
        return RMPROJ_DB_ERROR;
    }
    t_decode = now_us();
    if (b.n == 0) {
        rawlog_batch_cleanup(&b);
        return RMPROJ_IDLE;
    }
    /* decode up to the first event that cannot be decoded */
    n = b.n;
    for (k = 0; k < n; k++) {
        char key[128];

        blocked_key(&b.ev[k], key, sizeof(key));
        if (dl_blocked_head(&p->dl, key))
            continue;
        if (rmapply_decode(&b.ev[k], &p->changes[k], &st) != GRPC_STATUS_OK)
            break;
    }
    if (k == 0) {
        step = poison(p, conn, &b, &st);
        goto out;
    }
    t_apply = now_us();
    for (;;) {
        switch (apply_prefix(p, conn, &b, k, &failed, &st, 0)) {
        case APPLY_OK:
            /* where a batch's time goes (--log-level debug): the fenced
               read, decoding the payloads, and the transaction */
            log_debug("projection %s: %zu events: read %ld us, decode %ld us, apply+commit %ld us",
                      p->o.checkpoint, k, t_decode - t_read, t_apply - t_decode,
                      now_us() - t_apply);
            committed(p, &b, k);
            if (applied)
                *applied = k;
            step = RMPROJ_PROGRESS;
            goto out;
        case APPLY_EVENT_FAILED:
            if (failed == 0) {
                step = poison(p, conn, &b, &st);
                goto out;
            }
            k = failed; /* commit what precedes it; the next step retries it */
            continue;
        case APPLY_CAS_LOST:
            p->loaded = 0;
            step = RMPROJ_PROGRESS;
            goto out;
        default:
            p->loaded = 0;
            step = RMPROJ_DB_ERROR;
            goto out;
        }
    }
out:
    rawlog_batch_cleanup(&b);
    return step;
}

grpc_status_code rmproj_catch_up_in_txn(rmproj *p, PGconn *conn, trpc_status *st)
{
    if (p->prepared != conn) {
        if (rmapply_prepare(conn, st) != GRPC_STATUS_OK)
            return st->code;
        p->prepared = conn;
    }
    for (;;) {
        struct rawlog_batch b;
        size_t failed = 0;

        if (rawlog_next(conn, p->cp, p->o.batch_size, &b, st) != GRPC_STATUS_OK)
            return st->code;
        if (b.n == 0) {
            rawlog_batch_cleanup(&b);
            break;
        }
        for (size_t k = 0; k < b.n; k++) {
            char key[128];

            blocked_key(&b.ev[k], key, sizeof(key));
            if (!dl_blocked_head(&p->dl, key) &&
                rmapply_decode(&b.ev[k], &p->changes[k], st) != GRPC_STATUS_OK) {
                rawlog_batch_cleanup(&b);
                return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                                       "an event to catch up cannot be applied");
            }
        }
        if (apply_prefix(p, conn, &b, b.n, &failed, st, 1) != APPLY_OK) {
            rawlog_batch_cleanup(&b);
            if (st->code == GRPC_STATUS_OK)
                trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                                "an event to catch up cannot be applied");
            return st->code;
        }
        p->cp = b.ev[b.n - 1].pos;
        rawlog_batch_cleanup(&b);
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}
