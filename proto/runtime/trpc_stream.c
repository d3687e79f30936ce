/* trpc_stream.c - server streams: a bounded queue of serialized messages
 * with one SEND_MESSAGE in flight. Any thread may queue (trpc_stream_send);
 * whoever finds nothing in flight starts the send, and each send completion
 * (on the call's CQ thread) starts the next, then the status once the owner
 * has finished the stream and the queue is empty.
 *
 * Locks: s->lock guards the queue and flags; s->cb_lock (recursive) is held
 * while on_close/on_writable run, and trpc_stream_finish takes it, so an
 * owner's callback never runs after (or during) its finish, while a callback
 * may itself call trpc_stream_finish. cb_lock is never taken with s->lock
 * held. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>

#include "trpc_internal.h"

#define QUEUE_CAP 16

struct trpc_stream {
    trpc_call *call;
    pthread_mutex_t lock;
    pthread_cond_t room; /* CLOCK_MONOTONIC */
    pthread_mutex_t cb_lock;
    grpc_byte_buffer *q[QUEUE_CAP];
    unsigned head, count;
    grpc_byte_buffer *inflight;
    int md_sent;        /* initial metadata went with the first batch */
    int closed;         /* cancelled or failed: no more sends, no status */
    int finishing;      /* the owner finished: status after the queue */
    int status_started; /* SEND_STATUS_FROM_SERVER started */
    int released;       /* the owner let go: no more callbacks */
    int want_writable;  /* a send returned TRPC_STREAM_FULL */
    int close_fired;
    grpc_status_code code;
    char *status_msg;
    void (*on_close)(trpc_stream *s, void *arg);
    void *close_arg;
    void (*on_writable)(trpc_stream *s, void *arg);
    void *writable_arg;
};

static void on_send_done(trpc_call *c, int success);
static void on_status_done(trpc_call *c, int success);

static void drop_queue_locked(trpc_stream *s)
{
    while (s->count > 0) {
        grpc_byte_buffer_destroy(s->q[s->head]);
        s->head = (s->head + 1) % QUEUE_CAP;
        s->count--;
    }
}

/* Marks the stream closed and makes sure the call ends (its RECV_CLOSE then
 * completes and releases what is left). */
static void close_locked(trpc_stream *s)
{
    if (!s->closed) {
        s->closed = 1;
        atomic_store(&s->call->cancelled, 1);
        grpc_call_cancel(s->call->call, NULL);
    }
    drop_queue_locked(s);
    pthread_cond_broadcast(&s->room);
}

