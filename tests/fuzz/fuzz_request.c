/* fuzz_request.c - libFuzzer target: every RPC request of tally.v1, decoded
 * by protobuf-c as the runtime decodes it, then run through the pure
 * validation its handler runs, and for commands the domain's decide
 * functions on fixed account states (no database, no network).
 *
 * Input: byte 0 picks the RPC (index into CommandService, QueryService,
 * SubscriptionService methods, in that order, mod their number); byte 1
 * picks the fixed states (bits 0-2 the account, 3-4 the payment, 5-7 a
 * second account: a transfer's destination); the rest is the request's
 * protobuf wire bytes.
 *
 * Mirrors (keep in step when a handler changes):
 *   commands  server/command/handlers.c + the request checks of cmd_begin
 *             in exec.c (idempotency_key 1..128 bytes of UTF-8,
 *             expected_version >= 0), then account_decide_* /
 *             transfer_decide_request (and, for a transfer, the saga's
 *             debit, credit and reversal on the loaded states);
 *   queries   server/query/log_rpcs.c and qexec.c (included below, so
 *             qry_page_size, qry_timestamp_us and aggregate_type_check are
 *             the real ones) and rm_rpcs.c (parse_day, int64_key and
 *             status_filter through fuzz_request_rm.c), with page tokens
 *             decoded by cursor.c for a fixed tenant;
 *   Subscribe logread_filter_check (shared with ReadAll).
 *
 * Invariants: unpack never crashes; a check answers OK or a code the
 * contract allows, with a non-empty printable-ASCII message on error; ids
 * accepted are canonical lower case; page sizes land in 1..max; every event
 * a decide function emits evolves the state it was decided on (version + 1,
 * balance within the overdraft after a debit), survives its stored form
 * (payload -> JSON text: valid UTF-8 that parses without U+0000 -> payload
 * -> event) and
 * evolves to the same state from there. Every RPC of the three services
 * must have a checker here: a new RPC aborts the first run until it gets
 * one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tally/v1/command.trpc.h"
#include "tally/v1/query.trpc.h"
#include "tally/v1/subscription.trpc.h"

#include "account.h"
#include "cursor.h"
#include "evcodec.h"
#include "fuzz_common.h"
#include "fuzz_request_rm.h"
#include "logread.h"
#include "money.h"
#include "qexec.h"
#include "tally_limits.h"
#include "text.h"
#include "transfer.h"
#include "uuid.h"

/* The query handlers' own checks (static there). */
#include "log_rpcs.c"
#include "qexec.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OK GRPC_STATUS_OK

/* Ids the handlers would generate (uuid_v7_new) for an empty optional id. */
#define GENERATED_ACCOUNT_ID  "0190a0b0-c0d0-7000-8000-000000000001"
#define GENERATED_PAYMENT_ID  "0190a0b0-c0d0-7000-8000-000000000002"
#define GENERATED_TRANSFER_ID "0190a0b0-c0d0-7000-8000-000000000003"
/* The caller's tenant (page-token fingerprints include it). */
#define TENANT_ID "0190a0b0-c0d0-7000-8000-0000000000ee"

struct fixture {
    unsigned account, payment, other; /* selectors from byte 1 */
};

/* ---- fixed states ---- */

static void make_account(unsigned variant, const char *id, struct account_state *s)
{
    static const struct {
        enum account_status status;
        const char *currency;
        int64_t balance, overdraft, version;
    } v[8] = {
        {ACCOUNT_STATUS_NONE, "", 0, 0, 0},
        {ACCOUNT_STATUS_OPEN, "EUR", 10000, 0, 5},
        {ACCOUNT_STATUS_OPEN, "EUR", -50, 100, 3},
        {ACCOUNT_STATUS_FROZEN, "EUR", 700, 0, 4},
        {ACCOUNT_STATUS_CLOSED, "EUR", 0, 0, 9},
        {ACCOUNT_STATUS_OPEN, "JPY", INT64_MAX - 5, 0, 2},
        {ACCOUNT_STATUS_OPEN, "EUR", INT64_MIN + 10, INT64_MAX, 7},
        {ACCOUNT_STATUS_OPEN, "KWD", 0, 0, 1},
    };
    unsigned i = variant & 7;

    account_state_init(s);
    if (v[i].status == ACCOUNT_STATUS_NONE)
        return;
    s->exists = true;
    uuid_normalize(id, s->account_id);
    snprintf(s->owner, sizeof(s->owner), "fuzz owner");
    snprintf(s->currency, sizeof(s->currency), "%s", v[i].currency);
    s->balance = v[i].balance;
    s->overdraft_limit = v[i].overdraft;
    s->status = v[i].status;
    s->version = v[i].version;
}

