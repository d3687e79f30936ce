/* trpc_server.c - the server: options, services and their registration with
 * gRPC, the completion-queue threads (each keeps requests outstanding for
 * every method on its own queue and re-requests as a call arrives, plus some
 * for unregistered methods, answered UNIMPLEMENTED), and graceful shutdown. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc_security.h>

#include "trpc_internal.h"

#define SLOTS_PER_METHOD   2 /* requests outstanding per method per queue */
#define SLOTS_UNREGISTERED 2

struct trpc_cq_worker {
    trpc_server *srv;
    int index;
    grpc_completion_queue *cq;
    pthread_t thread;
    int started;
};

enum server_state { SERVER_NEW = 0, SERVER_RUNNING = 1, SERVER_DOWN = 2 };

struct trpc_server {
    trpc_server_opts opts; /* defaults filled in */
    char *listen_addr;
    enum server_state state;

    const trpc_service_desc **services; /* added, then the built-in ones */
    size_t n_services, cap_services;
    trpc_method *methods;
    size_t n_methods, cap_methods;

    grpc_server *server;
    struct trpc_cq_worker *workers;
    int n_workers;
    grpc_completion_queue *shutdown_cq;
    trpc_pool *pool;

    pthread_rwlock_t req_lock; /* held to post a request; write: shutting_down */
    int shutting_down;

    pthread_mutex_t live_lock; /* the tracked long-lived calls */
    trpc_call *live_head;
    int live_closed;
    atomic_long n_calls;

    trpc_health *health;
    trpc_reflection *refl;

    /* TLS material read by trpc_server_new (NULL: plaintext), wiped and
     * freed once the port has its credentials */
    char *tls_cert, *tls_key, *tls_client_ca;
};

/* ---- options and services ---- */

static int check_opt(const char *name, int v)
{
    if (v < 0) {
        TRPC_LOG_ERROR("trpc: invalid %s %d (expected >= 0)", name, v);
        return -1;
    }
    return 0;
}

static void free_tls(trpc_server *srv)
{
    trpc_tls_pem_free(srv->tls_cert);
    trpc_tls_pem_free(srv->tls_key);
    trpc_tls_pem_free(srv->tls_client_ca);
    srv->tls_cert = srv->tls_key = srv->tls_client_ca = NULL;
}

/* Reads the TLS files of opts (if any) into srv. 0, or -1 after logging. */
static int read_tls_files(trpc_server *srv, const trpc_server_opts *opts)
{
    trpc_status st;

    if (opts->tls_cert_file == NULL)
        return 0;
    if (trpc_tls_pem_read(opts->tls_cert_file, &srv->tls_cert, &st) != 0 ||
        trpc_tls_pem_read(opts->tls_key_file, &srv->tls_key, &st) != 0 ||
        (opts->tls_client_ca_file != NULL &&
         trpc_tls_pem_read(opts->tls_client_ca_file, &srv->tls_client_ca, &st) != 0)) {
        TRPC_LOG_ERROR("trpc: %s", st.msg);
        return -1;
    }
    return 0;
}

