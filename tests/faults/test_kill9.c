/* test_kill9.c - kill -9 of each daemon under load.
 *
 * Suite "command": six client threads Deposit with idempotency keys; the
 * command server is killed with SIGKILL three times mid-load and restarted
 * on the same port. After each kill, in SQL: every acknowledged Deposit is
 * in the log exactly once (event, outbox row, operation SUCCEEDED,
 * idempotency row, all with the operation id the client got); every
 * unacknowledged one is wholly present or wholly absent. Then a client
 * retries each unacknowledged Deposit with its key: each ends with exactly
 * one effect, and the balances in the log add up to the amounts sent. Then
 * the same load meets a SIGTERM: the server drains and exits 0, and nothing
 * it acknowledged is missing.
 *
 * Suite "projector_query": Deposits and GetAccount/GetProjectionStatus
 * calls run while the projector is killed (twice, restarted each time)
 * and the query server is killed (restarted on the same port): queries
 * fail with UNAVAILABLE only while it is down and are answered again after;
 * the read model then equals the log (balances == sum of Deposited events
 * per account, one ledger line per event, the full fold) and the
 * checkpoint reaches the head of the log: nothing lost or doubled.
 *
 * The last test of each suite stops the daemons: exit 0, clean logs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "ffx.h"

#define WAIT_MS 60000 /* for a condition that should take a few seconds */

static int all_init(void)
{
    static const int all[FFX_N_DAEMONS] = {1, 1, 1};

    return ffx_start(all);
}

static int all_cleanup(void)
{
    return ffx_stop();
}

static long wait_count(const struct ffx_load *l, long (*fn)(const struct ffx_load *), long want,
                       int64_t timeout_ms)
{
    int64_t deadline = ffx_mono_ms() + timeout_ms;
    long v;

    while ((v = fn(l)) < want && ffx_mono_ms() < deadline)
        ffx_sleep_ms(10);
    return v;
}

static void test_daemons_exit_cleanly(void)
{
    for (int i = FFX_N_DAEMONS - 1; i >= 0; i--)
        CU_ASSERT_EQUAL(ffx_daemon_stop_checked((enum ffx_daemon)i), 0);
}

/* ---- tally-command ---- */

static void test_command_kill9_under_load(void)
{
    struct ffx_op *all = NULL;
    size_t n_all = 0;
    struct ffx_check c;
    long whole = 0, absent = 0;

    for (int round = 0; round < 3; round++) {
        char tag[16];
        struct ffx_load *l;
        struct ffx_op *ops, *grown;
        struct ffx_tally tc;
        size_t n;
        long acked;

        snprintf(tag, sizeof(tag), "k%d", round);
        l = ffx_load_start(6, 0, tag, 20);
        CU_ASSERT_PTR_NOT_NULL_FATAL(l);
        /* mid-load: kill after a round-dependent number of acks */
        acked = 30 + 25 * round;
        CU_ASSERT(wait_count(l, ffx_load_acked, acked, WAIT_MS) >= acked);
        CU_ASSERT_EQUAL_FATAL(ffx_daemon_kill9(FFX_CMD), 0);
        /* every thread sees the failure */
        CU_ASSERT(wait_count(l, ffx_load_failed, 6, WAIT_MS) >= 6);
        ffx_load_stop(l);
        ffx_load_print(l, tag);
        ffx_load_tallies(l, &tc, NULL);
        CU_ASSERT_EQUAL(tc.other + tc.deadline + tc.late, 0);
        ops = ffx_load_ops(l, &n);

        /* before anyone retries: all or nothing, in SQL */
        CU_ASSERT_EQUAL(ffx_check_ops(ops, n, &c), 0);
        fprintf(stderr,
                "  %ld acknowledged (%ld wrong), %ld not: %ld wholly present, %ld wholly "
                "absent, %ld torn\n",
                c.acked, c.acked_bad, c.unacked, c.unacked_whole, c.unacked_absent, c.torn);
        CU_ASSERT(c.unacked > 0);
        whole += c.unacked_whole;
        absent += c.unacked_absent;

        /* restart; the client retries each unacknowledged Deposit */
        CU_ASSERT_EQUAL_FATAL(ffx_daemon_start(FFX_CMD), 0);
        CU_ASSERT_EQUAL(ffx_retry_unacked(ops, n, WAIT_MS), 0);
        grown = realloc(all, (n_all + n) * sizeof(*all));
        CU_ASSERT_PTR_NOT_NULL_FATAL(grown);
        all = grown;
        memcpy(all + n_all, ops, n * sizeof(*ops));
        n_all += n;
        ffx_load_free(l);
    }
    fprintf(stderr, "  unacknowledged at a kill: %ld wholly present, %ld wholly absent\n", whole,
            absent);
    /* exactly one effect each, after the retries */
    CU_ASSERT_EQUAL(ffx_check_ops(all, n_all, &c), 0);
    CU_ASSERT_EQUAL(c.acked, (long)n_all);
    CU_ASSERT_EQUAL(ffx_log_sum(), ffx_ops_sum(all, n_all));
    CU_ASSERT_EQUAL(ffx_wait_projected(WAIT_MS), 0);
    free(all);
}

