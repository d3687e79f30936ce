/* test_pg_restart.c - PostgreSQL restarted (fast stop, then start) under a
 * command and query load, on a private cluster of this test's own (ctest
 * runs it with TALLY_TEST_DATABASE_URL unset):
 *
 *   - while the database is down, calls fail with UNAVAILABLE, each within
 *     its deadline (none hangs, none gets another status), and no daemon
 *     exits;
 *   - once it is back, every daemon reconnects by itself (the command
 *     server's workers acknowledge Deposits again, the query server answers
 *     again, the projector projects again) - no daemon is restarted;
 *   - every acknowledged Deposit is in the log exactly once; an
 *     unacknowledged one (its commit may have been lost with the
 *     connection, or not) is wholly present or wholly absent, and a retry
 *     with its idempotency key leaves exactly one effect;
 *   - the read model equals the log and the checkpoint reaches its head;
 *   - every daemon then exits 0 on SIGTERM with no sanitizer report.
 *
 * Two outages: one of about 3 s, one of a stop and an immediate start. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "ffx.h"

#define WAIT_MS 60000 /* for a condition that should take a few seconds */

static int suite_init(void)
{
    static const int all[FFX_N_DAEMONS] = {1, 1, 1};

    if (!harness_pg_is_private()) {
        fprintf(stderr, "test_pg_restart: needs the harness's private PostgreSQL "
                        "(run it with TALLY_TEST_DATABASE_URL unset)\n");
        return -1;
    }
    return ffx_start(all);
}

static int suite_cleanup(void)
{
    return ffx_stop();
}

/* Waits until fn(l) >= want (timeout_ms); returns the last value. */
static long wait_count(const struct ffx_load *l, long (*fn)(const struct ffx_load *), long want,
                       int64_t timeout_ms)
{
    int64_t deadline = ffx_mono_ms() + timeout_ms;
    long v;

    while ((v = fn(l)) < want && ffx_mono_ms() < deadline)
        ffx_sleep_ms(20);
    return v;
}

static void daemons_alive(void)
{
    for (int i = 0; i < FFX_N_DAEMONS; i++)
        CU_ASSERT_TRUE(harness_daemon_running(&F.d[i]));
}

