/* consumer.c - see consumer.h. */
#include "consumer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "doorbell.h"
#include "log.h"
#include "pconn.h"

#define BACKOFF_MAX_MS      5000
#define CLEANUP_EVERY_MS    60000
#define CLEANUP_CHUNK       5000
#define STANDBY_CHECK_MS    1000
#define FENCE_POLL_MIN_MS   1
#define FENCE_POLL_MAX_MS   8
#define CONSUMER_SCHEMA     "rm"
#define CONSUMER_CHECKPOINT "rm"

struct consumer {
    struct consumer_opts o;
    pthread_t thread;
    wake *w;
    leader *l;
    rmproj *p;
    doorbell *bell; /* projected_channel; NULL = none */
};

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

grpc_status_code consumer_outbox_cleanup(PGconn *conn, long retention_s, int chunk, long *deleted,
                                         trpc_status *st)
{
    /* uses outbox_published (published_at) */
    static const char sql[] =
        "DELETE FROM outbox WHERE global_position IN ("
        "  SELECT global_position FROM outbox"
        "   WHERE published_at IS NOT NULL"
        "     AND published_at < now() - make_interval(secs => $1::double precision)"
        "   LIMIT $2::int)";
    char ret[PG_INT_BUF], lim[PG_INT_BUF];
    const char *values[2] = {pg_int64_param(ret, retention_s), pg_int64_param(lim, chunk)};
    long total = 0;

    for (;;) {
        PGresult *res = PQexecParams(conn, sql, 2, NULL, values, NULL, NULL, 0);
        long n;

        if (pg_check(res, PGRES_COMMAND_OK, 0, st, "could not clean the outbox",
                     "outbox cleanup") != GRPC_STATUS_OK) {
            PQclear(res);
            return st->code;
        }
        n = strtol(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        total += n;
        if (n < chunk)
            break;
    }
    if (deleted)
        *deleted = total;
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

static void *consumer_main(void *arg)
{
    consumer *c = arg;
    PGconn *conn = NULL;
    int backoff = c->o.backoff_ms > 0 ? c->o.backoff_ms : 100;
    long next_cleanup = 0;
    uint64_t seen = wake_generation(c->w);
    int held_wait = 0; /* while the fence is held: the next look's delay */

    while (!wake_is_shutdown(c->w)) {
        enum rmproj_step step;
        size_t applied = 0;
        trpc_status st = {0};

        if (!leader_is_active(c->l)) {
            if (conn) { /* standby: no connection, no work */
                PQfinish(conn);
                conn = NULL;
            }
            wake_wait(c->w, &seen, STANDBY_CHECK_MS);
            continue;
        }
        if (conn == NULL) {
            conn = pconn_open(&c->o.pg, CONSUMER_SCHEMA, &st);
            if (conn == NULL) {
                wake_sleep(c->w, backoff);
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            rmproj_invalidate(c->p);
        }
        if (now_ms() >= next_cleanup) {
            long deleted = 0;

            next_cleanup = now_ms() + CLEANUP_EVERY_MS;
            if (consumer_outbox_cleanup(conn, c->o.outbox_retention_s, CLEANUP_CHUNK, &deleted,
                                        &st) == GRPC_STATUS_OK &&
                deleted > 0)
                log_info("consumer: deleted %ld published outbox rows", deleted);
        }
        seen = wake_generation(c->w); /* before reading: a NOTIFY from now on is not lost */
        step = rmproj_step(c->p, conn, &applied);
        switch (step) {
        case RMPROJ_PROGRESS:
            backoff = c->o.backoff_ms > 0 ? c->o.backoff_ms : 100;
            if (c->bell) /* the checkpoint moved (or was reloaded): readers look again */
                doorbell_ring(c->bell);
            break;
        case RMPROJ_IDLE:
            /* committed events behind an older open transaction (the saga's
               batch, another command): its commit rings no doorbell, so look
               again after 1, 2, 4, then every 8 ms, not after poll_ms */
            if (rawlog_fence_held(conn)) {
                held_wait = held_wait == 0 ? FENCE_POLL_MIN_MS : held_wait * 2;
                if (held_wait > FENCE_POLL_MAX_MS)
                    held_wait = FENCE_POLL_MAX_MS;
                wake_wait(c->w, &seen, held_wait);
            } else {
                held_wait = 0;
                wake_wait(c->w, &seen, c->o.poll_ms);
            }
            break;
        case RMPROJ_RETRY_LATER:
            wake_sleep(c->w, rmproj_retry_delay_ms(c->p));
            break;
        default: /* the connection may be mid-pipeline: start afresh */
            PQfinish(conn);
            conn = NULL;
            wake_sleep(c->w, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            break;
        }
    }
    PQfinish(conn);
    return NULL;
}

consumer *consumer_start(const struct consumer_opts *o, wake *w, leader *l)
{
    consumer *c = calloc(1, sizeof(*c));
    struct rmproj_opts po = {0};

    if (c == NULL) {
        log_error("consumer: out of memory");
        return NULL;
    }
    c->o = *o;
    c->w = w;
    c->l = l;
    po.checkpoint = CONSUMER_CHECKPOINT;
    po.mark_outbox = 1;
    po.batch_size = o->batch_size;
    po.max_attempts = o->max_attempts;
    po.backoff_ms = o->backoff_ms;
    po.backoff_max_ms = 30000;
    po.on_commit = o->on_commit;
    po.on_commit_arg = o->on_commit_arg;
    c->p = rmproj_new(&po);
    if (o->projected_channel) {
        c->bell = doorbell_new(o->pg.conninfo ? o->pg.conninfo : "", o->projected_channel);
        if (c->bell == NULL)
            log_warn("consumer: no doorbell on %s: readers will poll", o->projected_channel);
    }
    if (c->p == NULL || pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
        log_error("consumer: cannot start");
        doorbell_free(c->bell);
        rmproj_free(c->p);
        free(c);
        return NULL;
    }
    return c;
}

void consumer_stop(consumer *c)
{
    if (c == NULL)
        return;
    wake_shutdown(c->w);
    pthread_join(c->thread, NULL);
    doorbell_free(c->bell);
    rmproj_free(c->p);
    free(c);
}
