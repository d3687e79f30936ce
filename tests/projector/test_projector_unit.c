/* test_projector_unit.c - the projector's pure parts in-process: its
 * command-line flags, what one event changes in the read model
 * (rmapply_decode), the saga's keys and reasons, the blocked-aggregate set
 * of the dead letters. No database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "deadletter.h"
#include "options.h"
#include "rawlog.h"
#include "rmapply.h"
#include "saga.h"

#define TENANT "0f0e0d0c-0b0a-4908-8706-050403020100"
#define ACC    "01a20000-0000-7000-8000-00000000000a"
#define ACC2   "01a20000-0000-7000-8000-00000000000b"
#define XFER   "01a20000-0000-7000-8000-0000000000f1"
#define PAY    "01a20000-0000-7000-8000-0000000000c1"

/* ---- options ---- */

static int parse(struct projector_options *o, int argc, const char **argv, char **rest, int *n)
{
    projector_options_init(o);
    return projector_options_parse(o, argc, (char **)argv, rest, n);
}

static void test_options_defaults(void)
{
    struct projector_options o;

    projector_options_init(&o);
    CU_ASSERT_EQUAL(o.rebuild, 0);
    CU_ASSERT_EQUAL(o.batch_size, 500);
    CU_ASSERT_EQUAL(o.poll_ms, 1000);
    CU_ASSERT_EQUAL(o.outbox_retention_s, 7L * 86400);
    CU_ASSERT_EQUAL(o.max_attempts, 5);
    CU_ASSERT_EQUAL(o.backoff_ms, 200);
    CU_ASSERT_EQUAL(o.lock_retry_ms, 1000);
}

static void test_options_flags_taken_out_rest_kept_in_order(void)
{
    const char *argv[] = {"tally-projector",
                          "--db",
                          "x",
                          "--rebuild",
                          "--batch-size",
                          "50",
                          "--listen=1.2.3.4:5",
                          "--max-attempts=3",
                          "--outbox-retention",
                          "12h",
                          "-h",
                          NULL};
    char *rest[16];
    struct projector_options o;
    int n = 0;

    CU_ASSERT_EQUAL_FATAL(parse(&o, 11, argv, rest, &n), 0);
    CU_ASSERT_EQUAL(o.rebuild, 1);
    CU_ASSERT_EQUAL(o.batch_size, 50);
    CU_ASSERT_EQUAL(o.max_attempts, 3);
    CU_ASSERT_EQUAL(o.outbox_retention_s, 12L * 3600);
    CU_ASSERT_EQUAL_FATAL(n, 5);
    CU_ASSERT_STRING_EQUAL(rest[0], "tally-projector");
    CU_ASSERT_STRING_EQUAL(rest[1], "--db");
    CU_ASSERT_STRING_EQUAL(rest[2], "x");
    CU_ASSERT_STRING_EQUAL(rest[3], "--listen=1.2.3.4:5");
    CU_ASSERT_STRING_EQUAL(rest[4], "-h");
    CU_ASSERT_PTR_NULL(rest[5]);
}

static void test_options_bad_values_refused(void)
{
    const char *bad[][3] = {
        {"p", "--batch-size", "0"},        {"p", "--batch-size", "1001"},
        {"p", "--poll-interval-ms", "9"},  {"p", "--max-attempts", "x"},
        {"p", "--retry-backoff-ms", "-1"}, {"p", "--lock-retry-ms", "99"},
        {"p", "--outbox-retention", "7w"}, {"p", "--outbox-retention", "0"},
        {"p", "--outbox-retention", "d"},
    };
    char *rest[8];
    struct projector_options o;
    int n;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(parse(&o, 3, bad[i], rest, &n), -1);
    {
        const char *missing[] = {"p", "--batch-size", NULL};

        CU_ASSERT_EQUAL(parse(&o, 2, missing, rest, &n), -1);
    }
}

