/* test_query.c - the QueryService over real gRPC against the real
 * tally-query, with tally-command writing and tally-projector maintaining
 * the read model (all three started by the harness on one fresh migrated
 * database; qfix.h).
 *
 * Suites (each on its own tenant(s) in that database):
 *   read model and log  every RPC and every filter on a known history
 *   errors              every error of every RPC, forged page tokens
 *   isolation           a second tenant sees nothing of the first, per RPC
 *   chain               ListEventsByCorrelation: each saga's whole chain
 *   paging              ListAccounts / ListEntries paged while rows arrive
 *   history             GetAccountAt across snapshots, by version and time
 *   read your writes    1,000 command+read pairs; DEADLINE_EXCEEDED when the
 *                       projector is down
 *   projection status   lag, backlog, an old transaction, dead letters
 *   shutdown            every daemon exits 0 with no sanitizer report
 *
 * `test_query "<suite>"` runs one suite (the fixture starts anyway). CUnit
 * asserts run on the main thread only. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "qcheck.h"
#include "qsuites.h"

/* ---- the read-model suite: a known history on tenant R ----
 *
 *   a1 alice EUR overdraft 500: open v1, deposit 1000 "salary" v2, withdraw
 *      300 "atm" v3, pay 200 "shop-1" v4, refund 50 v5, transfer t1 -> a2
 *      250 (v6), transfer t2 -> a4 100 debited (v7) and reversed (v8):
 *      balance 300
 *   a2 bob EUR: open v1, t1 credited 250 v2; t3 a2 -> a1 10000 refused
 *   a3 alice USD: open v1, deposit 700 "usd-in" v2 (the last command)
 *   a4 carol EUR: open v1, frozen v2
 *   a5 dave EUR: open v1, closed v2 */

#define R (&RD.t)

static int need(grpc_status_code code, const trpc_status *st, const char *what)
{
    if (code != OK)
        fprintf(stderr, "rm_init: %s: %s %s\n", what, trpc_status_code_name(code), st->msg);
    return code == OK ? 0 : -1;
}

int rm_init(void)
{
    trpc_status st = {0};

    if (RD.ready)
        return 0;
    snprintf(RD.corr_t1, sizeof(RD.corr_t1), "rm-t1-%d", (int)getpid());
    if (qfix_tenant(&RD.t, "rm-tenant") != 0 ||
        need(qc_open(R, "alice", "EUR", 500, NULL, &RD.a1, &st), &st, "open a1") ||
        need(qc_open(R, "bob", "EUR", 0, NULL, &RD.a2, &st), &st, "open a2") ||
        need(qc_open(R, "alice", "USD", 0, NULL, &RD.a3, &st), &st, "open a3") ||
        need(qc_open(R, "carol", "EUR", 0, NULL, &RD.a4, &st), &st, "open a4") ||
        need(qc_open(R, "dave", "EUR", 0, NULL, &RD.a5, &st), &st, "open a5") ||
        need(qc_deposit(R, RD.a1.id, 1000, "EUR", "salary", NULL, &RD.dep, &st), &st, "deposit") ||
        need(qc_withdraw(R, RD.a1.id, 300, "EUR", "atm", NULL, &RD.wd, &st), &st, "withdraw") ||
        need(qc_pay(R, RD.a1.id, 200, "EUR", "shop-1", NULL, &RD.pay, &st), &st, "pay") ||
        need(qc_refund(R, RD.a1.id, RD.pay.id, 50, "EUR", NULL, &RD.refund, &st), &st, "refund") ||
        need(qc_status(R, QC_FREEZE, RD.a4.id, NULL, &RD.frz, &st), &st, "freeze") ||
        need(qc_status(R, QC_CLOSE, RD.a5.id, NULL, &RD.cls, &st), &st, "close") ||
        need(qc_transfer(R, RD.a1.id, RD.a2.id, 250, "EUR", 1, RD.corr_t1, &RD.t1, &st), &st,
             "transfer t1") ||
        need(qc_transfer(R, RD.a1.id, RD.a4.id, 100, "EUR", 1, NULL, &RD.t2, &st), &st,
             "transfer t2") ||
        need(qc_transfer(R, RD.a2.id, RD.a1.id, 10000, "EUR", 1, NULL, &RD.t3, &st), &st,
             "transfer t3") ||
        need(qc_deposit(R, RD.a3.id, 700, "USD", "usd-in", NULL, &RD.usd, &st), &st, "deposit usd"))
        return -1;
    if (RD.t1.status != TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED ||
        RD.t2.status != TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED ||
        RD.t3.status != TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED) {
        fprintf(stderr, "rm_init: transfers ended %d %d %d\n", RD.t1.status, RD.t2.status,
                RD.t3.status);
        return -1;
    }
    RD.ready = 1;
    return 0;
}

/* The last command: every read below waits for it, so the read model holds
 * the whole history (its transaction began after the sagas ended). */
#define SYNC (&RD.usd)

static void check_account(int line, const Tally__V1__Account *a, const char *id, const char *owner,
                          const char *currency, Tally__V1__AccountStatus status, int64_t balance,
                          int64_t overdraft, int64_t version)
{
    int64_t now = qfix_now_us(), opened, updated;

    CHECK(line, a != NULL);
    if (a == NULL)
        return;
    opened = qts_us(a->opened_at);
    updated = qts_us(a->updated_at);
    CHECK(line, strcmp(a->account_id, id) == 0);
    CHECK(line, strcmp(a->owner, owner) == 0);
    CHECK(line, strcmp(a->currency, currency) == 0);
    CHECK(line, a->status == status);
    CHECK(line, a->balance != NULL && a->balance->minor_units == balance &&
                    strcmp(a->balance->currency, currency) == 0);
    CHECK(line, a->overdraft_limit == overdraft);
    CHECK(line, a->version == version);
    CHECK(line, llabs(opened - now) < 600LL * 1000000);
    CHECK(line, updated >= opened && updated <= now + 60LL * 1000000);
    if (a->version != version || a->balance == NULL || a->balance->minor_units != balance ||
        a->status != status)
        fprintf(stderr,
                "\n  line %d: account %s: version %" PRId64 " balance %" PRId64
                " status %d, want %" PRId64 " %" PRId64 " %d\n",
                line, id, a->version, a->balance ? a->balance->minor_units : -1, (int)a->status,
                version, balance, (int)status);
}

