/* test_pg.c - server/lib/pg.c against a real PostgreSQL: session settings,
 * conninfo precedence, SQLSTATEs of real errors, reconnect after the backend
 * died, bounded connect failures, xid8 round trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "dbtest.h"
#include "pg.h"

static char db[HARNESS_CONNINFO_MAX];

static int suite_init(void)
{
    return dbtest_new_db(db) == 0 ? 0 : -1; /* CUnit reports a failed init as a failure */
}

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void expect_value(PGconn *c, const char *sql, const char *want)
{
    char *v = dbtest_value(c, sql, 0, NULL);

    CU_ASSERT_PTR_NOT_NULL(v);
    if (v != NULL && strcmp(v, want) != 0)
        fprintf(stderr, "\n  %s: got \"%s\", want \"%s\"", sql, v, want);
    CU_ASSERT(v != NULL && strcmp(v, want) == 0);
    free(v);
}

static PGconn *connect_with(const char *conninfo, struct pg_opts *o)
{
    trpc_status st;

    o->conninfo = conninfo;
    return pg_connect(o, &st);
}

static void test_pg_connect_applies_session_settings(void)
{
    struct pg_opts o;
    PGconn *c;

    pg_opts_init(&o);
    c = connect_with(db, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    expect_value(c, "SHOW statement_timeout", "30s");
    expect_value(c, "SHOW lock_timeout", "10s");
    expect_value(c, "SHOW idle_in_transaction_session_timeout", "1min");
    expect_value(c, "SHOW application_name", "tally");
    expect_value(c, "SHOW client_encoding", "UTF8");
    PQfinish(c);

    o.statement_timeout_ms = 1500;
    o.lock_timeout_ms = 0;
    o.idle_in_tx_timeout_ms = -1; /* server default */
    o.application_name = "tally-query";
    c = connect_with(db, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    expect_value(c, "SHOW statement_timeout", "1500ms");
    expect_value(c, "SHOW lock_timeout", "0");
    expect_value(c, "SHOW idle_in_transaction_session_timeout", "0");
    expect_value(c, "SHOW application_name", "tally-query");
    PQfinish(c);
}

/* What the operator wrote in the conninfo wins over our defaults. */
static void test_pg_connect_conninfo_values_win(void)
{
    char conninfo[HARNESS_CONNINFO_MAX + 128];
    PQconninfoOption *opts;
    struct pg_opts o;
    PGconn *c;

    snprintf(conninfo, sizeof(conninfo),
             "%s application_name=ops-console client_encoding=LATIN1 connect_timeout=3", db);
    pg_opts_init(&o);
    c = connect_with(conninfo, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    expect_value(c, "SHOW application_name", "ops-console");
    expect_value(c, "SHOW client_encoding", "LATIN1");
    opts = PQconninfo(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(opts);
    for (PQconninfoOption *p = opts; p->keyword != NULL; p++)
        if (strcmp(p->keyword, "connect_timeout") == 0)
            CU_ASSERT(p->val != NULL && strcmp(p->val, "3") == 0);
    PQconninfoFree(opts);
    PQfinish(c);
}

static void expect_error(PGconn *c, const char *sql, const char *sqlstate, grpc_status_code want)
{
    PGresult *res = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
    trpc_status st = {GRPC_STATUS_OK, ""};

    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_FATAL_ERROR);
    CU_ASSERT(pg_sqlstate(res) != NULL && strcmp(pg_sqlstate(res), sqlstate) == 0);
    if (pg_to_grpc_status(res) != want)
        fprintf(stderr, "\n  %s: %s -> %s", sql, pg_sqlstate(res),
                trpc_status_code_name(pg_to_grpc_status(res)));
    CU_ASSERT_EQUAL(pg_to_grpc_status(res), want);
    /* the client sees the short message only, never SQL or the server's text */
    CU_ASSERT_EQUAL(
        pg_check(res, PGRES_TUPLES_OK, -1, &st, "could not do the thing", "test %s", sqlstate),
        want);
    CU_ASSERT_EQUAL(st.code, want);
    CU_ASSERT_STRING_EQUAL(st.msg, "could not do the thing");
    PQclear(res);
    pg_rollback_quietly(c);
}

static void test_pg_real_errors_map_to_status(void)
{
    PGconn *c = dbtest_connect(db);

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(dbtest_exec(c, "CREATE TEMP TABLE p (id int PRIMARY KEY)"), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_exec(c, "CREATE TEMP TABLE t (id int PRIMARY KEY, "
                                         "p int REFERENCES p, n int NOT NULL CHECK (n > 0))"),
                          0);
    CU_ASSERT_EQUAL_FATAL(dbtest_exec(c, "INSERT INTO p VALUES (1)"), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_exec(c, "INSERT INTO t VALUES (1, 1, 1)"), 0);
    expect_error(c, "INSERT INTO t VALUES (1, 1, 1)", "23505", GRPC_STATUS_ALREADY_EXISTS);
    expect_error(c, "INSERT INTO t VALUES (2, 1, 0)", "23514", GRPC_STATUS_INVALID_ARGUMENT);
    expect_error(c, "INSERT INTO t VALUES (2, 1, NULL)", "23502", GRPC_STATUS_INVALID_ARGUMENT);
    expect_error(c, "INSERT INTO t VALUES (2, 9, 1)", "23503", GRPC_STATUS_FAILED_PRECONDITION);
    expect_error(c, "SELECT 'x'::int", "22P02", GRPC_STATUS_INVALID_ARGUMENT);
    expect_error(c, "SELECT 1 / 0", "22012", GRPC_STATUS_INVALID_ARGUMENT);
    expect_error(c, "SELECT * FROM no_such_table", "42P01", GRPC_STATUS_INTERNAL);
    expect_error(c, "SELEC 1", "42601", GRPC_STATUS_INTERNAL);
    expect_error(c, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END $$", "40001",
                 GRPC_STATUS_ABORTED);
    expect_error(c, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40P01'; END $$", "40P01",
                 GRPC_STATUS_ABORTED);
    /* the event log refuses updates (0001's trigger): a bug of ours if it happens */
    CU_ASSERT_EQUAL(dbtest_exec(c, "BEGIN"), 0);
    CU_ASSERT_EQUAL(dbtest_exec(c, "INSERT INTO events (event_id, tenant_id, aggregate_type, "
                                   "aggregate_id, version, event_type, data, metadata, "
                                   "operation_id, correlation_id) VALUES (gen_random_uuid(), "
                                   "gen_random_uuid(), 'account', gen_random_uuid(), 1, 'X', "
                                   "'{}', '{}', gen_random_uuid(), 'c')"),
                    0);
    expect_error(c, "UPDATE events SET version = version", "55000", GRPC_STATUS_INTERNAL);
    CU_ASSERT_EQUAL(dbtest_exec(c, "SET statement_timeout = 50"), 0);
    expect_error(c, "SELECT pg_sleep(2)", "57014", GRPC_STATUS_DEADLINE_EXCEEDED);
    PQfinish(c);
}

static void test_pg_retryable_only_serialization_and_deadlock(void)
{
    PGconn *c = dbtest_connect(db);
    PGresult *res;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    res = PQexecParams(c, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END $$", 0,
                       NULL, NULL, NULL, NULL, 0);
    CU_ASSERT_TRUE(pg_is_retryable(res));
    PQclear(res);
    res = PQexecParams(c, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '55P03'; END $$", 0,
                       NULL, NULL, NULL, NULL, 0);
    CU_ASSERT_FALSE(pg_is_retryable(res)); /* ABORTED, but the caller decides */
    CU_ASSERT_EQUAL(pg_to_grpc_status(res), GRPC_STATUS_ABORTED);
    PQclear(res);
    PQfinish(c);
}

/* A backend killed under us: the failure says UNAVAILABLE, pg_reconnect
 * repairs the same PGconn and re-applies the settings. */
static void test_pg_reconnect_after_backend_terminated(void)
{
    struct pg_opts o;
    PGconn *victim, *killer;
    PGresult *res;
    char pid[32];
    const char *params[1] = {pid};
    char *v;
    trpc_status st;

    pg_opts_init(&o);
    o.statement_timeout_ms = 4321;
    victim = connect_with(db, &o);
    killer = dbtest_connect(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(victim);
    CU_ASSERT_PTR_NOT_NULL_FATAL(killer);
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(victim));
    v = dbtest_value(killer, "SELECT pg_terminate_backend($1::int)", 1, params);
    CU_ASSERT(v != NULL && strcmp(v, "t") == 0);
    free(v);
    dbtest_sleep_ms(100);

    res = PQexecParams(victim, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
    CU_ASSERT_NOT_EQUAL(PQresultStatus(res), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(pg_to_grpc_status(res), GRPC_STATUS_UNAVAILABLE);
    PQclear(res);
    CU_ASSERT_EQUAL(PQstatus(victim), CONNECTION_BAD);

    CU_ASSERT_EQUAL(pg_reconnect(victim, &o, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(PQstatus(victim), CONNECTION_OK);
    CU_ASSERT_NOT_EQUAL(PQbackendPID(victim), atoi(pid));
    expect_value(victim, "SHOW statement_timeout", "4321ms");
    /* a good connection is left alone */
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(victim));
    CU_ASSERT_EQUAL(pg_reconnect(victim, &o, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(PQbackendPID(victim), atoi(pid));
    PQfinish(victim);
    PQfinish(killer);
}

/* No server: a bounded number of attempts with backoff, then UNAVAILABLE;
 * the reason is kept for tools, without the password. */
static void test_pg_connect_failure_is_bounded_and_hides_password(void)
{
    struct pg_opts o;
    trpc_status st = {GRPC_STATUS_OK, ""};
    char dir[512], conninfo[1024];
    long long t0, elapsed;
    PGconn *c;

    CU_ASSERT_EQUAL_FATAL(dbtest_new_dir(dir, sizeof(dir)), 0);
    snprintf(conninfo, sizeof(conninfo), "host=%s port=1 user=nobody password=hunter2-secret", dir);
    pg_opts_init(&o);
    o.conninfo = conninfo;
    o.connect_attempts = 4;
    o.backoff_ms = 40;
    o.backoff_max_ms = 80;
    t0 = mono_ms();
    c = pg_connect(&o, &st);
    elapsed = mono_ms() - t0;
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_STRING_EQUAL(st.msg, "database unavailable");
    /* waits: 20..40, 40..80 (capped at 80), 40..80 ms */
    CU_ASSERT(elapsed >= 100);
    CU_ASSERT(elapsed < 3000);
    CU_ASSERT(strlen(pg_last_connect_error()) > 0);
    CU_ASSERT_PTR_NULL(strstr(pg_last_connect_error(), "hunter2"));
    CU_ASSERT_PTR_NULL(strchr(pg_last_connect_error(), '\n'));
    CU_ASSERT_EQUAL(pg_reconnect(NULL, &o, &st), GRPC_STATUS_UNAVAILABLE);
}

static void test_pg_command_and_rollback_quietly(void)
{
    PGconn *c = dbtest_connect(db);
    trpc_status st = {GRPC_STATUS_OK, ""};

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(pg_command(c, "BEGIN", &st, "could not begin"), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_INTRANS);
    CU_ASSERT_EQUAL(pg_command(c, "SELEC 1", &st, "oops"), GRPC_STATUS_INTERNAL);
    CU_ASSERT_STRING_EQUAL(st.msg, "oops");
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_INERROR);
    pg_rollback_quietly(c);
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_IDLE);
    pg_rollback_quietly(c); /* idle: nothing to do */
    pg_rollback_quietly(NULL);
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_IDLE);
    /* a command that returns rows is not a command */
    CU_ASSERT_EQUAL(pg_command(c, "SELECT 1", &st, "not a command"), GRPC_STATUS_INTERNAL);
    PQfinish(c);
}

static void test_pg_xid8_and_bigint_round_trip(void)
{
    PGconn *c = dbtest_connect(db);
    PGresult *res;
    uint64_t xid = 0;
    int64_t big = 0;
    char b1[PG_INT_BUF], b2[PG_INT_BUF];
    const char *params[2];
    char *v;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(dbtest_exec(c, "BEGIN"), 0);
    res = PQexecParams(c, "SELECT pg_current_xact_id(), (-9223372036854775807 - 1)::bigint", 0,
                       NULL, NULL, NULL, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(res), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(pg_get_uint64(res, 0, 0, &xid), 0);
    CU_ASSERT_EQUAL(pg_get_int64(res, 0, 1, &big), 0);
    CU_ASSERT_EQUAL(big, INT64_MIN);
    CU_ASSERT(xid > 0);
    PQclear(res);
    params[0] = pg_uint64_param(b1, xid);
    params[1] = pg_int64_param(b2, big);
    v = dbtest_value(c, "SELECT $1::xid8 = pg_current_xact_id() AND $2::bigint < 0", 2, params);
    CU_ASSERT(v != NULL && strcmp(v, "t") == 0);
    free(v);
    CU_ASSERT_EQUAL(dbtest_exec(c, "COMMIT"), 0);
    PQfinish(c);
}

static CU_TestInfo pg_tests[] = {
    {"connect applies session settings", test_pg_connect_applies_session_settings},
    {"conninfo values win over defaults", test_pg_connect_conninfo_values_win},
    {"real errors map to status, short message", test_pg_real_errors_map_to_status},
    {"retryable: 40001/40P01 only", test_pg_retryable_only_serialization_and_deadlock},
    {"reconnect after the backend was terminated", test_pg_reconnect_after_backend_terminated},
    {"connect failure: bounded, password hidden",
     test_pg_connect_failure_is_bounded_and_hides_password},
    {"pg_command and pg_rollback_quietly", test_pg_command_and_rollback_quietly},
    {"xid8 and bigint round trip", test_pg_xid8_and_bigint_round_trip},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"pg", suite_init, NULL, NULL, NULL, pg_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned int failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        /* a suite whose init failed (no database) counts as a failure */
        failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
