/* trpc_health.c - grpc.health.v1.Health: Check (unary) and Watch (a
 * detached server stream that gets the current status, then every change).
 * Both run inline on the CQ thread: they only take a short lock. */
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"

#include "trpc_internal.h"

#define ST_SERVICE_UNKNOWN GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

struct entry {
    struct entry *next;
    int status;
    char name[];
};

struct watcher {
    struct watcher *next;
    trpc_health *h;
    trpc_stream *s;
    int last;  /* last status queued, -1: none */
    int dirty; /* a change did not fit in the stream's queue */
    char service[];
};

struct trpc_health {
    pthread_mutex_t lock;
    struct entry *entries;
    struct watcher *watchers;
};

static struct entry *find_entry(trpc_health *h, const char *name)
{
    struct entry *e;

    for (e = h->entries; e != NULL; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static int status_of(trpc_health *h, const char *name)
{
    struct entry *e = find_entry(h, name);

    return e != NULL ? e->status : ST_SERVICE_UNKNOWN;
}

/* Queues status on w's stream without waiting; a full queue leaves it for
 * on_writable. */
static void send_locked(struct watcher *w, int status)
{
    Grpc__Health__V1__HealthCheckResponse msg = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    if (w->last == status)
        return;
    msg.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    switch (trpc_stream_send(w->s, &msg.base, gpr_inf_past(GPR_CLOCK_MONOTONIC))) {
    case TRPC_STREAM_OK:
        w->last = status;
        w->dirty = 0;
        break;
    case TRPC_STREAM_FULL:
        w->dirty = 1;
        break;
    default: /* closed: on_close removes the watcher */
        break;
    }
}

trpc_health *trpc_health_new(void)
{
    trpc_health *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    trpc_health_set(h, "", 1);
    if (h->entries == NULL) {
        trpc_health_free(h);
        return NULL;
    }
    return h;
}

void trpc_health_free(trpc_health *h)
{
    struct entry *e, *en;
    struct watcher *w, *wn;

    if (h == NULL)
        return;
    for (e = h->entries; e != NULL; e = en) {
        en = e->next;
        free(e);
    }
    for (w = h->watchers; w != NULL; w = wn) { /* none once the server shut down */
        wn = w->next;
        free(w);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void trpc_health_set(trpc_health *h, const char *service, int status)
{
    struct entry *e;
    struct watcher *w;

    pthread_mutex_lock(&h->lock);
    e = find_entry(h, service);
    if (e == NULL) {
        size_t n = strlen(service) + 1;

        e = malloc(sizeof(*e) + n);
        if (e == NULL) {
            pthread_mutex_unlock(&h->lock);
            TRPC_LOG_ERROR("trpc: out of memory setting health of %s", service);
            return;
        }
        memcpy(e->name, service, n);
        e->next = h->entries;
        h->entries = e;
    }
    e->status = status;
    for (w = h->watchers; w != NULL; w = w->next)
        if (strcmp(w->service, service) == 0)
            send_locked(w, status);
    pthread_mutex_unlock(&h->lock);
}

grpc_status_code trpc_health_check(trpc_call *call, const void *req, void *resp)
{
    const Grpc__Health__V1__HealthCheckRequest *rq = req;
    Grpc__Health__V1__HealthCheckResponse *rs = resp;
    trpc_health *h = trpc_call_service_data(call);
    struct entry *e;
    grpc_status_code code = GRPC_STATUS_OK;

    pthread_mutex_lock(&h->lock);
    e = find_entry(h, rq->service);
    if (e != NULL)
        rs->status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)e->status;
    else
        code = trpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "unknown service");
    pthread_mutex_unlock(&h->lock);
    return code;
}

static void watch_closed(trpc_stream *s, void *arg)
{
    struct watcher *w = arg, **pp;
    trpc_health *h = w->h;

    pthread_mutex_lock(&h->lock);
    for (pp = &h->watchers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&h->lock);
    free(w);
    trpc_stream_finish(s, GRPC_STATUS_CANCELLED, "watch ended");
}

static void watch_writable(trpc_stream *s, void *arg)
{
    struct watcher *w = arg;
    trpc_health *h = w->h;

    (void)s;
    pthread_mutex_lock(&h->lock);
    if (w->dirty)
        send_locked(w, status_of(h, w->service));
    pthread_mutex_unlock(&h->lock);
}

grpc_status_code trpc_health_watch(trpc_call *call, const void *req, trpc_stream *out)
{
    const Grpc__Health__V1__HealthCheckRequest *rq = req;
    trpc_health *h = trpc_call_service_data(call);
    size_t n = strlen(rq->service) + 1;
    struct watcher *w = calloc(1, sizeof(*w) + n);

    if (w == NULL)
        return trpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    memcpy(w->service, rq->service, n);
    w->h = h;
    w->s = out;
    w->last = -1;
    trpc_stream_on_close(out, watch_closed, w);
    trpc_stream_on_writable(out, watch_writable, w);
    pthread_mutex_lock(&h->lock);
    w->next = h->watchers;
    h->watchers = w;
    send_locked(w, status_of(h, w->service));
    pthread_mutex_unlock(&h->lock);
    return TRPC_STATUS_DETACHED;
}
