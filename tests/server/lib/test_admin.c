/* test_admin.c - the built tally-admin, run as a child process: exit codes
 * (0 / 1 failure / 2 usage), stdout for scripts, one-line errors, and what it
 * does to the database. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "auth.h"
#include "dbtest.h"
#include "pg.h"
#include "uuid.h"

#define TIMEOUT_MS 60000

static char db[HARNESS_CONNINFO_MAX];

static int suite_init(void)
{
    return harness_admin_path() != NULL && dbtest_new_db(db) == 0 ? 0 : -1;
}

struct result {
    int status;
    char *out;
    char *err;
};

static void result_free(struct result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Runs tally-admin with the given arguments (NULL-terminated) and env. */
static struct result admin_env(const char *const *env, const char *arg, ...)
{
    const char *argv[32];
    struct result r = {-1, NULL, NULL};
    size_t n = 0;
    va_list ap;

    argv[n++] = harness_admin_path();
    va_start(ap, arg);
    for (const char *a = arg; a != NULL && n < 31; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    r.status = harness_run(argv, env, TIMEOUT_MS, &r.out, &r.err);
    if (r.out == NULL)
        r.out = strdup("");
    if (r.err == NULL)
        r.err = strdup("");
    return r;
}

#define admin(...) admin_env(NULL, __VA_ARGS__, NULL)

static int count_lines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A usage error: exit 2, nothing on stdout, one line on stderr naming what. */
static void expect_usage_error(struct result r, const char *needle)
{
    if (r.status != 2 || strstr(r.err, needle) == NULL)
        fprintf(stderr, "\n  status %d, stderr: %s", r.status, r.err);
    CU_ASSERT_EQUAL(r.status, 2);
    CU_ASSERT_STRING_EQUAL(r.out, "");
    CU_ASSERT_EQUAL(count_lines(r.err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, needle));
    CU_ASSERT_EQUAL(strncmp(r.err, "tally-admin", 11), 0);
    result_free(&r);
}

/* A failure: exit 1, one line on stderr containing needle. */
static void expect_failure(struct result r, const char *needle)
{
    if (r.status != 1 || strstr(r.err, needle) == NULL)
        fprintf(stderr, "\n  status %d, stderr: %s", r.status, r.err);
    CU_ASSERT_EQUAL(r.status, 1);
    CU_ASSERT_EQUAL(count_lines(r.err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, needle));
    CU_ASSERT_EQUAL(strncmp(r.err, "tally-admin: ", 13), 0);
    result_free(&r);
}

static void expect_help(struct result r, const char *needle)
{
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(strncmp(r.out, "usage: tally-admin", 18), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, needle));
    CU_ASSERT_STRING_EQUAL(r.err, "");
    result_free(&r);
}

static void test_admin_help_on_every_command(void)
{
    expect_help(admin("--help"), "token create");
    expect_help(admin("help"), "token create");
    expect_help(admin("migrate", "--help"), "--dir");
    expect_help(admin("tenant", "--help"), "tenant list");
    expect_help(admin("tenant", "create", "--help"), "NAME");
    expect_help(admin("tenant", "list", "--help"), "CREATED_AT");
    expect_help(admin("token", "--help"), "token revoke");
    expect_help(admin("token", "create", "--help"), "--quiet");
    expect_help(admin("token", "list", "--help"), "never shown");
    expect_help(admin("token", "revoke", "--help"), "TOKEN_ID");
    /* --help wins over missing arguments */
    expect_help(admin("--db", db, "token", "create", "-h"), "--tenant");
}

static void test_admin_usage_errors_exit_2(void)
{
    expect_usage_error(admin_env(NULL, NULL), "missing command");
    expect_usage_error(admin("frobnicate"), "unknown command \"frobnicate\"");
    expect_usage_error(admin("--bogus", "tenant", "list"), "unknown option --bogus");
    expect_usage_error(admin("tenant", "list", "-z"), "unknown option -z");
    expect_usage_error(admin("--db"), "option --db needs a value");
    expect_usage_error(admin("--log-level", "loud", "tenant", "list"), "unknown log level");
    expect_usage_error(admin("migrate", "extra"), "unexpected argument \"extra\"");
    expect_usage_error(admin("migrate", "--dir"), "needs a value");
    expect_usage_error(admin("tenant"), "missing action");
    expect_usage_error(admin("tenant", "delete", "x"), "unknown action \"delete\"");
    expect_usage_error(admin("tenant", "create"), "missing NAME");
    expect_usage_error(admin("tenant", "create", "a", "b"), "unexpected argument \"b\"");
    expect_usage_error(admin("tenant", "create", ""), "invalid tenant name");
    expect_usage_error(admin("tenant", "create", "line\nbreak"), "invalid tenant name");
    expect_usage_error(admin("tenant", "list", "x"), "unexpected argument \"x\"");
    expect_usage_error(admin("token", "create"), "--tenant is required");
    expect_usage_error(admin("token", "create", "--tenant", "a", "--name", ""),
                       "invalid token name");
    expect_usage_error(admin("token", "create", "--tenant"), "needs a value");
    expect_usage_error(admin("token", "create", "--tenant", "a", "--tenent", "b"),
                       "unknown option --tenent");
    expect_usage_error(admin("token", "list"), "--tenant is required");
    expect_usage_error(admin("token", "revoke"), "missing TOKEN_ID");
    expect_usage_error(admin("token", "revoke", "not-a-uuid"), "not a token id");
}