/* NULL for "no such payment". */
static const struct account_payment_info *make_payment(unsigned variant,
                                                       struct account_payment_info *p)
{
    account_payment_info_init(p);
    switch (variant & 3) {
    case 0:
        return NULL;
    case 1:
        *p = (struct account_payment_info){true, 500, 0, "EUR"};
        break;
    case 2:
        *p = (struct account_payment_info){true, 500, 500, "EUR"};
        break;
    default:
        *p = (struct account_payment_info){true, 1000, 1, "JPY"};
        break;
    }
    return p;
}

/* ---- result checks ---- */

static void check_code(const char *what, grpc_status_code code, const trpc_status *st,
                       int allow_domain)
{
    int allowed = code == OK || code == GRPC_STATUS_INVALID_ARGUMENT;

    if (allow_domain)
        allowed = allowed || code == GRPC_STATUS_NOT_FOUND || code == GRPC_STATUS_ALREADY_EXISTS ||
                  code == GRPC_STATUS_FAILED_PRECONDITION;
    FUZZ_CHECK(allowed, "%s: unexpected status %s: %s", what, trpc_status_code_name(code), st->msg);
    FUZZ_CHECK(code == st->code, "%s: returned %d, status says %d", what, (int)code, (int)st->code);
    if (code != OK)
        FUZZ_CHECK(fuzz_is_safe_message(st->msg), "%s: message not client-safe: \"%s\"", what,
                   st->msg);
}

static void check_canonical_id(const char *what, const char *id)
{
    FUZZ_CHECK(uuid_is_valid(id), "%s: accepted id %s is not a uuid", what, id);
    for (const char *p = id; *p; p++)
        FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'), "%s: accepted id %s is not lower case", what, id);
}

/* The JSON text a payload is stored as: valid UTF-8 without U+0000 (what
 * jsonb takes). Returns it (free()). */
static char *stored_text(const Tally__V1__Event *env)
{
    trpc_status st;
    json_t *j = evcodec_payload_to_json(env, &st);
    char *text;

    FUZZ_CHECK(j != NULL, "%s: payload does not encode: %s", env->event_type, st.msg);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    FUZZ_CHECK(text != NULL, "json_dumps failed");
    FUZZ_CHECK(text_is_utf8(text, strlen(text)), "%s: stored form is not utf-8", env->event_type);
    {
        /* jansson, like jsonb, refuses \u0000 in a string unless told otherwise */
        json_error_t err;
        json_t *back = json_loads(text, 0, &err);

        FUZZ_CHECK(back != NULL, "%s: stored form does not parse (%s): %s", env->event_type,
                   err.text, text);
        json_decref(back);
    }
    return text;
}

static void check_same_state(const struct account_state *a, const struct account_state *b)
{
    FUZZ_CHECK(a->exists == b->exists && a->balance == b->balance &&
                   a->overdraft_limit == b->overdraft_limit && a->status == b->status &&
                   a->version == b->version && strcmp(a->account_id, b->account_id) == 0 &&
                   strcmp(a->owner, b->owner) == 0 && strcmp(a->currency, b->currency) == 0,
               "state after the stored event differs from the state after the decided one");
}

/* An account event decide emitted on s: evolves, and survives storage. */
static void check_account_event(const struct account_state *s, const struct account_event *ev)
{
    struct account_state next = *s, again = *s;
    struct account_event back;
    struct account_event_pb pb, pb2;
    Tally__V1__Event env = TALLY__V1__EVENT__INIT, env2 = TALLY__V1__EVENT__INIT,
                     env3 = TALLY__V1__EVENT__INIT;
    trpc_status st;
    char *text, *text3;
    Tally__V1__Event__PayloadCase t = ev->type;

    FUZZ_CHECK(account_evolve(&next, ev, &st) == OK, "decided %s does not evolve: %s",
               account_event_type_name(t), st.msg);
    FUZZ_CHECK(next.version == s->version + 1, "version %lld after %lld", (long long)next.version,
               (long long)s->version);
    if (t == TALLY__V1__EVENT__PAYLOAD_WITHDRAWN || t == TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE ||
        t == TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED)
        FUZZ_CHECK(next.balance >= -next.overdraft_limit && next.balance < s->balance,
                   "debit left balance %lld (was %lld, overdraft %lld)", (long long)next.balance,
                   (long long)s->balance, (long long)next.overdraft_limit);

    account_event_to_proto(ev, &pb, &env);
    text = stored_text(&env);
    FUZZ_CHECK(evcodec_payload_from_json(&env2, env.event_type, text, strlen(text), &st) == OK,
               "stored %s does not decode: %s\n%s", env.event_type, st.msg, text);
    env2.version = s->version + 1;
    FUZZ_CHECK(account_event_from_proto(&env2, &back, &st) == OK, "stored %s is malformed: %s",
               env.event_type, st.msg);
    FUZZ_CHECK(account_evolve_proto(&again, &env2, &st) == OK, "stored %s does not evolve: %s",
               env.event_type, st.msg);
    check_same_state(&next, &again);
    account_event_to_proto(&back, &pb2, &env3);
    text3 = stored_text(&env3);
    FUZZ_CHECK(strcmp(text, text3) == 0, "stored form changed by a round trip:\n%s\n%s", text,
               text3);
    evcodec_payload_clear(&env2);
    free(text);
    free(text3);
}

