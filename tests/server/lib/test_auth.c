/* test_auth.c - server/lib/auth.c against a real PostgreSQL: create, verify,
 * revoke (immediately without a cache, within the TTL with one), tenants
 * kept apart, only the hash stored, negative caching, database failures,
 * concurrent verification through one cache. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "auth.h"
#include "dbtest.h"
#include "pg.h"

static char db[HARNESS_CONNINFO_MAX];
static PGconn *conn;

static int suite_init(void)
{
    if (dbtest_new_db(db) != 0)
        return -1;
    conn = dbtest_connect(db);
    return conn != NULL ? 0 : -1;
}

static int suite_cleanup(void)
{
    PQfinish(conn);
    conn = NULL;
    return 0;
}

/* A new tenant; its id into id. */
static void new_tenant(const char *name, char id[AUTH_UUID_LEN + 1])
{
    const char *params[1] = {name};
    char *v = dbtest_value(
        conn,
        "INSERT INTO tenants (tenant_id, name) VALUES (gen_random_uuid(), $1) RETURNING tenant_id",
        1, params);

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    snprintf(id, AUTH_UUID_LEN + 1, "%s", v);
    free(v);
}

static void new_token(const char *tenant_id, const char *name, char token[AUTH_TOKEN_LEN + 1],
                      char token_id[AUTH_UUID_LEN + 1])
{
    trpc_status st = {GRPC_STATUS_OK, ""};

    CU_ASSERT_EQUAL_FATAL(auth_token_create(conn, tenant_id, name, token, token_id, &st),
                          GRPC_STATUS_OK);
}

static grpc_status_code verify(auth_cache *cache, const char *token, struct auth_identity *id,
                               trpc_status *st)
{
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return auth_verify(cache, conn, token, strlen(token), id, st);
}

static void test_auth_create_then_verify_resolves_identity(void)
{
    char tenant[AUTH_UUID_LEN + 1], token[AUTH_TOKEN_LEN + 1], token_id[AUTH_UUID_LEN + 1];
    char header[128];
    struct auth_identity id;
    trpc_status st;
    auth_cache *cache = auth_cache_new(AUTH_CACHE_TTL_MS, AUTH_CACHE_NEGATIVE_TTL_MS, 64);

    CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
    new_tenant("create-verify", tenant);
    new_token(tenant, "ci deploy", token, token_id);
    CU_ASSERT_EQUAL(strlen(token), AUTH_TOKEN_LEN);
    CU_ASSERT_EQUAL(strncmp(token, "tly_", 4), 0);
    CU_ASSERT_TRUE(auth_token_is_well_formed(token, strlen(token)));
    CU_ASSERT_EQUAL(strlen(token_id), AUTH_UUID_LEN);

    for (int pass = 0; pass < 2; pass++) { /* database, then cache */
        memset(&id, 0, sizeof(id));
        CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_OK);
        CU_ASSERT_STRING_EQUAL(id.tenant_id, tenant);
        CU_ASSERT_STRING_EQUAL(id.token_id, token_id);
        CU_ASSERT_STRING_EQUAL(id.token_name, "ci deploy");
    }
    memset(&id, 0, sizeof(id));
    CU_ASSERT_EQUAL(verify(NULL, token, &id, &st), GRPC_STATUS_OK); /* no cache */
    CU_ASSERT_STRING_EQUAL(id.tenant_id, tenant);

    /* the whole path from the metadata value */
    snprintf(header, sizeof(header), "bearer %s", token);
    memset(&id, 0, sizeof(id));
    CU_ASSERT_EQUAL(auth_authenticate(cache, conn, header, strlen(header), &id, &st),
                    GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(id.tenant_id, tenant);
    auth_cache_free(cache);
}

