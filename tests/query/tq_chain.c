/* tq_chain.c - ListEventsByCorrelation shows a transfer's whole chain once
 * its saga ran: request, debit, credit or reversal, outcome, in log order,
 * each saga step caused by the event before it; and GetTransfer /
 * GetOperation agree. Tenant C. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcheck.h"
#include "qsuites.h"

static struct qtenant C;
static struct qres src, dst, frz;

int chain_init(void)
{
    trpc_status st;

    if (qfix_tenant(&C, "chain") != 0)
        return -1;
    if (qc_open(&C, "src", "EUR", 0, NULL, &src, &st) != OK ||
        qc_open(&C, "dst", "EUR", 0, NULL, &dst, &st) != OK ||
        qc_open(&C, "frozen", "EUR", 0, NULL, &frz, &st) != OK ||
        qc_deposit(&C, src.id, 1000, "EUR", "seed", NULL, NULL, &st) != OK ||
        qc_status(&C, QC_FREEZE, frz.id, NULL, NULL, &st) != OK) {
        fprintf(stderr, "chain_init: %s\n", st.msg);
        return -1;
    }
    return 0;
}

/* One expected link: event type, aggregate. */
struct link {
    const char *type;
    const char *aggregate_id;
};

/* ListEventsByCorrelation(corr) until it holds n events (the saga's last
 * commits may still be behind the commit fence for a moment), 10 s. */
static Tally__V1__ListEventsByCorrelationResponse *chain_of(const char *corr, size_t n, int limit)
{
    int64_t deadline = qfix_mono_ms() + 10000;

    for (;;) {
        Tally__V1__ListEventsByCorrelationRequest req =
            TALLY__V1__LIST_EVENTS_BY_CORRELATION_REQUEST__INIT;
        Tally__V1__ListEventsByCorrelationResponse *resp = NULL;
        trpc_status st;

        req.correlation_id = (char *)corr;
        req.limit = limit;
        if (!CHECK_OK(tally__v1__query_service__trpc_list_events_by_correlation(Q.qch, &req, &resp,
                                                                                &C.opts, &st),
                      &st))
            return NULL;
        if (resp->n_events >= n || qfix_mono_ms() > deadline)
            return resp;
        FREE_MSG(resp);
        qfix_sleep_ms(20);
    }
}

static void check_chain(int line, const struct qres *t, const struct link *want, size_t n,
                        int compensated)
{
    Tally__V1__ListEventsByCorrelationResponse *r = chain_of(t->corr, n, 0);
    int ok;

    CHECK(line, r != NULL);
    if (r == NULL)
        return;
    ok = r->n_events == n;
    for (size_t i = 0; ok && i < n; i++) {
        const Tally__V1__Event *e = r->events[i];

        ok = strcmp(e->event_type, want[i].type) == 0 &&
             strcmp(e->aggregate_id, want[i].aggregate_id) == 0 &&
             strcmp(e->tenant_id, C.id) == 0 && strcmp(e->metadata->correlation_id, t->corr) == 0 &&
             (i == 0 || qpos_cmp(r->events[i - 1]->position, e->position) < 0) &&
             /* each saga step was caused by the event before it */
             (i == 0 || strcmp(e->metadata->causation_id, r->events[i - 1]->event_id) == 0);
    }
    CHECK(line, ok);
    if (!ok) {
        fprintf(stderr, "\n  line %d: chain of %s:\n", line, t->corr);
        for (size_t i = 0; i < r->n_events; i++)
            fprintf(stderr, "    %s %.8s caused by %.8s\n", r->events[i]->event_type,
                    r->events[i]->aggregate_id, r->events[i]->metadata->causation_id);
    }
    if (ok) {
        const Tally__V1__Event *first = r->events[0], *last = r->events[n - 1];

        /* the request is the Transfer command's; its payload is complete */
        CHECK(line, strcmp(first->operation_id, t->op) == 0 && first->version == 1);
        CHECK(line, first->payload_case == TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED &&
                        strcmp(first->transfer_requested->source_account_id, src.id) == 0);
        CHECK(line, strcmp(last->aggregate_id, t->id) == 0 && last->version == 2);
        if (compensated >= 0) {
            CHECK(line, last->payload_case == TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED &&
                            last->transfer_failed->compensated == (compensated != 0) &&
                            last->transfer_failed->reason[0] != '\0');
        }
        /* the same events through ReadAll's correlation filter */
        {
            Tally__V1__Event *ev[16];
            Tally__V1__EventFilter f = TALLY__V1__EVENT_FILTER__INIT;
            int pages, m;

            f.correlation_id = (char *)t->corr;
            m = qread_all(&C, &f, 0, ev, 16, NULL, &pages);
            CHECK(line, m == (int)n);
            for (int i = 0; i < m && i < (int)n; i++)
                CHECK(line, strcmp(ev[i]->event_id, r->events[i]->event_id) == 0);
            qevents_free(ev, m > 0 ? m : 0);
        }
    }
    FREE_MSG(r);
}

