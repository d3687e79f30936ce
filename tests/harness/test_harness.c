/* test_harness.c - the harness itself: process runs (status, signals,
 * timeouts, output, environment), fresh migrated databases, tenants and
 * tokens, daemon start/stop/kill, and that nothing outlives the test
 * process: neither at a normal exit nor when it is killed.
 *
 * Some checks need a test process that ends; this program runs itself
 * (/proc/self/exe) with a mode argument for those. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <libpq-fe.h>

#include "harness.h"

#define TMPDIR_MAX 512 /* matches %511s below */

static char self[4096];

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int pid_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno != ESRCH;
}

/* Waits up to ms for pid to disappear; returns 1 if it did. */
static int gone_within(pid_t pid, long ms)
{
    long deadline = now_ms() + ms;

    while (pid_alive(pid)) {
        if (now_ms() > deadline)
            return 0;
        usleep(10000);
    }
    return 1;
}

/* The postmaster's pid from <tmpdir>/pg/data/postmaster.pid, or 0. */
static pid_t postmaster_pid(const char *tmpdir)
{
    char path[600];
    long pid = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/pg/data/postmaster.pid", tmpdir);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

static char *query1(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *res = NULL;
    char *v = NULL;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "\nconnect: %s", PQerrorMessage(c));
        goto out;
    }
    res = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 1)
        v = strdup(PQgetvalue(res, 0, 0));
    else
        fprintf(stderr, "\n%s: %s", sql, PQresultErrorMessage(res));
out:
    PQclear(res);
    PQfinish(c);
    return v;
}

static int exec_ok(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *res = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    PQclear(res);
    PQfinish(c);
    return ok;
}

/* ---- harness_run ---- */

static void test_run_reports_exit_status_and_separate_outputs(void)
{
    const char *const argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    char *out = NULL, *err = NULL;

    CU_ASSERT_EQUAL(harness_run(argv, NULL, 10000, &out, &err), 3);
    CU_ASSERT_STRING_EQUAL(out ? out : "(none)", "out\n");
    CU_ASSERT_STRING_EQUAL(err ? err : "(none)", "err\n");
    free(out);
    free(err);
}

static void test_run_reports_death_by_signal_as_128_plus_signal(void)
{
    const char *const argv[] = {"/bin/sh", "-c", "kill -TERM $$", NULL};

    CU_ASSERT_EQUAL(harness_run(argv, NULL, 10000, NULL, NULL), 128 + SIGTERM);
}

static void test_run_kills_a_child_past_its_timeout(void)
{
    const char *const argv[] = {"/bin/sleep", "30", NULL};
    long t0 = now_ms();

    CU_ASSERT_EQUAL(harness_run(argv, NULL, 200, NULL, NULL), -1);
    CU_ASSERT(now_ms() - t0 < 5000);
}

static void test_run_env_adds_and_replaces_variables(void)
{
    const char *const argv[] = {"/bin/sh", "-c", "echo \"$TALLY_HT_A $TALLY_HT_B $TALLY_HT_C\"",
                                NULL};
    const char *const env[] = {"TALLY_HT_A=added", "TALLY_HT_B=replaced", NULL};
    char *out = NULL;

    setenv("TALLY_HT_B", "original", 1);
    setenv("TALLY_HT_C", "inherited", 1);
    CU_ASSERT_EQUAL(harness_run(argv, env, 10000, &out, NULL), 0);
    CU_ASSERT_STRING_EQUAL(out ? out : "(none)", "added replaced inherited\n");
    free(out);
    unsetenv("TALLY_HT_B");
    unsetenv("TALLY_HT_C");
}

static void test_run_missing_program_exits_127_with_a_message(void)
{
    const char *const argv[] = {"/nonexistent/program", NULL};
    char *err = NULL;

    CU_ASSERT_EQUAL(harness_run(argv, NULL, 10000, NULL, &err), 127);
    CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "cannot execute /nonexistent/program") : NULL);
    free(err);
}

/* ---- databases ---- */