static void check_transfer_event(const struct transfer_state *t, const struct transfer_event *ev)
{
    struct transfer_state next = *t, again = *t;
    struct transfer_event_pb pb;
    Tally__V1__Event env = TALLY__V1__EVENT__INIT, env2 = TALLY__V1__EVENT__INIT;
    trpc_status st;
    char *text;

    FUZZ_CHECK(transfer_evolve(&next, ev, &st) == OK, "decided transfer event does not evolve: %s",
               st.msg);
    transfer_event_to_proto(ev, &pb, &env);
    text = stored_text(&env);
    FUZZ_CHECK(evcodec_payload_from_json(&env2, env.event_type, text, strlen(text), &st) == OK,
               "stored %s does not decode: %s", env.event_type, st.msg);
    env2.version = t->version + 1;
    FUZZ_CHECK(transfer_evolve_proto(&again, &env2, &st) == OK, "stored %s does not evolve: %s",
               env.event_type, st.msg);
    FUZZ_CHECK(again.status == next.status && again.amount.minor_units == next.amount.minor_units &&
                   strcmp(again.reference, next.reference) == 0 &&
                   strcmp(again.transfer_id, next.transfer_id) == 0,
               "transfer state after the stored event differs");
    evcodec_payload_clear(&env2);
    free(text);
}

/* ---- commands ---- */

/* cmd_begin's request checks. OK to go on. */
static grpc_status_code begin(const char *idem_key, const Google__Protobuf__Int64Value *expected,
                              trpc_status *st)
{
    trpc_status_set(st, OK, "ok");
    if (expected && expected->value < 0)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "expected_version must be >= 0");
    if (idem_key && idem_key[0])
        text_check("idempotency_key", idem_key, 1, TALLY_MAX_IDEMPOTENCY_BYTES, st);
    check_code("idempotency_key", st->code, st, 0);
    return st->code;
}

/* handlers.c account_id_of: checked and lower-cased. */
static grpc_status_code id_of(const char *field, const char *value, char out[UUID_STR_SIZE],
                              trpc_status *st)
{
    grpc_status_code code = uuid_check(field, value, out, st);

    check_code(field, code, st, 0);
    if (code == OK)
        check_canonical_id(field, out);
    return code;
}

/* handlers.c optional_id: the caller's (checked) or a generated one. */
static grpc_status_code optional_id(const char *field, const char *value, const char *generated,
                                    char out[UUID_STR_SIZE], trpc_status *st)
{
    if (value == NULL || value[0] == '\0') {
        snprintf(out, UUID_STR_SIZE, "%s", generated);
        return trpc_status_set(st, OK, "ok");
    }
    return id_of(field, value, out, st);
}

/* Runs a decide result through the checks. */
static void decided(const char *what, grpc_status_code code, const trpc_status *st,
                    const struct account_state *s, const struct account_event *ev)
{
    check_code(what, code, st, 1);
    if (code == OK)
        check_account_event(s, ev);
}

static void cmd_open_account(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__OpenAccountRequest *r = (const Tally__V1__OpenAccountRequest *)m;
    char id[UUID_STR_SIZE];
    struct account_state s;
    struct account_event ev;
    trpc_status st;

    if (begin(r->idempotency_key, NULL, &st) != OK ||
        optional_id("account_id", r->account_id, GENERATED_ACCOUNT_ID, id, &st) != OK)
        return;
    /* OpenAccount treats the stream as new; an existing one is ALREADY_EXISTS
     * at append (and here for the selectors that make it exist) */
    make_account(fx->account, id, &s);
    decided("OpenAccount",
            account_decide_open(&s, id, r->owner, r->currency, r->overdraft_limit, &ev, &st), &st,
            &s, &ev);
}