static void test_get_account(void)
{
    static const struct {
        struct qres *acc;
        const char *owner, *cur;
        Tally__V1__AccountStatus status;
        int64_t balance, overdraft, version;
    } want[] = {
        {&RD.a1, "alice", "EUR", TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN, 300, 500, 8},
        {&RD.a2, "bob", "EUR", TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN, 250, 0, 2},
        {&RD.a3, "alice", "USD", TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN, 700, 0, 2},
        {&RD.a4, "carol", "EUR", TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_FROZEN, 0, 0, 2},
        {&RD.a5, "dave", "EUR", TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_CLOSED, 0, 0, 2},
    };
    Tally__V1__Account *a = NULL;
    trpc_status st;
    char upper[QFIX_ID];

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (CHECK_OK(qget_account(R, want[i].acc->id, SYNC, QFIX_CALL_MS, &a, &st), &st))
            check_account(__LINE__, a, want[i].acc->id, want[i].owner, want[i].cur, want[i].status,
                          want[i].balance, want[i].overdraft, want[i].version);
        FREE_MSG(a);
    }
    /* ids are case-insensitive; the reply is canonical */
    for (size_t i = 0; i <= strlen(RD.a1.id); i++)
        upper[i] =
            (char)(RD.a1.id[i] >= 'a' && RD.a1.id[i] <= 'f' ? RD.a1.id[i] - 32 : RD.a1.id[i]);
    if (CHECK_OK(qget_account(R, upper, NULL, QFIX_CALL_MS, &a, &st), &st))
        CU_ASSERT_STRING_EQUAL(a->account_id, RD.a1.id);
    FREE_MSG(a);
    /* opened_at is the AccountOpened's time, updated_at the last event's */
    if (CHECK_OK(qget_account(R, RD.a1.id, NULL, QFIX_CALL_MS, &a, &st), &st)) {
        int64_t opened = qsql_int("SELECT (extract(epoch FROM recorded_at) * 1000000)::bigint"
                                  "  FROM events WHERE aggregate_id = $1::uuid AND version = 1",
                                  RD.a1.id, NULL);
        int64_t updated = qsql_int("SELECT (extract(epoch FROM recorded_at) * 1000000)::bigint"
                                   "  FROM events WHERE aggregate_id = $1::uuid AND version = 8",
                                   RD.a1.id, NULL);

        CU_ASSERT_EQUAL(qts_us(a->opened_at), opened);
        CU_ASSERT_EQUAL(qts_us(a->updated_at), updated);
    }
    FREE_MSG(a);
}

/* Pages through ListAccounts and compares the ids with want (in order). */
static void check_list(int line, int status, const char *owner, const char *currency, int page_size,
                       const struct qres *const *want, int n_want, int want_pages)
{
    char ids[16][QFIX_ID];
    int pages = 0,
        n = qlist_accounts_all(R, status, owner, currency, page_size, SYNC, ids, 16, &pages);
    int same = n == n_want;

    for (int i = 0; same && i < n; i++)
        same = strcmp(ids[i], want[i]->id) == 0;
    CHECK(line, same);
    if (!same) {
        fprintf(stderr, "\n  line %d: ListAccounts gave %d accounts:", line, n);
        for (int i = 0; i < n; i++)
            fprintf(stderr, " %.8s", ids[i]);
        fprintf(stderr, "; want %d:", n_want);
        for (int i = 0; i < n_want; i++)
            fprintf(stderr, " %.8s", want[i]->id);
        fputc('\n', stderr);
    }
    if (want_pages > 0) {
        CHECK(line, pages == want_pages);
        if (pages != want_pages)
            fprintf(stderr, "\n  line %d: %d pages, want %d\n", line, pages, want_pages);
    }
}

static void test_list_accounts_filters_and_pages(void)
{
    const struct qres *all[] = {&RD.a1, &RD.a2, &RD.a3, &RD.a4, &RD.a5};
    const struct qres *open[] = {&RD.a1, &RD.a2, &RD.a3};
    const struct qres *frozen[] = {&RD.a4}, *closed[] = {&RD.a5};
    const struct qres *alice[] = {&RD.a1, &RD.a3}, *usd[] = {&RD.a3}, *alice_eur[] = {&RD.a1};
    const struct qres *eur_open[] = {&RD.a1, &RD.a2};
    enum {
        OPEN = TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN,
        FROZEN = TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_FROZEN,
        CLOSED = TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_CLOSED,
    };

    /* oldest first; default page (50) holds them all */
    check_list(__LINE__, 0, NULL, NULL, 0, all, 5, 1);
    /* pages of 2: 2 + 2 + 1, the last with no token; a page that ends
     * exactly at the last row has no token either */
    check_list(__LINE__, 0, NULL, NULL, 2, all, 5, 3);
    check_list(__LINE__, 0, NULL, NULL, 5, all, 5, 1);
    check_list(__LINE__, 0, NULL, NULL, 1, all, 5, 5);
    check_list(__LINE__, 0, NULL, NULL, 1000, all, 5, 1);
    /* each filter, and filters together */
    check_list(__LINE__, OPEN, NULL, NULL, 0, open, 3, 1);
    check_list(__LINE__, OPEN, NULL, NULL, 2, open, 3, 2);
    check_list(__LINE__, FROZEN, NULL, NULL, 0, frozen, 1, 1);
    check_list(__LINE__, CLOSED, NULL, NULL, 0, closed, 1, 1);
    check_list(__LINE__, 0, "alice", NULL, 1, alice, 2, 2);
    check_list(__LINE__, 0, NULL, "USD", 0, usd, 1, 1);
    check_list(__LINE__, 0, "alice", "EUR", 0, alice_eur, 1, 1);
    check_list(__LINE__, OPEN, NULL, "EUR", 1, eur_open, 2, 2);
    check_list(__LINE__, 0, "nobody", NULL, 0, NULL, 0, 1);
    check_list(__LINE__, FROZEN, "alice", NULL, 0, NULL, 0, 1);
    check_list(__LINE__, 0, NULL, "JPY", 0, NULL, 0, 1);
    /* the owner filter is an exact match, not a prefix or pattern */
    check_list(__LINE__, 0, "ali", NULL, 0, NULL, 0, 1);
    check_list(__LINE__, 0, "%", NULL, 0, NULL, 0, 1);
}

