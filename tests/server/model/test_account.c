/* test_account.c - the account aggregate: every rule of decide with its
 * status code, evolve (directly and after a protobuf round trip), the event
 * names, the payment fold and the snapshot JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "account.h"

#define ACC        "0190a6e4-7b3c-7def-8abc-000000000001"
#define ACC_UPPER  "0190A6E4-7B3C-7DEF-8ABC-000000000001"
#define OTHER      "0190a6e4-7b3c-7def-8abc-000000000002"
#define TID        "0190a6e4-7b3c-7def-8abc-0000000000a1"
#define PID        "0190a6e4-7b3c-7def-8abc-0000000000b1"
#define PID2       "0190a6e4-7b3c-7def-8abc-0000000000b2"
#define OK         GRPC_STATUS_OK
#define INVALID    GRPC_STATUS_INVALID_ARGUMENT
#define NOT_FOUND  GRPC_STATUS_NOT_FOUND
#define EXISTS     GRPC_STATUS_ALREADY_EXISTS
#define FAILED_PRE GRPC_STATUS_FAILED_PRECONDITION
#define INTERNAL   GRPC_STATUS_INTERNAL

/* ---- helpers ---- */

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

/* expr is a decide call using the local `st`: it must fail with want and a
 * message containing part. */
#define CHECK_ERR(expr, want, part)                                                                \
    do {                                                                                           \
        memset(&st, 0, sizeof(st));                                                                \
        CU_ASSERT_EQUAL((expr), (want));                                                           \
        CU_ASSERT_EQUAL(st.code, (want));                                                          \
        check_msg(&st, (part), __LINE__);                                                          \
    } while (0)

static void assert_states_equal(const struct account_state *a, const struct account_state *b)
{
    CU_ASSERT_EQUAL(a->exists, b->exists);
    CU_ASSERT_STRING_EQUAL(a->account_id, b->account_id);
    CU_ASSERT_STRING_EQUAL(a->owner, b->owner);
    CU_ASSERT_STRING_EQUAL(a->currency, b->currency);
    CU_ASSERT_EQUAL(a->balance, b->balance);
    CU_ASSERT_EQUAL(a->overdraft_limit, b->overdraft_limit);
    CU_ASSERT_EQUAL(a->status, b->status);
    CU_ASSERT_EQUAL(a->version, b->version);
}

