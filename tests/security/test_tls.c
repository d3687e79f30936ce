/* test_tls.c - TLS on the three daemons, with certificates made by openssl
 * at test time: a TLS client reaches each daemon (health and one RPC of its
 * service), plaintext clients and clients that do not trust the server's CA
 * are refused; with --tls-client-ca (mutual TLS) a client without a
 * certificate, or with one from another CA, is refused and one signed by the
 * CA works; bad TLS configuration exits 2 before serving; and the bearer
 * token never reaches a daemon's log, while a rejected one is logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "harness.h"
#include "secfx.h"
#include "trpc.h"

#define STOP_MS 15000
#define RUN_MS  15000

static struct secfx_certs certs;
static char db[HARNESS_CONNINFO_MAX];
static char token[HARNESS_TOKEN_MAX];

static const enum harness_daemon_kind kinds[] = {HARNESS_COMMAND, HARNESS_QUERY, HARNESS_PROJECTOR};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static int suite_init(void)
{
    if (secfx_certs_make(&certs) != 0 || harness_db_create(db) != 0 ||
        harness_tenant_token(db, "tls-tenant", NULL, token) != 0)
        return -1;
    return 0;
}

/* The daemon with TLS (and mutual TLS when client_ca is not NULL). */
static int start_tls(struct harness_daemon *d, enum harness_daemon_kind kind, const char *client_ca)
{
    const char *args[] = {"--log-level",
                          "debug",
                          "--tls-cert",
                          certs.server_cert,
                          "--tls-key",
                          certs.server_key,
                          client_ca ? "--tls-client-ca" : NULL,
                          client_ca,
                          NULL};

    return harness_daemon_start(d, kind, db, args, NULL);
}

/* Health and the service's RPC over ch (freed): both must give want (a
 * refused handshake refuses every call). Prints what differs. */
static void reach(enum harness_daemon_kind kind, trpc_channel *ch, const char *what,
                  grpc_status_code want)
{
    trpc_status st = {0};
    grpc_status_code code;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
    code = secfx_health(ch, &st);
    CU_ASSERT_EQUAL(code, want);
    if (code != want)
        fprintf(stderr, "\n  %s health via %s: %s %s", harness_daemon_name(kind), what,
                trpc_status_code_name(code), st.msg);
    code = secfx_service_call(kind, ch, token, &st);
    CU_ASSERT_EQUAL(code, want);
    if (code != want)
        fprintf(stderr, "\n  %s call via %s: %s %s", harness_daemon_name(kind), what,
                trpc_status_code_name(code), st.msg);
    trpc_channel_free(ch);
}

static void test_tls_each_daemon_serves_tls_only(void)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        struct harness_daemon d;
        enum harness_daemon_kind k = kinds[i];

        CU_ASSERT_EQUAL_FATAL(start_tls(&d, k, NULL), 0);
        /* the CA's client, by IP address (IP SAN) and by name */
        reach(k, secfx_channel(d.addr, certs.ca, NULL, NULL, NULL), "tls", GRPC_STATUS_OK);
        reach(k, secfx_channel(d.addr, certs.ca, NULL, NULL, "localhost"), "tls localhost",
              GRPC_STATUS_OK);
        /* a client certificate the server did not ask for changes nothing */
        reach(k, secfx_channel(d.addr, certs.ca, certs.client_cert, certs.client_key, NULL),
              "tls+cert", GRPC_STATUS_OK);
        /* plaintext HTTP/2 against a TLS port */
        reach(k, secfx_channel(d.addr, NULL, NULL, NULL, NULL), "plaintext",
              GRPC_STATUS_UNAVAILABLE);
        /* a client that trusts another CA */
        reach(k, secfx_channel(d.addr, certs.rogue_ca, NULL, NULL, NULL), "rogue",
              GRPC_STATUS_UNAVAILABLE);
        /* the right CA, but a name the certificate does not carry */
        reach(k, secfx_channel(d.addr, certs.ca, NULL, NULL, "tally.example"), "wrong name",
              GRPC_STATUS_UNAVAILABLE);
        /* the daemon is still fine after the refused handshakes */
        reach(k, secfx_channel(d.addr, certs.ca, NULL, NULL, NULL), "tls again", GRPC_STATUS_OK);
        CU_ASSERT_EQUAL(harness_daemon_stop(&d, STOP_MS), 0);
    }
}