/* The page size may change from page to page (only the filters must stay). */
static void test_list_accounts_page_size_may_change(void)
{
    Tally__V1__ListAccountsRequest req = TALLY__V1__LIST_ACCOUNTS_REQUEST__INIT;
    Tally__V1__ListAccountsResponse *p1 = NULL, *p2 = NULL;
    trpc_status st;

    req.page_size = 1;
    if (!CHECK_OK(tally__v1__query_service__trpc_list_accounts(Q.qch, &req, &p1, &R->opts, &st),
                  &st))
        return;
    req.page_size = 10;
    req.page_token = p1->next_page_token;
    if (CHECK_OK(tally__v1__query_service__trpc_list_accounts(Q.qch, &req, &p2, &R->opts, &st),
                 &st)) {
        CU_ASSERT_EQUAL(p2->n_accounts, 4);
        CU_ASSERT_STRING_EQUAL(p2->next_page_token, "");
        if (p2->n_accounts == 4)
            CU_ASSERT_STRING_EQUAL(p2->accounts[0]->account_id, RD.a2.id);
    }
    FREE_MSG(p1);
    FREE_MSG(p2);
}

/* One expected ledger line of a1. */
struct want_entry {
    int64_t version;
    Tally__V1__EntryKind kind;
    int64_t amount, balance;
    const char *counterpart, *reference, *op, *corr;
};

static void check_entry(int line, const Tally__V1__Entry *e, const char *account,
                        const struct want_entry *w)
{
    int ok = e->version == w->version && e->kind == w->kind && e->amount &&
             e->amount->minor_units == w->amount && strcmp(e->amount->currency, "EUR") == 0 &&
             e->balance_after && e->balance_after->minor_units == w->balance &&
             strcmp(e->account_id, account) == 0 &&
             strcmp(e->counterpart_account_id, w->counterpart ? w->counterpart : "") == 0 &&
             strcmp(e->reference, w->reference) == 0 && strlen(e->operation_id) == 36 &&
             (w->op == NULL || strcmp(e->operation_id, w->op) == 0) &&
             strcmp(e->correlation_id, w->corr) == 0 && e->position != NULL &&
             e->position->tx_id > 0 && e->position->global_position > 0 && e->recorded_at != NULL;

    CHECK(line, ok);
    if (!ok)
        fprintf(stderr,
                "\n  line %d: entry v%" PRId64 " kind %d amount %" PRId64 " balance %" PRId64
                " counterpart \"%s\" reference \"%s\" op %s corr \"%s\"; want v%" PRId64
                " kind %d %" PRId64 " %" PRId64 " \"%s\" \"%s\" %s \"%s\"\n",
                line, e->version, (int)e->kind, e->amount ? e->amount->minor_units : 0,
                e->balance_after ? e->balance_after->minor_units : 0, e->counterpart_account_id,
                e->reference, e->operation_id, e->correlation_id, w->version, (int)w->kind,
                w->amount, w->balance, w->counterpart ? w->counterpart : "", w->reference,
                w->op ? w->op : "(any)", w->corr);
}

static void test_list_entries(void)
{
    const struct want_entry want[] = {
        {2, TALLY__V1__ENTRY_KIND__ENTRY_KIND_DEPOSIT, 1000, 1000, NULL, "salary", RD.dep.op,
         RD.dep.corr},
        {3, TALLY__V1__ENTRY_KIND__ENTRY_KIND_WITHDRAWAL, -300, 700, NULL, "atm", RD.wd.op,
         RD.wd.corr},
        {4, TALLY__V1__ENTRY_KIND__ENTRY_KIND_PAYMENT, -200, 500, NULL, "shop-1", RD.pay.op,
         RD.pay.corr},
        {5, TALLY__V1__ENTRY_KIND__ENTRY_KIND_REFUND, 50, 550, NULL, RD.pay.id, RD.refund.op,
         RD.refund.corr},
        {6, TALLY__V1__ENTRY_KIND__ENTRY_KIND_TRANSFER_OUT, -250, 300, RD.a2.id, RD.t1.id, NULL,
         RD.t1.corr},
        {7, TALLY__V1__ENTRY_KIND__ENTRY_KIND_TRANSFER_OUT, -100, 200, RD.a4.id, RD.t2.id, NULL,
         RD.t2.corr},
        {8, TALLY__V1__ENTRY_KIND__ENTRY_KIND_TRANSFER_REVERSAL, 100, 300, RD.a4.id, RD.t2.id, NULL,
         RD.t2.corr},
    };
    const struct want_entry in = {2,        TALLY__V1__ENTRY_KIND__ENTRY_KIND_TRANSFER_IN,
                                  250,      250,
                                  RD.a1.id, RD.t1.id,
                                  NULL,     RD.t1.corr};
    Tally__V1__Entry *e[16];
    int64_t v[16], rec[9] = {0};
    int pages, n;

    /* forwards, one page */
    n = qlist_entries_all(R, RD.a1.id, 0, 0, 0, 0, SYNC, v, e, 16, &pages);
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT_EQUAL(pages, 1);
    for (int i = 0; i < n && i < 7; i++) {
        check_entry(__LINE__, e[i], RD.a1.id, &want[i]);
        rec[e[i]->version] = qts_us(e[i]->recorded_at);
        if (i > 0) {
            CU_ASSERT(qpos_cmp(e[i - 1]->position, e[i]->position) < 0);
            CU_ASSERT(rec[e[i]->version] > rec[e[i - 1]->version]);
        }
    }
    /* the lines of the two saga steps are different operations */
    if (n == 7)
        CU_ASSERT_STRING_NOT_EQUAL(e[4]->operation_id, e[5]->operation_id);
    qentries_free(e, n > 0 ? n : 0);
    /* backwards, one page */
    n = qlist_entries_all(R, RD.a1.id, 1, 0, 0, 0, SYNC, v, e, 16, &pages);
    CU_ASSERT_EQUAL(n, 7);
    for (int i = 0; i < n && i < 7; i++)
        check_entry(__LINE__, e[i], RD.a1.id, &want[6 - i]);
    qentries_free(e, n > 0 ? n : 0);
    /* pages of 3, both ways */
    n = qlist_entries_all(R, RD.a1.id, 0, 0, 0, 3, NULL, v, NULL, 16, &pages);
    CU_ASSERT(n == 7 && pages == 3 && v[0] == 2 && v[3] == 5 && v[6] == 8);
    n = qlist_entries_all(R, RD.a1.id, 1, 0, 0, 3, NULL, v, NULL, 16, &pages);
    CU_ASSERT(n == 7 && pages == 3 && v[0] == 8 && v[3] == 5 && v[6] == 2);
    n = qlist_entries_all(R, RD.a1.id, 0, 0, 0, 7, NULL, v, NULL, 16, &pages);
    CU_ASSERT(n == 7 && pages == 1);
    /* time ranges [from, to): from v4 to v6 is v4, v5 */
    n = qlist_entries_all(R, RD.a1.id, 0, rec[4], rec[6], 0, NULL, v, NULL, 16, &pages);
    CU_ASSERT(n == 2 && v[0] == 4 && v[1] == 5);
    n = qlist_entries_all(R, RD.a1.id, 1, rec[4], rec[6], 1, NULL, v, NULL, 16, &pages);
    CU_ASSERT(n == 2 && v[0] == 5 && v[1] == 4 && pages == 2);
    n = qlist_entries_all(R, RD.a1.id, 0, rec[4], rec[6], 1, NULL, v, NULL, 16, &pages);
    CU_ASSERT(n == 2 && v[0] == 4 && v[1] == 5 && pages == 2);
    /* one microsecond either side moves the bounds */
    n = qlist_entries_all(R, RD.a1.id, 0, rec[4] + 1, rec[6] + 1, 0, NULL, v, NULL, 16, &pages);
    CU_ASSERT(n == 2 && v[0] == 5 && v[1] == 6);
    /* only from, only to */
    n = qlist_entries_all(R, RD.a1.id, 0, rec[7], 0, 0, NULL, v, NULL, 16, &pages);
    CU_ASSERT(n == 2 && v[0] == 7 && v[1] == 8);
    n = qlist_entries_all(R, RD.a1.id, 0, 0, rec[3], 0, NULL, v, NULL, 16, &pages);
    CU_ASSERT(n == 1 && v[0] == 2);
    /* a range with nothing in it */
    n = qlist_entries_all(R, RD.a1.id, 0, rec[8] + 1, rec[8] + 1000000, 0, NULL, v, NULL, 16,
                          &pages);
    CU_ASSERT_EQUAL(n, 0);
    /* the credit side of t1 */
    n = qlist_entries_all(R, RD.a2.id, 0, 0, 0, 0, NULL, v, e, 16, &pages);
    CU_ASSERT_EQUAL(n, 1);
    if (n == 1)
        check_entry(__LINE__, e[0], RD.a2.id, &in);
    qentries_free(e, n > 0 ? n : 0);
    /* accounts without lines: empty, not NOT_FOUND */
    CU_ASSERT_EQUAL(qlist_entries_all(R, RD.a4.id, 0, 0, 0, 0, NULL, v, NULL, 16, &pages), 0);
    CU_ASSERT_EQUAL(qlist_entries_all(R, RD.a5.id, 1, 0, 0, 0, NULL, v, NULL, 16, &pages), 0);
}

