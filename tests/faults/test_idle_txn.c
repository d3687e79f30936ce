/* test_idle_txn.c - a long-held idle transaction elsewhere in the cluster.
 *
 * A session in another database of the cluster (the `postgres` database)
 * runs BEGIN; SELECT txid_current(); and idles, while client threads
 * Deposit. Commits after its xid stay behind the commit fence (DESIGN §5),
 * so:
 *   - the commands are all acknowledged (the fence does not block writers);
 *   - the projector's lag grows (GetProjectionStatus lag_events rises, the
 *     checkpoint does not pass the fence) and, once the transaction is 5 s
 *     old, blocked_reason names its backend ("transaction of backend <pid>
 *     open for <n> s holds the commit fence back");
 *   - once it ends, nothing was skipped: every Deposit is projected, the
 *     read model equals the log, the checkpoint reaches its head, lag and
 *     blocked_reason return to 0 and "".
 * And tally's own roles end such sessions by themselves: the three group
 * roles of migrations/0003_roles.sql carry idle_in_transaction_session_timeout
 * (> 0, at most 5 minutes) and a login made with tally_create_login gets it
 * too. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "ffx.h"

#define WAIT_MS 60000

static int suite_init(void)
{
    static const int all[FFX_N_DAEMONS] = {1, 1, 1};

    return ffx_start(all);
}

static int suite_cleanup(void)
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

static Tally__V1__ProjectionStatus *status_now(void)
{
    Tally__V1__ProjectionStatus *s = NULL;
    trpc_status st = {0};
    grpc_status_code code = ffx_projection_status(FFX_CALL_MS, &s, &st);

    if (code != GRPC_STATUS_OK)
        fprintf(stderr, "GetProjectionStatus: %d %s\n", code, st.msg);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_OK);
    return s;
}

#define FREE_STATUS(s)                                                                             \
    do {                                                                                           \
        if ((s) != NULL)                                                                           \
            protobuf_c_message_free_unpacked(&(s)->base, NULL);                                    \
        (s) = NULL;                                                                                \
    } while (0)

static void test_idle_transaction_holds_the_fence(void)
{
    char conninfo[HARNESS_CONNINFO_MAX + 32], want[64];
    PGconn *holder = NULL;
    PGresult *res;
    struct ffx_load *l = NULL;
    Tally__V1__ProjectionStatus *s = NULL, *s1 = NULL, *s2 = NULL;
    struct ffx_tally tc;
    struct ffx_check c;
    struct ffx_op *ops;
    size_t n;
    int64_t deadline, t0, behind;
    int pid;

    /* caught up to begin with */
    CU_ASSERT_EQUAL_FATAL(ffx_wait_projected(WAIT_MS), 0);

    /* the idle transaction, in another database of the cluster */
    snprintf(conninfo, sizeof(conninfo), "%s dbname=postgres", F.db);
    holder = PQconnectdb(conninfo);
    CU_ASSERT_EQUAL_FATAL(PQstatus(holder), CONNECTION_OK);
    pid = PQbackendPID(holder);
    res = PQexec(holder, "BEGIN; SELECT txid_current()");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    t0 = ffx_mono_ms();

    l = ffx_load_start(3, 0, "idle", 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT(wait_count(l, ffx_load_acked, 30, WAIT_MS) >= 30);
    s1 = status_now();
    CU_ASSERT(wait_count(l, ffx_load_acked, 90, WAIT_MS) >= 90);
    s2 = status_now();
    if (s1 != NULL && s2 != NULL) {
        /* the lag grows: what is committed after the holder's xid waits */
        CU_ASSERT(s1->lag_events >= 30);
        CU_ASSERT(s2->lag_events > s1->lag_events);
        fprintf(stderr, "(lag %" PRId64 " -> %" PRId64 " events) ", s1->lag_events, s2->lag_events);
    }

    /* after 5 s the status names the transaction that holds the fence */
    snprintf(want, sizeof(want), "backend %d ", pid);
    deadline = ffx_mono_ms() + WAIT_MS;
    for (;;) {
        FREE_STATUS(s);
        s = status_now();
        if (s == NULL || strstr(s->blocked_reason, want) != NULL || ffx_mono_ms() > deadline)
            break;
        ffx_sleep_ms(200);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s->blocked_reason, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(s->blocked_reason, "holds the commit fence back"));
    CU_ASSERT(s->lag_events >= s2->lag_events);
    fprintf(stderr, "(after %" PRId64 " ms: \"%s\", lag %" PRId64 " events, %.1f s) ",
            ffx_mono_ms() - t0, s->blocked_reason, s->lag_events, s->lag_seconds);
    /* the checkpoint stays behind the fence */
    behind = ffx_sql_int("SELECT count(*) FROM events e, projector_checkpoints c"
                         " WHERE c.name = 'rm'"
                         "   AND (e.tx_id, e.global_position) > (c.tx_id, c.global_position)",
                         NULL);
    CU_ASSERT(behind >= s2->lag_events);
    ffx_load_stop(l);
    ffx_load_print(l, "Deposits while an idle transaction holds the fence");
    ffx_load_tallies(l, &tc, NULL);
    CU_ASSERT_EQUAL(tc.unavailable + tc.deadline + tc.other + tc.late, 0);

    /* it ends: everything is projected, nothing skipped */
    res = PQexec(holder, "COMMIT");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(holder);
    holder = NULL;
    t0 = ffx_mono_ms();
    CU_ASSERT_EQUAL(ffx_wait_projected(WAIT_MS), 0);
    fprintf(stderr, "  projected %" PRId64 " ms after the commit\n", ffx_mono_ms() - t0);
    ops = ffx_load_ops(l, &n);
    CU_ASSERT_EQUAL(ffx_check_ops(ops, n, &c), 0);
    CU_ASSERT_EQUAL(c.acked, (long)n);
    CU_ASSERT_EQUAL(ffx_log_sum(), ffx_ops_sum(ops, n));
    FREE_STATUS(s);
    deadline = ffx_mono_ms() + WAIT_MS;
    for (;;) {
        FREE_STATUS(s);
        s = status_now();
        if (s == NULL || (s->lag_events == 0 && s->blocked_reason[0] == '\0') ||
            ffx_mono_ms() > deadline)
            break;
        ffx_sleep_ms(100);
    }
    if (s != NULL) {
        CU_ASSERT_EQUAL(s->lag_events, 0);
        CU_ASSERT_STRING_EQUAL(s->blocked_reason, "");
    }
    FREE_STATUS(s);
    FREE_STATUS(s1);
    FREE_STATUS(s2);
    ffx_load_free(l);
    PQfinish(holder);
}

