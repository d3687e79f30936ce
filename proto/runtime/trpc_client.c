/* trpc_client.c - the blocking client: a channel that registers method paths
 * lazily (and caches the handles), unary calls on a pluck queue of their own
 * (as C++'s sync client does), and server-streaming calls. */
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include "trpc_internal.h"

struct registered {
    struct registered *next;
    void *handle;
    char path[]; /* must outlive the channel's use of it */
};

struct trpc_channel {
    grpc_channel *ch;
    pthread_mutex_t lock;
    struct registered *regs;
};

struct trpc_client_stream {
    grpc_call *call;
    grpc_completion_queue *cq;
    const ProtobufCMessageDescriptor *output;
    grpc_byte_buffer *req;
    grpc_metadata *md;
    grpc_metadata_array initial_md;
    int start_pending; /* the first batch has not been plucked yet */
    int done;          /* the final status is in st */
    trpc_status st;
    int start_tag, recv_tag, status_tag;
};

trpc_channel *trpc_channel_new_tls(const char *target, const trpc_tls_opts *tls, trpc_status *st)
{
    trpc_channel *ch;
    grpc_channel_credentials *creds;
    grpc_arg args_buf[2];
    grpc_channel_args args;

    if (target == NULL || target[0] == '\0') {
        trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "empty target");
        return NULL;
    }
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        trpc_status_set(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    grpc_init();
    /* replies are bounded by the server's limit, not by a client default */
    args_buf[0] = trpc_int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1);
    args.num_args = 1;
    args.args = args_buf;
    if (tls != NULL) {
        creds = trpc_tls_channel_credentials(tls, st);
        if (creds == NULL)
            goto fail;
        if (tls->server_name != NULL) {
            args_buf[1].type = GRPC_ARG_STRING;
            args_buf[1].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
            args_buf[1].value.string = (char *)tls->server_name; /* copied by gRPC */
            args.num_args = 2;
        }
    } else {
        creds = grpc_insecure_credentials_create();
    }
    ch->ch = grpc_channel_create(target, creds, &args);
    grpc_channel_credentials_release(creds);
    if (ch->ch == NULL) {
        trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "cannot create a channel to %s", target);
        goto fail;
    }
    pthread_mutex_init(&ch->lock, NULL);
    return ch;
fail:
    free(ch);
    grpc_shutdown();
    return NULL;
}

trpc_channel *trpc_channel_new(const char *target)
{
    return trpc_channel_new_tls(target, NULL, NULL);
}

void trpc_channel_free(trpc_channel *ch)
{
    struct registered *r, *next;

    if (ch == NULL)
        return;
    grpc_channel_destroy(ch->ch);
    for (r = ch->regs; r != NULL; r = next) {
        next = r->next;
        free(r);
    }
    pthread_mutex_destroy(&ch->lock);
    free(ch);
    grpc_shutdown();
}

static void *method_handle(trpc_channel *ch, const char *path)
{
    struct registered *r;
    void *h = NULL;
    size_t n;

    pthread_mutex_lock(&ch->lock);
    for (r = ch->regs; r != NULL; r = r->next) {
        if (strcmp(r->path, path) == 0) {
            h = r->handle;
            goto out;
        }
    }
    n = strlen(path) + 1;
    r = malloc(sizeof(*r) + n);
    if (r == NULL)
        goto out;
    memcpy(r->path, path, n);
    r->handle = grpc_channel_register_call(ch->ch, r->path, NULL, NULL);
    r->next = ch->regs;
    ch->regs = r;
    h = r->handle;
out:
    pthread_mutex_unlock(&ch->lock);
    return h;
}

static grpc_metadata *make_metadata(const trpc_call_opts *opts)
{
    grpc_metadata *md;
    size_t i;

    if (opts == NULL || opts->n_metadata == 0)
        return NULL;
    md = calloc(opts->n_metadata, sizeof(*md));
    if (md == NULL)
        return NULL;
    for (i = 0; i < opts->n_metadata; i++) {
        md[i].key = grpc_slice_from_copied_string(opts->metadata[i].key);
        md[i].value = grpc_slice_from_copied_string(opts->metadata[i].value);
    }
    return md;
}