static void test_tls_plaintext_daemon_refuses_tls_client(void)
{
    struct harness_daemon d;
    const char *args[] = {"--log-level", "debug", NULL};

    /* without --tls-cert nothing changed: plaintext only */
    CU_ASSERT_EQUAL_FATAL(harness_daemon_start(&d, HARNESS_QUERY, db, args, NULL), 0);
    reach(HARNESS_QUERY, secfx_channel(d.addr, NULL, NULL, NULL, NULL), "plain", GRPC_STATUS_OK);
    reach(HARNESS_QUERY, secfx_channel(d.addr, certs.ca, NULL, NULL, NULL), "tls",
          GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_EQUAL(harness_daemon_stop(&d, STOP_MS), 0);
}

static void test_tls_mutual_requires_a_certificate_of_the_ca(void)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        struct harness_daemon d;
        enum harness_daemon_kind k = kinds[i];

        CU_ASSERT_EQUAL_FATAL(start_tls(&d, k, certs.ca), 0);
        reach(k, secfx_channel(d.addr, certs.ca, certs.client_cert, certs.client_key, NULL), "mtls",
              GRPC_STATUS_OK);
        /* no client certificate */
        reach(k, secfx_channel(d.addr, certs.ca, NULL, NULL, NULL), "no cert",
              GRPC_STATUS_UNAVAILABLE);
        /* a certificate from a CA the server does not trust */
        reach(
            k,
            secfx_channel(d.addr, certs.ca, certs.rogue_client_cert, certs.rogue_client_key, NULL),
            "rogue cert", GRPC_STATUS_UNAVAILABLE);
        /* the server's own key pair is not a client certificate (serverAuth only) */
        reach(k, secfx_channel(d.addr, certs.ca, certs.server_cert, certs.server_key, NULL),
              "server cert", GRPC_STATUS_UNAVAILABLE);
        reach(k, secfx_channel(d.addr, NULL, NULL, NULL, NULL), "plaintext",
              GRPC_STATUS_UNAVAILABLE);
        reach(k, secfx_channel(d.addr, certs.ca, certs.client_cert, certs.client_key, NULL),
              "mtls again", GRPC_STATUS_OK);
        CU_ASSERT_EQUAL(harness_daemon_stop(&d, STOP_MS), 0);
    }
}

/* Runs the daemon with args (and env) and expects exit 2 with a line on
 * stderr containing want. */
