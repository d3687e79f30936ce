/* subscribe.c - see subscribe.h. The handler, request checks, the catch-up
 * from the table (shared by the handler and the catch-up workers), the
 * runtime callbacks, and setup/teardown. The live half is
 * subscribe_live.c. */
#include "subscribe.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "logread.h"
#include "pgworker.h"
#include "subscribe_int.h"
#include "uuid.h"

#define CHANNEL "tally_outbox" /* the command servers' doorbell (DESIGN §6) */

#define RING_DEFAULT    10000
#define WORKERS_DEFAULT 2
#define WORKERS_MAX     64

#define CKPT_EVENTS_DEFAULT  1000
#define CKPT_EVENTS_MAX      1000000
#define CKPT_SECONDS_DEFAULT 5
#define HEARTBEAT_DEFAULT    15
#define SECONDS_MAX          3600

/* The handler waits this long for room in its stream before it parks the
 * subscriber and returns its pool thread (a client that stopped reading
 * must not hold one). */
#define HANDLER_SEND_WAIT_MS 1000
/* ... and at most this long for the tail's first read of the log. */
#define HANDLER_READY_WAIT_MS 10000

struct hub sub_hub;

/* catch-up results */
enum cu {
    CU_JOINED,    /* handed to the tail: no longer the caller's */
    CU_YIELD,     /* used its page budget; more to read */
    CU_STALLED,   /* the stream is full: park until on_writable */
    CU_CLOSED,    /* the call ended */
    CU_ERROR,     /* st says why */
    CU_NOT_READY, /* the tail has not started: try again soon */
};

int64_t sub_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sub_send(struct sub *s, const ProtobufCMessage *m, int wait_ms)
{
    gpr_timespec until = gpr_inf_past(GPR_CLOCK_MONOTONIC);

    if (wait_ms > 0)
        until =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(wait_ms, GPR_TIMESPAN));
    return trpc_stream_send(s->stream, m, until);
}

int sub_send_mark(struct sub *s, enum sub_mark what, int wait_ms)
{
    Tally__V1__SubscribeResponse msg = TALLY__V1__SUBSCRIBE_RESPONSE__INIT;
    Tally__V1__Position pos = TALLY__V1__POSITION__INIT;
    Tally__V1__Checkpoint ckpt = TALLY__V1__CHECKPOINT__INIT;
    Tally__V1__CaughtUp caught_up = TALLY__V1__CAUGHT_UP__INIT;
    Tally__V1__FellBehind fell_behind = TALLY__V1__FELL_BEHIND__INIT;
    Tally__V1__Heartbeat heartbeat = TALLY__V1__HEARTBEAT__INIT;
    int rc;

    pos.tx_id = s->pos.tx_id;
    pos.global_position = s->pos.global_position;
    switch (what) {
    case SUB_CHECKPOINT:
        ckpt.position = &pos;
        msg.message_case = TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_CHECKPOINT;
        msg.checkpoint = &ckpt;
        break;
    case SUB_CAUGHT_UP:
        caught_up.position = &pos;
        msg.message_case = TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_CAUGHT_UP;
        msg.caught_up = &caught_up;
        break;
    case SUB_FELL_BEHIND:
        fell_behind.position = &pos;
        msg.message_case = TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_FELL_BEHIND;
        msg.fell_behind = &fell_behind;
        break;
    case SUB_HEARTBEAT:
        heartbeat.position = &pos;
        msg.message_case = TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_HEARTBEAT;
        msg.heartbeat = &heartbeat;
        break;
    }
    rc = sub_send(s, &msg.base, wait_ms);
    if (rc == TRPC_STREAM_OK) {
        s->last_msg_ms = sub_now_ms();
        s->scanned = 0;
    }
    return rc;
}

void sub_queue_locked(struct sub *s)
{
    s->state = SUB_QUEUED;
    s->writable = 0;
    s->qnext = NULL;
    if (sub_hub.q_tail != NULL)
        sub_hub.q_tail->qnext = s;
    else
        sub_hub.q_head = s;
    sub_hub.q_tail = s;
    pthread_cond_signal(&sub_hub.work);
}