/* One call of each kind while the database is down: UNAVAILABLE, quickly. */
static void calls_while_down(void)
{
    trpc_status st = {0};
    Tally__V1__ProjectionStatus *s = NULL;
    int64_t t0 = ffx_mono_ms(), ms;
    grpc_status_code code;

    code = ffx_deposit(0, 1, "pg-down-probe", 5000, NULL, &st);
    ms = ffx_mono_ms() - t0;
    CU_ASSERT_EQUAL(code, GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT(ms < 5000 + FFX_SLACK_MS);
    fprintf(stderr, "(down: Deposit %d \"%s\" in %" PRId64 " ms", code, st.msg, ms);
    t0 = ffx_mono_ms();
    code = ffx_get_account(0, 5000, NULL, &st);
    ms = ffx_mono_ms() - t0;
    CU_ASSERT_EQUAL(code, GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT(ms < 5000 + FFX_SLACK_MS);
    fprintf(stderr, ", GetAccount %d in %" PRId64 " ms", code, ms);
    t0 = ffx_mono_ms();
    code = ffx_projection_status(5000, &s, &st);
    ms = ffx_mono_ms() - t0;
    CU_ASSERT_EQUAL(code, GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT(ms < 5000 + FFX_SLACK_MS);
    fprintf(stderr, ", GetProjectionStatus %d in %" PRId64 " ms) ", code, ms);
    if (s != NULL)
        protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void test_restart_under_load(void)
{
    struct ffx_load *l = ffx_load_start(4, 2, "pg", 50);
    struct ffx_op *ops;
    struct ffx_tally tc, tq;
    struct ffx_check c;
    size_t n;
    long acked, failed, queried;
    int64_t t0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    for (int round = 0; round < 2; round++) {
        /* load flowing */
        acked = ffx_load_acked(l);
        CU_ASSERT(wait_count(l, ffx_load_acked, acked + 25, WAIT_MS) >= acked + 25);
        queried = ffx_load_queried(l);
        CU_ASSERT(wait_count(l, ffx_load_queried, queried + 10, WAIT_MS) >= queried + 10);

        /* the outage */
        failed = ffx_load_failed(l);
        t0 = ffx_mono_ms();
        CU_ASSERT_EQUAL_FATAL(harness_pg_stop(), 0);
        fprintf(stderr, "(round %d: fast stop in %" PRId64 " ms) ", round, ffx_mono_ms() - t0);
        if (round == 0) {
            /* the load keeps failing fast; the daemons stay up */
            CU_ASSERT(wait_count(l, ffx_load_failed, failed + 20, WAIT_MS) >= failed + 20);
            calls_while_down();
            ffx_sleep_ms(1500);
            daemons_alive();
        }
        t0 = ffx_mono_ms();
        CU_ASSERT_EQUAL_FATAL(harness_pg_start(), 0);
        fprintf(stderr, "(started in %" PRId64 " ms) ", ffx_mono_ms() - t0);

        /* every daemon reconnects by itself */
        t0 = ffx_mono_ms();
        acked = ffx_load_acked(l);
        CU_ASSERT(wait_count(l, ffx_load_acked, acked + 25, WAIT_MS) >= acked + 25);
        queried = ffx_load_queried(l);
        CU_ASSERT(wait_count(l, ffx_load_queried, queried + 10, WAIT_MS) >= queried + 10);
        fprintf(stderr, "(serving again after %" PRId64 " ms) ", ffx_mono_ms() - t0);
        daemons_alive();
    }
    ffx_load_stop(l);
    ffx_load_print(l, "PostgreSQL restarted twice under load");
    ffx_load_tallies(l, &tc, &tq);
    /* failures were UNAVAILABLE, within their deadlines */
    CU_ASSERT(tc.unavailable > 0);
    CU_ASSERT(tq.unavailable > 0);
    CU_ASSERT_EQUAL(tc.other + tc.deadline + tc.late, 0);
    CU_ASSERT_EQUAL(tq.other + tq.deadline + tq.late, 0);

    ops = ffx_load_ops(l, &n);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_EQUAL(ffx_check_ops(ops, n, &c), 0);
    fprintf(stderr,
            "  %ld acknowledged (%ld wrong), %ld not: %ld wholly present, %ld wholly absent, "
            "%ld torn\n",
            c.acked, c.acked_bad, c.unacked, c.unacked_whole, c.unacked_absent, c.torn);
    CU_ASSERT(c.unacked > 0);
    CU_ASSERT_EQUAL(ffx_retry_unacked(ops, n, WAIT_MS), 0);
    CU_ASSERT_EQUAL(ffx_check_ops(ops, n, &c), 0);
    CU_ASSERT_EQUAL(c.acked, (long)n);
    CU_ASSERT_EQUAL(ffx_log_sum(), ffx_ops_sum(ops, n));
    /* the projector reconnected too: the read model catches up with the log */
    t0 = ffx_mono_ms();
    CU_ASSERT_EQUAL(ffx_wait_projected(WAIT_MS), 0);
    fprintf(stderr, "  projected in %" PRId64 " ms\n", ffx_mono_ms() - t0);
    ffx_load_free(l);
}

static void test_daemons_exit_cleanly(void)
{
    for (int i = FFX_N_DAEMONS - 1; i >= 0; i--)
        CU_ASSERT_EQUAL(ffx_daemon_stop_checked((enum ffx_daemon)i), 0);
}

static CU_TestInfo tests[] = {
    {"PostgreSQL restarted under load: UNAVAILABLE, reconnect, exactly once",
     test_restart_under_load},
    {"the daemons exit 0 with clean logs", test_daemons_exit_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"pg_restart", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
