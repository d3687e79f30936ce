/* trpc_internal.h - declarations shared by the trpc runtime's modules (not
 * for users of the runtime: they include trpc.h only).
 *
 * Threading in one paragraph: every server call belongs to the CQ thread
 * whose completion queue accepted it; all its batch completions come back
 * there. Handlers run on pool threads (built-in services run inline on the CQ
 * thread: they never block). A call is reference counted: one reference per
 * batch in flight plus one for its owner (the CQ thread until it hands the
 * call to the pool, then the handler, then the final batch; for a stream the
 * handler or the detached owner until trpc_stream_finish). Whoever drops the
 * last reference frees the call.
 */
#ifndef PROTO_RUNTIME_TRPC_INTERNAL_H
#define PROTO_RUNTIME_TRPC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>

#include "trpc.h"

/* Standard services, generated into trpc_std by protoc-gen-trpc. */
extern const trpc_service_desc grpc__health__v1__health__trpc_service;
extern const trpc_service_desc grpc__reflection__v1alpha__server_reflection__trpc_service;
extern const trpc_service_desc grpc__reflection__v1__server_reflection__trpc_service;

#define TRPC_LOG_ERROR(...) gpr_log(__FILE__, __LINE__, GPR_LOG_SEVERITY_ERROR, __VA_ARGS__)
#define TRPC_LOG_INFO(...)  gpr_log(__FILE__, __LINE__, GPR_LOG_SEVERITY_INFO, __VA_ARGS__)

/* ---- trpc_pack.c: protobuf-c <-> grpc_byte_buffer, time ---- */

/* A byte buffer holding msg serialized. Never NULL (gRPC aborts on OOM). */
grpc_byte_buffer *trpc_pack(const ProtobufCMessage *msg);
/* A byte buffer holding a copy of data[0..len). */
grpc_byte_buffer *trpc_pack_raw(const void *data, size_t len);
/* The message in bb (NULL bb or a parse error: NULL). Free with
 * protobuf_c_message_free_unpacked(m, NULL). bb stays the caller's. */
ProtobufCMessage *trpc_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb);
/* trpc_unpack for a request: also refuses a string field (at any depth)
 * holding a NUL byte. NULL with *why set to the client-safe reason. */
ProtobufCMessage *trpc_unpack_request(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb,
                                      const char **why);
/* Contiguous malloc'd copy of bb (decompressed) in *data and *len; 0, or -1 on
 * OOM. A zero-length buffer gives a non-NULL *data. */
int trpc_read_all(grpc_byte_buffer *bb, void **data, size_t *len);
/* Monotonic deadline ms from now; ms <= 0 gives gpr_inf_future. */
gpr_timespec trpc_deadline_ms(int64_t ms);
/* Milliseconds from now until t (any clock); INT64_MAX for infinity. */
int64_t trpc_ms_until(gpr_timespec t);

/* ---- trpc_pool.c: the bounded blocking pool ---- */

typedef struct trpc_pool trpc_pool;
typedef void (*trpc_pool_fn)(void *arg, void *worker_data);

/* Starts threads workers, each calling init(init_arg, index) first (both may
 * be NULL); returns once every init has run. queue_cap bounds the jobs that
 * wait for a free worker. NULL on failure. */
trpc_pool *trpc_pool_new(int threads, int queue_cap, void *(*init)(void *arg, int index),
                         void (*fini)(void *data), void *init_arg);
/* Queues fn(arg, worker_data) for a worker. 0, or -1 when the queue is full
 * or the pool is stopping (fn is then not called). Thread-safe. */
int trpc_pool_submit(trpc_pool *p, trpc_pool_fn fn, void *arg);
/* Runs what is queued, stops the workers (fini on each), joins, frees.
 * NULL is a no-op. */
void trpc_pool_free(trpc_pool *p);

/* An integer channel argument. */
grpc_arg trpc_int_arg(const char *key, int value);

/* ---- calls ---- */

/* A completion-queue tag: the CQ thread calls done(call, success). */
typedef struct trpc_tag {
    void (*done)(trpc_call *call, int success);
    trpc_call *call;
} trpc_tag;

typedef enum trpc_dispatch {
    TRPC_DISPATCH_POOL = 0,   /* handler on a pool thread */
    TRPC_DISPATCH_INLINE = 1, /* built-in handler on the CQ thread */
    TRPC_DISPATCH_REFLECTION = 2,
} trpc_dispatch;

/* One registered method. */
typedef struct trpc_method {
    const trpc_method_desc *desc;
    void (*fn)(void); /* the handler, cast per kind; NULL answers UNIMPLEMENTED */
    void *service_data;
    trpc_dispatch dispatch;
    void *handle; /* grpc_server_register_method */
} trpc_method;

typedef grpc_status_code (*trpc_unary_fn)(trpc_call *call, const void *req, void *resp);
typedef grpc_status_code (*trpc_server_stream_fn)(trpc_call *call, const void *req,
                                                  trpc_stream *out);

struct trpc_cq_worker;
struct trpc_arena_block;
struct trpc_defer;

struct trpc_call {
    trpc_server *srv;
    struct trpc_cq_worker *w;
    const trpc_method *m; /* NULL: unregistered method */
    int method_index;     /* index in srv->methods, -1 if unregistered */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details; /* unregistered calls only */
    grpc_byte_buffer *payload; /* received message */
    grpc_byte_buffer *out;     /* message being sent (unary, reflection) */
    ProtobufCMessage *req;     /* unpacked request */
    atomic_int refs;
    atomic_int cancelled;
    int close_cancelled; /* written by RECV_CLOSE_ON_SERVER */
    int md_sent;         /* reflection: initial metadata sent */

