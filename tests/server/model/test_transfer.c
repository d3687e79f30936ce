/* test_transfer.c - the transfer aggregate: request validation against both
 * accounts, completion and failure, evolve, events in proto form, and a
 * whole saga run through the account functions it calls. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "transfer.h"

#define SRC        "0190a6e4-7b3c-7def-8abc-000000000001"
#define DST        "0190a6e4-7b3c-7def-8abc-000000000002"
#define DST_UPPER  "0190A6E4-7B3C-7DEF-8ABC-000000000002"
#define THIRD      "0190a6e4-7b3c-7def-8abc-000000000003"
#define TID        "0190a6e4-7b3c-7def-8abc-0000000000a1"
#define TID_UPPER  "0190A6E4-7B3C-7DEF-8ABC-0000000000A1"
#define OK         GRPC_STATUS_OK
#define INVALID    GRPC_STATUS_INVALID_ARGUMENT
#define NOT_FOUND  GRPC_STATUS_NOT_FOUND
#define EXISTS     GRPC_STATUS_ALREADY_EXISTS
#define FAILED_PRE GRPC_STATUS_FAILED_PRECONDITION
#define INTERNAL   GRPC_STATUS_INTERNAL

static Tally__V1__Money money(int64_t v, const char *cur)
{
    Tally__V1__Money m = TALLY__V1__MONEY__INIT;

    m.minor_units = v;
    m.currency = (char *)cur;
    return m;
}

static void check_msg(const trpc_status *st, const char *part, int line)
{
    if (strstr(st->msg, part) == NULL) {
        fprintf(stderr, "\nline %d: want \"%s\" in \"%s\"\n", line, part, st->msg);
        CU_FAIL("status message");
    }
}

#define CHECK_ERR(expr, want, part)                                                                \
    do {                                                                                           \
        memset(&st, 0, sizeof(st));                                                                \
        CU_ASSERT_EQUAL((expr), (want));                                                           \
        CU_ASSERT_EQUAL(st.code, (want));                                                          \
        check_msg(&st, (part), __LINE__);                                                          \
    } while (0)

static void assert_transfers_equal(const struct transfer_state *a, const struct transfer_state *b)
{
    CU_ASSERT_EQUAL(a->exists, b->exists);
    CU_ASSERT_STRING_EQUAL(a->transfer_id, b->transfer_id);
    CU_ASSERT_STRING_EQUAL(a->source_account_id, b->source_account_id);
    CU_ASSERT_STRING_EQUAL(a->destination_account_id, b->destination_account_id);
    CU_ASSERT_EQUAL(a->amount.minor_units, b->amount.minor_units);
    CU_ASSERT_STRING_EQUAL(a->amount.currency, b->amount.currency);
    CU_ASSERT_STRING_EQUAL(a->reference, b->reference);
    CU_ASSERT_EQUAL(a->status, b->status);
    CU_ASSERT_EQUAL(a->compensated, b->compensated);
    CU_ASSERT_STRING_EQUAL(a->failure_reason, b->failure_reason);
    CU_ASSERT_EQUAL(a->version, b->version);
}

/* Applies ev directly and after to_proto -> pack -> unpack -> evolve_proto. */
static void fold(struct transfer_state *t, const struct transfer_event *ev)
{
    struct transfer_state direct = *t, via = *t;
    struct transfer_event_pb pb;
    Tally__V1__Event env = TALLY__V1__EVENT__INIT, *back;
    uint8_t *buf;
    size_t len;
    trpc_status st;

    CU_ASSERT_EQUAL_FATAL(transfer_evolve(&direct, ev, &st), OK);
    transfer_event_to_proto(ev, &pb, &env);
    env.version = t->version + 1;
    len = protobuf_c_message_get_packed_size(&env.base);
    buf = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    protobuf_c_message_pack(&env.base, buf);
    back = tally__v1__event__unpack(NULL, len, buf);
    free(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_STRING_EQUAL(back->event_type, transfer_event_type_name(ev->type));
    CU_ASSERT_EQUAL(back->event_version, TRANSFER_EVENT_VERSION);
    CU_ASSERT_EQUAL(transfer_evolve_proto(&via, back, &st), OK);
    tally__v1__event__free_unpacked(back, NULL);
    assert_transfers_equal(&direct, &via);
    *t = direct;
}

/* The same for account events, for the saga test. */
static void fold_account(struct account_state *s, const struct account_event *ev)
{
    struct account_state direct = *s, via = *s;
    struct account_event_pb pb;
    Tally__V1__Event env = TALLY__V1__EVENT__INIT;
    trpc_status st;

    CU_ASSERT_EQUAL_FATAL(account_evolve(&direct, ev, &st), OK);
    account_event_to_proto(ev, &pb, &env);
    env.version = s->version + 1;
    CU_ASSERT_EQUAL_FATAL(account_evolve_proto(&via, &env, &st), OK);
    CU_ASSERT_EQUAL(direct.balance, via.balance);
    CU_ASSERT_EQUAL(direct.version, via.version);
    *s = direct;
}

static struct account_state account(const char *id, const char *cur, int64_t balance)
{
    struct account_state s;
    struct account_event ev;
    Tally__V1__Money m = money(balance, cur);

    account_state_init(&s);
    CU_ASSERT_EQUAL_FATAL(account_decide_open(&s, id, "owner", cur, 0, &ev, NULL), OK);
    fold_account(&s, &ev);
    if (balance > 0) {
        CU_ASSERT_EQUAL_FATAL(account_decide_deposit(&s, &m, "", &ev, NULL), OK);
        fold_account(&s, &ev);
    }
    return s;
}

static void account_do(struct account_state *s, grpc_status_code rc, const struct account_event *ev)
{
    CU_ASSERT_EQUAL_FATAL(rc, OK);
    fold_account(s, ev);
}

static struct transfer_state requested(const struct account_state *src,
                                       const struct account_state *dst, int64_t amount)
{
    struct transfer_state t;
    struct transfer_event ev;
    Tally__V1__Money m = money(amount, src->currency);

    transfer_state_init(&t);
    CU_ASSERT_EQUAL_FATAL(transfer_decide_request(&t, TID, src->account_id, dst->account_id, src,
                                                  dst, &m, "rent", &ev, NULL),
                          OK);
    fold(&t, &ev);
    return t;
}

/* ---- request ---- */

static void test_transfer_request_ok_yields_requested(void)
{
    struct account_state src = account(SRC, "EUR", 100), dst = account(DST, "EUR", 0);
    struct transfer_state t;
    struct transfer_event ev;
    Tally__V1__Money m = money(250, "EUR");
    trpc_status st;

    transfer_state_init(&t);
    CU_ASSERT_FALSE(t.exists);
    /* funds are not checked at request time (the debit decides) */
    CU_ASSERT_EQUAL_FATAL(
        transfer_decide_request(&t, TID_UPPER, SRC, DST_UPPER, &src, &dst, &m, "rent", &ev, &st),
        OK);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED);
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_requested.transfer_id, TID);
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_requested.source_account_id, SRC);
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_requested.destination_account_id, DST);
    CU_ASSERT_EQUAL(ev.u.transfer_requested.amount.minor_units, 250);
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_requested.amount.currency, "EUR");
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_requested.reference, "rent");
    fold(&t, &ev);
    CU_ASSERT_TRUE(t.exists);
    CU_ASSERT_EQUAL(t.status, TRANSFER_STATUS_REQUESTED);
    CU_ASSERT_EQUAL(t.version, 1);
    CU_ASSERT_STRING_EQUAL(t.destination_account_id, DST);
    CU_ASSERT_STRING_EQUAL(t.reference, "rent");
}

