/* test_trpc_load.c - the blocking pool under load: 64 concurrent callers,
 * a full pool queue (RESOURCE_EXHAUSTED), and the per-thread resources made
 * by worker_init. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "test_support.h"

#define N_THREADS 64
#define N_CALLS   20

struct caller {
    ts_server *t;
    int index;
    int mode;
    int ok;                /* calls that came back right */
    grpc_status_code code; /* last status */
    pthread_t thread;
};

static void *caller_main(void *arg)
{
    struct caller *c = arg;
    Trpctest__V1__EchoRequest req = TRPCTEST__V1__ECHO_REQUEST__INIT;
    Trpctest__V1__EchoResponse *resp;
    trpc_call_opts opts = {10000, NULL, 0};
    char text[32];
    int i, n = c->mode == TRPCTEST__V1__MODE__MODE_NORMAL ? N_CALLS : 1;

    req.mode = (Trpctest__V1__Mode)c->mode;
    for (i = 0; i < n; i++) {
        snprintf(text, sizeof(text), "caller-%d-%d", c->index, i);
        req.text = text;
        resp = NULL;
        c->code = trpctest__v1__test_service__trpc_echo(c->t->ch, &req, &resp, &opts, NULL);
        if (c->code == GRPC_STATUS_OK && strcmp(resp->text, text) == 0)
            c->ok++;
        if (resp != NULL)
            trpctest__v1__echo_response__free_unpacked(resp, NULL);
    }
    return NULL;
}

static void test_load_64_concurrent_callers(void)
{
    ts_server t;
    struct caller c[N_THREADS];
    Trpctest__V1__CountRequest creq = TRPCTEST__V1__COUNT_REQUEST__INIT;
    Trpctest__V1__CountResponse *m;
    trpc_client_stream *s;
    trpc_status st;
    int i, ok = 0, started = 0, n = 0;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    /* a stream runs alongside */
    creq.count = 50;
    creq.interval_ms = 2;
    s = trpctest__v1__test_service__trpc_count(t.ch, &creq, NULL, &st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memset(c, 0, sizeof(c));
    for (i = 0; i < N_THREADS; i++) {
        c[i].t = &t;
        c[i].index = i;
        c[i].mode = TRPCTEST__V1__MODE__MODE_NORMAL;
        if (pthread_create(&c[i].thread, NULL, caller_main, &c[i]) == 0)
            started++;
        else
            break;
    }
    CU_ASSERT_EQUAL_FATAL(started, N_THREADS);
    while (trpctest__v1__test_service__trpc_count_next(s, &m, &st)) {
        n++;
        trpctest__v1__count_response__free_unpacked(m, NULL);
    }
    for (i = 0; i < started; i++) {
        pthread_join(c[i].thread, NULL);
        ok += c[i].ok;
    }
    CU_ASSERT_EQUAL(ok, N_THREADS * N_CALLS);
    CU_ASSERT_EQUAL(n, 50);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_OK);
    trpc_client_stream_free(s);
    CU_ASSERT_EQUAL(ts_get(TS_ECHO_CALLS), N_THREADS * N_CALLS);
    ts_stop(&t);
}

static void test_load_full_pool_queue_is_resource_exhausted(void)
{
    ts_server t;
    trpc_server_opts o = ts_default_opts();
    struct caller a, b, x;

    o.pool_threads = 1;
    o.pool_queue = 1;
    CU_ASSERT_FATAL(ts_start(&t, &o) == 0);
    memset(&a, 0, sizeof(a));
    a.t = &t;
    a.mode = TRPCTEST__V1__MODE__MODE_BLOCK;
    b = a;
    b.index = 1;
    CU_ASSERT_FATAL(pthread_create(&a.thread, NULL, caller_main, &a) == 0);
    CU_ASSERT_EQUAL_FATAL(ts_wait(TS_BLOCKED, 1, 5000), 1); /* the only worker is busy */
    CU_ASSERT_FATAL(pthread_create(&b.thread, NULL, caller_main, &b) == 0);
    ts_sleep_ms(300); /* b waits in the queue, which is now full */

    memset(&x, 0, sizeof(x));
    x.t = &t;
    x.index = 2;
    x.mode = TRPCTEST__V1__MODE__MODE_WORKER;
    caller_main(&x);
    CU_ASSERT_EQUAL(x.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_EQUAL(x.ok, 0);

    ts_open_gate();
    pthread_join(a.thread, NULL);
    pthread_join(b.thread, NULL);
    CU_ASSERT_EQUAL(a.code, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(b.code, GRPC_STATUS_OK);
    /* room again */
    caller_main(&x);
    CU_ASSERT_EQUAL(x.code, GRPC_STATUS_OK);
    ts_stop(&t);
}

static void test_load_worker_init_resources_reach_handlers(void)
{
    ts_server t;
    trpc_server_opts o = ts_default_opts();
    Trpctest__V1__EchoRequest req = TRPCTEST__V1__ECHO_REQUEST__INIT;
    Trpctest__V1__EchoResponse *resp = NULL;
    int i, seen_ok = 1;

    o.pool_threads = 3;
    CU_ASSERT_FATAL(ts_start(&t, &o) == 0);
    CU_ASSERT_EQUAL(ts_get(TS_WORKER_INIT), 3); /* all made before start returned */
    req.mode = TRPCTEST__V1__MODE__MODE_WORKER;
    for (i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL_FATAL(trpctest__v1__test_service__trpc_echo(t.ch, &req, &resp, NULL, NULL),
                              GRPC_STATUS_OK);
        if (strcmp(resp->worker, "worker-0") != 0 && strcmp(resp->worker, "worker-1") != 0 &&
            strcmp(resp->worker, "worker-2") != 0)
            seen_ok = 0;
        trpctest__v1__echo_response__free_unpacked(resp, NULL);
    }
    CU_ASSERT(seen_ok);
    CU_ASSERT_EQUAL(ts_get(TS_WORKER_FINI), 0);
    ts_stop(&t);
    CU_ASSERT_EQUAL(ts_get(TS_WORKER_FINI), 3);
}

static CU_TestInfo load_tests[] = {
    {"64 concurrent callers (and a stream)", test_load_64_concurrent_callers},
    {"full pool queue is RESOURCE_EXHAUSTED", test_load_full_pool_queue_is_resource_exhausted},
    {"worker_init resources reach handlers", test_load_worker_init_resources_reach_handlers},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"trpc pool under load", NULL, NULL, NULL, NULL, load_tests},
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
