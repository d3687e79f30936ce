/* leader.c - see leader.h. */
#include "leader.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"

struct leader {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int active;
    uint64_t terms;
    struct pg_opts opts;
    int64_t key;
    int retry_ms;
    wake *w;
};

int leader_try_lock(PGconn *conn, int64_t key)
{
    char buf[PG_INT_BUF];
    const char *values[1] = {pg_int64_param(buf, key)};
    PGresult *res = PQexecParams(conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, NULL, values,
                                 NULL, NULL, 0);
    int r = -1;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        r = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    else
        log_warn("leader: lock attempt failed: %s", PQresultErrorMessage(res));
    PQclear(res);
    return r;
}

/* Is the session (and so the lock) still there? */
static int alive(PGconn *conn)
{
    PGresult *res = PQexecParams(conn, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;

    PQclear(res);
    return ok;
}

static void set_active(leader *l, int active)
{
    pthread_mutex_lock(&l->mu);
    l->active = active;
    if (active)
        l->terms++;
    pthread_mutex_unlock(&l->mu);
    if (active)
        log_info("leader: active (holding the projector lock)");
    else
        log_warn("leader: standby (lock lost or not held)");
    if (l->w)
        wake_poke(l->w);
}

/* Sleeps ms unless stopping; returns 1 to stop. */
static int pause_ms(leader *l, int ms)
{
    struct timespec until;
    int stop;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->stop)
        if (pthread_cond_timedwait(&l->cv, &l->mu, &until) == ETIMEDOUT)
            break;
    stop = l->stop;
    pthread_mutex_unlock(&l->mu);
    return stop;
}

static void *leader_main(void *arg)
{
    leader *l = arg;
    PGconn *conn = NULL;
    int active = 0, waiting_logged = 0;

    for (;;) {
        if (conn == NULL) {
            trpc_status st = {0};

            conn = pg_connect(&l->opts, &st);
        }
        if (conn && !active) {
            int r = leader_try_lock(conn, l->key);

            if (r == 1) {
                active = 1;
                waiting_logged = 0;
                set_active(l, 1);
            } else if (r == 0 && !waiting_logged) {
                log_info("leader: standby (another projector holds the lock)");
                waiting_logged = 1;
            } else if (r < 0) {
                PQfinish(conn);
                conn = NULL;
            }
        } else if (conn && active && !alive(conn)) {
            active = 0;
            set_active(l, 0);
            PQfinish(conn);
            conn = NULL;
        }
        if (pause_ms(l, l->retry_ms))
            break;
    }
    if (active) {
        pthread_mutex_lock(&l->mu);
        l->active = 0;
        pthread_mutex_unlock(&l->mu);
    }
    PQfinish(conn); /* ends the session: the lock goes with it */
    return NULL;
}

leader *leader_new(const struct pg_opts *o, int64_t key, int retry_ms, wake *w)
{
    leader *l = calloc(1, sizeof(*l));
    pthread_condattr_t ca;

    if (l == NULL)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    l->opts = *o;
    l->opts.connect_attempts = 1; /* the loop retries every retry_ms */
    l->opts.connect_timeout_s = 2;
    l->key = key;
    l->retry_ms = retry_ms > 0 ? retry_ms : 1000;
    l->w = w;
    if (pthread_create(&l->thread, NULL, leader_main, l) != 0) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    return l;
}

int leader_is_active(leader *l)
{
    int a;

    pthread_mutex_lock(&l->mu);
    a = l->active;
    pthread_mutex_unlock(&l->mu);
    return a;
}

uint64_t leader_terms(leader *l)
{
    uint64_t t;

    pthread_mutex_lock(&l->mu);
    t = l->terms;
    pthread_mutex_unlock(&l->mu);
    return t;
}

void leader_free(leader *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