static void cmd_deposit(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__DepositRequest *r = (const Tally__V1__DepositRequest *)m;
    char id[UUID_STR_SIZE];
    struct account_state s;
    struct account_event ev;
    trpc_status st;

    if (begin(r->idempotency_key, r->expected_version, &st) != OK ||
        id_of("account_id", r->account_id, id, &st) != OK)
        return;
    make_account(fx->account, id, &s);
    decided("Deposit", account_decide_deposit(&s, r->amount, r->reference, &ev, &st), &st, &s, &ev);
}

static void cmd_withdraw(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__WithdrawRequest *r = (const Tally__V1__WithdrawRequest *)m;
    char id[UUID_STR_SIZE];
    struct account_state s;
    struct account_event ev;
    trpc_status st;

    if (begin(r->idempotency_key, r->expected_version, &st) != OK ||
        id_of("account_id", r->account_id, id, &st) != OK)
        return;
    make_account(fx->account, id, &s);
    decided("Withdraw", account_decide_withdraw(&s, r->amount, r->reference, &ev, &st), &st, &s,
            &ev);
}

static void cmd_pay(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__PayRequest *r = (const Tally__V1__PayRequest *)m;
    char id[UUID_STR_SIZE], pid[UUID_STR_SIZE];
    struct account_state s;
    struct account_payment_info pinfo;
    const struct account_payment_info *p;
    struct account_event ev;
    trpc_status st;

    if (begin(r->idempotency_key, r->expected_version, &st) != OK ||
        id_of("account_id", r->account_id, id, &st) != OK ||
        optional_id("payment_id", r->payment_id, GENERATED_PAYMENT_ID, pid, &st) != OK)
        return;
    make_account(fx->account, id, &s);
    p = make_payment(fx->payment, &pinfo);
    decided("Pay", account_decide_pay(&s, pid, p, r->amount, r->merchant_reference, &ev, &st), &st,
            &s, &ev);
}

static void cmd_refund(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__RefundRequest *r = (const Tally__V1__RefundRequest *)m;
    char id[UUID_STR_SIZE], pid[UUID_STR_SIZE];
    struct account_state s;
    struct account_payment_info pinfo;
    const struct account_payment_info *p;
    struct account_event ev;
    trpc_status st;

    if (begin(r->idempotency_key, r->expected_version, &st) != OK ||
        id_of("account_id", r->account_id, id, &st) != OK ||
        id_of("payment_id", r->payment_id, pid, &st) != OK)
        return;
    make_account(fx->account, id, &s);
    p = make_payment(fx->payment, &pinfo);
    decided("Refund", account_decide_refund(&s, pid, p, r->amount, &ev, &st), &st, &s, &ev);
}

typedef grpc_status_code (*status_decide_fn)(const struct account_state *s, const char *reason,
                                             struct account_event *out, trpc_status *st);

static void status_command(const char *what, const char *account_id, const char *reason,
                           const char *idem_key, const Google__Protobuf__Int64Value *expected,
                           status_decide_fn decide, const struct fixture *fx)
{
    char id[UUID_STR_SIZE];
    struct account_state s;
    struct account_event ev;
    trpc_status st;

    if (begin(idem_key, expected, &st) != OK || id_of("account_id", account_id, id, &st) != OK)
        return;
    make_account(fx->account, id, &s);
    decided(what, decide(&s, reason, &ev, &st), &st, &s, &ev);
}

static void cmd_freeze(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__FreezeAccountRequest *r = (const Tally__V1__FreezeAccountRequest *)m;

    status_command("FreezeAccount", r->account_id, r->reason, r->idempotency_key,
                   r->expected_version, account_decide_freeze, fx);
}

static void cmd_unfreeze(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__UnfreezeAccountRequest *r = (const Tally__V1__UnfreezeAccountRequest *)m;

    status_command("UnfreezeAccount", r->account_id, r->reason, r->idempotency_key,
                   r->expected_version, account_decide_unfreeze, fx);
}

static void cmd_close(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__CloseAccountRequest *r = (const Tally__V1__CloseAccountRequest *)m;

    status_command("CloseAccount", r->account_id, r->reason, r->idempotency_key,
                   r->expected_version, account_decide_close, fx);
}

