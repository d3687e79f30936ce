/* bench_mixed.c - tally-bench's mixed workload (see bench.h): every command
 * and the common queries in a fixed mix, on a funded pool of accounts
 * (bench_pool.c), each thread drawing its next operation at random:
 *
 *   share  operation      what it does
 *   21 %   deposit        Deposit 1..100 cents into a pool account
 *   10 %   withdraw       Withdraw 1..100 cents from a pool account
 *   12 %   transfer       Transfer 1 cent between two pool accounts (no wait)
 *    8 %   pay            Pay 1..100 cents from a pool account
 *    4 %   refund         Refund 1 cent of one of the thread's payments
 *                         (a pay when it has none left)
 *    2 %   open           OpenAccount of a fresh account of the thread's
 *    1 %   close          CloseAccount of one of those (zero balance; an open
 *                         when it has none)
 *    2 %   freeze         FreezeAccount / UnfreezeAccount of the thread's own
 *                         account, in turn
 *   20 %   get            GetAccount of a pool account
 *   10 %   entries        ListEntries of a pool account, newest 20
 *    5 %   op             GetOperation of the thread's last command, with its
 *                         min_position (read-your-writes: waits for the
 *                         projector)
 *    3 %   transfer-get   GetTransfer of the thread's last transfer, with its
 *                         min_position
 *    2 %   stream         ReadStream of a pool account, last 10 events
 *
 * 60 % writes, 40 % reads. Every operation is one RPC, measured on its own
 * (per-operation figures) and in the overall histogram. Needs the three
 * daemons: --addr, --query-addr. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/v1/command.trpc.h"
#include "tally/v1/query.trpc.h"

#include "bench.h"

enum mixed_op {
    OP_DEPOSIT,
    OP_WITHDRAW,
    OP_TRANSFER,
    OP_PAY,
    OP_REFUND,
    OP_OPEN,
    OP_CLOSE,
    OP_FREEZE,
    OP_GET,
    OP_ENTRIES,
    OP_OPERATION,
    OP_TRANSFER_GET,
    OP_STREAM,
    N_OPS,
};

static const char *const op_names[N_OPS] = {
    "deposit", "withdraw", "transfer", "pay", "refund",       "open",   "close",
    "freeze",  "get",      "entries",  "op",  "transfer-get", "stream",
};

/* percent of each operation; sums to 100 */
static const int op_share[N_OPS] = {21, 10, 12, 8, 4, 2, 1, 2, 20, 10, 5, 3, 2};

#define RING 16 /* payments and opened accounts a thread remembers */

struct mixed_worker {
    char own[40]; /* freeze/unfreeze */
    int frozen;
    char last_op[40]; /* GetOperation */
    Tally__V1__Position last_pos;
    char last_transfer[40]; /* GetTransfer */
    Tally__V1__Position transfer_pos;
    struct {
        const char *account;
        char id[40];
    } payments[RING];
    int n_payments;
    char opened[RING][40];
    int n_opened;
    int serial; /* owners of the accounts it opens */
};

int bench_mixed_opts(struct opts *o)
{
    if (o->accounts < 0)
        o->accounts = 1000;
    if (o->accounts < 2) {
        fprintf(stderr, "tally-bench: --workload mixed needs --accounts >= 2\n");
        return 2;
    }
    return 0;
}

int bench_mixed_setup(struct shared *sh, struct worker *workers)
{
    const struct opts *o = sh->o;

    if (bench_pool_setup(sh, workers, 1) != 0)
        return -1;
    sh->op_names = op_names;
    sh->n_ops = N_OPS;
    for (int i = 0; i < o->concurrency; i++) {
        struct worker *w = &workers[i];
        struct mixed_worker *m = calloc(1, sizeof(*m));
        trpc_status st;

        w->ops = calloc(N_OPS, sizeof(*w->ops));
        w->wl = m;
        if (m == NULL || w->ops == NULL)
            return -1;
        for (int k = 0; k < N_OPS; k++)
            hist_init(&w->ops[k].hist);
        if (bench_open_account(sh->channels[i % o->channels], sh, 2000000 + i, m->own, &st) !=
            GRPC_STATUS_OK) {
            fprintf(stderr, "tally-bench: setup: %s %s\n", trpc_status_code_name(st.code), st.msg);
            return -1;
        }
    }
    return 0;
}

