/* tq_paging.c - ListAccounts and ListEntries paged while rows arrive: after
 * every page the test opens accounts and deposits (and reads the next page
 * with the position of its last write, so the new rows are certainly
 * visible), while a background writer does the same; no row that existed
 * when paging began may be skipped or repeated, and nothing may come twice.
 * Tenant P. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcheck.h"
#include "qsuites.h"

#define N_ACCOUNTS 45
#define N_DEPOSITS 40
#define MAX_IDS    400
#define BG_OPENS   30 /* accounts the background writer opens, then it stops */

static struct qtenant P;
static struct qres accts[N_ACCOUNTS], ledger, last;

int paging_init(void)
{
    trpc_status st;

    if (qfix_tenant(&P, "paging") != 0)
        return -1;
    for (int i = 0; i < N_ACCOUNTS; i++)
        if (qc_open(&P, i % 2 ? "p-odd" : "p-even", "EUR", 0, NULL, &accts[i], &st) != OK)
            goto fail;
    if (qc_open(&P, "p-ledger", "EUR", 0, NULL, &ledger, &st) != OK)
        goto fail;
    for (int i = 0; i < N_DEPOSITS; i++)
        if (qc_deposit(&P, ledger.id, i + 1, "EUR", "seed", NULL, &last, &st) != OK)
            goto fail;
    return 0;
fail:
    fprintf(stderr, "paging_init: %s %s\n", trpc_status_code_name(st.code), st.msg);
    return -1;
}

/* ---- a background writer: opens accounts and deposits until stopped ---- */

struct writer {
    pthread_t thread;
    atomic_int stop;
    const char *owner;
    int opened, deposits, failed;
    char ids[MAX_IDS][QFIX_ID];
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;

    while (!atomic_load(&w->stop) && w->opened < BG_OPENS) {
        struct qres r;
        trpc_status st;

        if (qc_open(&P, w->owner, "EUR", 0, NULL, &r, &st) != OK) {
            w->failed++;
            continue;
        }
        snprintf(w->ids[w->opened++], QFIX_ID, "%s", r.id);
        if (qc_deposit(&P, accts[(w->opened * 7) % N_ACCOUNTS].id, 1, "EUR", "bg", NULL, NULL,
                       &st) != OK ||
            qc_deposit(&P, ledger.id, 1, "EUR", "bg", NULL, NULL, &st) != OK)
            w->failed++;
        else
            w->deposits += 2;
        qfix_sleep_ms(15);
    }
    return NULL;
}

static int in_list(char ids[][QFIX_ID], int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return 1;
    return 0;
}

/* Pages ListAccounts (filters owner / status) by page_size while writing:
 * after each page, one account opened (owner new_owner) and one deposit;
 * a writer thread (owner new_owner) runs all along. */
static void page_accounts_while_writing(int line, const char *owner, int status, int page_size,
                                        const char *new_owner)
{
    static char truth[MAX_IDS][QFIX_ID], got[MAX_IDS * 2][QFIX_ID], mine[MAX_IDS][QFIX_ID];
    static struct writer w;
    char token[2048] = "";
    struct qres sync = last;
    int n_truth = 0, n_got = 0, n_mine = 0, pages = 0, ok = 1;
    PGresult *res;

    /* what exists now, in paging order (the read model, synced with a
     * write made after every earlier one) */
    {
        Tally__V1__Account *a = NULL;
        trpc_status st;

        CHECK_OK(qc_deposit(&P, ledger.id, 1, "EUR", "sync", NULL, &sync, &st), &st);
        CHECK_OK(qget_account(&P, accts[0].id, &sync, QFIX_CALL_MS, &a, &st), &st);
        FREE_MSG(a);
    }
    res = qsql("SELECT account_id::text FROM rm.accounts WHERE tenant_id = $1::uuid"
               "   AND ($2::text = '' OR owner = $2) AND ($3::text = '' OR status = $3)"
               " ORDER BY opened_at, account_id",
               P.id, owner ? owner : "", status ? "OPEN" : "", NULL);
    for (int i = 0; i < PQntuples(res) && n_truth < MAX_IDS; i++)
        snprintf(truth[n_truth++], QFIX_ID, "%s", PQgetvalue(res, i, 0));
    PQclear(res);
    CHECK(line, n_truth > 2 * page_size);

    memset(&w, 0, sizeof(w));
    w.owner = new_owner;
    pthread_create(&w.thread, NULL, writer_main, &w);
    for (;;) {
        Tally__V1__ListAccountsRequest req = TALLY__V1__LIST_ACCOUNTS_REQUEST__INIT;
        Tally__V1__ListAccountsResponse *resp = NULL;
        Tally__V1__Position p;
        trpc_status st;

        req.owner = (char *)(owner ? owner : "");
        req.status = (Tally__V1__AccountStatus)status;
        req.page_size = page_size;
        req.page_token = token;
        req.min_position = qres_pos(&sync, &p);
        if (!qcheck_ok(
                line, "ListAccounts",
                tally__v1__query_service__trpc_list_accounts(Q.qch, &req, &resp, &P.opts, &st),
                &st)) {
            ok = 0;
            break;
        }
        pages++;
        for (size_t i = 0; i < resp->n_accounts && n_got < MAX_IDS * 2; i++)
            snprintf(got[n_got++], QFIX_ID, "%s", resp->accounts[i]->account_id);
        snprintf(token, sizeof(token), "%s", resp->next_page_token);
        FREE_MSG(resp);
        if (token[0] == '\0' || pages > 500)
            break;
        /* rows arrive between pages: a new account, a deposit on an old one */
        if (qc_open(&P, new_owner, "EUR", 0, NULL, &sync, &st) == OK)
            snprintf(mine[n_mine++], QFIX_ID, "%s", sync.id);
        qc_deposit(&P, truth[pages % n_truth], 5, "EUR", "while paging", NULL, &sync, &st);
    }
    atomic_store(&w.stop, 1);
    pthread_join(w.thread, NULL);
    CHECK(line, w.failed == 0);
    CHECK(line, w.opened > 0);
    /* every pre-existing row once, first, in order */
    for (int i = 0; ok && i < n_truth; i++)
        if (i >= n_got || strcmp(got[i], truth[i]) != 0) {
            fprintf(stderr, "\n  line %d: row %d is %.8s, want %.8s\n", line, i,
                    i < n_got ? got[i] : "(none)", truth[i]);
            ok = 0;
        }
    CHECK(line, ok);
    /* nothing twice; after them only rows opened while paging */
    for (int i = 0; i < n_got; i++) {
        for (int j = i + 1; j < n_got; j++)
            if (strcmp(got[i], got[j]) == 0) {
                fprintf(stderr, "\n  line %d: %.8s at %d and %d\n", line, got[i], i, j);
                ok = 0;
            }
        if (i >= n_truth && !in_list(mine, n_mine, got[i]) && !in_list(w.ids, w.opened, got[i])) {
            fprintf(stderr, "\n  line %d: unexpected row %.8s\n", line, got[i]);
            ok = 0;
        }
    }
    CHECK(line, ok);
    /* the accounts this loop opened were all visible by the last page */
    for (int i = 0; i < n_mine; i++)
        CHECK(line, in_list(got + n_truth, n_got - n_truth, mine[i]));
    CHECK(line, pages > n_truth / page_size);
    last = sync;
}

