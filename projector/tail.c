/* tail.c - see tail.h. */
#include "tail.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "logread.h"
#include "rawlog.h"

#define BACKOFF_MIN_MS    100
#define BACKOFF_MAX_MS    2000
#define ERROR_LOG_GAP_MS  5000
#define CONNECT_TIMEOUT_S 2
#define FENCE_POLL_MIN_MS 1 /* re-reads while the fence is held: 1, 2, 4, 8, 8 ... ms */
#define FENCE_POLL_MAX_MS 8

struct tail {
    pthread_t thread;
    int wake_fd; /* eventfd */
    atomic_int stopping;
    struct pg_opts pg;
    char listen_sql[96];
    int poll_ms;
    ring *ring;
    void (*tick)(void *arg, int fresh);
    void *arg;
    int64_t last_error_log_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs a read failure at most every ERROR_LOG_GAP_MS: a poisoned or
 * unreachable log would otherwise log poll_ms apart. */
static void log_read_error(tail *t, const char *what, const char *msg)
{
    int64_t now = mono_ms();

    if (now - t->last_error_log_ms >= ERROR_LOG_GAP_MS) {
        log_warn("subscribe tail: %s: %s (retrying)", what, msg);
        t->last_error_log_ms = now;
    }
}

/* A connection listening on the channel, or NULL. */
static PGconn *tail_connect(tail *t)
{
    struct pg_opts o = t->pg;
    trpc_status st;
    PGconn *conn;

    o.connect_attempts = 1; /* the loop retries, serving ticks meanwhile */
    o.connect_timeout_s = CONNECT_TIMEOUT_S;
    conn = pg_connect(&o, &st);
    if (conn == NULL)
        return NULL;
    if (pg_command(conn, t->listen_sql, &st, "cannot listen") != GRPC_STATUS_OK)
        log_info("subscribe tail: no LISTEN (%s), polling only", st.msg); /* e.g. a replica */
    return conn;
}

grpc_status_code tail_log_end(PGconn *conn, struct store_position *at, trpc_status *st)
{
    /* e.: ORDER BY tx_id alone would name the text output column */
    static const char sql[] = "SELECT e.tx_id::text, e.global_position FROM events e"
                              " WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot())"
                              " ORDER BY e.tx_id DESC, e.global_position DESC LIMIT 1";
    PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    struct store_position p = {0, 0};

    if (pg_check(res, PGRES_TUPLES_OK, 2, st, "could not read the event log", "log end") !=
        GRPC_STATUS_OK)
        goto out;
    if (PQntuples(res) == 1 &&
        (pg_get_uint64(res, 0, 0, &p.tx_id) != 0 || pg_get_int64(res, 0, 1, &p.global_position))) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "could not read the event log");
        goto out;
    }
    *at = p;
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
out:
    PQclear(res);
    return st->code;
}

/* The ring starts at the end of the log. */
static int tail_start(tail *t, PGconn *conn)
{
    struct store_position at;
    trpc_status st;

    if (tail_log_end(conn, &at, &st) != GRPC_STATUS_OK)
        return -1;
    ring_start(t->ring, at);
    log_info("subscribe tail: following the log after %llu/%lld", (unsigned long long)at.tx_id,
             (long long)at.global_position);
    return 0;
}

struct push_ctx {
    tail *t;
    int oom;
};

static int push_event(void *arg, Tally__V1__Event *ev)
{
    struct push_ctx *p = arg;
    struct ring_entry *e = ring_entry_new(ev);

    protobuf_c_message_free_unpacked(&ev->base, NULL);
    if (e == NULL) {
        p->oom = 1;
        return 1;
    }
    ring_push(p->t->ring, e);
    return 0;
}

/* Reads every event behind the fence after the ring's newest, page by page,
 * ticking after each full page so live subscribers are served while a
 * backlog is read. Returns 0, or -1 on a failure (logged). */
static int read_new(tail *t, PGconn *conn)
{
    for (;;) {
        struct push_ctx p = {t, 0};
        struct store_position hi;
        struct logread_page page;
        trpc_status st;

        if (!ring_window(t->ring, NULL, &hi))
            return -1;
        if (logread_all(conn, NULL, hi, NULL, LOGREAD_MAX_LIMIT, LOGREAD_MAX_LIMIT, push_event, &p,
                        &page, &st) != GRPC_STATUS_OK) {
            log_read_error(t, "cannot read the log", st.msg);
            return -1;
        }
        if (p.oom) {
            log_read_error(t, "cannot buffer an event", "out of memory");
            return -1;
        }
        if (page.end_of_log || page.delivered == 0 || atomic_load(&t->stopping))
            return 0;
        t->tick(t->arg, 1);
    }
}

/* Waits for a notification, a wake-up or timeout_ms. Returns 1 when a
 * notification arrived, 0 otherwise, -1 when the connection broke. */