static void check_operation(int line, const char *op, const char *kind,
                            Tally__V1__OperationStatus status, const char *reason_part,
                            const char *type, const char *agg, const char *corr)
{
    Tally__V1__GetOperationRequest req = TALLY__V1__GET_OPERATION_REQUEST__INIT;
    Tally__V1__Operation *o = NULL;
    trpc_status st;
    int ok;

    req.operation_id = (char *)op;
    if (!qcheck_ok(line, "GetOperation",
                   tally__v1__query_service__trpc_get_operation(Q.qch, &req, &o, &R->opts, &st),
                   &st))
        return;
    ok = strcmp(o->operation_id, op) == 0 && strcmp(o->kind, kind) == 0 && o->status == status &&
         (reason_part ? strstr(o->failure_reason, reason_part) != NULL
                      : o->failure_reason[0] == '\0') &&
         strcmp(o->aggregate_type, type) == 0 && strcmp(o->aggregate_id, agg) == 0 &&
         strcmp(o->correlation_id, corr) == 0 && o->created_at && o->updated_at &&
         qts_us(o->updated_at) >= qts_us(o->created_at);
    CHECK(line, ok);
    if (!ok)
        fprintf(stderr,
                "\n  line %d: operation %s: kind %s status %d reason \"%s\" %s/%s corr %s\n", line,
                op, o->kind, (int)o->status, o->failure_reason, o->aggregate_type, o->aggregate_id,
                o->correlation_id);
    FREE_MSG(o);
}

static void test_get_operation(void)
{
    const Tally__V1__OperationStatus SUCCEEDED =
        TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED;
    const Tally__V1__OperationStatus FAILED = TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED;

    check_operation(__LINE__, RD.a1.op, "OpenAccount", SUCCEEDED, NULL, "account", RD.a1.id,
                    RD.a1.corr);
    check_operation(__LINE__, RD.dep.op, "Deposit", SUCCEEDED, NULL, "account", RD.a1.id,
                    RD.dep.corr);
    check_operation(__LINE__, RD.wd.op, "Withdraw", SUCCEEDED, NULL, "account", RD.a1.id,
                    RD.wd.corr);
    check_operation(__LINE__, RD.pay.op, "Pay", SUCCEEDED, NULL, "account", RD.a1.id, RD.pay.corr);
    check_operation(__LINE__, RD.refund.op, "Refund", SUCCEEDED, NULL, "account", RD.a1.id,
                    RD.refund.corr);
    check_operation(__LINE__, RD.frz.op, "FreezeAccount", SUCCEEDED, NULL, "account", RD.a4.id,
                    RD.frz.corr);
    check_operation(__LINE__, RD.cls.op, "CloseAccount", SUCCEEDED, NULL, "account", RD.a5.id,
                    RD.cls.corr);
    /* the sagas finished the transfers' operations */
    check_operation(__LINE__, RD.t1.op, "Transfer", SUCCEEDED, NULL, "transfer", RD.t1.id,
                    RD.corr_t1);
    check_operation(__LINE__, RD.t2.op, "Transfer", FAILED, "frozen", "transfer", RD.t2.id,
                    RD.t2.corr);
    check_operation(__LINE__, RD.t3.op, "Transfer", FAILED, "insufficient", "transfer", RD.t3.id,
                    RD.t3.corr);
}