static void test_transfer_request_input_errors(void)
{
    struct account_state src = account(SRC, "EUR", 100), dst = account(DST, "EUR", 0);
    struct transfer_state t;
    struct transfer_event ev;
    Tally__V1__Money m = money(10, "EUR"), zero = money(0, "EUR"), neg = money(-10, "EUR"),
                     bad = money(10, "EUROS");
    trpc_status st;
    char long_ref[TALLY_MAX_TEXT_BYTES + 2];

    memset(long_ref, 'r', sizeof(long_ref) - 1);
    long_ref[sizeof(long_ref) - 1] = '\0';
    transfer_state_init(&t);
    CHECK_ERR(transfer_decide_request(&t, "", SRC, DST, &src, &dst, &m, "", &ev, &st), INVALID,
              "transfer_id is required");
    CHECK_ERR(transfer_decide_request(&t, TID, "x", DST, &src, &dst, &m, "", &ev, &st), INVALID,
              "source_account_id is not a valid uuid");
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, NULL, &src, &dst, &m, "", &ev, &st), INVALID,
              "destination_account_id is required");
    CHECK_ERR(transfer_decide_request(&t, TID, DST, DST_UPPER, &dst, &dst, &m, "", &ev, &st),
              INVALID, "source and destination must differ");
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &src, &dst, NULL, "", &ev, &st), INVALID,
              "amount is required");
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &src, &dst, &zero, "", &ev, &st), INVALID,
              "amount must be positive");
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &src, &dst, &neg, "", &ev, &st), INVALID,
              "amount must be positive");
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &src, &dst, &bad, "", &ev, &st), INVALID,
              "amount currency is not a valid iso 4217 currency code");
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &src, &dst, &m, long_ref, &ev, &st),
              INVALID, "reference is too long");
}

