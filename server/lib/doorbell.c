/* doorbell.c - see doorbell.h. */
#include "doorbell.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"

struct doorbell {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int rung;     /* a NOTIFY is owed */
    int stopping; /* doorbell_free was called */
    uint64_t sent;
    char *conninfo;
    char sql[96];
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* After each NOTIFY the thread pauses this long, so a busy command server
 * sends at most a few hundred per second instead of one per commit (each is
 * a transaction of its own: an xid, a commit record, the notify queue). A
 * ring after an idle spell still goes at once; under load the wake-up is
 * late by at most this much, and the projector is reading batches then. */
#define DOORBELL_PACE_MS 2

/* Waits until rung or stopping; returns 1 to send, 0 to stop. */
static int wait_for_ring(doorbell *d)
{
    int send;

    pthread_mutex_lock(&d->mu);
    while (!d->rung && !d->stopping)
        pthread_cond_wait(&d->cv, &d->mu);
    send = d->rung;
    d->rung = 0;
    pthread_mutex_unlock(&d->mu);
    return send;
}

static void *doorbell_main(void *arg)
{
    doorbell *d = arg;
    PGconn *conn = NULL;
    long backoff_ms = 50;

    for (;;) {
        PGresult *res;

        if (!wait_for_ring(d))
            break;
        if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
            PQfinish(conn);
            conn = PQconnectdb(d->conninfo);
            if (PQstatus(conn) != CONNECTION_OK) {
                log_warn("doorbell: cannot connect: %s", PQerrorMessage(conn));
                PQfinish(conn);
                conn = NULL;
                goto retry;
            }
            /* A NOTIFY's transaction takes an xid: with a synchronous
             * commit it would hold every reader's commit fence (DESIGN §5)
             * through an fsync, and its listeners would hear it only after
             * that. A ring lost in a crash is harmless (readers poll). */
            res = PQexecParams(conn, "SELECT set_config('synchronous_commit', 'off', false)", 0,
                               NULL, NULL, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_TUPLES_OK)
                log_warn("doorbell: %s", PQresultErrorMessage(res));
            PQclear(res);
        }
        res = PQexecParams(conn, d->sql, 0, NULL, NULL, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            log_warn("doorbell: notify failed: %s", PQresultErrorMessage(res));
            PQclear(res);
            PQfinish(conn);
            conn = NULL;
            goto retry;
        }
        PQclear(res);
        backoff_ms = 50;
        pthread_mutex_lock(&d->mu);
        d->sent++;
        pthread_mutex_unlock(&d->mu);
        /* pace: rings during the pause coalesce into the next NOTIFY */
        sleep_ms(DOORBELL_PACE_MS);
        continue;
retry:
        /* the ring is owed again; the projector's timer covers the gap */
        sleep_ms(backoff_ms);
        backoff_ms = backoff_ms < 2000 ? backoff_ms * 2 : 2000;
        pthread_mutex_lock(&d->mu);
        if (!d->stopping)
            d->rung = 1;
        pthread_mutex_unlock(&d->mu);
    }
    PQfinish(conn);
    return NULL;
}

doorbell *doorbell_new(const char *conninfo, const char *channel)
{
    doorbell *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    d->conninfo = strdup(conninfo ? conninfo : "");
    if (d->conninfo == NULL) {
        free(d);
        return NULL;
    }
    snprintf(d->sql, sizeof(d->sql), "NOTIFY %s", channel);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (pthread_create(&d->thread, NULL, doorbell_main, d) != 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        free(d->conninfo);
        free(d);
        return NULL;
    }
    return d;
}

void doorbell_ring(doorbell *d)
{
    pthread_mutex_lock(&d->mu);
    if (!d->rung) {
        d->rung = 1;
        pthread_cond_signal(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
}

uint64_t doorbell_sent(doorbell *d)
{
    uint64_t n;

    pthread_mutex_lock(&d->mu);
    n = d->sent;
    pthread_mutex_unlock(&d->mu);
    return n;
}

void doorbell_free(doorbell *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d->conninfo);
    free(d);
}
