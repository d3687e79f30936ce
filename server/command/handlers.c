/* handlers.c - the CommandService RPCs: check the request's ids, then run
 * the shared pipeline (exec.h) with the account domain's decide function. */
#include "handlers.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "exec.h"
#include "log.h"
#include "uuid.h"

/* Ends a handler with st (OK or an error with its message). */
static grpc_status_code finish(trpc_call *call, const trpc_status *st)
{
    if (st->code == GRPC_STATUS_OK)
        return GRPC_STATUS_OK;
    return trpc_call_fail_status(call, st);
}

/* A request's account id, checked and lower-cased into the call's arena. */
static const char *account_id_of(trpc_call *call, const char *field, const char *value,
                                 trpc_status *st)
{
    char id[UUID_STR_SIZE];

    if (uuid_check(field, value, id, st) != GRPC_STATUS_OK)
        return NULL;
    return trpc_call_strdup(call, id);
}

/* An optional id: the caller's (checked) or a new UUIDv7. */
static const char *optional_id(trpc_call *call, const char *field, const char *value,
                               trpc_status *st)
{
    char id[UUID_STR_SIZE];

    if (value == NULL || value[0] == '\0') {
        if (uuid_v7_new(id) != 0) {
            trpc_status_set(st, GRPC_STATUS_INTERNAL, "no randomness available");
            return NULL;
        }
        return trpc_call_strdup(call, id);
    }
    return account_id_of(call, field, value, st);
}

/* ---- OpenAccount ---- */

struct open_arg {
    const char *account_id;
    const Tally__V1__OpenAccountRequest *req;
};

static grpc_status_code decide_open(const struct account_state *s,
                                    const struct account_payment_info *p, const void *arg,
                                    struct account_event *out, trpc_status *st)
{
    const struct open_arg *a = arg;

    (void)p;
    return account_decide_open(s, a->account_id, a->req->owner, a->req->currency,
                               a->req->overdraft_limit, out, st);
}

static grpc_status_code open_account(trpc_call *call, const Tally__V1__OpenAccountRequest *req,
                                     Tally__V1__OpenAccountResponse *resp)
{
    struct cmd c;
    enum cmd_begin_result r;
    trpc_status st;
    struct open_arg a = {NULL, req};

    if (cmd_begin(&c, call, "OpenAccount", &req->base, req->idempotency_key, NULL, &resp->base, &r,
                  &st) != GRPC_STATUS_OK ||
        r == CMD_REPLAYED)
        return finish(call, &st);
    a.account_id = optional_id(call, "account_id", req->account_id, &st);
    if (a.account_id == NULL)
        return finish(call, &st);
    resp->account_id = (char *)a.account_id;
    cmd_account(&c, a.account_id, NULL, decide_open, &a, &st);
    return finish(call, &st);
}

/* ---- Deposit, Withdraw ---- */

static grpc_status_code decide_deposit(const struct account_state *s,
                                       const struct account_payment_info *p, const void *arg,
                                       struct account_event *out, trpc_status *st)
{
    const Tally__V1__DepositRequest *req = arg;

    (void)p;
    return account_decide_deposit(s, req->amount, req->reference, out, st);
}

static grpc_status_code deposit(trpc_call *call, const Tally__V1__DepositRequest *req,
                                Tally__V1__CommandResponse *resp)
{
    struct cmd c;
    enum cmd_begin_result r;
    trpc_status st;
    const char *id;

    if (cmd_begin(&c, call, "Deposit", &req->base, req->idempotency_key, req->expected_version,
                  &resp->base, &r, &st) != GRPC_STATUS_OK ||
        r == CMD_REPLAYED)
        return finish(call, &st);
    if ((id = account_id_of(call, "account_id", req->account_id, &st)) != NULL)
        cmd_account(&c, id, NULL, decide_deposit, req, &st);
    return finish(call, &st);
}

static grpc_status_code decide_withdraw(const struct account_state *s,
                                        const struct account_payment_info *p, const void *arg,
                                        struct account_event *out, trpc_status *st)
{
    const Tally__V1__WithdrawRequest *req = arg;

    (void)p;
    return account_decide_withdraw(s, req->amount, req->reference, out, st);
}

