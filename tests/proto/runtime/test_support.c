/* test_support.c - the test service's handlers and the per-test server. */
#include "test_support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "google/protobuf/timestamp.pb-c.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_counters[TS_N_COUNTERS];
static int g_gate_open;

int64_t ts_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ts_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void bump(enum ts_counter c)
{
    pthread_mutex_lock(&g_lock);
    g_counters[c]++;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

void ts_reset(void)
{
    pthread_mutex_lock(&g_lock);
    memset(g_counters, 0, sizeof(g_counters));
    g_gate_open = 0;
    pthread_mutex_unlock(&g_lock);
}

int ts_get(enum ts_counter c)
{
    int v;

    pthread_mutex_lock(&g_lock);
    v = g_counters[c];
    pthread_mutex_unlock(&g_lock);
    return v;
}

int ts_wait(enum ts_counter c, int want, int ms)
{
    int64_t until = ts_now_ms() + ms;
    int v;

    pthread_mutex_lock(&g_lock);
    while (g_counters[c] < want && ts_now_ms() < until) {
        pthread_mutex_unlock(&g_lock);
        ts_sleep_ms(5);
        pthread_mutex_lock(&g_lock);
    }
    v = g_counters[c];
    pthread_mutex_unlock(&g_lock);
    return v;
}

void ts_max(enum ts_counter c, int v)
{
    pthread_mutex_lock(&g_lock);
    if (g_counters[c] < v)
        g_counters[c] = v;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

void ts_open_gate(void)
{
    pthread_mutex_lock(&g_lock);
    g_gate_open = 1;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

static void wait_gate(void)
{
    pthread_mutex_lock(&g_lock);
    g_counters[TS_BLOCKED]++;
    pthread_cond_broadcast(&g_cond);
    while (!g_gate_open)
        pthread_cond_wait(&g_cond, &g_lock);
    pthread_mutex_unlock(&g_lock);
}

/* ---- Echo ---- */

static void on_defer(void *arg)
{
    (void)arg;
    bump(TS_DEFERS);
}

static void on_cancel(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
    bump(TS_CANCEL_CB);
}

static grpc_status_code echo(trpc_call *call, const Trpctest__V1__EchoRequest *req,
                             Trpctest__V1__EchoResponse *resp)
{
    Google__Protobuf__Timestamp *at;
    const char *md;
    size_t len;

    bump(TS_ECHO_CALLS);
    trpc_call_defer(call, on_defer, NULL);
    if (req->sleep_ms > 0) {
        /* sleep until the time is up or on_cancel says the call is over */
        int64_t until = ts_now_ms() + req->sleep_ms;
        atomic_int fired;

        atomic_init(&fired, 0);
        trpc_call_on_cancel(call, on_cancel, &fired);
        while (ts_now_ms() < until && !atomic_load(&fired))
            ts_sleep_ms(5);
        trpc_call_on_cancel(call, NULL, NULL); /* before fired goes out of scope */
        if (trpc_call_is_cancelled(call)) {
            bump(TS_ECHO_CANCELLED);
            return trpc_call_fail(call, GRPC_STATUS_CANCELLED, "cancelled while sleeping");
        }
    }
    switch (req->mode) {
    case TRPCTEST__V1__MODE__MODE_FAIL:
        return trpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "told to fail: %s", req->text);
    case TRPCTEST__V1__MODE__MODE_BLOCK:
        wait_gate();
        break;
    case TRPCTEST__V1__MODE__MODE_WORKER: {
        const char *w = trpc_call_worker_data(call);

        resp->worker = trpc_call_strdup(call, w != NULL ? w : "");
        break;
    }
    case TRPCTEST__V1__MODE__MODE_METADATA:
        md = trpc_call_metadata(call, "x-test", &len);
        if (md != NULL) {
            resp->metadata = trpc_call_alloc(call, len + 1);
            memcpy(resp->metadata, md, len);
        }
        resp->peer = trpc_call_strdup(call, trpc_call_peer(call));
        break;
    default:
        break;
    }
    resp->text = req->text; /* borrowed: the request outlives the packing */
    if (req->reply_bytes > 0) {
        resp->blob.len = (size_t)req->reply_bytes;
        resp->blob.data = trpc_call_alloc(call, resp->blob.len);
        memset(resp->blob.data, 'x', resp->blob.len);
    } else {
        resp->blob = req->blob;
    }
    at = (Google__Protobuf__Timestamp *)trpc_call_new_message(
        call, &google__protobuf__timestamp__descriptor);
    at->seconds = 42;
    resp->at = at;
    return GRPC_STATUS_OK;
}

/* ---- Count ---- */

struct detached {
    trpc_stream *s;
    int count, interval_ms, forever, nowait;
    uint8_t *pad;
    size_t pad_len;
    pthread_mutex_t lock; /* nowait: woken by on_writable / on_close */
    pthread_cond_t cond;
    int writable, closed;
};

static void on_stream_close(trpc_stream *s, void *arg)
{
    struct detached *d = arg;

    (void)s;
    bump(TS_ON_CLOSE);
    if (d != NULL) {
        pthread_mutex_lock(&d->lock);
        d->closed = 1;
        pthread_cond_signal(&d->cond);
        pthread_mutex_unlock(&d->lock);
    }
}

static void on_stream_writable(trpc_stream *s, void *arg)
{
    struct detached *d = arg;

    (void)s;
    bump(TS_WRITABLE);
    pthread_mutex_lock(&d->lock);
    d->writable = 1;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static gpr_timespec in_ms(int ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* Sends without ever blocking in trpc_stream_send: on FULL, waits for
 * on_writable (or on_close) and tries again. */
static int send_nowait(struct detached *d, const ProtobufCMessage *msg)
{
    int rc;

    for (;;) {
        rc = trpc_stream_send(d->s, msg, gpr_inf_past(GPR_CLOCK_MONOTONIC));
        ts_max(TS_MAX_QUEUED, (int)trpc_stream_queued(d->s));
        if (rc != TRPC_STREAM_FULL)
            return rc;
        bump(TS_FULL);
        pthread_mutex_lock(&d->lock);
        while (!d->writable && !d->closed)
            pthread_cond_wait(&d->cond, &d->lock);
        d->writable = 0;
        pthread_mutex_unlock(&d->lock);
    }
}

static void *detached_main(void *arg)
{
    struct detached *d = arg;
    Trpctest__V1__CountResponse msg = TRPCTEST__V1__COUNT_RESPONSE__INIT;
    grpc_status_code code = GRPC_STATUS_OK;
    int i, rc;

    msg.pad.data = d->pad;
    msg.pad.len = d->pad_len;
    for (i = 0; d->forever || i < d->count; i++) {
        msg.n = i;
        rc = d->nowait ? send_nowait(d, &msg.base) : trpc_stream_send(d->s, &msg.base, in_ms(5000));
        if (rc != TRPC_STREAM_OK) {
            bump(TS_STREAM_CLOSED);
            if (trpc_call_is_cancelled(trpc_stream_call(d->s)))
                bump(TS_STREAM_IS_CANCELLED);
            code = GRPC_STATUS_CANCELLED;
            break;
        }
        if (d->interval_ms > 0)
            ts_sleep_ms(d->interval_ms);
    }
    trpc_stream_finish(d->s, code, code == GRPC_STATUS_OK ? "" : "closed");
    /* no callback runs after finish: d may go */
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d->pad);
    free(d);
    bump(TS_DETACHED_DONE);
    return NULL;
}

static grpc_status_code count(trpc_call *call, const Trpctest__V1__CountRequest *req,
                              trpc_stream *out)
{
    Trpctest__V1__CountResponse msg = TRPCTEST__V1__COUNT_RESPONSE__INIT;
    struct detached *d;
    pthread_t t;
    int i;

    bump(TS_COUNT_CALLS);
    if (!req->detach) {
        trpc_stream_on_close(out, on_stream_close, NULL);
        msg.pad.len = req->pad_bytes > 0 ? (size_t)req->pad_bytes : 0;
        msg.pad.data = msg.pad.len > 0 ? trpc_call_alloc(call, msg.pad.len) : NULL;
        for (i = 0; req->forever || i < req->count; i++) {
            msg.n = i;
            if (trpc_stream_send(out, &msg.base, in_ms(5000)) != TRPC_STREAM_OK) {
                bump(TS_STREAM_CLOSED);
                if (trpc_call_is_cancelled(call))
                    bump(TS_STREAM_IS_CANCELLED);
                return trpc_call_fail(call, GRPC_STATUS_CANCELLED, "closed");
            }
            ts_max(TS_MAX_QUEUED, (int)trpc_stream_queued(out));
            if (req->interval_ms > 0)
                ts_sleep_ms(req->interval_ms);
        }
        return GRPC_STATUS_OK;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return trpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    d->s = out;
    d->count = req->count;
    d->interval_ms = req->interval_ms;
    d->forever = req->forever;
    d->nowait = req->nowait;
    d->pad_len = req->pad_bytes > 0 ? (size_t)req->pad_bytes : 0;
    d->pad = calloc(1, d->pad_len + 1);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    trpc_stream_on_close(out, on_stream_close, d);
    trpc_stream_on_writable(out, on_stream_writable, d);
    if (d->pad == NULL || pthread_create(&t, NULL, detached_main, d) != 0) {
        /* not detached after all: the runtime finishes the stream */
        trpc_stream_on_close(out, NULL, NULL);
        trpc_stream_on_writable(out, NULL, NULL);
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->lock);
        free(d->pad);
        free(d);
        return trpc_call_fail(call, GRPC_STATUS_INTERNAL, "no thread");
    }
    pthread_detach(t);
    if (req->count == 0 && !req->forever)
        ts_sleep_ms(50); /* the owner finishes before the handler returns */
    return TRPC_STATUS_DETACHED;
}

static const Trpctest__V1__TestService_TrpcHandlers handlers = {
    .echo = echo, .count = count,
    /* unhandled: NULL -> UNIMPLEMENTED */
};

/* ---- the server ---- */

static void *worker_init(void *arg, int index)
{
    char *s = malloc(32);

    (void)arg;
    if (s != NULL)
        snprintf(s, 32, "worker-%d", index);
    bump(TS_WORKER_INIT);
    return s;
}

static void worker_fini(void *data)
{
    free(data);
    bump(TS_WORKER_FINI);
}

trpc_server_opts ts_default_opts(void)
{
    trpc_server_opts o;

    memset(&o, 0, sizeof(o));
    o.listen_addr = "127.0.0.1:0";
    o.cq_threads = 2;
    o.pool_threads = 4;
    o.shutdown_grace_ms = 2000;
    o.worker_init = worker_init;
    o.worker_fini = worker_fini;
    return o;
}

int ts_start(ts_server *t, const trpc_server_opts *opts)
{
    trpc_server_opts o = opts != NULL ? *opts : ts_default_opts();

    memset(t, 0, sizeof(*t));
    ts_reset();
    t->srv = trpc_server_new(&o);
    if (t->srv == NULL)
        return -1;
    if (trpctest__v1__test_service__trpc_register(t->srv, &handlers, NULL) != 0)
        goto fail;
    t->port = trpc_server_start(t->srv);
    if (t->port <= 0)
        goto fail;
    snprintf(t->target, sizeof(t->target), "127.0.0.1:%d", t->port);
    t->ch = trpc_channel_new(t->target);
    if (t->ch == NULL)
        goto fail;
    return 0;
fail:
    ts_stop(t);
    return -1;
}

void ts_stop(ts_server *t)
{
    trpc_channel_free(t->ch);
    t->ch = NULL;
    trpc_server_shutdown(t->srv);
    trpc_server_free(t->srv);
    t->srv = NULL;
}