static void test_transfer_request_state_errors(void)
{
    struct account_state src = account(SRC, "EUR", 100), dst = account(DST, "EUR", 0), none,
                         usd = account(DST, "USD", 0), frozen_src, closed_src, frozen_dst,
                         closed_dst;
    struct transfer_state t, existing;
    struct transfer_event ev;
    struct account_event aev;
    Tally__V1__Money m = money(10, "EUR"), musd = money(10, "USD");
    trpc_status st;

    transfer_state_init(&t);
    account_state_init(&none);
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &none, &dst, &m, "", &ev, &st), NOT_FOUND,
              "source account not found");
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &src, &none, &m, "", &ev, &st), NOT_FOUND,
              "destination account not found");

    frozen_src = src;
    account_do(&frozen_src, account_decide_freeze(&frozen_src, "", &aev, NULL), &aev);
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &frozen_src, &dst, &m, "", &ev, &st),
              FAILED_PRE, "source account is frozen");
    closed_src = account(SRC, "EUR", 0);
    account_do(&closed_src, account_decide_close(&closed_src, "", &aev, NULL), &aev);
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &closed_src, &dst, &m, "", &ev, &st),
              FAILED_PRE, "source account is closed");
    closed_dst = dst;
    account_do(&closed_dst, account_decide_close(&closed_dst, "", &aev, NULL), &aev);
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &src, &closed_dst, &m, "", &ev, &st),
              FAILED_PRE, "destination account is closed");
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &src, &usd, &m, "", &ev, &st), FAILED_PRE,
              "currency mismatch: source account is EUR, destination account is USD");
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, DST, &src, &dst, &musd, "", &ev, &st),
              FAILED_PRE, "currency mismatch: source account is EUR, amount is USD");
    /* a state loaded for another id is a programming error */
    CHECK_ERR(transfer_decide_request(&t, TID, SRC, THIRD, &src, &dst, &m, "", &ev, &st), INTERNAL,
              "wrong account state");

    /* a frozen destination is accepted: its credit fails later */
    frozen_dst = dst;
    account_do(&frozen_dst, account_decide_freeze(&frozen_dst, "", &aev, NULL), &aev);
    CU_ASSERT_EQUAL(transfer_decide_request(&t, TID, SRC, DST, &src, &frozen_dst, &m, "", &ev, &st),
                    OK);

    existing = requested(&src, &dst, 10);
    CHECK_ERR(transfer_decide_request(&existing, TID, SRC, DST, &src, &dst, &m, "", &ev, &st),
              EXISTS, "transfer already exists");
}