static void free_metadata(grpc_metadata *md, const trpc_call_opts *opts)
{
    size_t i;

    if (md == NULL)
        return;
    for (i = 0; i < opts->n_metadata; i++) {
        grpc_slice_unref(md[i].key);
        grpc_slice_unref(md[i].value);
    }
    free(md);
}

static grpc_call *new_call(trpc_channel *ch, const char *path, grpc_completion_queue *cq,
                           const trpc_call_opts *opts)
{
    void *h = method_handle(ch, path);

    if (h == NULL)
        return NULL;
    return grpc_channel_create_registered_call(ch->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, h,
                                               trpc_deadline_ms(opts ? opts->timeout_ms : 0), NULL);
}

static void set_status(trpc_status *st, grpc_status_code code, grpc_slice details)
{
    size_t n = GRPC_SLICE_LENGTH(details);

    if (st == NULL)
        return;
    if (n >= sizeof(st->msg))
        n = sizeof(st->msg) - 1;
    st->code = code;
    memcpy(st->msg, GRPC_SLICE_START_PTR(details), n);
    st->msg[n] = '\0';
}

static void destroy_pluck_queue(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
}

/* One unary exchange of req; on OK *reply is the reply buffer (caller
 * destroys). */
static grpc_status_code unary_call(trpc_channel *ch, const char *path, grpc_byte_buffer *req,
                                   grpc_byte_buffer **reply, const trpc_call_opts *opts,
                                   trpc_status *st)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_metadata *md = make_metadata(opts);
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_byte_buffer *resp = NULL;
    grpc_call *call;
    grpc_op ops[6];
    grpc_event ev;
    int tag = 0;

    *reply = NULL;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    call = new_call(ch, path, cq, opts);
    if (call == NULL) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "cannot create call");
        code = GRPC_STATUS_INTERNAL;
        goto out;
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = md != NULL ? opts->n_metadata : 0;
    ops[0].data.send_initial_metadata.metadata = md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "cannot start call");
        code = GRPC_STATUS_INTERNAL;
        goto out;
    }
    ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    (void)ev; /* the status says it all */
    set_status(st, code, details);
    if (code == GRPC_STATUS_OK) {
        if (resp == NULL) {
            code = trpc_status_set(st, GRPC_STATUS_INTERNAL, "missing response message");
        } else {
            *reply = resp;
            resp = NULL;
        }
    }
out:
    if (resp != NULL)
        grpc_byte_buffer_destroy(resp);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    free_metadata(md, opts);
    if (call != NULL)
        grpc_call_unref(call);
    destroy_pluck_queue(cq);
    return code;
}

grpc_status_code trpc_unary(trpc_channel *ch, const trpc_method_desc *m,
                            const ProtobufCMessage *req, ProtobufCMessage **resp,
                            const trpc_call_opts *opts, trpc_status *st)
{
    grpc_byte_buffer *out = trpc_pack(req), *in = NULL;
    grpc_status_code code;

    *resp = NULL;
    code = unary_call(ch, m->path, out, &in, opts, st);
    grpc_byte_buffer_destroy(out);
    if (code != GRPC_STATUS_OK)
        return code;
    *resp = trpc_unpack(m->output, in);
    grpc_byte_buffer_destroy(in);
    if (*resp == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "invalid response message");
    return code;
}

