/* trpc_pool.c - the bounded blocking pool that runs handlers.
 *
 * A fixed set of threads, each owning a resource made by worker_init (a
 * PGconn, typically), takes jobs from one bounded FIFO. A full FIFO makes
 * trpc_pool_submit fail at once, so the caller can answer RESOURCE_EXHAUSTED
 * instead of queueing without limit. */
#include <stdlib.h>

#include "trpc_internal.h"

struct pool_job {
    trpc_pool_fn fn;
    void *arg;
};

struct pool_worker {
    trpc_pool *pool;
    int index;
    pthread_t thread;
    int started;
};

struct trpc_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;  /* a job was queued, or stopping */
    pthread_cond_t ready; /* a worker finished worker_init */
    struct pool_job *jobs;
    size_t cap, head, count;
    int stopping;
    int n_ready;
    int n_workers;
    struct pool_worker *workers;
    void *(*init)(void *arg, int index);
    void (*fini)(void *data);
    void *init_arg;
};

static void *worker_main(void *arg)
{
    struct pool_worker *w = arg;
    trpc_pool *p = w->pool;
    void *data = p->init != NULL ? p->init(p->init_arg, w->index) : NULL;
    struct pool_job job;

    pthread_mutex_lock(&p->lock);
    p->n_ready++;
    pthread_cond_broadcast(&p->ready);
    for (;;) {
        while (p->count == 0 && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->count == 0) /* stopping and drained */
            break;
        job = p->jobs[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        pthread_mutex_unlock(&p->lock);
        job.fn(job.arg, data);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    if (p->fini != NULL)
        p->fini(data);
    return NULL;
}

trpc_pool *trpc_pool_new(int threads, int queue_cap, void *(*init)(void *arg, int index),
                         void (*fini)(void *data), void *init_arg)
{
    trpc_pool *p = NULL;
    int i;

    if (threads <= 0 || queue_cap <= 0)
        return NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->cap = (size_t)queue_cap;
    p->jobs = calloc(p->cap, sizeof(*p->jobs));
    p->workers = calloc((size_t)threads, sizeof(*p->workers));
    if (p->jobs == NULL || p->workers == NULL) {
        free(p->jobs);
        free(p->workers);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->ready, NULL);
    p->init = init;
    p->fini = fini;
    p->init_arg = init_arg;
    for (i = 0; i < threads; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            TRPC_LOG_ERROR("trpc: cannot start pool thread %d", i);
            break;
        }
        p->workers[i].started = 1;
        p->n_workers++;
    }
    if (p->n_workers < threads) {
        trpc_pool_free(p);
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    while (p->n_ready < p->n_workers)
        pthread_cond_wait(&p->ready, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return p;
}

int trpc_pool_submit(trpc_pool *p, trpc_pool_fn fn, void *arg)
{
    int rc = -1;

    pthread_mutex_lock(&p->lock);
    if (!p->stopping && p->count < p->cap) {
        p->jobs[(p->head + p->count) % p->cap] = (struct pool_job){fn, arg};
        p->count++;
        pthread_cond_signal(&p->work);
        rc = 0;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void trpc_pool_free(trpc_pool *p)
{
    int i;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (i = 0; i < p->n_workers; i++)
        if (p->workers[i].started)
            pthread_join(p->workers[i].thread, NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->ready);
    pthread_mutex_destroy(&p->lock);
    free(p->jobs);
    free(p->workers);
    free(p);
}