static void start_send_locked(trpc_stream *s, grpc_byte_buffer *bb)
{
    trpc_call *c = s->call;
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (!s->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        s->md_sent = 1;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = bb;
    s->inflight = bb;
    if (trpc_call_start(c, ops, n, &c->t_done, on_send_done) != 0) {
        s->inflight = NULL;
        grpc_byte_buffer_destroy(bb);
        close_locked(s);
    }
}

static void start_status_locked(trpc_stream *s)
{
    trpc_call *c = s->call;
    grpc_slice details = grpc_slice_from_copied_string(s->status_msg ? s->status_msg : "");
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (!s->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        s->md_sent = 1;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = s->code;
    ops[n++].data.send_status_from_server.status_details = &details;
    s->status_started = 1;
    if (trpc_call_start(c, ops, n, &c->t_aux, on_status_done) != 0)
        close_locked(s);
    grpc_slice_unref(details);
}

/* Runs on_close once, if the stream closed and its owner has not let go. */
static void maybe_fire_close(trpc_stream *s)
{
    void (*fn)(trpc_stream *, void *) = NULL;
    void *arg = NULL;

    pthread_mutex_lock(&s->cb_lock);
    pthread_mutex_lock(&s->lock);
    if (s->closed && !s->close_fired && !s->released && s->on_close != NULL) {
        s->close_fired = 1;
        fn = s->on_close;
        arg = s->close_arg;
    }
    pthread_mutex_unlock(&s->lock);
    if (fn != NULL)
        fn(s, arg);
    pthread_mutex_unlock(&s->cb_lock);
}

static void fire_writable(trpc_stream *s)
{
    void (*fn)(trpc_stream *, void *) = NULL;
    void *arg = NULL;

    pthread_mutex_lock(&s->cb_lock);
    pthread_mutex_lock(&s->lock);
    if (!s->closed && !s->released && s->on_writable != NULL) {
        fn = s->on_writable;
        arg = s->writable_arg;
    }
    pthread_mutex_unlock(&s->lock);
    if (fn != NULL)
        fn(s, arg);
    pthread_mutex_unlock(&s->cb_lock);
}

static void on_send_done(trpc_call *c, int success)
{
    trpc_stream *s = c->stream;
    int writable = 0, closed;

    pthread_mutex_lock(&s->lock);
    grpc_byte_buffer_destroy(s->inflight);
    s->inflight = NULL;
    if (!success)
        close_locked(s);
    if (s->closed) {
        drop_queue_locked(s);
    } else if (s->count > 0) {
        grpc_byte_buffer *bb = s->q[s->head];

        s->head = (s->head + 1) % QUEUE_CAP;
        s->count--;
        start_send_locked(s, bb);
    } else if (s->finishing && !s->status_started) {
        start_status_locked(s);
    }
    if (s->want_writable && !s->closed && s->count <= QUEUE_CAP / 2) {
        s->want_writable = 0;
        writable = 1;
    }
    closed = s->closed;
    pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->lock);
    if (closed)
        maybe_fire_close(s);
    else if (writable)
        fire_writable(s);
    trpc_call_unref(c); /* the send batch's reference */
}

static void on_status_done(trpc_call *c, int success)
{
    (void)success;
    trpc_call_unref(c);
}

void trpc_stream_call_closed(trpc_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->closed = 1; /* the call is over: no need to cancel it */
    drop_queue_locked(s);
    pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->lock);
    maybe_fire_close(s);
}

static void run_stream(trpc_call *c, void *worker_data)
{
    trpc_stream *s = c->stream;
    grpc_status_code code;

    if (trpc_call_is_cancelled(c)) {
        trpc_stream_finish(s, GRPC_STATUS_CANCELLED, "cancelled");
        return;
    }
    /* the handler's own reference: a detached owner may finish (dropping
     * the owner's reference) before the handler has even returned */
    trpc_call_ref(c);
    trpc_call_handler_enter(c, worker_data);
    code = ((trpc_server_stream_fn)c->m->fn)(c, c->req, s);
    trpc_call_handler_leave(c);
    if (code == TRPC_STATUS_DETACHED)
        maybe_fire_close(s); /* a close that came before on_close was set */
    else
        trpc_stream_finish(s, code, code == GRPC_STATUS_OK ? "" : c->fail_msg);
    trpc_call_unref(c);
}

static void stream_job(void *arg, void *worker_data)
{
    run_stream(arg, worker_data);
}

void trpc_stream_serve(trpc_call *c)
{
    trpc_stream *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;
    pthread_mutexattr_t ma;

    if (s == NULL) {
        trpc_call_reply_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->room, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s->cb_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    s->call = c;
    c->stream = s;
    trpc_server_track(c->srv, c);

    if (c->m->dispatch == TRPC_DISPATCH_INLINE) {
        run_stream(c, NULL);
        return;
    }
    if (trpc_pool_submit(trpc_server_pool(c->srv), stream_job, c) != 0)
        trpc_stream_finish(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "server overloaded");
}

void trpc_stream_destroy(trpc_stream *s)
{
    drop_queue_locked(s);
    if (s->inflight != NULL)
        grpc_byte_buffer_destroy(s->inflight);
    free(s->status_msg);
    pthread_cond_destroy(&s->room);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->cb_lock);
    free(s);
}

/* ---- the owner's view ---- */

/* Absolute CLOCK_MONOTONIC time for a wait until t (t is finite). */
static struct timespec abs_monotonic(gpr_timespec t)
{
    int64_t ms = trpc_ms_until(t);
    struct timespec ts;