void sub_end(struct sub *s, grpc_status_code code, const char *msg)
{
    trpc_stream_finish(s->stream, code, msg); /* no callback runs after this */
    atomic_fetch_sub(&sub_hub.n_subs, 1);
    free(s);
}

/* ---- runtime callbacks (runtime threads: never block, never send) ---- */

static void on_close(trpc_stream *stream, void *arg)
{
    struct sub *s = arg;
    int wake = 0;

    (void)stream;
    pthread_mutex_lock(&sub_hub.mu);
    s->closed = 1;
    if (s->state == SUB_PARKED) {
        sub_queue_locked(s); /* a worker ends it */
    } else if (s->state == SUB_LIVE) {
        sub_ready_locked(s); /* the tail ends it */
        wake = 1;
    } /* else its owner sees the closed stream */
    pthread_mutex_unlock(&sub_hub.mu);
    if (wake)
        tail_wake(sub_hub.tail);
}

static void on_writable(trpc_stream *stream, void *arg)
{
    struct sub *s = arg;
    int wake = 0;

    (void)stream;
    pthread_mutex_lock(&sub_hub.mu);
    if (s->state == SUB_PARKED) {
        sub_queue_locked(s);
    } else if (s->state == SUB_LIVE) {
        sub_ready_locked(s);
        wake = 1;
    } else {
        s->writable = 1; /* the owner looks before it parks */
    }
    pthread_mutex_unlock(&sub_hub.mu);
    if (wake)
        tail_wake(sub_hub.tail);
}

/* The owner found the stream full: park s until on_writable (or on_close),
 * unless one of them came already. s is no longer the caller's. */
static void sub_park(struct sub *s)
{
    pthread_mutex_lock(&sub_hub.mu);
    if (s->closed || s->writable)
        sub_queue_locked(s);
    else
        s->state = SUB_PARKED;
    pthread_mutex_unlock(&sub_hub.mu);
}

/* ---- catch-up ---- */

struct page_ctx {
    struct sub *s;
    int wait_ms;
    int rc; /* TRPC_STREAM_* of the send that stopped the page */
};

static int send_event(void *arg, Tally__V1__Event *ev)
{
    struct page_ctx *c = arg;
    Tally__V1__SubscribeResponse msg = TALLY__V1__SUBSCRIBE_RESPONSE__INIT;
    struct store_position p = {ev->position->tx_id, ev->position->global_position};

    msg.message_case = TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_EVENT;
    msg.event = ev;
    c->rc = sub_send(c->s, &msg.base, c->wait_ms);
    protobuf_c_message_free_unpacked(&ev->base, NULL);
    if (c->rc != TRPC_STREAM_OK)
        return 1;
    c->s->pos = p;
    c->s->scanned = 0;
    c->s->last_msg_ms = sub_now_ms();
    return 0;
}

/* Hands s to the tail if s->pos is inside the ring's window: the tail
 * sends the rest from the ring, then caught_up once s reaches the ring's
 * newest entry, then live events. Returns CU_JOINED (s is no longer the
 * caller's), CU_CLOSED, or CU_YIELD when the window does not cover s->pos
 * (read on from the table). */
static enum cu try_join(struct sub *s)
{
    uint64_t seq;

    if (!ring_join(sub_hub.ring, s->pos, &seq))
        return CU_YIELD;
    s->next_seq = seq;
    s->blocked = 0;
    s->caught_up_due = 1;
    pthread_mutex_lock(&sub_hub.mu);
    if (s->closed) {
        pthread_mutex_unlock(&sub_hub.mu);
        return CU_CLOSED;
    }
    s->state = SUB_LIVE;
    s->qnext = sub_hub.joins;
    sub_hub.joins = s;
    pthread_mutex_unlock(&sub_hub.mu);
    tail_wake(sub_hub.tail);
    return CU_JOINED;
}

/* Reads s's events from the table after s->pos, page by page (at most
 * max_pages; each page ends with a message, so there are never more than a
 * page's scan between two), until s->pos enters the ring's window and the
 * tail takes s over. Sends wait up to wait_ms for room (0: not at all; then
 * each page reads only what fits in the queue, plus one event that finds it
 * full and so arms on_writable). */