static void test_list_accounts_while_opening(void)
{
    page_accounts_while_writing(__LINE__, NULL, 0, 4, "p-new");
}

static void test_list_accounts_filtered_while_opening(void)
{
    page_accounts_while_writing(__LINE__, "p-odd", 0, 5, "p-odd");
    page_accounts_while_writing(__LINE__, NULL, TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN, 7,
                                "p-new");
}

/* Pages ListEntries of the ledger account while depositing into it (one
 * deposit after each page, and the writer thread). Forwards: versions 2..end
 * with no gap and no repeat, end = the last version visible at the last
 * page. Backwards: from the top at the first page down to 2. */
static void page_entries_while_depositing(int line, int backwards, int page_size)
{
    static int64_t got[4000];
    static struct writer w;
    char token[2048] = "";
    struct qres sync = last;
    int n = 0, pages = 0, ok = 1;
    int64_t top = 0;

    memset(&w, 0, sizeof(w));
    w.owner = "p-bg";
    pthread_create(&w.thread, NULL, writer_main, &w);
    for (;;) {
        Tally__V1__ListEntriesRequest req = TALLY__V1__LIST_ENTRIES_REQUEST__INIT;
        Tally__V1__ListEntriesResponse *resp = NULL;
        Tally__V1__Position p;
        trpc_status st;

        req.account_id = ledger.id;
        req.direction = backwards ? TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS
                                  : TALLY__V1__READ_DIRECTION__READ_DIRECTION_FORWARDS;
        req.page_size = page_size;
        req.page_token = token;
        req.min_position = qres_pos(&sync, &p);
        if (!qcheck_ok(
                line, "ListEntries",
                tally__v1__query_service__trpc_list_entries(Q.qch, &req, &resp, &P.opts, &st),
                &st)) {
            ok = 0;
            break;
        }
        pages++;
        for (size_t i = 0; i < resp->n_entries && n < 4000; i++)
            got[n++] = resp->entries[i]->version;
        snprintf(token, sizeof(token), "%s", resp->next_page_token);
        FREE_MSG(resp);
        if (token[0] == '\0' || pages > 1000)
            break;
        qc_deposit(&P, ledger.id, 3, "EUR", "while paging", NULL, &sync, &st);
    }
    atomic_store(&w.stop, 1);
    pthread_join(w.thread, NULL);
    CHECK(line, w.failed == 0 && w.opened > 0);
    CHECK(line, ok && n > 0);
    if (!ok || n == 0)
        return;
    top = got[0];
    for (int i = 0; i < n; i++) {
        int64_t want = backwards ? top - i : 2 + i;

        if (got[i] != want) {
            fprintf(stderr, "\n  line %d: entry %d is v%" PRId64 ", want v%" PRId64 "\n", line, i,
                    got[i], want);
            ok = 0;
            break;
        }
    }
    CHECK(line, ok);
    if (backwards) {
        CHECK(line, got[n - 1] == 2);
        CHECK(line, top >= N_DEPOSITS + 1);
    } else {
        /* forwards reaches every line written before the last page */
        CHECK(line, got[n - 1] >= sync.version);
    }
    CHECK(line, pages >= 2 + N_DEPOSITS / page_size);
    last = sync;
}

static void test_list_entries_forwards_while_depositing(void)
{
    page_entries_while_depositing(__LINE__, 0, 6);
}

static void test_list_entries_backwards_while_depositing(void)
{
    page_entries_while_depositing(__LINE__, 1, 6);
}

CU_TestInfo paging_tests[] = {
    {"ListAccounts: no row skipped or repeated while accounts open",
     test_list_accounts_while_opening},
    {"ListAccounts filtered (owner, status): the same", test_list_accounts_filtered_while_opening},
    {"ListEntries forwards: no gap, no repeat while deposits arrive",
     test_list_entries_forwards_while_depositing},
    {"ListEntries backwards: no gap, no repeat while deposits arrive",
     test_list_entries_backwards_while_depositing},
    CU_TEST_INFO_NULL,
};
