/* test_money.c - the ISO 4217 table, checked arithmetic, decimal text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "money.h"

static void test_money_currency_digits_follow_iso_4217(void)
{
    static const struct {
        const char *code;
        int digits;
    } cases[] = {
        {"EUR", 2}, {"USD", 2}, {"GBP", 2}, {"CHF", 2}, {"JPY", 0}, {"KRW", 0}, {"VND", 0},
        {"ISK", 0}, {"CLP", 0}, {"XAF", 0}, {"BHD", 3}, {"KWD", 3}, {"OMR", 3}, {"JOD", 3},
        {"TND", 3}, {"LYD", 3}, {"IQD", 3}, {"CLF", 4}, {"UYW", 4}, {"XCG", 2}, {"ZWG", 2},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_EQUAL(money_currency_digits(cases[i].code), cases[i].digits);
        CU_ASSERT_TRUE(money_currency_is_valid(cases[i].code));
    }
    CU_ASSERT_EQUAL(money_currency_find("EUR")->numeric, 978);
    CU_ASSERT_EQUAL(money_currency_find("JPY")->numeric, 392);
}

static void test_money_currency_rejects_unknown_and_non_money_codes(void)
{
    static const char *const bad[] = {"eur", "Eur", "EU",  "EURO", "",    "XXX", "XAU",
                                      "XTS", "XDR", "HRK", "ABC",  "E R", "EUR "};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_FALSE(money_currency_is_valid(bad[i]));
        CU_ASSERT_EQUAL(money_currency_digits(bad[i]), -1);
    }
    CU_ASSERT_PTR_NULL(money_currency_find(NULL));
}

static void test_money_currency_table_is_sorted_and_complete(void)
{
    size_t n, i;
    const struct money_currency *t = money_currency_table(&n);

    CU_ASSERT_TRUE_FATAL(n > 150);
    for (i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(strlen(t[i].code), 3);
        CU_ASSERT_TRUE(t[i].digits >= 0 && t[i].digits <= 4);
        CU_ASSERT_PTR_EQUAL(money_currency_find(t[i].code), &t[i]);
        if (i > 0)
            CU_ASSERT_TRUE(strcmp(t[i - 1].code, t[i].code) < 0);
    }
}

static void test_money_check_currency_invalid_argument(void)
{
    trpc_status st;

    CU_ASSERT_EQUAL(money_check_currency("currency", "EUR", &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(money_check_currency("currency", "", &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_STRING_EQUAL(st.msg, "currency is required");
    CU_ASSERT_EQUAL(money_check_currency("currency", NULL, &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(money_check_currency("currency", "eur", &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_STRING_EQUAL(st.msg, "currency is not a valid iso 4217 currency code");
}

static void test_money_add_sub_overflow_is_refused(void)
{
    int64_t r = 42;

    CU_ASSERT_TRUE(money_add(1, 2, &r));
    CU_ASSERT_EQUAL(r, 3);
    CU_ASSERT_TRUE(money_add(INT64_MAX - 1, 1, &r));
    CU_ASSERT_EQUAL(r, INT64_MAX);
    r = 42;
    CU_ASSERT_FALSE(money_add(INT64_MAX, 1, &r));
    CU_ASSERT_EQUAL(r, 42);
    CU_ASSERT_FALSE(money_add(INT64_MIN, -1, &r));
    CU_ASSERT_TRUE(money_add(INT64_MIN, INT64_MAX, &r));
    CU_ASSERT_EQUAL(r, -1);
    CU_ASSERT_TRUE(money_sub(INT64_MIN + 1, 1, &r));
    CU_ASSERT_EQUAL(r, INT64_MIN);
    r = 42;
    CU_ASSERT_FALSE(money_sub(INT64_MIN, 1, &r));
    CU_ASSERT_EQUAL(r, 42);
    CU_ASSERT_FALSE(money_sub(0, INT64_MIN, &r));
    CU_ASSERT_FALSE(money_sub(INT64_MAX, -1, &r));
    CU_ASSERT_TRUE(money_sub(-1, INT64_MAX, &r));
    CU_ASSERT_EQUAL(r, INT64_MIN);
}

static void test_money_parse_valid_table(void)
{
    static const struct {
        const char *text, *cur;
        int64_t want;
    } cases[] = {
        {"12.34", "EUR", 1234},
        {"12.3", "EUR", 1230},
        {"12", "EUR", 1200},
        {"0.01", "EUR", 1},
        {"0", "EUR", 0},
        {"-0", "EUR", 0},
        {"+7.5", "EUR", 750},
        {"-5.00", "EUR", -500},
        {"-0.01", "EUR", -1},
        {"007", "EUR", 700},
        {"500", "JPY", 500},
        {"-500", "JPY", -500},
        {"0.001", "KWD", 1},
        {"1.5", "KWD", 1500},
        {"-1.234", "BHD", -1234},
        {"0.0001", "CLF", 1},
        {"92233720368547758.07", "EUR", INT64_MAX},
        {"-92233720368547758.08", "EUR", INT64_MIN},
        {"9223372036854775807", "JPY", INT64_MAX},
        {"-9223372036854775808", "JPY", INT64_MIN},
        {"9223372036854775.807", "KWD", INT64_MAX},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trpc_status st;
        int64_t v = 12345;

        CU_ASSERT_EQUAL(money_parse(cases[i].text, cases[i].cur, &v, &st), GRPC_STATUS_OK);
        CU_ASSERT_EQUAL(v, cases[i].want);
        if (v != cases[i].want)
            fprintf(stderr, "parse %s %s: got %lld\n", cases[i].text, cases[i].cur, (long long)v);
    }
}

static void test_money_parse_invalid_table(void)
{
    static const struct {
        const char *text, *cur, *msg_part;
    } cases[] = {
        {"", "EUR", "amount is required"},
        {NULL, "EUR", "amount is required"},
        {"12.345", "EUR", "too many decimals for EUR (at most 2)"},
        {"1.0", "JPY", "too many decimals for JPY (at most 0)"},
        {"0.0001", "KWD", "too many decimals for KWD (at most 3)"},
        {"12.", "EUR", "invalid amount"},
        {".5", "EUR", "invalid amount"},
        {"-", "EUR", "invalid amount"},
        {"+", "EUR", "invalid amount"},
        {"--1", "EUR", "invalid amount"},
        {"1,5", "EUR", "invalid amount"},
        {"1 000", "EUR", "invalid amount"},
        {" 1", "EUR", "invalid amount"},
        {"1 ", "EUR", "invalid amount"},
        {"1e3", "EUR", "invalid amount"},
        {"abc", "EUR", "invalid amount"},
        {"0x10", "EUR", "invalid amount"},
        {"1.2.3", "EUR", "invalid amount"},
        {"12.34", "XYZ", "unknown currency"},
        {"12.34", "eur", "unknown currency"},
        {"12.34", NULL, "unknown currency"},
        {"92233720368547758.08", "EUR", "amount out of range"},
        {"-92233720368547758.09", "EUR", "amount out of range"},
        {"9223372036854775808", "JPY", "amount out of range"},
        {"-9223372036854775809", "JPY", "amount out of range"},
        {"99999999999999999999999", "JPY", "amount out of range"},
        {"92233720368547759", "EUR", "amount out of range"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trpc_status st;
        int64_t v = 12345;

        CU_ASSERT_EQUAL(money_parse(cases[i].text, cases[i].cur, &v, &st),
                        GRPC_STATUS_INVALID_ARGUMENT);
        CU_ASSERT_EQUAL(st.code, GRPC_STATUS_INVALID_ARGUMENT);
        CU_ASSERT_PTR_NOT_NULL(strstr(st.msg, cases[i].msg_part));
        CU_ASSERT_EQUAL(v, 12345);
        if (strstr(st.msg, cases[i].msg_part) == NULL)
            fprintf(stderr, "parse %s: got \"%s\"\n", cases[i].text ? cases[i].text : "(null)",
                    st.msg);
    }
}

static void test_money_format_table(void)
{
    static const struct {
        int64_t v;
        const char *cur, *want;
    } cases[] = {
        {1234, "EUR", "12.34"},
        {5, "EUR", "0.05"},
        {0, "EUR", "0.00"},
        {-1, "EUR", "-0.01"},
        {-1234, "EUR", "-12.34"},
        {500, "JPY", "500"},
        {-500, "JPY", "-500"},
        {0, "JPY", "0"},
        {1, "KWD", "0.001"},
        {-1, "KWD", "-0.001"},
        {1, "CLF", "0.0001"},
        {INT64_MAX, "EUR", "92233720368547758.07"},
        {INT64_MIN, "EUR", "-92233720368547758.08"},
        {INT64_MIN, "JPY", "-9223372036854775808"},
        {INT64_MIN, "CLF", "-922337203685477.5808"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[MONEY_FORMAT_SIZE];
        int n = money_format(cases[i].v, cases[i].cur, buf, sizeof(buf));

        CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
        CU_ASSERT_EQUAL(n, (int)strlen(cases[i].want));
    }
}

static void test_money_format_parse_round_trip(void)
{
    static const int64_t values[] = {0,
                                     1,
                                     -1,
                                     9,
                                     10,
                                     99,
                                     100,
                                     101,
                                     123456789,
                                     -987654321,
                                     INT64_MAX,
                                     INT64_MIN,
                                     INT64_MAX - 1,
                                     INT64_MIN + 1};
    static const char *const curs[] = {"JPY", "EUR", "KWD", "CLF"};
    size_t i, c;

    for (c = 0; c < sizeof(curs) / sizeof(curs[0]); c++) {
        for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            char buf[MONEY_FORMAT_SIZE];
            int64_t back = 0;

            CU_ASSERT_TRUE(money_format(values[i], curs[c], buf, sizeof(buf)) > 0);
            CU_ASSERT_EQUAL(money_parse(buf, curs[c], &back, NULL), GRPC_STATUS_OK);
            CU_ASSERT_EQUAL(back, values[i]);
        }
    }
}

static void test_money_format_truncates_and_rejects_unknown(void)
{
    char small[5];
    char buf[MONEY_FORMAT_SIZE] = "junk";

    CU_ASSERT_EQUAL(money_format(123456, "EUR", small, sizeof(small)), 7);
    CU_ASSERT_STRING_EQUAL(small, "1234");
    CU_ASSERT_EQUAL(money_format(1, "XYZ", buf, sizeof(buf)), -1);
    CU_ASSERT_STRING_EQUAL(buf, "");
    CU_ASSERT_EQUAL(money_format(1, "EUR", NULL, 0), 4);
}

static CU_TestInfo money_tests[] = {
    {"currency digits follow iso 4217", test_money_currency_digits_follow_iso_4217},
    {"currency rejects unknown and non-money codes",
     test_money_currency_rejects_unknown_and_non_money_codes},
    {"currency table sorted and findable", test_money_currency_table_is_sorted_and_complete},
    {"check_currency -> INVALID_ARGUMENT", test_money_check_currency_invalid_argument},
    {"add/sub refuse overflow", test_money_add_sub_overflow_is_refused},
    {"parse valid table", test_money_parse_valid_table},
    {"parse invalid table", test_money_parse_invalid_table},
    {"format table", test_money_format_table},
    {"format/parse round trip", test_money_format_parse_round_trip},
    {"format truncates, rejects unknown", test_money_format_truncates_and_rejects_unknown},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"money", NULL, NULL, NULL, NULL, money_tests},
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
