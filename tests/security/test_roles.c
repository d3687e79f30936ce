/* test_roles.c - least privilege in PostgreSQL (migrations/0003_roles.sql).
 * Logins made with tally_create_login for tally_command, tally_query and
 * tally_projector: each runs as its group with the idle-in-transaction
 * timeout, may do what its daemon does and nothing else (SQLSTATE 42501);
 * nobody changes or deletes events (the trigger refuses even the owner);
 * the three daemons run end to end as those logins (commands, the transfer
 * saga, reads, Subscribe), and a --rebuild as the projector login keeps the
 * read model readable by tally_query. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <libpq-fe.h>

#include "harness.h"
#include "secfx.h"
#include "trpc.h"

#define STOP_MS    15000
#define REBUILD_MS 60000

#define TENANT "0190a6e4-7b3c-7def-8abc-00000000000a"

enum login { L_COMMAND = 0, L_QUERY, L_PROJECTOR, N_LOGINS };

static const char *const groups[N_LOGINS] = {"tally_command", "tally_query", "tally_projector"};
static char logins[N_LOGINS][64];
static char password[33];
static char admin_db[HARNESS_CONNINFO_MAX]; /* the first database: logins are made there */

/* ---- helpers ---- */

/* conninfo for database db as login i. */
static void login_conninfo(char out[HARNESS_CONNINFO_MAX], const char *db, enum login i)
{
    /* later keywords win: this replaces the harness's user */
    int n = snprintf(out, HARNESS_CONNINFO_MAX, "%s user=%s password=%s", db, logins[i], password);

    CU_ASSERT_FATAL(n > 0 && n < HARNESS_CONNINFO_MAX);
}

static void quiet(void *arg, const char *message)
{
    (void)arg; /* NOTICEs of DROP ... CASCADE and the like: expected */
    (void)message;
}

