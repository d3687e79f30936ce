/* test_uuid.c - canonical text form and UUIDv7 generation. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "uuid.h"

static void test_uuid_is_valid_accepts_canonical_either_case(void)
{
    CU_ASSERT_TRUE(uuid_is_valid("0190a6e4-7b3c-7def-8abc-0123456789ab"));
    CU_ASSERT_TRUE(uuid_is_valid("0190A6E4-7B3C-7DEF-8ABC-0123456789AB"));
    CU_ASSERT_TRUE(uuid_is_valid("00000000-0000-0000-0000-000000000000"));
    CU_ASSERT_TRUE(uuid_is_valid("f81d4fae-7dec-11d0-a765-00a0c91e6bf6")); /* v1 */
}

static void test_uuid_is_valid_rejects_other_forms(void)
{
    static const char *const bad[] = {
        "",
        "0190a6e4-7b3c-7def-8abc-0123456789a",   /* short */
        "0190a6e4-7b3c-7def-8abc-0123456789abc", /* long */
        "0190a6e47b3c7def8abc0123456789ab",      /* no hyphens */
        "{0190a6e4-7b3c-7def-8abc-0123456789ab}",
        "0190a6e4-7b3c-7def-8abc_0123456789ab",
        "0190a6e4-7b3c-7def-8abc-0123456789ag",
        "0190a6e4 7b3c-7def-8abc-0123456789ab",
        "0190a6e-47b3c-7def-8abc-0123456789ab",
        " 0190a6e4-7b3c-7def-8abc-0123456789ab",
        "urn:uuid:0190a6e4-7b3c-7def-8abc-0123456789ab",
    };
    size_t i;
    uint8_t b[16] = {0xAA};

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_FALSE(uuid_is_valid(bad[i]));
        CU_ASSERT_EQUAL(uuid_from_string(bad[i], b), -1);
    }
    CU_ASSERT_EQUAL(b[0], 0xAA); /* untouched */
    CU_ASSERT_FALSE(uuid_is_valid(NULL));
}

static void test_uuid_string_round_trip_lower_cases(void)
{
    uint8_t b[16];
    char s[UUID_STR_SIZE];

    CU_ASSERT_EQUAL_FATAL(uuid_from_string("0190A6E4-7B3C-7DEF-8ABC-0123456789AB", b), 0);
    CU_ASSERT_EQUAL(b[0], 0x01);
    CU_ASSERT_EQUAL(b[15], 0xAB);
    uuid_to_string(b, s);
    CU_ASSERT_STRING_EQUAL(s, "0190a6e4-7b3c-7def-8abc-0123456789ab");
    CU_ASSERT_EQUAL(uuid_normalize("0190A6E4-7B3C-7DEF-8ABC-0123456789AB", s), 0);
    CU_ASSERT_STRING_EQUAL(s, "0190a6e4-7b3c-7def-8abc-0123456789ab");
    CU_ASSERT_EQUAL(uuid_normalize("nope", s), -1);
    CU_ASSERT_STRING_EQUAL(s, "");
}

static void test_uuid_normalize_in_place(void)
{
    char s[UUID_STR_SIZE] = "ABCDEF01-2345-6789-ABCD-EF0123456789";

    CU_ASSERT_EQUAL(uuid_normalize(s, s), 0);
    CU_ASSERT_STRING_EQUAL(s, "abcdef01-2345-6789-abcd-ef0123456789");
}

