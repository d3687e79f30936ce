/* trpc_call.c - the server call: its life cycle (slot, arrival, batches,
 * reference count, cancellation) and the functions a handler uses on its
 * call (metadata, deadline, cancel callback, arena, defers, status message).
 * How unary and streaming calls are served lives in trpc_unary.c and
 * trpc_stream.c. */
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>

#include "trpc_internal.h"

struct trpc_arena_block {
    struct trpc_arena_block *next;
    size_t used, size;
    alignas(max_align_t) unsigned char data[];
};

struct trpc_defer {
    struct trpc_defer *next;
    void (*fn)(void *arg);
    void *arg;
};

#define ARENA_BLOCK 4096

trpc_call *trpc_call_slot_new(trpc_server *srv, struct trpc_cq_worker *w, int method_index)
{
    trpc_call *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->srv = srv;
    c->w = w;
    c->method_index = method_index;
    atomic_init(&c->refs, 1);
    atomic_init(&c->cancelled, 0);
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->cancel_lock, NULL);
    return c;
}

static void call_free(trpc_call *c)
{
    trpc_server *srv = c->srv;
    struct trpc_arena_block *b, *next;

    if (c->in_live)
        trpc_server_untrack(srv, c);
    if (c->stream != NULL)
        trpc_stream_destroy(c->stream);
    trpc_call_run_defers(c);
    if (c->req != NULL)
        protobuf_c_message_free_unpacked(c->req, NULL);
    if (c->payload != NULL)
        grpc_byte_buffer_destroy(c->payload);
    if (c->out != NULL)
        grpc_byte_buffer_destroy(c->out);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    for (b = c->arena; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    if (c->peer != NULL)
        gpr_free(c->peer);
    if (c->call != NULL)
        grpc_call_unref(c->call);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->cancel_lock);
    free(c);
    if (srv != NULL)
        trpc_server_call_freed(srv);
}

void trpc_call_slot_free(trpc_call *c)
{
    c->srv = NULL; /* never counted as a live call */
    call_free(c);
}