static void test_auth_unknown_or_mangled_token_unauthenticated(void)
{
    char tenant[AUTH_UUID_LEN + 1], token[AUTH_TOKEN_LEN + 1], token_id[AUTH_UUID_LEN + 1];
    struct auth_identity id;
    trpc_status st;

    new_tenant("mangled", tenant);
    new_token(tenant, "t", token, token_id);
    token[10] = token[10] == 'A' ? 'B' : 'A'; /* one character off */
    CU_ASSERT_EQUAL(verify(NULL, token, &id, &st), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(st.msg, "invalid or revoked token");
    CU_ASSERT_EQUAL(verify(NULL, "tly_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &id, &st),
                    GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_EQUAL(verify(NULL, "not-a-token", &id, &st), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(st.msg, "invalid or revoked token");
}

static void test_auth_only_the_hash_is_stored(void)
{
    char tenant[AUTH_UUID_LEN + 1], token[AUTH_TOKEN_LEN + 1], token_id[AUTH_UUID_LEN + 1];
    unsigned char hash[32];
    char hex[65];
    const char *params[3];
    char *v;

    new_tenant("hash-only", tenant);
    new_token(tenant, "h", token, token_id);
    CU_ASSERT_EQUAL_FATAL(auth_token_hash(token, strlen(token), hash), 0);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    params[0] = token_id;
    params[1] = hex;
    params[2] = token + 4; /* the secret part */
    v = dbtest_value(conn,
                     "SELECT encode(token_hash, 'hex') = $2 AND strpos(t::text, $3) = 0 "
                     "AND strpos(encode(token_hash, 'escape'), $3) = 0 "
                     "FROM api_tokens t WHERE token_id = $1",
                     3, params);
    CU_ASSERT(v != NULL && strcmp(v, "t") == 0);
    free(v);
}

static void test_auth_tokens_are_distinct(void)
{
    char tenant[AUTH_UUID_LEN + 1], token_id[AUTH_UUID_LEN + 1];
    static char tokens[40][AUTH_TOKEN_LEN + 1];

    new_tenant("distinct", tenant);
    for (int i = 0; i < 40; i++) {
        new_token(tenant, "many", tokens[i], token_id);
        CU_ASSERT_TRUE(auth_token_is_well_formed(tokens[i], strlen(tokens[i])));
        for (int j = 0; j < i; j++)
            CU_ASSERT_NOT_EQUAL(strcmp(tokens[i], tokens[j]), 0);
    }
}

/* Without a cache a revocation is immediate; with one it takes effect once
 * the entry expires (ttl_ms), not later. */
static void test_auth_revoke_takes_effect_after_cache_ttl(void)
{
    char tenant[AUTH_UUID_LEN + 1], token[AUTH_TOKEN_LEN + 1], token_id[AUTH_UUID_LEN + 1];
    struct auth_identity id;
    trpc_status st;
    auth_cache *cache = auth_cache_new(400, 100, 64);

    CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
    new_tenant("revoke-ttl", tenant);
    new_token(tenant, "r", token, token_id);
    CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(auth_token_revoke(conn, token_id, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(verify(NULL, token, &id, &st), GRPC_STATUS_UNAUTHENTICATED); /* at once */
    CU_ASSERT_STRING_EQUAL(st.msg, "invalid or revoked token");
    CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_OK); /* still cached */
    dbtest_sleep_ms(450);
    CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(st.msg, "invalid or revoked token");
    /* the rejection is cached now too, and stays a rejection */
    CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_UNAUTHENTICATED);
    auth_cache_free(cache);
}

static void test_auth_cache_clear_forgets_at_once(void)
{
    char tenant[AUTH_UUID_LEN + 1], token[AUTH_TOKEN_LEN + 1], token_id[AUTH_UUID_LEN + 1];
    struct auth_identity id;
    trpc_status st;
    auth_cache *cache = auth_cache_new(60000, 100, 64);

    CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
    new_tenant("cache-clear", tenant);
    new_token(tenant, "c", token, token_id);
    CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(auth_token_revoke(conn, token_id, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_OK);
    auth_cache_clear(cache);
    CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_UNAUTHENTICATED);
    auth_cache_free(cache);
}

/* An unknown token stays rejected for negative_ttl_ms, then is looked up
 * again (here: a row with its hash appeared meanwhile). */
static void test_auth_negative_results_cached_briefly(void)
{
    static const char token[] = "tly_negativeCacheTestToken0123456789abcdefghijA";
    char tenant[AUTH_UUID_LEN + 1], hex[65];
    unsigned char hash[32];
    const char *params[2] = {NULL, hex};
    struct auth_identity id;
    trpc_status st;
    char *v;
    auth_cache *cache = auth_cache_new(5000, 300, 64);

    CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
    CU_ASSERT_TRUE_FATAL(auth_token_is_well_formed(token, strlen(token)));
    new_tenant("negative", tenant);
    params[0] = tenant;
    CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_EQUAL_FATAL(auth_token_hash(token, strlen(token), hash), 0);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    v = dbtest_value(conn,
                     "INSERT INTO api_tokens (token_id, tenant_id, name, token_hash) VALUES "
                     "(gen_random_uuid(), $1, 'late', decode($2, 'hex'))",
                     2, params);
    CU_ASSERT_PTR_NOT_NULL(v);
    free(v);
    CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_UNAUTHENTICATED); /* cached */
    CU_ASSERT_EQUAL(verify(NULL, token, &id, &st), GRPC_STATUS_OK);
    dbtest_sleep_ms(350);
    CU_ASSERT_EQUAL(verify(cache, token, &id, &st), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(id.token_name, "late");
    auth_cache_free(cache);
}

/* A token speaks for its own tenant only. */
static void test_auth_tenants_kept_apart(void)
{
    char a[AUTH_UUID_LEN + 1], b[AUTH_UUID_LEN + 1];
    char ta[AUTH_TOKEN_LEN + 1], tb[AUTH_TOKEN_LEN + 1];
    char ida[AUTH_UUID_LEN + 1], idb[AUTH_UUID_LEN + 1];
    struct auth_identity id;
    trpc_status st;
    auth_cache *cache = auth_cache_new(5000, 1000, 64);

    CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
    new_tenant("tenant-a", a);
    new_tenant("tenant-b", b);
    new_token(a, "same name", ta, ida);
    new_token(b, "same name", tb, idb);
    CU_ASSERT_EQUAL(verify(cache, ta, &id, &st), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(id.tenant_id, a);
    CU_ASSERT_STRING_EQUAL(id.token_id, ida);
    CU_ASSERT_EQUAL(verify(cache, tb, &id, &st), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(id.tenant_id, b);
    CU_ASSERT_STRING_EQUAL(id.token_id, idb);
    /* revoking A's token leaves B's alone */
    CU_ASSERT_EQUAL(auth_token_revoke(conn, ida, &st), GRPC_STATUS_OK);
    auth_cache_clear(cache);
    CU_ASSERT_EQUAL(verify(cache, ta, &id, &st), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_EQUAL(verify(cache, tb, &id, &st), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(id.tenant_id, b);
    auth_cache_free(cache);
}

static void test_auth_create_for_unknown_or_bad_tenant_refused(void)
{
    char token[AUTH_TOKEN_LEN + 1] = "x", token_id[AUTH_UUID_LEN + 1] = "x";
    char tenant[AUTH_UUID_LEN + 1], name[200];
    trpc_status st;

    CU_ASSERT_EQUAL(
        auth_token_create(conn, "00000000-0000-4000-8000-000000000000", "n", token, token_id, &st),
        GRPC_STATUS_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(st.msg, "tenant not found");
    CU_ASSERT_STRING_EQUAL(token, ""); /* nothing to show */
    CU_ASSERT_STRING_EQUAL(token_id, "");
    CU_ASSERT_EQUAL(auth_token_create(conn, "acme", "n", token, NULL, &st),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_STRING_EQUAL(st.msg, "invalid tenant id");
    CU_ASSERT_EQUAL(auth_token_create(conn, NULL, "n", token, NULL, &st),
                    GRPC_STATUS_INVALID_ARGUMENT);
    new_tenant("bad-names", tenant);
    CU_ASSERT_EQUAL(auth_token_create(conn, tenant, "", token, NULL, &st),
                    GRPC_STATUS_INVALID_ARGUMENT);
    memset(name, 'n', 129);
    name[129] = '\0';
    CU_ASSERT_EQUAL(auth_token_create(conn, tenant, name, token, NULL, &st),
                    GRPC_STATUS_INVALID_ARGUMENT);
    name[128] = '\0';
    CU_ASSERT_EQUAL(auth_token_create(conn, tenant, name, token, NULL, &st), GRPC_STATUS_OK);
}

static void test_auth_revoke_idempotent_and_not_found(void)
{
    char tenant[AUTH_UUID_LEN + 1], token[AUTH_TOKEN_LEN + 1], token_id[AUTH_UUID_LEN + 1];
    const char *params[1] = {token_id};
    char *first, *second;
    trpc_status st;

    new_tenant("revoke-twice", tenant);
    new_token(tenant, "r2", token, token_id);
    CU_ASSERT_EQUAL(auth_token_revoke(conn, token_id, &st), GRPC_STATUS_OK);
    first = dbtest_value(conn, "SELECT revoked_at FROM api_tokens WHERE token_id = $1", 1, params);
    dbtest_sleep_ms(20);
    CU_ASSERT_EQUAL(auth_token_revoke(conn, token_id, &st), GRPC_STATUS_OK);
    second = dbtest_value(conn, "SELECT revoked_at FROM api_tokens WHERE token_id = $1", 1, params);
    CU_ASSERT(first != NULL && second != NULL && strcmp(first, second) == 0);
    free(first);
    free(second);
    CU_ASSERT_EQUAL(auth_token_revoke(conn, "00000000-0000-4000-8000-000000000000", &st),
                    GRPC_STATUS_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(st.msg, "token not found");
    CU_ASSERT_EQUAL(auth_token_revoke(conn, "junk", &st), GRPC_STATUS_INVALID_ARGUMENT);
}

/* A database failure is not the caller's fault: UNAVAILABLE, not cached. */
static void test_auth_database_failure_is_unavailable_not_cached(void)
{
    char tenant[AUTH_UUID_LEN + 1], token[AUTH_TOKEN_LEN + 1], token_id[AUTH_UUID_LEN + 1];
    char pid[32];
    const char *params[1] = {pid};
    struct auth_identity id;
    trpc_status st;
    struct pg_opts o;
    PGconn *victim;
    char *v;
    auth_cache *cache = auth_cache_new(5000, 5000, 64);

    CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
    new_tenant("db-down", tenant);
    new_token(tenant, "d", token, token_id);
    victim = dbtest_connect(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(victim);
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(victim));
    v = dbtest_value(conn, "SELECT pg_terminate_backend($1::int)", 1, params);
    free(v);
    dbtest_sleep_ms(100);
    st.code = GRPC_STATUS_OK;
    CU_ASSERT_EQUAL(auth_verify(cache, victim, token, strlen(token), &id, &st),
                    GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_STRING_EQUAL(st.msg, "could not verify token");
    pg_opts_init(&o);
    o.conninfo = db;
    CU_ASSERT_EQUAL_FATAL(pg_reconnect(victim, &o, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(auth_verify(cache, victim, token, strlen(token), &id, &st), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(id.tenant_id, tenant);
    PQfinish(victim);
    auth_cache_free(cache);
}

#define THREADS 4
#define ROUNDS  300

struct verifier {
    auth_cache *cache;
    const char *good[2];
    const char *tenant[2];
    const char *bad;
    int errors;
};

static void *verifier_main(void *arg)
{
    struct verifier *v = arg;
    PGconn *c = dbtest_connect(db);
    struct auth_identity id;
    trpc_status st;

    if (c == NULL) {
        v->errors = -1;
        return NULL;
    }
    for (int i = 0; i < ROUNDS; i++) {
        int k = i % 3;
        const char *tok = k < 2 ? v->good[k] : v->bad;
        grpc_status_code code = auth_verify(v->cache, c, tok, strlen(tok), &id, &st);

        if (k < 2 && (code != GRPC_STATUS_OK || strcmp(id.tenant_id, v->tenant[k]) != 0))
            v->errors++;
        if (k == 2 && code != GRPC_STATUS_UNAUTHENTICATED)
            v->errors++;
        if (i % 50 == 0)
            auth_cache_clear(v->cache);
    }
    PQfinish(c);
    return NULL;
}

/* One cache, several threads (each with its own connection). */
static void test_auth_cache_shared_by_threads(void)
{
    char a[AUTH_UUID_LEN + 1], b[AUTH_UUID_LEN + 1];
    char ta[AUTH_TOKEN_LEN + 1], tb[AUTH_TOKEN_LEN + 1], id[AUTH_UUID_LEN + 1];
    struct verifier v[THREADS];
    pthread_t th[THREADS];
    auth_cache *cache = auth_cache_new(5000, 5000, 2); /* tiny: slots collide */

    CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
    new_tenant("threads-a", a);
    new_tenant("threads-b", b);
    new_token(a, "a", ta, id);
    new_token(b, "b", tb, id);
    for (int i = 0; i < THREADS; i++) {
        v[i] = (struct verifier){
            cache, {ta, tb}, {a, b}, "tly_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, verifier_main, &v[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(v[i].errors, 0);
    }
    auth_cache_free(cache);
}

static CU_TestInfo auth_tests[] = {
    {"create, then verify resolves the identity", test_auth_create_then_verify_resolves_identity},
    {"unknown or mangled token -> UNAUTHENTICATED",
     test_auth_unknown_or_mangled_token_unauthenticated},
    {"only the hash is stored", test_auth_only_the_hash_is_stored},
    {"tokens are distinct", test_auth_tokens_are_distinct},
    {"revoke: at once uncached, after the TTL cached",
     test_auth_revoke_takes_effect_after_cache_ttl},
    {"cache clear forgets at once", test_auth_cache_clear_forgets_at_once},
    {"negative results cached briefly", test_auth_negative_results_cached_briefly},
    {"tenants kept apart", test_auth_tenants_kept_apart},
    {"unknown or bad tenant, bad names refused",
     test_auth_create_for_unknown_or_bad_tenant_refused},
    {"revoke idempotent; unknown -> NOT_FOUND", test_auth_revoke_idempotent_and_not_found},
    {"database failure -> UNAVAILABLE, not cached",
     test_auth_database_failure_is_unavailable_not_cached},
    {"cache shared by threads", test_auth_cache_shared_by_threads},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"auth", suite_init, suite_cleanup, NULL, NULL, auth_tests},
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
