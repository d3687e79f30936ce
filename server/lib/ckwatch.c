/* ckwatch.c - see ckwatch.h. */
#include "ckwatch.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "logread.h"

#define FAST_POLL_MS 10
#define SLOW_POLL_MS 1000

struct ckwatch {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t changed; /* the checkpoint moved */
    pthread_cond_t wake;    /* a waiter arrived, or stop */
    struct store_position cur;
    int waiters;
    int stopping;
    uint64_t notifications; /* wake-ups by NOTIFY (ckwatch_notifications) */
    uint64_t reads;         /* checkpoint reads (ckwatch_reads) */
    int kick;               /* eventfd: a first waiter arrived, or stop (ends the poll at once) */
    struct pg_opts pg;
    char name[64];
    char listen_sql[96];
};

static void now_plus(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int read_checkpoint(ckwatch *w, PGconn *conn)
{
    static const char sql[] = "SELECT tx_id::text, global_position FROM projector_checkpoints"
                              " WHERE name = $1";
    const char *values[1] = {w->name};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, values, NULL, NULL, 0);
    struct store_position p = {0, 0};
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;

    pthread_mutex_lock(&w->mu);
    w->reads++;
    pthread_mutex_unlock(&w->mu);
    if (ok && PQntuples(res) == 1) {
        pg_get_uint64(res, 0, 0, &p.tx_id);
        pg_get_int64(res, 0, 1, &p.global_position);
        pthread_mutex_lock(&w->mu);
        if (logread_position_cmp(p, w->cur) > 0) {
            w->cur = p;
            pthread_cond_broadcast(&w->changed);
        }
        pthread_mutex_unlock(&w->mu);
    } else if (!ok) {
        log_warn("checkpoint watch: %s", PQresultErrorMessage(res));
    }
    PQclear(res);
    return ok;
}