/* The saga's steps on the states the request was decided on. */
static void saga_steps(const struct transfer_event *req, const struct account_state *src,
                       const struct account_state *dst)
{
    const char *tid = req->u.transfer_requested.transfer_id;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    struct account_state s = *src, d = *dst;
    struct account_event ev;
    trpc_status st;
    grpc_status_code code;

    amount.minor_units = req->u.transfer_requested.amount.minor_units;
    amount.currency = (char *)req->u.transfer_requested.amount.currency;
    code = account_decide_transfer_debit(&s, tid, &amount, d.account_id, &ev, &st);
    decided("TransferDebit", code, &st, &s, &ev);
    if (code != OK)
        return;
    FUZZ_CHECK(account_evolve(&s, &ev, &st) == OK, "debit: %s", st.msg);
    code = account_decide_transfer_credit(&d, tid, &amount, s.account_id, &ev, &st);
    decided("TransferCredit", code, &st, &d, &ev);
    if (code == OK)
        return;
    /* the credit failed: the reversal must always be possible */
    code = account_decide_transfer_debit_reverse(&s, tid, &amount, d.account_id,
                                                 "destination refused the credit", &ev, &st);
    FUZZ_CHECK(code == OK, "reversal after a debit refused: %s", st.msg);
    check_account_event(&s, &ev);
}

static void cmd_transfer(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__TransferRequest *r = (const Tally__V1__TransferRequest *)m;
    char src[UUID_STR_SIZE], dst[UUID_STR_SIZE], tid[UUID_STR_SIZE];
    struct account_state s, d;
    struct transfer_state t;
    struct transfer_event ev;
    trpc_status st;
    grpc_status_code code;

    if (begin(r->idempotency_key, r->expected_version, &st) != OK ||
        id_of("source_account_id", r->source_account_id, src, &st) != OK ||
        id_of("destination_account_id", r->destination_account_id, dst, &st) != OK ||
        optional_id("transfer_id", r->transfer_id, GENERATED_TRANSFER_ID, tid, &st) != OK)
        return;
    make_account(fx->account, src, &s);
    if (strcmp(src, dst) == 0)
        d = s; /* the handler loads the same stream twice */
    else
        make_account(fx->other, dst, &d);
    transfer_state_init(&t);
    code = transfer_decide_request(&t, tid, src, dst, &s, &d, r->amount, r->reference, &ev, &st);
    check_code("Transfer", code, &st, 1);
    if (code != OK)
        return;
    FUZZ_CHECK(strcmp(src, dst) != 0, "a transfer to the source itself was accepted");
    check_transfer_event(&t, &ev);
    saga_steps(&ev, &s, &d);
}

/* ---- queries ---- */

/* qry_begin's request check. */
static grpc_status_code min_position(const Tally__V1__Position *p, trpc_status *st)
{
    trpc_status_set(st, OK, "ok");
    if (p && (p->tx_id || p->global_position) && p->global_position < 0)
        trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                        "min_position.global_position must be >= 0");
    check_code("min_position", st->code, st, 0);
    return st->code;
}

static grpc_status_code page_size(const char *field, int32_t requested, int def, int max,
                                  trpc_status *st)
{
    int n = -1;
    grpc_status_code code = qry_page_size(field, requested, def, max, &n, st);

    if (code != OK)
        st->code = code;
    else
        trpc_status_set(st, OK, "ok");
    check_code(field, code, st, 0);
    if (code == OK)
        FUZZ_CHECK(n >= 1 && n <= max && (requested == 0 ? n == def : n == requested),
                   "%s: %d from %d", field, n, (int)requested);
    return code;
}

static grpc_status_code timestamp(const char *field, const Google__Protobuf__Timestamp *ts,
                                  int64_t *us, trpc_status *st)
{
    grpc_status_code code;

    *us = 0;
    if (ts == NULL)
        return trpc_status_set(st, OK, "ok");
    code = qry_timestamp_us(field, ts, us, st);
    if (code != OK)
        st->code = code;
    else
        trpc_status_set(st, OK, "ok");
    check_code(field, code, st, 0);
    return code;
}

static grpc_status_code text_field(const char *field, const char *s, size_t min, size_t max,
                                   trpc_status *st)
{
    grpc_status_code code = text_check(field, s, min, max, st);

    check_code(field, code, st, 0);
    return code;
}

