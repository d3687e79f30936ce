/* tq_ryw.c - read-your-writes: a command, then at once a read with the
 * command's position as min_position must see it, every time (1,000 times,
 * from 4 client threads at once, each on its own account); and with the
 * projector killed, such a read ends in DEADLINE_EXCEEDED at the call's
 * deadline, every RPC alike, while a read without min_position answers with
 * what the read model has; a read waiting when the projector comes back
 * completes. Tenant W. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcheck.h"
#include "qsuites.h"

#define THREADS    4
#define ITERATIONS 250 /* per thread: 1,000 in all */

static struct qtenant W;
static struct qres accts[THREADS];

int ryw_init(void)
{
    trpc_status st;

    if (qfix_tenant(&W, "ryw") != 0)
        return -1;
    for (int i = 0; i < THREADS; i++)
        if (qc_open(&W, "ryw", "EUR", 0, NULL, &accts[i], &st) != OK) {
            fprintf(stderr, "ryw_init: %s\n", st.msg);
            return -1;
        }
    return 0;
}

struct rywt {
    pthread_t thread;
    int index;
    int done, failed;
    char first_failure[400];
    int64_t max_read_us, sum_read_us;
};

static int64_t now_us(void)
{
    return qfix_mono_ms() * 1000; /* ms resolution is enough for a max */
}

static void fail(struct rywt *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct rywt *t, const char *fmt, ...)
{
    va_list ap;

    if (t->failed++ == 0) {
        va_start(ap, fmt);
        vsnprintf(t->first_failure, sizeof(t->first_failure), fmt, ap);
        va_end(ap);
    }
}

static void *ryw_main(void *arg)
{
    struct rywt *t = arg;
    const char *id = accts[t->index].id;
    int64_t balance = 0;

    for (int i = 1; i <= ITERATIONS; i++) {
        struct qres r;
        trpc_status st;
        Tally__V1__Account *a = NULL;
        int64_t t0, us;

        if (qc_deposit(&W, id, i, "EUR", "ryw", NULL, &r, &st) != OK) {
            fail(t, "deposit %d: %s %s", i, trpc_status_code_name(st.code), st.msg);
            continue;
        }
        balance += i;
        t0 = now_us();
        if (qget_account(&W, id, &r, QFIX_CALL_MS, &a, &st) != OK)
            fail(t, "read %d: %s %s", i, trpc_status_code_name(st.code), st.msg);
        else if (a->version != r.version || a->balance->minor_units != balance)
            fail(t, "read %d: version %" PRId64 " balance %" PRId64 ", wrote %" PRId64 " %" PRId64,
                 i, a->version, a->balance->minor_units, r.version, balance);
        us = now_us() - t0;
        t->sum_read_us += us;
        if (us > t->max_read_us)
            t->max_read_us = us;
        FREE_MSG(a);
        if (i % 10 == 0) { /* the newest ledger line too */
            Tally__V1__ListEntriesRequest req = TALLY__V1__LIST_ENTRIES_REQUEST__INIT;
            Tally__V1__ListEntriesResponse *resp = NULL;
            Tally__V1__Position p;

            req.account_id = (char *)id;
            req.direction = TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS;
            req.page_size = 1;
            req.min_position = qres_pos(&r, &p);
            if (tally__v1__query_service__trpc_list_entries(Q.qch, &req, &resp, &W.opts, &st) != OK)
                fail(t, "entries %d: %s %s", i, trpc_status_code_name(st.code), st.msg);
            else if (resp->n_entries != 1 || resp->entries[0]->version != r.version ||
                     resp->entries[0]->balance_after->minor_units != balance)
                fail(t, "entries %d: %zu lines, newest v%" PRId64, i, resp->n_entries,
                     resp->n_entries ? resp->entries[0]->version : -1);
            FREE_MSG(resp);
        }
        t->done++;
    }
    return NULL;
}

static void test_read_your_writes_1000_times(void)
{
    struct rywt t[THREADS];
    int done = 0, failed = 0;
    int64_t t0 = qfix_mono_ms(), max_us = 0, sum_us = 0;

    memset(t, 0, sizeof(t));
    for (int i = 0; i < THREADS; i++) {
        t[i].index = i;
        pthread_create(&t[i].thread, NULL, ryw_main, &t[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i].thread, NULL);
        done += t[i].done;
        failed += t[i].failed;
        sum_us += t[i].sum_read_us;
        if (t[i].max_read_us > max_us)
            max_us = t[i].max_read_us;
        if (t[i].failed)
            fprintf(stderr, "\n  thread %d: %d failures, first: %s\n", i, t[i].failed,
                    t[i].first_failure);
    }
    CU_ASSERT_EQUAL(done, THREADS * ITERATIONS);
    CU_ASSERT_EQUAL(failed, 0);
    fprintf(stderr, "(%d pairs in %.1f s; read with min_position: mean %.1f ms, max %.1f ms) ",
            done, (double)(qfix_mono_ms() - t0) / 1000, done ? (double)sum_us / done / 1000 : 0.0,
            (double)max_us / 1000);
}