static void check_transfer(int line, const struct qres *t, const char *src, const char *dst,
                           int64_t amount, Tally__V1__TransferState state,
                           Tally__V1__OperationStatus status, const char *reason_part)
{
    Tally__V1__GetTransferRequest req = TALLY__V1__GET_TRANSFER_REQUEST__INIT;
    Tally__V1__Transfer *x = NULL;
    Tally__V1__Position p;
    trpc_status st;
    int ok;

    req.transfer_id = (char *)t->id;
    req.min_position = qres_pos(SYNC, &p);
    if (!qcheck_ok(line, "GetTransfer",
                   tally__v1__query_service__trpc_get_transfer(Q.qch, &req, &x, &R->opts, &st),
                   &st))
        return;
    ok = strcmp(x->transfer_id, t->id) == 0 && strcmp(x->source_account_id, src) == 0 &&
         strcmp(x->destination_account_id, dst) == 0 && x->amount &&
         x->amount->minor_units == amount && strcmp(x->amount->currency, "EUR") == 0 &&
         x->state == state && x->status == status &&
         (reason_part ? strstr(x->failure_reason, reason_part) != NULL
                      : x->failure_reason[0] == '\0') &&
         strcmp(x->operation_id, t->op) == 0 && strcmp(x->correlation_id, t->corr) == 0 &&
         x->requested_at && x->updated_at && qts_us(x->updated_at) >= qts_us(x->requested_at);
    CHECK(line, ok);
    if (!ok)
        fprintf(stderr,
                "\n  line %d: transfer %s: %s -> %s %" PRId64 " state %d status %d reason \"%s\""
                " op %s corr %s\n",
                line, t->id, x->source_account_id, x->destination_account_id,
                x->amount ? x->amount->minor_units : 0, (int)x->state, (int)x->status,
                x->failure_reason, x->operation_id, x->correlation_id);
    FREE_MSG(x);
}

static void test_get_transfer(void)
{
    check_transfer(__LINE__, &RD.t1, RD.a1.id, RD.a2.id, 250,
                   TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_COMPLETED,
                   TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED, NULL);
    check_transfer(__LINE__, &RD.t2, RD.a1.id, RD.a4.id, 100,
                   TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_FAILED,
                   TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED, "frozen");
    check_transfer(__LINE__, &RD.t3, RD.a2.id, RD.a1.id, 10000,
                   TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_FAILED,
                   TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED, "insufficient");
}

static Tally__V1__ReadStreamResponse *read_stream(const char *type, const char *id, int64_t from,
                                                  int backwards, int limit)
{
    Tally__V1__ReadStreamRequest req = TALLY__V1__READ_STREAM_REQUEST__INIT;
    Tally__V1__ReadStreamResponse *resp = NULL;
    trpc_status st;

    req.aggregate_type = (char *)type;
    req.aggregate_id = (char *)id;
    req.from_version = from;
    req.direction = backwards ? TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS
                              : TALLY__V1__READ_DIRECTION__READ_DIRECTION_FORWARDS;
    req.limit = limit;
    CHECK_OK(tally__v1__query_service__trpc_read_stream(Q.qch, &req, &resp, &R->opts, &st), &st);
    return resp;
}

/* versions of resp's events == want[0..n), and has_more */
static void check_versions(int line, const Tally__V1__ReadStreamResponse *r, const int64_t *want,
                           size_t n, int has_more)
{
    int ok = r != NULL && r->n_events == n && r->has_more == has_more;

    for (size_t i = 0; ok && i < n; i++)
        ok = r->events[i]->version == want[i];
    CHECK(line, ok);
    if (!ok && r) {
        fprintf(stderr, "\n  line %d: versions", line);
        for (size_t i = 0; i < r->n_events; i++)
            fprintf(stderr, " %" PRId64, r->events[i]->version);
        fprintf(stderr, " has_more %d\n", r->has_more);
    }
}