grpc_status_code trpc_unary_raw(trpc_channel *ch, const char *path, const void *req, size_t req_len,
                                void **resp, size_t *resp_len, const trpc_call_opts *opts,
                                trpc_status *st)
{
    grpc_byte_buffer *out = trpc_pack_raw(req, req_len), *in = NULL;
    grpc_status_code code;

    *resp = NULL;
    *resp_len = 0;
    code = unary_call(ch, path, out, &in, opts, st);
    grpc_byte_buffer_destroy(out);
    if (code != GRPC_STATUS_OK)
        return code;
    if (trpc_read_all(in, resp, resp_len) != 0)
        code = trpc_status_set(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    grpc_byte_buffer_destroy(in);
    return code;
}

/* ---- server-streaming client ---- */

trpc_client_stream *trpc_client_stream_start(trpc_channel *ch, const trpc_method_desc *m,
                                             const ProtobufCMessage *req,
                                             const trpc_call_opts *opts, trpc_status *st)
{
    trpc_client_stream *s = calloc(1, sizeof(*s));
    grpc_op ops[4];

    if (s == NULL) {
        trpc_status_set(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    s->output = m->output;
    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_metadata_array_init(&s->initial_md);
    s->call = new_call(ch, m->path, s->cq, opts);
    if (s->call == NULL) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "cannot create call");
        goto fail;
    }
    s->req = trpc_pack(req);
    s->md = make_metadata(opts);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = s->md != NULL ? opts->n_metadata : 0;
    ops[0].data.send_initial_metadata.metadata = s->md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    /* not waited for here: initial metadata comes with the first message */
    if (grpc_call_start_batch(s->call, ops, 4, &s->start_tag, NULL) != GRPC_CALL_OK) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "cannot start call");
        goto fail;
    }
    s->start_pending = 1;
    free_metadata(s->md, opts); /* copied into the call by start_batch */
    s->md = NULL;
    return s;
fail:
    free_metadata(s->md, opts);
    s->md = NULL;
    trpc_client_stream_free(s);
    return NULL;
}

static void pluck(trpc_client_stream *s, void *tag)
{
    grpc_completion_queue_pluck(s->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
}

static void finish_start(trpc_client_stream *s)
{
    if (!s->start_pending)
        return;
    pluck(s, &s->start_tag);
    s->start_pending = 0;
    grpc_byte_buffer_destroy(s->req);
    s->req = NULL;
}

/* Receives the final status into s->st. */
static void recv_status(trpc_client_stream *s)
{
    grpc_metadata_array trailing_md;
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op op;

    grpc_metadata_array_init(&trailing_md);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &trailing_md;
    op.data.recv_status_on_client.status = &code;
    op.data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(s->call, &op, 1, &s->status_tag, NULL) == GRPC_CALL_OK) {
        pluck(s, &s->status_tag);
        set_status(&s->st, code, details);
    } else {
        trpc_status_set(&s->st, GRPC_STATUS_INTERNAL, "cannot receive status");
    }
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&trailing_md);
    s->done = 1;
}

int trpc_client_stream_next(trpc_client_stream *s, ProtobufCMessage **msg, trpc_status *st)
{
    grpc_byte_buffer *bb = NULL;
    grpc_op op;

    *msg = NULL;
    if (!s->done) {
        finish_start(s);
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &bb;
        if (grpc_call_start_batch(s->call, &op, 1, &s->recv_tag, NULL) == GRPC_CALL_OK)
            pluck(s, &s->recv_tag);
        if (bb != NULL) {
            *msg = trpc_unpack(s->output, bb);
            grpc_byte_buffer_destroy(bb);
            if (*msg != NULL)
                return 1;
            grpc_call_cancel_with_status(s->call, GRPC_STATUS_INTERNAL, "invalid stream message",
                                         NULL);
        }
        recv_status(s);
    }
    if (st != NULL)
        *st = s->st;
    return 0;
}

void trpc_client_stream_cancel(trpc_client_stream *s)
{
    grpc_call_cancel(s->call, NULL);
}

void trpc_client_stream_free(trpc_client_stream *s)
{
    if (s == NULL)
        return;
    if (s->call != NULL) {
        if (!s->done)
            grpc_call_cancel(s->call, NULL);
        finish_start(s);
        if (!s->done)
            recv_status(s);
        grpc_call_unref(s->call);
    }
    if (s->req != NULL)
        grpc_byte_buffer_destroy(s->req);
    grpc_metadata_array_destroy(&s->initial_md);
    destroy_pluck_queue(s->cq);
    free(s);
}