/* Packs an account event into protobuf bytes (caller frees *buf). */
static size_t pack_event(const struct account_event *ev, int64_t version, uint8_t **buf)
{
    struct account_event_pb pb;
    Tally__V1__Event env = TALLY__V1__EVENT__INIT;
    size_t len;

    account_event_to_proto(ev, &pb, &env);
    env.version = version;
    len = protobuf_c_message_get_packed_size(&env.base);
    *buf = malloc(len ? len : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(*buf);
    CU_ASSERT_EQUAL(protobuf_c_message_pack(&env.base, *buf), len);
    return len;
}

/* Applies ev to *s directly, and to a copy after to_proto -> pack -> unpack
 * -> evolve_proto (as events come back from storage); both must agree. */
static void fold(struct account_state *s, const struct account_event *ev)
{
    struct account_state direct = *s, via = *s;
    Tally__V1__Event *back;
    uint8_t *buf = NULL;
    size_t len;
    trpc_status st;

    CU_ASSERT_EQUAL_FATAL(account_evolve(&direct, ev, &st), OK);
    len = pack_event(ev, s->version + 1, &buf);
    back = tally__v1__event__unpack(NULL, len, buf);
    free(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_STRING_EQUAL(back->event_type, account_event_type_name(ev->type));
    CU_ASSERT_EQUAL(back->event_version, ACCOUNT_EVENT_VERSION);
    CU_ASSERT_EQUAL(account_evolve_proto(&via, back, &st), OK);
    tally__v1__event__free_unpacked(back, NULL);
    assert_states_equal(&direct, &via);
    *s = direct;
}

static void apply_ok(struct account_state *s, grpc_status_code rc, const struct account_event *ev)
{
    CU_ASSERT_EQUAL_FATAL(rc, OK);
    fold(s, ev);
}

static struct account_state make_account(const char *cur, int64_t overdraft)
{
    struct account_state s;
    struct account_event ev;

    account_state_init(&s);
    apply_ok(&s, account_decide_open(&s, ACC, "Alice", cur, overdraft, &ev, NULL), &ev);
    return s;
}

static void deposit(struct account_state *s, int64_t v)
{
    Tally__V1__Money m = money(v, s->currency);
    struct account_event ev;

    apply_ok(s, account_decide_deposit(s, &m, "", &ev, NULL), &ev);
}

static void freeze(struct account_state *s)
{
    struct account_event ev;

    apply_ok(s, account_decide_freeze(s, "audit", &ev, NULL), &ev);
}

static void close_account(struct account_state *s)
{
    struct account_event ev;

    apply_ok(s, account_decide_close(s, "done", &ev, NULL), &ev);
}

static struct account_payment_info payment(int64_t amount, int64_t refunded, const char *cur)
{
    struct account_payment_info p;

    account_payment_info_init(&p);
    p.exists = true;
    p.amount = amount;
    p.refunded = refunded;
    snprintf(p.currency, sizeof(p.currency), "%s", cur);
    return p;
}

/* ---- open ---- */

static void test_account_open_creates_open_account_at_version_1(void)
{
    struct account_state s;
    struct account_event ev;
    trpc_status st;

    account_state_init(&s);
    CU_ASSERT_FALSE(s.exists);
    CU_ASSERT_EQUAL(s.version, 0);
    CU_ASSERT_EQUAL_FATAL(
        account_decide_open(&s, ACC_UPPER, "Alice M\xc3\xbcller", "EUR", 500, &ev, &st), OK);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED);
    CU_ASSERT_STRING_EQUAL(ev.u.account_opened.account_id, ACC); /* lower-cased */
    CU_ASSERT_STRING_EQUAL(ev.u.account_opened.owner, "Alice M\xc3\xbcller");
    CU_ASSERT_STRING_EQUAL(ev.u.account_opened.currency, "EUR");
    CU_ASSERT_EQUAL(ev.u.account_opened.overdraft_limit, 500);
    fold(&s, &ev);
    CU_ASSERT_TRUE(s.exists);
    CU_ASSERT_STRING_EQUAL(s.account_id, ACC);
    CU_ASSERT_STRING_EQUAL(s.currency, "EUR");
    CU_ASSERT_EQUAL(s.balance, 0);
    CU_ASSERT_EQUAL(s.overdraft_limit, 500);
    CU_ASSERT_EQUAL(s.status, ACCOUNT_STATUS_OPEN);
    CU_ASSERT_EQUAL(s.version, 1);
}

static void test_account_open_invalid_input_and_existing(void)
{
    struct account_state s, opened;
    struct account_event ev;
    trpc_status st;
    char long_owner[TALLY_MAX_TEXT_BYTES + 2];

    account_state_init(&s);
    memset(long_owner, 'o', sizeof(long_owner) - 1);
    long_owner[sizeof(long_owner) - 1] = '\0';

    CHECK_ERR(account_decide_open(&s, "", "A", "EUR", 0, &ev, &st), INVALID,
              "account_id is required");
    CHECK_ERR(account_decide_open(&s, "not-a-uuid", "A", "EUR", 0, &ev, &st), INVALID,
              "account_id is not a valid uuid");
    CHECK_ERR(account_decide_open(&s, ACC, "", "EUR", 0, &ev, &st), INVALID, "owner is required");
    CHECK_ERR(account_decide_open(&s, ACC, NULL, "EUR", 0, &ev, &st), INVALID, "owner is required");
    CHECK_ERR(account_decide_open(&s, ACC, long_owner, "EUR", 0, &ev, &st), INVALID,
              "owner is too long (257 bytes, at most 256)");
    CHECK_ERR(account_decide_open(&s, ACC, "bad \xed\xa0\x80", "EUR", 0, &ev, &st), INVALID,
              "owner is not valid utf-8");
    CHECK_ERR(account_decide_open(&s, ACC, "A", "eur", 0, &ev, &st), INVALID,
              "currency is not a valid iso 4217 currency code");
    CHECK_ERR(account_decide_open(&s, ACC, "A", "XXX", 0, &ev, &st), INVALID, "currency");
    CHECK_ERR(account_decide_open(&s, ACC, "A", "", 0, &ev, &st), INVALID, "currency is required");
    CHECK_ERR(account_decide_open(&s, ACC, "A", "EUR", -1, &ev, &st), INVALID,
              "overdraft_limit must not be negative");
    CHECK_ERR(account_decide_open(&s, ACC, "A", "EUR", INT64_MIN, &ev, &st), INVALID,
              "overdraft_limit");

    long_owner[TALLY_MAX_TEXT_BYTES] = '\0'; /* exactly 256 bytes is fine */
    CU_ASSERT_EQUAL(account_decide_open(&s, ACC, long_owner, "EUR", 0, &ev, &st), OK);

    opened = make_account("EUR", 0);
    CHECK_ERR(account_decide_open(&opened, ACC, "A", "EUR", 0, &ev, &st), EXISTS,
              "account already exists");
    close_account(&opened);
    CHECK_ERR(account_decide_open(&opened, ACC, "A", "EUR", 0, &ev, &st), EXISTS,
              "account already exists");
}

/* ---- deposit / withdraw ---- */

static void test_account_deposit_adds_and_checks_input(void)
{
    struct account_state s = make_account("EUR", 0), none;
    struct account_event ev;
    trpc_status st;
    Tally__V1__Money m = money(1234, "EUR"), zero = money(0, "EUR"), neg = money(-5, "EUR"),
                     usd = money(10, "USD"), bad = money(10, "eur"), nocur = money(10, "");
    char long_ref[TALLY_MAX_TEXT_BYTES + 2];

    memset(long_ref, 'r', sizeof(long_ref) - 1);
    long_ref[sizeof(long_ref) - 1] = '\0';

    CU_ASSERT_EQUAL_FATAL(account_decide_deposit(&s, &m, "invoice 7", &ev, &st), OK);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_DEPOSITED);
    CU_ASSERT_EQUAL(ev.u.deposited.amount.minor_units, 1234);
    CU_ASSERT_STRING_EQUAL(ev.u.deposited.amount.currency, "EUR");
    CU_ASSERT_STRING_EQUAL(ev.u.deposited.reference, "invoice 7");
    fold(&s, &ev);
    CU_ASSERT_EQUAL(s.balance, 1234);
    CU_ASSERT_EQUAL(s.version, 2);
    CU_ASSERT_EQUAL(account_decide_deposit(&s, &m, NULL, &ev, &st), OK);
    CU_ASSERT_STRING_EQUAL(ev.u.deposited.reference, "");

    CHECK_ERR(account_decide_deposit(&s, NULL, "", &ev, &st), INVALID, "amount is required");
    CHECK_ERR(account_decide_deposit(&s, &zero, "", &ev, &st), INVALID, "amount must be positive");
    CHECK_ERR(account_decide_deposit(&s, &neg, "", &ev, &st), INVALID, "amount must be positive");
    CHECK_ERR(account_decide_deposit(&s, &bad, "", &ev, &st), INVALID,
              "amount currency is not a valid iso 4217 currency code");
    CHECK_ERR(account_decide_deposit(&s, &nocur, "", &ev, &st), INVALID,
              "amount currency is required");
    CHECK_ERR(account_decide_deposit(&s, &m, long_ref, &ev, &st), INVALID, "reference is too long");
    CHECK_ERR(account_decide_deposit(&s, &m, "\xc0\xaf", &ev, &st), INVALID,
              "reference is not valid utf-8");
    CHECK_ERR(account_decide_deposit(&s, &usd, "", &ev, &st), FAILED_PRE,
              "currency mismatch: account is EUR, amount is USD");

    account_state_init(&none);
    CHECK_ERR(account_decide_deposit(&none, &m, "", &ev, &st), NOT_FOUND, "account not found");
    /* input errors come before state errors */
    CHECK_ERR(account_decide_deposit(&none, &zero, "", &ev, &st), INVALID, "amount");
}

static void test_account_deposit_overflow_at_int64_max(void)
{
    struct account_state s = make_account("JPY", 0);
    struct account_event ev;
    trpc_status st;
    Tally__V1__Money one = money(1, "JPY"), max = money(INT64_MAX, "JPY");

    deposit(&s, INT64_MAX - 1);
    deposit(&s, 1);
    CU_ASSERT_EQUAL(s.balance, INT64_MAX);
    CHECK_ERR(account_decide_deposit(&s, &one, "", &ev, &st), FAILED_PRE, "balance would overflow");
    CHECK_ERR(account_decide_deposit(&s, &max, "", &ev, &st), FAILED_PRE, "balance would overflow");
    CU_ASSERT_EQUAL(s.balance, INT64_MAX);
}

static void test_account_withdraw_respects_balance_and_overdraft(void)
{
    struct account_state s = make_account("EUR", 0), od;
    struct account_event ev;
    trpc_status st;
    Tally__V1__Money w150 = money(150, "EUR"), w100 = money(100, "EUR"), w1 = money(1, "EUR");

    deposit(&s, 100);
    CHECK_ERR(account_decide_withdraw(&s, &w150, "atm", &ev, &st), FAILED_PRE,
              "insufficient funds: balance 100, overdraft limit 0, withdrawal 150");
    apply_ok(&s, account_decide_withdraw(&s, &w100, "atm", &ev, &st), &ev);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_WITHDRAWN);
    CU_ASSERT_STRING_EQUAL(ev.u.withdrawn.reference, "atm");
    CU_ASSERT_EQUAL(s.balance, 0);
    CHECK_ERR(account_decide_withdraw(&s, &w1, "", &ev, &st), FAILED_PRE,
              "insufficient funds: balance 0, overdraft limit 0, withdrawal 1");

    od = make_account("EUR", 50);
    deposit(&od, 100);
    apply_ok(&od, account_decide_withdraw(&od, &w150, "", &ev, &st), &ev);
    CU_ASSERT_EQUAL(od.balance, -50); /* exactly at -overdraft_limit */
    CHECK_ERR(account_decide_withdraw(&od, &w1, "", &ev, &st), FAILED_PRE,
              "insufficient funds: balance -50, overdraft limit 50, withdrawal 1");
    CHECK_ERR(account_decide_withdraw(&od, NULL, "", &ev, &st), INVALID, "amount is required");
}