/* A graceful stop under load (SIGTERM): in-flight calls drain, the daemon
 * exits 0, and every call it acknowledged is in the log exactly once; calls
 * it refused meanwhile are all or nothing and take effect once on retry. */
static void test_command_sigterm_under_load(void)
{
    struct ffx_load *l = ffx_load_start(6, 0, "term", 20);
    struct ffx_tally tc;
    struct ffx_check c;
    struct ffx_op *ops;
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT(wait_count(l, ffx_load_acked, 60, WAIT_MS) >= 60);
    CU_ASSERT_EQUAL(ffx_daemon_stop_checked(FFX_CMD), 0); /* exit 0, clean log */
    CU_ASSERT(wait_count(l, ffx_load_failed, 6, WAIT_MS) >= 6);
    ffx_load_stop(l);
    ffx_load_print(l, "term");
    ffx_load_tallies(l, &tc, NULL);
    /* a call caught by the stop fails UNAVAILABLE or (seen now and then,
       cause not traced) CANCELLED: unacknowledged either way, and the SQL
       check below shows it wrote all or nothing */
    CU_ASSERT_EQUAL(tc.deadline + tc.late, 0);
    CU_ASSERT(tc.other == 0 || tc.other_code == GRPC_STATUS_CANCELLED);
    ops = ffx_load_ops(l, &n);
    CU_ASSERT_EQUAL(ffx_check_ops(ops, n, &c), 0);
    fprintf(stderr, "  %ld acknowledged (%ld wrong), %ld not: %ld wholly present, %ld absent\n",
            c.acked, c.acked_bad, c.unacked, c.unacked_whole, c.unacked_absent);
    CU_ASSERT_EQUAL_FATAL(ffx_daemon_start(FFX_CMD), 0);
    CU_ASSERT_EQUAL(ffx_retry_unacked(ops, n, WAIT_MS), 0);
    CU_ASSERT_EQUAL(ffx_check_ops(ops, n, &c), 0);
    CU_ASSERT_EQUAL(c.acked, (long)n);
    ffx_load_free(l);
}

/* ---- tally-projector and tally-query ---- */