static enum cu catchup_run(struct sub *s, PGconn *conn, int wait_ms, int max_pages, trpc_status *st)
{
    trpc_call *call = trpc_stream_call(s->stream);
    int scan_limit = s->ckpt_events < LOGREAD_SCAN_LIMIT ? (int)s->ckpt_events : LOGREAD_SCAN_LIMIT;
    int pages = 0, rc;

    if (s->fell_behind_due) {
        rc = sub_send_mark(s, SUB_FELL_BEHIND, wait_ms);
        if (rc != TRPC_STREAM_OK)
            return rc == TRPC_STREAM_FULL ? CU_STALLED : CU_CLOSED;
        s->fell_behind_due = 0;
    }
    if (s->ckpt_due) {
        rc = sub_send_mark(s, SUB_CHECKPOINT, wait_ms);
        if (rc != TRPC_STREAM_OK)
            return rc == TRPC_STREAM_FULL ? CU_STALLED : CU_CLOSED;
        s->ckpt_due = 0;
    }
    for (;;) {
        struct page_ctx ctx = {s, wait_ms, TRPC_STREAM_OK};
        struct store_position hi;
        struct logread_page page;
        int limit, unreported;
        enum cu r;

        if (trpc_call_is_cancelled(call))
            return CU_CLOSED;
        if (!ring_window(sub_hub.ring, NULL, &hi))
            return CU_NOT_READY;
        r = try_join(s);
        if (r != CU_YIELD)
            return r;
        if (pages++ == max_pages)
            return CU_YIELD;
        if (wait_ms > 0) {
            limit = LOGREAD_MAX_LIMIT;
        } else {
            size_t queued = trpc_stream_queued(s->stream);

            limit = (queued < SUB_QUEUE_CAP ? (int)(SUB_QUEUE_CAP - queued) : 0) + 1;
        }
        if (logread_all(conn, s->tenant_id, s->pos, s->req->filter, limit, scan_limit, send_event,
                        &ctx, &page, st) != GRPC_STATUS_OK)
            return CU_ERROR;
        if (ctx.rc != TRPC_STREAM_OK)
            return ctx.rc == TRPC_STREAM_FULL ? CU_STALLED : CU_CLOSED;
        /* rows after the last event sent were scanned and left out */
        unreported = logread_position_cmp(page.next, s->pos) > 0;
        if (unreported)
            s->pos = page.next;
        if (page.end_of_log) {
            /* Every event up to hi was read by the tail before this page's
             * snapshot, so it is behind this page's fence: none of s's
             * events is left in (s->pos, hi]. */
            if (logread_position_cmp(hi, s->pos) > 0)
                s->pos = hi;
            continue;
        }
        if (!unreported) /* the page ended with an event: that was its message */
            continue;
        rc = sub_send_mark(s, SUB_CHECKPOINT, wait_ms);
        if (rc != TRPC_STREAM_OK) {
            s->ckpt_due = 1;
            return rc == TRPC_STREAM_FULL ? CU_STALLED : CU_CLOSED;
        }
    }
}

/* ---- catch-up workers: fallen-behind and parked subscribers ---- */

/* A connection made on first use (pg_worker_conn connects when there is
 * none): a projector that serves no Subscribe holds no idle connections. */
static void pg_worker_lazy(struct pg_worker *w, const struct pg_opts *opts)
{
    memset(w, 0, sizeof(*w));
    w->opts = opts;
}