trpc_server *trpc_server_new(const trpc_server_opts *opts)
{
    trpc_server *srv;
    long ncpu;

    if (opts == NULL || opts->listen_addr == NULL || opts->listen_addr[0] == '\0') {
        TRPC_LOG_ERROR("trpc: no listen address");
        return NULL;
    }
    if (check_opt("cq_threads", opts->cq_threads) ||
        check_opt("pool_threads", opts->pool_threads) ||
        check_opt("pool_queue", opts->pool_queue) ||
        check_opt("max_message_bytes", opts->max_message_bytes) ||
        check_opt("keepalive_time_ms", opts->keepalive_time_ms) ||
        check_opt("keepalive_timeout_ms", opts->keepalive_timeout_ms) ||
        check_opt("shutdown_grace_ms", opts->shutdown_grace_ms))
        return NULL;
    if ((opts->tls_cert_file == NULL) != (opts->tls_key_file == NULL)) {
        TRPC_LOG_ERROR("trpc: a TLS certificate needs its key and the reverse");
        return NULL;
    }
    if (opts->tls_client_ca_file != NULL && opts->tls_cert_file == NULL) {
        TRPC_LOG_ERROR("trpc: a TLS client CA needs a server certificate and key");
        return NULL;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    if (read_tls_files(srv, opts) != 0) {
        free_tls(srv);
        free(srv);
        return NULL;
    }
    srv->opts = *opts;
    /* read above: the paths are not kept */
    srv->opts.tls_cert_file = srv->opts.tls_key_file = srv->opts.tls_client_ca_file = NULL;
    srv->listen_addr = strdup(opts->listen_addr);
    srv->health = trpc_health_new();
    if (srv->listen_addr == NULL || srv->health == NULL) {
        trpc_health_free(srv->health);
        free(srv->listen_addr);
        free_tls(srv);
        free(srv);
        return NULL;
    }
    srv->opts.listen_addr = srv->listen_addr;
    if (srv->opts.cq_threads == 0) {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        srv->opts.cq_threads = ncpu > 0 ? (int)ncpu : 1;
    }
    if (srv->opts.pool_threads == 0)
        srv->opts.pool_threads = 4;
    if (srv->opts.pool_queue == 0)
        srv->opts.pool_queue = 1024;
    if (srv->opts.max_message_bytes == 0)
        srv->opts.max_message_bytes = 4 * 1024 * 1024;
    if (srv->opts.keepalive_time_ms == 0)
        srv->opts.keepalive_time_ms = 30000;
    if (srv->opts.keepalive_timeout_ms == 0)
        srv->opts.keepalive_timeout_ms = 20000;
    if (srv->opts.shutdown_grace_ms == 0)
        srv->opts.shutdown_grace_ms = 5000;
    pthread_rwlock_init(&srv->req_lock, NULL);
    pthread_mutex_init(&srv->live_lock, NULL);
    atomic_init(&srv->n_calls, 0);
    grpc_init();
    return srv;
}

static const trpc_method_desc *find_method(const trpc_service_desc *svc, const char *name)
{
    size_t i;

    for (i = 0; i < svc->n_methods; i++)
        if (strcmp(svc->methods[i].name, name) == 0)
            return &svc->methods[i];
    return NULL;
}

static int push_service(trpc_server *srv, const trpc_service_desc *svc)
{
    size_t i;

    for (i = 0; i < srv->n_services; i++) {
        if (strcmp(srv->services[i]->full_name, svc->full_name) == 0) {
            TRPC_LOG_ERROR("trpc: service %s added twice", svc->full_name);
            return -1;
        }
    }
    if (srv->n_services == srv->cap_services) {
        size_t cap = srv->cap_services ? 2 * srv->cap_services : 8;
        const trpc_service_desc **p = realloc(srv->services, cap * sizeof(*p));

        if (p == NULL)
            return -1;
        srv->services = p;
        srv->cap_services = cap;
    }
    srv->services[srv->n_services++] = svc;
    return 0;
}

static int push_method(trpc_server *srv, const trpc_method *m)
{
    if (srv->n_methods == srv->cap_methods) {
        size_t cap = srv->cap_methods ? 2 * srv->cap_methods : 16;
        trpc_method *p = realloc(srv->methods, cap * sizeof(*p));

        if (p == NULL)
            return -1;
        srv->methods = p;
        srv->cap_methods = cap;
    }
    srv->methods[srv->n_methods++] = *m;
    return 0;
}

int trpc_server_add_service(trpc_server *srv, const trpc_service_desc *svc, const void *handlers,
                            void *service_data)
{
    size_t i, n_before;

    if (srv->state != SERVER_NEW) {
        TRPC_LOG_ERROR("trpc: add_service(%s) after start", svc->full_name);
        return -1;
    }
    if (push_service(srv, svc) != 0)
        return -1;
    n_before = srv->n_methods;
    for (i = 0; i < svc->n_methods; i++) {
        const trpc_method_desc *d = &svc->methods[i];
        trpc_method m;

        /* client-streaming and bidi methods stay unregistered: UNIMPLEMENTED */
        if (d->kind != TRPC_UNARY && d->kind != TRPC_SERVER_STREAMING)
            continue;
        memset(&m, 0, sizeof(m));
        m.desc = d;
        m.service_data = service_data;
        m.dispatch = TRPC_DISPATCH_POOL;
        if (handlers != NULL && d->handler_offset != TRPC_NO_HANDLER)
            memcpy(&m.fn, (const char *)handlers + d->handler_offset, sizeof(m.fn));
        if (push_method(srv, &m) != 0) {
            srv->n_methods = n_before;
            srv->n_services--;
            return -1;
        }
    }
    trpc_health_set(srv->health, svc->full_name, 1);
    return 0;
}

/* grpc.health.v1 and both reflection services, bound to built-in code. */
static int add_builtin_services(trpc_server *srv)
{
    const trpc_service_desc *h = &grpc__health__v1__health__trpc_service;
    const trpc_service_desc *refl[2] = {
        &grpc__reflection__v1alpha__server_reflection__trpc_service,
        &grpc__reflection__v1__server_reflection__trpc_service,
    };
    trpc_method m;
    size_t i;

    if (push_service(srv, h) != 0)
        return -1;
    memset(&m, 0, sizeof(m));
    m.dispatch = TRPC_DISPATCH_INLINE;
    m.service_data = srv->health;
    m.desc = find_method(h, "Check");
    m.fn = (void (*)(void))trpc_health_check;
    if (m.desc == NULL || push_method(srv, &m) != 0)
        return -1;
    m.desc = find_method(h, "Watch");
    m.fn = (void (*)(void))trpc_health_watch;
    if (m.desc == NULL || push_method(srv, &m) != 0)
        return -1;
    for (i = 0; i < 2; i++)
        if (push_service(srv, refl[i]) != 0)
            return -1;
    srv->refl = trpc_reflection_new(srv->services, srv->n_services);
    if (srv->refl == NULL)
        return -1;
    for (i = 0; i < 2; i++) {
        memset(&m, 0, sizeof(m));
        m.dispatch = TRPC_DISPATCH_REFLECTION;
        m.service_data = srv->refl;
        m.desc = find_method(refl[i], "ServerReflectionInfo");
        if (m.desc == NULL || push_method(srv, &m) != 0)
            return -1;
    }
    return 0;
}

/* ---- completion-queue threads ---- */

static void on_new_call(trpc_call *c, int success);

/* Posts one request for method_index (-1: unregistered) on w's queue, unless
 * the server is shutting down (a request on a shut-down queue aborts). */
static void post_request(trpc_server *srv, struct trpc_cq_worker *w, int method_index)
{
    trpc_call *c = trpc_call_slot_new(srv, w, method_index);
    grpc_call_error err;

    if (c == NULL) {
        TRPC_LOG_ERROR("trpc: out of memory posting a request");
        return;
    }
    c->t_new.done = on_new_call;
    c->t_new.call = c;
    pthread_rwlock_rdlock(&srv->req_lock);
    if (srv->shutting_down) {
        pthread_rwlock_unlock(&srv->req_lock);
        trpc_call_slot_free(c);
        return;
    }
    if (method_index >= 0) {
        const trpc_method *m = &srv->methods[method_index];
        int has_payload = m->dispatch != TRPC_DISPATCH_REFLECTION;

        c->m = m;
        err = grpc_server_request_registered_call(srv->server, m->handle, &c->call, &c->deadline,
                                                  &c->md, has_payload ? &c->payload : NULL, w->cq,
                                                  w->cq, &c->t_new);
    } else {
        err = grpc_server_request_call(srv->server, &c->call, &c->details, &c->md, w->cq, w->cq,
                                       &c->t_new);
    }
    pthread_rwlock_unlock(&srv->req_lock);
    if (err != GRPC_CALL_OK) {
        TRPC_LOG_ERROR("trpc: request_call failed (%d)", (int)err);
        trpc_call_slot_free(c);
    }
}

static void on_new_call(trpc_call *c, int success)
{
    trpc_server *srv = c->srv;

    if (!success) { /* shutting down: the request comes back unused */
        trpc_call_slot_free(c);
        return;
    }
    post_request(srv, c->w, c->method_index);
    atomic_fetch_add(&srv->n_calls, 1);
    if (c->method_index < 0)
        c->deadline = c->details.deadline;
    trpc_call_arrived(c);
}

/* Serves w's queue until it is shut down and drained. */
static void serve_queue(grpc_completion_queue *cq)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        trpc_tag *t;
        void (*done)(trpc_call *, int);
        trpc_call *c;

        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        /* copy out: done() may free the call that holds the tag */
        t = ev.tag;
        done = t->done;
        c = t->call;
        done(c, ev.success);
    }
}

