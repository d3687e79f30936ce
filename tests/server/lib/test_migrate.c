/* test_migrate.c - server/lib/migrate.c against a real PostgreSQL. Each test
 * runs the migrations in a blank schema of its own (search_path), with the
 * real migrations/ or a directory of small files it writes. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "dbtest.h"
#include "migrate.h"
#include "pg.h"

#ifndef TALLY_TEST_MIGRATIONS_DIR
#error "TALLY_TEST_MIGRATIONS_DIR must name the source tree's migrations/"
#endif

struct blank {
    char conninfo[HARNESS_CONNINFO_MAX];
    char schema[64];
    char dir[512];
    PGconn *conn;
};

/* A blank schema, a connection to it, an empty migrations directory. */
static int blank_init(struct blank *b)
{
    memset(b, 0, sizeof(*b));
    if (dbtest_new_schema(b->conninfo, b->schema) != 0 || dbtest_new_dir(b->dir, sizeof(b->dir)))
        return -1;
    b->conn = dbtest_connect(b->conninfo);
    return b->conn != NULL ? 0 : -1;
}

static void blank_cleanup(struct blank *b)
{
    PQfinish(b->conn);
    b->conn = NULL;
}

static grpc_status_code run(PGconn *conn, const char *dir, int *applied, trpc_status *st)
{
    struct migrate_opts o;

    migrate_opts_init(&o);
    o.dir = dir;
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return migrate_run(conn, &o, applied, st);
}

static int count_rows(PGconn *conn, const char *sql)
{
    char *v = dbtest_value(conn, sql, 0, NULL);
    int n = v ? atoi(v) : -1;

    free(v);
    return n;
}

static int exists(PGconn *conn, const char *table)
{
    const char *params[1] = {table};
    char *v = dbtest_value(conn, "SELECT to_regclass($1) IS NOT NULL", 1, params);
    int r = v != NULL && strcmp(v, "t") == 0;

    free(v);
    return r;
}

