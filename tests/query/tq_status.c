/* tq_status.c - GetProjectionStatus: lag (events, seconds) and outbox
 * backlog grow while the projector is stopped and return to 0 once it runs
 * again; an old open transaction in another session holds the commit fence
 * back and blocked_reason names it; a poison event is counted as a dead
 * letter until it is retried. Tenant S. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcheck.h"
#include "qsuites.h"

static struct qtenant S;
static struct qres acct;

int status_init(void)
{
    trpc_status st;

    if (qfix_tenant(&S, "status") != 0)
        return -1;
    if (qc_open(&S, "status", "EUR", 0, NULL, &acct, &st) != OK) {
        fprintf(stderr, "status_init: %s\n", st.msg);
        return -1;
    }
    return 0;
}

static Tally__V1__ProjectionStatus *status_now(int line)
{
    Tally__V1__ProjectionStatus *s = NULL;
    trpc_status st;

    if (!qcheck_ok(line, "GetProjectionStatus", qstatus(&S, &s, &st), &st))
        return NULL;
    return s;
}

/* Polls until cond(s) holds (10 s); returns the last status (FREE_MSG). */
static Tally__V1__ProjectionStatus *
status_until(int line, int (*cond)(const Tally__V1__ProjectionStatus *), int timeout_ms)
{
    int64_t deadline = qfix_mono_ms() + timeout_ms;

    for (;;) {
        Tally__V1__ProjectionStatus *s = status_now(line);

        if (s == NULL || cond(s) || qfix_mono_ms() > deadline)
            return s;
        FREE_MSG(s);
        qfix_sleep_ms(50);
    }
}

static int caught_up(const Tally__V1__ProjectionStatus *s)
{
    return s->lag_events == 0 && s->outbox_backlog == 0 && s->blocked_reason[0] == '\0';
}

static void test_lag_and_backlog_while_the_projector_is_stopped(void)
{
    Tally__V1__ProjectionStatus *s0, *s;
    Tally__V1__Position p;
    struct qres r;
    trpc_status st;

    s0 = status_until(__LINE__, caught_up, 15000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s0);
    CU_ASSERT_TRUE(caught_up(s0));
    CU_ASSERT_EQUAL_FATAL(qfix_projector_stop(), 0);
    for (int i = 0; i < 20; i++)
        CU_ASSERT_EQUAL_FATAL(qc_deposit(&S, acct.id, 1, "EUR", "lag", NULL, &r, &st), OK);
    qfix_sleep_ms(1100);
    s = status_now(__LINE__);
    if (s) {
        CU_ASSERT_EQUAL(s->lag_events, 20);
        CU_ASSERT_EQUAL(s->outbox_backlog, 20);
        CU_ASSERT(s->lag_seconds >= 1.0 && s->lag_seconds < 600);
        CU_ASSERT_EQUAL(qpos_cmp(s->checkpoint, s0->checkpoint), 0);
        CU_ASSERT_STRING_EQUAL(s->blocked_reason, "");
        fprintf(stderr, "(stopped: lag %" PRId64 " events %.2f s, backlog %" PRId64 ") ",
                s->lag_events, s->lag_seconds, s->outbox_backlog);
    }
    FREE_MSG(s);
    /* more writes: more lag */
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL_FATAL(qc_deposit(&S, acct.id, 1, "EUR", "lag", NULL, &r, &st), OK);
    s = status_now(__LINE__);
    if (s)
        CU_ASSERT(s->lag_events == 25 && s->outbox_backlog == 25);
    FREE_MSG(s);
    CU_ASSERT_EQUAL_FATAL(qfix_projector_start(), 0);
    s = status_until(__LINE__, caught_up, 15000);
    if (s) {
        CU_ASSERT_TRUE(caught_up(s));
        CU_ASSERT_EQUAL(s->lag_seconds, 0.0);
        CU_ASSERT(qpos_cmp(s->checkpoint, qres_pos(&r, &p)) >= 0);
    }
    FREE_MSG(s);
    FREE_MSG(s0);
}

static int names_backend(const Tally__V1__ProjectionStatus *s, int pid)
{
    char want[48];

    snprintf(want, sizeof(want), "backend %d ", pid);
    return strstr(s->blocked_reason, want) != NULL;
}

static int blocked_pid;

static int blocked(const Tally__V1__ProjectionStatus *s)
{
    return names_backend(s, blocked_pid);
}

/* A transaction with an xid left open in another session: commits after it
 * stay behind the fence (DESIGN §5), so the projector cannot pass them;
 * after 5 s the status says who is to blame. */
