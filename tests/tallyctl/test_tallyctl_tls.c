/* test_tallyctl_tls.c - the built tallyctl over TLS against the real
 * daemons started with --tls-cert/--tls-key (certificates made by openssl at
 * test time, tests/security/secfx.h): the commands, queries and watch work
 * with --tls-ca or TALLY_TLS_CA (and --tls-server-name); a client without
 * TLS, with another CA or expecting another name fails with UNAVAILABLE (9)
 * in one line; unreadable TLS files and a certificate without its key are
 * usage errors (2) before any call; against a daemon that requires client
 * certificates (--tls-client-ca) --tls-cert/--tls-key (or TALLY_TLS_CERT/
 * TALLY_TLS_KEY) work and their absence fails with 9. Every run's stderr is
 * checked for sanitizer reports. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "harness.h"
#include "secfx.h"

#define RUN_MS   30000
#define STOP_MS  20000
#define MAX_ARGS 24
#define MAX_ENV  12

static struct {
    struct secfx_certs certs;
    char db[HARNESS_CONNINFO_MAX];
    char token[HARNESS_TOKEN_MAX];
    struct harness_daemon d[3];
    bool running[3];
    char env_addr[3][HARNESS_ADDR_MAX + 32];
    char env_token[HARNESS_TOKEN_MAX + 16];
    char env_ca[HARNESS_PATH_MAX + 16];
} fx;

static const char *const env_names[3] = {"TALLY_ADDR", "TALLY_QUERY_ADDR", "TALLY_SUBSCRIBE_ADDR"};

struct run {
    int rc;
    char *out;
    char *err;
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* Runs tallyctl with the daemons' addresses and the token in the
 * environment, plus extra (NULL-terminated, may be NULL), and args. */
static void ctl_env(struct run *r, const char *const *extra, ...)
{
    const char *argv[MAX_ARGS + 2], *env[MAX_ENV];
    size_t n = 0, e = 0;
    const char *a;
    va_list ap;

    argv[n++] = TALLYCTL_PATH;
    va_start(ap, extra);
    while ((a = va_arg(ap, const char *)) != NULL && n < MAX_ARGS)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    for (int i = 0; i < 3; i++)
        env[e++] = fx.env_addr[i];
    env[e++] = fx.env_token;
    /* unset in the child unless extra sets them */
    env[e++] = "TALLY_TLS_CA=";
    env[e++] = "TALLY_TLS_CERT=";
    env[e++] = "TALLY_TLS_KEY=";
    /* an extra entry replaces the one of the same name */
    for (size_t i = 0; extra != NULL && extra[i] != NULL && e < MAX_ENV - 1; i++) {
        size_t k, nlen = strcspn(extra[i], "=") + 1;

        for (k = 0; k < e && strncmp(env[k], extra[i], nlen) != 0; k++)
            ;
        env[k] = extra[i];
        if (k == e)
            e++;
    }
    env[e] = NULL;
    memset(r, 0, sizeof(*r));
    r->rc = harness_run(argv, env, RUN_MS, &r->out, &r->err);
    if (r->out == NULL)
        r->out = strdup("");
    if (r->err == NULL)
        r->err = strdup("");
    CU_ASSERT_PTR_NULL(strstr(r->err, "Sanitizer"));
    CU_ASSERT_PTR_NULL(strstr(r->err, "runtime error:"));
}

#define CHECK_RC(r, want)                                                                          \
    do {                                                                                           \
        if ((r)->rc != (want))                                                                     \
            fprintf(stderr, "\n  line %d: exit %d, wanted %d\n  stdout: %s\n  stderr: %s\n",       \
                    __LINE__, (r)->rc, (want), (r)->out, (r)->err);                                \
        CU_ASSERT_EQUAL((r)->rc, (want));                                                          \
    } while (0)

/* Exactly one line on stderr starting with prefix, nothing on stdout. */
static void check_error_line(const struct run *r, const char *prefix)
{
    size_t n = strlen(r->err);

    if (strncmp(r->err, prefix, strlen(prefix)) != 0)
        fprintf(stderr, "\n  stderr \"%s\" does not start with \"%s\"\n", r->err, prefix);
    CU_ASSERT_EQUAL(strncmp(r->err, prefix, strlen(prefix)), 0);
    CU_ASSERT(n > 0 && r->err[n - 1] == '\n');
    CU_ASSERT_PTR_EQUAL(strchr(r->err, '\n'), r->err + n - 1);
    CU_ASSERT_STRING_EQUAL(r->out, "");
}

/* The value of "key:" in a key: value block ("" if absent). */
static char *kv_get(const char *text, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);

    buf[0] = '\0';
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *v = line + klen + 1;

            while (*v == ' ')
                v++;
            snprintf(buf, size, "%.*s", (int)strcspn(v, "\n"), v);
            return buf;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return buf;
}