static PGconn *connect_to(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "\n  cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

static PGconn *connect_as(const char *db, enum login i)
{
    char ci[HARNESS_CONNINFO_MAX];

    login_conninfo(ci, db, i);
    return connect_to(ci);
}

/* Runs sql; want NULL: must succeed, else must fail with SQLSTATE want.
 * Returns 1 when it did as expected (and prints what happened if not). */
static int expect(PGconn *c, const char *sql, const char *want)
{
    PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    int ok;

    if (want == NULL)
        ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    else
        ok = s == PGRES_FATAL_ERROR && state != NULL && strcmp(state, want) == 0;
    if (!ok)
        fprintf(stderr, "\n  [%s] %s: want %s, got %s %s %s", PQuser(c), sql,
                want ? want : "success", PQresStatus(s), state ? state : "",
                PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* The first column of the first row (static buffer), "" on error. */
static const char *value(PGconn *c, const char *sql)
{
    static char buf[256];
    PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);

    buf[0] = '\0';
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        snprintf(buf, sizeof(buf), "%s", PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "\n  %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return buf;
}

#define ALLOWED(c, sql)   CU_ASSERT(expect((c), (sql), NULL))
#define FORBIDDEN(c, sql) CU_ASSERT(expect((c), (sql), "42501"))

/* One event, outbox row, operation, idempotency key and snapshot written
 * directly (as the owner), so row-level checks have rows to hit. */
static const char SEED_SQL[] =
    "WITH ev AS (INSERT INTO events (event_id, tenant_id, aggregate_type, aggregate_id,"
    "  version, event_type, data, metadata, operation_id, correlation_id)"
    "  VALUES (gen_random_uuid(), '" TENANT "', 'account', gen_random_uuid(), 1, 'Seeded', '{}',"
    "  '{}', gen_random_uuid(), 'seed') RETURNING global_position, tx_id, aggregate_id,"
    "  operation_id),"
    " ob AS (INSERT INTO outbox (global_position, tx_id, tenant_id)"
    "  SELECT global_position, tx_id, '" TENANT "' FROM ev),"
    " op AS (INSERT INTO operations (operation_id, tenant_id, kind, status, aggregate_type,"
    "  aggregate_id, correlation_id) SELECT operation_id, '" TENANT "', 'Seed', 'PENDING',"
    "  'account', aggregate_id, 'seed' FROM ev),"
    " ik AS (INSERT INTO idempotency_keys (tenant_id, key, request_hash, status_code)"
    "  VALUES ('" TENANT "', 'seed-' || gen_random_uuid(), '\\x00', 0)),"
    " sn AS (INSERT INTO snapshots (tenant_id, aggregate_type, aggregate_id, version, state,"
    "  recorded_at) SELECT '" TENANT "', 'account', aggregate_id, 1, '{}', now() FROM ev)"
    " SELECT count(*) FROM ev";

/* A fresh migrated database with seeded rows; conninfo to db. */
static int fresh_db(char db[HARNESS_CONNINFO_MAX])
{
    PGconn *c;
    int ok;

    if (harness_db_create(db) != 0)
        return -1;
    c = connect_to(db);
    if (c == NULL)
        return -1;
    ok = expect(c, SEED_SQL, NULL);
    PQfinish(c);
    return ok ? 0 : -1;
}

static int suite_init(void)
{
    PGconn *c;
    char sql[512];
    int ok = 1;

    /* role names are cluster-wide: unique per test process */
    for (int i = 0; i < N_LOGINS; i++)
        snprintf(logins[i], sizeof(logins[i]), "sec_%s_%ld", groups[i] + 6, (long)getpid());
    snprintf(password, sizeof(password), "pw%ld%lx", (long)getpid(), (unsigned long)time(NULL));
    if (harness_db_create(admin_db) != 0)
        return -1;
    c = connect_to(admin_db);
    if (c == NULL)
        return -1;
    for (int i = 0; i < N_LOGINS && ok; i++) {
        snprintf(sql, sizeof(sql), "SELECT tally_create_login('%s', '%s')", logins[i], groups[i]);
        ok = expect(c, sql, NULL);
        snprintf(sql, sizeof(sql), "ALTER ROLE %s PASSWORD '%s'", logins[i], password);
        ok = ok && expect(c, sql, NULL);
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

/* Drops the logins (they own nothing: every session ran as its group). */
static int suite_cleanup(void)
{
    PGconn *c = connect_to(admin_db);
    char sql[512];
    int ok = c != NULL;

    for (int i = 0; i < N_LOGINS && c != NULL; i++) {
        snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", logins[i]);
        ok = expect(c, sql, NULL) && ok;
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

/* ---- tests ---- */

static void test_roles_logins_run_as_their_group_with_idle_timeout(void)
{
    char want[128];

    for (int i = 0; i < N_LOGINS; i++) {
        PGconn *c = connect_as(admin_db, (enum login)i);

        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_STRING_EQUAL(value(c, "SELECT current_user"), groups[i]);
        CU_ASSERT_STRING_EQUAL(value(c, "SELECT session_user"), logins[i]);
        CU_ASSERT_STRING_EQUAL(value(c, "SHOW idle_in_transaction_session_timeout"), "30s");
        snprintf(want, sizeof(want), "SELECT rolcanlogin::text FROM pg_roles WHERE rolname = '%s'",
                 groups[i]);
        CU_ASSERT_STRING_EQUAL(value(c, want), "false"); /* the groups cannot log in */
        PQfinish(c);
    }
}

static void test_roles_unknown_group_refused(void)
{
    PGconn *c = connect_to(admin_db);

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(expect(c, "SELECT tally_create_login('sec_nobody', 'pg_write_all_data')", "22023"));
    CU_ASSERT_STRING_EQUAL(value(c, "SELECT count(*) FROM pg_roles WHERE rolname = 'sec_nobody'"),
                           "0");
    PQfinish(c);
}

static void test_roles_command_appends_never_rewrites(void)
{
    char db[HARNESS_CONNINFO_MAX];
    PGconn *c;

    CU_ASSERT_EQUAL_FATAL(fresh_db(db), 0);
    c = connect_as(db, L_COMMAND);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* what the command path does (store.c, auth.c) */
    ALLOWED(c, "SELECT count(*) FROM events");
    ALLOWED(c, "SELECT count(*) FROM api_tokens");
    ALLOWED(c, "SELECT count(*) FROM tenants");
    ALLOWED(c, "SELECT count(*) FROM snapshots");
    ALLOWED(c, "SELECT count(*) FROM idempotency_keys");
    ALLOWED(c, "SELECT count(*) FROM operations");
    ALLOWED(c, SEED_SQL); /* events, outbox, operations, idempotency_keys, snapshots */
    ALLOWED(c, "UPDATE operations SET status = 'SUCCEEDED', failure_reason = NULL,"
               " updated_at = now() WHERE kind = 'Seed'");
    ALLOWED(c, "UPDATE idempotency_keys SET response = '\\x01' WHERE key LIKE 'seed-%'");
    for (int i = 0; i < 2; i++) /* a refusal stored once (store_idem_put_failure) */
        ALLOWED(c, "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status_code)"
                   " VALUES ('" TENANT "', 'k', '\\x00', 5)"
                   " ON CONFLICT (tenant_id, key) DO NOTHING");
    ALLOWED(c, "NOTIFY tally_outbox");
    /* the log is append-only */
    FORBIDDEN(c, "UPDATE events SET event_type = 'Forged'");
    FORBIDDEN(c, "DELETE FROM events");
    FORBIDDEN(c, "TRUNCATE events");
    /* rows it must not rewrite or remove */
    FORBIDDEN(c, "UPDATE operations SET kind = 'Forged'");
    FORBIDDEN(c, "UPDATE operations SET tenant_id = gen_random_uuid()");
    FORBIDDEN(c, "DELETE FROM operations");
    FORBIDDEN(c, "UPDATE idempotency_keys SET status_code = 3");
    FORBIDDEN(c, "DELETE FROM idempotency_keys");
    FORBIDDEN(c, "UPDATE snapshots SET state = '{}'");
    FORBIDDEN(c, "DELETE FROM snapshots");
    FORBIDDEN(c, "UPDATE outbox SET published_at = now()");
    FORBIDDEN(c, "DELETE FROM outbox");
    /* the read model and the projector's tables are not its business */
    FORBIDDEN(c, "SELECT count(*) FROM rm.accounts");
    FORBIDDEN(c, "INSERT INTO rm.usage_daily VALUES ('" TENANT "', now(), 'X', '', 1, 1)");
    FORBIDDEN(c, "UPDATE projector_checkpoints SET global_position = 0");
    FORBIDDEN(c, "INSERT INTO projector_checkpoints (name) VALUES ('forged')");
    FORBIDDEN(c, "SELECT count(*) FROM dead_letters");
    /* nor tokens, tenants, DDL */
    FORBIDDEN(c, "INSERT INTO tenants (tenant_id, name) VALUES (gen_random_uuid(), 'forged')");
    FORBIDDEN(c, "UPDATE api_tokens SET revoked_at = NULL");
    FORBIDDEN(c, "INSERT INTO api_tokens SELECT gen_random_uuid(), tenant_id, 'x',"
                 " sha256('x'), now(), NULL FROM tenants");
    FORBIDDEN(c, "CREATE TABLE public.forged (id int)");
    FORBIDDEN(c, "CREATE SCHEMA forged");
    PQfinish(c);
}

static void test_roles_query_reads_only(void)
{
    char db[HARNESS_CONNINFO_MAX], sql[256];
    PGconn *c, *other;
    const char *pid;

    CU_ASSERT_EQUAL_FATAL(fresh_db(db), 0);
    c = connect_as(db, L_QUERY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ALLOWED(c, "SELECT count(*) FROM events");
    ALLOWED(c, "SELECT count(*) FROM outbox");
    ALLOWED(c, "SELECT count(*) FROM snapshots");
    ALLOWED(c, "SELECT count(*) FROM operations");
    ALLOWED(c, "SELECT count(*) FROM projector_checkpoints");
    ALLOWED(c, "SELECT count(*) FROM dead_letters");
    ALLOWED(c, "SELECT count(*) FROM api_tokens");
    ALLOWED(c, "SELECT count(*) FROM tenants");
    ALLOWED(c, "SELECT count(*) FROM rm.accounts");
    ALLOWED(c, "SELECT count(*) FROM rm.entries");
    ALLOWED(c, "SELECT count(*) FROM rm.transfers");
    ALLOWED(c, "SELECT count(*) FROM rm.usage_daily");
    ALLOWED(c, "LISTEN tally_checkpoint");
    FORBIDDEN(c, SEED_SQL);
    FORBIDDEN(c, "UPDATE events SET event_type = 'Forged'");
    FORBIDDEN(c, "DELETE FROM events");
    FORBIDDEN(c, "TRUNCATE events");
    FORBIDDEN(c, "INSERT INTO operations (operation_id, tenant_id, kind, status, aggregate_type,"
                 " aggregate_id, correlation_id) VALUES (gen_random_uuid(), '" TENANT "', 'X',"
                 " 'PENDING', 'account', gen_random_uuid(), 'x')");
    FORBIDDEN(c, "UPDATE operations SET status = 'FAILED'");
    FORBIDDEN(c, "SELECT count(*) FROM idempotency_keys"); /* stored responses: not a read RPC's */
    FORBIDDEN(c, "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status_code)"
                 " VALUES ('" TENANT "', 'q', '\\x00', 0)");
    FORBIDDEN(c, "UPDATE outbox SET published_at = now()");
    FORBIDDEN(c, "DELETE FROM outbox");
    FORBIDDEN(c, "INSERT INTO rm.usage_daily VALUES ('" TENANT "', now(), 'X', '', 1, 1)");
    FORBIDDEN(c, "UPDATE rm.accounts SET balance = 0");
    FORBIDDEN(c, "DELETE FROM rm.entries");
    FORBIDDEN(c, "UPDATE projector_checkpoints SET global_position = 0");
    FORBIDDEN(c, "DELETE FROM dead_letters");
    FORBIDDEN(c, "UPDATE api_tokens SET revoked_at = now()");
    FORBIDDEN(c, "CREATE TABLE public.forged (id int)");
    FORBIDDEN(c, "CREATE SCHEMA forged");
    FORBIDDEN(c, "ALTER SCHEMA rm RENAME TO forged");

    /* GetProjectionStatus names another role's open transaction (DESIGN §5):
     * visible to tally_query through pg_read_all_stats */
    other = connect_to(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    CU_ASSERT(expect(other, "BEGIN", NULL));
    CU_ASSERT(expect(other, "SELECT pg_current_xact_id()", NULL));
    pid = value(other, "SELECT pg_backend_pid()");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND xact_start IS NOT NULL"
             " AND backend_xid IS NOT NULL",
             pid);
    CU_ASSERT_STRING_EQUAL(value(c, sql), "1");
    CU_ASSERT(expect(other, "ROLLBACK", NULL));
    PQfinish(other);
    PQfinish(c);
}

static void test_roles_projector_projects_never_rewrites_events(void)
{
    char db[HARNESS_CONNINFO_MAX];
    PGconn *c;

    CU_ASSERT_EQUAL_FATAL(fresh_db(db), 0);
    c = connect_as(db, L_PROJECTOR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* the log, and the saga's appends (through tally_command) */
    ALLOWED(c, "SELECT count(*) FROM events");
    ALLOWED(c, SEED_SQL);
    ALLOWED(c, "UPDATE operations SET status = 'SUCCEEDED', updated_at = now()"
               " WHERE kind = 'Seed'");
    /* the outbox: marked, then deleted after the retention */
    ALLOWED(c, "UPDATE outbox SET published_at = now()");
    ALLOWED(c, "DELETE FROM outbox WHERE published_at < now() - interval '1 day'");
    /* checkpoints and dead letters */
    ALLOWED(c, "INSERT INTO projector_checkpoints (name) VALUES ('sec') ON CONFLICT DO NOTHING");
    ALLOWED(c, "SELECT projector_checkpoint_cas('sec', 0, '0', 0, '1', 1)");
    ALLOWED(c, "SELECT tx_id FROM projector_checkpoints WHERE name = 'rm' FOR UPDATE");
    ALLOWED(c, "DELETE FROM projector_checkpoints WHERE name = 'sec'");
    ALLOWED(c, "INSERT INTO dead_letters (projection, global_position, tx_id, tenant_id,"
               " aggregate_type, aggregate_id, error, attempts)"
               " VALUES ('sec', 1, '1', '" TENANT "', 'account', gen_random_uuid(), 'e', 1)");
    ALLOWED(c, "UPDATE dead_letters SET resolved_at = now() WHERE projection = 'sec'");
    ALLOWED(c, "DELETE FROM dead_letters WHERE projection = 'sec'");
    /* the read model, and what --rebuild does with it */
    ALLOWED(c, "INSERT INTO rm.usage_daily VALUES ('" TENANT "', now(), 'X', '', 1, 1)");
    ALLOWED(c, "UPDATE rm.usage_daily SET event_count = 2");
    ALLOWED(c, "DELETE FROM rm.usage_daily");
    ALLOWED(c, "DROP SCHEMA IF EXISTS rm_rebuild CASCADE");
    ALLOWED(c, "SELECT rm_create_tables('rm_rebuild')");
    ALLOWED(c, "BEGIN");
    ALLOWED(c, "ALTER SCHEMA rm RENAME TO rm_old");
    ALLOWED(c, "ALTER SCHEMA rm_rebuild RENAME TO rm");
    ALLOWED(c, "DROP SCHEMA rm_old CASCADE");
    ALLOWED(c, "ROLLBACK");
    ALLOWED(c, "DROP SCHEMA rm_rebuild CASCADE");
    /* never the log itself */
    FORBIDDEN(c, "UPDATE events SET event_type = 'Forged'");
    FORBIDDEN(c, "DELETE FROM events");
    FORBIDDEN(c, "TRUNCATE events");
    FORBIDDEN(c, "UPDATE outbox SET tenant_id = gen_random_uuid()");
    FORBIDDEN(c, "UPDATE operations SET kind = 'Forged'");
    FORBIDDEN(c, "UPDATE idempotency_keys SET status_code = 3");
    FORBIDDEN(c, "DELETE FROM snapshots");
    FORBIDDEN(c, "UPDATE api_tokens SET revoked_at = NULL");
    FORBIDDEN(c, "INSERT INTO tenants (tenant_id, name) VALUES (gen_random_uuid(), 'forged')");
    FORBIDDEN(c, "CREATE TABLE public.forged (id int)");
    PQfinish(c);
}

static void test_roles_events_append_only_even_for_the_owner(void)
{
    char db[HARNESS_CONNINFO_MAX];
    PGconn *c;

    CU_ASSERT_EQUAL_FATAL(fresh_db(db), 0);
    c = connect_to(db); /* the harness's superuser, who owns the tables */
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(expect(c, "UPDATE events SET event_type = 'Forged'", "55000"));
    CU_ASSERT(expect(c, "DELETE FROM events", "55000"));
    CU_ASSERT(expect(c, "TRUNCATE events CASCADE", "55000"));
    CU_ASSERT_STRING_EQUAL(value(c, "SELECT count(*) FROM events WHERE event_type = 'Seeded'"),
                           "1");
    PQfinish(c);
}

/* The three daemons as the three logins: commands, the saga (Transfer
 * wait=true completes only if the projector's saga may append), reads that
 * wait for the projector, GetProjectionStatus, Subscribe. */
static void test_roles_daemons_run_end_to_end_as_their_logins(void)
{
    const enum harness_daemon_kind kinds[N_LOGINS] = {HARNESS_COMMAND, HARNESS_QUERY,
                                                      HARNESS_PROJECTOR};
    char db[HARNESS_CONNINFO_MAX], ci[N_LOGINS][HARNESS_CONNINFO_MAX], token[HARNESS_TOKEN_MAX];
    char a[64], b[64];
    struct harness_daemon d[N_LOGINS];
    trpc_channel *cmd = NULL, *qry = NULL, *sub = NULL;
    trpc_status st = {0};
    uint64_t pos[2] = {0, 0};
    int64_t balance = -1;
    int done = 0, started = 0;

    CU_ASSERT_EQUAL_FATAL(harness_db_create(db), 0);
    CU_ASSERT_EQUAL_FATAL(harness_tenant_token(db, "roles-tenant", NULL, token), 0);
    for (int i = 0; i < N_LOGINS; i++) {
        login_conninfo(ci[i], db, (enum login)i);
        if (harness_daemon_start(&d[i], kinds[i], ci[i], NULL, NULL) != 0)
            break;
        started++;
    }
    CU_ASSERT_EQUAL_FATAL(started, N_LOGINS);
    cmd = trpc_channel_new(d[L_COMMAND].addr);
    qry = trpc_channel_new(d[L_QUERY].addr);
    sub = trpc_channel_new(d[L_PROJECTOR].addr);
    CU_ASSERT_FATAL(cmd != NULL && qry != NULL && sub != NULL);

    CU_ASSERT_EQUAL(secfx_open_account(cmd, token, a, NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(secfx_open_account(cmd, token, b, NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(secfx_deposit(cmd, token, a, 1000, NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(secfx_transfer(cmd, token, a, b, 300, pos, &done, &st), GRPC_STATUS_OK);
    if (st.code != GRPC_STATUS_OK)
        fprintf(stderr, "\n  commands: %s %s", trpc_status_code_name(st.code), st.msg);
    CU_ASSERT_TRUE(done);
    CU_ASSERT_EQUAL(secfx_get_balance(qry, token, b, pos, &balance, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(balance, 300);
    CU_ASSERT_EQUAL(secfx_get_balance(qry, token, a, pos, &balance, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(balance, 700);
    CU_ASSERT_EQUAL(secfx_projection_status(qry, token, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(secfx_subscribe_first(sub, token, &st), GRPC_STATUS_OK);
    if (st.code != GRPC_STATUS_OK)
        fprintf(stderr, "\n  reads: %s %s", trpc_status_code_name(st.code), st.msg);

    trpc_channel_free(cmd);
    trpc_channel_free(qry);
    trpc_channel_free(sub);
    for (int i = 0; i < N_LOGINS; i++) {
        CU_ASSERT_EQUAL(harness_daemon_stop(&d[i], STOP_MS), 0);
        /* not one statement refused for lack of rights */
        CU_ASSERT_FALSE(secfx_log_contains(&d[i], "permission denied"));
        CU_ASSERT_FALSE(secfx_log_contains(&d[i], "must be owner"));
    }
}

/* tally-projector --rebuild as the projector login swaps in a new rm that
 * tally_query can still read and the projector still owns. */
static void test_roles_rebuild_keeps_the_read_model_readable(void)
{
    char db[HARNESS_CONNINFO_MAX], proj[HARNESS_CONNINFO_MAX], token[HARNESS_TOKEN_MAX];
    char a[64];
    struct harness_daemon cmd_d;
    trpc_channel *cmd;
    trpc_status st = {0};
    const char *argv[] = {harness_daemon_path(HARNESS_PROJECTOR), "--db", proj, "--rebuild", NULL};
    char *out = NULL, *err = NULL;
    PGconn *q;
    int rc;

    CU_ASSERT_EQUAL_FATAL(harness_db_create(db), 0);
    CU_ASSERT_EQUAL_FATAL(harness_tenant_token(db, "rebuild-tenant", NULL, token), 0);
    login_conninfo(proj, db, L_PROJECTOR);
    {
        char ci[HARNESS_CONNINFO_MAX];

        login_conninfo(ci, db, L_COMMAND);
        CU_ASSERT_EQUAL_FATAL(harness_daemon_start(&cmd_d, HARNESS_COMMAND, ci, NULL, NULL), 0);
    }
    cmd = trpc_channel_new(cmd_d.addr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cmd);
    CU_ASSERT_EQUAL(secfx_open_account(cmd, token, a, NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(secfx_deposit(cmd, token, a, 4200, NULL, &st), GRPC_STATUS_OK);
    trpc_channel_free(cmd);
    CU_ASSERT_EQUAL(harness_daemon_stop(&cmd_d, STOP_MS), 0);

    CU_ASSERT_PTR_NOT_NULL_FATAL(argv[0]);
    rc = harness_run(argv, NULL, REBUILD_MS, &out, &err);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0)
        fprintf(stderr, "\n  rebuild exited %d: %s%s", rc, out ? out : "", err ? err : "");
    free(out);
    free(err);

    q = connect_as(db, L_QUERY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    {
        char sql[512];

        snprintf(sql, sizeof(sql), "SELECT balance FROM rm.accounts WHERE account_id = '%s'", a);
        CU_ASSERT_STRING_EQUAL(value(q, sql), "4200");
    }
    CU_ASSERT_STRING_EQUAL(value(q, "SELECT count(*) FROM rm.entries"), "1");
    CU_ASSERT_STRING_EQUAL(value(q, "SELECT nspowner::regrole::text FROM pg_namespace"
                                    " WHERE nspname = 'rm'"),
                           "tally_projector");
    CU_ASSERT_STRING_EQUAL(value(q, "SELECT count(*) FROM pg_namespace"
                                    " WHERE nspname IN ('rm_rebuild', 'rm_old')"),
                           "0");
    FORBIDDEN(q, "DELETE FROM rm.accounts");
    PQfinish(q);
}

static CU_TestInfo roles_tests[] = {
    {"logins run as their group with the idle timeout",
     test_roles_logins_run_as_their_group_with_idle_timeout},
    {"an unknown group is refused", test_roles_unknown_group_refused},
    {"tally_command appends, never rewrites", test_roles_command_appends_never_rewrites},
    {"tally_query reads only", test_roles_query_reads_only},
    {"tally_projector projects, never rewrites events",
     test_roles_projector_projects_never_rewrites_events},
    {"events are append-only even for the owner", test_roles_events_append_only_even_for_the_owner},
    {"the daemons run end to end as their logins",
     test_roles_daemons_run_end_to_end_as_their_logins},
    {"--rebuild keeps the read model readable", test_roles_rebuild_keeps_the_read_model_readable},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"roles", suite_init, suite_cleanup, NULL, NULL, roles_tests},
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
