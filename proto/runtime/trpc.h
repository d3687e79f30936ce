/* trpc.h - the small gRPC runtime that tally's generated stubs call.
 *
 * Built on gRPC C core and protobuf-c. A server has one completion queue per
 * worker thread (calls stay on the thread that accepted them) and a bounded
 * blocking pool: every handler runs on a pool thread, never on a CQ thread,
 * so a handler may block (libpq). Each pool thread owns a resource made by
 * opts.worker_init (a PGconn, later), reachable through
 * trpc_call_worker_data().
 *
 * The stub generator (proto/gen/protoc-gen-trpc.c) emits, per .proto file
 * "pkg/v1/x.proto", a pair "pkg/v1/x.trpc.[ch]" holding, for each service
 * (names follow protoc-c's rules; example: package tally.v1, service
 * CommandService, method OpenAccount):
 *
 *   #define TALLY__V1__COMMAND_SERVICE__NAME "tally.v1.CommandService"
 *   #define TALLY__V1__COMMAND_SERVICE__OPEN_ACCOUNT__PATH
 *           "/tally.v1.CommandService/OpenAccount"
 *   typedef struct Tally__V1__CommandService_TrpcHandlers {
 *       grpc_status_code (*open_account)(trpc_call *call,
 *           const Tally__V1__OpenAccountRequest *req,
 *           Tally__V1__OpenAccountResponse *resp);          unary
 *       grpc_status_code (*subscribe)(trpc_call *call,
 *           const Tally__V1__SubscribeRequest *req,
 *           trpc_stream *out);                               server streaming
 *   } Tally__V1__CommandService_TrpcHandlers;  (client-streaming and bidi
 *       methods get no member; the server answers them UNIMPLEMENTED)
 *   extern const trpc_service_desc tally__v1__command_service__trpc_service;
 *   int tally__v1__command_service__trpc_register(trpc_server *srv,
 *       const Tally__V1__CommandService_TrpcHandlers *h, void *service_data);
 *   grpc_status_code tally__v1__command_service__trpc_open_account(
 *       trpc_channel *ch, const Tally__V1__OpenAccountRequest *req,
 *       Tally__V1__OpenAccountResponse **resp, const trpc_call_opts *opts,
 *       trpc_status *st);                                    unary client
 *   trpc_client_stream *tally__v1__subscription_service__trpc_subscribe(
 *       trpc_channel *ch, const Tally__V1__SubscribeRequest *req,
 *       const trpc_call_opts *opts, trpc_status *st);
 *   static inline int tally__v1__subscription_service__trpc_subscribe_next(
 *       trpc_client_stream *s, Tally__V1__SubscribeResponse **msg,
 *       trpc_status *st);                                    streaming client
 *
 * and once per file:
 *
 *   extern const trpc_file_desc tally_v1_command_proto__trpc_file;
 *
 * (the file's path with every character outside [A-Za-z0-9] turned into '_').
 * Its deps list every transitive import, each with its serialized
 * FileDescriptorProto, so reflection needs nothing else.
 */
#ifndef PROTO_RUNTIME_TRPC_H
#define PROTO_RUNTIME_TRPC_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <protobuf-c/protobuf-c.h>

/* ---- descriptors (emitted by the stub generator, read by the runtime) ---- */

typedef enum trpc_method_kind {
    TRPC_UNARY = 0,
    TRPC_SERVER_STREAMING = 1,
    TRPC_CLIENT_STREAMING = 2,
    TRPC_BIDI_STREAMING = 3,
} trpc_method_kind;

/* handler_offset of a method that has no member in the handler table */
#define TRPC_NO_HANDLER ((size_t)-1)

typedef struct trpc_file_desc {
    const char *name;    /* "tally/v1/command.proto" */
    const uint8_t *data; /* serialized FileDescriptorProto (no source_code_info) */
    size_t len;
    size_t n_deps;                            /* every transitive import */
    const struct trpc_file_desc *const *deps; /* each with n_deps == 0 */
} trpc_file_desc;

typedef struct trpc_method_desc {
    const char *name; /* "OpenAccount" */
    const char *path; /* "/tally.v1.CommandService/OpenAccount" */
    trpc_method_kind kind;
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
    size_t handler_offset; /* offsetof(handler table, member) or TRPC_NO_HANDLER */
} trpc_method_desc;

typedef struct trpc_service_desc {
    const char *full_name; /* "tally.v1.CommandService" */
    size_t n_methods;
    const trpc_method_desc *methods;
    const trpc_file_desc *file; /* the file that defines the service */
} trpc_service_desc;