static void *worker_main(void *arg)
{
    struct pg_worker w;

    (void)arg;
    pg_worker_lazy(&w, &sub_hub.pg);
    for (;;) {
        struct sub *s;
        trpc_status st;
        PGconn *conn;
        int closed;
        enum cu r;

        pthread_mutex_lock(&sub_hub.mu);
        while (sub_hub.q_head == NULL && !sub_hub.stopping)
            pthread_cond_wait(&sub_hub.work, &sub_hub.mu);
        s = sub_hub.q_head;
        if (s == NULL) { /* stopping */
            pthread_mutex_unlock(&sub_hub.mu);
            break;
        }
        sub_hub.q_head = s->qnext;
        if (sub_hub.q_head == NULL)
            sub_hub.q_tail = NULL;
        s->qnext = NULL;
        s->state = SUB_CATCHUP;
        s->writable = 0;
        closed = s->closed;
        pthread_mutex_unlock(&sub_hub.mu);

        if (closed) {
            sub_end(s, GRPC_STATUS_CANCELLED, "cancelled");
            continue;
        }
        conn = pg_worker_conn(&w, &st);
        r = conn != NULL ? catchup_run(s, conn, 0, 1, &st) : CU_ERROR;
        switch (r) {
        case CU_JOINED:
            break;
        case CU_NOT_READY:
            ring_wait_ready(sub_hub.ring, 100);
            /* fall through */
        case CU_YIELD:
            pthread_mutex_lock(&sub_hub.mu);
            sub_queue_locked(s); /* to the back: every waiting subscriber gets a turn */
            pthread_mutex_unlock(&sub_hub.mu);
            break;
        case CU_STALLED:
            sub_park(s);
            break;
        case CU_CLOSED:
            sub_end(s, GRPC_STATUS_CANCELLED, "cancelled");
            break;
        case CU_ERROR:
            log_warn("subscribe: tenant %s: catch-up failed: %s", s->tenant_id, st.msg);
            sub_end(s, st.code, st.msg);
            break;
        }
    }
    pg_worker_cleanup(&w);
    return NULL;
}

/* ---- the handler ---- */

static grpc_status_code check_request(const Tally__V1__SubscribeRequest *req, trpc_status *st)
{
    switch (req->start) {
    case TALLY__V1__SUBSCRIBE_REQUEST__START__START_UNSPECIFIED:
    case TALLY__V1__SUBSCRIBE_REQUEST__START__START_BEGINNING:
    case TALLY__V1__SUBSCRIBE_REQUEST__START__START_END:
        if (req->after != NULL)
            return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                                   "after is only allowed with START_AFTER");
        break;
    case TALLY__V1__SUBSCRIBE_REQUEST__START__START_AFTER:
        if (req->after == NULL)
            return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                                   "after is required with START_AFTER");
        if (req->after->global_position < 0)
            return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                                   "after.global_position must be >= 0");
        break;
    default:
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "unknown start %d",
                               (int)req->start);
    }
    if (req->checkpoint_interval_events > CKPT_EVENTS_MAX)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "checkpoint_interval_events must be 0..%d", CKPT_EVENTS_MAX);
    if (req->checkpoint_interval_seconds > SECONDS_MAX)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "checkpoint_interval_seconds must be 0..%d", SECONDS_MAX);
    if (req->heartbeat_interval_seconds > SECONDS_MAX)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "heartbeat_interval_seconds must be 0..%d", SECONDS_MAX);
    return logread_filter_check(req->filter, st);
}

/* Where the subscription starts. */
static grpc_status_code start_position(const Tally__V1__SubscribeRequest *req, PGconn *conn,
                                       struct store_position *pos, trpc_status *st)
{
    pos->tx_id = 0;
    pos->global_position = 0;
    if (req->start == TALLY__V1__SUBSCRIBE_REQUEST__START__START_AFTER) {
        pos->tx_id = req->after->tx_id;
        pos->global_position = req->after->global_position;
    } else if (req->start == TALLY__V1__SUBSCRIBE_REQUEST__START__START_END) {
        return tail_log_end(conn, pos, st);
    }
    st->code = GRPC_STATUS_OK;
    return GRPC_STATUS_OK;
}

/* The handler lets go of s before its return: no callback may run on s
 * afterwards. */
static void handler_release(trpc_stream *out, struct sub *s)
{
    trpc_stream_on_close(out, NULL, NULL); /* waits for a running callback */
    trpc_stream_on_writable(out, NULL, NULL);
    if (s != NULL) {
        atomic_fetch_sub(&sub_hub.n_subs, 1);
        free(s);
    }
}