/* ---- the fixture: the three daemons with TLS ---- */

static int start_tls(struct harness_daemon *d, enum harness_daemon_kind kind, const char *client_ca)
{
    const char *args[] = {"--tls-cert",
                          fx.certs.server_cert,
                          "--tls-key",
                          fx.certs.server_key,
                          client_ca ? "--tls-client-ca" : NULL,
                          client_ca,
                          NULL};

    return harness_daemon_start(d, kind, fx.db, args, NULL);
}

static int suite_init(void)
{
    static const enum harness_daemon_kind kinds[3] = {HARNESS_COMMAND, HARNESS_QUERY,
                                                      HARNESS_PROJECTOR};

    memset(&fx, 0, sizeof(fx));
    if (secfx_certs_make(&fx.certs) != 0 || harness_db_create(fx.db) != 0 ||
        harness_tenant_token(fx.db, "tls-cli", NULL, fx.token) != 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        if (start_tls(&fx.d[i], kinds[i], NULL) != 0)
            return -1;
        fx.running[i] = true;
        snprintf(fx.env_addr[i], sizeof(fx.env_addr[i]), "%s=%s", env_names[i], fx.d[i].addr);
    }
    snprintf(fx.env_token, sizeof(fx.env_token), "TALLY_TOKEN=%s", fx.token);
    snprintf(fx.env_ca, sizeof(fx.env_ca), "TALLY_TLS_CA=%s", fx.certs.ca);
    return 0;
}

static int suite_cleanup(void)
{
    for (int i = 0; i < 3; i++) {
        if (fx.running[i])
            harness_daemon_stop(&fx.d[i], STOP_MS);
        fx.running[i] = false;
    }
    return 0;
}

/* ---- the tests ---- */

/* Every daemon over TLS: a command, a read-your-writes query, the event
 * stream and watch (Subscribe on the projector). */
static void test_commands_queries_and_watch_with_tls_ca(void)
{
    const char *ca = fx.certs.ca;
    char id[64], pos[64], buf[64];
    struct run r;

    ctl_env(&r, NULL, "open", "tina", "EUR", "--tls-ca", ca, NULL);
    CHECK_RC(&r, 0);
    kv_get(r.out, "account_id", id, sizeof(id));
    CU_ASSERT_EQUAL_FATAL(strlen(id), 36);
    run_free(&r);

    ctl_env(&r, NULL, "--tls-ca", ca, "deposit", id, "12.34", "EUR", NULL);
    CHECK_RC(&r, 0);
    kv_get(r.out, "position", pos, sizeof(pos));
    CU_ASSERT(strchr(pos, ':') != NULL);
    run_free(&r);

    ctl_env(&r, NULL, "get", id, "--min-position", pos, "--tls-ca", ca, NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "balance", buf, sizeof(buf)), "12.34 EUR");
    run_free(&r);

    ctl_env(&r, NULL, "watch", "--from", "start", "--id", id, "--timeout", "2s", "--tls-ca", ca,
            NULL);
    CHECK_RC(&r, 10); /* the deadline ends watch; the events came before it */
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "AccountOpened  owner=tina"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "  v2  Deposited  amount=12.34 EUR"));
    CU_ASSERT_EQUAL(strncmp(r.err, "tallyctl: watch: DEADLINE_EXCEEDED: ", 36), 0);
    run_free(&r);
}