/* The role settings: idle_in_transaction_session_timeout on each group role,
 * and copied to a login made with tally_create_login. */
static void test_tally_roles_have_an_idle_timeout(void)
{
    static const char sql[] =
        "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole,"
        "       unnest(s.setconfig) AS c(kv),"
        "       LATERAL (SELECT substr(c.kv, strpos(c.kv, '=') + 1) AS v) x"
        " WHERE s.setdatabase = 0 AND r.rolname = $1"
        "   AND split_part(c.kv, '=', 1) = 'idle_in_transaction_session_timeout'"
        "   AND CASE WHEN x.v ~ '^[0-9]+$' THEN (x.v || ' ms')::interval ELSE x.v::interval END"
        "       BETWEEN '1 second' AND '5 minutes'";
    static const char *const groups[] = {"tally_command", "tally_query", "tally_projector"};
    char login[64], sql2[160];

    for (size_t i = 0; i < 3; i++) {
        int64_t n = ffx_sql_int(sql, groups[i], NULL);

        if (n != 1)
            fprintf(stderr, "%s: %" PRId64 " idle_in_transaction_session_timeout settings\n",
                    groups[i], n);
        CU_ASSERT_EQUAL(n, 1);
    }
    /* a login for the command server gets it too (and is dropped again) */
    snprintf(login, sizeof(login), "faults_cmd_%ld", (long)getpid());
    CU_ASSERT_EQUAL(ffx_sql_int("SELECT 1 FROM (SELECT tally_create_login($1, 'tally_command')) x",
                                login, NULL),
                    1);
    CU_ASSERT_EQUAL(ffx_sql_int(sql, login, NULL), 1);
    snprintf(sql2, sizeof(sql2), "DROP ROLE IF EXISTS %s", login);
    ffx_sql_int(sql2, NULL);
    CU_ASSERT_EQUAL(ffx_sql_int("SELECT count(*) FROM pg_roles WHERE rolname = $1", login, NULL),
                    0);
}

static void test_daemons_exit_cleanly(void)
{
    for (int i = FFX_N_DAEMONS - 1; i >= 0; i--)
        CU_ASSERT_EQUAL(ffx_daemon_stop_checked((enum ffx_daemon)i), 0);
}

static CU_TestInfo tests[] = {
    {"tally's roles carry idle_in_transaction_session_timeout",
     test_tally_roles_have_an_idle_timeout},
    {"an idle transaction elsewhere: lag grows, status says why, nothing skipped",
     test_idle_transaction_holds_the_fence},
    {"the daemons exit 0 with clean logs", test_daemons_exit_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"idle_txn", suite_init, suite_cleanup, NULL, NULL, tests},
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
