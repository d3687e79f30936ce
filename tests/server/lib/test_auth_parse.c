/* test_auth_parse.c - the pure parts of server/lib/auth.c: the authorization
 * header, the token format, names, the cache's argument checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "auth.h"

#define GOOD_TOKEN "tly_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* 32 zero bytes */

static grpc_status_code parse(const char *value, const char **tok, size_t *tok_len, trpc_status *st)
{
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return auth_parse_bearer(value, value ? strlen(value) : 0, tok, tok_len, st);
}

static void expect_token(const char *value, const char *want)
{
    const char *tok = NULL;
    size_t len = 0;
    trpc_status st;

    CU_ASSERT_EQUAL_FATAL(parse(value, &tok, &len, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(len, strlen(want));
    CU_ASSERT(tok != NULL && memcmp(tok, want, len) == 0);
    CU_ASSERT(tok >= value && tok + len <= value + strlen(value)); /* points into value */
}

static void expect_reject(const char *value, const char *msg)
{
    const char *tok = NULL;
    size_t len = 0;
    trpc_status st;

    if (parse(value, &tok, &len, &st) != GRPC_STATUS_UNAUTHENTICATED)
        fprintf(stderr, "\n  accepted: \"%s\"", value ? value : "(null)");
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(st.msg, msg);
}

static void test_auth_parse_bearer_scheme_any_case_accepted(void)
{
    expect_token("Bearer " GOOD_TOKEN, GOOD_TOKEN);
    expect_token("bearer " GOOD_TOKEN, GOOD_TOKEN);
    expect_token("BEARER " GOOD_TOKEN, GOOD_TOKEN);
    expect_token("bEaReR " GOOD_TOKEN, GOOD_TOKEN);
}

static void test_auth_parse_bearer_spaces_tolerated(void)
{
    expect_token("Bearer    " GOOD_TOKEN, GOOD_TOKEN);
    expect_token("Bearer " GOOD_TOKEN "  ", GOOD_TOKEN);
    expect_token("Bearer " GOOD_TOKEN "\t", GOOD_TOKEN);
}

static void test_auth_parse_bearer_b64token_chars_accepted(void)
{
    /* RFC 6750 b64token: other tokens parse; verification rejects them later */
    expect_token("Bearer abc.DEF-ghi_123~+/==", "abc.DEF-ghi_123~+/==");
    expect_token("Bearer x", "x");
}

static void test_auth_parse_bearer_missing_rejected(void)
{
    const char *tok = NULL;
    size_t len = 0;
    trpc_status st;

    expect_reject(NULL, "missing bearer token");
    expect_reject("", "missing bearer token");
    expect_reject("Bearer", "missing bearer token");
    expect_reject("Bearer ", "missing bearer token");
    expect_reject("Bearer    ", "missing bearer token");
    expect_reject("Basic dXNlcjpwYXNz", "missing bearer token");
    expect_reject("Bearer" GOOD_TOKEN, "missing bearer token");
    expect_reject("Bearerx " GOOD_TOKEN, "missing bearer token");
    expect_reject(" Bearer " GOOD_TOKEN, "missing bearer token");
    expect_reject("Bearer\t" GOOD_TOKEN, "missing bearer token");
    expect_reject(GOOD_TOKEN, "missing bearer token");
    /* len counts, not the NUL: a value cut short is missing its token */
    st.code = GRPC_STATUS_OK;
    CU_ASSERT_EQUAL(auth_parse_bearer("Bearer " GOOD_TOKEN, 6, &tok, &len, &st),
                    GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(st.msg, "missing bearer token");
}

static void test_auth_parse_bearer_junk_rejected(void)
{
    char big[600];

    expect_reject("Bearer " GOOD_TOKEN " extra", "malformed bearer token");
    expect_reject("Bearer a b", "malformed bearer token");
    expect_reject("Bearer tly_abc!", "malformed bearer token");
    expect_reject("Bearer tly_\"x\"", "malformed bearer token");
    expect_reject("Bearer ==abc", "malformed bearer token");
    expect_reject("Bearer abc=def", "malformed bearer token");
    expect_reject("Bearer abc\r\n", "malformed bearer token");
    expect_reject("Bearer tly_\xc3\xa9", "malformed bearer token");
    memcpy(big, "Bearer ", 7);
    memset(big + 7, 'a', 513);
    big[520] = '\0';
    expect_reject(big, "malformed bearer token");
    big[519] = '\0'; /* 512 characters: the limit */
    expect_token(big, big + 7);
}

static void test_auth_parse_bearer_embedded_nul_rejected(void)
{
    static const char value[] = "Bearer abc\0def";
    const char *tok = NULL;
    size_t len = 0;
    trpc_status st = {GRPC_STATUS_OK, ""};

    CU_ASSERT_EQUAL(auth_parse_bearer(value, sizeof(value) - 1, &tok, &len, &st),
                    GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(st.msg, "malformed bearer token");
}

static void test_auth_token_format_checked(void)
{
    char t[AUTH_TOKEN_LEN + 2];

    CU_ASSERT_TRUE(auth_token_is_well_formed(GOOD_TOKEN, strlen(GOOD_TOKEN)));
    CU_ASSERT_EQUAL(strlen(GOOD_TOKEN), AUTH_TOKEN_LEN);
    CU_ASSERT_FALSE(auth_token_is_well_formed(NULL, 0));
    CU_ASSERT_FALSE(auth_token_is_well_formed(GOOD_TOKEN, AUTH_TOKEN_LEN - 1));
    /* wrong prefix */
    memcpy(t, GOOD_TOKEN, sizeof(GOOD_TOKEN));
    t[0] = 'T';
    CU_ASSERT_FALSE(auth_token_is_well_formed(t, AUTH_TOKEN_LEN));
    /* characters outside base64url */
    memcpy(t, GOOD_TOKEN, sizeof(GOOD_TOKEN));
    t[10] = '+';
    CU_ASSERT_FALSE(auth_token_is_well_formed(t, AUTH_TOKEN_LEN));
    t[10] = '/';
    CU_ASSERT_FALSE(auth_token_is_well_formed(t, AUTH_TOKEN_LEN));
    t[10] = '=';
    CU_ASSERT_FALSE(auth_token_is_well_formed(t, AUTH_TOKEN_LEN));
    t[10] = '-';
    CU_ASSERT_TRUE(auth_token_is_well_formed(t, AUTH_TOKEN_LEN));
    t[10] = '_';
    CU_ASSERT_TRUE(auth_token_is_well_formed(t, AUTH_TOKEN_LEN));
    /* the last character carries 4 data bits and 2 zero bits */
    t[AUTH_TOKEN_LEN - 1] = 'E'; /* 4: low bits zero */
    CU_ASSERT_TRUE(auth_token_is_well_formed(t, AUTH_TOKEN_LEN));
    t[AUTH_TOKEN_LEN - 1] = 'B'; /* 1: not a canonical encoding */
    CU_ASSERT_FALSE(auth_token_is_well_formed(t, AUTH_TOKEN_LEN));
    /* too long */
    memcpy(t, GOOD_TOKEN "A", sizeof(GOOD_TOKEN) + 1);
    CU_ASSERT_FALSE(auth_token_is_well_formed(t, AUTH_TOKEN_LEN + 1));
}

static void test_auth_token_hash_is_sha256_of_the_whole_token(void)
{
    /* sha256("tly_" + 43 x 'A'), computed with `printf %s ... | sha256sum` */
    static const unsigned char want[32] = {0xa8, 0xd8, 0x4c, 0x7b, 0x25, 0x63, 0x38, 0x5a,
                                           0xa5, 0x2c, 0x7e, 0x81, 0xdc, 0xcf, 0xdf, 0xcd,
                                           0x46, 0x0d, 0xae, 0xc5, 0x91, 0x61, 0x46, 0xbc,
                                           0x1f, 0x68, 0x49, 0x46, 0x11, 0x58, 0xda, 0xa0};
    unsigned char got[32];

    CU_ASSERT_EQUAL_FATAL(auth_token_hash(GOOD_TOKEN, AUTH_TOKEN_LEN, got), 0);
    CU_ASSERT_EQUAL(memcmp(got, want, 32), 0);
}

static void test_auth_name_validity(void)
{
    char name[600];

    CU_ASSERT_TRUE(auth_name_is_valid("acme"));
    CU_ASSERT_TRUE(auth_name_is_valid("ci deploy-bot #2"));
    CU_ASSERT_TRUE(auth_name_is_valid("caf\xc3\xa9"));
    CU_ASSERT_FALSE(auth_name_is_valid(NULL));
    CU_ASSERT_FALSE(auth_name_is_valid(""));
    CU_ASSERT_FALSE(auth_name_is_valid("a\nb"));
    CU_ASSERT_FALSE(auth_name_is_valid("a\tb"));
    CU_ASSERT_FALSE(auth_name_is_valid("a\x7f"));
    CU_ASSERT_FALSE(auth_name_is_valid("caf\xc3"));  /* truncated UTF-8 */
    CU_ASSERT_FALSE(auth_name_is_valid("\xc0\xaf")); /* overlong */
    memset(name, 'a', 128);
    name[128] = '\0';
    CU_ASSERT_TRUE(auth_name_is_valid(name));
    name[128] = 'a';
    name[129] = '\0';
    CU_ASSERT_FALSE(auth_name_is_valid(name));
    /* 128 characters of 2 bytes each: 256 bytes, still valid */
    for (int i = 0; i < 128; i++)
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    name[256] = '\0';
    CU_ASSERT_TRUE(auth_name_is_valid(name));
    memcpy(name + 256, "\xc3\xa9", 3);
    CU_ASSERT_FALSE(auth_name_is_valid(name));
}

static void test_auth_cache_bad_arguments_rejected(void)
{
    auth_cache *c;

    CU_ASSERT_PTR_NULL(auth_cache_new(0, 0, 16));
    CU_ASSERT_PTR_NULL(auth_cache_new(100, -1, 16));
    CU_ASSERT_PTR_NULL(auth_cache_new(100, 0, 0));
    c = auth_cache_new(100, 0, 16);
    CU_ASSERT_PTR_NOT_NULL(c);
    auth_cache_clear(c);
    auth_cache_free(c);
    auth_cache_free(NULL);
    auth_cache_clear(NULL);
}

/* A malformed token is refused before any database access (conn NULL). */
static void test_auth_verify_malformed_token_needs_no_database(void)
{
    struct auth_identity id;
    trpc_status st = {GRPC_STATUS_OK, ""};

    CU_ASSERT_EQUAL(auth_verify(NULL, NULL, "tly_short", 9, &id, &st), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(st.msg, "invalid or revoked token");
    CU_ASSERT_EQUAL(auth_authenticate(NULL, NULL, NULL, 0, &id, &st), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(st.msg, "missing bearer token");
    CU_ASSERT_EQUAL(auth_authenticate(NULL, NULL, "Bearer abc", 10, &id, &st),
                    GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(st.msg, "invalid or revoked token");
}

static CU_TestInfo bearer_tests[] = {
    {"scheme in any case", test_auth_parse_bearer_scheme_any_case_accepted},
    {"extra spaces tolerated", test_auth_parse_bearer_spaces_tolerated},
    {"b64token characters", test_auth_parse_bearer_b64token_chars_accepted},
    {"missing -> missing bearer token", test_auth_parse_bearer_missing_rejected},
    {"junk -> malformed bearer token", test_auth_parse_bearer_junk_rejected},
    {"embedded NUL rejected", test_auth_parse_bearer_embedded_nul_rejected},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo token_tests[] = {
    {"token format", test_auth_token_format_checked},
    {"token hash = sha256(token)", test_auth_token_hash_is_sha256_of_the_whole_token},
    {"names", test_auth_name_validity},
    {"cache arguments", test_auth_cache_bad_arguments_rejected},
    {"malformed token: no database", test_auth_verify_malformed_token_needs_no_database},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"auth_parse_bearer", NULL, NULL, NULL, NULL, bearer_tests},
    {"auth_token", NULL, NULL, NULL, NULL, token_tests},
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