static void test_read_stream(void)
{
    static const char *const types[] = {
        "AccountOpened",   "Deposited",       "Withdrawn",       "PaymentMade",
        "PaymentRefunded", "TransferDebited", "TransferDebited", "TransferDebitReversed",
    };
    static const int64_t v34[] = {3, 4}, v78[] = {7, 8}, v876[] = {8, 7, 6}, v21[] = {2, 1},
                         v8[] = {8};
    Tally__V1__ReadStreamResponse *r = read_stream("account", RD.a1.id, 0, 0, 0);
    Tally__V1__Entry *e[16];
    int64_t v[16];
    int pages, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->n_events, 8);
    CU_ASSERT_FALSE(r->has_more);
    n = qlist_entries_all(R, RD.a1.id, 0, 0, 0, 0, SYNC, v, e, 16, &pages);
    for (size_t i = 0; i < r->n_events && i < 8; i++) {
        const Tally__V1__Event *ev = r->events[i];

        CU_ASSERT_EQUAL(ev->version, (int64_t)i + 1);
        CU_ASSERT_STRING_EQUAL(ev->event_type, types[i]);
        CU_ASSERT_STRING_EQUAL(ev->tenant_id, R->id);
        CU_ASSERT_STRING_EQUAL(ev->aggregate_type, "account");
        CU_ASSERT_STRING_EQUAL(ev->aggregate_id, RD.a1.id);
        CU_ASSERT_EQUAL(strlen(ev->event_id), 36);
        CU_ASSERT(ev->event_version >= 1);
        CU_ASSERT(ev->position && ev->position->tx_id > 0 && ev->position->global_position > 0);
        CU_ASSERT(ev->recorded_at && ev->recorded_at->seconds > 0);
        CU_ASSERT(ev->metadata && ev->metadata->correlation_id[0] && ev->metadata->user_id[0]);
        CU_ASSERT_EQUAL(strlen(ev->operation_id), 36);
        if (i > 0)
            CU_ASSERT(qpos_cmp(r->events[i - 1]->position, ev->position) < 0);
        /* the ledger line of an event has the event's position and time */
        if (i >= 1 && n == 7) {
            CU_ASSERT_EQUAL(qpos_cmp(e[i - 1]->position, ev->position), 0);
            CU_ASSERT_EQUAL(qts_us(e[i - 1]->recorded_at), qts_us(ev->recorded_at));
        }
    }
    if (r->n_events == 8) {
        const Tally__V1__Event *d = r->events[1], *o = r->events[0];

        CU_ASSERT_EQUAL(o->payload_case, TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED);
        if (o->payload_case == TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED)
            CU_ASSERT(strcmp(o->account_opened->owner, "alice") == 0 &&
                      o->account_opened->overdraft_limit == 500);
        CU_ASSERT_EQUAL(d->payload_case, TALLY__V1__EVENT__PAYLOAD_DEPOSITED);
        if (d->payload_case == TALLY__V1__EVENT__PAYLOAD_DEPOSITED)
            CU_ASSERT(d->deposited->amount->minor_units == 1000 &&
                      strcmp(d->deposited->reference, "salary") == 0);
        CU_ASSERT_STRING_EQUAL(d->operation_id, RD.dep.op);
        CU_ASSERT_STRING_EQUAL(d->metadata->correlation_id, RD.dep.corr);
    }
    qentries_free(e, n > 0 ? n : 0);
    FREE_MSG(r);
    /* from a version with a limit, forwards and backwards */
    r = read_stream("account", RD.a1.id, 3, 0, 2);
    check_versions(__LINE__, r, v34, 2, 1);
    FREE_MSG(r);
    r = read_stream("account", RD.a1.id, 7, 0, 5);
    check_versions(__LINE__, r, v78, 2, 0);
    FREE_MSG(r);
    r = read_stream("account", RD.a1.id, 7, 0, 2);
    check_versions(__LINE__, r, v78, 2, 0);
    FREE_MSG(r);
    r = read_stream("account", RD.a1.id, 9, 0, 0);
    check_versions(__LINE__, r, NULL, 0, 0);
    FREE_MSG(r);
    r = read_stream("account", RD.a1.id, 0, 1, 3);
    check_versions(__LINE__, r, v876, 3, 1);
    FREE_MSG(r);
    r = read_stream("account", RD.a1.id, 2, 1, 0);
    check_versions(__LINE__, r, v21, 2, 0);
    FREE_MSG(r);
    r = read_stream("account", RD.a1.id, 100, 1, 1);
    check_versions(__LINE__, r, v8, 1, 1);
    FREE_MSG(r);
    /* a transfer's own stream */
    r = read_stream("transfer", RD.t1.id, 0, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->n_events, 2);
    if (r->n_events == 2) {
        CU_ASSERT_STRING_EQUAL(r->events[0]->event_type, "TransferRequested");
        CU_ASSERT_STRING_EQUAL(r->events[1]->event_type, "TransferCompleted");
        CU_ASSERT_STRING_EQUAL(r->events[0]->metadata->correlation_id, RD.corr_t1);
    }
    FREE_MSG(r);
    /* the type selects the stream: an account id is no transfer */
    r = read_stream("transfer", RD.a1.id, 0, 0, 0);
    check_versions(__LINE__, r, NULL, 0, 0);
    FREE_MSG(r);
    /* an unknown stream is empty */
    r = read_stream("account", "0190a0a0-0000-7000-8000-000000000001", 0, 0, 0);
    check_versions(__LINE__, r, NULL, 0, 0);
    FREE_MSG(r);
}

/* The tenant's log: 22 events (5 opens, 2 deposits, a withdrawal, a payment,
 * a refund, a freeze, a close, 3 requests, 2 debits, a credit, a reversal,
 * a completion, 2 failures). */
#define R_EVENTS 22

static int count_type(Tally__V1__Event **ev, int n, const char *prefix)
{
    int c = 0;

    for (int i = 0; i < n; i++)
        c += strncmp(ev[i]->event_type, prefix, strlen(prefix)) == 0;
    return c;
}

/* ReadAll with filter f, in pages of limit: n events, each matching. */
static void check_read_all(int line, Tally__V1__EventFilter *f, int limit, int want,
                           Tally__V1__Event **all, int n_all)
{
    Tally__V1__Event *ev[64];
    Tally__V1__Position last;
    int pages, n = qread_all(R, f, limit, ev, 64, &last, &pages), ordered = 1, j = 0;

    CHECK(line, n == want);
    if (n != want)
        fprintf(stderr, "\n  line %d: ReadAll gave %d events, want %d\n", line, n, want);
    /* in log order, a subsequence of the unfiltered read */
    for (int i = 0; i < n; i++) {
        while (j < n_all && strcmp(all[j]->event_id, ev[i]->event_id) != 0)
            j++;
        if (j == n_all)
            ordered = 0;
    }
    CHECK(line, ordered);
    /* next_position ends at the tenant's last event, matched or not */
    if (n_all > 0)
        CHECK(line, qpos_cmp(&last, all[n_all - 1]->position) == 0);
    qevents_free(ev, n > 0 ? n : 0);
}

