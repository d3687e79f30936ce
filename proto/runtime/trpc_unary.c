/* trpc_unary.c - serving a unary call: the CQ thread hands the unpacked
 * request to the pool (a full pool queue answers RESOURCE_EXHAUSTED); the
 * pool thread runs the handler, packs the reply, runs the defers and starts
 * the final batch, whose completion returns to the owning CQ thread. */
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>

#include "trpc_internal.h"

static void on_final(trpc_call *c, int success)
{
    (void)success;
    trpc_call_unref(c);
}

static void run_unary(trpc_call *c, void *worker_data)
{
    const trpc_method *m = c->m;
    ProtobufCMessage *resp;
    grpc_status_code code;
    const char *msg = "";
    grpc_slice details;
    grpc_op ops[3];
    size_t n = 0;

    if (trpc_call_is_cancelled(c)) {
        /* the client is gone or out of time: do not start the work */
        if (trpc_call_ms_left(c) <= 0)
            trpc_call_reply_status(c, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
        else
            trpc_call_reply_status(c, GRPC_STATUS_CANCELLED, "cancelled");
        return;
    }
    resp = trpc_call_new_message(c, m->desc->output);
    trpc_call_handler_enter(c, worker_data);
    code = ((trpc_unary_fn)m->fn)(c, c->req, resp);
    trpc_call_handler_leave(c);

    if (code == GRPC_STATUS_OK) {
        size_t len = protobuf_c_message_get_packed_size(resp);

        if (len > (size_t)trpc_server_max_message(c->srv)) {
            TRPC_LOG_ERROR("trpc: %s: response of %zu bytes over the limit", trpc_call_path(c),
                           len);
            code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            msg = "response too large";
        } else {
            c->out = trpc_pack(resp);
        }
    } else if ((int)code < 0 || code > GRPC_STATUS_UNAUTHENTICATED) {
        TRPC_LOG_ERROR("trpc: %s: handler returned bad status %d", trpc_call_path(c), (int)code);
        code = GRPC_STATUS_INTERNAL;
        msg = "internal error";
    } else {
        msg = c->fail_msg;
    }
    /* the reply is serialized: what it borrowed may go */
    trpc_call_run_defers(c);
    protobuf_c_message_free_unpacked(c->req, NULL);
    c->req = NULL;

    details = grpc_slice_from_copied_string(msg);
    memset(ops, 0, sizeof(ops));
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (c->out != NULL) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->out;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &details;
    trpc_call_start(c, ops, n, &c->t_done, on_final);
    grpc_slice_unref(details);
    trpc_call_unref(c); /* the owner's reference: the batch holds its own */
}

static void unary_job(void *arg, void *worker_data)
{
    run_unary(arg, worker_data);
}

void trpc_unary_serve(trpc_call *c)
{
    if (c->m->dispatch == TRPC_DISPATCH_INLINE) {
        run_unary(c, NULL);
        return;
    }
    if (trpc_pool_submit(trpc_server_pool(c->srv), unary_job, c) != 0)
        trpc_call_reply_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "server overloaded");
}
