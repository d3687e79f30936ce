/* bench_query.c - tally-bench's query workload (see bench.h): QueryService
 * reads against accounts with a known history while writer threads keep
 * deposits flowing.
 *
 *   get-account    GetAccount of a random queried account
 *   list-entries   ListEntries of a random queried account: the first page
 *                  of 100, oldest first (the account needs > 100 events)
 *   account-at     GetAccountAt of a random queried account at a random
 *                  version 1..history (replay from the nearest snapshot)
 *
 * Writers deposit 1 cent in a loop: into random queried accounts (the read
 * model changes under the reads), or, for account-at, into accounts of
 * their own (the measured history must not grow). Their deposits during the
 * measured period are counted and reported. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/v1/command.trpc.h"
#include "tally/v1/query.trpc.h"

#include "bench.h"

enum query_kind { Q_GET_ACCOUNT, Q_LIST_ENTRIES, Q_ACCOUNT_AT };

struct bench_query {
    enum query_kind kind;
    int n_writers;
    pthread_t *writers;
    char (*own)[40]; /* account-at: one account per writer */
    atomic_int stop;
    atomic_uint_fast64_t writes, write_errors; /* in the measured period */
    struct shared *sh;
};

static const struct {
    const char *name;
    enum query_kind kind;
    int accounts, history;
} kinds[] = {
    {"get-account", Q_GET_ACCOUNT, 1000, 2},
    {"list-entries", Q_LIST_ENTRIES, 64, 150},
    {"account-at", Q_ACCOUNT_AT, 1, 100},
};

int bench_query_opts(struct opts *o)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(o->query, kinds[i].name) == 0) {
            if (o->accounts < 0)
                o->accounts = kinds[i].accounts;
            if (o->history < 0)
                o->history = kinds[i].history;
            return 0;
        }
    fprintf(stderr,
            "tally-bench: unknown --query \"%s\" (expected get-account, list-entries or "
            "account-at)\n",
            o->query);
    return 2;
}

/* ---- setup: accounts with history, then wait for the read model ---- */

static void *setup_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    trpc_channel *ch = sh->channels[w->index % sh->o->channels];
    Tally__V1__Position last = TALLY__V1__POSITION__INIT;
    int wrote = 0;

    for (;;) {
        int i = atomic_fetch_add(&sh->setup_next, 1);
        trpc_status st;

        if (i >= sh->o->accounts || atomic_load(&sh->setup_failed))
            break;
        if (bench_open_account(ch, sh, i, sh->accounts[i], &st) != GRPC_STATUS_OK)
            goto fail;
        for (int e = 1; e < sh->o->history; e++) {
            if (bench_deposit(ch, sh, sh->accounts[i], 1, &last, &st) != GRPC_STATUS_OK)
                goto fail;
            wrote = 1;
            if (sh->o->accounts == 1 && e % 1000 == 0)
                fprintf(stderr, "tally-bench: %d of %d events\n", e, sh->o->history);
        }
        continue;
fail:
        fprintf(stderr, "tally-bench: setup: %s %s\n", trpc_status_code_name(st.code), st.msg);
        atomic_store(&sh->setup_failed, 1);
        return NULL;
    }
    if (wrote) { /* read-your-writes: the read model has this thread's history */
        Tally__V1__GetAccountRequest req = TALLY__V1__GET_ACCOUNT_REQUEST__INIT;
        Tally__V1__Account *a = NULL;
        trpc_call_opts co = bench_call_opts(sh);
        trpc_status st;

        co.timeout_ms = 300000;
        req.account_id = sh->accounts[0];
        req.min_position = &last;
        if (tally__v1__query_service__trpc_get_account(sh->qchannels[w->index % sh->o->channels],
                                                       &req, &a, &co, &st) != GRPC_STATUS_OK) {
            fprintf(stderr, "tally-bench: waiting for the read model: %s %s\n",
                    trpc_status_code_name(st.code), st.msg);
            atomic_store(&sh->setup_failed, 1);
        }
        if (a)
            tally__v1__account__free_unpacked(a, NULL);
    }
    return NULL;
}

/* ---- writers ---- */

struct writer_arg {
    struct bench_query *q;
    int index;
};

static void *writer_main(void *arg)
{
    struct writer_arg *wa = arg;
    struct bench_query *q = wa->q;
    struct shared *sh = q->sh;
    trpc_channel *ch = sh->channels[wa->index % sh->o->channels];
    uint64_t rng = 0x2545F4914F6CDD1Dull * (uint64_t)(wa->index + 1) ^ bench_now_ns();

    while (!atomic_load(&q->stop)) {
        const char *id = q->kind == Q_ACCOUNT_AT
                             ? q->own[wa->index]
                             : sh->accounts[bench_rng(&rng) % (uint64_t)sh->o->accounts];
        uint64_t t0 = bench_now_ns();
        trpc_status st;
        grpc_status_code code = bench_deposit(ch, sh, id, 1, NULL, &st);

        if (t0 < sh->measure_ns || t0 >= sh->end_ns)
            continue;
        if (code == GRPC_STATUS_OK)
            atomic_fetch_add(&q->writes, 1);
        else
            atomic_fetch_add(&q->write_errors, 1);
    }
    free(wa);
    return NULL;
}