static void test_options_durations(void)
{
    long s = 0;

    CU_ASSERT_EQUAL(projector_options_duration("90", &s), 0);
    CU_ASSERT_EQUAL(s, 90);
    CU_ASSERT_EQUAL(projector_options_duration("15m", &s), 0);
    CU_ASSERT_EQUAL(s, 900);
    CU_ASSERT_EQUAL(projector_options_duration("7d", &s), 0);
    CU_ASSERT_EQUAL(s, 604800);
    CU_ASSERT_EQUAL(projector_options_duration("3651d", &s), -1);
    CU_ASSERT_EQUAL(projector_options_duration("1hh", &s), -1);
    CU_ASSERT_EQUAL(projector_options_duration("", &s), -1);
    CU_ASSERT_EQUAL(projector_options_duration("-5", &s), -1);
}

/* ---- rmapply_decode ---- */

static struct rawlog_event event(const char *type, const char *agg_type, const char *agg,
                                 const char *data)
{
    struct rawlog_event e;

    memset(&e, 0, sizeof(e));
    e.tenant_id = TENANT;
    e.aggregate_type = agg_type;
    e.aggregate_id = agg;
    e.version = 2;
    e.event_type = type;
    e.event_version = 1;
    e.data = data;
    e.metadata = "{}";
    e.operation_id = PAY;
    e.correlation_id = "c";
    e.recorded_at = "2024-01-02 03:04:05.000000+00";
    return e;
}