static void test_read_all(void)
{
    Tally__V1__Event *all[64];
    Tally__V1__Position last;
    Tally__V1__EventFilter f = TALLY__V1__EVENT_FILTER__INIT;
    char *acct[] = {(char *)"account"}, *tr[] = {(char *)"transfer"};
    char *both[] = {(char *)"account", (char *)"transfer"};
    char *p_tr[] = {(char *)"Transfer"}, *p_dw[] = {(char *)"Deposit", (char *)"Withdraw"};
    char *p_pct[] = {(char *)"%"}, *p_us[] = {(char *)"Transfer_"}, *p_no[] = {(char *)"Nope"};
    int pages, n = qread_all(R, NULL, 4, all, 64, &last, &pages);

    CU_ASSERT_EQUAL(n, R_EVENTS);
    CU_ASSERT_EQUAL(pages, (R_EVENTS + 3) / 4 + (R_EVENTS % 4 == 0));
    CU_ASSERT_EQUAL(
        n, qsql_int("SELECT count(*) FROM events WHERE tenant_id = $1::uuid", R->id, NULL));
    for (int i = 0; i < n; i++) {
        CU_ASSERT_STRING_EQUAL(all[i]->tenant_id, R->id);
        if (i > 0)
            CU_ASSERT(qpos_cmp(all[i - 1]->position, all[i]->position) < 0);
    }
    CU_ASSERT_EQUAL(count_type(all, n, "Transfer"), 10);
    /* the same in one page, and in pages of one */
    check_read_all(__LINE__, NULL, 0, R_EVENTS, all, n);
    check_read_all(__LINE__, NULL, 1, R_EVENTS, all, n);
    check_read_all(__LINE__, NULL, 1000, R_EVENTS, all, n);
    /* filters */
    f.n_aggregate_types = 1;
    f.aggregate_types = tr;
    check_read_all(__LINE__, &f, 0, 6, all, n);
    check_read_all(__LINE__, &f, 1, 6, all, n);
    f.aggregate_types = acct;
    check_read_all(__LINE__, &f, 5, 16, all, n);
    f.n_aggregate_types = 2;
    f.aggregate_types = both;
    check_read_all(__LINE__, &f, 0, R_EVENTS, all, n);
    f.n_aggregate_types = 0;
    f.aggregate_id = RD.a2.id;
    check_read_all(__LINE__, &f, 0, 2, all, n);
    f.aggregate_id = RD.t2.id;
    check_read_all(__LINE__, &f, 0, 2, all, n);
    f.aggregate_id = (char *)"";
    f.n_event_type_prefixes = 1;
    f.event_type_prefixes = p_tr;
    check_read_all(__LINE__, &f, 3, 10, all, n);
    f.n_aggregate_types = 1;
    f.aggregate_types = acct;
    check_read_all(__LINE__, &f, 0, 4, all, n);
    f.n_aggregate_types = 0;
    f.n_event_type_prefixes = 2;
    f.event_type_prefixes = p_dw;
    check_read_all(__LINE__, &f, 0, 3, all, n);
    /* prefixes are literal: LIKE wildcards match nothing */
    f.n_event_type_prefixes = 1;
    f.event_type_prefixes = p_pct;
    check_read_all(__LINE__, &f, 0, 0, all, n);
    f.event_type_prefixes = p_us;
    check_read_all(__LINE__, &f, 0, 0, all, n);
    f.event_type_prefixes = p_no;
    check_read_all(__LINE__, &f, 0, 0, all, n);
    f.n_event_type_prefixes = 0;
    f.correlation_id = RD.corr_t1;
    check_read_all(__LINE__, &f, 0, 4, all, n);
    f.aggregate_id = RD.a1.id;
    check_read_all(__LINE__, &f, 0, 1, all, n);
    /* after the end: nothing, at the end, next_position unchanged */
    {
        Tally__V1__ReadAllRequest req = TALLY__V1__READ_ALL_REQUEST__INIT;
        Tally__V1__ReadAllResponse *resp = NULL;
        trpc_status st;

        req.after = &last;
        if (CHECK_OK(tally__v1__query_service__trpc_read_all(Q.qch, &req, &resp, &R->opts, &st),
                     &st)) {
            CU_ASSERT_EQUAL(resp->n_events, 0);
            CU_ASSERT_TRUE(resp->end_of_log);
            CU_ASSERT_EQUAL(qpos_cmp(resp->next_position, &last), 0);
        }
        FREE_MSG(resp);
        /* after the middle: the rest */
        if (n == R_EVENTS) {
            req.after = all[9]->position;
            req.limit = 100;
            if (CHECK_OK(tally__v1__query_service__trpc_read_all(Q.qch, &req, &resp, &R->opts, &st),
                         &st)) {
                CU_ASSERT_EQUAL(resp->n_events, R_EVENTS - 10);
                if (resp->n_events > 0)
                    CU_ASSERT_STRING_EQUAL(resp->events[0]->event_id, all[10]->event_id);
                CU_ASSERT_TRUE(resp->end_of_log);
            }
            FREE_MSG(resp);
        }
    }
    qevents_free(all, n > 0 ? n : 0);
}

/* Usage of today (UTC) for R: per event type, count and volume. */
static void test_tenant_usage(void)
{
    static const struct {
        const char *type;
        int64_t count, eur, usd;
    } want[] = {
        {"AccountClosed", 1, -1, -1},
        {"AccountFrozen", 1, -1, -1},
        {"AccountOpened", 5, -1, -1},
        {"Deposited", 2, 1000, 700},
        {"PaymentMade", 1, 200, -1},
        {"PaymentRefunded", 1, 50, -1},
        {"TransferCompleted", 1, -1, -1},
        {"TransferCredited", 1, 250, -1},
        {"TransferDebitReversed", 1, 100, -1},
        {"TransferDebited", 2, 350, -1},
        {"TransferFailed", 2, -1, -1},
        {"TransferRequested", 3, 10350, -1},
        {"Withdrawn", 1, 300, -1},
    };
    Tally__V1__GetTenantUsageRequest req = TALLY__V1__GET_TENANT_USAGE_REQUEST__INIT;
    Tally__V1__GetTenantUsageResponse *resp = NULL;
    Tally__V1__Position p;
    trpc_status st;
    char from[11], to[11];
    int64_t total = 0;

    /* every event of R was recorded today or yesterday (a run across
     * midnight): ask for both, add up per type */
    qday(from, -1);
    qday(to, 1);
    req.from_date = from;
    req.to_date = to;
    req.min_position = qres_pos(SYNC, &p);
    if (!CHECK_OK(
            tally__v1__query_service__trpc_get_tenant_usage(Q.qch, &req, &resp, &R->opts, &st),
            &st))
        return;
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        int64_t count = 0, eur = -1, usd = -1;

        for (size_t i = 0; i < resp->n_rows; i++) {
            const Tally__V1__UsageRow *row = resp->rows[i];

            if (strcmp(row->event_type, want[w].type) != 0)
                continue;
            count += row->event_count;
            for (size_t m = 0; m < row->n_volume; m++) {
                int64_t *v = strcmp(row->volume[m]->currency, "EUR") == 0   ? &eur
                             : strcmp(row->volume[m]->currency, "USD") == 0 ? &usd
                                                                            : NULL;

                CU_ASSERT_PTR_NOT_NULL(v);
                if (v)
                    *v = (*v < 0 ? 0 : *v) + row->volume[m]->minor_units;
            }
        }
        CU_ASSERT(count == want[w].count && eur == want[w].eur && usd == want[w].usd);
        if (count != want[w].count || eur != want[w].eur || usd != want[w].usd)
            fprintf(stderr,
                    "\n  usage %s: count %" PRId64 " EUR %" PRId64 " USD %" PRId64 "; want %" PRId64
                    " %" PRId64 " %" PRId64 "\n",
                    want[w].type, count, eur, usd, want[w].count, want[w].eur, want[w].usd);
        total += count;
    }
    /* nothing else; rows in (date, event_type) order, dates in range */
    {
        int64_t all = 0;

        for (size_t i = 0; i < resp->n_rows; i++) {
            all += resp->rows[i]->event_count;
            CU_ASSERT(strcmp(resp->rows[i]->date, from) >= 0 &&
                      strcmp(resp->rows[i]->date, to) <= 0);
            if (i > 0) {
                int c = strcmp(resp->rows[i - 1]->date, resp->rows[i]->date);

                CU_ASSERT(c < 0 || (c == 0 && strcmp(resp->rows[i - 1]->event_type,
                                                     resp->rows[i]->event_type) < 0));
            }
        }
        CU_ASSERT_EQUAL(all, total);
        CU_ASSERT_EQUAL(all, R_EVENTS);
    }
    FREE_MSG(resp);
    /* a range with nothing: tomorrow only; and the last 366 days ending
     * tomorrow (the maximum) holds everything */
    req.from_date = to;
    req.to_date = to;
    if (CHECK_OK(tally__v1__query_service__trpc_get_tenant_usage(Q.qch, &req, &resp, &R->opts, &st),
                 &st))
        CU_ASSERT_EQUAL(resp->n_rows, 0);
    FREE_MSG(resp);
    qday(from, -364);
    req.from_date = from;
    if (CHECK_OK(tally__v1__query_service__trpc_get_tenant_usage(Q.qch, &req, &resp, &R->opts, &st),
                 &st)) {
        int64_t all = 0;

        for (size_t i = 0; i < resp->n_rows; i++)
            all += resp->rows[i]->event_count;
        CU_ASSERT_EQUAL(all, R_EVENTS);
    }
    FREE_MSG(resp);
}