static grpc_status_code filter(const Tally__V1__EventFilter *f, trpc_status *st)
{
    grpc_status_code code = logread_filter_check(f, st);

    check_code("filter", code, st, 0);
    if (code == OK && f && f->aggregate_id[0])
        FUZZ_CHECK(uuid_is_valid(f->aggregate_id), "filter.aggregate_id accepted: %s",
                   f->aggregate_id);
    return code;
}

static void q_get_account(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__GetAccountRequest *r = (const Tally__V1__GetAccountRequest *)m;
    char id[UUID_STR_SIZE];
    trpc_status st;

    (void)fx;
    if (min_position(r->min_position, &st) == OK)
        id_of("account_id", r->account_id, id, &st);
}

/* A page token as the handler decodes it (fingerprint of the fixed tenant
 * and the request's parameters); OK when there is none. */
static grpc_status_code page_token(const char *token, const char *kind, const char *const *params,
                                   char keys[][CURSOR_KEY_SIZE], size_t n, trpc_status *st)
{
    uint8_t fp[CURSOR_FP_LEN];
    grpc_status_code code;

    trpc_status_set(st, OK, "ok");
    if (token[0] == '\0')
        return OK;
    cursor_fingerprint(kind, TENANT_ID, params, 3, fp);
    code = cursor_decode(token, kind, fp, keys, n, st);
    check_code("page_token", code, st, 0);
    if (code == OK)
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(strlen(keys[i]) < CURSOR_KEY_SIZE, "page_token key %zu too long", i);
    return code;
}

static grpc_status_code int64_key(const char *s, trpc_status *st)
{
    int64_t v;
    grpc_status_code code = fuzz_rm_int64_key(s, &v, st);

    if (code != OK)
        check_code("page_token key", code, st, 0);
    return code;
}

/* rm_rpcs.c qry_list_accounts */
static void q_list_accounts(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__ListAccountsRequest *r = (const Tally__V1__ListAccountsRequest *)m;
    const char *status = fuzz_rm_status_filter(r->status);
    const char *params[3] = {status, r->owner[0] ? r->owner : NULL,
                             r->currency[0] ? r->currency : NULL};
    char keys[2][CURSOR_KEY_SIZE];
    trpc_status st;
    int64_t us;

    (void)fx;
    if (min_position(r->min_position, &st) != OK ||
        page_size("page_size", r->page_size, QRY_PAGE_DEFAULT, QRY_PAGE_MAX, &st) != OK ||
        text_field("owner", r->owner, 0, TALLY_MAX_TEXT_BYTES, &st) != OK)
        return;
    if (r->currency[0]) {
        grpc_status_code code = money_check_currency("currency", r->currency, &st);

        check_code("currency", code, &st, 0);
        if (code != OK)
            return;
    }
    if (r->status != TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_UNSPECIFIED && status == NULL)
        return; /* INVALID_ARGUMENT "unknown status" */
    if (page_token(r->page_token, "accounts", params, keys, 2, &st) == OK && r->page_token[0] &&
        fuzz_rm_account_cursor_key(keys, &us, &st) == OK) {
        /* the key reaches SQL as a timestamp in microseconds: it must be one
         * (qexec.c's range), or PostgreSQL fails the query */
        FUZZ_CHECK(us >= MIN_SECONDS * 1000000 && us <= MAX_SECONDS * 1000000 + 999999,
                   "page_token time key %s accepted: no timestamp", keys[0]);
    }
}

/* rm_rpcs.c qry_list_entries */
static void q_list_entries(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__ListEntriesRequest *r = (const Tally__V1__ListEntriesRequest *)m;
    char id[UUID_STR_SIZE], keys[1][CURSOR_KEY_SIZE], range[64], from[24], to[24];
    const char *params[3];
    int64_t from_us, to_us;
    trpc_status st;

    (void)fx;
    if (min_position(r->min_position, &st) != OK ||
        id_of("account_id", r->account_id, id, &st) != OK ||
        page_size("page_size", r->page_size, QRY_PAGE_DEFAULT, QRY_PAGE_MAX, &st) != OK ||
        timestamp("from_time", r->from_time, &from_us, &st) != OK ||
        timestamp("to_time", r->to_time, &to_us, &st) != OK)
        return;
    if (r->from_time && r->to_time && to_us <= from_us)
        return; /* INVALID_ARGUMENT "to_time must be after from_time" */
    snprintf(from, sizeof(from), "%lld", (long long)from_us);
    snprintf(to, sizeof(to), "%lld", (long long)to_us);
    snprintf(range, sizeof(range), "%s/%s", r->from_time ? from : "-", r->to_time ? to : "-");
    params[0] = id;
    params[1] = r->direction == TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS ? "backwards"
                                                                                    : "forwards";
    params[2] = range;
    if (page_token(r->page_token, "entries", params, keys, 1, &st) == OK && r->page_token[0])
        int64_key(keys[0], &st);
}

