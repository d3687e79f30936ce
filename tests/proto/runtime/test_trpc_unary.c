/* test_trpc_unary.c - unary calls through the trpc runtime: round trip,
 * handler errors, UNIMPLEMENTED, INVALID_ARGUMENT, message size limits,
 * deadlines and cancellation as the handler sees them. */
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "test_support.h"

#define ECHO_PATH TRPCTEST__V1__TEST_SERVICE__ECHO__PATH

static grpc_status_code echo(ts_server *t, const Trpctest__V1__EchoRequest *req,
                             Trpctest__V1__EchoResponse **resp, const trpc_call_opts *opts,
                             trpc_status *st)
{
    return trpctest__v1__test_service__trpc_echo(t->ch, req, resp, opts, st);
}

static void test_unary_round_trip_echoes_text_metadata_and_runs_defers(void)
{
    ts_server t;
    Trpctest__V1__EchoRequest req = TRPCTEST__V1__ECHO_REQUEST__INIT;
    Trpctest__V1__EchoResponse *resp = NULL;
    trpc_metadata md[] = {{"x-test", "hello-md"}};
    trpc_call_opts opts = {5000, md, 1};
    trpc_status st;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    req.text = (char *)"ping";
    req.mode = TRPCTEST__V1__MODE__MODE_METADATA;
    CU_ASSERT_EQUAL(echo(&t, &req, &resp, &opts, &st), GRPC_STATUS_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_STRING_EQUAL(resp->text, "ping");
    CU_ASSERT_STRING_EQUAL(resp->metadata, "hello-md");
    CU_ASSERT(strstr(resp->peer, "127.0.0.1") != NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp->at);
    CU_ASSERT_EQUAL(resp->at->seconds, 42);
    trpctest__v1__echo_response__free_unpacked(resp, NULL);
    CU_ASSERT_EQUAL(ts_wait(TS_DEFERS, 1, 2000), 1);

    /* the same channel serves many calls; no deadline works too */
    req.mode = TRPCTEST__V1__MODE__MODE_NORMAL;
    req.text = (char *)"again";
    CU_ASSERT_EQUAL(echo(&t, &req, &resp, NULL, NULL), GRPC_STATUS_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_STRING_EQUAL(resp->text, "again");
    trpctest__v1__echo_response__free_unpacked(resp, NULL);
    ts_stop(&t);
}

static void test_unary_handler_failure_returns_code_and_message(void)
{
    ts_server t;
    Trpctest__V1__EchoRequest req = TRPCTEST__V1__ECHO_REQUEST__INIT;
    Trpctest__V1__EchoResponse *resp = NULL;
    trpc_status st;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    req.text = (char *)"abc";
    req.mode = TRPCTEST__V1__MODE__MODE_FAIL;
    CU_ASSERT_EQUAL(echo(&t, &req, &resp, NULL, &st), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NULL(resp);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_STRING_EQUAL(st.msg, "told to fail: abc");
    CU_ASSERT_EQUAL(ts_wait(TS_DEFERS, 1, 2000), 1);
    ts_stop(&t);
}

static grpc_status_code raw(ts_server *t, const char *path, const void *data, size_t len,
                            trpc_status *st)
{
    void *out = NULL;
    size_t out_len = 0;
    trpc_call_opts opts = {3000, NULL, 0};
    grpc_status_code code = trpc_unary_raw(t->ch, path, data, len, &out, &out_len, &opts, st);

    free(out);
    return code;
}

static void test_unary_unknown_and_unhandled_methods_are_unimplemented(void)
{
    ts_server t;
    Trpctest__V1__EchoRequest req = TRPCTEST__V1__ECHO_REQUEST__INIT;
    uint8_t buf[64];
    size_t len;
    trpc_status st;
    int64_t t0;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    req.text = (char *)"x";
    len = trpctest__v1__echo_request__pack(&req, buf);
    t0 = ts_now_ms();
    CU_ASSERT_EQUAL(raw(&t, "/trpctest.v1.TestService/NoSuch", buf, len, &st),
                    GRPC_STATUS_UNIMPLEMENTED);
    CU_ASSERT(ts_now_ms() - t0 < 2000); /* answered, not left to the deadline */
    CU_ASSERT_EQUAL(raw(&t, "/no.such.Service/Method", buf, len, &st), GRPC_STATUS_UNIMPLEMENTED);
    CU_ASSERT_EQUAL(raw(&t, TRPCTEST__V1__TEST_SERVICE__UNHANDLED__PATH, buf, len, &st),
                    GRPC_STATUS_UNIMPLEMENTED);
    CU_ASSERT_EQUAL(raw(&t, TRPCTEST__V1__TEST_SERVICE__COLLECT__PATH, buf, len, &st),
                    GRPC_STATUS_UNIMPLEMENTED);
    CU_ASSERT_EQUAL(raw(&t, TRPCTEST__V1__TEST_SERVICE__CHAT__PATH, buf, len, &st),
                    GRPC_STATUS_UNIMPLEMENTED);
    CU_ASSERT_EQUAL(ts_get(TS_ECHO_CALLS), 0);
    ts_stop(&t);
}

static void test_unary_garbage_request_is_invalid_argument_without_handler(void)
{
    ts_server t;
    /* field 1 (string) claiming 100 bytes that are not there */
    static const uint8_t garbage[] = {0x0a, 0x64, 'a', 'b'};
    static const uint8_t wrong_wire[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    trpc_status st;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    CU_ASSERT_EQUAL(raw(&t, ECHO_PATH, garbage, sizeof(garbage), &st),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(raw(&t, ECHO_PATH, wrong_wire, sizeof(wrong_wire), &st),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(ts_get(TS_ECHO_CALLS), 0);
    /* an empty message is a valid (all-default) request */
    CU_ASSERT_EQUAL(raw(&t, ECHO_PATH, "", 0, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ts_get(TS_ECHO_CALLS), 1);
    ts_stop(&t);
}

static void test_unary_one_mib_both_ways(void)
{
    ts_server t;
    Trpctest__V1__EchoRequest req = TRPCTEST__V1__ECHO_REQUEST__INIT;
    Trpctest__V1__EchoResponse *resp = NULL;
    size_t n = 1024 * 1024, i, bad = 0;
    uint8_t *blob = malloc(n);
    trpc_status st;

    CU_ASSERT_FATAL(blob != NULL);
    for (i = 0; i < n; i++)
        blob[i] = (uint8_t)(i * 7);
    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    req.blob.data = blob;
    req.blob.len = n;
    CU_ASSERT_EQUAL(echo(&t, &req, &resp, NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL_FATAL(resp->blob.len, n);
    for (i = 0; i < n; i++)
        bad += resp->blob.data[i] != blob[i];
    CU_ASSERT_EQUAL(bad, 0);
    trpctest__v1__echo_response__free_unpacked(resp, NULL);

    req.blob.len = 0;
    req.reply_bytes = (int32_t)n;
    CU_ASSERT_EQUAL(echo(&t, &req, &resp, NULL, &st), GRPC_STATUS_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(resp->blob.len, n);
    trpctest__v1__echo_response__free_unpacked(resp, NULL);
    ts_stop(&t);
    free(blob);
}

static void test_unary_over_max_message_is_resource_exhausted(void)
{
    ts_server t;
    trpc_server_opts o = ts_default_opts();
    Trpctest__V1__EchoRequest req = TRPCTEST__V1__ECHO_REQUEST__INIT;
    Trpctest__V1__EchoResponse *resp = NULL;
    size_t n = 100 * 1024;
    uint8_t *blob = calloc(1, n);
    trpc_status st;

    CU_ASSERT_FATAL(blob != NULL);
    o.max_message_bytes = 64 * 1024;
    CU_ASSERT_FATAL(ts_start(&t, &o) == 0);
    req.blob.data = blob;
    req.blob.len = n;
    CU_ASSERT_EQUAL(echo(&t, &req, &resp, NULL, &st), GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_PTR_NULL(resp);
    CU_ASSERT_EQUAL(ts_get(TS_ECHO_CALLS), 0);

    /* a reply over the limit is refused by the server too */
    req.blob.len = 0;
    req.reply_bytes = (int32_t)n;
    CU_ASSERT_EQUAL(echo(&t, &req, &resp, NULL, &st), GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_PTR_NULL(resp);

    /* under the limit still works */
    req.reply_bytes = 1000;
    CU_ASSERT_EQUAL(echo(&t, &req, &resp, NULL, &st), GRPC_STATUS_OK);
    trpctest__v1__echo_response__free_unpacked(resp, NULL);
    ts_stop(&t);
    free(blob);
}

static void test_unary_slow_handler_hits_deadline_and_sees_cancellation(void)
{
    ts_server t;
    Trpctest__V1__EchoRequest req = TRPCTEST__V1__ECHO_REQUEST__INIT;
    Trpctest__V1__EchoResponse *resp = NULL;
    trpc_call_opts opts = {200, NULL, 0};
    trpc_status st;
    int64_t t0;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    req.sleep_ms = 3000;
    t0 = ts_now_ms();
    CU_ASSERT_EQUAL(echo(&t, &req, &resp, &opts, &st), GRPC_STATUS_DEADLINE_EXCEEDED);
    CU_ASSERT(ts_now_ms() - t0 < 1500);
    CU_ASSERT_PTR_NULL(resp);
    /* the handler learns of it through is_cancelled and on_cancel */
    CU_ASSERT_EQUAL(ts_wait(TS_ECHO_CANCELLED, 1, 2000), 1);
    CU_ASSERT_EQUAL(ts_wait(TS_CANCEL_CB, 1, 2000), 1);
    ts_stop(&t);
}

static CU_TestInfo unary_tests[] = {
    {"round trip echoes text, metadata, runs defers",
     test_unary_round_trip_echoes_text_metadata_and_runs_defers},
    {"handler failure returns code and message",
     test_unary_handler_failure_returns_code_and_message},
    {"unknown and unhandled methods are UNIMPLEMENTED",
     test_unary_unknown_and_unhandled_methods_are_unimplemented},
    {"garbage request is INVALID_ARGUMENT without the handler",
     test_unary_garbage_request_is_invalid_argument_without_handler},
    {"1 MiB both ways", test_unary_one_mib_both_ways},
    {"over max message is RESOURCE_EXHAUSTED", test_unary_over_max_message_is_resource_exhausted},
    {"slow handler hits deadline and sees cancellation",
     test_unary_slow_handler_hits_deadline_and_sees_cancellation},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"trpc unary", NULL, NULL, NULL, NULL, unary_tests},
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