static void test_projection_status_quiet(void)
{
    Tally__V1__ProjectionStatus *s = NULL;
    Tally__V1__Position p;
    trpc_status st;
    int64_t deadline = qfix_mono_ms() + 15000;
    int quiet = 0;

    /* the read model has everything once every saga is done: lag and
     * backlog drain to 0 */
    while (!quiet && qfix_mono_ms() < deadline) {
        FREE_MSG(s);
        if (!CHECK_OK(qstatus(R, &s, &st), &st))
            return;
        quiet = s->lag_events == 0 && s->outbox_backlog == 0;
        if (!quiet)
            qfix_sleep_ms(50);
    }
    CU_ASSERT_TRUE(quiet);
    if (!quiet)
        fprintf(stderr, "\n  still lag %" PRId64 " backlog %" PRId64 "\n", s->lag_events,
                s->outbox_backlog);
    CU_ASSERT(qpos_cmp(s->checkpoint, qres_pos(SYNC, &p)) >= 0);
    CU_ASSERT_EQUAL(s->lag_seconds, 0.0);
    CU_ASSERT_EQUAL(s->dead_letters, 0);
    CU_ASSERT(s->notification_queue_usage >= 0.0 && s->notification_queue_usage <= 1.0);
    CU_ASSERT_STRING_EQUAL(s->blocked_reason, "");
    CU_ASSERT(s->updated_at && llabs(qts_us(s->updated_at) - qfix_now_us()) < 600LL * 1000000);
    /* the checkpoint is the last event's position (nothing else was written) */
    CU_ASSERT_EQUAL(s->checkpoint->global_position,
                    qsql_int("SELECT max(global_position) FROM events", NULL));
    FREE_MSG(s);
}

CU_TestInfo rm_tests[] = {
    {"GetAccount: every field of every status", test_get_account},
    {"ListAccounts: each filter, combined, pages of 1, 2, 5, 50, 1000",
     test_list_accounts_filters_and_pages},
    {"ListAccounts: the page size may change between pages",
     test_list_accounts_page_size_may_change},
    {"ListEntries: every kind, both directions, pages, time ranges", test_list_entries},
    {"GetOperation: commands and finished sagas", test_get_operation},
    {"GetTransfer: completed, reversed, refused", test_get_transfer},
    {"ReadStream: from versions, limits, both directions, both types", test_read_stream},
    {"ReadAll: pages, every filter, literal prefixes, after the end", test_read_all},
    {"GetTenantUsage: counts and volumes per type and currency", test_tenant_usage},
    {"GetProjectionStatus: caught up", test_projection_status_quiet},
    CU_TEST_INFO_NULL,
};

/* ---- shutdown ---- */

static void test_daemons_exit_cleanly(void)
{
    CU_ASSERT_EQUAL(qfix_stop(), 0);
}

static CU_TestInfo shutdown_tests[] = {
    {"every daemon exits 0, no sanitizer report", test_daemons_exit_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"read model and log", rm_init, NULL, NULL, NULL, rm_tests},
    {"errors", error_init, NULL, NULL, NULL, error_tests},
    {"isolation", isolation_init, NULL, NULL, NULL, isolation_tests},
    {"chain", chain_init, NULL, NULL, NULL, chain_tests},
    {"paging", paging_init, NULL, NULL, NULL, paging_tests},
    {"history", history_init, NULL, NULL, NULL, history_tests},
    {"read your writes", ryw_init, NULL, NULL, NULL, ryw_tests},
    {"projection status", status_init, NULL, NULL, NULL, status_tests},
    {"shutdown", NULL, NULL, NULL, NULL, shutdown_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    unsigned int failed = 1, failed_sum = 0;
    int64_t t0 = qfix_mono_ms();

    if (qfix_start() != 0) {
        fprintf(stderr, "test_query: the fixture did not start\n");
        qfix_stop();
        return EXIT_FAILURE;
    }
    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        if (argc > 1) { /* run suites by name, then shut down */
            for (int i = 1; i < argc; i++) {
                CU_pSuite s = CU_get_suite(argv[i]);

                if (s == NULL) {
                    fprintf(stderr, "no suite \"%s\"\n", argv[i]);
                    CU_cleanup_registry();
                    qfix_stop();
                    return EXIT_FAILURE;
                }
                CU_basic_run_suite(s);
                failed_sum += CU_get_number_of_failures() + CU_get_number_of_suites_failed();
            }
            if (strcmp(argv[argc - 1], "shutdown") != 0) {
                CU_basic_run_suite(CU_get_suite("shutdown"));
                failed_sum += CU_get_number_of_failures() + CU_get_number_of_suites_failed();
            }
            failed = failed_sum;
        } else {
            CU_basic_run_tests();
            failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
        }
    }
    CU_cleanup_registry();
    qfix_stop();
    fprintf(stderr, "test_query: %.1f s\n", (double)(qfix_mono_ms() - t0) / 1000);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
