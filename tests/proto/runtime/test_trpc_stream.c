/* test_trpc_stream.c - server streams through the trpc runtime: N messages
 * then OK (from the handler and from a detached owner), deadlines, client
 * cancellation as the server sees it. */
#include <stdlib.h>

#include <CUnit/Basic.h>

#include "test_support.h"

static trpc_client_stream *count(ts_server *t, int n, int interval_ms, int forever, int detach,
                                 int64_t timeout_ms)
{
    Trpctest__V1__CountRequest req = TRPCTEST__V1__COUNT_REQUEST__INIT;
    trpc_call_opts opts = {timeout_ms, NULL, 0};
    trpc_status st;

    req.count = n;
    req.interval_ms = interval_ms;
    req.forever = forever;
    req.detach = detach;
    return trpctest__v1__test_service__trpc_count(t->ch, &req, &opts, &st);
}

/* Reads the stream to its end; returns the number of messages, checking
 * they count 0, 1, 2... */
static int drain(trpc_client_stream *s, trpc_status *st, int *in_order)
{
    Trpctest__V1__CountResponse *m;
    int n = 0;

    *in_order = 1;
    while (trpctest__v1__test_service__trpc_count_next(s, &m, st)) {
        if (m->n != n)
            *in_order = 0;
        n++;
        trpctest__v1__count_response__free_unpacked(m, NULL);
    }
    return n;
}

static void check_n_then_ok(int detach)
{
    ts_server t;
    trpc_client_stream *s;
    trpc_status st;
    int in_order;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    /* more than the queue holds, so the queue fills and drains */
    s = count(&t, 100, 0, 0, detach, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(drain(s, &st, &in_order), 100);
    CU_ASSERT(in_order);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_OK);
    /* once ended, next keeps answering the final status */
    CU_ASSERT_EQUAL(drain(s, &st, &in_order), 0);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_OK);
    trpc_client_stream_free(s);

    s = count(&t, 0, 0, 0, detach, 10000); /* no messages at all */
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(drain(s, &st, &in_order), 0);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_OK);
    trpc_client_stream_free(s);
    if (detach)
        CU_ASSERT_EQUAL(ts_wait(TS_DETACHED_DONE, 2, 2000), 2);
    CU_ASSERT_EQUAL(ts_get(TS_ON_CLOSE), 0); /* nobody hung up */
    ts_stop(&t);
}

static void test_stream_n_messages_then_ok(void)
{
    check_n_then_ok(0);
}

static void test_stream_detached_n_messages_then_ok(void)
{
    check_n_then_ok(1);
}

static void check_deadline(int detach)
{
    ts_server t;
    trpc_client_stream *s;
    trpc_status st;
    int in_order, n;
    int64_t t0 = ts_now_ms();

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    s = count(&t, 0, 20, 1, detach, 300);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    n = drain(s, &st, &in_order);
    CU_ASSERT(n >= 3);
    CU_ASSERT(in_order);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_DEADLINE_EXCEEDED);
    CU_ASSERT(ts_now_ms() - t0 < 2000);
    trpc_client_stream_free(s);
    /* the server side saw the end: on_close ran, the sender stopped */
    CU_ASSERT_EQUAL(ts_wait(TS_ON_CLOSE, 1, 2000), 1);
    CU_ASSERT_EQUAL(ts_wait(TS_STREAM_CLOSED, 1, 2000), 1);
    CU_ASSERT_EQUAL(ts_get(TS_STREAM_IS_CANCELLED), 1);
    if (detach)
        CU_ASSERT_EQUAL(ts_wait(TS_DETACHED_DONE, 1, 2000), 1);
    ts_stop(&t);
}

static void test_stream_deadline_exceeded(void)
{
    check_deadline(0);
}

static void test_stream_detached_deadline_exceeded(void)
{
    check_deadline(1);
}