/* ---- status ---- */

/* A gRPC status with a short client-safe message (lower case, no SQL, no
 * secrets). Used by handlers, clients and the service library alike. */
typedef struct trpc_status {
    grpc_status_code code;
    char msg[256];
} trpc_status;

/* Sets st->code and st->msg (printf-style, truncated to fit); returns code.
 * st may be NULL (then only returns code). */
grpc_status_code trpc_status_set(trpc_status *st, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN_CODE" for values out of range.
 * Static storage. */
const char *trpc_status_code_name(grpc_status_code code);

/* ---- server ---- */

typedef struct trpc_server trpc_server;
typedef struct trpc_call trpc_call;
typedef struct trpc_stream trpc_stream;

/* Returned by a server-streaming handler that keeps its stream open after it
 * returns (see trpc_stream_finish). */
#define TRPC_STATUS_DETACHED ((grpc_status_code)1000)

typedef struct trpc_server_opts {
    const char *listen_addr;  /* "127.0.0.1:50051"; port 0 = any free port */
    int cq_threads;           /* completion-queue threads; 0 = number of CPUs */
    int pool_threads;         /* blocking pool threads; 0 = 4 */
    int pool_queue;           /* calls waiting for a pool thread before the
                                 server answers RESOURCE_EXHAUSTED; 0 = 1024 */
    int max_message_bytes;    /* send and receive limit; 0 = 4 MiB */
    int keepalive_time_ms;    /* HTTP/2 PING interval; 0 = 30000 */
    int keepalive_timeout_ms; /* PING ack timeout; 0 = 20000 (gRPC's default: a busy peer
                               * answers a ping only after the stream data queued before it) */
    int shutdown_grace_ms;    /* at shutdown, unary calls drain this long
                                 before they are cancelled; 0 = 5000 */
    /* Per pool-thread resource: worker_init(worker_arg, index) runs on the
     * pool thread before it takes work, worker_fini(data) when it stops.
     * Both may be NULL. A NULL result from worker_init is allowed. */
    void *(*worker_init)(void *worker_arg, int index);
    void (*worker_fini)(void *data);
    void *worker_arg;
    /* TLS. All NULL: plaintext (HTTP/2 without TLS). Otherwise PEM files,
     * read once by trpc_server_new (the paths need not outlive it):
     * tls_cert_file the server's certificate chain (leaf first) and
     * tls_key_file its unencrypted private key, both or neither; with
     * tls_client_ca_file too, every client must present a certificate
     * signed by one of those CA certificates (mutual TLS: the handshake of
     * a client without one fails, no call reaches a handler). */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file;
} trpc_server_opts;

/* Creates a server (calls grpc_init). Returns NULL and logs on bad options
 * (also: a TLS file unreadable or not PEM, a key without its certificate).
 * The server also serves grpc.health.v1.Health (Check, Watch) and reflection
 * (grpc.reflection.v1alpha and v1) for every service added. */
trpc_server *trpc_server_new(const trpc_server_opts *opts);

/* Adds a service before trpc_server_start. handlers points to the generated
 * handler table (borrowed, must outlive the server); NULL members answer
 * UNIMPLEMENTED. service_data is handed to handlers via
 * trpc_call_service_data(). Returns 0, or -1 after start / on OOM.
 * Normally called through the generated *_trpc_register(). */
int trpc_server_add_service(trpc_server *srv, const trpc_service_desc *svc, const void *handlers,
                            void *service_data);

/* Binds, starts the pool and the CQ threads. Returns the bound port (> 0), or
 * -1 when the address cannot be bound. */
int trpc_server_start(trpc_server *srv);

/* Health of one service name ("" = the whole server). Every added service
 * starts SERVING; Watch streams see changes. Thread-safe. */
void trpc_server_set_serving(trpc_server *srv, const char *service, int serving);

/* Graceful shutdown: stops accepting calls; ends every open server stream
 * (and Watch, reflection) at once with UNAVAILABLE (their on_close runs;
 * detached owners must still finish them); lets running and queued unary
 * calls finish for up to opts.shutdown_grace_ms, then cancels what is left;
 * stops the pool (worker_fini) and the CQ threads. Then trpc_server_free.
 * Idempotent. Not from a handler. */
void trpc_server_shutdown(trpc_server *srv);

/* Frees a shut-down (or never started) server and calls grpc_shutdown.
 * NULL is a no-op. */
void trpc_server_free(trpc_server *srv);

/* Blocks SIGINT and SIGTERM in the calling thread; call first in main,
 * before any thread exists (gRPC's threads inherit the mask). */
void trpc_block_signals(void);

/* Waits for SIGINT or SIGTERM (blocked by trpc_block_signals); returns it. */
int trpc_wait_for_signal(void);

/* ---- inside a handler (all functions are for the handler's own call) ---- */

const char *trpc_call_path(const trpc_call *call); /* "/pkg.Svc/Method" */

/* Value of request metadata `key` (lower case), not NUL-terminated; *len set.
 * NULL when absent. Valid until the handler returns (streams: until finish).
 * For repeated keys, the first. */
const char *trpc_call_metadata(const trpc_call *call, const char *key, size_t *len);

/* Milliseconds until the call's deadline (<= 0: passed); INT64_MAX if none. */
int64_t trpc_call_ms_left(const trpc_call *call);

/* True once the client cancelled, the deadline passed, or the server's
 * shutdown cancelled the call (streams at once, unary calls after the grace
 * period). Thread-safe. */
int trpc_call_is_cancelled(const trpc_call *call);

/* Runs fn(arg) once, on another thread, if the call is cancelled while the
 * handler runs (e.g. PQcancel on the running query). Replaces an earlier
 * callback; fn == NULL clears it, waiting for a running fn to return. Must
 * be cleared (or the handler returned) before arg dies. A call cancelled
 * before fn was set does not run it: check trpc_call_is_cancelled after
 * setting it. fn must not call trpc_call_on_cancel itself. */
void trpc_call_on_cancel(trpc_call *call, void (*fn)(void *arg), void *arg);

void *trpc_call_worker_data(const trpc_call *call);  /* pool thread's resource,
                                                        while the handler runs */
void *trpc_call_service_data(const trpc_call *call); /* from add_service */
const char *trpc_call_peer(const trpc_call *call);   /* "ipv4:127.0.0.1:5432" */

/* Memory that lives until the reply has been serialized (unary) or the stream
 * finished. Zeroed. Aborts on OOM (replies must not half-build). */
void *trpc_call_alloc(trpc_call *call, size_t size);
char *trpc_call_strdup(trpc_call *call, const char *s);
/* A message from trpc_call_alloc, initialized for its descriptor: for
 * sub-messages of a reply. */
ProtobufCMessage *trpc_call_new_message(trpc_call *call, const ProtobufCMessageDescriptor *d);
/* Runs fn(arg) after the reply has been serialized (e.g. PQclear of a result
 * whose strings the reply borrowed). LIFO. */
void trpc_call_defer(trpc_call *call, void (*fn)(void *arg), void *arg);

/* Sets the status message sent with the handler's non-OK return; returns
 * code. Use as `return trpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "...")`. */
grpc_status_code trpc_call_fail(trpc_call *call, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same with a status built elsewhere; returns st->code. */
grpc_status_code trpc_call_fail_status(trpc_call *call, const trpc_status *st);

/* ---- server streams ----
 * A server-streaming handler runs on a pool thread with its stream. It may
 * send and return a status (the stream ends with it after every queued
 * message is sent), or return TRPC_STATUS_DETACHED and keep the stream: then
 * any thread may send, and exactly one trpc_stream_finish must follow. One
 * message is in flight at a time; the rest wait in a bounded queue (16). */

enum {
    TRPC_STREAM_OK = 0,
    TRPC_STREAM_FULL = 1,   /* queue still full at wait_until */
    TRPC_STREAM_CLOSED = 2, /* cancelled, failed or finished: stop sending */
};

/* Serializes msg (caller keeps it) and queues it. Waits while the queue is
 * full, until wait_until (gpr_inf_past(GPR_CLOCK_MONOTONIC): no wait;
 * gpr_inf_future: until room or close). A message over max_message_bytes
 * ends the call with RESOURCE_EXHAUSTED (TRPC_STREAM_CLOSED). Thread-safe. */
int trpc_stream_send(trpc_stream *s, const ProtobufCMessage *msg, gpr_timespec wait_until);

/* Messages queued and not yet accepted by the transport (incl. in flight). */
size_t trpc_stream_queued(trpc_stream *s);

/* Called once, on a runtime thread, when the call ends from the other side
 * (client cancel, deadline, disconnect, server shutdown) or a send fails;
 * the owner of a detached stream must still call trpc_stream_finish (it may
 * do so from fn). Must not block. Set it before returning
 * TRPC_STATUS_DETACHED: an end that came while the handler ran is reported
 * when it returns. Never called after trpc_stream_finish; replacing or
 * clearing it waits for a running fn. */
void trpc_stream_on_close(trpc_stream *s, void (*fn)(trpc_stream *s, void *arg), void *arg);

/* Called on a runtime thread (must not block) whenever the queue drops to
 * half after trpc_stream_send returned TRPC_STREAM_FULL. */
void trpc_stream_on_writable(trpc_stream *s, void (*fn)(trpc_stream *s, void *arg), void *arg);

/* Ends a detached stream with a status after the queued messages. Exactly
 * once; the handle is invalid afterwards. Thread-safe. */
void trpc_stream_finish(trpc_stream *s, grpc_status_code code, const char *msg);

trpc_call *trpc_stream_call(trpc_stream *s);

/* ---- client (blocking) ---- */

typedef struct trpc_channel trpc_channel;
typedef struct trpc_client_stream trpc_client_stream;

typedef struct trpc_metadata {
    const char *key; /* lower case */
    const char *value;
} trpc_metadata;

typedef struct trpc_call_opts {
    int64_t timeout_ms; /* 0 = no deadline */
    const trpc_metadata *metadata;
    size_t n_metadata;
} trpc_call_opts;

/* A channel to target ("127.0.0.1:50051"); insecure. Calls grpc_init.
 * Thread-safe; many calls may share it. NULL on error. */
trpc_channel *trpc_channel_new(const char *target);

/* Client TLS settings: PEM files (read by trpc_channel_new_tls; the paths
 * need not outlive it). Zero-initialize and set what is needed. */
typedef struct trpc_tls_opts {
    const char *ca_file;     /* CA certificates the server's certificate must
                                chain to; NULL = gRPC's default roots
                                ($GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, else its
                                bundled roots) */
    const char *cert_file;   /* client certificate chain for mutual TLS; NULL
                                = none. Needs key_file. */
    const char *key_file;    /* its unencrypted private key */
    const char *server_name; /* name the server's certificate must carry
                                instead of target's host (which may be an IP
                                address: then an IP SAN must match); NULL =
                                target's host */
} trpc_tls_opts;

/* A TLS channel to target: the server's certificate is verified against
 * tls->ca_file and its name against the target's host (or server_name).
 * tls == NULL gives the same plaintext channel as trpc_channel_new. A failed
 * handshake (no TLS on the server, unknown CA, wrong name, no client
 * certificate where one is required) fails each call with UNAVAILABLE. NULL
 * on error, with st (may be NULL) saying why: INVALID_ARGUMENT for a file
 * that cannot be read or holds no PEM block, or cert_file without key_file
 * (or the reverse). Calls grpc_init; free with trpc_channel_free. */
trpc_channel *trpc_channel_new_tls(const char *target, const trpc_tls_opts *tls, trpc_status *st);
/* NULL is a no-op. Calls grpc_shutdown. */
void trpc_channel_free(trpc_channel *ch);

/* One unary call. On OK *resp is a message to free with
 * protobuf_c_message_free_unpacked(*resp, NULL); otherwise *resp is NULL and
 * st (may be NULL) holds code and message. Returns the code. */
grpc_status_code trpc_unary(trpc_channel *ch, const trpc_method_desc *m,
                            const ProtobufCMessage *req, ProtobufCMessage **resp,
                            const trpc_call_opts *opts, trpc_status *st);

/* Unary call with raw request bytes (for tests: garbage, oversized). On OK
 * *resp (length *resp_len) is a malloc'd copy of the reply (free()). */
grpc_status_code trpc_unary_raw(trpc_channel *ch, const char *path, const void *req, size_t req_len,
                                void **resp, size_t *resp_len, const trpc_call_opts *opts,
                                trpc_status *st);

/* Starts a server-streaming call. NULL (with st set) on failure to start. */
trpc_client_stream *trpc_client_stream_start(trpc_channel *ch, const trpc_method_desc *m,
                                             const ProtobufCMessage *req,
                                             const trpc_call_opts *opts, trpc_status *st);
/* Next message: 1 with *msg set (free_unpacked it), 0 at the end of the
 * stream with st holding the final status (OK or not). */
int trpc_client_stream_next(trpc_client_stream *s, ProtobufCMessage **msg, trpc_status *st);
/* Cancels the call (the next _next returns 0 with CANCELLED). Thread-safe. */
void trpc_client_stream_cancel(trpc_client_stream *s);
/* Cancels if still open and frees. NULL is a no-op. */
void trpc_client_stream_free(trpc_client_stream *s);

#endif /* PROTO_RUNTIME_TRPC_H */
