/* test_saga.c - the command core (server/lib/cmdcore.c) through the real
 * tally-command, and the transfer saga of tally-projector end to end. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "ptest.h"
#include "store.h"
#include "uuid.h"

#define WAIT_MS 20000

static struct ptest T;

static int64_t sql_int(const char *sql, const char *a1, const char *a2)
{
    const char *v[2] = {a1, a2};
    int64_t out = -999999;

    CU_ASSERT_EQUAL(ptest_int(&T, sql, a2 ? 2 : (a1 ? 1 : 0), v, &out), 0);
    return out;
}

/* The balance of an account folded from its events by SQL (independent of
 * every C path). */
static int64_t log_balance(const char *id)
{
    return sql_int("SELECT COALESCE(sum(CASE WHEN event_type IN ('Deposited',"
                   " 'TransferCredited', 'TransferDebitReversed', 'PaymentRefunded')"
                   " THEN 1 ELSE -1 END * (data->'amount'->>'minorUnits')::bigint), 0)"
                   " FROM events WHERE aggregate_id = $1::uuid AND data ? 'amount'",
                   id, NULL);
}

static int64_t stream_version(const char *id)
{
    return sql_int("SELECT COALESCE(max(version), 0) FROM events WHERE aggregate_id = $1::uuid", id,
                   NULL);
}

static int setup(void)
{
    return ptest_setup(&T) == 0 ? 0 : -1;
}

static int teardown(void)
{
    return ptest_teardown(&T) == 0 ? 0 : -1;
}

/* ---- the command path ---- */

