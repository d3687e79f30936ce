/* wake.c - see wake.h. The LISTEN thread sleeps in poll() on the
 * connection's socket and a self-pipe (written by wake_free), so it neither
 * spins nor holds a transaction open: a LISTENing session receives
 * notifications only between transactions, and this one never opens one. */
#include "wake.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct wake {
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t generation;
    uint64_t notifications;
    int shutdown;
    int pipe[2]; /* [1] written to stop the thread */
    struct pg_opts opts;
    char channel[64];
};

static void bump(wake *w, int notified)
{
    pthread_mutex_lock(&w->mu);
    w->generation++;
    if (notified)
        w->notifications++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Waits for the socket or the stop pipe, up to ms. Returns 1 when the socket
 * is readable, 0 on timeout, -1 to stop. */
static int wait_io(wake *w, int fd, int ms)
{
    struct pollfd p[2] = {{w->pipe[0], POLLIN, 0}, {fd, POLLIN, 0}};
    int n = poll(p, fd >= 0 ? 2 : 1, ms);

    if (n < 0)
        return errno == EINTR ? 0 : -1;
    if (p[0].revents)
        return -1;
    return n > 0 && fd >= 0 && p[1].revents ? 1 : 0;
}

static PGconn *listen_conn(wake *w)
{
    trpc_status st = {0};
    char sql[96];
    PGconn *conn = pg_connect(&w->opts, &st);
    PGresult *res;

    if (conn == NULL)
        return NULL;
    snprintf(sql, sizeof(sql), "LISTEN %s", w->channel); /* an identifier: not a parameter */
    res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        log_warn("wake: LISTEN failed: %s", PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(conn);
        return NULL;
    }
    PQclear(res);
    return conn;
}

static void *wake_main(void *arg)
{
    wake *w = arg;
    PGconn *conn = NULL;
    int backoff = BACKOFF_MIN_MS;

    for (;;) {
        int r;

        if (conn == NULL) {
            conn = listen_conn(w);
            if (conn == NULL) {
                if (wait_io(w, -1, backoff) < 0)
                    break;
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            backoff = BACKOFF_MIN_MS;
            log_debug("wake: listening on %s", w->channel);
            bump(w, 0); /* whatever was sent while we were away: read from the checkpoint */
        }
        r = wait_io(w, PQsocket(conn), 60000);
        if (r < 0)
            break;
        if (r == 0)
            continue;
        if (!PQconsumeInput(conn)) {
            log_warn("wake: connection lost: %s", PQerrorMessage(conn));
            PQfinish(conn);
            conn = NULL;
            continue;
        }
        {
            PGnotify *n;
            int got = 0;

            while ((n = PQnotifies(conn)) != NULL) {
                got = 1;
                PQfreemem(n);
            }
            if (got)
                bump(w, 1);
        }
    }
    PQfinish(conn);
    return NULL;
}

static void init_sync(wake *w)
{
    pthread_condattr_t ca;

    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* waits ignore wall-clock jumps */
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
}

wake *wake_new(const struct pg_opts *o, const char *channel)
{
    wake *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->pipe[0] = w->pipe[1] = -1;
    init_sync(w);
    w->opts = *o;
    w->opts.connect_attempts = 1; /* the thread retries with its own backoff */
    snprintf(w->channel, sizeof(w->channel), "%s", channel);
    if (pipe(w->pipe) != 0) {
        wake_free(w);
        return NULL;
    }
    fcntl(w->pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(w->pipe[1], F_SETFD, FD_CLOEXEC);
    if (pthread_create(&w->thread, NULL, wake_main, w) != 0) {
        wake_free(w);
        return NULL;
    }
    w->started = 1;
    return w;
}

void wake_shutdown(wake *w)
{
    pthread_mutex_lock(&w->mu);
    w->shutdown = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int wake_is_shutdown(wake *w)
{
    int s;

    pthread_mutex_lock(&w->mu);
    s = w->shutdown;
    pthread_mutex_unlock(&w->mu);
    return s;
}

void wake_free(wake *w)
{
    if (w == NULL)
        return;
    wake_shutdown(w);
    if (w->started) {
        ssize_t n;

        do
            n = write(w->pipe[1], "x", 1);
        while (n < 0 && errno == EINTR);
        pthread_join(w->thread, NULL);
    }
    if (w->pipe[0] >= 0)
        close(w->pipe[0]);
    if (w->pipe[1] >= 0)
        close(w->pipe[1]);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

uint64_t wake_generation(wake *w)
{
    uint64_t g;

    pthread_mutex_lock(&w->mu);
    g = w->generation;
    pthread_mutex_unlock(&w->mu);
    return g;
}

uint64_t wake_notifications(wake *w)
{
    uint64_t n;

    pthread_mutex_lock(&w->mu);
    n = w->notifications;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void wake_poke(wake *w)
{
    bump(w, 0);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int wake_wait(wake *w, uint64_t *seen, int timeout_ms)
{
    struct timespec until;
    int moved;

    deadline_in(&until, timeout_ms);
    pthread_mutex_lock(&w->mu);
    while (w->generation == *seen && !w->shutdown)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
            break;
    moved = w->generation != *seen;
    *seen = w->generation;
    pthread_mutex_unlock(&w->mu);
    return moved;
}

int wake_sleep(wake *w, int ms)
{
    struct timespec until;
    int stopped;

    deadline_in(&until, ms);
    pthread_mutex_lock(&w->mu);
    while (!w->shutdown)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
            break;
    stopped = w->shutdown;
    pthread_mutex_unlock(&w->mu);
    return stopped;
}