static void test_an_old_open_transaction_is_named(void)
{
    PGconn *holder = PQconnectdb(Q.db);
    PGresult *res;
    Tally__V1__ProjectionStatus *s;
    Tally__V1__Account *a = NULL;
    Tally__V1__Event *ev[64];
    Tally__V1__EventFilter f = TALLY__V1__EVENT_FILTER__INIT;
    struct qres r;
    trpc_status st = {0};
    int64_t t0;
    int pages, n;

    CU_ASSERT_EQUAL_FATAL(PQstatus(holder), CONNECTION_OK);
    blocked_pid = PQbackendPID(holder);
    res = PQexec(holder, "BEGIN; SELECT pg_current_xact_id()");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    t0 = qfix_mono_ms();
    CU_ASSERT_EQUAL(qc_deposit(&S, acct.id, 7, "EUR", "fenced", NULL, &r, &st), OK);
    /* committed, but behind the fence: not projected, not in the log reads */
    {
        grpc_status_code code = qget_account(&S, acct.id, &r, 500, &a, &st);

        qcheck_error(__LINE__, "GetAccount past the fence", code, &st,
                     GRPC_STATUS_DEADLINE_EXCEEDED);
        FREE_MSG(a);
    }
    f.aggregate_id = acct.id;
    n = qread_all(&S, &f, 0, ev, 64, NULL, &pages);
    CU_ASSERT(n > 0);
    for (int i = 0; i < n; i++)
        CU_ASSERT(ev[i]->position->global_position != r.gp);
    qevents_free(ev, n > 0 ? n : 0);
    /* not named before 5 s, named after */
    s = status_now(__LINE__);
    if (s && qfix_mono_ms() - t0 < 4000)
        CU_ASSERT_FALSE(names_backend(s, blocked_pid));
    FREE_MSG(s);
    qfix_sleep_ms(5500 - (qfix_mono_ms() - t0) > 0 ? 5500 - (qfix_mono_ms() - t0) : 0);
    s = status_until(__LINE__, blocked, 5000);
    if (s) {
        CU_ASSERT_TRUE(names_backend(s, blocked_pid));
        CU_ASSERT(s->lag_events >= 1);
        fprintf(stderr, "(blocked_reason: \"%s\", lag %" PRId64 ") ", s->blocked_reason,
                s->lag_events);
    }
    FREE_MSG(s);
    /* released: the write arrives, the reason goes */
    res = PQexec(holder, "ROLLBACK");
    PQclear(res);
    PQfinish(holder);
    if (CHECK_OK(qget_account(&S, acct.id, &r, QFIX_CALL_MS, &a, &st), &st))
        CU_ASSERT_EQUAL(a->version, r.version);
    FREE_MSG(a);
    s = status_until(__LINE__, caught_up, 15000);
    if (s)
        CU_ASSERT_TRUE(caught_up(s));
    FREE_MSG(s);
    n = qread_all(&S, &f, 0, ev, 64, NULL, &pages);
    CU_ASSERT(n > 0 && ev[n - 1]->position->global_position == r.gp);
    qevents_free(ev, n > 0 ? n : 0);
}

static int has_dead_letter(const Tally__V1__ProjectionStatus *s)
{
    return s->dead_letters >= 1;
}

static int no_dead_letter(const Tally__V1__ProjectionStatus *s)
{
    return s->dead_letters == 0;
}

/* The read model refuses one line (a CHECK added by hand): the event
 * becomes a dead letter after the projector's attempts (2 here); once the
 * cause is gone, `tally-admin dead-letters retry --all` applies it. */
static void test_dead_letters_counted(void)
{
    const char *admin = harness_admin_path();
    const char *argv[] = {admin, "--db", Q.db, "dead-letters", "retry", "--all", NULL};
    Tally__V1__ProjectionStatus *s;
    Tally__V1__Account *a = NULL;
    struct qres poison, r;
    trpc_status st;
    char *out = NULL, *err = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(admin);
    PQclear(qsql("ALTER TABLE rm.entries ADD CONSTRAINT tq_poison CHECK (reference <> 'tq-poison')",
                 NULL));
    CU_ASSERT_EQUAL_FATAL(qc_deposit(&S, acct.id, 11, "EUR", "tq-poison", NULL, &poison, &st), OK);
    s = status_until(__LINE__, has_dead_letter, 15000);
    if (s)
        CU_ASSERT_EQUAL(s->dead_letters, 1);
    FREE_MSG(s);
    PQclear(qsql("ALTER TABLE rm.entries DROP CONSTRAINT tq_poison", NULL));
    CU_ASSERT_EQUAL(harness_run(argv, NULL, 60000, &out, &err), 0);
    free(out);
    free(err);
    s = status_until(__LINE__, no_dead_letter, 15000);
    if (s)
        CU_ASSERT_EQUAL(s->dead_letters, 0);
    FREE_MSG(s);
    /* the account has its deposit again, and later ones */
    CU_ASSERT_EQUAL_FATAL(qc_deposit(&S, acct.id, 1, "EUR", "after", NULL, &r, &st), OK);
    if (CHECK_OK(qget_account(&S, acct.id, &r, QFIX_CALL_MS, &a, &st), &st))
        CU_ASSERT_EQUAL(a->version, r.version);
    FREE_MSG(a);
}

CU_TestInfo status_tests[] = {
    {"lag and outbox backlog grow while the projector is stopped, then drain",
     test_lag_and_backlog_while_the_projector_is_stopped},
    {"an open transaction older than 5 s is named in blocked_reason",
     test_an_old_open_transaction_is_named},
    {"dead letters are counted until retried", test_dead_letters_counted},
    CU_TEST_INFO_NULL,
};