static grpc_status_code withdraw(trpc_call *call, const Tally__V1__WithdrawRequest *req,
                                 Tally__V1__CommandResponse *resp)
{
    struct cmd c;
    enum cmd_begin_result r;
    trpc_status st;
    const char *id;

    if (cmd_begin(&c, call, "Withdraw", &req->base, req->idempotency_key, req->expected_version,
                  &resp->base, &r, &st) != GRPC_STATUS_OK ||
        r == CMD_REPLAYED)
        return finish(call, &st);
    if ((id = account_id_of(call, "account_id", req->account_id, &st)) != NULL)
        cmd_account(&c, id, NULL, decide_withdraw, req, &st);
    return finish(call, &st);
}

/* ---- Pay, Refund ---- */

struct pay_arg {
    const char *payment_id;
    const Tally__V1__PayRequest *req;
};

static grpc_status_code decide_pay(const struct account_state *s,
                                   const struct account_payment_info *p, const void *arg,
                                   struct account_event *out, trpc_status *st)
{
    const struct pay_arg *a = arg;

    return account_decide_pay(s, a->payment_id, p, a->req->amount, a->req->merchant_reference, out,
                              st);
}

static grpc_status_code pay(trpc_call *call, const Tally__V1__PayRequest *req,
                            Tally__V1__PayResponse *resp)
{
    struct cmd c;
    enum cmd_begin_result r;
    trpc_status st;
    const char *id;
    struct pay_arg a = {NULL, req};

    if (cmd_begin(&c, call, "Pay", &req->base, req->idempotency_key, req->expected_version,
                  &resp->base, &r, &st) != GRPC_STATUS_OK ||
        r == CMD_REPLAYED)
        return finish(call, &st);
    if ((id = account_id_of(call, "account_id", req->account_id, &st)) == NULL ||
        (a.payment_id = optional_id(call, "payment_id", req->payment_id, &st)) == NULL)
        return finish(call, &st);
    resp->payment_id = (char *)a.payment_id;
    cmd_account(&c, id, a.payment_id, decide_pay, &a, &st);
    return finish(call, &st);
}

struct refund_arg {
    const char *payment_id;
    const Tally__V1__RefundRequest *req;
};

static grpc_status_code decide_refund(const struct account_state *s,
                                      const struct account_payment_info *p, const void *arg,
                                      struct account_event *out, trpc_status *st)
{
    const struct refund_arg *a = arg;

    return account_decide_refund(s, a->payment_id, p, a->req->amount, out, st);
}

static grpc_status_code refund(trpc_call *call, const Tally__V1__RefundRequest *req,
                               Tally__V1__CommandResponse *resp)
{
    struct cmd c;
    enum cmd_begin_result r;
    trpc_status st;
    const char *id;
    struct refund_arg a = {NULL, req};

    if (cmd_begin(&c, call, "Refund", &req->base, req->idempotency_key, req->expected_version,
                  &resp->base, &r, &st) != GRPC_STATUS_OK ||
        r == CMD_REPLAYED)
        return finish(call, &st);
    if ((id = account_id_of(call, "account_id", req->account_id, &st)) == NULL ||
        (a.payment_id = account_id_of(call, "payment_id", req->payment_id, &st)) == NULL)
        return finish(call, &st);
    cmd_account(&c, id, a.payment_id, decide_refund, &a, &st);
    return finish(call, &st);
}

/* ---- Freeze, Unfreeze, Close ---- */

static grpc_status_code decide_freeze(const struct account_state *s,
                                      const struct account_payment_info *p, const void *arg,
                                      struct account_event *out, trpc_status *st)
{
    (void)p;
    return account_decide_freeze(s, arg, out, st);
}

static grpc_status_code decide_unfreeze(const struct account_state *s,
                                        const struct account_payment_info *p, const void *arg,
                                        struct account_event *out, trpc_status *st)
{
    (void)p;
    return account_decide_unfreeze(s, arg, out, st);
}

static grpc_status_code decide_close(const struct account_state *s,
                                     const struct account_payment_info *p, const void *arg,
                                     struct account_event *out, trpc_status *st)
{
    (void)p;
    return account_decide_close(s, arg, out, st);
}