static void test_command_open_deposit_withdraw(void)
{
    char a[PTEST_ID];
    trpc_status st = {0};

    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, a, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_deposit(&T, a, 1000, "EUR", "salary", &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_withdraw(&T, a, 300, "EUR", &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_withdraw(&T, a, 800, "EUR", &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "insufficient funds"));
    CU_ASSERT_EQUAL(ptest_deposit(&T, a, 5, "USD", NULL, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_EQUAL(log_balance(a), 700);
    CU_ASSERT_EQUAL(stream_version(a), 3);
}

static void test_command_payment_refund_freeze_close(void)
{
    char a[PTEST_ID], pay[PTEST_ID];
    trpc_status st = {0};

    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "JPY", 100, a, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_pay(&T, a, 60, "JPY", pay, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_refund(&T, a, pay, 70, "JPY", &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_EQUAL(ptest_refund(&T, a, pay, 60, "JPY", &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_freeze(&T, a, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_deposit(&T, a, 1, "JPY", NULL, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_EQUAL(ptest_unfreeze(&T, a, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_deposit(&T, a, 1, "JPY", NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_close(&T, a, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_EQUAL(ptest_withdraw(&T, a, 1, "JPY", &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_close(&T, a, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_deposit(&T, a, 1, "JPY", NULL, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_EQUAL(log_balance(a), 0);
    CU_ASSERT_EQUAL(stream_version(a), 8);
}

/* The saga's idempotency keys ("saga:<transfer>:<step>") are reserved: a
 * client that took one could stall a transfer. */
static void test_command_saga_key_prefix_is_reserved(void)
{
    char a[PTEST_ID];
    trpc_status st = {0};

    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, a, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ptest_deposit_key(&T, a, 5, "EUR", NULL, "saga:x:debit", &st),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "reserved"));
    CU_ASSERT_EQUAL(ptest_deposit_key(&T, a, 5, "EUR", NULL, "sagax", &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(stream_version(a), 2);
}

struct hammer {
    const char *account;
    int n;
    int ok, aborted, failures;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;

    for (int i = 0; i < h->n; i++) {
        trpc_status st = {0};

        grpc_status_code code = ptest_deposit(&T, h->account, 1, "EUR", NULL, &st);

        if (code == GRPC_STATUS_OK) {
            h->ok++;
        } else if (code == GRPC_STATUS_ABORTED) {
            h->aborted++; /* allowed: bounded retries, and nothing written */
        } else {
            fprintf(stderr, "deposit: %s %s\n", trpc_status_code_name(st.code), st.msg);
            h->failures++;
        }
    }
    return NULL;
}

/* Concurrent writers on one stream: the version conflicts are retried by
 * cmdcore_account (a bounded number of times: ABORTED after that, with
 * nothing written), every acknowledged deposit lands once, the versions are
 * contiguous. */
static void test_command_concurrent_writers_retry_conflicts(void)
{
    enum { THREADS = 6, EACH = 25 };
    char a[PTEST_ID];
    trpc_status st = {0};
    pthread_t th[THREADS];
    struct hammer h[THREADS];
    int ok = 0, aborted = 0;

    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, a, &st), GRPC_STATUS_OK);
    for (int i = 0; i < THREADS; i++) {
        h[i] = (struct hammer){a, EACH, 0, 0, 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(h[i].failures, 0);
        ok += h[i].ok;
        aborted += h[i].aborted;
    }
    CU_ASSERT(ok > THREADS * EACH / 2);
    CU_ASSERT_EQUAL(ok + aborted, THREADS * EACH);
    CU_ASSERT_EQUAL(log_balance(a), ok);
    CU_ASSERT_EQUAL(stream_version(a), 1 + ok);
    CU_ASSERT_EQUAL(sql_int("SELECT count(DISTINCT version) FROM events"
                            " WHERE aggregate_id = $1::uuid",
                            a, NULL),
                    1 + ok);
}

/* ---- the saga ---- */

static const char *const PROJECTOR_ARGS[] = {"--retry-backoff-ms", "50", "--max-attempts", "2",
                                             NULL};

static int saga_setup(void)
{
    if (ptest_setup(&T) != 0 || ptest_projector_start(&T, 0, PROJECTOR_ARGS) != 0)
        return -1;
    return 0;
}

static int64_t count_events(const char *transfer_id, const char *type)
{
    return sql_int("SELECT count(*) FROM events WHERE event_type = $2"
                   "   AND (aggregate_id::text = $1 OR data->>'transferId' = $1)",
                   transfer_id, type);
}

/* The saga's event of a type for a transfer: its causation must be the
 * event_id of the trigger type, its correlation the request's. */
static void check_chain(const char *transfer_id, const char *type, const char *trigger)
{
    const char *v[3] = {transfer_id, type, trigger};
    PGresult *res = ptest_sql(&T,
                              "SELECT e.metadata->>'causationId' = t.event_id::text,"
                              "       e.correlation_id = r.correlation_id"
                              "  FROM events e, events t, events r"
                              " WHERE e.event_type = $2 AND (e.aggregate_id::text = $1"
                              "       OR e.data->>'transferId' = $1)"
                              "   AND t.event_type = $3 AND (t.aggregate_id::text = $1"
                              "       OR t.data->>'transferId' = $1)"
                              "   AND r.event_type = 'TransferRequested'"
                              "   AND r.aggregate_id::text = $1",
                              3, v);

    CU_ASSERT_EQUAL_FATAL(PQntuples(res), 1);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 0), "t");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 1), "t");
    PQclear(res);
}

static void test_saga_transfer_wait_succeeds(void)
{
    char a[PTEST_ID], b[PTEST_ID], t[PTEST_ID], reason[257];
    trpc_status st = {0};
    int status = 0;

    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, a, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, b, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_deposit(&T, a, 1000, "EUR", NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_transfer(&T, a, b, 300, "EUR", 1, 20000, t, &status, reason, &st),
                          GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(status, TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED);
    CU_ASSERT_STRING_EQUAL(reason, "");
    CU_ASSERT_EQUAL(log_balance(a), 700);
    CU_ASSERT_EQUAL(log_balance(b), 300);
    CU_ASSERT_EQUAL(count_events(t, "TransferDebited"), 1);
    CU_ASSERT_EQUAL(count_events(t, "TransferCredited"), 1);
    CU_ASSERT_EQUAL(count_events(t, "TransferCompleted"), 1);
    CU_ASSERT_EQUAL(count_events(t, "TransferFailed"), 0);
    check_chain(t, "TransferDebited", "TransferRequested");
    check_chain(t, "TransferCredited", "TransferDebited");
    check_chain(t, "TransferCompleted", "TransferCredited");
    /* the steps' keys, in the transfer's tenant */
    CU_ASSERT_EQUAL(sql_int("SELECT count(*) FROM idempotency_keys WHERE key LIKE 'saga:' || $1 "
                            "|| ':%' AND tenant_id = $2::uuid",
                            t, T.tenant_id),
                    3);
    /* the read model follows */
    CU_ASSERT_EQUAL_FATAL(ptest_wait_quiet(&T, WAIT_MS), 0);
    CU_ASSERT_EQUAL(sql_int("SELECT balance FROM rm.accounts WHERE account_id = $1::uuid", a, NULL),
                    700);
    CU_ASSERT_EQUAL(sql_int("SELECT count(*) FROM rm.transfers WHERE transfer_id = $1::uuid"
                            " AND state = 'COMPLETED' AND status = 'SUCCEEDED'",
                            t, NULL),
                    1);
}

static void test_saga_frozen_destination_fails_compensated(void)
{
    char a[PTEST_ID], b[PTEST_ID], t[PTEST_ID], reason[257];
    trpc_status st = {0};
    int status = 0;

    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, a, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, b, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_deposit(&T, a, 1000, "EUR", NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_deposit(&T, b, 50, "EUR", NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_freeze(&T, b, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_transfer(&T, a, b, 300, "EUR", 1, 20000, t, &status, reason, &st),
                          GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(status, TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED);
    CU_ASSERT_STRING_EQUAL(reason, "destination account is frozen");
    CU_ASSERT_EQUAL(log_balance(a), 1000);
    CU_ASSERT_EQUAL(log_balance(b), 50);
    CU_ASSERT_EQUAL(count_events(t, "TransferDebited"), 1);
    CU_ASSERT_EQUAL(count_events(t, "TransferCredited"), 0);
    CU_ASSERT_EQUAL(count_events(t, "TransferDebitReversed"), 1);
    CU_ASSERT_EQUAL(count_events(t, "TransferFailed"), 1);
    CU_ASSERT_EQUAL(sql_int("SELECT count(*) FROM events WHERE aggregate_id = $1::uuid"
                            "   AND event_type = 'TransferFailed'"
                            "   AND (data->>'compensated')::boolean",
                            t, NULL),
                    1);
    check_chain(t, "TransferDebitReversed", "TransferDebited");
    check_chain(t, "TransferFailed", "TransferDebitReversed");
    CU_ASSERT_EQUAL_FATAL(ptest_wait_quiet(&T, WAIT_MS), 0);
    CU_ASSERT_EQUAL(sql_int("SELECT count(*) FROM rm.transfers WHERE transfer_id = $1::uuid"
                            " AND state = 'FAILED' AND status = 'FAILED' AND compensated"
                            " AND reversed_at IS NOT NULL",
                            t, NULL),
                    1);
    CU_ASSERT_EQUAL(sql_int("SELECT balance FROM rm.accounts WHERE account_id = $1::uuid", a, NULL),
                    1000);
}

static void test_saga_insufficient_funds_fails_uncompensated(void)
{
    char a[PTEST_ID], b[PTEST_ID], t[PTEST_ID], reason[257];
    trpc_status st = {0};
    int status = 0;

    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, a, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, b, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_deposit(&T, a, 100, "EUR", NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_transfer(&T, a, b, 300, "EUR", 1, 20000, t, &status, reason, &st),
                          GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(status, TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "insufficient funds"));
    CU_ASSERT_EQUAL(log_balance(a), 100);
    CU_ASSERT_EQUAL(log_balance(b), 0);
    CU_ASSERT_EQUAL(count_events(t, "TransferDebited"), 0);
    CU_ASSERT_EQUAL(sql_int("SELECT count(*) FROM events WHERE aggregate_id = $1::uuid"
                            "   AND event_type = 'TransferFailed'"
                            "   AND NOT COALESCE((data->>'compensated')::boolean, false)",
                            t, NULL),
                    1);
    check_chain(t, "TransferFailed", "TransferRequested");
}

/* kill -9 the projector again and again while the saga works through a
 * backlog of transfers: every transfer ends exactly once, no leg is written
 * twice, the money adds up. */
static void test_saga_crash_resumes_without_double_legs(void)
{
    enum { ACCOUNTS = 6, TRANSFERS = 150, KILLS = 5 };
    char acc[ACCOUNTS][PTEST_ID];
    trpc_status st = {0};
    int64_t total = 0, pending = -1, doubled = -1, unfinished = -1;
    unsigned seed = 7;

    ptest_projector_stop(&T, 0); /* a backlog builds up */
    for (int i = 0; i < ACCOUNTS; i++) {
        CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, acc[i], &st), GRPC_STATUS_OK);
        if (i == ACCOUNTS - 1) { /* one frozen destination: reversals too */
            CU_ASSERT_EQUAL_FATAL(ptest_freeze(&T, acc[i], &st), GRPC_STATUS_OK);
        } else {
            CU_ASSERT_EQUAL_FATAL(ptest_deposit(&T, acc[i], 500, "EUR", NULL, &st), GRPC_STATUS_OK);
        }
    }
    for (int i = 0; i < TRANSFERS; i++) {
        int s = (int)(rand_r(&seed) % (ACCOUNTS - 1)), d = (int)(rand_r(&seed) % ACCOUNTS);

        if (d == s)
            d = ACCOUNTS - 1;
        CU_ASSERT_EQUAL(ptest_transfer(&T, acc[s], acc[d], 1 + rand_r(&seed) % 200, "EUR", 0, 0,
                                       NULL, NULL, NULL, &st),
                        GRPC_STATUS_OK);
    }
    for (int k = 0; k < KILLS; k++) {
        CU_ASSERT_EQUAL_FATAL(ptest_projector_start(&T, 0, PROJECTOR_ARGS), 0);
        ptest_sleep_ms(150 + rand_r(&seed) % 250);
        ptest_projector_kill9(&T, 0);
    }
    CU_ASSERT_EQUAL_FATAL(ptest_projector_start(&T, 0, PROJECTOR_ARGS), 0);
    CU_ASSERT_EQUAL(ptest_wait_quiet(&T, 60000), 0);
    CU_ASSERT_EQUAL(ptest_int(&T, "SELECT count(*) FROM operations WHERE status = 'PENDING'", 0,
                              NULL, &pending),
                    0);
    CU_ASSERT_EQUAL(pending, 0);
    /* at most one of each leg per transfer */
    CU_ASSERT_EQUAL(ptest_int(&T,
                              "SELECT count(*) FROM (SELECT data->>'transferId', event_type"
                              "  FROM events WHERE event_type IN ('TransferDebited',"
                              "       'TransferCredited', 'TransferDebitReversed')"
                              " GROUP BY 1, 2 HAVING count(*) > 1) x",
                              0, NULL, &doubled),
                    0);
    CU_ASSERT_EQUAL(doubled, 0);
    /* every transfer has exactly one outcome */
    CU_ASSERT_EQUAL(ptest_int(&T,
                              "SELECT count(*) FROM events r WHERE r.event_type = "
                              "'TransferRequested' AND (SELECT count(*) FROM events o"
                              "  WHERE o.aggregate_id = r.aggregate_id AND o.event_type IN"
                              "  ('TransferCompleted', 'TransferFailed')) <> 1",
                              0, NULL, &unfinished),
                    0);
    CU_ASSERT_EQUAL(unfinished, 0);
    /* no money made or lost */
    for (int i = 0; i < ACCOUNTS; i++)
        total += log_balance(acc[i]);
    CU_ASSERT_EQUAL(total, 500 * (ACCOUNTS - 1));
    CU_ASSERT_EQUAL(log_balance(acc[ACCOUNTS - 1]), 0);
}

/* A saga step that cannot succeed (a credit for a transfer that was never
 * requested: a corrupt log) becomes a dead letter of projection "saga"
 * after --max-attempts; other transfers go on. */
static void test_saga_poison_step_is_dead_lettered(void)
{
    char a[PTEST_ID], b[PTEST_ID], ghost[UUID_STR_SIZE], op[UUID_STR_SIZE], ev_id[UUID_STR_SIZE];
    const char *retry_all[] = {"dead-letters", "retry", "--all", "--projection", "saga", NULL};
    trpc_status st = {0};
    struct store_event ev = {0};
    struct store_append ap = {0};
    struct store_position pos;
    json_t *data;
    int status = 0;
    long deadline;

    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, a, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_open(&T, "EUR", 0, b, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(ptest_deposit(&T, a, 100, "EUR", NULL, &st), GRPC_STATUS_OK);
    uuid_v7_new(ghost);
    uuid_v7_new(op);
    uuid_v7_new(ev_id);
    data = json_pack("{s:s, s:{s:s, s:s}, s:s}", "transferId", ghost, "amount", "minorUnits", "5",
                     "currency", "EUR", "counterpartAccountId", a);
    ev.event_id = ev_id;
    ev.aggregate_type = "account";
    ev.aggregate_id = b;
    ev.version = 2;
    ev.event_type = "TransferCredited";
    ev.event_version = 1;
    ev.data = data;
    ap.tenant_id = T.tenant_id;
    ap.operation_id = op;
    ap.operation_kind = "TransferCredit";
    ap.operation_status = "SUCCEEDED";
    ap.operation_aggregate_type = "account";
    ap.operation_aggregate_id = b;
    ap.correlation_id = "ghost";
    ap.causation_id = op;
    ap.events = &ev;
    ap.n_events = 1;
    CU_ASSERT_EQUAL(store_append(T.conn, &ap, &pos, NULL, &st), GRPC_STATUS_OK);
    json_decref(data);
    /* the next transfer is served while the ghost step fails */
    CU_ASSERT_EQUAL(ptest_transfer(&T, a, b, 30, "EUR", 1, 20000, NULL, &status, NULL, &st),
                    GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(status, TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED);
    deadline = ptest_now_ms() + 20000;
    while (sql_int("SELECT count(*) FROM dead_letters WHERE projection = 'saga'", NULL, NULL) ==
               0 &&
           ptest_now_ms() < deadline)
        ptest_sleep_ms(50);
    CU_ASSERT_EQUAL(sql_int("SELECT count(*) FROM dead_letters WHERE projection = 'saga'"
                            " AND aggregate_type = 'transfer' AND aggregate_id = $1::uuid"
                            " AND attempts = 2 AND queued_behind IS NULL AND resolved_at IS NULL"
                            " AND error LIKE '%no request%'",
                            ghost, NULL),
                    1);
    /* a retry fails the same way: one more attempt, still there */
    CU_ASSERT_EQUAL(ptest_admin(&T, retry_all, NULL), 0);
    deadline = ptest_now_ms() + 20000;
    while (sql_int("SELECT count(*) FROM dead_letters WHERE retry_requested_at IS NOT NULL", NULL,
                   NULL) != 0 &&
           ptest_now_ms() < deadline)
        ptest_sleep_ms(50);
    CU_ASSERT_EQUAL(
        sql_int("SELECT attempts FROM dead_letters WHERE projection = 'saga'", NULL, NULL), 3);
}

static CU_TestInfo saga_tests[] = {
    {"Transfer with wait: SUCCEEDED, causation chain, read model",
     test_saga_transfer_wait_succeeds},
    {"frozen destination: FAILED, compensated, balances unchanged",
     test_saga_frozen_destination_fails_compensated},
    {"insufficient funds: FAILED, not compensated",
     test_saga_insufficient_funds_fails_uncompensated},
    {"kill -9 mid-saga: resumes, no double leg", test_saga_crash_resumes_without_double_legs},
    {"a step that cannot succeed becomes a saga dead letter",
     test_saga_poison_step_is_dead_lettered},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo command_tests[] = {
    {"open, deposit, withdraw, rejections", test_command_open_deposit_withdraw},
    {"pay, refund, freeze, unfreeze, close", test_command_payment_refund_freeze_close},
    {"concurrent writers retry version conflicts", test_command_concurrent_writers_retry_conflicts},
    {"the saga's idempotency key prefix is reserved", test_command_saga_key_prefix_is_reserved},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"command path", setup, teardown, NULL, NULL, command_tests},
    {"transfer saga", saga_setup, teardown, NULL, NULL, saga_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned int failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