static void q_get_operation(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__GetOperationRequest *r = (const Tally__V1__GetOperationRequest *)m;
    char id[UUID_STR_SIZE];
    trpc_status st;

    (void)fx;
    if (min_position(r->min_position, &st) == OK)
        id_of("operation_id", r->operation_id, id, &st);
}

static void q_get_transfer(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__GetTransferRequest *r = (const Tally__V1__GetTransferRequest *)m;
    char id[UUID_STR_SIZE];
    trpc_status st;

    (void)fx;
    if (min_position(r->min_position, &st) == OK)
        id_of("transfer_id", r->transfer_id, id, &st);
}

static void q_get_account_at(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__GetAccountAtRequest *r = (const Tally__V1__GetAccountAtRequest *)m;
    char id[UUID_STR_SIZE];
    int64_t us;
    trpc_status st;

    (void)fx;
    if (id_of("account_id", r->account_id, id, &st) != OK)
        return;
    switch (r->at_case) {
    case TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_VERSION:
        break;
    case TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_TIME:
        /* unpack gives a set oneof message member a message, never NULL */
        FUZZ_CHECK(r->time != NULL, "time case without a message");
        timestamp("time", r->time, &us, &st);
        break;
    default:
        break;
    }
}

static void q_read_stream(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__ReadStreamRequest *r = (const Tally__V1__ReadStreamRequest *)m;
    char id[UUID_STR_SIZE];
    trpc_status st;
    grpc_status_code code;

    (void)fx;
    if (min_position(r->min_position, &st) != OK)
        return;
    code = aggregate_type_check(r->aggregate_type, &st);
    if (code != OK) {
        st.code = code;
        check_code("aggregate_type", code, &st, 0);
        return;
    }
    FUZZ_CHECK(strcmp(r->aggregate_type, "account") == 0 ||
                   strcmp(r->aggregate_type, "transfer") == 0,
               "aggregate_type accepted: %s", r->aggregate_type);
    if (id_of("aggregate_id", r->aggregate_id, id, &st) == OK)
        page_size("limit", r->limit, QRY_LIMIT_DEFAULT, LOGREAD_MAX_LIMIT, &st);
}

static void q_read_all(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__ReadAllRequest *r = (const Tally__V1__ReadAllRequest *)m;
    trpc_status st;

    (void)fx;
    if (min_position(r->min_position, &st) == OK && filter(r->filter, &st) == OK)
        page_size("limit", r->limit, QRY_LIMIT_DEFAULT, LOGREAD_MAX_LIMIT, &st);
}

static void q_list_by_correlation(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__ListEventsByCorrelationRequest *r =
        (const Tally__V1__ListEventsByCorrelationRequest *)m;
    trpc_status st;

    (void)fx;
    if (min_position(r->min_position, &st) == OK &&
        text_field("correlation_id", r->correlation_id, 1, TALLY_MAX_CORRELATION_BYTES, &st) == OK)
        page_size("limit", r->limit, QRY_LIMIT_DEFAULT, LOGREAD_MAX_LIMIT, &st);
}

/* rm_rpcs.c qry_get_tenant_usage */
static void q_tenant_usage(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__GetTenantUsageRequest *r = (const Tally__V1__GetTenantUsageRequest *)m;
    long from = 0, to = 0;
    trpc_status st;
    grpc_status_code code;

    (void)fx;
    if (min_position(r->min_position, &st) != OK)
        return;
    code = fuzz_rm_parse_day("from_date", r->from_date, &from, &st);
    if (code == OK)
        code = fuzz_rm_parse_day("to_date", r->to_date, &to, &st);
    if (code != OK) {
        check_code("date", code, &st, 0);
        return;
    }
    /* what reaches SQL as $2::date / $3::date: a plain YYYY-MM-DD */
    FUZZ_CHECK(strlen(r->from_date) == 10 && strlen(r->to_date) == 10, "dates %s %s", r->from_date,
               r->to_date);
    for (int i = 0; i < 10; i++)
        FUZZ_CHECK(i == 4 || i == 7 ? r->from_date[i] == '-' && r->to_date[i] == '-'
                                    : (r->from_date[i] >= '0' && r->from_date[i] <= '9') &&
                                          (r->to_date[i] >= '0' && r->to_date[i] <= '9'),
                   "a date the database must parse was accepted: \"%s\" .. \"%s\"", r->from_date,
                   r->to_date);
    FUZZ_CHECK(from >= 0 && to >= 0, "days %ld %ld", from, to);
}