grpc_status_code subscribe_rpc(trpc_call *call, const Tally__V1__SubscribeRequest *req,
                               trpc_stream *out)
{
    struct pg_worker *w = trpc_call_worker_data(call);
    const Tally__V1__EventFilter *f = req->filter;
    struct auth_identity who;
    const char *auth_value;
    struct sub *s = NULL;
    int64_t ready_until;
    size_t len = 0;
    trpc_status st;
    PGconn *conn;
    enum cu r;

    st.code = GRPC_STATUS_OK;
    st.msg[0] = '\0';
    if (w == NULL || (conn = pg_worker_conn(w, &st)) == NULL) {
        trpc_status_set(&st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
        goto fail;
    }
    trpc_call_on_cancel(call, pg_worker_cancel, w);
    auth_value = trpc_call_metadata(call, "authorization", &len);
    if (auth_authenticate(sub_hub.auth, conn, auth_value, len, &who, &st) != GRPC_STATUS_OK ||
        check_request(req, &st) != GRPC_STATUS_OK)
        goto fail;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        trpc_status_set(&st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    s->stream = out;
    s->req = req;
    s->state = SUB_HANDLER;
    memcpy(s->tenant_id, who.tenant_id, sizeof(s->tenant_id));
    if (f != NULL && f->aggregate_id[0] &&
        uuid_check("filter.aggregate_id", f->aggregate_id, s->aggregate_id, &st) != GRPC_STATUS_OK)
        goto fail;
    s->ckpt_events =
        req->checkpoint_interval_events ? req->checkpoint_interval_events : CKPT_EVENTS_DEFAULT;
    s->ckpt_ms = 1000LL * (req->checkpoint_interval_seconds ? req->checkpoint_interval_seconds
                                                            : CKPT_SECONDS_DEFAULT);
    s->heartbeat_ms = 1000LL * (req->heartbeat_interval_seconds ? req->heartbeat_interval_seconds
                                                                : HEARTBEAT_DEFAULT);
    s->last_msg_ms = sub_now_ms();
    if (start_position(req, conn, &s->pos, &st) != GRPC_STATUS_OK)
        goto fail;
    atomic_fetch_add(&sub_hub.n_subs, 1);
    trpc_stream_on_close(out, on_close, s);
    trpc_stream_on_writable(out, on_writable, s);
    log_debug("subscribe: tenant %s start %d after %llu/%lld", s->tenant_id, (int)req->start,
              (unsigned long long)s->pos.tx_id, (long long)s->pos.global_position);

    ready_until = sub_now_ms() + HANDLER_READY_WAIT_MS;
    for (;;) {
        r = catchup_run(s, conn, HANDLER_SEND_WAIT_MS, INT_MAX, &st);
        if (r != CU_NOT_READY)
            break;
        if (sub_now_ms() >= ready_until) {
            r = CU_ERROR;
            trpc_status_set(&st, GRPC_STATUS_UNAVAILABLE, "live subscriptions not available yet");
            break;
        }
        ring_wait_ready(sub_hub.ring, 100);
    }
    trpc_call_on_cancel(call, NULL, NULL);
    switch (r) {
    case CU_JOINED:
        return TRPC_STATUS_DETACHED;
    case CU_STALLED:
        sub_park(s);
        return TRPC_STATUS_DETACHED;
    case CU_YIELD: /* not with an unlimited budget; hand it to a worker anyway */
        pthread_mutex_lock(&sub_hub.mu);
        sub_queue_locked(s);
        pthread_mutex_unlock(&sub_hub.mu);
        return TRPC_STATUS_DETACHED;
    case CU_CLOSED:
        handler_release(out, s);
        return trpc_call_fail(call, GRPC_STATUS_CANCELLED, "cancelled");
    default:
        handler_release(out, s);
        return trpc_call_fail_status(call, &st);
    }
fail:
    trpc_call_on_cancel(call, NULL, NULL);
    free(s); /* callbacks were not set yet */
    return trpc_call_fail_status(call, &st);
}

/* ---- setup ---- */

static void *pool_worker_init(void *arg, int index)
{
    struct pg_worker *w = malloc(sizeof(*w));

    (void)index;
    if (w != NULL)
        pg_worker_lazy(w, arg);
    return w;
}

static void pool_worker_fini(void *arg)
{
    struct pg_worker *w = arg;

    if (w == NULL)
        return;
    pg_worker_cleanup(w);
    free(w);
}

/* An integer setting from the environment (unset or empty: dflt). Returns
 * 0, or -1 after logging a bad value. */
static int env_int(const char *name, long min, long max, long dflt, long *out)
{
    const char *v = getenv(name);
    char *end = NULL;
    long n;

    *out = dflt;
    if (v == NULL || v[0] == '\0')
        return 0;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
        log_error("invalid %s \"%s\" (expected %ld..%ld)", name, v, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

int subscribe_setup(const struct config *cfg, trpc_server_opts *opts)
{
    struct tail_opts to;
    long ring_cap, poll_ms, workers;

    memset(&sub_hub, 0, sizeof(sub_hub));
    if (env_int("TALLY_SUBSCRIBE_RING", RING_MIN_CAPACITY, RING_MAX_CAPACITY, RING_DEFAULT,
                &ring_cap) != 0 ||
        env_int("TALLY_SUBSCRIBE_POLL_MS", 10, 60000, TAIL_POLL_MS_DEFAULT, &poll_ms) != 0 ||
        env_int("TALLY_SUBSCRIBE_WORKERS", 1, WORKERS_MAX, WORKERS_DEFAULT, &workers) != 0)
        return -1;
    pthread_mutex_init(&sub_hub.mu, NULL);
    pthread_cond_init(&sub_hub.work, NULL);
    sub_hub.live_ok = 1;
    pg_opts_init(&sub_hub.pg);
    sub_hub.pg.conninfo = cfg->db;
    sub_hub.pg.application_name = "tally-projector";
    sub_hub.auth = auth_cache_new(AUTH_CACHE_TTL_MS, AUTH_CACHE_NEGATIVE_TTL_MS, AUTH_CACHE_SLOTS);
    sub_hub.ring = ring_new((size_t)ring_cap);
    sub_hub.workers = calloc((size_t)workers, sizeof(*sub_hub.workers));
    if (sub_hub.auth == NULL || sub_hub.ring == NULL || sub_hub.workers == NULL) {
        log_error("cannot allocate the subscription service");
        return -1;
    }
    memset(&to, 0, sizeof(to));
    to.pg = &sub_hub.pg;
    to.channel = CHANNEL;
    to.poll_ms = (int)poll_ms;
    to.ring = sub_hub.ring;
    to.tick = sub_live_tick;
    sub_hub.tail = tail_new(&to);
    if (sub_hub.tail == NULL) {
        log_error("cannot start the subscription tail");
        return -1;
    }
    sub_hub.n_workers = (int)workers;
    for (; sub_hub.n_started < sub_hub.n_workers; sub_hub.n_started++)
        if (pthread_create(&sub_hub.workers[sub_hub.n_started], NULL, worker_main, NULL) != 0) {
            log_error("cannot start the subscription workers");
            return -1;
        }
    opts->worker_init = pool_worker_init;
    opts->worker_fini = pool_worker_fini;
    opts->worker_arg = &sub_hub.pg;
    log_info("subscriptions: ring %ld events, poll %ld ms, %ld catch-up workers", ring_cap, poll_ms,
             workers);
    return 0;
}

void subscribe_teardown(void)
{
    if (sub_hub.live_ok) {
        pthread_mutex_lock(&sub_hub.mu);
        sub_hub.stopping = 1;
        pthread_cond_broadcast(&sub_hub.work);
        pthread_mutex_unlock(&sub_hub.mu);
    }
    for (int i = 0; i < sub_hub.n_started; i++)
        pthread_join(sub_hub.workers[i], NULL);
    tail_free(sub_hub.tail);
    if (atomic_load(&sub_hub.n_subs) != 0)
        log_error("subscribe: %ld subscriptions still open at teardown",
                  atomic_load(&sub_hub.n_subs));
    ring_free(sub_hub.ring);
    auth_cache_free(sub_hub.auth);
    free(sub_hub.workers);
    if (sub_hub.live_ok) {
        pthread_cond_destroy(&sub_hub.work);
        pthread_mutex_destroy(&sub_hub.mu);
    }
    memset(&sub_hub, 0, sizeof(sub_hub));
}