/* The three status commands share their shape: account id, reason. */
static grpc_status_code status_command(trpc_call *call, const char *kind,
                                       const ProtobufCMessage *req, const char *account_id,
                                       const char *reason, const char *idem_key,
                                       const Google__Protobuf__Int64Value *expected,
                                       cmd_account_decide_fn decide,
                                       Tally__V1__CommandResponse *resp)
{
    struct cmd c;
    enum cmd_begin_result r;
    trpc_status st;
    const char *id;

    if (cmd_begin(&c, call, kind, req, idem_key, expected, &resp->base, &r, &st) !=
            GRPC_STATUS_OK ||
        r == CMD_REPLAYED)
        return finish(call, &st);
    if ((id = account_id_of(call, "account_id", account_id, &st)) != NULL)
        cmd_account(&c, id, NULL, decide, reason, &st);
    return finish(call, &st);
}

static grpc_status_code freeze_account(trpc_call *call, const Tally__V1__FreezeAccountRequest *req,
                                       Tally__V1__CommandResponse *resp)
{
    return status_command(call, "FreezeAccount", &req->base, req->account_id, req->reason,
                          req->idempotency_key, req->expected_version, decide_freeze, resp);
}

static grpc_status_code unfreeze_account(trpc_call *call,
                                         const Tally__V1__UnfreezeAccountRequest *req,
                                         Tally__V1__CommandResponse *resp)
{
    return status_command(call, "UnfreezeAccount", &req->base, req->account_id, req->reason,
                          req->idempotency_key, req->expected_version, decide_unfreeze, resp);
}

static grpc_status_code close_account(trpc_call *call, const Tally__V1__CloseAccountRequest *req,
                                      Tally__V1__CommandResponse *resp)
{
    return status_command(call, "CloseAccount", &req->base, req->account_id, req->reason,
                          req->idempotency_key, req->expected_version, decide_close, resp);
}

/* ---- Transfer ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* With `wait`: polls the transfer's operation until the saga has finished
 * it, bounded by the call's deadline, then stores the final answer for
 * retries with the same idempotency key. */