static int wait_input(tail *t, PGconn *conn, int timeout_ms)
{
    struct pollfd pfd[2] = {{t->wake_fd, POLLIN, 0}, {-1, POLLIN, 0}};
    int notified = 0;
    PGnotify *n;

    if (conn != NULL)
        pfd[1].fd = PQsocket(conn);
    if (poll(pfd, 2, timeout_ms) < 0 && errno != EINTR)
        return 0;
    if (pfd[0].revents) {
        uint64_t v;

        if (read(t->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            log_debug("subscribe tail: wake fd: %s", strerror(errno));
    }
    if (conn == NULL || pfd[1].revents == 0)
        return 0;
    if (!PQconsumeInput(conn))
        return -1;
    while ((n = PQnotifies(conn)) != NULL) {
        notified = 1;
        PQfreemem(n);
    }
    return notified;
}

static void *tail_main(void *arg)
{
    tail *t = arg;
    PGconn *conn = NULL;
    int64_t backoff = BACKOFF_MIN_MS, retry_at = 0, next_read = 0, next_tick = 0;
    int64_t held_wait = 0; /* while the fence is held: the next read's delay */
    int need_read = 1;

    while (!atomic_load(&t->stopping)) {
        int64_t now = mono_ms(), until;
        int fresh = 0, ticked = 0, rc;

        if (conn == NULL && now >= retry_at) {
            conn = tail_connect(t);
            if (conn == NULL) {
                retry_at = now + backoff;
                backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
            } else {
                backoff = BACKOFF_MIN_MS;
                need_read = 1; /* notifications were lost while disconnected */
            }
        }
        if (conn != NULL && !ring_window(t->ring, NULL, NULL) && tail_start(t, conn) != 0) {
            PQfinish(conn);
            conn = NULL;
            retry_at = now + backoff;
        }
        if (conn != NULL && (need_read || now >= next_read)) {
            if (read_new(t, conn) != 0 && PQstatus(conn) != CONNECTION_OK) {
                PQfinish(conn);
                conn = NULL;
                retry_at = now;
            }
            need_read = 0;
            next_read = now + t->poll_ms;
            /* serve what was read before asking about the fence: that is one
               more round trip the live subscribers need not wait for */
            t->tick(t->arg, 1);
            ticked = 1;
            next_tick = now + t->poll_ms;
            if (conn != NULL && rawlog_fence_held(conn)) {
                held_wait = held_wait == 0 ? FENCE_POLL_MIN_MS : held_wait * 2;
                if (held_wait > FENCE_POLL_MAX_MS)
                    held_wait = FENCE_POLL_MAX_MS;
                if (held_wait < t->poll_ms)
                    next_read = now + held_wait;
            } else {
                held_wait = 0;
            }
        }
        if (!ticked) {
            if (now >= next_tick)
                fresh = 1;
            if (fresh)
                next_tick = now + t->poll_ms;
            t->tick(t->arg, fresh);
        }

        until = next_tick;
        if (conn != NULL && next_read < until)
            until = next_read;
        if (conn == NULL && retry_at < until)
            until = retry_at;
        now = mono_ms();
        rc = wait_input(t, conn, until > now ? (int)(until - now) : 0);
        if (rc > 0) {
            need_read = 1;
        } else if (rc < 0) {
            PQfinish(conn);
            conn = NULL;
            retry_at = mono_ms();
        }
    }
    PQfinish(conn);
    return NULL;
}

tail *tail_new(const struct tail_opts *o)
{
    tail *t;

    if (o->pg == NULL || o->channel == NULL || o->ring == NULL || o->tick == NULL ||
        o->poll_ms < 10 || o->poll_ms > 60000)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->pg = *o->pg;
    snprintf(t->listen_sql, sizeof(t->listen_sql), "LISTEN %s", o->channel);
    t->poll_ms = o->poll_ms;
    t->ring = o->ring;
    t->tick = o->tick;
    t->arg = o->arg;
    t->last_error_log_ms = -ERROR_LOG_GAP_MS;
    atomic_init(&t->stopping, 0);
    t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->wake_fd < 0) {
        free(t);
        return NULL;
    }
    if (pthread_create(&t->thread, NULL, tail_main, t) != 0) {
        close(t->wake_fd);
        free(t);
        return NULL;
    }
    return t;
}

void tail_wake(tail *t)
{
    uint64_t one = 1;

    /* EAGAIN (counter saturated) still leaves the fd readable: nothing lost */
    if (write(t->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_debug("subscribe tail: wake: %s", strerror(errno));
}

void tail_free(tail *t)
{
    if (t == NULL)
        return;
    atomic_store(&t->stopping, 1);
    tail_wake(t);
    pthread_join(t->thread, NULL);
    close(t->wake_fd);
    free(t);
}
