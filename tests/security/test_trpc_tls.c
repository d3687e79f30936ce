/* test_trpc_tls.c - the runtime's TLS options in-process (no database):
 * trpc_channel_new_tls and trpc_server_new refuse unreadable files, files
 * without PEM data and half-given key pairs, saying which; an in-process
 * server with a certificate serves health over TLS and mutual TLS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "harness.h"
#include "secfx.h"
#include "trpc.h"

static struct secfx_certs certs;
static char missing[HARNESS_PATH_MAX + 32], not_pem[HARNESS_PATH_MAX + 32];

static int suite_init(void)
{
    FILE *f;

    if (secfx_certs_make(&certs) != 0)
        return -1;
    snprintf(missing, sizeof(missing), "%s/no/such.pem", harness_tmpdir());
    snprintf(not_pem, sizeof(not_pem), "%s/not.pem", harness_tmpdir());
    f = fopen(not_pem, "w");
    if (f == NULL)
        return -1;
    fputs("just text, no certificate\n", f);
    return fclose(f) == 0 ? 0 : -1;
}

/* trpc_channel_new_tls with tls must fail INVALID_ARGUMENT, saying want. */
static void expect_channel_error(const trpc_tls_opts *tls, const char *want)
{
    trpc_status st = {0};
    trpc_channel *ch = trpc_channel_new_tls("127.0.0.1:1", tls, &st);

    CU_ASSERT_PTR_NULL(ch);
    trpc_channel_free(ch);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_INVALID_ARGUMENT);
    if (strstr(st.msg, want) == NULL) {
        CU_FAIL("the message does not say why");
        fprintf(stderr, "\n  want \"%s\" in \"%s\"", want, st.msg);
    }
}

static void test_trpc_tls_channel_refuses_bad_files(void)
{
    trpc_tls_opts tls;

    memset(&tls, 0, sizeof(tls));
    tls.ca_file = missing;
    expect_channel_error(&tls, missing);
    tls.ca_file = not_pem;
    expect_channel_error(&tls, "no PEM data");
    tls.ca_file = certs.ca;
    tls.cert_file = certs.client_cert;
    expect_channel_error(&tls, "needs its key");
    tls.cert_file = NULL;
    tls.key_file = certs.client_key;
    expect_channel_error(&tls, "needs its key");
    tls.cert_file = certs.client_cert;
    tls.key_file = missing;
    expect_channel_error(&tls, missing);
    CU_ASSERT_PTR_NULL(trpc_channel_new_tls("", NULL, NULL)); /* st may be NULL */
}

static void test_trpc_tls_channel_made_lazily(void)
{
    trpc_tls_opts tls;
    trpc_status st = {0};
    trpc_channel *ch;

    /* no server needed to make one; NULL tls is plaintext */
    memset(&tls, 0, sizeof(tls));
    tls.ca_file = certs.ca;
    tls.cert_file = certs.client_cert;
    tls.key_file = certs.client_key;
    tls.server_name = "localhost";
    ch = trpc_channel_new_tls("127.0.0.1:1", &tls, &st);
    CU_ASSERT_PTR_NOT_NULL(ch);
    trpc_channel_free(ch);
    ch = trpc_channel_new_tls("127.0.0.1:1", NULL, &st);
    CU_ASSERT_PTR_NOT_NULL(ch);
    trpc_channel_free(ch);
}

static trpc_server_opts server_opts(const char *cert, const char *key, const char *ca)
{
    trpc_server_opts o;

    memset(&o, 0, sizeof(o));
    o.listen_addr = "127.0.0.1:0";
    o.cq_threads = 1;
    o.pool_threads = 1;
    o.shutdown_grace_ms = 100;
    o.tls_cert_file = cert;
    o.tls_key_file = key;
    o.tls_client_ca_file = ca;
    return o;
}

static void test_trpc_tls_server_refuses_bad_options(void)
{
    const trpc_server_opts bad[] = {
        server_opts(certs.server_cert, NULL, NULL),
        server_opts(NULL, certs.server_key, NULL),
        server_opts(NULL, NULL, certs.ca),
        server_opts(missing, certs.server_key, NULL),
        server_opts(certs.server_cert, not_pem, NULL),
        server_opts(certs.server_cert, certs.server_key, missing),
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trpc_server *srv = trpc_server_new(&bad[i]);

        CU_ASSERT_PTR_NULL(srv);
        trpc_server_free(srv);
    }
}

/* The server's health over ch (freed). */
static grpc_status_code health(trpc_channel *ch)
{
    trpc_status st = {0};
    grpc_status_code code;

    if (ch == NULL)
        return GRPC_STATUS_INTERNAL;
    code = secfx_health(ch, &st);
    trpc_channel_free(ch);
    return code;
}

static void test_trpc_tls_server_serves_tls_and_mutual_tls(void)
{
    for (int mutual = 0; mutual < 2; mutual++) {
        trpc_server_opts o =
            server_opts(certs.server_cert, certs.server_key, mutual ? certs.ca : NULL);
        trpc_server *srv = trpc_server_new(&o);
        char addr[64];
        int port;

        CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
        port = trpc_server_start(srv);
        CU_ASSERT_FATAL(port > 0);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        CU_ASSERT_EQUAL(
            health(secfx_channel(addr, certs.ca, certs.client_cert, certs.client_key, NULL)),
            GRPC_STATUS_OK);
        CU_ASSERT_EQUAL(health(secfx_channel(addr, certs.ca, NULL, NULL, NULL)),
                        mutual ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_OK);
        CU_ASSERT_EQUAL(health(secfx_channel(addr, NULL, NULL, NULL, NULL)),
                        GRPC_STATUS_UNAVAILABLE);
        CU_ASSERT_EQUAL(health(secfx_channel(addr, certs.rogue_ca, NULL, NULL, NULL)),
                        GRPC_STATUS_UNAVAILABLE);
        trpc_server_shutdown(srv);
        trpc_server_free(srv);
    }
}

/* A server whose certificate comes from a CA the client does not trust,
 * with the right names: refused on the CA alone. */
static void test_trpc_tls_client_refuses_unknown_ca(void)
{
    trpc_server_opts o = server_opts(certs.rogue_server_cert, certs.rogue_server_key, NULL);
    trpc_server *srv = trpc_server_new(&o);
    char addr[64];
    int port;

    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    port = trpc_server_start(srv);
    CU_ASSERT_FATAL(port > 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    CU_ASSERT_EQUAL(health(secfx_channel(addr, certs.ca, NULL, NULL, NULL)),
                    GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_EQUAL(health(secfx_channel(addr, certs.rogue_ca, NULL, NULL, NULL)), GRPC_STATUS_OK);
    trpc_server_shutdown(srv);
    trpc_server_free(srv);
}

static CU_TestInfo tests[] = {
    {"channel refuses bad files", test_trpc_tls_channel_refuses_bad_files},
    {"channel made without a server", test_trpc_tls_channel_made_lazily},
    {"server refuses bad options", test_trpc_tls_server_refuses_bad_options},
    {"server serves TLS and mutual TLS", test_trpc_tls_server_serves_tls_and_mutual_tls},
    {"client refuses an unknown CA", test_trpc_tls_client_refuses_unknown_ca},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"trpc_tls", suite_init, NULL, NULL, NULL, tests},
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
