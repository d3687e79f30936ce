/* bench.h - what tally-bench's workloads share: the options, the run's
 * shared state, one worker per calling thread, and the workloads that
 * bench.c drives like its own deposit workload: query (bench_query.c),
 * transfer (bench_pool.c), mixed (bench_mixed.c) and subscribe-latency
 * (bench_sub.c). */
#ifndef CLIENTS_BENCH_BENCH_H
#define CLIENTS_BENCH_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tally/v1/types.pb-c.h"

#include "hist.h"
#include "trpc.h"

struct opts {
    const char *addr;           /* CommandService */
    const char *query_addr;     /* QueryService */
    const char *subscribe_addr; /* SubscriptionService (tally-projector) */
    const char *token;
    /* TLS: on when any of ca, cert, key is set (see trpc_tls_opts) */
    const char *tls_ca, *tls_cert, *tls_key, *tls_server_name;
    const char *workload; /* deposit | query | transfer | mixed | subscribe-latency */
    const char *query;    /* "get-account" | "list-entries" | "account-at" */
    int concurrency;
    int duration_s;
    int warmup_s;
    int accounts; /* -1 = the workload's default */
    int history;  /* events per queried account; -1 = the query's default */
    int writers;  /* query workload: threads depositing meanwhile */
    int channels;
    int rate; /* calls per second over all threads; 0 = closed loop */
    int wait; /* transfer: Transfer with wait = true */
    int json;
};

struct bench_query; /* bench_query.c */
struct bench_mixed; /* bench_mixed.c */
struct bench_sub;   /* bench_sub.c */

/* Per-operation figures of a workload that mixes operations (mixed). */
struct op_stat {
    struct hist hist;
    uint64_t ok, failed;
};

struct shared {
    const struct opts *o;
    trpc_channel **channels;  /* to o->addr */
    trpc_channel **qchannels; /* to o->query_addr (query, mixed) */
    trpc_channel *schannel;   /* to o->subscribe_addr (subscribe-latency) */
    char (*accounts)[40];     /* account ids */
    trpc_metadata md[1];
    char auth[300];
    uint64_t start_ns, measure_ns, end_ns;
    atomic_uint_fast64_t done;   /* measured calls, for the progress line */
    atomic_uint_fast64_t errors; /* measured failures */
    atomic_int setup_next;       /* next account to set up */
    atomic_int setup_failed;
    atomic_uint_fast64_t next_slot; /* --rate: the next send slot */
    const char *const *op_names;    /* mixed: the operations, n_ops of them */
    int n_ops;
    struct bench_query *q;
    struct bench_mixed *mix;
    struct bench_sub *sub;
};

struct worker {
    struct shared *sh;
    int index;
    uint64_t rng;
    struct hist hist;
    uint64_t ok, failed;
    uint64_t codes[17];
    uint64_t t_start;    /* the current call's start (its slot with --rate) */
    int op;              /* the current call's operation (index into ops) */
    struct op_stat *ops; /* n_ops of them, or NULL */
    void *wl;            /* the workload's per-thread state */
    pthread_t thread;
};

/* What a workload adds to the result (its stop function fills it). */
struct bench_extra {
    const struct hist *hist; /* non-NULL: the headline latency instead of the calls' */
    const char *hist_name;   /* what hist measures, e.g. "reply_to_event" */
    char json[2048];         /* ",\"key\":value..." appended to the JSON object */
    char text[2048];         /* " key=value..." appended to the text line */
};

uint64_t bench_now_ns(void);
void bench_sleep_until(uint64_t ns);                     /* CLOCK_MONOTONIC */
uint64_t bench_rng(uint64_t *state);                     /* xorshift64 */
trpc_call_opts bench_call_opts(const struct shared *sh); /* the token, 10 s deadline */

/* Opens one account (owner "bench-<i>", EUR) into id (40 bytes). */
grpc_status_code bench_open_account(trpc_channel *ch, const struct shared *sh, int i, char *id,
                                    trpc_status *st);

/* One Deposit of minor_units cents (EUR) to id; *pos (may be NULL) gets
 * its position. */
grpc_status_code bench_deposit(trpc_channel *ch, const struct shared *sh, const char *id,
                               int64_t minor_units, Tally__V1__Position *pos, trpc_status *st);

/* A channel to addr: TLS when o sets any --tls-* file, else plaintext.
 * NULL after printing why. */
trpc_channel *bench_channel(const struct opts *o, const char *addr);

/* The JSON and text fields of h (p50/p90/p99/p99.9/max in ms) under the
 * name prefix ("" or "command_"), appended to x. */
void bench_extra_hist(struct bench_extra *x, const char *prefix, const struct hist *h);

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

/* ---- the funded pool and the transfer workload (bench_pool.c) ---- */

#define BENCH_POOL_FUNDS 100000000 /* cents deposited into each pool account */

/* Setup of transfer and mixed: opens o->accounts accounts on the workers'
 * threads, deposits BENCH_POOL_FUNDS into each (so withdrawals, payments
 * and transfers of a few cents never run dry), and, when wait_read_model,
 * waits until the read model has all of it. 0, or -1 after printing why. */
int bench_pool_setup(struct shared *sh, struct worker *workers, int wait_read_model);

/* One Transfer of 1 cent between two distinct random pool accounts (wait =
 * o->wait; with wait a FAILED outcome counts as a FAILED_PRECONDITION
 * error). *id and *pos (may be NULL; id 40 bytes) get the transfer id and
 * the position. */
grpc_status_code bench_pool_transfer(struct worker *w, int wait, char *id, Tally__V1__Position *pos,
                                     trpc_status *st);

/* A random pool account. */
const char *bench_pool_account(struct worker *w);

/* ---- the mixed workload (bench_mixed.c) ---- */

/* Fills the defaults of o. 0 or 2. */
int bench_mixed_opts(struct opts *o);
int bench_mixed_setup(struct shared *sh, struct worker *workers);
grpc_status_code bench_mixed_call(struct worker *w, trpc_status *st);
/* Frees the per-thread state; safe without setup. */
void bench_mixed_stop(struct shared *sh, struct worker *workers, struct bench_extra *x);

/* ---- the subscribe-latency workload (bench_sub.c) ---- */

int bench_sub_opts(struct opts *o);
/* Opens the accounts, starts the Subscribe stream from the end and waits
 * for its caught_up. 0 or -1. */
int bench_sub_setup(struct shared *sh, struct worker *workers);
/* One Deposit; its reply's position is matched with the event's arrival. */
grpc_status_code bench_sub_call(struct worker *w, trpc_status *st);
/* Waits (bounded) for the events still due, ends the stream, fills x (the
 * delivery latency is the headline). x may be NULL; safe without setup. */
void bench_sub_stop(struct shared *sh, struct bench_extra *x);

#endif /* CLIENTS_BENCH_BENCH_H */