static void *cq_main(void *arg)
{
    struct trpc_cq_worker *w = arg;

    serve_queue(w->cq);
    return NULL;
}

/* ---- start ---- */

static grpc_server *create_grpc_server(const trpc_server_opts *o)
{
    grpc_arg args[8];
    grpc_channel_args chargs;
    int n = 0;

    args[n++] = trpc_int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, o->max_message_bytes);
    args[n++] = trpc_int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, o->max_message_bytes);
    args[n++] = trpc_int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, o->keepalive_time_ms);
    args[n++] = trpc_int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, o->keepalive_timeout_ms);
    /* keep pinging idle long-lived streams */
    args[n++] = trpc_int_arg(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    /* tolerate clients that ping as often as every 10 s */
    args[n++] = trpc_int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
    args[n++] = trpc_int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    /* a port in use is an error, not a port shared with another process */
    args[n++] = trpc_int_arg(GRPC_ARG_ALLOW_REUSEPORT, 0);
    chargs.num_args = (size_t)n;
    chargs.args = args;
    return grpc_server_create(&chargs, NULL);
}

static void destroy_queues(trpc_server *srv)
{
    int i;

    for (i = 0; i < srv->n_workers; i++) {
        grpc_completion_queue *cq = srv->workers[i].cq;

        if (cq == NULL)
            continue;
        /* no thread ever served it: drain it here (requests come back) */
        grpc_completion_queue_shutdown(cq);
        serve_queue(cq);
        grpc_completion_queue_destroy(cq);
    }
    free(srv->workers);
    srv->workers = NULL;
    srv->n_workers = 0;
    if (srv->shutdown_cq != NULL) {
        grpc_completion_queue_shutdown(srv->shutdown_cq);
        while (
            grpc_completion_queue_next(srv->shutdown_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
                .type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(srv->shutdown_cq);
        srv->shutdown_cq = NULL;
    }
}

int trpc_server_start(trpc_server *srv)
{
    grpc_server_credentials *creds;
    size_t i;
    int port, k, n;

    if (srv->state != SERVER_NEW) {
        TRPC_LOG_ERROR("trpc: server started twice");
        return -1;
    }
    if (srv->refl == NULL && add_builtin_services(srv) != 0) {
        TRPC_LOG_ERROR("trpc: cannot set up health and reflection");
        return -1;
    }
    srv->server = create_grpc_server(&srv->opts);
    for (i = 0; i < srv->n_methods; i++) {
        trpc_method *m = &srv->methods[i];
        grpc_server_register_method_payload_handling ph =
            m->dispatch == TRPC_DISPATCH_REFLECTION ? GRPC_SRM_PAYLOAD_NONE
                                                    : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER;

        m->handle = grpc_server_register_method(srv->server, m->desc->path, NULL, ph, 0);
        if (m->handle == NULL) {
            TRPC_LOG_ERROR("trpc: cannot register %s", m->desc->path);
            goto fail;
        }
    }
    srv->workers = calloc((size_t)srv->opts.cq_threads, sizeof(*srv->workers));
    if (srv->workers == NULL)
        goto fail;
    srv->n_workers = srv->opts.cq_threads;
    for (k = 0; k < srv->n_workers; k++) {
        srv->workers[k].srv = srv;
        srv->workers[k].index = k;
        srv->workers[k].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(srv->server, srv->workers[k].cq, NULL);
    }
    srv->shutdown_cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv->server, srv->shutdown_cq, NULL);

    if (srv->tls_cert != NULL)
        creds = trpc_tls_server_credentials(srv->tls_cert, srv->tls_key, srv->tls_client_ca);
    else
        creds = grpc_insecure_server_credentials_create();
    port = creds != NULL ? grpc_server_add_http2_port(srv->server, srv->listen_addr, creds) : 0;
    if (creds != NULL)
        grpc_server_credentials_release(creds);
    free_tls(srv); /* gRPC keeps its own copy */
    if (port <= 0) {
        TRPC_LOG_ERROR("trpc: cannot listen on %s%s", srv->listen_addr,
                       creds == NULL ? " (bad TLS credentials)" : "");
        goto fail;
    }
    srv->pool = trpc_pool_new(srv->opts.pool_threads, srv->opts.pool_queue, srv->opts.worker_init,
                              srv->opts.worker_fini, srv->opts.worker_arg);
    if (srv->pool == NULL) {
        TRPC_LOG_ERROR("trpc: cannot start the pool");
        goto fail;
    }
    grpc_server_start(srv->server);
    srv->state = SERVER_RUNNING;
    for (k = 0; k < srv->n_workers; k++) {
        for (i = 0; i < srv->n_methods; i++)
            for (n = 0; n < SLOTS_PER_METHOD; n++)
                post_request(srv, &srv->workers[k], (int)i);
        for (n = 0; n < SLOTS_UNREGISTERED; n++)
            post_request(srv, &srv->workers[k], -1);
    }
    for (k = 0; k < srv->n_workers; k++) {
        if (pthread_create(&srv->workers[k].thread, NULL, cq_main, &srv->workers[k]) != 0) {
            TRPC_LOG_ERROR("trpc: cannot start completion-queue thread %d", k);
            trpc_server_shutdown(srv); /* joins the threads that did start */
            return -1;
        }
        srv->workers[k].started = 1;
    }
    return port;

fail:
    trpc_pool_free(srv->pool);
    srv->pool = NULL;
    grpc_server_destroy(srv->server); /* never started: nothing to shut down */
    srv->server = NULL;
    destroy_queues(srv);
    srv->state = SERVER_DOWN;
    return -1;
}

/* ---- long-lived calls ---- */

void trpc_server_track(trpc_server *srv, trpc_call *c)
{
    pthread_mutex_lock(&srv->live_lock);
    c->live_prev = NULL;
    c->live_next = srv->live_head;
    if (srv->live_head != NULL)
        srv->live_head->live_prev = c;
    srv->live_head = c;
    c->in_live = 1;
    if (srv->live_closed) {
        atomic_store(&c->cancelled, 1);
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE, "server shutting down",
                                     NULL);
    }
    pthread_mutex_unlock(&srv->live_lock);
}