static void test_account_withdraw_extreme_overdraft_never_wraps(void)
{
    struct account_state s = make_account("JPY", INT64_MAX);
    struct account_event ev;
    trpc_status st;
    Tally__V1__Money max = money(INT64_MAX, "JPY"), one = money(1, "JPY");

    apply_ok(&s, account_decide_withdraw(&s, &max, "", &ev, &st), &ev);
    CU_ASSERT_EQUAL(s.balance, -INT64_MAX);
    /* -INT64_MAX - 1 is INT64_MIN: representable, but below the limit */
    CHECK_ERR(account_decide_withdraw(&s, &one, "", &ev, &st), FAILED_PRE, "insufficient funds");
    /* -INT64_MAX - INT64_MAX does not fit in int64: still insufficient funds */
    CHECK_ERR(account_decide_withdraw(&s, &max, "", &ev, &st), FAILED_PRE, "insufficient funds");
    CU_ASSERT_EQUAL(s.balance, -INT64_MAX);
    deposit(&s, INT64_MAX);
    deposit(&s, INT64_MAX);
    CU_ASSERT_EQUAL(s.balance, INT64_MAX);
}

/* ---- status rules ---- */

static void test_account_frozen_rejects_money_movement_but_not_refund(void)
{
    struct account_state s = make_account("EUR", 0);
    struct account_event ev;
    struct account_payment_info p = payment(40, 0, "EUR");
    trpc_status st;
    Tally__V1__Money m = money(10, "EUR");

    deposit(&s, 100);
    freeze(&s);
    CU_ASSERT_EQUAL(s.status, ACCOUNT_STATUS_FROZEN);
    CHECK_ERR(account_decide_deposit(&s, &m, "", &ev, &st), FAILED_PRE, "account is frozen");
    CHECK_ERR(account_decide_withdraw(&s, &m, "", &ev, &st), FAILED_PRE, "account is frozen");
    CHECK_ERR(account_decide_transfer_debit(&s, TID, &m, OTHER, &ev, &st), FAILED_PRE,
              "account is frozen");
    CHECK_ERR(account_decide_transfer_credit(&s, TID, &m, OTHER, &ev, &st), FAILED_PRE,
              "account is frozen");
    CHECK_ERR(account_decide_pay(&s, PID, NULL, &m, "shop", &ev, &st), FAILED_PRE,
              "account is frozen");
    CHECK_ERR(account_decide_freeze(&s, "", &ev, &st), FAILED_PRE, "account is already frozen");
    /* allowed while frozen: refund, debit reversal, close (at zero) */
    apply_ok(&s, account_decide_refund(&s, PID, &p, &m, &ev, &st), &ev);
    CU_ASSERT_EQUAL(s.balance, 110);
    apply_ok(&s,
             account_decide_transfer_debit_reverse(&s, TID, &m, OTHER, "credit failed", &ev, &st),
             &ev);
    CU_ASSERT_EQUAL(s.balance, 120);
    CHECK_ERR(account_decide_close(&s, "", &ev, &st), FAILED_PRE, "balance is not zero: 120");

    apply_ok(&s, account_decide_unfreeze(&s, "cleared", &ev, &st), &ev);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN);
    CU_ASSERT_STRING_EQUAL(ev.u.account_unfrozen.reason, "cleared");
    CU_ASSERT_EQUAL(s.status, ACCOUNT_STATUS_OPEN);
    CHECK_ERR(account_decide_unfreeze(&s, "", &ev, &st), FAILED_PRE, "account is not frozen");
    apply_ok(&s, account_decide_withdraw(&s, &m, "", &ev, &st), &ev);
    CU_ASSERT_EQUAL(s.balance, 110);
}

static void test_account_closed_rejects_every_command_but_reversal(void)
{
    struct account_state s = make_account("EUR", 0);
    struct account_event ev;
    struct account_payment_info p = payment(40, 0, "EUR");
    trpc_status st;
    Tally__V1__Money m = money(10, "EUR");

    freeze(&s);
    close_account(&s); /* a frozen account may close at zero */
    CU_ASSERT_EQUAL(s.status, ACCOUNT_STATUS_CLOSED);
    CU_ASSERT_EQUAL(s.version, 3);
    CHECK_ERR(account_decide_deposit(&s, &m, "", &ev, &st), FAILED_PRE, "account is closed");
    CHECK_ERR(account_decide_withdraw(&s, &m, "", &ev, &st), FAILED_PRE, "account is closed");
    CHECK_ERR(account_decide_transfer_debit(&s, TID, &m, OTHER, &ev, &st), FAILED_PRE,
              "account is closed");
    CHECK_ERR(account_decide_transfer_credit(&s, TID, &m, OTHER, &ev, &st), FAILED_PRE,
              "account is closed");
    CHECK_ERR(account_decide_pay(&s, PID, NULL, &m, "shop", &ev, &st), FAILED_PRE,
              "account is closed");
    CHECK_ERR(account_decide_refund(&s, PID, &p, &m, &ev, &st), FAILED_PRE, "account is closed");
    CHECK_ERR(account_decide_freeze(&s, "", &ev, &st), FAILED_PRE, "account is closed");
    CHECK_ERR(account_decide_unfreeze(&s, "", &ev, &st), FAILED_PRE, "account is closed");
    CHECK_ERR(account_decide_close(&s, "", &ev, &st), FAILED_PRE, "account is closed");

    /* the compensation still lands: the money must not vanish */
    apply_ok(&s,
             account_decide_transfer_debit_reverse(&s, TID, &m, OTHER, "credit failed", &ev, &st),
             &ev);
    CU_ASSERT_EQUAL(s.balance, 10);
    CU_ASSERT_EQUAL(s.status, ACCOUNT_STATUS_CLOSED);
    CHECK_ERR(account_decide_withdraw(&s, &m, "", &ev, &st), FAILED_PRE, "account is closed");
}

static void test_account_close_needs_zero_balance(void)
{
    struct account_state s = make_account("EUR", 100);
    struct account_event ev;
    trpc_status st;
    Tally__V1__Money m = money(100, "EUR");

    deposit(&s, 100);
    CHECK_ERR(account_decide_close(&s, "", &ev, &st), FAILED_PRE, "balance is not zero: 100");
    apply_ok(&s, account_decide_withdraw(&s, &m, "", &ev, &st), &ev);
    apply_ok(&s, account_decide_withdraw(&s, &m, "", &ev, &st), &ev);
    CHECK_ERR(account_decide_close(&s, "", &ev, &st), FAILED_PRE, "balance is not zero: -100");
    deposit(&s, 100);
    apply_ok(&s, account_decide_close(&s, "customer left", &ev, &st), &ev);
    CU_ASSERT_STRING_EQUAL(ev.u.account_closed.reason, "customer left");
    CU_ASSERT_EQUAL(s.status, ACCOUNT_STATUS_CLOSED);
}