/* Wakes the watcher thread out of its poll. */
static void kick(ckwatch *w)
{
    uint64_t one = 1;

    if (write(w->kick, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("checkpoint watch: eventfd write: %s", strerror(errno));
}

/* Waits for a notification on conn, a kick, or the poll interval; drains
 * notifications and kicks. Returns 0, or -1 when the connection broke. */
static int wait_input(ckwatch *w, PGconn *conn)
{
    struct pollfd pfd[2] = {{PQsocket(conn), POLLIN, 0}, {w->kick, POLLIN, 0}};
    int waiters, timeout, got = 0;
    PGnotify *n;
    uint64_t count;

    /* a notification that arrived during the last read is already in
     * libpq's queue, not on the socket: read again at once */
    if ((n = PQnotifies(conn)) != NULL) {
        do
            PQfreemem(n);
        while ((n = PQnotifies(conn)) != NULL);
        pthread_mutex_lock(&w->mu);
        w->notifications++;
        pthread_mutex_unlock(&w->mu);
        return 0;
    }
    pthread_mutex_lock(&w->mu);
    waiters = w->waiters;
    pthread_mutex_unlock(&w->mu);
    timeout = waiters > 0 ? FAST_POLL_MS : SLOW_POLL_MS;
    if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
        return -1;
    if (pfd[1].revents && read(w->kick, &count, sizeof(count)) < 0 && errno != EAGAIN)
        log_warn("checkpoint watch: eventfd read: %s", strerror(errno));
    if (pfd[0].revents && !PQconsumeInput(conn))
        return -1;
    while ((n = PQnotifies(conn)) != NULL) {
        PQfreemem(n);
        got = 1;
    }
    if (got) {
        pthread_mutex_lock(&w->mu);
        w->notifications++;
        pthread_mutex_unlock(&w->mu);
    }
    return 0;
}

static void sleep_unless_stopping(ckwatch *w, int64_t ms)
{
    struct timespec ts;

    now_plus(&ts, ms);
    pthread_mutex_lock(&w->mu);
    if (!w->stopping)
        pthread_cond_timedwait(&w->wake, &w->mu, &ts);
    pthread_mutex_unlock(&w->mu);
}

static int stopping(ckwatch *w)
{
    int s;

    pthread_mutex_lock(&w->mu);
    s = w->stopping;
    pthread_mutex_unlock(&w->mu);
    return s;
}

static void *watch_main(void *arg)
{
    ckwatch *w = arg;
    PGconn *conn = NULL;
    int64_t backoff = 100;

    while (!stopping(w)) {
        if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
            struct pg_opts o = w->pg;
            trpc_status st;

            PQfinish(conn);
            o.connect_attempts = 1;
            conn = pg_connect(&o, &st);
            if (conn == NULL) {
                sleep_unless_stopping(w, backoff);
                backoff = backoff < 2000 ? backoff * 2 : 2000;
                continue;
            }
            backoff = 100;
            if (w->listen_sql[0]) { /* refused on a hot standby: the timer suffices */
                PGresult *res = PQexecParams(conn, w->listen_sql, 0, NULL, NULL, NULL, NULL, 0);

                if (PQresultStatus(res) != PGRES_COMMAND_OK)
                    log_info("checkpoint watch: no LISTEN (%s), polling only",
                             PQresultErrorMessage(res));
                PQclear(res);
            }
        }
        if (!read_checkpoint(w, conn) || wait_input(w, conn) != 0) {
            PQfinish(conn);
            conn = NULL;
        }
    }
    PQfinish(conn);
    return NULL;
}

ckwatch *ckwatch_new(const struct pg_opts *pg, const char *name, const char *channel)
{
    ckwatch *w = calloc(1, sizeof(*w));
    pthread_condattr_t ca;

    if (w == NULL)
        return NULL;
    w->pg = *pg;
    snprintf(w->name, sizeof(w->name), "%s", name);
    if (channel)
        snprintf(w->listen_sql, sizeof(w->listen_sql), "LISTEN %s", channel);
    w->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->kick < 0) {
        log_error("checkpoint watch: eventfd: %s", strerror(errno));
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->changed, &ca);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        close(w->kick);
        pthread_cond_destroy(&w->changed);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void ckwatch_free(ckwatch *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->mu);
    kick(w);
    pthread_join(w->thread, NULL);
    close(w->kick);
    pthread_cond_destroy(&w->changed);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

struct store_position ckwatch_current(ckwatch *w)
{
    struct store_position p;

    pthread_mutex_lock(&w->mu);
    p = w->cur;
    pthread_mutex_unlock(&w->mu);
    return p;
}

uint64_t ckwatch_notifications(ckwatch *w)
{
    uint64_t n;

    pthread_mutex_lock(&w->mu);
    n = w->notifications;
    pthread_mutex_unlock(&w->mu);
    return n;
}

uint64_t ckwatch_reads(ckwatch *w)
{
    uint64_t n;

    pthread_mutex_lock(&w->mu);
    n = w->reads;
    pthread_mutex_unlock(&w->mu);
    return n;
}

grpc_status_code ckwatch_wait(ckwatch *w, struct store_position pos, trpc_call *call,
                              int64_t timeout_ms, trpc_status *st)
{
    struct timespec end;
    grpc_status_code code = GRPC_STATUS_OK;

    if (call)
        timeout_ms = trpc_call_ms_left(call);
    if (timeout_ms > 24LL * 3600 * 1000)
        timeout_ms = 24LL * 3600 * 1000;
    now_plus(&end, timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&w->mu);
    w->waiters++;
    pthread_cond_signal(&w->wake);
    if (logread_position_cmp(w->cur, pos) < 0)
        kick(w); /* the watcher may sit in its slow poll: read now, then every 10 ms */
    while (logread_position_cmp(w->cur, pos) < 0) {
        struct timespec slice, now;

        /* the deadline first: a call past it is also "cancelled", and the
         * contract says DEADLINE_EXCEEDED */
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((call && trpc_call_ms_left(call) <= 0) || now.tv_sec > end.tv_sec ||
            (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec)) {
            code =
                trpc_status_set(st, GRPC_STATUS_DEADLINE_EXCEEDED,
                                "projections have not reached position %" PRIu64 "/%" PRId64 " yet",
                                pos.tx_id, pos.global_position);
            break;
        }
        if (w->stopping || (call && trpc_call_is_cancelled(call))) {
            code = trpc_status_set(st, GRPC_STATUS_CANCELLED, "call cancelled");
            break;
        }
        now_plus(&slice, 100); /* wake up now and then to see a cancel */
        if (slice.tv_sec > end.tv_sec ||
            (slice.tv_sec == end.tv_sec && slice.tv_nsec > end.tv_nsec))
            slice = end;
        pthread_cond_timedwait(&w->changed, &w->mu, &slice);
    }
    w->waiters--;
    pthread_mutex_unlock(&w->mu);
    if (code == GRPC_STATUS_OK && st) {
        st->code = GRPC_STATUS_OK;
        st->msg[0] = '\0';
    }
    return code;
}