    pthread_mutex_t lock;        /* arena, defers, peer */
    pthread_mutex_t cancel_lock; /* cancel_fn, handler_running; held while fn runs */
    void (*cancel_fn)(void *arg);
    void *cancel_arg;
    int handler_running;
    void *worker_data;
    char *peer;
    struct trpc_arena_block *arena;
    struct trpc_defer *defers;
    char fail_msg[256];

    trpc_stream *stream; /* server streaming */
    trpc_call *live_prev, *live_next;
    int in_live;

    trpc_tag t_new, t_close, t_done, t_aux;
};

/* A new slot for a request of method_index (-1: unregistered). */
trpc_call *trpc_call_slot_new(trpc_server *srv, struct trpc_cq_worker *w, int method_index);
/* Frees a slot that never got a call. */
void trpc_call_slot_free(trpc_call *c);
/* CQ thread: a call arrived in slot c; starts serving it. */
void trpc_call_arrived(trpc_call *c);
void trpc_call_ref(trpc_call *c);
/* Drops a reference; the last one frees the call. */
void trpc_call_unref(trpc_call *c);
/* Starts batch ops[0..n) with tag t, holding a new reference for it.
 * Returns 0, or -1 (reference dropped again, logged). */
int trpc_call_start(trpc_call *c, const grpc_op *ops, size_t n, trpc_tag *t,
                    void (*done)(trpc_call *, int));
/* Sends [initial metadata +] status with the owner's reference; the call is
 * the CQ thread's no more. */
void trpc_call_reply_status(trpc_call *c, grpc_status_code code, const char *msg);
/* Runs and clears the deferred functions. */
void trpc_call_run_defers(trpc_call *c);
/* Handler bookkeeping around the user's function (on_cancel). */
void trpc_call_handler_enter(trpc_call *c, void *worker_data);
void trpc_call_handler_leave(trpc_call *c);

/* ---- trpc_unary.c ---- */

/* CQ thread: serve a unary call (request unpacked, handler set). */
void trpc_unary_serve(trpc_call *c);

/* ---- trpc_stream.c ---- */

/* CQ thread: serve a server-streaming call (request unpacked, handler set). */
void trpc_stream_serve(trpc_call *c);
/* CQ thread: the call was cancelled (RECV_CLOSE with cancelled=1). */
void trpc_stream_call_closed(trpc_stream *s);
/* Frees the stream's own memory (the call is being freed). */
void trpc_stream_destroy(trpc_stream *s);

/* ---- trpc_server.c ---- */

/* Tracks a long-lived call (stream, reflection) so shutdown can cancel it;
 * cancels it at once if the server is already shutting down. */
void trpc_server_track(trpc_server *srv, trpc_call *c);
void trpc_server_untrack(trpc_server *srv, trpc_call *c);
trpc_pool *trpc_server_pool(trpc_server *srv);
int trpc_server_max_message(const trpc_server *srv);
/* Called when a call is freed (live-call accounting). */
void trpc_server_call_freed(trpc_server *srv);

/* ---- trpc_tls.c ---- */

/* Reads the PEM file at path into *out (malloc'd, NUL-terminated; free with
 * trpc_tls_pem_free). Returns 0, or -1 with st set (INVALID_ARGUMENT: cannot
 * be read, no "-----BEGIN " block, NUL bytes, over 4 MiB). */
int trpc_tls_pem_read(const char *path, char **out, trpc_status *st);
/* Wipes and frees a string from trpc_tls_pem_read. NULL is a no-op. */
void trpc_tls_pem_free(char *pem);
/* Server credentials for one certificate chain + key; client_ca_pem NULL:
 * no client certificate requested, else required and verified against it.
 * The PEM strings are copied. */
grpc_server_credentials *trpc_tls_server_credentials(const char *cert_pem, const char *key_pem,
                                                     const char *client_ca_pem);
/* Channel credentials for tls (files read, copied, wiped). NULL with st set
 * on a bad file or a certificate without key (or the reverse). */
grpc_channel_credentials *trpc_tls_channel_credentials(const trpc_tls_opts *tls, trpc_status *st);

/* ---- trpc_health.c ---- */

typedef struct trpc_health trpc_health;

trpc_health *trpc_health_new(void);
void trpc_health_free(trpc_health *h);
/* status: 1 SERVING, 2 NOT_SERVING (grpc.health.v1 values). Thread-safe. */
void trpc_health_set(trpc_health *h, const char *service, int status);
/* Handlers bound to Check and Watch (service_data = the trpc_health). */
grpc_status_code trpc_health_check(trpc_call *call, const void *req, void *resp);
grpc_status_code trpc_health_watch(trpc_call *call, const void *req, trpc_stream *out);

/* ---- trpc_reflection.c ---- */

typedef struct trpc_reflection trpc_reflection;

/* Indexes the files of svcs[0..n) (and their deps). NULL on OOM. */
trpc_reflection *trpc_reflection_new(const trpc_service_desc *const *svcs, size_t n);
void trpc_reflection_free(trpc_reflection *r);
/* CQ thread: serve a ServerReflectionInfo call (service_data = the index). */
void trpc_reflection_serve(trpc_call *c);
/* One answer (exposed for tests): serialized ServerReflectionRequest in,
 * serialized ServerReflectionResponse out (malloc'd). 0, or -1 when the
 * request does not parse. */
int trpc_reflection_answer(const trpc_reflection *r, const uint8_t *req, size_t req_len,
                           uint8_t **resp, size_t *resp_len);

#endif /* PROTO_RUNTIME_TRPC_INTERNAL_H */