static void test_account_state_commands_on_missing_account_not_found(void)
{
    struct account_state s;
    struct account_event ev;
    struct account_payment_info p = payment(40, 0, "EUR");
    trpc_status st;
    Tally__V1__Money m = money(10, "EUR");

    account_state_init(&s);
    CHECK_ERR(account_decide_withdraw(&s, &m, "", &ev, &st), NOT_FOUND, "account not found");
    CHECK_ERR(account_decide_transfer_debit(&s, TID, &m, OTHER, &ev, &st), NOT_FOUND,
              "account not found");
    CHECK_ERR(account_decide_transfer_credit(&s, TID, &m, OTHER, &ev, &st), NOT_FOUND,
              "account not found");
    CHECK_ERR(account_decide_transfer_debit_reverse(&s, TID, &m, OTHER, "", &ev, &st), NOT_FOUND,
              "account not found");
    CHECK_ERR(account_decide_pay(&s, PID, NULL, &m, "shop", &ev, &st), NOT_FOUND,
              "account not found");
    CHECK_ERR(account_decide_refund(&s, PID, &p, &m, &ev, &st), NOT_FOUND, "account not found");
    CHECK_ERR(account_decide_freeze(&s, "", &ev, &st), NOT_FOUND, "account not found");
    CHECK_ERR(account_decide_unfreeze(&s, "", &ev, &st), NOT_FOUND, "account not found");
    CHECK_ERR(account_decide_close(&s, "", &ev, &st), NOT_FOUND, "account not found");
}

static void test_account_reason_limits(void)
{
    struct account_state s = make_account("EUR", 0);
    struct account_event ev;
    trpc_status st;
    char long_reason[TALLY_MAX_TEXT_BYTES + 2];

    memset(long_reason, 'r', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = '\0';
    CHECK_ERR(account_decide_freeze(&s, long_reason, &ev, &st), INVALID, "reason is too long");
    CHECK_ERR(account_decide_unfreeze(&s, "\xff", &ev, &st), INVALID, "reason is not valid utf-8");
    CHECK_ERR(account_decide_close(&s, long_reason, &ev, &st), INVALID, "reason is too long");
    apply_ok(&s, account_decide_freeze(&s, NULL, &ev, &st), &ev);
    CU_ASSERT_STRING_EQUAL(ev.u.account_frozen.reason, "");
}

/* ---- transfers ---- */

static void test_account_transfer_debit_like_withdrawal(void)
{
    struct account_state s = make_account("EUR", 0);
    struct account_event ev;
    trpc_status st;
    Tally__V1__Money m = money(60, "EUR"), usd = money(1, "USD");

    deposit(&s, 100);
    CU_ASSERT_EQUAL_FATAL(account_decide_transfer_debit(&s, "0190A6E4-7B3C-7DEF-8ABC-0000000000A1",
                                                        &m, OTHER, &ev, &st),
                          OK);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED);
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_debited.transfer_id, TID);
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_debited.counterpart_account_id, OTHER);
    CU_ASSERT_EQUAL(ev.u.transfer_debited.amount.minor_units, 60);
    fold(&s, &ev);
    CU_ASSERT_EQUAL(s.balance, 40);
    CHECK_ERR(account_decide_transfer_debit(&s, TID, &m, OTHER, &ev, &st), FAILED_PRE,
              "insufficient funds: balance 40, overdraft limit 0, transfer 60");
    CHECK_ERR(account_decide_transfer_debit(&s, TID, &usd, OTHER, &ev, &st), FAILED_PRE,
              "currency mismatch: account is EUR, amount is USD");
    CHECK_ERR(account_decide_transfer_debit(&s, TID, &m, ACC_UPPER, &ev, &st), INVALID,
              "source and destination must differ");
    CHECK_ERR(account_decide_transfer_debit(&s, "nope", &m, OTHER, &ev, &st), INVALID,
              "transfer_id is not a valid uuid");
    CHECK_ERR(account_decide_transfer_debit(&s, TID, &m, "", &ev, &st), INVALID,
              "destination_account_id is required");
    CHECK_ERR(account_decide_transfer_debit(&s, TID, NULL, OTHER, &ev, &st), INVALID,
              "amount is required");
}

static void test_account_transfer_credit_rules(void)
{
    struct account_state s = make_account("EUR", 0), frozen, closed;
    struct account_event ev;
    trpc_status st;
    Tally__V1__Money m = money(60, "EUR"), usd = money(60, "USD"), max = money(INT64_MAX, "EUR");

    apply_ok(&s, account_decide_transfer_credit(&s, TID, &m, OTHER, &ev, &st), &ev);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED);
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_credited.counterpart_account_id, OTHER);
    CU_ASSERT_EQUAL(s.balance, 60);
    CHECK_ERR(account_decide_transfer_credit(&s, TID, &usd, OTHER, &ev, &st), FAILED_PRE,
              "currency mismatch: account is EUR, amount is USD");
    CHECK_ERR(account_decide_transfer_credit(&s, TID, &max, OTHER, &ev, &st), FAILED_PRE,
              "balance would overflow");
    CHECK_ERR(account_decide_transfer_credit(&s, TID, &m, ACC, &ev, &st), INVALID,
              "source and destination must differ");
    CHECK_ERR(account_decide_transfer_credit(&s, TID, &m, "x", &ev, &st), INVALID,
              "source_account_id is not a valid uuid");

    frozen = make_account("EUR", 0);
    freeze(&frozen);
    CHECK_ERR(account_decide_transfer_credit(&frozen, TID, &m, OTHER, &ev, &st), FAILED_PRE,
              "account is frozen");
    closed = make_account("EUR", 0);
    close_account(&closed);
    CHECK_ERR(account_decide_transfer_credit(&closed, TID, &m, OTHER, &ev, &st), FAILED_PRE,
              "account is closed");
}

static void test_account_transfer_debit_reverse_rules(void)
{
    struct account_state s = make_account("EUR", 0);
    struct account_event ev;
    trpc_status st;
    Tally__V1__Money m = money(60, "EUR"), usd = money(60, "USD"), max = money(INT64_MAX, "EUR");
    char long_reason[TALLY_MAX_TEXT_BYTES + 2];

    memset(long_reason, 'r', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = '\0';
    deposit(&s, 60);
    apply_ok(&s, account_decide_transfer_debit(&s, TID, &m, OTHER, &ev, &st), &ev);
    CU_ASSERT_EQUAL(s.balance, 0);
    apply_ok(&s,
             account_decide_transfer_debit_reverse(&s, TID, &m, OTHER,
                                                   "destination account is closed", &ev, &st),
             &ev);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED);
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_debit_reversed.reason, "destination account is closed");
    CU_ASSERT_STRING_EQUAL(ev.u.transfer_debit_reversed.counterpart_account_id, OTHER);
    CU_ASSERT_EQUAL(s.balance, 60);
    CHECK_ERR(account_decide_transfer_debit_reverse(&s, TID, &usd, OTHER, "", &ev, &st), FAILED_PRE,
              "currency mismatch");
    CHECK_ERR(account_decide_transfer_debit_reverse(&s, TID, &max, OTHER, "", &ev, &st), FAILED_PRE,
              "balance would overflow");
    CHECK_ERR(account_decide_transfer_debit_reverse(&s, TID, &m, OTHER, long_reason, &ev, &st),
              INVALID, "reason is too long");
}