static void test_decode_balance_events(void)
{
    struct rmapply_change c;
    trpc_status st;
    struct rawlog_event e =
        event("Withdrawn", "account", ACC,
              "{\"amount\":{\"minorUnits\":\"250\",\"currency\":\"EUR\"},\"reference\":\"atm\"}");

    CU_ASSERT_EQUAL_FATAL(rmapply_decode(&e, &c, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(c.kind, RMAPPLY_BALANCE);
    CU_ASSERT_STRING_EQUAL(c.entry_kind, "WITHDRAWAL");
    CU_ASSERT_EQUAL(c.delta, -250);
    CU_ASSERT_STRING_EQUAL(c.currency, "EUR");
    CU_ASSERT_STRING_EQUAL(c.reference, "atm");
    CU_ASSERT_STRING_EQUAL(c.transfer_id, "");
    CU_ASSERT_STRING_EQUAL(c.usage_currency, "EUR");
    CU_ASSERT_EQUAL(c.usage_volume, 250);

    e = event("PaymentRefunded", "account", ACC,
              "{\"paymentId\":\"" PAY "\",\"amount\":{\"minorUnits\":\"5\",\"currency\":\"JPY\"},"
              "\"totalRefunded\":{\"minorUnits\":\"5\",\"currency\":\"JPY\"}}");
    CU_ASSERT_EQUAL_FATAL(rmapply_decode(&e, &c, &st), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(c.entry_kind, "REFUND");
    CU_ASSERT_EQUAL(c.delta, 5);
    CU_ASSERT_STRING_EQUAL(c.payment_id, PAY);
    CU_ASSERT_STRING_EQUAL(c.reference, PAY);
}

static void test_decode_transfer_legs_fill_the_transfer_row(void)
{
    struct rmapply_change c;
    trpc_status st;
    struct rawlog_event e = event("TransferCredited", "account", ACC2,
                                  "{\"transferId\":\"" XFER "\",\"amount\":{\"minorUnits\":\"7\","
                                  "\"currency\":\"EUR\"},\"counterpartAccountId\":\"" ACC "\"}");

    CU_ASSERT_EQUAL_FATAL(rmapply_decode(&e, &c, &st), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(c.entry_kind, "TRANSFER_IN");
    CU_ASSERT_EQUAL(c.delta, 7);
    CU_ASSERT_STRING_EQUAL(c.transfer_id, XFER);
    CU_ASSERT_STRING_EQUAL(c.source_account_id, ACC);       /* the counterpart */
    CU_ASSERT_STRING_EQUAL(c.destination_account_id, ACC2); /* this account */
    CU_ASSERT_TRUE(c.credited);
    CU_ASSERT_FALSE(c.debited);

    e = event("TransferDebitReversed", "account", ACC,
              "{\"transferId\":\"" XFER "\",\"amount\":{\"minorUnits\":\"7\",\"currency\":"
              "\"EUR\"},\"counterpartAccountId\":\"" ACC2 "\",\"reason\":\"r\"}");
    CU_ASSERT_EQUAL_FATAL(rmapply_decode(&e, &c, &st), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(c.entry_kind, "TRANSFER_REVERSAL");
    CU_ASSERT_EQUAL(c.delta, 7);
    CU_ASSERT_STRING_EQUAL(c.source_account_id, ACC);
    CU_ASSERT_STRING_EQUAL(c.destination_account_id, ACC2);
    CU_ASSERT_TRUE(c.reversed);
}

static void test_decode_transfer_stream_events(void)
{
    struct rmapply_change c;
    trpc_status st;
    struct rawlog_event e =
        event("TransferFailed", "transfer", XFER,
              "{\"transferId\":\"" XFER "\",\"reason\":\"destination account is frozen\","
              "\"compensated\":true}");

    CU_ASSERT_EQUAL_FATAL(rmapply_decode(&e, &c, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(c.kind, RMAPPLY_TRANSFER);
    CU_ASSERT_TRUE(c.failed);
    CU_ASSERT_TRUE(c.compensated);
    CU_ASSERT_STRING_EQUAL(c.failure_reason, "destination account is frozen");
    CU_ASSERT_STRING_EQUAL(c.usage_currency, "");
    CU_ASSERT_EQUAL(c.usage_volume, 0);

    e = event("TransferRequested", "transfer", XFER,
              "{\"transferId\":\"" XFER "\",\"sourceAccountId\":\"" ACC
              "\",\"destinationAccountId\":\"" ACC2
              "\",\"amount\":{\"minorUnits\":\"9\",\"currency\":\"USD\"},\"reference\":\"rent\"}");
    CU_ASSERT_EQUAL_FATAL(rmapply_decode(&e, &c, &st), GRPC_STATUS_OK);
    CU_ASSERT_TRUE(c.requested);
    CU_ASSERT_EQUAL(c.transfer_amount, 9);
    CU_ASSERT_STRING_EQUAL(c.transfer_reference, "rent");
    CU_ASSERT_STRING_EQUAL(c.usage_currency, "USD");
    CU_ASSERT_EQUAL(c.usage_volume, 9);
}

static void test_decode_refuses_what_does_not_fit(void)
{
    struct rmapply_change c;
    trpc_status st;
    struct rawlog_event bad[] = {
        event("Bogus", "account", ACC, "{}"),
        event("Deposited", "account", ACC, "{\"reference\":\"no amount\"}"),
        event("Deposited", "account", ACC, "not json"),
        event("Deposited", "transfer", XFER,
              "{\"amount\":{\"minorUnits\":\"1\",\"currency\":\"EUR\"}}"),
        event("TransferCompleted", "transfer", XFER, "{\"transferId\":\"" PAY "\"}"),
        event("TransferCompleted", "account", ACC, "{\"transferId\":\"" XFER "\"}"),
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st.msg[0] = '\0';
        CU_ASSERT_EQUAL(rmapply_decode(&bad[i], &c, &st), GRPC_STATUS_INTERNAL);
        CU_ASSERT(st.msg[0] != '\0');
    }
    /* AccountOpened of another account, or not at version 1 */
    bad[0] = event("AccountOpened", "account", ACC,
                   "{\"accountId\":\"" ACC2 "\",\"owner\":\"o\",\"currency\":\"EUR\"}");
    bad[0].version = 1;
    CU_ASSERT_EQUAL(rmapply_decode(&bad[0], &c, &st), GRPC_STATUS_INTERNAL);
    bad[0] = event("AccountOpened", "account", ACC,
                   "{\"accountId\":\"" ACC "\",\"owner\":\"o\",\"currency\":\"EUR\"}");
    CU_ASSERT_EQUAL(rmapply_decode(&bad[0], &c, &st), GRPC_STATUS_INTERNAL); /* version 2 */
    bad[0].version = 1;
    CU_ASSERT_EQUAL(rmapply_decode(&bad[0], &c, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(c.kind, RMAPPLY_OPEN);
}

/* ---- the saga's helpers ---- */

static void test_saga_keys_and_reasons(void)
{
    char buf[300], big[400];

    saga_step_key(XFER, "debit", buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "saga:" XFER ":debit");
    saga_reason("destination", "account is frozen", buf, 257);
    CU_ASSERT_STRING_EQUAL(buf, "destination account is frozen");
    saga_reason("source", "insufficient funds: balance 1", buf, 257);
    CU_ASSERT_STRING_EQUAL(buf, "insufficient funds: balance 1");
    /* cut at 256 bytes, never inside a UTF-8 sequence */
    memset(big, 'a', 254);
    strcpy(big + 254, "\xc3\xa9\xc3\xa9"); /* "éé" crosses byte 256 */
    saga_reason("x", big, buf, 257);
    CU_ASSERT_EQUAL(strlen(buf), 256);
    CU_ASSERT_EQUAL((unsigned char)buf[255], 0xa9);
    memset(big, 'a', 255);
    strcpy(big + 255, "\xc3\xa9");
    saga_reason("x", big, buf, 257);
    CU_ASSERT_EQUAL(strlen(buf), 255); /* the half é is dropped */
}

/* ---- the blocked set ---- */

static void test_dead_letter_set(void)
{
    struct dl_set s;
    char k1[128], k2[128];

    dl_set_init(&s, "rm");
    dl_key(TENANT, "account", ACC, k1, sizeof(k1));
    dl_key(TENANT, "account", ACC2, k2, sizeof(k2));
    CU_ASSERT_STRING_EQUAL(k1, TENANT "/account/" ACC);
    CU_ASSERT_EQUAL(dl_blocked_head(&s, k1), 0);
    for (int i = 0; i < 20; i++) { /* grows */
        char k[128];

        snprintf(k, sizeof(k), "k%d", i);
        CU_ASSERT_EQUAL(dl_block(&s, k, 100 + i), 0);
    }
    CU_ASSERT_EQUAL(dl_block(&s, k1, 7), 0);
    CU_ASSERT_EQUAL(dl_block(&s, k2, 8), 0);
    CU_ASSERT_EQUAL(dl_block(&s, k1, 9), 0); /* a new head replaces the old */
    CU_ASSERT_EQUAL(dl_blocked_head(&s, k1), 9);
    CU_ASSERT_EQUAL(dl_blocked_head(&s, k2), 8);
    CU_ASSERT_EQUAL(dl_blocked_head(&s, "k19"), 119);
    dl_unblock(&s, k1);
    CU_ASSERT_EQUAL(dl_blocked_head(&s, k1), 0);
    CU_ASSERT_EQUAL(dl_blocked_head(&s, k2), 8);
    CU_ASSERT_EQUAL(s.n, 21);
    dl_set_cleanup(&s);
    dl_set_cleanup(&s); /* idempotent */
}

static CU_TestInfo options_tests[] = {
    {"defaults", test_options_defaults},
    {"flags taken out, the rest kept in order", test_options_flags_taken_out_rest_kept_in_order},
    {"bad or missing values refused", test_options_bad_values_refused},
    {"durations", test_options_durations},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo decode_tests[] = {
    {"balance events: kind, signed amount, reference, usage", test_decode_balance_events},
    {"transfer legs fill the transfer row", test_decode_transfer_legs_fill_the_transfer_row},
    {"transfer stream events", test_decode_transfer_stream_events},
    {"what does not fit its stream is a projection error", test_decode_refuses_what_does_not_fit},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo misc_tests[] = {
    {"saga step keys and failure reasons", test_saga_keys_and_reasons},
    {"dead-letter blocked set", test_dead_letter_set},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"options", NULL, NULL, NULL, NULL, options_tests},
    {"rmapply_decode", NULL, NULL, NULL, NULL, decode_tests},
    {"saga and dead letters", NULL, NULL, NULL, NULL, misc_tests},
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