static void test_uuid_check_field_errors(void)
{
    trpc_status st;
    char out[UUID_STR_SIZE];

    CU_ASSERT_EQUAL(uuid_check("account_id", "ABCDEF01-2345-6789-ABCD-EF0123456789", out, &st),
                    GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(out, "abcdef01-2345-6789-abcd-ef0123456789");
    CU_ASSERT_EQUAL(uuid_check("account_id", "", out, &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_STRING_EQUAL(st.msg, "account_id is required");
    CU_ASSERT_EQUAL(uuid_check("account_id", NULL, out, &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(uuid_check("account_id", "x", out, &st), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_STRING_EQUAL(st.msg, "account_id is not a valid uuid");
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(uuid_check("account_id", "00000000-0000-0000-0000-000000000000", out, &st),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_STRING_EQUAL(st.msg, "account_id must not be the nil uuid");
}

static void test_uuid_v7_from_parts_layout(void)
{
    uint8_t r[10], b[16];
    char s[UUID_STR_SIZE];

    memset(r, 0xFF, sizeof(r));
    uuid_v7_from_parts(UINT64_C(0x0190a6e47b3c), r, b);
    uuid_to_string(b, s);
    CU_ASSERT_STRING_EQUAL(s, "0190a6e4-7b3c-7fff-bfff-ffffffffffff");
    CU_ASSERT_EQUAL(uuid_version(b), 7);
    CU_ASSERT_TRUE(uuid_is_rfc_variant(b));
    CU_ASSERT_EQUAL(uuid_v7_unix_ms(b), UINT64_C(0x0190a6e47b3c));

    memset(r, 0, sizeof(r));
    uuid_v7_from_parts(0, r, b);
    uuid_to_string(b, s);
    CU_ASSERT_STRING_EQUAL(s, "00000000-0000-7000-8000-000000000000");
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_uuid_v7_new_version_variant_time(void)
{
    uint8_t b[16];
    char s[UUID_STR_SIZE];
    uint64_t before = now_ms(), after;

    CU_ASSERT_EQUAL_FATAL(uuid_v7_new_bytes(b), 0);
    after = now_ms();
    CU_ASSERT_EQUAL(uuid_version(b), 7);
    CU_ASSERT_TRUE(uuid_is_rfc_variant(b));
    /* ids may run a little ahead of the clock (monotonicity), never behind */
    CU_ASSERT_TRUE(uuid_v7_unix_ms(b) >= before);
    CU_ASSERT_TRUE(uuid_v7_unix_ms(b) <= after + 1000);

    CU_ASSERT_EQUAL_FATAL(uuid_v7_new(s), 0);
    CU_ASSERT_TRUE(uuid_is_valid(s));
    CU_ASSERT_EQUAL(s[14], '7');
    CU_ASSERT_TRUE(s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b');
}

#define N_SEQ 20000

static void test_uuid_v7_new_strictly_increasing(void)
{
    static char ids[N_SEQ][UUID_STR_SIZE];
    int i, bad = 0;

    for (i = 0; i < N_SEQ; i++)
        CU_ASSERT_EQUAL_FATAL(uuid_v7_new(ids[i]), 0);
    for (i = 1; i < N_SEQ; i++)
        if (strcmp(ids[i - 1], ids[i]) >= 0)
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
}

#define N_THREADS    4
#define N_PER_THREAD 5000

static uint8_t thread_ids[N_THREADS][N_PER_THREAD][16];

static void *make_ids(void *arg)
{
    int t = (int)(intptr_t)arg, i;

    for (i = 0; i < N_PER_THREAD; i++)
        if (uuid_v7_new_bytes(thread_ids[t][i]) != 0)
            return (void *)1;
    return NULL;
}

static int cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static void test_uuid_v7_threads_unique_and_per_thread_ordered(void)
{
    pthread_t th[N_THREADS];
    uint8_t(*all)[16] = malloc(sizeof(thread_ids));
    int t, i, dup = 0, unordered = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(all);
    for (t = 0; t < N_THREADS; t++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[t], NULL, make_ids, (void *)(intptr_t)t), 0);
    for (t = 0; t < N_THREADS; t++) {
        void *rc = NULL;

        pthread_join(th[t], &rc);
        CU_ASSERT_PTR_NULL(rc);
    }
    for (t = 0; t < N_THREADS; t++)
        for (i = 1; i < N_PER_THREAD; i++)
            if (memcmp(thread_ids[t][i - 1], thread_ids[t][i], 16) >= 0)
                unordered++;
    memcpy(all, thread_ids, sizeof(thread_ids));
    qsort(all, N_THREADS * N_PER_THREAD, 16, cmp16);
    for (i = 1; i < N_THREADS * N_PER_THREAD; i++)
        if (memcmp(all[i - 1], all[i], 16) == 0)
            dup++;
    CU_ASSERT_EQUAL(unordered, 0);
    CU_ASSERT_EQUAL(dup, 0);
    free(all);
}

static CU_TestInfo uuid_tests[] = {
    {"is_valid accepts canonical, either case", test_uuid_is_valid_accepts_canonical_either_case},
    {"is_valid rejects other forms", test_uuid_is_valid_rejects_other_forms},
    {"string round trip lower-cases", test_uuid_string_round_trip_lower_cases},
    {"normalize in place", test_uuid_normalize_in_place},
    {"check: field errors", test_uuid_check_field_errors},
    {"v7 from parts: layout", test_uuid_v7_from_parts_layout},
    {"v7 new: version, variant, time", test_uuid_v7_new_version_variant_time},
    {"v7 new: strictly increasing", test_uuid_v7_new_strictly_increasing},
    {"v7 new: threads unique, ordered per thread",
     test_uuid_v7_threads_unique_and_per_thread_ordered},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"uuid", NULL, NULL, NULL, NULL, uuid_tests},
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