static void test_admin_migrate_applies_then_up_to_date(void)
{
    char conninfo[HARNESS_CONNINFO_MAX], schema[64];
    struct result r;

    CU_ASSERT_EQUAL_FATAL(dbtest_new_schema(conninfo, schema), 0);
    r = admin("--db", conninfo, "migrate");
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(strncmp(r.out, "applied ", 8), 0);
    CU_ASSERT_STRING_EQUAL(r.err, "");
    result_free(&r);
    r = admin("migrate", "--db", conninfo); /* options after the command too */
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_STRING_EQUAL(r.out, "up to date\n");
    result_free(&r);
    /* the harness's database is migrated already */
    r = admin("--db", db, "migrate", "--dir", TALLY_TEST_MIGRATIONS_DIR);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_STRING_EQUAL(r.out, "up to date\n");
    result_free(&r);
}

static void test_admin_migrate_failures_exit_1(void)
{
    static const char *const bad_env[] = {"TALLY_MIGRATIONS_DIR=/no/such/migrations", NULL};
    char conninfo[HARNESS_CONNINFO_MAX], schema[64], dir[512];
    struct result r;

    expect_failure(admin("--db", db, "migrate", "--dir", "/no/such/dir"), "/no/such/dir");
    expect_failure(admin_env(bad_env, "--db", db, "migrate", NULL), "/no/such/migrations");
    /* a directory that disagrees with the history */
    CU_ASSERT_EQUAL_FATAL(dbtest_new_schema(conninfo, schema), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_new_dir(dir, sizeof(dir)), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(dir, "0001_a.sql", "CREATE TABLE a (id int);"), 0);
    r = admin("--db", conninfo, "migrate", "--dir", dir);
    CU_ASSERT_EQUAL(r.status, 0);
    result_free(&r);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(dir, "0001_a.sql", "CREATE TABLE a (id bigint);"), 0);
    expect_failure(admin("--db", conninfo, "migrate", "--dir", dir), "changed");
}

static void test_admin_tenant_create_and_list(void)
{
    struct result r;
    char id[UUID_STR_SIZE];
    char line[256];

    r = admin("--db", db, "tenant", "create", "acme");
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    CU_ASSERT_EQUAL(strlen(r.out), 37); /* the id and a newline, nothing else */
    CU_ASSERT_EQUAL(count_lines(r.out), 1);
    snprintf(id, sizeof(id), "%.36s", r.out);
    CU_ASSERT_TRUE(uuid_is_valid(id));
    CU_ASSERT_STRING_EQUAL(r.err, "");
    result_free(&r);

    expect_failure(admin("--db", db, "tenant", "create", "acme"), "tenant \"acme\" already exists");

    r = admin("tenant", "list", "--db", db);
    CU_ASSERT_EQUAL(r.status, 0);
    snprintf(line, sizeof(line), "%s\tacme\t", id);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, line));
    result_free(&r);
}