void trpc_call_ref(trpc_call *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void trpc_call_unref(trpc_call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        call_free(c);
}

int trpc_call_start(trpc_call *c, const grpc_op *ops, size_t n, trpc_tag *t,
                    void (*done)(trpc_call *, int))
{
    grpc_call_error err;

    t->done = done;
    t->call = c;
    trpc_call_ref(c);
    err = grpc_call_start_batch(c->call, ops, n, t, NULL);
    if (err != GRPC_CALL_OK) {
        TRPC_LOG_ERROR("trpc: start_batch failed (%d) on %s", (int)err, trpc_call_path(c));
        trpc_call_unref(c);
        return -1;
    }
    return 0;
}

static void on_batch_done(trpc_call *c, int success)
{
    (void)success;
    trpc_call_unref(c);
}

void trpc_call_reply_status(trpc_call *c, grpc_status_code code, const char *msg)
{
    grpc_op ops[2];
    grpc_slice details = grpc_slice_from_copied_string(msg != NULL ? msg : "");

    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = code;
    ops[1].data.send_status_from_server.status_details = &details;
    trpc_call_start(c, ops, 2, &c->t_done, on_batch_done);
    grpc_slice_unref(details); /* not retained after start_batch */
    trpc_call_unref(c);        /* the owner's reference */
}

/* RECV_CLOSE_ON_SERVER: the call is over; cancelled=1 means the client
 * cancelled, the deadline passed, the connection broke or the server
 * cancelled it (shutdown). */
static void on_close(trpc_call *c, int success)
{
    if (!success || c->close_cancelled) {
        atomic_store(&c->cancelled, 1);
        pthread_mutex_lock(&c->cancel_lock);
        if (c->handler_running && c->cancel_fn != NULL) {
            void (*fn)(void *) = c->cancel_fn;

            c->cancel_fn = NULL;
            /* under the lock: trpc_call_on_cancel(call, NULL, NULL) waits
             * for it, so arg stays alive while fn runs */
            fn(c->cancel_arg);
        }
        pthread_mutex_unlock(&c->cancel_lock);
        if (c->stream != NULL)
            trpc_stream_call_closed(c->stream);
    }
    trpc_call_unref(c);
}

void trpc_call_arrived(trpc_call *c)
{
    grpc_op op;
    const trpc_method *m = c->m;
    const char *why;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->close_cancelled;
    trpc_call_start(c, &op, 1, &c->t_close, on_close);

    if (m == NULL) {
        trpc_call_reply_status(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
        return;
    }
    if (m->dispatch == TRPC_DISPATCH_REFLECTION) {
        trpc_reflection_serve(c);
        return;
    }
    if (m->desc->kind != TRPC_UNARY && m->desc->kind != TRPC_SERVER_STREAMING) {
        trpc_call_reply_status(c, GRPC_STATUS_UNIMPLEMENTED, "method not implemented");
        return;
    }
    if (c->payload == NULL) {
        trpc_call_reply_status(c, GRPC_STATUS_INVALID_ARGUMENT, "missing request message");
        return;
    }
    c->req = trpc_unpack_request(m->desc->input, c->payload, &why);
    grpc_byte_buffer_destroy(c->payload);
    c->payload = NULL;
    if (c->req == NULL) {
        trpc_call_reply_status(c, GRPC_STATUS_INVALID_ARGUMENT, why);
        return;
    }
    if (m->fn == NULL) {
        trpc_call_reply_status(c, GRPC_STATUS_UNIMPLEMENTED, "method not implemented");
        return;
    }
    if (m->desc->kind == TRPC_UNARY)
        trpc_unary_serve(c);
    else
        trpc_stream_serve(c);
}

void trpc_call_handler_enter(trpc_call *c, void *worker_data)
{
    c->worker_data = worker_data;
    pthread_mutex_lock(&c->cancel_lock);
    c->handler_running = 1;
    pthread_mutex_unlock(&c->cancel_lock);
}

void trpc_call_handler_leave(trpc_call *c)
{
    pthread_mutex_lock(&c->cancel_lock);
    c->handler_running = 0;
    c->cancel_fn = NULL;
    c->cancel_arg = NULL;
    pthread_mutex_unlock(&c->cancel_lock);
    c->worker_data = NULL;
}

void trpc_call_run_defers(trpc_call *c)
{
    struct trpc_defer *d;

    for (;;) {
        pthread_mutex_lock(&c->lock);
        d = c->defers;
        if (d != NULL)
            c->defers = d->next;
        pthread_mutex_unlock(&c->lock);
        if (d == NULL)
            break;
        d->fn(d->arg);
        free(d);
    }
}

/* ---- the handler's view ---- */

const char *trpc_call_path(const trpc_call *call)
{
    if (call->m != NULL)
        return call->m->desc->path;
    return "(unregistered)";
}

const char *trpc_call_metadata(const trpc_call *call, const char *key, size_t *len)
{
    size_t i;

    for (i = 0; i < call->md.count; i++) {
        const grpc_metadata *md = &call->md.metadata[i];

        if (grpc_slice_str_cmp(md->key, key) == 0) {
            *len = GRPC_SLICE_LENGTH(md->value);
            return (const char *)GRPC_SLICE_START_PTR(md->value);
        }
    }
    *len = 0;
    return NULL;
}

int64_t trpc_call_ms_left(const trpc_call *call)
{
    return trpc_ms_until(call->deadline);
}

int trpc_call_is_cancelled(const trpc_call *call)
{
    return atomic_load(&((trpc_call *)call)->cancelled) || trpc_call_ms_left(call) <= 0;
}

void trpc_call_on_cancel(trpc_call *call, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&call->cancel_lock);
    call->cancel_fn = fn;
    call->cancel_arg = fn != NULL ? arg : NULL;
    pthread_mutex_unlock(&call->cancel_lock);
}

void *trpc_call_worker_data(const trpc_call *call)
{
    return call->worker_data;
}

void *trpc_call_service_data(const trpc_call *call)
{
    return call->m != NULL ? call->m->service_data : NULL;
}

const char *trpc_call_peer(const trpc_call *call)
{
    trpc_call *c = (trpc_call *)call;
    const char *peer;

    pthread_mutex_lock(&c->lock);
    if (c->peer == NULL)
        c->peer = grpc_call_get_peer(c->call);
    peer = c->peer;
    pthread_mutex_unlock(&c->lock);
    return peer != NULL ? peer : "";
}

void *trpc_call_alloc(trpc_call *call, size_t size)
{
    struct trpc_arena_block *b;
    size_t need = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    void *p;

    if (need == 0)
        need = alignof(max_align_t);
    pthread_mutex_lock(&call->lock);
    b = call->arena;
    if (b == NULL || b->size - b->used < need) {
        size_t bsize = need > ARENA_BLOCK ? need : ARENA_BLOCK;

        b = calloc(1, sizeof(*b) + bsize);
        if (b == NULL) {
            TRPC_LOG_ERROR("trpc: out of memory (%zu bytes) in %s", size, trpc_call_path(call));
            abort();
        }
        b->size = bsize;
        if (bsize > ARENA_BLOCK && call->arena != NULL) {
            /* a big one-off: keep the current block for small ones */
            b->used = bsize;
            b->next = call->arena->next;
            call->arena->next = b;
            pthread_mutex_unlock(&call->lock);
            return b->data;
        }
        b->next = call->arena;
        call->arena = b;
    }
    p = b->data + b->used;
    b->used += need;
    pthread_mutex_unlock(&call->lock);
    return p;
}

char *trpc_call_strdup(trpc_call *call, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = trpc_call_alloc(call, n);

    memcpy(p, s, n);
    return p;
}

ProtobufCMessage *trpc_call_new_message(trpc_call *call, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = trpc_call_alloc(call, d->sizeof_message);

    protobuf_c_message_init(d, m);
    return m;
}

void trpc_call_defer(trpc_call *call, void (*fn)(void *arg), void *arg)
{
    struct trpc_defer *d = malloc(sizeof(*d));

    if (d == NULL) {
        TRPC_LOG_ERROR("trpc: out of memory in %s", trpc_call_path(call));
        abort();
    }
    d->fn = fn;
    d->arg = arg;
    pthread_mutex_lock(&call->lock);
    d->next = call->defers;
    call->defers = d;
    pthread_mutex_unlock(&call->lock);
}

grpc_status_code trpc_call_fail(trpc_call *call, grpc_status_code code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(call->fail_msg, sizeof(call->fail_msg), fmt, ap);
    va_end(ap);
    return code;
}

grpc_status_code trpc_call_fail_status(trpc_call *call, const trpc_status *st)
{
    snprintf(call->fail_msg, sizeof(call->fail_msg), "%s", st->msg);
    return st->code;
}