/* ---- outcome ---- */

static void test_transfer_complete_and_fail_only_when_in_flight(void)
{
    struct account_state src = account(SRC, "EUR", 100), dst = account(DST, "EUR", 0);
    struct transfer_state none, done, failed;
    struct transfer_event ev;
    trpc_status st;

    transfer_state_init(&none);
    CHECK_ERR(transfer_decide_complete(&none, &ev, &st), NOT_FOUND, "transfer not found");
    CHECK_ERR(transfer_decide_fail(&none, "x", false, &ev, &st), NOT_FOUND, "transfer not found");

    done = requested(&src, &dst, 10);
    CU_ASSERT_EQUAL_FATAL(transfer_decide_complete(&done, &ev, &st), OK);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED);
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_completed.transfer_id, TID);
    fold(&done, &ev);
    CU_ASSERT_EQUAL(done.status, TRANSFER_STATUS_COMPLETED);
    CU_ASSERT_EQUAL(done.version, 2);
    CHECK_ERR(transfer_decide_complete(&done, &ev, &st), FAILED_PRE, "transfer already completed");
    CHECK_ERR(transfer_decide_fail(&done, "late", true, &ev, &st), FAILED_PRE,
              "transfer already completed");

    failed = requested(&src, &dst, 10);
    CHECK_ERR(transfer_decide_fail(&failed, "", false, &ev, &st), INVALID, "reason is required");
    CHECK_ERR(transfer_decide_fail(&failed, "\xed\xbf\xbf", false, &ev, &st), INVALID,
              "reason is not valid utf-8");
    CU_ASSERT_EQUAL_FATAL(
        transfer_decide_fail(&failed, "destination account is frozen", true, &ev, &st), OK);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED);
    CU_ASSERT_TRUE(ev.u.transfer_failed.compensated);
    fold(&failed, &ev);
    CU_ASSERT_EQUAL(failed.status, TRANSFER_STATUS_FAILED);
    CU_ASSERT_TRUE(failed.compensated);
    CU_ASSERT_STRING_EQUAL(failed.failure_reason, "destination account is frozen");
    CHECK_ERR(transfer_decide_complete(&failed, &ev, &st), FAILED_PRE, "transfer already failed");
    CHECK_ERR(transfer_decide_fail(&failed, "again", false, &ev, &st), FAILED_PRE,
              "transfer already failed");
}