static void test_admin_token_create_list_revoke(void)
{
    struct result r;
    char tenant[UUID_STR_SIZE], token[AUTH_TOKEN_LEN + 1], token2[AUTH_TOKEN_LEN + 1];
    char token_id[UUID_STR_SIZE];
    const char *p;
    struct auth_identity id;
    trpc_status st;
    PGconn *conn;

    r = admin("--db", db, "tenant", "create", "globex");
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    snprintf(tenant, sizeof(tenant), "%.36s", r.out);
    result_free(&r);

    /* by name: the token alone on stdout, the id on stderr */
    r = admin("--db", db, "token", "create", "--tenant", "globex", "--name", "deploy bot");
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    CU_ASSERT_EQUAL(strlen(r.out), AUTH_TOKEN_LEN + 1);
    CU_ASSERT_EQUAL(count_lines(r.out), 1);
    snprintf(token, sizeof(token), "%.*s", AUTH_TOKEN_LEN, r.out);
    CU_ASSERT_TRUE(auth_token_is_well_formed(token, strlen(token)));
    p = strstr(r.err, "token id ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    snprintf(token_id, sizeof(token_id), "%.36s", p + 9);
    CU_ASSERT_TRUE(uuid_is_valid(token_id));
    CU_ASSERT_EQUAL(count_lines(r.err), 1);
    result_free(&r);

    /* by id, --quiet: the token only */
    r = admin("--db", db, "token", "create", "--quiet", "--tenant", tenant);
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    CU_ASSERT_EQUAL(strlen(r.out), AUTH_TOKEN_LEN + 1);
    snprintf(token2, sizeof(token2), "%.*s", AUTH_TOKEN_LEN, r.out);
    CU_ASSERT_STRING_EQUAL(r.err, "");
    CU_ASSERT_STRING_NOT_EQUAL(token, token2);
    result_free(&r);

    /* the token works, for its tenant */
    conn = dbtest_connect(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
    CU_ASSERT_EQUAL(auth_verify(NULL, conn, token, strlen(token), &id, &st), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(id.tenant_id, tenant);
    CU_ASSERT_STRING_EQUAL(id.token_id, token_id);
    CU_ASSERT_STRING_EQUAL(id.token_name, "deploy bot");

    /* list: both, never a secret or a hash */
    r = admin("--db", db, "token", "list", "--tenant", "globex");
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, token_id));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\tdeploy bot\t"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\tactive\n"));
    CU_ASSERT_PTR_NULL(strstr(r.out, "tly_"));
    CU_ASSERT_PTR_NULL(strstr(r.out, "\\x"));
    result_free(&r);

    /* revoke: printed, then the token no longer verifies */
    r = admin("--db", db, "token", "revoke", token_id);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "revoked "));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, token_id));
    result_free(&r);
    CU_ASSERT_EQUAL(auth_verify(NULL, conn, token, strlen(token), &id, &st),
                    GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_EQUAL(auth_verify(NULL, conn, token2, strlen(token2), &id, &st), GRPC_STATUS_OK);
    r = admin("--db", db, "token", "list", "--tenant", tenant);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\trevoked 20"));
    result_free(&r);
    PQfinish(conn);

    expect_failure(admin("--db", db, "token", "revoke", "00000000-0000-4000-8000-000000000000"),
                   "token not found");
    expect_failure(admin("--db", db, "token", "create", "--tenant", "nope"),
                   "tenant \"nope\" not found");
    expect_failure(
        admin("--db", db, "token", "list", "--tenant", "00000000-0000-4000-8000-000000000000"),
        "not found");
}

static void test_admin_database_from_environment(void)
{
    char env_db[HARNESS_CONNINFO_MAX + 32];
    const char *env[] = {env_db, NULL};
    struct result r;

    snprintf(env_db, sizeof(env_db), "TALLY_DATABASE_URL=%s", db);
    r = admin_env(env, "tenant", "create", "from-env", NULL);
    CU_ASSERT_EQUAL(r.status, 0);
    result_free(&r);
    r = admin_env(env, "tenant", "list", NULL);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\tfrom-env\t"));
    result_free(&r);
}

/* No database: exit 1, one line with the reason, never the password. */
static void test_admin_unreachable_database_exit_1_no_password(void)
{
    char dir[512], conninfo[700];
    struct result r;

    CU_ASSERT_EQUAL_FATAL(dbtest_new_dir(dir, sizeof(dir)), 0);
    snprintf(conninfo, sizeof(conninfo), "host=%s port=1 password=sekrit-pw", dir);
    r = admin("--db", conninfo, "tenant", "list");
    CU_ASSERT_EQUAL(r.status, 1);
    CU_ASSERT_EQUAL(count_lines(r.err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "cannot connect to the database: "));
    CU_ASSERT_PTR_NULL(strstr(r.err, "sekrit"));
    CU_ASSERT_STRING_EQUAL(r.out, "");
    result_free(&r);
    /* --verbose shows the attempts (still without the password) */
    r = admin("--verbose", "--db", conninfo, "tenant", "list");
    CU_ASSERT_EQUAL(r.status, 1);
    CU_ASSERT(count_lines(r.err) > 1);
    CU_ASSERT_PTR_NULL(strstr(r.err, "sekrit"));
    result_free(&r);
}

static CU_TestInfo admin_tests[] = {
    {"--help on every command", test_admin_help_on_every_command},
    {"usage errors exit 2", test_admin_usage_errors_exit_2},
    {"migrate applies, then up to date", test_admin_migrate_applies_then_up_to_date},
    {"migrate failures exit 1", test_admin_migrate_failures_exit_1},
    {"tenant create and list", test_admin_tenant_create_and_list},
    {"token create, list, revoke", test_admin_token_create_list_revoke},
    {"database from TALLY_DATABASE_URL", test_admin_database_from_environment},
    {"unreachable database: exit 1, no password",
     test_admin_unreachable_database_exit_1_no_password},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tally-admin", suite_init, NULL, NULL, NULL, admin_tests},
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
