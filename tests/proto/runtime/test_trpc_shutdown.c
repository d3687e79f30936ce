/* test_trpc_shutdown.c - graceful shutdown: open streams end at once,
 * running unary calls drain for the grace period and are cancelled after
 * it; servers that never started or failed to bind free cleanly. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "grpc/health/v1/health.trpc.h"

#include "test_support.h"

struct shutter {
    trpc_server *srv;
    int64_t took_ms;
    pthread_t thread;
};

static void *shutter_main(void *arg)
{
    struct shutter *s = arg;
    int64_t t0 = ts_now_ms();

    trpc_server_shutdown(s->srv);
    s->took_ms = ts_now_ms() - t0;
    return NULL;
}

static void shut_down_async(struct shutter *s, trpc_server *srv)
{
    memset(s, 0, sizeof(*s));
    s->srv = srv;
    CU_ASSERT_FATAL(pthread_create(&s->thread, NULL, shutter_main, s) == 0);
}

static int ends_promptly(grpc_status_code code)
{
    return code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_CANCELLED;
}

static void test_shutdown_with_open_streams_ends_them_promptly(void)
{
    ts_server t;
    trpc_server_opts o = ts_default_opts();
    Trpctest__V1__CountRequest req = TRPCTEST__V1__COUNT_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *hm;
    trpc_client_stream *plain, *detached, *watch;
    Trpctest__V1__CountResponse *m;
    struct shutter sh;
    trpc_status st;
    int64_t t0;

    o.shutdown_grace_ms = 3000;
    CU_ASSERT_FATAL(ts_start(&t, &o) == 0);
    req.forever = 1;
    req.interval_ms = 20;
    plain = trpctest__v1__test_service__trpc_count(t.ch, &req, NULL, &st);
    req.detach = 1;
    detached = trpctest__v1__test_service__trpc_count(t.ch, &req, NULL, &st);
    watch = grpc__health__v1__health__trpc_watch(t.ch, &hreq, NULL, &st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    CU_ASSERT_PTR_NOT_NULL_FATAL(detached);
    CU_ASSERT_PTR_NOT_NULL_FATAL(watch);
    CU_ASSERT_EQUAL_FATAL(trpctest__v1__test_service__trpc_count_next(plain, &m, &st), 1);
    trpctest__v1__count_response__free_unpacked(m, NULL);
    CU_ASSERT_EQUAL_FATAL(trpctest__v1__test_service__trpc_count_next(detached, &m, &st), 1);
    trpctest__v1__count_response__free_unpacked(m, NULL);
    CU_ASSERT_EQUAL_FATAL(grpc__health__v1__health__trpc_watch_next(watch, &hm, &st), 1);
    grpc__health__v1__health_check_response__free_unpacked(hm, NULL);

    t0 = ts_now_ms();
    shut_down_async(&sh, t.srv);
    while (trpctest__v1__test_service__trpc_count_next(plain, &m, &st))
        trpctest__v1__count_response__free_unpacked(m, NULL);
    CU_ASSERT(ends_promptly(st.code));
    while (trpctest__v1__test_service__trpc_count_next(detached, &m, &st))
        trpctest__v1__count_response__free_unpacked(m, NULL);
    CU_ASSERT(ends_promptly(st.code));
    while (grpc__health__v1__health__trpc_watch_next(watch, &hm, &st))
        grpc__health__v1__health_check_response__free_unpacked(hm, NULL);
    CU_ASSERT(ends_promptly(st.code));
    CU_ASSERT(ts_now_ms() - t0 < 1500);
    pthread_join(sh.thread, NULL);
    CU_ASSERT(sh.took_ms < 1500); /* well within the grace period */
    CU_ASSERT_EQUAL(ts_get(TS_ON_CLOSE), 2);
    CU_ASSERT_EQUAL(ts_wait(TS_DETACHED_DONE, 1, 2000), 1);
    trpc_client_stream_free(plain);
    trpc_client_stream_free(detached);
    trpc_client_stream_free(watch);
    trpc_server_shutdown(t.srv); /* idempotent */
    ts_stop(&t);
}

struct unary_caller {
    ts_server *t;
    int sleep_ms;
    grpc_status_code code;
    pthread_t thread;
};

static void *unary_main(void *arg)
{
    struct unary_caller *u = arg;
    Trpctest__V1__EchoRequest req = TRPCTEST__V1__ECHO_REQUEST__INIT;
    Trpctest__V1__EchoResponse *resp = NULL;

    req.sleep_ms = u->sleep_ms;
    u->code = trpctest__v1__test_service__trpc_echo(u->t->ch, &req, &resp, NULL, NULL);
    if (resp != NULL)
        trpctest__v1__echo_response__free_unpacked(resp, NULL);
    return NULL;
}

