/* bench_pool.c - tally-bench's funded account pool (see bench.h), shared by
 * the transfer and mixed workloads, and the transfer workload's call.
 *
 *   transfer   Transfer of 1 cent from a random pool account to another
 *              (never itself); with --wait the call returns once the saga
 *              in tally-projector completed it (so the projector must run),
 *              and a FAILED outcome counts as an error; the setup then
 *              waits until the read model (--query-addr) has the pool, so
 *              the projector starts the run idle.
 *
 * Every pool account gets BENCH_POOL_FUNDS cents first, so a run's debits
 * of a few cents never meet an insufficient balance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/v1/command.trpc.h"
#include "tally/v1/query.trpc.h"

#include "bench.h"

struct setup_arg {
    struct worker *w;
    int wait_read_model;
};

static void *setup_main(void *arg)
{
    struct setup_arg *sa = arg;
    struct worker *w = sa->w;
    struct shared *sh = w->sh;
    trpc_channel *ch = sh->channels[w->index % sh->o->channels];
    Tally__V1__Position last = TALLY__V1__POSITION__INIT;
    int wrote = 0;
    trpc_status st;

    for (;;) {
        int i = atomic_fetch_add(&sh->setup_next, 1);

        if (i >= sh->o->accounts || atomic_load(&sh->setup_failed))
            break;
        if (bench_open_account(ch, sh, i, sh->accounts[i], &st) != GRPC_STATUS_OK ||
            bench_deposit(ch, sh, sh->accounts[i], BENCH_POOL_FUNDS, &last, &st) != GRPC_STATUS_OK)
            goto fail;
        wrote = 1;
    }
    if (wrote && sa->wait_read_model) { /* read-your-writes: the read model has them */
        Tally__V1__GetAccountRequest req = TALLY__V1__GET_ACCOUNT_REQUEST__INIT;
        Tally__V1__Account *a = NULL;
        trpc_call_opts co = bench_call_opts(sh);

        co.timeout_ms = 300000;
        req.account_id = sh->accounts[0];
        req.min_position = &last;
        if (tally__v1__query_service__trpc_get_account(sh->qchannels[w->index % sh->o->channels],
                                                       &req, &a, &co, &st) != GRPC_STATUS_OK) {
            if (a)
                tally__v1__account__free_unpacked(a, NULL);
            goto fail;
        }
        tally__v1__account__free_unpacked(a, NULL);
    }
    return NULL;
fail:
    fprintf(stderr, "tally-bench: setup: %s %s\n", trpc_status_code_name(st.code), st.msg);
    atomic_store(&sh->setup_failed, 1);
    return NULL;
}

int bench_pool_setup(struct shared *sh, struct worker *workers, int wait_read_model)
{
    const struct opts *o = sh->o;
    struct setup_arg *args = calloc((size_t)o->concurrency, sizeof(*args));

    if (args == NULL)
        return -1;
    fprintf(stderr, "tally-bench: opening and funding %d accounts on %s\n", o->accounts, o->addr);
    for (int i = 0; i < o->concurrency; i++) {
        args[i].w = &workers[i];
        args[i].wait_read_model = wait_read_model;
        pthread_create(&workers[i].thread, NULL, setup_main, &args[i]);
    }
    for (int i = 0; i < o->concurrency; i++)
        pthread_join(workers[i].thread, NULL);
    free(args);
    return atomic_load(&sh->setup_failed) ? -1 : 0;
}

const char *bench_pool_account(struct worker *w)
{
    return w->sh->accounts[bench_rng(&w->rng) % (uint64_t)w->sh->o->accounts];
}

grpc_status_code bench_pool_transfer(struct worker *w, int wait, char *id, Tally__V1__Position *pos,
                                     trpc_status *st)
{
    struct shared *sh = w->sh;
    uint64_t n = (uint64_t)sh->o->accounts;
    uint64_t from = bench_rng(&w->rng) % n, to = (from + 1 + bench_rng(&w->rng) % (n - 1)) % n;
    Tally__V1__TransferRequest req = TALLY__V1__TRANSFER_REQUEST__INIT;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__TransferResponse *resp = NULL;
    trpc_call_opts co = bench_call_opts(sh);
    grpc_status_code code;

    amount.minor_units = 1;
    amount.currency = (char *)"EUR";
    req.source_account_id = sh->accounts[from];
    req.destination_account_id = sh->accounts[to];
    req.amount = &amount;
    req.wait = wait != 0;
    code = tally__v1__command_service__trpc_transfer(sh->channels[w->index % sh->o->channels], &req,
                                                     &resp, &co, st);
    if (code != GRPC_STATUS_OK)
        return code;
    if (id)
        snprintf(id, 40, "%s", resp->transfer_id);
    if (pos && resp->result && resp->result->position)
        *pos = *resp->result->position;
    if (wait && resp->status != TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED)
        code = trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "transfer %s: %s",
                               resp->status == TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED
                                   ? "failed"
                                   : "not finished",
                               resp->failure_reason ? resp->failure_reason : "");
    tally__v1__transfer_response__free_unpacked(resp, NULL);
    return code;
}