static int count_sql_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void test_migrate_real_migrations_apply_then_noop(void)
{
    struct blank b;
    trpc_status st;
    int applied = -1, files = count_sql_files(TALLY_TEST_MIGRATIONS_DIR);
    char *v;

    CU_ASSERT_FATAL(files >= 1);
    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    CU_ASSERT_FALSE(exists(b.conn, "events"));
    CU_ASSERT_EQUAL(run(b.conn, TALLY_TEST_MIGRATIONS_DIR, &applied, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(applied, files);
    CU_ASSERT_TRUE(exists(b.conn, "events"));
    CU_ASSERT_TRUE(exists(b.conn, "api_tokens"));
    v = dbtest_value(b.conn, "SELECT current_schema()", 0, NULL);
    CU_ASSERT(v != NULL && strcmp(v, b.schema) == 0); /* and not public */
    free(v);
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM schema_migrations"), files);
    v = dbtest_value(b.conn,
                     "SELECT version || ' ' || name || ' ' || length(checksum) || ' ' || "
                     "(applied_at <= now()) FROM schema_migrations ORDER BY version LIMIT 1",
                     0, NULL);
    CU_ASSERT(v != NULL && strcmp(v, "1 event_store 64 true") == 0);
    free(v);
    CU_ASSERT_EQUAL(PQtransactionStatus(b.conn), PQTRANS_IDLE);

    for (int i = 0; i < 2; i++) {
        applied = -1;
        CU_ASSERT_EQUAL(run(b.conn, TALLY_TEST_MIGRATIONS_DIR, &applied, &st), GRPC_STATUS_OK);
        CU_ASSERT_EQUAL(applied, 0);
    }
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM schema_migrations"), files);
    /* the lock is not left behind */
    CU_ASSERT_EQUAL(
        count_rows(b.conn,
                   "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                   "database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
        0);
    blank_cleanup(&b);
}

static void test_migrate_checksum_is_sha256_of_the_file(void)
{
    struct blank b;
    trpc_status st;
    char sum[65];
    char *v;
    static const char body[] = "CREATE TABLE a (id int);\n";

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0001_a.sql", body), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, NULL, &st), GRPC_STATUS_OK);
    migrate_checksum(body, strlen(body), sum);
    /* sha256("CREATE TABLE a (id int);\n") */
    CU_ASSERT_STRING_EQUAL(sum, "c2de7559380e5ebf65caa7d59e166558e80243cf7e70006cc98d1593d94203c1");
    v = dbtest_value(b.conn, "SELECT checksum FROM schema_migrations WHERE version = 1", 0, NULL);
    CU_ASSERT(v != NULL && strcmp(v, sum) == 0);
    free(v);
    blank_cleanup(&b);
}

static void test_migrate_new_file_applied_alone(void)
{
    struct blank b;
    trpc_status st;
    int applied = -1;

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0001_a.sql", "CREATE TABLE a (id int);"), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "README.md", "not a migration"), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, &applied, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(applied, 1);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0002_b.sql",
                                            "CREATE TABLE b (id int);\nINSERT INTO a VALUES (1);"),
                          0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, &applied, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(applied, 1);
    CU_ASSERT_TRUE(exists(b.conn, "b"));
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM a"), 1); /* 0001 not re-run */
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM schema_migrations"), 2);
    blank_cleanup(&b);
}

struct runner {
    const char *conninfo;
    const char *dir;
    grpc_status_code code;
    int applied;
    trpc_status st;
};

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    PGconn *conn = dbtest_connect(r->conninfo);

    r->code = GRPC_STATUS_UNAVAILABLE;
    r->applied = -1;
    if (conn != NULL)
        r->code = run(conn, r->dir, &r->applied, &r->st);
    PQfinish(conn);
    return NULL;
}

static void write_slow_set(const char *dir)
{
    /* slow enough that the runners overlap */
    CU_ASSERT_EQUAL(dbtest_write_file(dir, "0001_a.sql",
                                      "CREATE TABLE a (id int PRIMARY KEY);\n"
                                      "SELECT pg_sleep(0.2);\n"
                                      "INSERT INTO a VALUES (1);"),
                    0);
    CU_ASSERT_EQUAL(
        dbtest_write_file(dir, "0002_b.sql", "CREATE TABLE b (id int);\nSELECT pg_sleep(0.1);"), 0);
    CU_ASSERT_EQUAL(dbtest_write_file(dir, "0003_c.sql", "INSERT INTO a VALUES (3);"), 0);
}

/* Two runners held at the lock, released together: one applies all, the
 * other waits, then finds nothing to do. */
static void test_migrate_two_concurrent_runners_one_applies(void)
{
    struct blank b;
    struct runner r[2];
    pthread_t th[2];
    char key[PG_INT_BUF];
    const char *params[1] = {pg_int64_param(key, MIGRATE_LOCK_KEY)};
    char *v;
    int waiting = 0;

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    write_slow_set(b.dir);
    v = dbtest_value(b.conn, "SELECT pg_advisory_lock($1)", 1, params);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    free(v);
    for (int i = 0; i < 2; i++) {
        r[i].conninfo = b.conninfo;
        r[i].dir = b.dir;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, runner_main, &r[i]), 0);
    }
    for (int i = 0; i < 200 && waiting < 2; i++) { /* both blocked on our lock */
        dbtest_sleep_ms(25);
        waiting = count_rows(b.conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                     "AND NOT granted AND database = (SELECT oid FROM "
                                     "pg_database WHERE datname = current_database())");
    }
    CU_ASSERT_EQUAL(waiting, 2);
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM pg_tables WHERE tablename = 'a' AND "
                                       "schemaname = current_schema()"),
                    0); /* nothing applied while we hold the lock */
    v = dbtest_value(b.conn, "SELECT pg_advisory_unlock($1)", 1, params);
    CU_ASSERT(v != NULL && strcmp(v, "t") == 0);
    free(v);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(r[0].code, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(r[1].code, GRPC_STATUS_OK);
    if (r[0].code != GRPC_STATUS_OK || r[1].code != GRPC_STATUS_OK)
        fprintf(stderr, "\n  runners: \"%s\" / \"%s\"", r[0].st.msg, r[1].st.msg);
    CU_ASSERT((r[0].applied == 3 && r[1].applied == 0) || (r[0].applied == 0 && r[1].applied == 3));
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM schema_migrations"), 3);
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM a"), 2);
    blank_cleanup(&b);
}

/* Four runners let loose at once on a blank schema. */
static void test_migrate_free_for_all_runners_apply_once(void)
{
    struct blank b;
    struct runner r[4];
    pthread_t th[4];
    int total = 0;

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    write_slow_set(b.dir);
    for (int i = 0; i < 4; i++) {
        r[i].conninfo = b.conninfo;
        r[i].dir = b.dir;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, runner_main, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(r[i].code, GRPC_STATUS_OK);
        if (r[i].code != GRPC_STATUS_OK)
            fprintf(stderr, "\n  runner %d: %s", i, r[i].st.msg);
        total += r[i].applied;
    }
    CU_ASSERT_EQUAL(total, 3);
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM schema_migrations"), 3);
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM a"), 2);
    blank_cleanup(&b);
}