static void test_transfer_evolve_rejects_impossible_events(void)
{
    struct account_state src = account(SRC, "EUR", 100), dst = account(DST, "EUR", 0);
    struct transfer_state none, t, before;
    struct transfer_event ev;
    struct transfer_event_pb pb;
    Tally__V1__Event env = TALLY__V1__EVENT__INIT;
    Tally__V1__Deposited dep = TALLY__V1__DEPOSITED__INIT;
    trpc_status st;

    transfer_state_init(&none);
    memset(&ev, 0, sizeof(ev));
    ev.type = TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED;
    memcpy(ev.u.transfer_completed.transfer_id, TID, sizeof(TID));
    CHECK_ERR(transfer_evolve(&none, &ev, &st), INTERNAL, "not in flight");

    t = requested(&src, &dst, 10);
    before = t;
    memcpy(ev.u.transfer_completed.transfer_id, THIRD, sizeof(THIRD));
    CHECK_ERR(transfer_evolve(&t, &ev, &st), INTERNAL, "for another transfer");
    ev.type = TALLY__V1__EVENT__PAYLOAD_DEPOSITED;
    CHECK_ERR(transfer_evolve(&t, &ev, &st), INTERNAL, "does not belong to a transfer stream");
    assert_transfers_equal(&t, &before);

    /* a second TransferRequested */
    {
        Tally__V1__Money m = money(10, "EUR");
        struct transfer_state fresh;

        transfer_state_init(&fresh);
        CU_ASSERT_EQUAL_FATAL(
            transfer_decide_request(&fresh, TID, SRC, DST, &src, &dst, &m, "", &ev, &st), OK);
        CHECK_ERR(transfer_evolve(&t, &ev, &st), INTERNAL, "already exists");
        transfer_event_to_proto(&ev, &pb, &env);
        env.version = 5;
        CHECK_ERR(transfer_evolve_proto(&fresh, &env, &st), INTERNAL,
                  "event version 5 does not follow stream version 0");
        env.version = 0;
        pb.amount.minor_units = 0;
        CHECK_ERR(transfer_evolve_proto(&fresh, &env, &st), INTERNAL,
                  "malformed TransferRequested event: amount");
        pb.amount.minor_units = 10;
        pb.msg.transfer_requested.destination_account_id = (char *)SRC;
        CHECK_ERR(transfer_evolve_proto(&fresh, &env, &st), INTERNAL, "destinationAccountId");
        env.payload_case = TALLY__V1__EVENT__PAYLOAD_DEPOSITED;
        env.deposited = &dep;
        CHECK_ERR(transfer_evolve_proto(&fresh, &env, &st), INTERNAL, "not a transfer event");
        CU_ASSERT_FALSE(fresh.exists);
    }
}

static void test_transfer_event_names_and_round_trip(void)
{
    static const struct {
        Tally__V1__Event__PayloadCase type;
        const char *name;
    } names[] = {
        {TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED, "TransferRequested"},
        {TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED, "TransferCompleted"},
        {TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED, "TransferFailed"},
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(&tally__v1__event__descriptor, names[i].type);

        CU_ASSERT_STRING_EQUAL(transfer_event_type_name(names[i].type), names[i].name);
        CU_ASSERT_EQUAL(transfer_event_type_from_name(names[i].name), names[i].type);
        CU_ASSERT_TRUE(transfer_event_type_is_transfer(names[i].type));
        CU_ASSERT_FALSE(account_event_type_is_account(names[i].type));
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_STRING_EQUAL(((const ProtobufCMessageDescriptor *)f->descriptor)->short_name,
                               names[i].name);
    }
    CU_ASSERT_PTR_NULL(transfer_event_type_name(TALLY__V1__EVENT__PAYLOAD_DEPOSITED));
    CU_ASSERT_EQUAL(transfer_event_type_from_name("Deposited"), TALLY__V1__EVENT__PAYLOAD__NOT_SET);
    CU_ASSERT_EQUAL(transfer_event_type_from_name(NULL), TALLY__V1__EVENT__PAYLOAD__NOT_SET);
}

/* ---- a whole saga, as the projector runs it ---- */

static void test_transfer_saga_success_moves_money(void)
{
    struct account_state src = account(SRC, "EUR", 100), dst = account(DST, "EUR", 5);
    struct transfer_state t = requested(&src, &dst, 60);
    struct account_event aev;
    struct transfer_event tev;
    Tally__V1__Money m = money(t.amount.minor_units, t.amount.currency);

    account_do(&src,
               account_decide_transfer_debit(&src, t.transfer_id, &m, t.destination_account_id,
                                             &aev, NULL),
               &aev);
    account_do(
        &dst,
        account_decide_transfer_credit(&dst, t.transfer_id, &m, t.source_account_id, &aev, NULL),
        &aev);
    CU_ASSERT_EQUAL_FATAL(transfer_decide_complete(&t, &tev, NULL), OK);
    fold(&t, &tev);
    CU_ASSERT_EQUAL(src.balance, 40);
    CU_ASSERT_EQUAL(dst.balance, 65);
    CU_ASSERT_EQUAL(t.status, TRANSFER_STATUS_COMPLETED);
}