/* ---- payments ---- */

static void test_account_pay_rules(void)
{
    struct account_state s = make_account("EUR", 0);
    struct account_event ev;
    struct account_payment_info none, existing = payment(10, 0, "EUR");
    trpc_status st;
    Tally__V1__Money m = money(70, "EUR"), usd = money(1, "USD");

    account_payment_info_init(&none);
    deposit(&s, 100);
    CHECK_ERR(account_decide_pay(&s, PID, &existing, &m, "shop", &ev, &st), EXISTS,
              "payment already exists");
    CHECK_ERR(account_decide_pay(&s, PID, &none, &m, "", &ev, &st), INVALID,
              "merchant_reference is required");
    CHECK_ERR(account_decide_pay(&s, "", &none, &m, "shop", &ev, &st), INVALID,
              "payment_id is required");
    CHECK_ERR(account_decide_pay(&s, PID, &none, &usd, "shop", &ev, &st), FAILED_PRE,
              "currency mismatch");
    apply_ok(&s, account_decide_pay(&s, PID, &none, &m, "order 42", &ev, &st), &ev);
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE);
    CU_ASSERT_STRING_EQUAL(ev.u.payment_made.payment_id, PID);
    CU_ASSERT_STRING_EQUAL(ev.u.payment_made.merchant_reference, "order 42");
    CU_ASSERT_EQUAL(s.balance, 30);
    CHECK_ERR(account_decide_pay(&s, PID2, NULL, &m, "shop", &ev, &st), FAILED_PRE,
              "insufficient funds: balance 30, overdraft limit 0, payment 70");
}

static void test_account_refund_rules(void)
{
    struct account_state s = make_account("EUR", 0);
    struct account_event ev;
    struct account_payment_info none, p = payment(100, 80, "EUR"), pu = payment(100, 0, "USD"),
                                      big = payment(INT64_MAX, INT64_MAX - 1, "EUR");
    trpc_status st;
    Tally__V1__Money m20 = money(20, "EUR"), m21 = money(21, "EUR"), m30 = money(30, "EUR"),
                     m2 = money(2, "EUR"), usd = money(20, "USD"), zero = money(0, "EUR");

    account_payment_info_init(&none);
    CHECK_ERR(account_decide_refund(&s, PID, &none, &m20, &ev, &st), NOT_FOUND,
              "payment not found");
    CHECK_ERR(account_decide_refund(&s, PID, NULL, &m20, &ev, &st), NOT_FOUND, "payment not found");
    CHECK_ERR(account_decide_refund(&s, PID, &p, &m30, &ev, &st), FAILED_PRE,
              "refund exceeds payment: paid 100, refunded 80, refund 30");
    CHECK_ERR(account_decide_refund(&s, PID, &p, &m21, &ev, &st), FAILED_PRE,
              "refund exceeds payment: paid 100, refunded 80, refund 21"); /* one too many */
    CHECK_ERR(account_decide_refund(&s, PID, &big, &m2, &ev, &st), FAILED_PRE,
              "refund exceeds payment");
    CHECK_ERR(account_decide_refund(&s, PID, &p, &usd, &ev, &st), FAILED_PRE,
              "currency mismatch: account is EUR, amount is USD");
    CHECK_ERR(account_decide_refund(&s, PID, &pu, &m20, &ev, &st), FAILED_PRE,
              "currency mismatch: payment is USD, amount is EUR");
    CHECK_ERR(account_decide_refund(&s, PID, &p, &zero, &ev, &st), INVALID,
              "amount must be positive");
    CHECK_ERR(account_decide_refund(&s, "zz", &p, &m20, &ev, &st), INVALID,
              "payment_id is not a valid uuid");

    apply_ok(&s, account_decide_refund(&s, PID, &p, &m20, &ev, &st), &ev); /* exactly to 100 */
    CU_ASSERT_EQUAL(ev.type, TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED);
    CU_ASSERT_STRING_EQUAL(ev.u.payment_refunded.payment_id, PID);
    CU_ASSERT_EQUAL(ev.u.payment_refunded.amount.minor_units, 20);
    CU_ASSERT_EQUAL(ev.u.payment_refunded.total_refunded.minor_units, 100);
    CU_ASSERT_STRING_EQUAL(ev.u.payment_refunded.total_refunded.currency, "EUR");
    CU_ASSERT_EQUAL(s.balance, 20);
}

static void test_account_refund_overflowing_balance(void)
{
    struct account_state s = make_account("EUR", 0);
    struct account_event ev;
    struct account_payment_info p = payment(100, 0, "EUR");
    trpc_status st;
    Tally__V1__Money m = money(1, "EUR");

    deposit(&s, INT64_MAX);
    CHECK_ERR(account_decide_refund(&s, PID, &p, &m, &ev, &st), FAILED_PRE,
              "balance would overflow");
}

static void test_account_payment_info_folds_log_events(void)
{
    struct account_state s = make_account("EUR", 0);
    struct account_event ev;
    struct account_payment_info p, other;
    struct account_event evs[4];
    trpc_status st;
    Tally__V1__Money m100 = money(100, "EUR"), m30 = money(30, "EUR"), m5 = money(5, "EUR");
    int i, n = 0;

    deposit(&s, 1000);
    account_payment_info_init(&p);
    apply_ok(&s, account_decide_pay(&s, PID, &p, &m100, "shop", &evs[n], &st), &evs[n]);
    n++;
    apply_ok(&s, account_decide_pay(&s, PID2, NULL, &m5, "other shop", &evs[n], &st), &evs[n]);
    n++;
    /* fold what the log holds so far for PID, as the command service does */
    for (i = 0; i < n; i++) {
        struct account_event_pb pb;
        Tally__V1__Event env = TALLY__V1__EVENT__INIT;

        account_event_to_proto(&evs[i], &pb, &env);
        CU_ASSERT_EQUAL(account_payment_info_apply(&p, PID, &env, &st), OK);
    }
    CU_ASSERT_TRUE(p.exists);
    CU_ASSERT_EQUAL(p.amount, 100);
    CU_ASSERT_EQUAL(p.refunded, 0);
    CU_ASSERT_STRING_EQUAL(p.currency, "EUR");
    apply_ok(&s, account_decide_refund(&s, PID, &p, &m30, &evs[n], &st), &evs[n]);
    {
        struct account_event_pb pb;
        Tally__V1__Event env = TALLY__V1__EVENT__INIT;

        account_event_to_proto(&evs[n], &pb, &env);
        CU_ASSERT_EQUAL(account_payment_info_apply(&p, PID, &env, &st), OK);
        account_payment_info_init(&other);
        CU_ASSERT_EQUAL(account_payment_info_apply(&other, PID2, &env, &st), OK);
        CU_ASSERT_FALSE(other.exists); /* another payment's refund is ignored */
    }
    CU_ASSERT_EQUAL(p.refunded, 30);
    CHECK_ERR(account_decide_pay(&s, PID, &p, &m5, "again", &ev, &st), EXISTS,
              "payment already exists");
    CHECK_ERR(account_decide_refund(&s, PID, &p, &m100, &ev, &st), FAILED_PRE,
              "refund exceeds payment: paid 100, refunded 30, refund 100");
}