static void test_projector_and_query_kill9_under_load(void)
{
    struct ffx_load *l = ffx_load_start(4, 2, "pq", 20);
    struct ffx_tally tc, tq;
    struct ffx_check c;
    struct ffx_op *ops;
    size_t n;
    long acked, queried;
    int64_t t0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    for (int round = 0; round < 2; round++) {
        acked = ffx_load_acked(l);
        CU_ASSERT(wait_count(l, ffx_load_acked, acked + 40, WAIT_MS) >= acked + 40);
        CU_ASSERT_EQUAL_FATAL(ffx_daemon_kill9(FFX_PROJ), 0);
        /* commands go on while it is dead: a backlog builds up */
        acked = ffx_load_acked(l);
        CU_ASSERT(wait_count(l, ffx_load_acked, acked + 40, WAIT_MS) >= acked + 40);
        CU_ASSERT_EQUAL_FATAL(ffx_daemon_start(FFX_PROJ), 0);
    }

    /* the query server: UNAVAILABLE while dead, answers again after */
    queried = ffx_load_queried(l);
    CU_ASSERT(wait_count(l, ffx_load_queried, queried + 20, WAIT_MS) >= queried + 20);
    CU_ASSERT_EQUAL_FATAL(ffx_daemon_kill9(FFX_QRY), 0);
    {
        trpc_status st = {0};
        grpc_status_code code;

        t0 = ffx_mono_ms();
        code = ffx_get_account(0, 5000, NULL, &st);
        CU_ASSERT_EQUAL(code, GRPC_STATUS_UNAVAILABLE);
        CU_ASSERT(ffx_mono_ms() - t0 < 5000 + FFX_SLACK_MS);
    }
    CU_ASSERT_EQUAL_FATAL(ffx_daemon_start(FFX_QRY), 0);
    t0 = ffx_mono_ms();
    queried = ffx_load_queried(l);
    CU_ASSERT(wait_count(l, ffx_load_queried, queried + 20, WAIT_MS) >= queried + 20);
    fprintf(stderr, "(query server answering again after %" PRId64 " ms) ", ffx_mono_ms() - t0);
    acked = ffx_load_acked(l);
    CU_ASSERT(wait_count(l, ffx_load_acked, acked + 20, WAIT_MS) >= acked + 20);
    ffx_load_stop(l);
    ffx_load_print(l, "projector killed twice, query server once");
    ffx_load_tallies(l, &tc, &tq);
    /* the command side never failed; queries failed only as UNAVAILABLE */
    CU_ASSERT_EQUAL(tc.unavailable + tc.other + tc.deadline + tc.late, 0);
    CU_ASSERT_EQUAL(tq.other + tq.deadline + tq.late, 0);

    ops = ffx_load_ops(l, &n);
    CU_ASSERT_EQUAL(ffx_check_ops(ops, n, &c), 0);
    CU_ASSERT_EQUAL(c.acked, (long)n);
    CU_ASSERT_EQUAL(ffx_log_sum(), ffx_ops_sum(ops, n));
    /* nothing lost or doubled in the read model; the checkpoint at the head */
    t0 = ffx_mono_ms();
    CU_ASSERT_EQUAL(ffx_wait_projected(WAIT_MS), 0);
    fprintf(stderr, "  %zu Deposits; projected in %" PRId64 " ms\n", n, ffx_mono_ms() - t0);
    ffx_load_free(l);
}

static CU_TestInfo command_tests[] = {
    {"kill -9 of tally-command under load: exactly once, all or nothing, retries",
     test_command_kill9_under_load},
    {"SIGTERM of tally-command under load: exit 0, nothing acknowledged lost",
     test_command_sigterm_under_load},
    {"the daemons exit 0 with clean logs", test_daemons_exit_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo pq_tests[] = {
    {"kill -9 of tally-projector and tally-query under load: catch up, nothing lost or doubled",
     test_projector_and_query_kill9_under_load},
    {"the daemons exit 0 with clean logs", test_daemons_exit_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"command", all_init, all_cleanup, NULL, NULL, command_tests},
    {"projector_query", all_init, all_cleanup, NULL, NULL, pq_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    unsigned failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        if (argc > 1) { /* one suite by name */
            CU_pSuite s = CU_get_suite(argv[1]);

            if (s == NULL) {
                fprintf(stderr, "no suite \"%s\"\n", argv[1]);
                CU_cleanup_registry();
                return EXIT_FAILURE;
            }
            CU_basic_run_suite(s);
        } else {
            CU_basic_run_tests();
        }
        failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