static void test_transfer_saga_failed_credit_is_compensated(void)
{
    struct account_state src = account(SRC, "EUR", 100), dst = account(DST, "EUR", 0);
    struct transfer_state t = requested(&src, &dst, 60);
    struct account_event aev;
    struct transfer_event tev;
    trpc_status st;
    Tally__V1__Money m = money(t.amount.minor_units, t.amount.currency);

    account_do(&dst, account_decide_freeze(&dst, "", &aev, NULL), &aev);
    account_do(&src,
               account_decide_transfer_debit(&src, t.transfer_id, &m, t.destination_account_id,
                                             &aev, NULL),
               &aev);
    /* the source closes meanwhile: withdraw the rest, close at zero */
    {
        Tally__V1__Money rest = money(40, "EUR");

        account_do(&src, account_decide_withdraw(&src, &rest, "", &aev, NULL), &aev);
        account_do(&src, account_decide_close(&src, "", &aev, NULL), &aev);
    }
    CHECK_ERR(
        account_decide_transfer_credit(&dst, t.transfer_id, &m, t.source_account_id, &aev, &st),
        FAILED_PRE, "account is frozen");
    account_do(&src,
               account_decide_transfer_debit_reverse(&src, t.transfer_id, &m,
                                                     t.destination_account_id, st.msg, &aev, NULL),
               &aev);
    CU_ASSERT_EQUAL_FATAL(transfer_decide_fail(&t, st.msg, true, &tev, NULL), OK);
    fold(&t, &tev);
    CU_ASSERT_EQUAL(src.balance, 60); /* nothing lost, on the closed account */
    CU_ASSERT_EQUAL(src.status, ACCOUNT_STATUS_CLOSED);
    CU_ASSERT_EQUAL(dst.balance, 0);
    CU_ASSERT_EQUAL(t.status, TRANSFER_STATUS_FAILED);
    CU_ASSERT_TRUE(t.compensated);
    CU_ASSERT_STRING_EQUAL(t.failure_reason, "account is frozen");
}

static void test_transfer_saga_insufficient_funds_fails_uncompensated(void)
{
    struct account_state src = account(SRC, "EUR", 10), dst = account(DST, "EUR", 0);
    struct transfer_state t = requested(&src, &dst, 60);
    struct account_event aev;
    struct transfer_event tev;
    trpc_status st;
    Tally__V1__Money m = money(t.amount.minor_units, t.amount.currency);

    CHECK_ERR(
        account_decide_transfer_debit(&src, t.transfer_id, &m, t.destination_account_id, &aev, &st),
        FAILED_PRE, "insufficient funds: balance 10, overdraft limit 0, transfer 60");
    CU_ASSERT_EQUAL_FATAL(transfer_decide_fail(&t, st.msg, false, &tev, NULL), OK);
    fold(&t, &tev);
    CU_ASSERT_EQUAL(t.status, TRANSFER_STATUS_FAILED);
    CU_ASSERT_FALSE(t.compensated);
    CU_ASSERT_EQUAL(src.balance, 10);
}

static CU_TestInfo transfer_tests[] = {
    {"request ok yields TransferRequested", test_transfer_request_ok_yields_requested},
    {"request input errors", test_transfer_request_input_errors},
    {"request state errors", test_transfer_request_state_errors},
    {"complete/fail only when in flight", test_transfer_complete_and_fail_only_when_in_flight},
    {"evolve rejects impossible events", test_transfer_evolve_rejects_impossible_events},
    {"event names and proto", test_transfer_event_names_and_round_trip},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo saga_tests[] = {
    {"success moves money", test_transfer_saga_success_moves_money},
    {"failed credit is compensated, even on a closed source",
     test_transfer_saga_failed_credit_is_compensated},
    {"insufficient funds fails uncompensated",
     test_transfer_saga_insufficient_funds_fails_uncompensated},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"transfer", NULL, NULL, NULL, NULL, transfer_tests},
    {"transfer saga", NULL, NULL, NULL, NULL, saga_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned int failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