    if (ms < 0)
        ms = 0;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int trpc_stream_send(trpc_stream *s, const ProtobufCMessage *msg, gpr_timespec wait_until)
{
    trpc_call *c = s->call;
    size_t len = protobuf_c_message_get_packed_size(msg);
    int no_wait = gpr_time_cmp(wait_until, gpr_inf_past(wait_until.clock_type)) == 0;
    int forever = gpr_time_cmp(wait_until, gpr_inf_future(wait_until.clock_type)) == 0;
    struct timespec until;
    grpc_byte_buffer *bb;
    int rc;

    if (len > (size_t)trpc_server_max_message(c->srv)) {
        TRPC_LOG_ERROR("trpc: %s: stream message of %zu bytes over the limit", trpc_call_path(c),
                       len);
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "message too large",
                                     NULL);
        return TRPC_STREAM_CLOSED;
    }
    bb = trpc_pack(msg);
    if (!no_wait && !forever)
        until = abs_monotonic(wait_until);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->closed || s->finishing) {
            rc = TRPC_STREAM_CLOSED;
            break;
        }
        if (s->inflight == NULL && s->count == 0) {
            start_send_locked(s, bb);
            bb = NULL;
            rc = s->closed ? TRPC_STREAM_CLOSED : TRPC_STREAM_OK;
            break;
        }
        if (s->count < QUEUE_CAP) {
            s->q[(s->head + s->count) % QUEUE_CAP] = bb;
            s->count++;
            bb = NULL;
            rc = TRPC_STREAM_OK;
            break;
        }
        if (no_wait) {
            rc = TRPC_STREAM_FULL;
            break;
        }
        if (forever) {
            pthread_cond_wait(&s->room, &s->lock);
        } else if (pthread_cond_timedwait(&s->room, &s->lock, &until) == ETIMEDOUT) {
            if (s->count < QUEUE_CAP || s->closed || s->finishing)
                continue;
            rc = TRPC_STREAM_FULL;
            break;
        }
    }
    if (rc == TRPC_STREAM_FULL)
        s->want_writable = 1;
    pthread_mutex_unlock(&s->lock);
    if (bb != NULL)
        grpc_byte_buffer_destroy(bb);
    return rc;
}

size_t trpc_stream_queued(trpc_stream *s)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    n = s->count + (s->inflight != NULL ? 1 : 0);
    pthread_mutex_unlock(&s->lock);
    return n;
}

void trpc_stream_on_close(trpc_stream *s, void (*fn)(trpc_stream *s, void *arg), void *arg)
{
    pthread_mutex_lock(&s->cb_lock); /* waits for a callback running elsewhere */
    pthread_mutex_lock(&s->lock);
    s->on_close = fn;
    s->close_arg = arg;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->cb_lock);
}

void trpc_stream_on_writable(trpc_stream *s, void (*fn)(trpc_stream *s, void *arg), void *arg)
{
    pthread_mutex_lock(&s->cb_lock);
    pthread_mutex_lock(&s->lock);
    s->on_writable = fn;
    s->writable_arg = arg;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->cb_lock);
}

void trpc_stream_finish(trpc_stream *s, grpc_status_code code, const char *msg)
{
    trpc_call *c = s->call;

    if ((int)code < 0 || code > GRPC_STATUS_UNAUTHENTICATED) {
        TRPC_LOG_ERROR("trpc: %s: stream finished with bad status %d", trpc_call_path(c),
                       (int)code);
        code = GRPC_STATUS_INTERNAL;
        msg = "internal error";
    }
    pthread_mutex_lock(&s->cb_lock);
    pthread_mutex_lock(&s->lock);
    s->released = 1;
    s->finishing = 1;
    s->code = code;
    s->status_msg = strdup(msg != NULL ? msg : "");
    if (!s->closed && s->inflight == NULL && s->count == 0)
        start_status_locked(s);
    pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->cb_lock);
    trpc_call_run_defers(c);
    trpc_call_unref(c); /* the owner's reference */
}

trpc_call *trpc_stream_call(trpc_stream *s)
{
    return s->call;
}