static void expect_config_error(enum harness_daemon_kind k, const char *const *args,
                                const char *const *env, const char *want)
{
    const char *argv[16];
    char *out = NULL, *err = NULL;
    size_t n = 0;
    int rc;

    argv[n++] = harness_daemon_path(k);
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    for (size_t i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(argv[0]);
    rc = harness_run(argv, env, RUN_MS, &out, &err);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(err);
    if (err != NULL && strstr(err, want) == NULL) {
        CU_FAIL("stderr does not say why");
        fprintf(stderr, "\n  %s: want \"%s\" in: %s", harness_daemon_name(k), want, err);
    }
    free(out);
    free(err);
}

static void test_tls_bad_configuration_exits_2(void)
{
    char missing[HARNESS_PATH_MAX + 16];

    snprintf(missing, sizeof(missing), "%s/none/cert.pem", harness_tmpdir());
    for (size_t i = 0; i < N_KINDS; i++) {
        enum harness_daemon_kind k = kinds[i];
        const char *bad_path[] = {"--tls-cert", missing, "--tls-key", certs.server_key, NULL};
        const char *bad_key[] = {"--tls-cert", certs.server_cert, "--tls-key", missing, NULL};
        const char *cert_only[] = {"--tls-cert", certs.server_cert, NULL};
        const char *key_only[] = {"--tls-key", certs.server_key, NULL};
        const char *ca_only[] = {"--tls-client-ca", certs.ca, NULL};
        const char *mismatch[] = {"--tls-cert", certs.server_cert, "--tls-key", certs.client_key,
                                  NULL};
        const char *key_as_cert[] = {"--tls-cert", certs.server_key, "--tls-key", certs.server_key,
                                     NULL};
        const char *bad_ca[] = {"--tls-cert",      certs.server_cert, "--tls-key", certs.server_key,
                                "--tls-client-ca", missing,           NULL};
        const char *none[] = {NULL};
        const char *env_bad[] = {"TALLY_TLS_CERT=/nonexistent/tally.pem", NULL};
        char env_key[HARNESS_PATH_MAX + 32];
        const char *env_cert_key[] = {"TALLY_TLS_CERT=/nonexistent/tally.pem", env_key, NULL};

        snprintf(env_key, sizeof(env_key), "TALLY_TLS_KEY=%s", certs.server_key);
        expect_config_error(k, bad_path, NULL, "cannot read --tls-cert");
        expect_config_error(k, bad_key, NULL, "cannot read --tls-key");
        expect_config_error(k, cert_only, NULL, "--tls-cert without --tls-key");
        expect_config_error(k, key_only, NULL, "--tls-key without --tls-cert");
        expect_config_error(k, ca_only, NULL, "--tls-client-ca needs --tls-cert");
        expect_config_error(k, mismatch, NULL, "does not match");
        expect_config_error(k, key_as_cert, NULL, "invalid --tls-cert");
        expect_config_error(k, bad_ca, NULL, "cannot read --tls-client-ca");
        expect_config_error(k, none, env_bad, "TALLY_TLS_CERT without --tls-key");
        expect_config_error(k, none, env_cert_key, "cannot read TALLY_TLS_CERT");
    }
}

/* The environment works like the flags. */
static void test_tls_from_environment(void)
{
    struct harness_daemon d;
    char cert[HARNESS_PATH_MAX + 32], key[HARNESS_PATH_MAX + 32], ca[HARNESS_PATH_MAX + 32];
    const char *env[] = {cert, key, ca, NULL};

    snprintf(cert, sizeof(cert), "TALLY_TLS_CERT=%s", certs.server_cert);
    snprintf(key, sizeof(key), "TALLY_TLS_KEY=%s", certs.server_key);
    snprintf(ca, sizeof(ca), "TALLY_TLS_CLIENT_CA=%s", certs.ca);
    CU_ASSERT_EQUAL_FATAL(harness_daemon_start(&d, HARNESS_COMMAND, db, NULL, env), 0);
    reach(HARNESS_COMMAND,
          secfx_channel(d.addr, certs.ca, certs.client_cert, certs.client_key, NULL), "mtls",
          GRPC_STATUS_OK);
    reach(HARNESS_COMMAND, secfx_channel(d.addr, certs.ca, NULL, NULL, NULL), "no cert",
          GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_EQUAL(harness_daemon_stop(&d, STOP_MS), 0);
}

/* A wrong token of the right shape (a real one with its secret part
 * changed), never created. */
static void forged_token(char out[HARNESS_TOKEN_MAX])
{
    size_t n = strlen(token);

    snprintf(out, HARNESS_TOKEN_MAX, "%s", token);
    for (size_t i = 4; i < n; i++)
        out[i] = out[i] == 'Q' ? 'R' : 'Q';
}

static void test_tls_token_never_logged_rejection_logged(void)
{
    char forged[HARNESS_TOKEN_MAX], malformed[HARNESS_TOKEN_MAX + 8];

    forged_token(forged);
    snprintf(malformed, sizeof(malformed), "%s!x", token + 4); /* not a b64token */
    for (size_t i = 0; i < N_KINDS; i++) {
        struct harness_daemon d;
        enum harness_daemon_kind k = kinds[i];
        trpc_channel *ch;
        trpc_status st = {0};

        CU_ASSERT_EQUAL_FATAL(start_tls(&d, k, NULL), 0);
        ch = secfx_channel(d.addr, certs.ca, NULL, NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
        CU_ASSERT_EQUAL(secfx_service_call(k, ch, token, &st), GRPC_STATUS_OK);
        CU_ASSERT_EQUAL(secfx_service_call(k, ch, forged, &st), GRPC_STATUS_UNAUTHENTICATED);
        CU_ASSERT_EQUAL(secfx_service_call(k, ch, malformed, &st), GRPC_STATUS_UNAUTHENTICATED);
        CU_ASSERT_EQUAL(secfx_service_call(k, ch, NULL, &st), GRPC_STATUS_UNAUTHENTICATED);
        /* the cached answers too */
        CU_ASSERT_EQUAL(secfx_service_call(k, ch, token, &st), GRPC_STATUS_OK);
        CU_ASSERT_EQUAL(secfx_service_call(k, ch, forged, &st), GRPC_STATUS_UNAUTHENTICATED);
        trpc_channel_free(ch);
        CU_ASSERT_EQUAL(harness_daemon_stop(&d, STOP_MS), 0);

        /* the secret part of each token, which identifies it */
        CU_ASSERT_FALSE(secfx_log_contains(&d, token + 4));
        CU_ASSERT_FALSE(secfx_log_contains(&d, forged + 4));
        CU_ASSERT_FALSE(secfx_log_contains(&d, token + 4 + 20)); /* nor a piece of it */
        CU_ASSERT_FALSE(secfx_log_contains(&d, malformed));
        CU_ASSERT_TRUE(secfx_log_contains(&d, "auth: call rejected: invalid or revoked token"));
        CU_ASSERT_TRUE(secfx_log_contains(&d, "auth: call rejected: malformed bearer token"));
        CU_ASSERT_TRUE(secfx_log_contains(&d, "auth: call rejected: missing bearer token"));
    }
}

static CU_TestInfo tls_tests[] = {
    {"each daemon serves TLS only", test_tls_each_daemon_serves_tls_only},
    {"a plaintext daemon refuses a TLS client", test_tls_plaintext_daemon_refuses_tls_client},
    {"mutual TLS requires a certificate of the CA",
     test_tls_mutual_requires_a_certificate_of_the_ca},
    {"bad TLS configuration exits 2", test_tls_bad_configuration_exits_2},
    {"TLS from the environment", test_tls_from_environment},
    {"token never logged, rejection logged", test_tls_token_never_logged_rejection_logged},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tls", suite_init, NULL, NULL, NULL, tls_tests},
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