static void test_shutdown_drains_running_unary_calls(void)
{
    ts_server t;
    trpc_server_opts o = ts_default_opts();
    struct unary_caller u = {&t, 400, GRPC_STATUS_UNKNOWN, 0};
    struct shutter sh;

    o.shutdown_grace_ms = 3000;
    CU_ASSERT_FATAL(ts_start(&t, &o) == 0);
    CU_ASSERT_FATAL(pthread_create(&u.thread, NULL, unary_main, &u) == 0);
    CU_ASSERT_EQUAL_FATAL(ts_wait(TS_ECHO_CALLS, 1, 2000), 1);
    shut_down_async(&sh, t.srv);
    pthread_join(u.thread, NULL);
    pthread_join(sh.thread, NULL);
    CU_ASSERT_EQUAL(u.code, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(ts_get(TS_ECHO_CANCELLED), 0);
    CU_ASSERT(sh.took_ms < 2000);
    ts_stop(&t);
}

static void test_shutdown_cancels_unary_calls_after_grace(void)
{
    ts_server t;
    trpc_server_opts o = ts_default_opts();
    struct unary_caller u = {&t, 10000, GRPC_STATUS_UNKNOWN, 0};
    struct shutter sh;

    o.shutdown_grace_ms = 300;
    CU_ASSERT_FATAL(ts_start(&t, &o) == 0);
    CU_ASSERT_FATAL(pthread_create(&u.thread, NULL, unary_main, &u) == 0);
    CU_ASSERT_EQUAL_FATAL(ts_wait(TS_ECHO_CALLS, 1, 2000), 1);
    shut_down_async(&sh, t.srv);
    pthread_join(u.thread, NULL);
    pthread_join(sh.thread, NULL);
    CU_ASSERT(ends_promptly(u.code));
    CU_ASSERT_EQUAL(ts_get(TS_ECHO_CANCELLED), 1);
    CU_ASSERT(sh.took_ms >= 250);
    CU_ASSERT(sh.took_ms < 2000);
    ts_stop(&t);
}

static void test_shutdown_of_unstarted_and_unbindable_servers(void)
{
    trpc_server_opts o = ts_default_opts();
    trpc_server *srv;
    ts_server t;

    /* never started */
    srv = trpc_server_new(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    trpc_server_shutdown(srv);
    trpc_server_free(srv);
    trpc_server_free(NULL);

    /* bad options */
    o.pool_threads = -1;
    CU_ASSERT_PTR_NULL(trpc_server_new(&o));
    o = ts_default_opts();
    o.listen_addr = NULL;
    CU_ASSERT_PTR_NULL(trpc_server_new(&o));

    /* the port is taken */
    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    o = ts_default_opts();
    o.listen_addr = t.target;
    srv = trpc_server_new(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    CU_ASSERT_EQUAL(trpc_server_start(srv), -1);
    CU_ASSERT_EQUAL(trpc_server_start(srv), -1);
    trpc_server_free(srv);
    ts_stop(&t);
}

static void test_shutdown_signal_helpers_wait_for_sigterm(void)
{
    sigset_t pending;

    trpc_block_signals(); /* this test's thread: nothing else runs now */
    CU_ASSERT_EQUAL_FATAL(kill(getpid(), SIGTERM), 0);
    sigpending(&pending);
    CU_ASSERT(sigismember(&pending, SIGTERM)); /* blocked, not delivered */
    CU_ASSERT_EQUAL(trpc_wait_for_signal(), SIGTERM);
    CU_ASSERT_EQUAL_FATAL(kill(getpid(), SIGINT), 0);
    CU_ASSERT_EQUAL(trpc_wait_for_signal(), SIGINT);
}

static CU_TestInfo shutdown_tests[] = {
    {"open streams end promptly", test_shutdown_with_open_streams_ends_them_promptly},
    {"running unary calls drain", test_shutdown_drains_running_unary_calls},
    {"unary calls are cancelled after the grace period",
     test_shutdown_cancels_unary_calls_after_grace},
    {"unstarted and unbindable servers free cleanly",
     test_shutdown_of_unstarted_and_unbindable_servers},
    {"signal helpers wait for SIGTERM and SIGINT", test_shutdown_signal_helpers_wait_for_sigterm},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"trpc shutdown", NULL, NULL, NULL, NULL, shutdown_tests},
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
