/* bench.h - what tally-bench's workloads share: the options, the run's
 * shared state, one worker per calling thread, and the query workload
 * (bench_query.c) that bench.c drives like its own deposit workload. */
#ifndef CLIENTS_BENCH_BENCH_H
#define CLIENTS_BENCH_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hist.h"
#include "trpc.h"

struct opts {
    const char *addr;       /* CommandService */
    const char *query_addr; /* QueryService */
    const char *token;
    const char *workload; /* "deposit" | "query" */
    const char *query;    /* "get-account" | "list-entries" | "account-at" */
    int concurrency;
    int duration_s;
    int warmup_s;
    int accounts; /* -1 = the workload's default */
    int history;  /* events per queried account; -1 = the query's default */
    int writers;  /* query workload: threads depositing meanwhile */
    int channels;
    int json;
};

struct bench_query; /* bench_query.c */

struct shared {
    const struct opts *o;
    trpc_channel **channels;  /* to o->addr */
    trpc_channel **qchannels; /* to o->query_addr (query workload) */
    char (*accounts)[40];     /* account ids */
    trpc_metadata md[1];
    char auth[300];
    uint64_t start_ns, measure_ns, end_ns;
    atomic_uint_fast64_t done;   /* measured calls, for the progress line */
    atomic_uint_fast64_t errors; /* measured failures */
    atomic_int setup_next;       /* next account to set up */
    atomic_int setup_failed;
    struct bench_query *q;
};

struct worker {
    struct shared *sh;
    int index;
    uint64_t rng;
    struct hist hist;
    uint64_t ok, failed;
    uint64_t codes[17];
    pthread_t thread;
};

uint64_t bench_now_ns(void);
uint64_t bench_rng(uint64_t *state);                     /* xorshift64 */
trpc_call_opts bench_call_opts(const struct shared *sh); /* the token, 10 s deadline */

/* Opens one account (owner "bench-<i>", EUR) into id (40 bytes). */
grpc_status_code bench_open_account(trpc_channel *ch, const struct shared *sh, int i, char *id,
                                    trpc_status *st);

/* ---- the query workload (bench_query.c) ---- */

/* Checks o->query and fills the query defaults of o (accounts, history).
 * Returns 0, or 2 after printing why. */
int bench_query_opts(struct opts *o);

/* Setup: opens o->accounts accounts with o->history events each (the
 * account-at query also opens accounts for the writers) on the workers'
 * threads, and waits until the read model has all of it. Returns 0, or -1
 * after printing why. */
int bench_query_setup(struct shared *sh, struct worker *workers);

/* Starts o->writers deposit threads (to the queried accounts, or to their
 * own for account-at, whose history must not grow); call once the run's
 * clock (measure_ns, end_ns) is set. Returns 0 or -1. */
int bench_query_start(struct shared *sh);

/* One measured query call of worker w. */
grpc_status_code bench_query_call(struct worker *w, trpc_status *st);

/* Stops the writers; *writes / *write_errors get their counts over the
 * measured period. Safe without setup. */
void bench_query_stop(struct shared *sh, uint64_t *writes, uint64_t *write_errors);

#endif /* CLIENTS_BENCH_BENCH_H */