void trpc_server_untrack(trpc_server *srv, trpc_call *c)
{
    pthread_mutex_lock(&srv->live_lock);
    if (c->live_prev != NULL)
        c->live_prev->live_next = c->live_next;
    else
        srv->live_head = c->live_next;
    if (c->live_next != NULL)
        c->live_next->live_prev = c->live_prev;
    c->in_live = 0;
    pthread_mutex_unlock(&srv->live_lock);
}

/* Ends every stream and reflection call now (their owners see on_close). */
static void cancel_tracked(trpc_server *srv)
{
    trpc_call *c;

    pthread_mutex_lock(&srv->live_lock);
    srv->live_closed = 1;
    for (c = srv->live_head; c != NULL; c = c->live_next) {
        atomic_store(&c->cancelled, 1);
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE, "server shutting down",
                                     NULL);
    }
    pthread_mutex_unlock(&srv->live_lock);
}

trpc_pool *trpc_server_pool(trpc_server *srv)
{
    return srv->pool;
}

int trpc_server_max_message(const trpc_server *srv)
{
    return srv->opts.max_message_bytes;
}

void trpc_server_call_freed(trpc_server *srv)
{
    atomic_fetch_sub(&srv->n_calls, 1);
}

void trpc_server_set_serving(trpc_server *srv, const char *service, int serving)
{
    trpc_health_set(srv->health, service != NULL ? service : "", serving ? 1 : 2);
}

