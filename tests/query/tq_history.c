/* tq_history.c - GetAccountAt (time travel) against a history computed by
 * hand: 260 events on one account (deposits, withdrawals into the overdraft,
 * payments and refunds, freezes and unfreezes), so the replay crosses the
 * snapshots tally-command writes every 100 events. Every version is checked,
 * then times around chosen versions; then the snapshot is shown to be the
 * replay's starting point and the read model shown not to be read at all.
 * Tenant T. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcheck.h"
#include "qsuites.h"

#define N_EVENTS  260
#define OVERDRAFT 1000

static struct qtenant T;
static struct qres acct;
static int64_t bal[N_EVENTS + 1];
static int frozen[N_EVENTS + 1];
static int64_t rec[N_EVENTS + 1]; /* recorded_at, microseconds */
static struct qres last;          /* the last command */

/* The command of version v (2..N_EVENTS), applied to the expected state. */
static grpc_status_code step(int v, char *payment_id, trpc_status *st)
{
    struct qres r;
    grpc_status_code code;
    int64_t b = bal[v - 1], amount;

    frozen[v] = frozen[v - 1];
    if (v % 37 == 0) {
        code = qc_status(&T, QC_FREEZE, acct.id, NULL, &r, st);
        frozen[v] = 1;
    } else if (v % 37 == 1) {
        code = qc_status(&T, QC_UNFREEZE, acct.id, NULL, &r, st);
        frozen[v] = 0;
    } else if (v % 50 == 13) {
        amount = 120;
        code = qc_pay(&T, acct.id, amount, "EUR", "merchant", NULL, &r, st);
        if (code == OK)
            snprintf(payment_id, QFIX_ID, "%s", r.id);
        b -= amount;
    } else if (v % 50 == 14) {
        amount = 40;
        code = qc_refund(&T, acct.id, payment_id, amount, "EUR", NULL, &r, st);
        b += amount;
    } else if (v % 5 == 0) {
        amount = v % 300 + 1;
        code = qc_withdraw(&T, acct.id, amount, "EUR", "w", NULL, &r, st);
        b -= amount;
    } else {
        amount = (int64_t)v * 7 % 500 + 1;
        code = qc_deposit(&T, acct.id, amount, "EUR", "d", NULL, &r, st);
        b += amount;
    }
    bal[v] = b;
    if (code == OK)
        last = r;
    if (code == OK && r.version != v)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                               "command wrote version %" PRId64 ", want %d", r.version, v);
    return code;
}

int history_init(void)
{
    trpc_status st;
    char payment_id[QFIX_ID] = "";
    PGresult *res;

    if (qfix_tenant(&T, "history") != 0)
        return -1;
    if (qc_open(&T, "tt", "EUR", OVERDRAFT, NULL, &acct, &st) != OK)
        goto fail;
    bal[1] = 0;
    frozen[1] = 0;
    for (int v = 2; v <= N_EVENTS; v++) {
        if (step(v, payment_id, &st) != OK) {
            fprintf(stderr, "history_init: version %d: ", v);
            goto fail;
        }
        if (bal[v] < -OVERDRAFT) {
            fprintf(stderr, "history_init: the plan overdraws at %d\n", v);
            return -1;
        }
    }
    res = qsql("SELECT version, (extract(epoch FROM recorded_at) * 1000000)::bigint FROM events"
               " WHERE tenant_id = $1::uuid AND aggregate_id = $2::uuid ORDER BY version",
               T.id, acct.id, NULL);
    if (PQntuples(res) != N_EVENTS) {
        fprintf(stderr, "history_init: %d events in the log\n", PQntuples(res));
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < N_EVENTS; i++)
        rec[i + 1] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
    PQclear(res);
    return 0;
fail:
    fprintf(stderr, "%s %s\n", trpc_status_code_name(st.code), st.msg);
    return -1;
}

static grpc_status_code account_at(char at, int64_t v, Tally__V1__Account **out, trpc_status *st)
{
    Tally__V1__GetAccountAtRequest req = TALLY__V1__GET_ACCOUNT_AT_REQUEST__INIT;
    Google__Protobuf__Timestamp ts;

    req.account_id = acct.id;
    if (at == 'v') {
        req.at_case = TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_VERSION;
        req.version = v;
    } else {
        req.at_case = TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_TIME;
        req.time = qts(&ts, v);
    }
    *out = NULL;
    return tally__v1__query_service__trpc_get_account_at(Q.qch, &req, out, &T.opts, st);
}