static void test_tls_from_the_environment_and_server_name(void)
{
    const char *env[] = {fx.env_ca, NULL};
    const char *env_name[] = {fx.env_ca, "TALLY_TLS_SERVER_NAME=localhost", NULL};
    const char *env_wrong[] = {fx.env_ca, "TALLY_TLS_SERVER_NAME=tally.example", NULL};
    struct run r;

    ctl_env(&r, env, "open", "uma", "EUR", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    ctl_env(&r, env, "status", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    ctl_env(&r, env_name, "open", "uma", "EUR", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    ctl_env(&r, NULL, "open", "uma", "EUR", "--tls-ca", fx.certs.ca, "--tls-server-name",
            "localhost", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    /* the certificate does not carry that name */
    ctl_env(&r, env_wrong, "open", "uma", "EUR", NULL);
    CHECK_RC(&r, 9);
    check_error_line(&r, "tallyctl: open: UNAVAILABLE: ");
    run_free(&r);
    /* the flag wins over the environment */
    ctl_env(&r, env_wrong, "open", "uma", "EUR", "--tls-server-name", "localhost", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
}

static void test_plaintext_or_untrusted_client_exits_9(void)
{
    const char *rogue_env[] = {"TALLY_TLS_CA=", NULL};
    struct run r;

    ctl_env(&r, NULL, "open", "vic", "EUR", NULL);
    CHECK_RC(&r, 9);
    check_error_line(&r, "tallyctl: open: UNAVAILABLE: ");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, fx.d[0].addr));
    run_free(&r);
    ctl_env(&r, NULL, "get", "00000000-0000-0000-0000-000000000000", "--tls-ca", fx.certs.rogue_ca,
            NULL);
    CHECK_RC(&r, 9);
    check_error_line(&r, "tallyctl: get: UNAVAILABLE: ");
    run_free(&r);
    /* an empty TALLY_TLS_CA is unset: plaintext */
    ctl_env(&r, rogue_env, "status", NULL);
    CHECK_RC(&r, 9);
    check_error_line(&r, "tallyctl: status: UNAVAILABLE: ");
    run_free(&r);
}

static void test_bad_tls_files_are_usage_errors(void)
{
    const char *env_missing[] = {"TALLY_TLS_CA=/nonexistent/ca.pem", NULL};
    struct run r;

    ctl_env(&r, NULL, "open", "wim", "EUR", "--tls-ca", "/nonexistent/ca.pem", NULL);
    CHECK_RC(&r, 2);
    check_error_line(&r, "tallyctl: open: --tls-ca /nonexistent/ca.pem: ");
    run_free(&r);
    ctl_env(&r, env_missing, "status", NULL);
    CHECK_RC(&r, 2);
    check_error_line(&r, "tallyctl: status: --tls-ca /nonexistent/ca.pem: ");
    run_free(&r);
    ctl_env(&r, NULL, "open", "wim", "EUR", "--tls-ca", fx.certs.ca, "--tls-cert",
            fx.certs.client_cert, NULL);
    CHECK_RC(&r, 2);
    check_error_line(&r, "tallyctl: open: --tls-cert and --tls-key go together");
    run_free(&r);
    ctl_env(&r, NULL, "open", "--help", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "--tls-ca FILE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "--tls-cert FILE"));
    run_free(&r);
}

/* A tally-command that requires client certificates signed by the CA. */
static void test_mutual_tls_client_certificate(void)
{
    struct harness_daemon d;
    char addr_env[HARNESS_ADDR_MAX + 32], cert_env[HARNESS_PATH_MAX + 32],
        key_env[HARNESS_PATH_MAX + 32];
    const char *env[5] = {addr_env, fx.env_ca, NULL, NULL, NULL};
    struct run r;

    CU_ASSERT_EQUAL_FATAL(start_tls(&d, HARNESS_COMMAND, fx.certs.ca), 0);
    snprintf(addr_env, sizeof(addr_env), "TALLY_ADDR=%s", d.addr);
    snprintf(cert_env, sizeof(cert_env), "TALLY_TLS_CERT=%s", fx.certs.client_cert);
    snprintf(key_env, sizeof(key_env), "TALLY_TLS_KEY=%s", fx.certs.client_key);

    ctl_env(&r, env, "open", "xia", "EUR", "--tls-cert", fx.certs.client_cert, "--tls-key",
            fx.certs.client_key, NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    /* no client certificate: the handshake fails */
    ctl_env(&r, env, "open", "xia", "EUR", NULL);
    CHECK_RC(&r, 9);
    check_error_line(&r, "tallyctl: open: UNAVAILABLE: ");
    run_free(&r);
    /* one of another CA */
    ctl_env(&r, env, "open", "xia", "EUR", "--tls-cert", fx.certs.rogue_client_cert, "--tls-key",
            fx.certs.rogue_client_key, NULL);
    CHECK_RC(&r, 9);
    run_free(&r);
    /* from the environment */
    env[2] = cert_env;
    env[3] = key_env;
    ctl_env(&r, env, "open", "xia", "EUR", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    CU_ASSERT_EQUAL(harness_daemon_stop(&d, STOP_MS), 0);
}

static void test_daemons_stop_cleanly(void)
{
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(harness_daemon_stop(&fx.d[i], STOP_MS), 0);
        fx.running[i] = false;
    }
}

static CU_TestInfo tls_tests[] = {
    {"commands, queries and watch with --tls-ca", test_commands_queries_and_watch_with_tls_ca},
    {"TALLY_TLS_CA and --tls-server-name", test_tls_from_the_environment_and_server_name},
    {"plaintext or untrusted client exits 9", test_plaintext_or_untrusted_client_exits_9},
    {"bad TLS files are usage errors (2)", test_bad_tls_files_are_usage_errors},
    {"mutual TLS: --tls-cert/--tls-key", test_mutual_tls_client_certificate},
    {"daemons stop cleanly", test_daemons_stop_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tallyctl TLS", suite_init, suite_cleanup, NULL, NULL, tls_tests},
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