struct waiter {
    pthread_t thread;
    struct qres r;
    grpc_status_code code;
    int64_t version, ms;
    trpc_status st;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    Tally__V1__Account *a = NULL;
    int64_t t0 = qfix_mono_ms();

    w->code = qget_account(&W, accts[0].id, &w->r, 30000, &a, &w->st);
    w->ms = qfix_mono_ms() - t0;
    w->version = a ? a->version : -1;
    FREE_MSG(a);
    return NULL;
}

static void test_deadline_exceeded_while_the_projector_is_down(void)
{
    const trpc_service_desc *svc = &tally__v1__query_service__trpc_service;
    struct qres r, r2;
    trpc_status st;
    Tally__V1__Account *a = NULL;
    struct waiter w;
    int n = 0;

    /* everything so far is projected */
    CU_ASSERT_EQUAL_FATAL(qc_deposit(&W, accts[0].id, 1, "EUR", "before", NULL, &r, &st), OK);
    CHECK_OK(qget_account(&W, accts[0].id, &r, QFIX_CALL_MS, &a, &st), &st);
    FREE_MSG(a);
    CU_ASSERT_EQUAL_FATAL(qfix_projector_kill9(), 0);
    CU_ASSERT_EQUAL_FATAL(qc_deposit(&W, accts[0].id, 1, "EUR", "unseen", NULL, &r2, &st), OK);
    /* GetAccount with the new position: the deadline, not much later */
    for (int i = 0; i < 3; i++) {
        int64_t t0 = qfix_mono_ms(), ms;
        grpc_status_code code = qget_account(&W, accts[0].id, &r2, 300, &a, &st);

        ms = qfix_mono_ms() - t0;
        qcheck_error(__LINE__, "GetAccount(min_position) with the projector down", code, &st,
                     GRPC_STATUS_DEADLINE_EXCEEDED);
        CU_ASSERT(ms >= 250 && ms < 3000);
        FREE_MSG(a);
    }
    /* every RPC that takes min_position */
    for (size_t i = 0; i < svc->n_methods; i++) {
        const trpc_method_desc *m = &svc->methods[i];
        Tally__V1__Position p, buf;
        ProtobufCMessage *req;
        trpc_call_opts o = W.opts;
        trpc_status s2 = {0};
        grpc_status_code code;

        if (!qhas_min_position(m))
            continue;
        n++;
        req = qany_request(m, accts[0].id, r2.corr, qres_pos(&r2, &p), &buf);
        o.timeout_ms = 200;
        code = qcall(m, req, &o, &s2);
        qcheck_error(__LINE__, m->name, code, &s2, GRPC_STATUS_DEADLINE_EXCEEDED);
        free(req);
    }
    CU_ASSERT_EQUAL(n, 11);
    /* without min_position: the read model as it is, one write behind */
    if (CHECK_OK(qget_account(&W, accts[0].id, NULL, QFIX_CALL_MS, &a, &st), &st))
        CU_ASSERT_EQUAL(a->version, r.version);
    FREE_MSG(a);
    /* a read waiting when the projector returns completes, with the write */
    memset(&w, 0, sizeof(w));
    w.r = r2;
    pthread_create(&w.thread, NULL, waiter_main, &w);
    qfix_sleep_ms(500);
    CU_ASSERT_EQUAL(qfix_projector_start(), 0);
    pthread_join(w.thread, NULL);
    CU_ASSERT_EQUAL(w.code, OK);
    if (w.code != OK)
        qreport(__LINE__, "waiting GetAccount", w.code, &w.st);
    CU_ASSERT_EQUAL(w.version, r2.version);
    CU_ASSERT(w.ms >= 450 && w.ms < 25000);
    /* and the next writes are read at once again */
    for (int i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL_FATAL(qc_deposit(&W, accts[0].id, 1, "EUR", "after", NULL, &r, &st), OK);
        if (CHECK_OK(qget_account(&W, accts[0].id, &r, QFIX_CALL_MS, &a, &st), &st))
            CU_ASSERT_EQUAL(a->version, r.version);
        FREE_MSG(a);
    }
}

CU_TestInfo ryw_tests[] = {
    {"a command, then a read at its position: 1,000 times, 4 threads",
     test_read_your_writes_1000_times},
    {"projector killed: DEADLINE_EXCEEDED at the deadline (every RPC); resumes",
     test_deadline_exceeded_while_the_projector_is_down},
    CU_TEST_INFO_NULL,
};