/* ---- evolve ---- */

static void test_account_fold_sequence_gives_expected_state(void)
{
    struct account_state s = make_account("EUR", 500);
    struct account_event ev;
    struct account_payment_info none;
    struct account_payment_info p = payment(300, 0, "EUR");
    trpc_status st;
    Tally__V1__Money m1000 = money(1000, "EUR"), m250 = money(250, "EUR"), m300 = money(300, "EUR"),
                     m400 = money(400, "EUR"), m50 = money(50, "EUR");

    account_payment_info_init(&none);
    apply_ok(&s, account_decide_deposit(&s, &m1000, "salary", &ev, &st), &ev);         /* 1000 */
    apply_ok(&s, account_decide_withdraw(&s, &m250, "rent", &ev, &st), &ev);           /* 750 */
    apply_ok(&s, account_decide_pay(&s, PID, &none, &m300, "shop", &ev, &st), &ev);    /* 450 */
    apply_ok(&s, account_decide_transfer_debit(&s, TID, &m400, OTHER, &ev, &st), &ev); /* 50 */
    apply_ok(&s, account_decide_transfer_debit_reverse(&s, TID, &m400, OTHER, "failed", &ev, &st),
             &ev);                                                                     /* 450 */
    apply_ok(&s, account_decide_refund(&s, PID, &p, &m50, &ev, &st), &ev);             /* 500 */
    apply_ok(&s, account_decide_transfer_credit(&s, TID, &m50, OTHER, &ev, &st), &ev); /* 550 */
    freeze(&s);
    apply_ok(&s, account_decide_unfreeze(&s, "", &ev, &st), &ev);
    apply_ok(&s, account_decide_withdraw(&s, &m1000, "", &ev, &st), &ev); /* -450 */

    CU_ASSERT_TRUE(s.exists);
    CU_ASSERT_EQUAL(s.balance, -450);
    CU_ASSERT_EQUAL(s.status, ACCOUNT_STATUS_OPEN);
    CU_ASSERT_EQUAL(s.version, 11);
    CU_ASSERT_STRING_EQUAL(s.owner, "Alice");
    CU_ASSERT_EQUAL(s.overdraft_limit, 500);
}

static void test_account_evolve_rejects_impossible_events(void)
{
    struct account_state none, s = make_account("EUR", 0), before;
    struct account_event ev;
    trpc_status st;

    account_state_init(&none);
    memset(&ev, 0, sizeof(ev));
    ev.type = TALLY__V1__EVENT__PAYLOAD_DEPOSITED;
    ev.u.deposited.amount.minor_units = 5;
    memcpy(ev.u.deposited.amount.currency, "EUR", 4);
    CHECK_ERR(account_evolve(&none, &ev, &st), INTERNAL, "never opened");
    CU_ASSERT_EQUAL(none.version, 0);

    before = s;
    memcpy(ev.u.deposited.amount.currency, "USD", 4);
    CHECK_ERR(account_evolve(&s, &ev, &st), INTERNAL, "Deposited in USD on an account in EUR");
    ev.u.deposited.amount.minor_units = 0;
    memcpy(ev.u.deposited.amount.currency, "EUR", 4);
    CHECK_ERR(account_evolve(&s, &ev, &st), INTERNAL, "non-positive amount");
    ev.u.deposited.amount.minor_units = INT64_MAX;
    CU_ASSERT_EQUAL(account_evolve(&s, &ev, &st), OK);
    ev.u.deposited.amount.minor_units = 1;
    CHECK_ERR(account_evolve(&s, &ev, &st), INTERNAL, "overflows the balance");
    CU_ASSERT_EQUAL(s.balance, INT64_MAX);
    CU_ASSERT_EQUAL(s.version, before.version + 1);

    CU_ASSERT_EQUAL(account_decide_open(&none, ACC, "A", "EUR", 0, &ev, &st), OK);
    CHECK_ERR(account_evolve(&s, &ev, &st), INTERNAL, "already exists");
    ev.type = TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED;
    CHECK_ERR(account_evolve(&s, &ev, &st), INTERNAL, "does not belong to an account stream");
}

static void test_account_evolve_proto_checks_version_and_shape(void)
{
    struct account_state s = make_account("EUR", 0), before;
    struct account_event ev;
    struct account_event_pb pb;
    Tally__V1__Event env = TALLY__V1__EVENT__INIT;
    Tally__V1__TransferCompleted tc = TALLY__V1__TRANSFER_COMPLETED__INIT;
    Tally__V1__Money m = money(5, "EUR");
    trpc_status st;

    CU_ASSERT_EQUAL_FATAL(account_decide_deposit(&s, &m, "", &ev, &st), OK);
    account_event_to_proto(&ev, &pb, &env);
    before = s;
    env.version = 3; /* s.version is 1 */
    CHECK_ERR(account_evolve_proto(&s, &env, &st), INTERNAL,
              "event version 3 does not follow stream version 1");
    env.version = 1;
    CHECK_ERR(account_evolve_proto(&s, &env, &st), INTERNAL, "does not follow");
    assert_states_equal(&s, &before);
    env.version = 0; /* unknown version: not checked */
    CU_ASSERT_EQUAL(account_evolve_proto(&s, &env, &st), OK);
    CU_ASSERT_EQUAL(s.balance, 5);

    pb.msg.deposited.amount = NULL;
    CHECK_ERR(account_evolve_proto(&s, &env, &st), INTERNAL, "malformed Deposited event: amount");
    pb.msg.deposited.amount = &pb.amount;
    pb.amount.currency = (char *)"eur";
    CHECK_ERR(account_evolve_proto(&s, &env, &st), INTERNAL, "malformed Deposited event: amount");
    pb.amount.currency = (char *)"EUR";
    pb.msg.deposited.reference = (char *)"\xc3";
    CHECK_ERR(account_evolve_proto(&s, &env, &st), INTERNAL,
              "malformed Deposited event: reference");
    env.deposited = NULL;
    CHECK_ERR(account_evolve_proto(&s, &env, &st), INTERNAL, "no payload");
    env.payload_case = TALLY__V1__EVENT__PAYLOAD__NOT_SET;
    CHECK_ERR(account_evolve_proto(&s, &env, &st), INTERNAL, "not an account event");
    env.payload_case = TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED;
    env.transfer_completed = &tc;
    CHECK_ERR(account_evolve_proto(&s, &env, &st), INTERNAL, "not an account event");
    CHECK_ERR(account_evolve_proto(&s, NULL, &st), INTERNAL, "malformed event");
    CU_ASSERT_EQUAL(s.balance, 5);
    CU_ASSERT_EQUAL(s.version, 2);
}