static void test_migrate_changed_checksum_refused_before_anything(void)
{
    struct blank b;
    trpc_status st;
    int applied = -1;

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0001_a.sql", "CREATE TABLE a (id int);"), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, NULL, &st), GRPC_STATUS_OK);
    /* an edit (even a comment) and a new file */
    CU_ASSERT_EQUAL_FATAL(
        dbtest_write_file(b.dir, "0001_a.sql", "CREATE TABLE a (id int); -- tweaked"), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0002_b.sql", "CREATE TABLE b (id int);"), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, &applied, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_EQUAL(applied, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "0001_a.sql"));
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "changed"));
    CU_ASSERT_FALSE(exists(b.conn, "b"));
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM schema_migrations"), 1);
    CU_ASSERT_EQUAL(PQtransactionStatus(b.conn), PQTRANS_IDLE);
    CU_ASSERT_EQUAL(
        count_rows(b.conn,
                   "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                   "database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
        0);
    blank_cleanup(&b);
}

static void test_migrate_missing_applied_file_refused(void)
{
    struct blank b;
    trpc_status st;
    char path[600];

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0001_a.sql", "CREATE TABLE a (id int);"), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0002_b.sql", "CREATE TABLE b (id int);"), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, NULL, &st), GRPC_STATUS_OK);
    snprintf(path, sizeof(path), "%s/0001_a.sql", b.dir);
    CU_ASSERT_EQUAL_FATAL(unlink(path), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, NULL, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "0001_a.sql is missing"));
    blank_cleanup(&b);
}

static void test_migrate_renamed_or_older_file_refused(void)
{
    struct blank b;
    trpc_status st;
    char from[600], to[600];

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0002_b.sql", "CREATE TABLE b (id int);"), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, NULL, &st), GRPC_STATUS_OK);
    /* a file numbered below the newest applied one */
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0001_a.sql", "CREATE TABLE a (id int);"), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, NULL, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "0001_a.sql is older"));
    CU_ASSERT_FALSE(exists(b.conn, "a"));
    snprintf(from, sizeof(from), "%s/0001_a.sql", b.dir);
    CU_ASSERT_EQUAL_FATAL(unlink(from), 0);
    /* the same contents under another name */
    snprintf(from, sizeof(from), "%s/0002_b.sql", b.dir);
    snprintf(to, sizeof(to), "%s/0002_bee.sql", b.dir);
    CU_ASSERT_EQUAL_FATAL(rename(from, to), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, NULL, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "was named b"));
    blank_cleanup(&b);
}

static void test_migrate_failing_file_rolls_back_alone(void)
{
    struct blank b;
    trpc_status st;
    int applied = -1;
    char key[PG_INT_BUF];
    const char *params[1] = {pg_int64_param(key, MIGRATE_LOCK_KEY)};
    PGconn *other;
    char *v;

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0001_a.sql", "CREATE TABLE a (id int);"), 0);
    CU_ASSERT_EQUAL_FATAL(
        dbtest_write_file(b.dir, "0002_b.sql", "CREATE TABLE b (id int);\nSELECT 1 / 0;"), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0003_c.sql", "CREATE TABLE c (id int);"), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, &applied, &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(applied, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "0002_b.sql"));
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "division by zero"));
    CU_ASSERT_TRUE(exists(b.conn, "a"));
    CU_ASSERT_FALSE(exists(b.conn, "b"));
    CU_ASSERT_FALSE(exists(b.conn, "c"));
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM schema_migrations"), 1);
    CU_ASSERT_EQUAL(PQtransactionStatus(b.conn), PQTRANS_IDLE);
    /* the lock was released: another session can take it at once */
    other = dbtest_connect(b.conninfo);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    v = dbtest_value(other, "SELECT pg_try_advisory_lock($1)", 1, params);
    CU_ASSERT(v != NULL && strcmp(v, "t") == 0);
    free(v);
    PQfinish(other);
    blank_cleanup(&b);
}

static void test_migrate_file_with_commit_refused(void)
{
    struct blank b;
    trpc_status st;

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    CU_ASSERT_EQUAL_FATAL(
        dbtest_write_file(b.dir, "0001_a.sql", "CREATE TABLE a (id int);\nCOMMIT;"), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, NULL, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "must not contain COMMIT"));
    CU_ASSERT_EQUAL(count_rows(b.conn, "SELECT count(*) FROM schema_migrations"), 0);
    blank_cleanup(&b);
}

static void test_migrate_bad_directory_contents_refused(void)
{
    struct blank b;
    trpc_status st;
    char path[600];

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0001_a.sql", "CREATE TABLE a (id int);"), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "1_b.sql", "CREATE TABLE b (id int);"), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, NULL, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "two migrations with version 1"));
    snprintf(path, sizeof(path), "%s/1_b.sql", b.dir);
    CU_ASSERT_EQUAL_FATAL(unlink(path), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0002-b.sql", "CREATE TABLE b (id int);"), 0);
    CU_ASSERT_EQUAL(run(b.conn, b.dir, NULL, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "bad migration file name 0002-b.sql"));
    /* nothing was applied, not even the good file */
    CU_ASSERT_FALSE(exists(b.conn, "a"));
    CU_ASSERT_FALSE(exists(b.conn, "schema_migrations"));
    snprintf(path, sizeof(path), "%s/no-such-dir", b.dir);
    CU_ASSERT_EQUAL(run(b.conn, path, NULL, &st), GRPC_STATUS_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, "no-such-dir"));
    blank_cleanup(&b);
}