/* a is the state after version v (plus delta on the balance): every field,
 * opened_at (AccountOpened's recorded_at, also when the replay starts at a
 * snapshot) and updated_at (version v's recorded_at) included. */
static int state_is(const Tally__V1__Account *a, int v, int64_t delta)
{
    Tally__V1__AccountStatus s = frozen[v] ? TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_FROZEN
                                           : TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN;

    return a != NULL && a->version == v && a->balance &&
           a->balance->minor_units == bal[v] + delta && strcmp(a->balance->currency, "EUR") == 0 &&
           a->status == s && strcmp(a->account_id, acct.id) == 0 && strcmp(a->owner, "tt") == 0 &&
           strcmp(a->currency, "EUR") == 0 && a->overdraft_limit == OVERDRAFT &&
           a->opened_at != NULL && qts_us(a->opened_at) == rec[1] && a->updated_at != NULL &&
           qts_us(a->updated_at) == rec[v];
}

static void say_state(int line, const Tally__V1__Account *a, int v, int64_t delta)
{
    fprintf(stderr,
            "\n  line %d: got version %" PRId64 " balance %" PRId64 " status %d opened %" PRId64
            " updated %" PRId64 "; want version %d balance %" PRId64 " status %s opened %" PRId64
            " updated %" PRId64 "\n",
            line, a ? a->version : -1, a && a->balance ? a->balance->minor_units : -1,
            a ? (int)a->status : -1, a && a->opened_at ? qts_us(a->opened_at) : -1,
            a && a->updated_at ? qts_us(a->updated_at) : -1, v, bal[v] + delta,
            frozen[v] ? "FROZEN" : "OPEN", rec[1], rec[v]);
}

static void test_snapshots_were_written(void)
{
    char versions[64];

    qsql_str(versions, sizeof(versions),
             "SELECT string_agg(version::text, ',' ORDER BY version) FROM snapshots"
             " WHERE tenant_id = $1::uuid AND aggregate_id = $2::uuid",
             T.id, acct.id, NULL);
    CU_ASSERT_STRING_EQUAL(versions, "100,200");
}

