/* test_text.c - strict UTF-8 and the limits of text fields. */
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "text.h"

static bool utf8(const char *s)
{
    return text_is_utf8(s, strlen(s));
}

static void test_text_utf8_accepts_well_formed(void)
{
    CU_ASSERT_TRUE(text_is_utf8(NULL, 0));
    CU_ASSERT_TRUE(utf8(""));
    CU_ASSERT_TRUE(utf8("plain ascii ~\x7f"));
    CU_ASSERT_TRUE(utf8("\xc2\x80"));                   /* U+0080, smallest 2-byte */
    CU_ASSERT_TRUE(utf8("\xdf\xbf"));                   /* U+07FF */
    CU_ASSERT_TRUE(utf8("\xe0\xa0\x80"));               /* U+0800, smallest 3-byte */
    CU_ASSERT_TRUE(utf8("\xed\x9f\xbf"));               /* U+D7FF, just below surrogates */
    CU_ASSERT_TRUE(utf8("\xee\x80\x80"));               /* U+E000, just above */
    CU_ASSERT_TRUE(utf8("\xef\xbf\xbf"));               /* U+FFFF */
    CU_ASSERT_TRUE(utf8("\xf0\x90\x80\x80"));           /* U+10000, smallest 4-byte */
    CU_ASSERT_TRUE(utf8("\xf4\x8f\xbf\xbf"));           /* U+10FFFF, the last */
    CU_ASSERT_TRUE(utf8("M\xc3\xbcller \xe2\x82\xac")); /* "Müller €" */
    CU_ASSERT_TRUE(utf8("\xf0\x9f\x92\xb8"));           /* money with wings */
    CU_ASSERT_TRUE(text_is_utf8("a\0b", 3));            /* NUL is a valid code point */
}

static void test_text_utf8_rejects_malformed(void)
{
    static const char *const bad[] = {
        "\x80",                     /* stray continuation */
        "a\xbf",                    /* stray continuation after ascii */
        "\xc0\x80",                 /* overlong NUL */
        "\xc1\xbf",                 /* overlong U+007F */
        "\xe0\x80\x80",             /* overlong 3-byte */
        "\xe0\x9f\xbf",             /* overlong U+07FF */
        "\xf0\x80\x80\x80",         /* overlong 4-byte */
        "\xf0\x8f\xbf\xbf",         /* overlong U+FFFF */
        "\xed\xa0\x80",             /* U+D800, high surrogate */
        "\xed\xbf\xbf",             /* U+DFFF, low surrogate */
        "\xed\xa0\xbd\xed\xb2\xb8", /* CESU-8 surrogate pair */
        "\xf4\x90\x80\x80",         /* U+110000 */
        "\xf5\x80\x80\x80",         /* F5 lead */
        "\xff",                     /* never valid */
        "\xfe",                     /* never valid */
        "\xc3",                     /* truncated 2-byte */
        "\xe2\x82",                 /* truncated 3-byte */
        "\xf0\x9f\x92",             /* truncated 4-byte */
        "\xe2\x28\xa1",             /* bad second byte */
        "\xe2\x82\x28",             /* bad third byte */
        "\xf0\x9f\x92\x28",         /* bad fourth byte */
        "ok\xc3(",                  /* lead byte followed by ascii */
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_FALSE(utf8(bad[i]));
        if (utf8(bad[i]))
            fprintf(stderr, "accepted bad case %zu\n", i);
    }
    /* a sequence cut by the length, although the buffer goes on */
    CU_ASSERT_FALSE(text_is_utf8("\xe2\x82\xac", 2));
}

static void test_text_check_limits_and_messages(void)
{
    trpc_status st;
    char buf[TALLY_MAX_TEXT_BYTES + 2];

    CU_ASSERT_EQUAL(text_check_required("owner", "Alice", &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(text_check_required("owner", "", &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_STRING_EQUAL(st.msg, "owner is required");
    CU_ASSERT_EQUAL(text_check_required("owner", NULL, &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(text_check_optional("reference", NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(text_check_optional("reference", "", &st), GRPC_STATUS_OK);

    memset(buf, 'x', TALLY_MAX_TEXT_BYTES);
    buf[TALLY_MAX_TEXT_BYTES] = '\0';
    CU_ASSERT_EQUAL(text_check_required("owner", buf, &st), GRPC_STATUS_OK);
    buf[TALLY_MAX_TEXT_BYTES] = 'x';
    buf[TALLY_MAX_TEXT_BYTES + 1] = '\0';
    CU_ASSERT_EQUAL(text_check_optional("reference", buf, &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_STRING_EQUAL(st.msg, "reference is too long (257 bytes, at most 256)");

    CU_ASSERT_EQUAL(text_check_optional("reason", "bad \xc0\x80", &st),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_STRING_EQUAL(st.msg, "reason is not valid utf-8");
    CU_ASSERT_EQUAL(text_check("code", "ab", 3, 5, &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_STRING_EQUAL(st.msg, "code is too short (2 bytes, at least 3)");
    /* limits count bytes, not characters: 128 two-byte characters fit */
    {
        char two[TALLY_MAX_TEXT_BYTES + 3];
        int i;

        for (i = 0; i < TALLY_MAX_TEXT_BYTES; i += 2) {
            two[i] = '\xc3';
            two[i + 1] = '\xa9';
        }
        two[TALLY_MAX_TEXT_BYTES] = '\0';
        CU_ASSERT_EQUAL(text_check_required("owner", two, &st), GRPC_STATUS_OK);
        two[TALLY_MAX_TEXT_BYTES] = '\xc3';
        two[TALLY_MAX_TEXT_BYTES + 1] = '\xa9';
        two[TALLY_MAX_TEXT_BYTES + 2] = '\0';
        CU_ASSERT_EQUAL(text_check_required("owner", two, &st), GRPC_STATUS_INVALID_ARGUMENT);
    }
}

static void test_text_copy_cuts_at_character_boundary(void)
{
    char dst[6];

    CU_ASSERT_TRUE(text_copy(dst, sizeof(dst), "abc"));
    CU_ASSERT_STRING_EQUAL(dst, "abc");
    CU_ASSERT_TRUE(text_copy(dst, sizeof(dst), NULL));
    CU_ASSERT_STRING_EQUAL(dst, "");
    CU_ASSERT_FALSE(text_copy(dst, sizeof(dst), "abcdefgh"));
    CU_ASSERT_STRING_EQUAL(dst, "abcde");
    /* "abcd€": the 3-byte euro sign would not fit whole in 5 bytes */
    CU_ASSERT_FALSE(text_copy(dst, sizeof(dst), "abcd\xe2\x82\xac"));
    CU_ASSERT_STRING_EQUAL(dst, "abcd");
    CU_ASSERT_TRUE(utf8(dst));
    CU_ASSERT_FALSE(text_copy(dst, sizeof(dst), "ab\xe2\x82\xac\xe2\x82\xac"));
    CU_ASSERT_STRING_EQUAL(dst, "ab\xe2\x82\xac");
}

static CU_TestInfo text_tests[] = {
    {"utf-8 accepts well-formed", test_text_utf8_accepts_well_formed},
    {"utf-8 rejects overlong, surrogates, truncated", test_text_utf8_rejects_malformed},
    {"check: limits and messages", test_text_check_limits_and_messages},
    {"copy cuts at a character boundary", test_text_copy_cuts_at_character_boundary},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"text", NULL, NULL, NULL, NULL, text_tests},
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