static void test_migrate_lock_wait_is_bounded(void)
{
    struct blank b;
    struct migrate_opts o;
    trpc_status st;
    char key[PG_INT_BUF];
    const char *params[1] = {pg_int64_param(key, MIGRATE_LOCK_KEY)};
    PGconn *holder;
    char *v;

    CU_ASSERT_EQUAL_FATAL(blank_init(&b), 0);
    CU_ASSERT_EQUAL_FATAL(dbtest_write_file(b.dir, "0001_a.sql", "CREATE TABLE a (id int);"), 0);
    holder = dbtest_connect(b.conninfo);
    CU_ASSERT_PTR_NOT_NULL_FATAL(holder);
    v = dbtest_value(holder, "SELECT pg_advisory_lock($1)", 1, params);
    free(v);
    migrate_opts_init(&o);
    o.dir = b.dir;
    o.lock_wait_ms = 300;
    CU_ASSERT_EQUAL(migrate_run(b.conn, &o, NULL, &st), GRPC_STATUS_ABORTED);
    CU_ASSERT_STRING_EQUAL(st.msg, "timed out waiting for another migration runner");
    CU_ASSERT_FALSE(exists(b.conn, "a"));
    /* the wait's lock_timeout was local to its transaction */
    v = dbtest_value(b.conn, "SHOW lock_timeout", 0, NULL);
    CU_ASSERT(v != NULL && strcmp(v, "10s") == 0);
    free(v);
    PQfinish(holder); /* releases the lock */
    CU_ASSERT_EQUAL(migrate_run(b.conn, &o, NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_TRUE(exists(b.conn, "a"));
    blank_cleanup(&b);
}

static void test_migrate_find_dir_precedence(void)
{
    char dir[512], out[600];

    CU_ASSERT_EQUAL_FATAL(dbtest_new_dir(dir, sizeof(dir)), 0);
    unsetenv("TALLY_MIGRATIONS_DIR");
    CU_ASSERT_EQUAL(migrate_find_dir("/flag/dir", dir, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "/flag/dir"); /* as given, even if missing */
    CU_ASSERT_EQUAL(migrate_find_dir(NULL, dir, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, dir);
    CU_ASSERT_EQUAL(migrate_find_dir("", dir, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, dir);
    CU_ASSERT_EQUAL(migrate_find_dir(NULL, "/no/such/dir", out, sizeof(out)), -1);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(migrate_find_dir(NULL, NULL, out, sizeof(out)), -1);
    setenv("TALLY_MIGRATIONS_DIR", "/env/dir", 1);
    CU_ASSERT_EQUAL(migrate_find_dir(NULL, dir, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "/env/dir");
    CU_ASSERT_EQUAL(migrate_find_dir("/flag/dir", dir, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "/flag/dir");
    setenv("TALLY_MIGRATIONS_DIR", "", 1); /* empty counts as unset */
    CU_ASSERT_EQUAL(migrate_find_dir(NULL, dir, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, dir);
    unsetenv("TALLY_MIGRATIONS_DIR");
    CU_ASSERT_EQUAL(migrate_find_dir("/flag/dir", NULL, out, 5), -1); /* does not fit */
    CU_ASSERT_STRING_EQUAL(out, "");
}

static CU_TestInfo migrate_tests[] = {
    {"real migrations apply, then no-op twice", test_migrate_real_migrations_apply_then_noop},
    {"checksum = sha256 of the file", test_migrate_checksum_is_sha256_of_the_file},
    {"a new file is applied alone", test_migrate_new_file_applied_alone},
    {"two runners at the lock: one applies", test_migrate_two_concurrent_runners_one_applies},
    {"four runners at once: applied once", test_migrate_free_for_all_runners_apply_once},
    {"changed checksum refused before anything",
     test_migrate_changed_checksum_refused_before_anything},
    {"missing applied file refused", test_migrate_missing_applied_file_refused},
    {"renamed or older file refused", test_migrate_renamed_or_older_file_refused},
    {"failing file rolls back alone", test_migrate_failing_file_rolls_back_alone},
    {"file with COMMIT refused", test_migrate_file_with_commit_refused},
    {"bad names, duplicates, missing dir", test_migrate_bad_directory_contents_refused},
    {"lock wait bounded", test_migrate_lock_wait_is_bounded},
    {"find_dir precedence", test_migrate_find_dir_precedence},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"migrate", NULL, NULL, NULL, NULL, migrate_tests},
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