static enum mixed_op draw(struct worker *w)
{
    int r = (int)(bench_rng(&w->rng) % 100), k;

    for (k = 0; k < N_OPS - 1 && r >= op_share[k]; k++)
        r -= op_share[k];
    return (enum mixed_op)k;
}

static int64_t cents(struct worker *w)
{
    return 1 + (int64_t)(bench_rng(&w->rng) % 100);
}

/* A command's reply: remember it for the op and transfer-get reads. */
static void remember(struct mixed_worker *m, const Tally__V1__CommandResponse *r)
{
    if (r == NULL)
        return;
    snprintf(m->last_op, sizeof(m->last_op), "%s", r->operation_id);
    if (r->position)
        m->last_pos = *r->position;
}

/* Deposit or Withdraw of 1..100 cents on a pool account. */
static grpc_status_code move(struct worker *w, trpc_channel *ch, trpc_status *st)
{
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    trpc_call_opts co = bench_call_opts(w->sh);
    grpc_status_code code;

    amount.minor_units = cents(w);
    amount.currency = (char *)"EUR";
    if (w->op == OP_DEPOSIT) {
        Tally__V1__DepositRequest req = TALLY__V1__DEPOSIT_REQUEST__INIT;

        req.account_id = (char *)bench_pool_account(w);
        req.amount = &amount;
        code = tally__v1__command_service__trpc_deposit(ch, &req, &resp, &co, st);
    } else {
        Tally__V1__WithdrawRequest req = TALLY__V1__WITHDRAW_REQUEST__INIT;

        req.account_id = (char *)bench_pool_account(w);
        req.amount = &amount;
        code = tally__v1__command_service__trpc_withdraw(ch, &req, &resp, &co, st);
    }
    remember(w->wl, resp);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

static grpc_status_code pay(struct worker *w, trpc_channel *ch, trpc_status *st)
{
    struct mixed_worker *m = w->wl;
    Tally__V1__PayRequest req = TALLY__V1__PAY_REQUEST__INIT;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__PayResponse *resp = NULL;
    trpc_call_opts co = bench_call_opts(w->sh);
    grpc_status_code code;

    amount.minor_units = cents(w);
    amount.currency = (char *)"EUR";
    req.account_id = (char *)bench_pool_account(w);
    req.amount = &amount;
    req.merchant_reference = (char *)"bench-shop";
    code = tally__v1__command_service__trpc_pay(ch, &req, &resp, &co, st);
    if (code != GRPC_STATUS_OK)
        return code;
    remember(m, resp->result);
    if (m->n_payments < RING) {
        m->payments[m->n_payments].account = req.account_id;
        snprintf(m->payments[m->n_payments].id, 40, "%s", resp->payment_id);
        m->n_payments++;
    }
    tally__v1__pay_response__free_unpacked(resp, NULL);
    return code;
}

static grpc_status_code refund(struct worker *w, trpc_channel *ch, trpc_status *st)
{
    struct mixed_worker *m = w->wl;
    Tally__V1__RefundRequest req = TALLY__V1__REFUND_REQUEST__INIT;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    trpc_call_opts co = bench_call_opts(w->sh);
    grpc_status_code code;

    if (m->n_payments == 0) {
        w->op = OP_PAY;
        return pay(w, ch, st);
    }
    m->n_payments--; /* one refund of 1 cent per payment (of at least 1) */
    amount.minor_units = 1;
    amount.currency = (char *)"EUR";
    req.account_id = (char *)m->payments[m->n_payments].account;
    req.payment_id = m->payments[m->n_payments].id;
    req.amount = &amount;
    code = tally__v1__command_service__trpc_refund(ch, &req, &resp, &co, st);
    remember(m, resp);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

static grpc_status_code open_or_close(struct worker *w, trpc_channel *ch, trpc_status *st)
{
    struct mixed_worker *m = w->wl;
    Tally__V1__CloseAccountRequest req = TALLY__V1__CLOSE_ACCOUNT_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    trpc_call_opts co = bench_call_opts(w->sh);
    grpc_status_code code;
    char id[40];

    if (w->op == OP_OPEN || m->n_opened == 0) {
        w->op = OP_OPEN;
        code = bench_open_account(ch, w->sh, 3000000 + w->index * 100000 + m->serial++ % 100000, id,
                                  st);
        if (code == GRPC_STATUS_OK && m->n_opened < RING)
            snprintf(m->opened[m->n_opened++], 40, "%s", id);
        return code;
    }
    req.account_id = m->opened[--m->n_opened];
    req.reason = (char *)"bench";
    code = tally__v1__command_service__trpc_close_account(ch, &req, &resp, &co, st);
    remember(m, resp);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

static grpc_status_code freeze(struct worker *w, trpc_channel *ch, trpc_status *st)
{
    struct mixed_worker *m = w->wl;
    Tally__V1__CommandResponse *resp = NULL;
    trpc_call_opts co = bench_call_opts(w->sh);
    grpc_status_code code;

    if (m->frozen) {
        Tally__V1__UnfreezeAccountRequest req = TALLY__V1__UNFREEZE_ACCOUNT_REQUEST__INIT;

        req.account_id = m->own;
        code = tally__v1__command_service__trpc_unfreeze_account(ch, &req, &resp, &co, st);
    } else {
        Tally__V1__FreezeAccountRequest req = TALLY__V1__FREEZE_ACCOUNT_REQUEST__INIT;

        req.account_id = m->own;
        req.reason = (char *)"bench";
        code = tally__v1__command_service__trpc_freeze_account(ch, &req, &resp, &co, st);
    }
    if (code == GRPC_STATUS_OK)
        m->frozen = !m->frozen;
    remember(m, resp);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

static grpc_status_code write_op(struct worker *w, trpc_status *st)
{
    struct mixed_worker *m = w->wl;
    trpc_channel *ch = w->sh->channels[w->index % w->sh->o->channels];

    switch ((enum mixed_op)w->op) {
    case OP_DEPOSIT:
    case OP_WITHDRAW:
        return move(w, ch, st);
    case OP_TRANSFER: /* read back by transfer-get */
        return bench_pool_transfer(w, 0, m->last_transfer, &m->transfer_pos, st);
    case OP_PAY:
        return pay(w, ch, st);
    case OP_REFUND:
        return refund(w, ch, st);
    case OP_OPEN:
    case OP_CLOSE:
        return open_or_close(w, ch, st);
    case OP_FREEZE:
        return freeze(w, ch, st);
    default:
        break;
    }
    return trpc_status_set(st, GRPC_STATUS_INTERNAL, "not a write");
}

static grpc_status_code read_op(struct worker *w, trpc_status *st)
{
    struct mixed_worker *m = w->wl;
    trpc_channel *ch = w->sh->qchannels[w->index % w->sh->o->channels];
    trpc_call_opts co = bench_call_opts(w->sh);
    grpc_status_code code;

    if ((w->op == OP_OPERATION && m->last_op[0] == '\0') ||
        (w->op == OP_TRANSFER_GET && m->last_transfer[0] == '\0'))
        w->op = OP_GET; /* nothing of its own to read yet */
    switch ((enum mixed_op)w->op) {
    case OP_GET: {
        Tally__V1__GetAccountRequest req = TALLY__V1__GET_ACCOUNT_REQUEST__INIT;
        Tally__V1__Account *a = NULL;

        req.account_id = (char *)bench_pool_account(w);
        code = tally__v1__query_service__trpc_get_account(ch, &req, &a, &co, st);
        if (a)
            tally__v1__account__free_unpacked(a, NULL);
        return code;
    }
    case OP_ENTRIES: {
        Tally__V1__ListEntriesRequest req = TALLY__V1__LIST_ENTRIES_REQUEST__INIT;
        Tally__V1__ListEntriesResponse *r = NULL;

        req.account_id = (char *)bench_pool_account(w);
        req.direction = TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS;
        req.page_size = 20;
        code = tally__v1__query_service__trpc_list_entries(ch, &req, &r, &co, st);
        if (r)
            tally__v1__list_entries_response__free_unpacked(r, NULL);
        return code;
    }
    case OP_OPERATION: {
        Tally__V1__GetOperationRequest req = TALLY__V1__GET_OPERATION_REQUEST__INIT;
        Tally__V1__Operation *op = NULL;

        req.operation_id = m->last_op;
        req.min_position = &m->last_pos;
        code = tally__v1__query_service__trpc_get_operation(ch, &req, &op, &co, st);
        if (op)
            tally__v1__operation__free_unpacked(op, NULL);
        return code;
    }
    case OP_TRANSFER_GET: {
        Tally__V1__GetTransferRequest req = TALLY__V1__GET_TRANSFER_REQUEST__INIT;
        Tally__V1__Transfer *t = NULL;

        req.transfer_id = m->last_transfer;
        req.min_position = &m->transfer_pos;
        code = tally__v1__query_service__trpc_get_transfer(ch, &req, &t, &co, st);
        if (t)
            tally__v1__transfer__free_unpacked(t, NULL);
        return code;
    }
    case OP_STREAM: {
        Tally__V1__ReadStreamRequest req = TALLY__V1__READ_STREAM_REQUEST__INIT;
        Tally__V1__ReadStreamResponse *r = NULL;

        req.aggregate_type = (char *)"account";
        req.aggregate_id = (char *)bench_pool_account(w);
        req.direction = TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS;
        req.limit = 10;
        code = tally__v1__query_service__trpc_read_stream(ch, &req, &r, &co, st);
        if (r)
            tally__v1__read_stream_response__free_unpacked(r, NULL);
        return code;
    }
    default:
        break;
    }
    return trpc_status_set(st, GRPC_STATUS_INTERNAL, "not a read");
}

grpc_status_code bench_mixed_call(struct worker *w, trpc_status *st)
{
    w->op = draw(w);
    return w->op < OP_GET ? write_op(w, st) : read_op(w, st);
}

void bench_mixed_stop(struct shared *sh, struct worker *workers, struct bench_extra *x)
{
    struct op_stat total[N_OPS];
    size_t jn = 0, tn = 0;

    if (sh->n_ops == 0 || workers == NULL)
        return;
    memset(total, 0, sizeof(total));
    for (int k = 0; k < N_OPS; k++)
        hist_init(&total[k].hist);
    for (int i = 0; i < sh->o->concurrency; i++) {
        for (int k = 0; k < N_OPS && workers[i].ops; k++) {
            hist_merge(&total[k].hist, &workers[i].ops[k].hist);
            total[k].ok += workers[i].ops[k].ok;
            total[k].failed += workers[i].ops[k].failed;
        }
        free(workers[i].ops);
        free(workers[i].wl);
        workers[i].ops = NULL;
        workers[i].wl = NULL;
    }
    sh->n_ops = 0;
    if (x == NULL)
        return;
    jn = (size_t)snprintf(x->json, sizeof(x->json), ",\"ops\":{");
    for (int k = 0; k < N_OPS; k++) {
        const struct hist *h = &total[k].hist;

        if (jn < sizeof(x->json))
            jn += (size_t)snprintf(x->json + jn, sizeof(x->json) - jn,
                                   "%s\"%s\":{\"ok\":%" PRIu64 ",\"errors\":%" PRIu64
                                   ",\"p50_ms\":%.3f,\"p99_ms\":%.3f}",
                                   k ? "," : "", op_names[k], total[k].ok, total[k].failed,
                                   (double)hist_quantile(h, 0.50) / 1000,
                                   (double)hist_quantile(h, 0.99) / 1000);
        if (tn < sizeof(x->text))
            tn += (size_t)snprintf(
                x->text + tn, sizeof(x->text) - tn,
                "\n  %-13s ok=%-8" PRIu64 " errors=%-5" PRIu64 " p50=%.2fms p99=%.2fms",
                op_names[k], total[k].ok, total[k].failed, (double)hist_quantile(h, 0.50) / 1000,
                (double)hist_quantile(h, 0.99) / 1000);
    }
    if (jn < sizeof(x->json))
        snprintf(x->json + jn, sizeof(x->json) - jn, "}");
}