/* ---- shutdown ---- */

void trpc_server_shutdown(trpc_server *srv)
{
    int tag = 0, i;
    grpc_event ev;

    if (srv == NULL || srv->state != SERVER_RUNNING)
        return;
    pthread_rwlock_wrlock(&srv->req_lock);
    srv->shutting_down = 1;
    pthread_rwlock_unlock(&srv->req_lock);

    grpc_server_shutdown_and_notify(srv->server, srv->shutdown_cq, &tag);
    cancel_tracked(srv);
    ev = grpc_completion_queue_next(srv->shutdown_cq, trpc_deadline_ms(srv->opts.shutdown_grace_ms),
                                    NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        TRPC_LOG_INFO("trpc: grace period over, cancelling %ld calls", atomic_load(&srv->n_calls));
        grpc_server_cancel_all_calls(srv->server);
        for (;;) {
            ev = grpc_completion_queue_next(srv->shutdown_cq,
                                            trpc_deadline_ms(srv->opts.shutdown_grace_ms), NULL);
            if (ev.type != GRPC_QUEUE_TIMEOUT)
                break;
            TRPC_LOG_ERROR("trpc: shutdown waits for %ld calls (a detached stream not finished?)",
                           atomic_load(&srv->n_calls));
        }
    }
    /* every call is gone: no more work for the pool, no more requests */
    trpc_pool_free(srv->pool);
    srv->pool = NULL;
    for (i = 0; i < srv->n_workers; i++)
        grpc_completion_queue_shutdown(srv->workers[i].cq);
    for (i = 0; i < srv->n_workers; i++) {
        if (srv->workers[i].started) {
            pthread_join(srv->workers[i].thread, NULL);
            srv->workers[i].started = 0;
            /* drained by its thread: destroy_queues only destroys it */
            grpc_completion_queue_destroy(srv->workers[i].cq);
            srv->workers[i].cq = NULL;
        }
    }
    grpc_server_destroy(srv->server);
    srv->server = NULL;
    destroy_queues(srv);
    if (atomic_load(&srv->n_calls) != 0)
        TRPC_LOG_ERROR("trpc: %ld calls still alive after shutdown", atomic_load(&srv->n_calls));
    srv->state = SERVER_DOWN;
}

void trpc_server_free(trpc_server *srv)
{
    if (srv == NULL)
        return;
    trpc_server_shutdown(srv);
    trpc_reflection_free(srv->refl);
    trpc_health_free(srv->health);
    free(srv->methods);
    free(srv->services);
    free(srv->listen_addr);
    free_tls(srv);
    pthread_rwlock_destroy(&srv->req_lock);
    pthread_mutex_destroy(&srv->live_lock);
    free(srv);
    grpc_shutdown();
}