static void check_client_cancel(int detach)
{
    ts_server t;
    trpc_client_stream *s;
    Trpctest__V1__CountResponse *m;
    trpc_status st;
    int i;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    s = count(&t, 0, 10, 1, detach, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(trpctest__v1__test_service__trpc_count_next(s, &m, &st), 1);
        CU_ASSERT_EQUAL(m->n, i);
        trpctest__v1__count_response__free_unpacked(m, NULL);
    }
    trpc_client_stream_cancel(s);
    /* whatever was in flight may still arrive; then CANCELLED */
    while (trpctest__v1__test_service__trpc_count_next(s, &m, &st))
        trpctest__v1__count_response__free_unpacked(m, NULL);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_CANCELLED);
    trpc_client_stream_free(s);
    CU_ASSERT_EQUAL(ts_wait(TS_ON_CLOSE, 1, 2000), 1);
    CU_ASSERT_EQUAL(ts_wait(TS_STREAM_CLOSED, 1, 2000), 1);
    CU_ASSERT_EQUAL(ts_get(TS_STREAM_IS_CANCELLED), 1);
    if (detach)
        CU_ASSERT_EQUAL(ts_wait(TS_DETACHED_DONE, 1, 2000), 1);
    ts_stop(&t);
}

static void test_stream_client_cancel_is_seen_by_server(void)
{
    check_client_cancel(0);
}

static void test_stream_detached_client_cancel_is_seen_by_owner(void)
{
    check_client_cancel(1);
}

static void test_stream_free_without_reading_cancels(void)
{
    ts_server t;
    trpc_client_stream *s;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    s = count(&t, 0, 10, 1, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(ts_wait(TS_COUNT_CALLS, 1, 2000), 1);
    trpc_client_stream_free(s);
    CU_ASSERT_EQUAL(ts_wait(TS_STREAM_CLOSED, 1, 2000), 1);
    CU_ASSERT_EQUAL(ts_get(TS_STREAM_IS_CANCELLED), 1);
    ts_stop(&t);
}

/* A client that does not read makes the transport push back: the queue
 * fills, a blocking send waits, a no-wait send gets TRPC_STREAM_FULL and
 * resumes from on_writable; nothing is lost or reordered. */
static void check_backpressure(int detach_nowait)
{
    ts_server t;
    Trpctest__V1__CountRequest req = TRPCTEST__V1__COUNT_REQUEST__INIT;
    Trpctest__V1__CountResponse *m;
    trpc_client_stream *s;
    trpc_status st;
    int n = 0, in_order = 1, max_queued;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    req.count = 400;
    req.pad_bytes = 16 * 1024;
    req.detach = detach_nowait;
    req.nowait = detach_nowait;
    s = trpctest__v1__test_service__trpc_count(t.ch, &req, NULL, &st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    ts_sleep_ms(500); /* the server fills everything it can */
    while (trpctest__v1__test_service__trpc_count_next(s, &m, &st)) {
        if (m->n != n || m->pad.len != 16 * 1024)
            in_order = 0;
        n++;
        trpctest__v1__count_response__free_unpacked(m, NULL);
    }
    CU_ASSERT_EQUAL(n, 400);
    CU_ASSERT(in_order);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_OK);
    trpc_client_stream_free(s);
    /* the queue filled up (16 queued + 1 in flight), so senders waited */
    max_queued = ts_get(TS_MAX_QUEUED);
    CU_ASSERT(max_queued >= 16 && max_queued <= 17);
    if (detach_nowait) {
        CU_ASSERT(ts_get(TS_FULL) >= 1);
        CU_ASSERT(ts_get(TS_WRITABLE) >= 1);
        CU_ASSERT_EQUAL(ts_wait(TS_DETACHED_DONE, 1, 2000), 1);
    }
    CU_ASSERT_EQUAL(ts_get(TS_STREAM_CLOSED), 0);
    ts_stop(&t);
}

static void test_stream_backpressure_blocks_sender(void)
{
    check_backpressure(0);
}

static void test_stream_backpressure_full_then_writable(void)
{
    check_backpressure(1);
}

static CU_TestInfo stream_tests[] = {
    {"backpressure blocks the sender", test_stream_backpressure_blocks_sender},
    {"backpressure: FULL, then on_writable", test_stream_backpressure_full_then_writable},
    {"N messages then OK", test_stream_n_messages_then_ok},
    {"detached: N messages then OK", test_stream_detached_n_messages_then_ok},
    {"deadline exceeded", test_stream_deadline_exceeded},
    {"detached: deadline exceeded", test_stream_detached_deadline_exceeded},
    {"client cancel is seen by the server", test_stream_client_cancel_is_seen_by_server},
    {"detached: client cancel is seen by the owner",
     test_stream_detached_client_cancel_is_seen_by_owner},
    {"freeing an unread stream cancels it", test_stream_free_without_reading_cancels},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"trpc server streams", NULL, NULL, NULL, NULL, stream_tests},
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