static void check_transfer_read(int line, const struct qres *t, const struct qres *sync,
                                Tally__V1__TransferState state, Tally__V1__OperationStatus status)
{
    Tally__V1__GetTransferRequest req = TALLY__V1__GET_TRANSFER_REQUEST__INIT;
    Tally__V1__GetOperationRequest oreq = TALLY__V1__GET_OPERATION_REQUEST__INIT;
    Tally__V1__Transfer *x = NULL;
    Tally__V1__Operation *o = NULL;
    Tally__V1__Position p;
    trpc_status st;

    req.transfer_id = (char *)t->id;
    req.min_position = qres_pos(sync, &p);
    if (qcheck_ok(line, "GetTransfer",
                  tally__v1__query_service__trpc_get_transfer(Q.qch, &req, &x, &C.opts, &st),
                  &st)) {
        CHECK(line, x->state == state && x->status == status);
        if (x->state != state || x->status != status)
            fprintf(stderr, "\n  line %d: state %d status %d\n", line, (int)x->state,
                    (int)x->status);
    }
    FREE_MSG(x);
    oreq.operation_id = (char *)t->op;
    if (qcheck_ok(line, "GetOperation",
                  tally__v1__query_service__trpc_get_operation(Q.qch, &oreq, &o, &C.opts, &st),
                  &st))
        CHECK(line, o->status == status && strcmp(o->aggregate_id, t->id) == 0);
    FREE_MSG(o);
}

static void test_chain_completed(void)
{
    struct qres t, sync;
    trpc_status st;
    char corr[64];

    snprintf(corr, sizeof(corr), "chain-ok-%d", (int)getpid());
    if (!CHECK_OK(qc_transfer(&C, src.id, dst.id, 100, "EUR", 1, corr, &t, &st), &st))
        return;
    CU_ASSERT_EQUAL(t.status, TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED);
    CU_ASSERT_STRING_EQUAL(t.corr, corr);
    {
        const struct link l[] = {{"TransferRequested", t.id},
                                 {"TransferDebited", src.id},
                                 {"TransferCredited", dst.id},
                                 {"TransferCompleted", t.id}};

        check_chain(__LINE__, &t, l, 4, -1);
    }
    /* a limit cuts the chain from its start */
    {
        Tally__V1__ListEventsByCorrelationResponse *r = chain_of(corr, 2, 2);

        CU_ASSERT(r && r->n_events == 2 &&
                  strcmp(r->events[0]->event_type, "TransferRequested") == 0 &&
                  strcmp(r->events[1]->event_type, "TransferDebited") == 0);
        FREE_MSG(r);
    }
    CU_ASSERT_EQUAL_FATAL(qc_deposit(&C, dst.id, 1, "EUR", "sync", NULL, &sync, &st), OK);
    check_transfer_read(__LINE__, &t, &sync, TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_COMPLETED,
                        TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED);
}

static void test_chain_reversed(void)
{
    struct qres t, sync;
    trpc_status st;

    if (!CHECK_OK(qc_transfer(&C, src.id, frz.id, 50, "EUR", 1, NULL, &t, &st), &st))
        return;
    CU_ASSERT_EQUAL(t.status, TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED);
    {
        const struct link l[] = {{"TransferRequested", t.id},
                                 {"TransferDebited", src.id},
                                 {"TransferDebitReversed", src.id},
                                 {"TransferFailed", t.id}};

        check_chain(__LINE__, &t, l, 4, 1);
    }
    CU_ASSERT_EQUAL_FATAL(qc_deposit(&C, dst.id, 1, "EUR", "sync", NULL, &sync, &st), OK);
    check_transfer_read(__LINE__, &t, &sync, TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_FAILED,
                        TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED);
}

static void test_chain_refused(void)
{
    struct qres t, sync;
    trpc_status st;

    if (!CHECK_OK(qc_transfer(&C, src.id, dst.id, 1000000, "EUR", 1, NULL, &t, &st), &st))
        return;
    CU_ASSERT_EQUAL(t.status, TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(t.reason, "insufficient"));
    {
        const struct link l[] = {{"TransferRequested", t.id}, {"TransferFailed", t.id}};

        check_chain(__LINE__, &t, l, 2, 0);
    }
    CU_ASSERT_EQUAL_FATAL(qc_deposit(&C, dst.id, 1, "EUR", "sync", NULL, &sync, &st), OK);
    check_transfer_read(__LINE__, &t, &sync, TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_FAILED,
                        TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED);
}

/* Without wait: the transfer is readable at once with its position; the
 * chain completes as the saga runs. */
static void test_transfer_readable_at_its_position(void)
{
    for (int i = 0; i < 5; i++) {
        struct qres t;
        trpc_status st;
        Tally__V1__GetTransferRequest req = TALLY__V1__GET_TRANSFER_REQUEST__INIT;
        Tally__V1__Transfer *x = NULL;
        Tally__V1__Position p;

        if (!CHECK_OK(qc_transfer(&C, src.id, dst.id, 1, "EUR", 0, NULL, &t, &st), &st))
            return;
        CU_ASSERT_EQUAL(t.status, TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_PENDING);
        req.transfer_id = t.id;
        req.min_position = qres_pos(&t, &p);
        if (CHECK_OK(tally__v1__query_service__trpc_get_transfer(Q.qch, &req, &x, &C.opts, &st),
                     &st)) {
            CU_ASSERT_STRING_EQUAL(x->source_account_id, src.id);
            CU_ASSERT(x->amount && x->amount->minor_units == 1);
            CU_ASSERT(x->state >= TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_REQUESTED);
        }
        FREE_MSG(x);
        {
            Tally__V1__ListEventsByCorrelationResponse *r = chain_of(t.corr, 4, 0);

            CU_ASSERT(r && r->n_events == 4 &&
                      strcmp(r->events[3]->event_type, "TransferCompleted") == 0);
            FREE_MSG(r);
        }
    }
}

CU_TestInfo chain_tests[] = {
    {"completed: requested, debited, credited, completed", test_chain_completed},
    {"credit refused: requested, debited, reversed, failed", test_chain_reversed},
    {"debit refused: requested, failed", test_chain_refused},
    {"a transfer is readable at its own position; its chain completes",
     test_transfer_readable_at_its_position},
    CU_TEST_INFO_NULL,
};