static void test_account_event_from_proto_lower_cases_ids(void)
{
    Tally__V1__Event env = TALLY__V1__EVENT__INIT;
    Tally__V1__AccountOpened ao = TALLY__V1__ACCOUNT_OPENED__INIT;
    struct account_event ev;
    trpc_status st;

    ao.account_id = (char *)ACC_UPPER;
    ao.owner = (char *)"Bob";
    ao.currency = (char *)"JPY";
    env.payload_case = TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED;
    env.account_opened = &ao;
    CU_ASSERT_EQUAL_FATAL(account_event_from_proto(&env, &ev, &st), OK);
    CU_ASSERT_STRING_EQUAL(ev.u.account_opened.account_id, ACC);
    ao.owner = (char *)"";
    CHECK_ERR(account_event_from_proto(&env, &ev, &st), INTERNAL,
              "malformed AccountOpened event: owner");
    ao.owner = (char *)"Bob";
    ao.overdraft_limit = -1;
    CHECK_ERR(account_event_from_proto(&env, &ev, &st), INTERNAL, "overdraftLimit");
    ao.overdraft_limit = 0;
    ao.account_id = (char *)"x";
    CHECK_ERR(account_event_from_proto(&env, &ev, &st), INTERNAL, "accountId");
}

/* Every account event type survives to_proto -> pack -> unpack ->
 * from_proto -> to_proto -> pack byte for byte. */
static void test_account_every_event_round_trips_through_protobuf(void)
{
    struct account_state s = make_account("KWD", 1000), c, fresh;
    struct account_event evs[11];
    struct account_payment_info none, p = payment(5, 0, "KWD");
    Tally__V1__Money m = money(5, "KWD");
    trpc_status st;
    int n = 0, i;

    account_payment_info_init(&none);
    account_state_init(&fresh);
    c = make_account("KWD", 0);
    CU_ASSERT_EQUAL(
        account_decide_open(&fresh, ACC, "\xe2\x82\xac owner", "KWD", 7, &evs[n++], &st), OK);
    CU_ASSERT_EQUAL(account_decide_deposit(&s, &m, "ref", &evs[n++], &st), OK);
    CU_ASSERT_EQUAL(account_decide_withdraw(&s, &m, "ref", &evs[n++], &st), OK);
    CU_ASSERT_EQUAL(account_decide_transfer_debit(&s, TID, &m, OTHER, &evs[n++], &st), OK);
    CU_ASSERT_EQUAL(account_decide_transfer_credit(&s, TID, &m, OTHER, &evs[n++], &st), OK);
    CU_ASSERT_EQUAL(
        account_decide_transfer_debit_reverse(&s, TID, &m, OTHER, "why", &evs[n++], &st), OK);
    CU_ASSERT_EQUAL(account_decide_pay(&s, PID, &none, &m, "merchant", &evs[n++], &st), OK);
    CU_ASSERT_EQUAL(account_decide_refund(&s, PID, &p, &m, &evs[n++], &st), OK);
    CU_ASSERT_EQUAL(account_decide_freeze(&s, "f", &evs[n++], &st), OK);
    freeze(&c);
    CU_ASSERT_EQUAL(account_decide_unfreeze(&c, "u", &evs[n++], &st), OK);
    CU_ASSERT_EQUAL(account_decide_close(&c, "c", &evs[n++], &st), OK);
    CU_ASSERT_EQUAL_FATAL(n, 11);

    for (i = 0; i < n; i++) {
        uint8_t *a = NULL, *b = NULL;
        size_t la, lb;
        Tally__V1__Event *back;
        struct account_event again;

        la = pack_event(&evs[i], 9, &a);
        back = tally__v1__event__unpack(NULL, la, a);
        CU_ASSERT_PTR_NOT_NULL_FATAL(back);
        CU_ASSERT_EQUAL((int)back->payload_case, (int)evs[i].type);
        CU_ASSERT_EQUAL(account_event_from_proto(back, &again, &st), OK);
        tally__v1__event__free_unpacked(back, NULL);
        lb = pack_event(&again, 9, &b);
        CU_ASSERT_EQUAL(la, lb);
        CU_ASSERT_TRUE(la == lb && memcmp(a, b, la) == 0);
        free(a);
        free(b);
    }
}

static void test_account_event_names_both_directions(void)
{
    static const struct {
        Tally__V1__Event__PayloadCase type;
        const char *name;
    } names[] = {
        {TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED, "AccountOpened"},
        {TALLY__V1__EVENT__PAYLOAD_DEPOSITED, "Deposited"},
        {TALLY__V1__EVENT__PAYLOAD_WITHDRAWN, "Withdrawn"},
        {TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED, "TransferDebited"},
        {TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED, "TransferCredited"},
        {TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED, "TransferDebitReversed"},
        {TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE, "PaymentMade"},
        {TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED, "PaymentRefunded"},
        {TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN, "AccountFrozen"},
        {TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN, "AccountUnfrozen"},
        {TALLY__V1__EVENT__PAYLOAD_ACCOUNT_CLOSED, "AccountClosed"},
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(&tally__v1__event__descriptor, names[i].type);

        CU_ASSERT_STRING_EQUAL(account_event_type_name(names[i].type), names[i].name);
        CU_ASSERT_EQUAL(account_event_type_from_name(names[i].name), names[i].type);
        CU_ASSERT_TRUE(account_event_type_is_account(names[i].type));
        /* the name is the payload message's name, as the contract says */
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_STRING_EQUAL(((const ProtobufCMessageDescriptor *)f->descriptor)->short_name,
                               names[i].name);
    }
    CU_ASSERT_PTR_NULL(account_event_type_name(TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED));
    CU_ASSERT_PTR_NULL(account_event_type_name(TALLY__V1__EVENT__PAYLOAD__NOT_SET));
    CU_ASSERT_FALSE(account_event_type_is_account(TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED));
    CU_ASSERT_EQUAL(account_event_type_from_name("deposited"), TALLY__V1__EVENT__PAYLOAD__NOT_SET);
    CU_ASSERT_EQUAL(account_event_type_from_name("TransferRequested"),
                    TALLY__V1__EVENT__PAYLOAD__NOT_SET);
    CU_ASSERT_EQUAL(account_event_type_from_name(NULL), TALLY__V1__EVENT__PAYLOAD__NOT_SET);
}

/* ---- snapshots ---- */