static void test_account_at_every_version(void)
{
    int bad = 0;

    for (int v = 1; v <= N_EVENTS; v++) {
        Tally__V1__Account *a = NULL;
        trpc_status st;

        if (!CHECK_OK(account_at('v', v, &a, &st), &st)) {
            bad++;
        } else if (!state_is(a, v, 0)) {
            if (bad++ < 5)
                say_state(__LINE__, a, v, 0);
        }
        FREE_MSG(a);
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* a version not written yet */
    {
        Tally__V1__Account *a = NULL;
        trpc_status st = {0};
        grpc_status_code code = account_at('v', N_EVENTS + 1, &a, &st);

        qcheck_error(__LINE__, "version after the last", code, &st, GRPC_STATUS_NOT_FOUND);
        FREE_MSG(a);
    }
}

/* The last version recorded at or before us (0: none). */
static int version_at(int64_t us)
{
    int v = 0;

    for (int i = 1; i <= N_EVENTS; i++)
        if (rec[i] <= us)
            v = i;
    return v;
}

static void check_time(int line, int64_t us)
{
    Tally__V1__Account *a = NULL;
    trpc_status st = {0};
    grpc_status_code code = account_at('t', us, &a, &st);
    int v = version_at(us);

    if (v == 0) {
        qcheck_error(line, "a time before the account", code, &st, GRPC_STATUS_NOT_FOUND);
    } else if (qcheck_ok(line, "GetAccountAt(time)", code, &st)) {
        CHECK(line, state_is(a, v, 0));
        if (!state_is(a, v, 0))
            say_state(line, a, v, 0);
    }
    FREE_MSG(a);
}

static void test_account_at_time(void)
{
    static const int around[] = {1, 2, 36, 37, 38, 99, 100, 101, 150, 199, 200, 201, 259, 260};

    /* times are the events' recorded_at: each strictly after the last */
    for (int v = 2; v <= N_EVENTS; v++)
        CU_ASSERT(rec[v] > rec[v - 1]);
    for (size_t i = 0; i < sizeof(around) / sizeof(around[0]); i++) {
        int v = around[i];

        check_time(__LINE__, rec[v]);     /* exactly then: that version */
        check_time(__LINE__, rec[v] - 1); /* a microsecond before: the one before */
        check_time(__LINE__, rec[v] + 1);
        if (v < N_EVENTS) /* halfway to the next */
            check_time(__LINE__, rec[v] + (rec[v + 1] - rec[v]) / 2);
    }
    check_time(__LINE__, rec[1] - 1000000);
    check_time(__LINE__, 1);
    check_time(__LINE__, qfix_now_us() + 24LL * 3600 * 1000000);
}

/* The replay starts from the snapshot at or below the version asked for:
 * a snapshot changed by hand shows up above it and not below it. And the
 * read model is never read: changing it changes GetAccount only. */
static void test_account_at_replays_from_snapshots_not_the_read_model(void)
{
    static const char bump[] =
        "UPDATE snapshots SET state = jsonb_set(state, '{balance}',"
        "       to_jsonb(((state->>'balance')::bigint + $3::bigint)::text))"
        " WHERE tenant_id = $1::uuid AND aggregate_id = $2::uuid AND version = 200";
    static const struct {
        int v;
        int64_t delta;
    } want[] = {{199, 0}, {150, 0}, {100, 0}, {200, 1000000}, {201, 1000000}, {260, 1000000}};
    Tally__V1__Account *a = NULL;
    trpc_status st;
    PGresult *res;

    /* the read model has the whole history before it is tampered with */
    CHECK_OK(qget_account(&T, acct.id, &last, QFIX_CALL_MS, &a, &st), &st);
    FREE_MSG(a);
    res = qsql(bump, T.id, acct.id, "1000000", NULL);
    CU_ASSERT_STRING_EQUAL(PQcmdTuples(res), "1");
    PQclear(res);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (CHECK_OK(account_at('v', want[i].v, &a, &st), &st)) {
            CU_ASSERT(state_is(a, want[i].v, want[i].delta));
            if (!state_is(a, want[i].v, want[i].delta))
                say_state(__LINE__, a, want[i].v, want[i].delta);
        }
        FREE_MSG(a);
    }
    PQclear(qsql(bump, T.id, acct.id, "-1000000", NULL));
    /* the read model changed by hand: GetAccount shows it, history not */
    PQclear(qsql("UPDATE rm.accounts SET balance = balance + 777"
                 " WHERE tenant_id = $1::uuid AND account_id = $2::uuid",
                 T.id, acct.id, NULL));
    if (CHECK_OK(qget_account(&T, acct.id, NULL, QFIX_CALL_MS, &a, &st), &st))
        CU_ASSERT_EQUAL(a->balance->minor_units, bal[N_EVENTS] + 777);
    FREE_MSG(a);
    if (CHECK_OK(account_at('v', N_EVENTS, &a, &st), &st))
        CU_ASSERT(state_is(a, N_EVENTS, 0));
    FREE_MSG(a);
    if (CHECK_OK(account_at('t', qfix_now_us(), &a, &st), &st))
        CU_ASSERT(state_is(a, N_EVENTS, 0));
    FREE_MSG(a);
    PQclear(qsql("UPDATE rm.accounts SET balance = balance - 777"
                 " WHERE tenant_id = $1::uuid AND account_id = $2::uuid",
                 T.id, acct.id, NULL));
    /* the read model agrees with the history, opened_at included */
    if (CHECK_OK(qget_account(&T, acct.id, NULL, QFIX_CALL_MS, &a, &st), &st))
        CU_ASSERT(a->version == N_EVENTS && a->balance->minor_units == bal[N_EVENTS] &&
                  qts_us(a->opened_at) == rec[1] && qts_us(a->updated_at) == rec[N_EVENTS]);
    FREE_MSG(a);
}

CU_TestInfo history_tests[] = {
    {"tally-command wrote snapshots at 100 and 200", test_snapshots_were_written},
    {"GetAccountAt: every one of 260 versions", test_account_at_every_version},
    {"GetAccountAt: by time, around versions and snapshot boundaries", test_account_at_time},
    {"GetAccountAt: replays from the snapshot, never reads the read model",
     test_account_at_replays_from_snapshots_not_the_read_model},
    CU_TEST_INFO_NULL,
};