int bench_query_setup(struct shared *sh, struct worker *workers)
{
    const struct opts *o = sh->o;
    struct bench_query *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return -1;
    q->sh = sh;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(o->query, kinds[i].name) == 0)
            q->kind = kinds[i].kind;
    sh->q = q;
    fprintf(stderr, "tally-bench: %d accounts with %d events each on %s\n", o->accounts, o->history,
            o->addr);
    for (int i = 0; i < o->concurrency; i++)
        pthread_create(&workers[i].thread, NULL, setup_main, &workers[i]);
    for (int i = 0; i < o->concurrency; i++)
        pthread_join(workers[i].thread, NULL);
    if (atomic_load(&sh->setup_failed))
        return -1;
    q->writers = calloc((size_t)(o->writers ? o->writers : 1), sizeof(*q->writers));
    q->own = calloc((size_t)(o->writers ? o->writers : 1), sizeof(*q->own));
    if (q->writers == NULL || q->own == NULL)
        return -1;
    for (int i = 0; q->kind == Q_ACCOUNT_AT && i < o->writers; i++) {
        trpc_status st;

        if (bench_open_account(sh->channels[i % o->channels], sh, 1000000 + i, q->own[i], &st) !=
            GRPC_STATUS_OK) {
            fprintf(stderr, "tally-bench: writer account: %s %s\n", trpc_status_code_name(st.code),
                    st.msg);
            return -1;
        }
    }
    return 0;
}

int bench_query_start(struct shared *sh)
{
    const struct opts *o = sh->o;
    struct bench_query *q = sh->q;

    for (int i = 0; i < o->writers; i++) {
        struct writer_arg *wa = malloc(sizeof(*wa));

        if (wa == NULL)
            return -1;
        wa->q = q;
        wa->index = i;
        if (pthread_create(&q->writers[i], NULL, writer_main, wa) != 0) {
            free(wa);
            return -1;
        }
        q->n_writers++;
    }
    fprintf(stderr, "tally-bench: %s on %s, %d writers\n", o->query, o->query_addr, o->writers);
    return 0;
}

grpc_status_code bench_query_call(struct worker *w, trpc_status *st)
{
    struct shared *sh = w->sh;
    const struct opts *o = sh->o;
    trpc_channel *ch = sh->qchannels[w->index % o->channels];
    trpc_call_opts co = bench_call_opts(sh);
    char *id = sh->accounts[bench_rng(&w->rng) % (uint64_t)o->accounts];
    grpc_status_code code;

    switch (sh->q->kind) {
    case Q_GET_ACCOUNT: {
        Tally__V1__GetAccountRequest req = TALLY__V1__GET_ACCOUNT_REQUEST__INIT;
        Tally__V1__Account *a = NULL;

        req.account_id = id;
        code = tally__v1__query_service__trpc_get_account(ch, &req, &a, &co, st);
        if (a)
            tally__v1__account__free_unpacked(a, NULL);
        return code;
    }
    case Q_LIST_ENTRIES: {
        Tally__V1__ListEntriesRequest req = TALLY__V1__LIST_ENTRIES_REQUEST__INIT;
        Tally__V1__ListEntriesResponse *r = NULL;

        req.account_id = id;
        req.page_size = 100;
        code = tally__v1__query_service__trpc_list_entries(ch, &req, &r, &co, st);
        if (code == GRPC_STATUS_OK &&
            r->n_entries < (size_t)(o->history > 100 ? 100 : o->history - 1))
            code =
                trpc_status_set(st, GRPC_STATUS_INTERNAL, "short page: %zu entries", r->n_entries);
        if (r)
            tally__v1__list_entries_response__free_unpacked(r, NULL);
        return code;
    }
    case Q_ACCOUNT_AT: {
        Tally__V1__GetAccountAtRequest req = TALLY__V1__GET_ACCOUNT_AT_REQUEST__INIT;
        Tally__V1__Account *a = NULL;

        req.account_id = id;
        req.at_case = TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_VERSION;
        req.version = 1 + (int64_t)(bench_rng(&w->rng) % (uint64_t)o->history);
        code = tally__v1__query_service__trpc_get_account_at(ch, &req, &a, &co, st);
        if (code == GRPC_STATUS_OK && a->version != req.version)
            code = trpc_status_set(st, GRPC_STATUS_INTERNAL, "wrong version");
        if (a)
            tally__v1__account__free_unpacked(a, NULL);
        return code;
    }
    }
    return trpc_status_set(st, GRPC_STATUS_INTERNAL, "unknown query");
}

void bench_query_stop(struct shared *sh, uint64_t *writes, uint64_t *write_errors)
{
    struct bench_query *q = sh->q;

    if (writes)
        *writes = 0;
    if (write_errors)
        *write_errors = 0;
    if (q == NULL)
        return;
    atomic_store(&q->stop, 1);
    for (int i = 0; i < q->n_writers; i++)
        pthread_join(q->writers[i], NULL);
    if (writes)
        *writes = atomic_load(&q->writes);
    if (write_errors)
        *write_errors = atomic_load(&q->write_errors);
    free(q->writers);
    free(q->own);
    free(q);
    sh->q = NULL;
}