static void q_projection_status(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__GetProjectionStatusRequest *r =
        (const Tally__V1__GetProjectionStatusRequest *)m;
    trpc_status st;

    (void)fx;
    min_position(r->min_position, &st);
}

static void s_subscribe(const ProtobufCMessage *m, const struct fixture *fx)
{
    const Tally__V1__SubscribeRequest *r = (const Tally__V1__SubscribeRequest *)m;
    trpc_status st;

    (void)fx;
    filter(r->filter, &st);
}

/* ---- dispatch ---- */

typedef void (*check_fn)(const ProtobufCMessage *m, const struct fixture *fx);

static const struct {
    const char *path;
    check_fn fn;
} checkers[] = {
    {"/tally.v1.CommandService/OpenAccount", cmd_open_account},
    {"/tally.v1.CommandService/Deposit", cmd_deposit},
    {"/tally.v1.CommandService/Withdraw", cmd_withdraw},
    {"/tally.v1.CommandService/Transfer", cmd_transfer},
    {"/tally.v1.CommandService/Pay", cmd_pay},
    {"/tally.v1.CommandService/Refund", cmd_refund},
    {"/tally.v1.CommandService/FreezeAccount", cmd_freeze},
    {"/tally.v1.CommandService/UnfreezeAccount", cmd_unfreeze},
    {"/tally.v1.CommandService/CloseAccount", cmd_close},
    {"/tally.v1.QueryService/GetAccount", q_get_account},
    {"/tally.v1.QueryService/ListAccounts", q_list_accounts},
    {"/tally.v1.QueryService/ListEntries", q_list_entries},
    {"/tally.v1.QueryService/GetOperation", q_get_operation},
    {"/tally.v1.QueryService/GetTransfer", q_get_transfer},
    {"/tally.v1.QueryService/GetAccountAt", q_get_account_at},
    {"/tally.v1.QueryService/ReadStream", q_read_stream},
    {"/tally.v1.QueryService/ReadAll", q_read_all},
    {"/tally.v1.QueryService/ListEventsByCorrelation", q_list_by_correlation},
    {"/tally.v1.QueryService/GetTenantUsage", q_tenant_usage},
    {"/tally.v1.QueryService/GetProjectionStatus", q_projection_status},
    {"/tally.v1.SubscriptionService/Subscribe", s_subscribe},
};

#define MAX_METHODS 64

static struct {
    const trpc_method_desc *m;
    check_fn fn;
} methods[MAX_METHODS];
static size_t n_methods;

static void init_methods(void)
{
    const trpc_service_desc *svcs[] = {
        &tally__v1__command_service__trpc_service,
        &tally__v1__query_service__trpc_service,
        &tally__v1__subscription_service__trpc_service,
    };

    for (size_t s = 0; s < sizeof(svcs) / sizeof(svcs[0]); s++)
        for (size_t i = 0; i < svcs[s]->n_methods; i++) {
            const trpc_method_desc *m = &svcs[s]->methods[i];
            check_fn fn = NULL;

            for (size_t c = 0; c < sizeof(checkers) / sizeof(checkers[0]); c++)
                if (strcmp(checkers[c].path, m->path) == 0)
                    fn = checkers[c].fn;
            FUZZ_CHECK(fn != NULL, "no checker for %s: add one to fuzz_request.c", m->path);
            FUZZ_CHECK(n_methods < MAX_METHODS, "too many methods");
            methods[n_methods].m = m;
            methods[n_methods].fn = fn;
            n_methods++;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fixture fx;
    const trpc_method_desc *m;
    ProtobufCMessage *req;

    if (n_methods == 0)
        init_methods();
    if (size < 2)
        return 0;
    m = methods[data[0] % n_methods].m;
    fx.account = data[1] & 7;
    fx.payment = (data[1] >> 3) & 3;
    fx.other = (data[1] >> 5) & 7;
    req = protobuf_c_message_unpack(m->input, NULL, size - 2, data + 2);
    if (req == NULL)
        return 0; /* the runtime answers INVALID_ARGUMENT */
    methods[data[0] % n_methods].fn(req, &fx);
    protobuf_c_message_free_unpacked(req, NULL);
    return 0;
}