static void test_db_create_gives_fresh_migrated_databases(void)
{
    char a[HARNESS_CONNINFO_MAX], b[HARNESS_CONNINFO_MAX];
    char *name_a = NULL, *name_b = NULL, *count = NULL;

    CU_ASSERT_EQUAL_FATAL(harness_db_create(a), 0);
    CU_ASSERT_EQUAL_FATAL(harness_db_create(b), 0);
    name_a = query1(a, "SELECT current_database()");
    name_b = query1(b, "SELECT current_database()");
    CU_ASSERT_PTR_NOT_NULL_FATAL(name_a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(name_b);
    CU_ASSERT_STRING_NOT_EQUAL(name_a, name_b);
    /* migrated: the schema is there, and empty */
    count = query1(a, "SELECT count(*) FROM events");
    CU_ASSERT_STRING_EQUAL(count ? count : "(none)", "0");
    free(count);
    /* isolated: a row in one is not in the other */
    CU_ASSERT(exec_ok(a, "INSERT INTO tenants (tenant_id, name) VALUES "
                         "('00000000-0000-0000-0000-000000000001', 'only-in-a')"));
    count = query1(b, "SELECT count(*) FROM tenants WHERE name = 'only-in-a'");
    CU_ASSERT_STRING_EQUAL(count ? count : "(none)", "0");
    free(count);
    free(name_a);
    free(name_b);
}

static void test_tenant_token_creates_both(void)
{
    char db[HARNESS_CONNINFO_MAX], id[HARNESS_ID_MAX], token[HARNESS_TOKEN_MAX];
    char sql[256];
    char *name = NULL, *tokens = NULL;

    CU_ASSERT_EQUAL_FATAL(harness_db_create(db), 0);
    CU_ASSERT_EQUAL_FATAL(harness_tenant_token(db, "acme", id, token), 0);
    CU_ASSERT_EQUAL(strlen(id), 36);
    CU_ASSERT(strlen(token) >= 16);
    CU_ASSERT_PTR_NULL(strpbrk(token, " \n\t"));
    snprintf(sql, sizeof(sql), "SELECT name FROM tenants WHERE tenant_id = '%s'", id);
    name = query1(db, sql);
    CU_ASSERT_STRING_EQUAL(name ? name : "(none)", "acme");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM api_tokens WHERE tenant_id = '%s' AND revoked_at IS NULL", id);
    tokens = query1(db, sql);
    CU_ASSERT_STRING_EQUAL(tokens ? tokens : "(none)", "1");
    /* a second tenant of the same name is refused, and reported */
    CU_ASSERT_EQUAL(harness_tenant_token(db, "acme", NULL, token), -1);
    CU_ASSERT_STRING_EQUAL(token, "");
    free(name);
    free(tokens);
}

static void test_unreachable_database_url_is_a_failure(void)
{
    const char *const argv[] = {self, "--probe-db", NULL};
    const char *const env[] = {"TALLY_TEST_DATABASE_URL=postgresql://127.0.0.1:1/nothing", NULL};
    char *err = NULL;

    CU_ASSERT_EQUAL(harness_run(argv, env, 30000, NULL, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "harness: cannot connect to TALLY_TEST_DATABASE_URL")
                               : NULL);
    free(err);
}

/* ---- daemons ---- */

static void test_daemon_kill9_and_stop_report_the_status(void)
{
    char db[HARNESS_CONNINFO_MAX];
    struct harness_daemon d;
    pid_t pid;

    CU_ASSERT_EQUAL_FATAL(harness_db_create(db), 0);
    CU_ASSERT_EQUAL_FATAL(harness_daemon_start(&d, HARNESS_QUERY, db, NULL, NULL), 0);
    CU_ASSERT_STRING_EQUAL(d.name, "tally-query");
    CU_ASSERT_EQUAL(strncmp(d.addr, "127.0.0.1:", 10), 0);
    pid = d.pid;
    CU_ASSERT(pid > 0);
    CU_ASSERT_EQUAL(harness_daemon_kill9(&d), 128 + SIGKILL);
    CU_ASSERT_EQUAL(d.pid, 0);
    CU_ASSERT_FALSE(pid_alive(pid));
    /* already ended: stop just returns the status */
    CU_ASSERT_EQUAL(harness_daemon_stop(&d, 1000), 128 + SIGKILL);
}

static void test_daemon_that_exits_early_is_reported(void)
{
    const char *const args[] = {"--pool-size", "0", NULL};
    struct harness_daemon d;
    char *log;

    CU_ASSERT_EQUAL(harness_daemon_start(&d, HARNESS_COMMAND, NULL, args, NULL), -1);
    CU_ASSERT_EQUAL(d.exit_status, 2);
    CU_ASSERT_EQUAL(d.pid, 0);
    log = harness_daemon_log(&d);
    CU_ASSERT_PTR_NOT_NULL(log ? strstr(log, "invalid --pool-size \"0\"") : NULL);
    free(log);
}

/* Runs this program in mode; its stdout has "<daemon pid> <postmaster pid>
 * <tmpdir>" (postmaster 0 with TALLY_TEST_DATABASE_URL). */
static void run_leaver(const char *mode, pid_t *daemon, pid_t *postmaster, char tmpdir[TMPDIR_MAX],
                       int *status)
{
    const char *const argv[] = {self, mode, NULL};
    char *out = NULL;
    long pid = 0, pm = 0;

    *status = harness_run(argv, NULL, 120000, &out, NULL);
    CU_ASSERT_FATAL(out != NULL && sscanf(out, "%ld %ld %511s", &pid, &pm, tmpdir) == 3);
    *daemon = (pid_t)pid;
    *postmaster = (pid_t)pm;
    free(out);
}

static void test_exit_kills_daemons_stops_postgres_removes_folder(void)
{
    char tmpdir[TMPDIR_MAX];
    struct stat st;
    pid_t daemon, postmaster;
    int status;

    run_leaver("--leave-daemon", &daemon, &postmaster, tmpdir, &status);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT(daemon > 0);
    CU_ASSERT_FALSE(pid_alive(daemon));
    if (postmaster > 0)
        CU_ASSERT_FALSE(pid_alive(postmaster));
    CU_ASSERT_EQUAL(stat(tmpdir, &st), -1); /* with the database in it */
}

static void test_killed_test_process_takes_its_children_along(void)
{
    char tmpdir[TMPDIR_MAX];
    pid_t daemon, postmaster;
    int status;

    run_leaver("--die-hard", &daemon, &postmaster, tmpdir, &status);
    CU_ASSERT_EQUAL(status, 128 + SIGKILL);
    CU_ASSERT(daemon > 0);
    CU_ASSERT(gone_within(daemon, 5000));
    if (getenv("TALLY_TEST_DATABASE_URL") == NULL) {
        CU_ASSERT(postmaster > 0);
        CU_ASSERT(gone_within(postmaster, 30000));
    }
    /* only the folder stays behind a SIGKILL, until the next test process
     * that uses the harness sweeps it */
    CU_ASSERT_EQUAL(access(tmpdir, F_OK), 0);
    CU_ASSERT_EQUAL(
        harness_run((const char *const[]){self, "--tmpdir", NULL}, NULL, 10000, NULL, NULL), 0);
    CU_ASSERT_EQUAL(access(tmpdir, F_OK), -1);
}

static CU_TestInfo run_tests[] = {
    {"exit status, separate outputs", test_run_reports_exit_status_and_separate_outputs},
    {"signal -> 128 + signal", test_run_reports_death_by_signal_as_128_plus_signal},
    {"timeout -> killed, -1", test_run_kills_a_child_past_its_timeout},
    {"env adds and replaces", test_run_env_adds_and_replaces_variables},
    {"missing program -> 127", test_run_missing_program_exits_127_with_a_message},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo db_tests[] = {
    {"fresh migrated databases", test_db_create_gives_fresh_migrated_databases},
    {"tenant and token", test_tenant_token_creates_both},
    {"unreachable TALLY_TEST_DATABASE_URL -> failure", test_unreachable_database_url_is_a_failure},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo daemon_tests[] = {
    {"kill9 and stop report the status", test_daemon_kill9_and_stop_report_the_status},
    {"early exit is reported", test_daemon_that_exits_early_is_reported},
    {"exit: daemons killed, postgres stopped, folder removed",
     test_exit_kills_daemons_stops_postgres_removes_folder},
    {"SIGKILLed test: children die too", test_killed_test_process_takes_its_children_along},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"run", NULL, NULL, NULL, NULL, run_tests},
    {"db", NULL, NULL, NULL, NULL, db_tests},
    {"daemon", NULL, NULL, NULL, NULL, daemon_tests},
    CU_SUITE_INFO_NULL,
};

/* Modes for the checks that need a process that ends. */
static int child_mode(const char *mode)
{
    char db[HARNESS_CONNINFO_MAX];
    struct harness_daemon d;

    if (strcmp(mode, "--probe-db") == 0)
        return harness_db_create(db) == 0 ? 0 : 1;
    if (strcmp(mode, "--tmpdir") == 0)
        return harness_tmpdir() != NULL ? 0 : 1;
    if (harness_db_create(db) != 0 || harness_daemon_start(&d, HARNESS_COMMAND, db, NULL, NULL))
        return 3;
    printf("%ld %ld %s\n", (long)d.pid, (long)postmaster_pid(harness_tmpdir()), harness_tmpdir());
    fflush(stdout);
    if (strcmp(mode, "--die-hard") == 0)
        raise(SIGKILL);
    return 0; /* --leave-daemon: the daemon is still running */
}

int main(int argc, char **argv)
{
    unsigned int failed = 1;
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n <= 0)
        return 1;
    self[n] = '\0';
    if (argc == 2)
        return child_mode(argv[1]);
    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