static void snapshot_round_trip(const struct account_state *s)
{
    json_t *j = account_state_to_json(s), *back;
    char *text;
    struct account_state r;
    trpc_status st;

    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    text = json_dumps(j, JSON_COMPACT);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    back = json_loads(text, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    memset(&r, 0x5a, sizeof(r));
    CU_ASSERT_EQUAL(account_state_from_json(back, &r, &st), OK);
    assert_states_equal(s, &r);
    free(text);
    json_decref(j);
    json_decref(back);
}

static void test_account_snapshot_round_trips_exactly(void)
{
    struct account_state s, t;

    account_state_init(&s);
    snapshot_round_trip(&s);
    s = make_account("EUR", INT64_MAX);
    snapshot_round_trip(&s);
    deposit(&s, INT64_MAX);
    snapshot_round_trip(&s);
    freeze(&s);
    snapshot_round_trip(&s);

    t = make_account("JPY", 0);
    snprintf(t.owner, sizeof(t.owner), "%s", "\xe5\xb1\xb1\xe7\x94\xb0 \"quoted\" \\ \n");
    t.balance = INT64_MIN; /* facts may exceed today's limits; the snapshot keeps them */
    t.version = INT64_MAX;
    snapshot_round_trip(&t);
    t.status = ACCOUNT_STATUS_CLOSED;
    t.balance = -INT64_MAX;
    snapshot_round_trip(&t);
}

static void test_account_snapshot_format_and_integer_fields(void)
{
    struct account_state s = make_account("EUR", 25), r;
    json_t *j, *alt;
    trpc_status st;

    deposit(&s, 1234);
    j = account_state_to_json(&s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "balance")), "1234");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")), "ACCOUNT_STATUS_OPEN");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "accountId")), ACC);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "schema")), 1);
    json_decref(j);

    alt = json_pack("{s:i, s:b, s:s, s:s, s:s, s:I, s:I, s:s, s:I}", "schema", 1, "exists", 1,
                    "accountId", ACC_UPPER, "owner", "Alice", "currency", "EUR", "balance",
                    (json_int_t)1234, "overdraftLimit", (json_int_t)25, "status",
                    "ACCOUNT_STATUS_OPEN", "version", (json_int_t)2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(alt);
    CU_ASSERT_EQUAL(account_state_from_json(alt, &r, &st), OK);
    assert_states_equal(&s, &r);
    json_decref(alt);
}

static void test_account_snapshot_rejects_malformed(void)
{
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"schema\":2,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\",\"currency\":"
        "\"EUR\",\"balance\":\"0\",\"overdraftLimit\":\"0\",\"status\":\"ACCOUNT_STATUS_OPEN\","
        "\"version\":\"1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"nope\",\"owner\":\"A\",\"currency\":"
        "\"EUR\",\"balance\":\"0\",\"overdraftLimit\":\"0\",\"status\":\"ACCOUNT_STATUS_OPEN\","
        "\"version\":\"1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\",\"currency\":"
        "\"EURO\",\"balance\":\"0\",\"overdraftLimit\":\"0\",\"status\":\"ACCOUNT_STATUS_OPEN\","
        "\"version\":\"1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\",\"currency\":"
        "\"EUR\",\"balance\":\"9223372036854775808\",\"overdraftLimit\":\"0\",\"status\":"
        "\"ACCOUNT_STATUS_OPEN\",\"version\":\"1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\",\"currency\":"
        "\"EUR\",\"balance\":\"1.5\",\"overdraftLimit\":\"0\",\"status\":"
        "\"ACCOUNT_STATUS_OPEN\",\"version\":\"1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\",\"currency\":"
        "\"EUR\",\"balance\":\" 1\",\"overdraftLimit\":\"0\",\"status\":"
        "\"ACCOUNT_STATUS_OPEN\",\"version\":\"1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\",\"currency\":"
        "\"EUR\",\"balance\":\"0\",\"overdraftLimit\":\"-1\",\"status\":"
        "\"ACCOUNT_STATUS_OPEN\",\"version\":\"1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\",\"currency\":"
        "\"EUR\",\"balance\":\"0\",\"overdraftLimit\":\"0\",\"status\":\"OPEN\",\"version\":"
        "\"1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\",\"currency\":"
        "\"EUR\",\"balance\":\"0\",\"overdraftLimit\":\"0\",\"status\":"
        "\"ACCOUNT_STATUS_UNSPECIFIED\",\"version\":\"1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\\u0000B\","
        "\"currency\":\"EUR\",\"balance\":\"0\",\"overdraftLimit\":\"0\",\"status\":"
        "\"ACCOUNT_STATUS_OPEN\",\"version\":\"1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\",\"currency\":"
        "\"EUR\",\"balance\":\"0\",\"overdraftLimit\":\"0\",\"status\":\"ACCOUNT_STATUS_OPEN\","
        "\"version\":\"-1\"}",
        "{\"schema\":1,\"exists\":true,\"accountId\":\"" ACC "\",\"owner\":\"A\",\"currency\":"
        "\"EUR\",\"balance\":\"0\",\"overdraftLimit\":\"0\",\"status\":\"ACCOUNT_STATUS_OPEN\"}",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_loads(bad[i], JSON_ALLOW_NUL, NULL);
        struct account_state s = make_account("USD", 0), before = s;
        trpc_status st;

        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_EQUAL(account_state_from_json(j, &s, &st), INTERNAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "malformed account snapshot"));
        assert_states_equal(&s, &before);
        json_decref(j);
    }
}

static CU_TestInfo decide_tests[] = {
    {"open creates an open account at version 1",
     test_account_open_creates_open_account_at_version_1},
    {"open: invalid input, already exists", test_account_open_invalid_input_and_existing},
    {"deposit adds and checks input", test_account_deposit_adds_and_checks_input},
    {"deposit overflow at INT64_MAX", test_account_deposit_overflow_at_int64_max},
    {"withdraw respects balance and overdraft",
     test_account_withdraw_respects_balance_and_overdraft},
    {"withdraw with extreme overdraft never wraps",
     test_account_withdraw_extreme_overdraft_never_wraps},
    {"frozen rejects money movement, not refunds",
     test_account_frozen_rejects_money_movement_but_not_refund},
    {"closed rejects every command but the reversal",
     test_account_closed_rejects_every_command_but_reversal},
    {"close needs a zero balance", test_account_close_needs_zero_balance},
    {"commands on a missing account: NOT_FOUND",
     test_account_state_commands_on_missing_account_not_found},
    {"reason limits", test_account_reason_limits},
    {"transfer debit is like a withdrawal", test_account_transfer_debit_like_withdrawal},
    {"transfer credit rules", test_account_transfer_credit_rules},
    {"transfer debit reverse rules", test_account_transfer_debit_reverse_rules},
    {"pay rules", test_account_pay_rules},
    {"refund rules", test_account_refund_rules},
    {"refund overflowing the balance", test_account_refund_overflowing_balance},
    {"payment info folds log events", test_account_payment_info_folds_log_events},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo evolve_tests[] = {
    {"fold of a sequence gives the expected state",
     test_account_fold_sequence_gives_expected_state},
    {"evolve rejects impossible events", test_account_evolve_rejects_impossible_events},
    {"evolve_proto checks version and shape", test_account_evolve_proto_checks_version_and_shape},
    {"from_proto lower-cases ids, checks shape", test_account_event_from_proto_lower_cases_ids},
    {"every event round trips through protobuf",
     test_account_every_event_round_trips_through_protobuf},
    {"event names both directions", test_account_event_names_both_directions},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo snapshot_tests[] = {
    {"round trips exactly", test_account_snapshot_round_trips_exactly},
    {"format, integer fields accepted", test_account_snapshot_format_and_integer_fields},
    {"rejects malformed", test_account_snapshot_rejects_malformed},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"account decide", NULL, NULL, NULL, NULL, decide_tests},
    {"account evolve", NULL, NULL, NULL, NULL, evolve_tests},
    {"account snapshot", NULL, NULL, NULL, NULL, snapshot_tests},
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