static grpc_status_code transfer_wait(struct cmd *c, Tally__V1__TransferResponse *resp,
                                      trpc_status *st)
{
    char status[16], reason[TEXT_FIELD_SIZE];
    long delay = 2;
    const char *op = resp->result->operation_id;
    struct store_position last;
    Tally__V1__Position *pos;
    int64_t version;

    for (;;) {
        if (store_operation_status(c->conn, c->who.tenant_id, op, status, sizeof(status), reason,
                                   sizeof(reason), st) != GRPC_STATUS_OK)
            return st->code;
        if (strcmp(status, "PENDING") != 0)
            break;
        if (trpc_call_is_cancelled(c->call) || trpc_call_ms_left(c->call) <= delay)
            return trpc_status_set(st, GRPC_STATUS_DEADLINE_EXCEEDED, "transfer %s still pending",
                                   resp->transfer_id);
        sleep_ms(delay);
        delay = delay < 50 ? delay * 2 : 50;
    }
    resp->status = strcmp(status, "SUCCEEDED") == 0
                       ? TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED
                       : TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED;
    resp->failure_reason = trpc_call_strdup(c->call, reason);
    /* The saga's outcome event is the transfer stream's last one and comes
     * after both legs: its position makes min_position see the balances
     * after the transfer (read-your-writes). */
    if (store_stream_last(c->conn, c->who.tenant_id, TRANSFER_AGGREGATE_TYPE, resp->transfer_id,
                          &version, &last, st) != GRPC_STATUS_OK)
        return st->code;
    pos = (Tally__V1__Position *)trpc_call_new_message(c->call, &tally__v1__position__descriptor);
    pos->tx_id = last.tx_id;
    pos->global_position = last.global_position;
    resp->result->position = pos;
    resp->result->version = version;
    if (c->idem_key) {
        size_t len;
        uint8_t *buf;

        resp->result->position = NULL; /* stored without it, as at append */
        len = protobuf_c_message_get_packed_size(&resp->base);
        buf = trpc_call_alloc(c->call, len ? len : 1);
        protobuf_c_message_pack(&resp->base, buf);
        resp->result->position = pos;
        if (store_idem_set_response(c->conn, c->who.tenant_id, c->idem_key, buf, len, last, st) !=
            GRPC_STATUS_OK)
            return st->code;
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

static grpc_status_code transfer(trpc_call *call, const Tally__V1__TransferRequest *req,
                                 Tally__V1__TransferResponse *resp)
{
    struct cmd c;
    enum cmd_begin_result r;
    trpc_status st;
    const char *src, *dst, *id;
    int fresh = 0;

    if (cmd_begin(&c, call, "Transfer", &req->base, req->idempotency_key, req->expected_version,
                  &resp->base, &r, &st) != GRPC_STATUS_OK)
        return finish(call, &st);
    if (r == CMD_REPLAYED) {
        if (req->wait && resp->status == TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_PENDING)
            transfer_wait(&c, resp, &st);
        return finish(call, &st);
    }
    if ((src = account_id_of(call, "source_account_id", req->source_account_id, &st)) == NULL ||
        (dst = account_id_of(call, "destination_account_id", req->destination_account_id, &st)) ==
            NULL ||
        (id = optional_id(call, "transfer_id", req->transfer_id, &st)) == NULL)
        return finish(call, &st);
    resp->transfer_id = (char *)id;
    resp->status = TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_PENDING;
    for (int attempt = 0;; attempt++) {
        struct account_state s, d;
        struct transfer_state t;
        struct transfer_event ev;
        struct transfer_event_pb pb;
        Tally__V1__Event env = TALLY__V1__EVENT__INIT;
        enum store_conflict conflict;

        if (attempt >= c.env->max_attempts) {
            trpc_status_set(&st, GRPC_STATUS_ABORTED, "too many concurrent writes, try again");
            return finish(call, &st);
        }
        if (cmd_load_account(&c, src, fresh, &s, &st) != GRPC_STATUS_OK ||
            cmd_load_account(&c, dst, fresh, &d, &st) != GRPC_STATUS_OK)
            return finish(call, &st);
        if (c.has_expected && s.version != c.expected_version) {
            if (!fresh) {
                fresh = 1;
                continue;
            }
            trpc_status_set(&st, GRPC_STATUS_ABORTED,
                            "expected version %lld, current version %lld of the source account",
                            (long long)c.expected_version, (long long)s.version);
            return finish(call, &st);
        }
        transfer_state_init(&t);
        if (transfer_decide_request(&t, id, src, dst, &s, &d, req->amount, req->reference, &ev,
                                    &st) != GRPC_STATUS_OK) {
            /* a refusal on cached states is confirmed against the log */
            if (st.code != GRPC_STATUS_INVALID_ARGUMENT && !fresh) {
                fresh = 1;
                continue;
            }
            cmd_fail(&c, &st);
            return finish(call, &st);
        }
        transfer_event_to_proto(&ev, &pb, &env);
        if (cmd_append(&c, TRANSFER_AGGREGATE_TYPE, id, 1, &env, "PENDING", NULL, &conflict, &st) ==
            GRPC_STATUS_OK)
            break;
        if (conflict == STORE_CONFLICT_VERSION) {
            trpc_status_set(&st, GRPC_STATUS_ALREADY_EXISTS, "transfer already exists");
            cmd_fail(&c, &st);
            return finish(call, &st);
        }
        if (conflict == STORE_CONFLICT_IDEMPOTENCY) {
            if (cmd_replay_stored(&c, &st) == GRPC_STATUS_OK && req->wait &&
                resp->status == TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_PENDING)
                transfer_wait(&c, resp, &st);
            return finish(call, &st);
        }
        return finish(call, &st);
    }
    if (req->wait)
        transfer_wait(&c, resp, &st);
    return finish(call, &st);
}

const Tally__V1__CommandService_TrpcHandlers command_handlers = {
    .open_account = open_account,
    .deposit = deposit,
    .withdraw = withdraw,
    .transfer = transfer,
    .pay = pay,
    .refund = refund,
    .freeze_account = freeze_account,
    .unfreeze_account = unfreeze_account,
    .close_account = close_account,
};
