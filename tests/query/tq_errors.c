/* tq_errors.c - every error of every QueryService RPC (status code and a
 * short message that leaks nothing of the database), forged and mismatched
 * page tokens, and tenant isolation for every RPC. Uses the history of the
 * read-model suite (tenant R, RD). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcheck.h"
#include "qsuites.h"

#define R (&RD.t)

#define INVALID   GRPC_STATUS_INVALID_ARGUMENT
#define NOT_FOUND GRPC_STATUS_NOT_FOUND

/* A UUID nobody has (version 4 layout). */
#define UNKNOWN_ID "6f1c1a2e-0000-4000-8000-00000000beef"

static struct qtenant E; /* errors: a tenant with two accounts of its own */
static struct qres e1, e2;

int error_init(void)
{
    trpc_status st;

    if (rm_init() != 0 || qfix_tenant(&E, "errors-tenant") != 0)
        return -1;
    if (qc_open(&E, "erin", "EUR", 0, NULL, &e1, &st) != OK ||
        qc_open(&E, "erin", "EUR", 0, NULL, &e2, &st) != OK ||
        qc_deposit(&E, e1.id, 10, "EUR", "x", NULL, NULL, &st) != OK) {
        fprintf(stderr, "error_init: %s\n", st.msg);
        return -1;
    }
    return 0;
}

/* ---- every RPC ---- */

static void test_unauthenticated_every_rpc(void)
{
    const trpc_service_desc *svc = &tally__v1__query_service__trpc_service;
    char raw_token[HARNESS_TOKEN_MAX], changed[HARNESS_TOKEN_MAX + 16];
    const char *bad[] = {
        NULL, "Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer", raw_token, changed,
        ""};

    snprintf(raw_token, sizeof(raw_token), "%s", R->token);
    /* the token with one character changed */
    snprintf(changed, sizeof(changed), "Bearer %s", R->token);
    changed[strlen(changed) - 1] = changed[strlen(changed) - 1] == 'a' ? 'b' : 'a';
    CU_ASSERT_EQUAL(svc->n_methods, 11);
    for (size_t i = 0; i < svc->n_methods; i++) {
        const trpc_method_desc *m = &svc->methods[i];
        Tally__V1__Position pos;
        ProtobufCMessage *req = qany_request(m, RD.a1.id, RD.corr_t1, NULL, &pos);

        for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
            trpc_metadata md[1] = {{"authorization", bad[b]}};
            trpc_call_opts o = {QFIX_CALL_MS, bad[b] ? md : NULL, bad[b] ? 1 : 0};
            trpc_status st = {0};
            grpc_status_code code = qcall(m, req, &o, &st);

            qcheck_error(__LINE__, m->name, code, &st, GRPC_STATUS_UNAUTHENTICATED);
        }
        free(req);
    }
}

static void test_garbage_request_every_rpc(void)
{
    const trpc_service_desc *svc = &tally__v1__query_service__trpc_service;
    /* field 1, length-delimited, length far beyond the message */
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01};

    for (size_t i = 0; i < svc->n_methods; i++) {
        trpc_status st = {0};
        void *resp = NULL;
        size_t len = 0;
        grpc_status_code code = trpc_unary_raw(Q.qch, svc->methods[i].path, garbage,
                                               sizeof(garbage), &resp, &len, &R->opts, &st);

        qcheck_error(__LINE__, svc->methods[i].name, code, &st, INVALID);
        free(resp);
    }
}

static void test_min_position_checked_every_rpc(void)
{
    const trpc_service_desc *svc = &tally__v1__query_service__trpc_service;
    Tally__V1__Position neg = {PROTOBUF_C_MESSAGE_INIT(&tally__v1__position__descriptor), 1, -1};
    Tally__V1__Position far = {PROTOBUF_C_MESSAGE_INIT(&tally__v1__position__descriptor),
                               (uint64_t)1 << 60, 1};
    int with = 0;

    for (size_t i = 0; i < svc->n_methods; i++) {
        const trpc_method_desc *m = &svc->methods[i];
        Tally__V1__Position buf;
        ProtobufCMessage *req;
        trpc_call_opts o = R->opts;
        trpc_status st = {0};
        grpc_status_code code;
        int64_t t0, ms;

        if (!qhas_min_position(m))
            continue;
        with++;
        req = qany_request(m, RD.a1.id, RD.corr_t1, &neg, &buf);
        code = qcall(m, req, &R->opts, &st);
        qcheck_error(__LINE__, m->name, code, &st, INVALID);
        free(req);
        /* a position the log will not reach soon: the call's deadline */
        req = qany_request(m, RD.a1.id, RD.corr_t1, &far, &buf);
        o.timeout_ms = 300;
        t0 = qfix_mono_ms();
        code = qcall(m, req, &o, &st);
        ms = qfix_mono_ms() - t0;
        qcheck_error(__LINE__, m->name, code, &st, GRPC_STATUS_DEADLINE_EXCEEDED);
        CU_ASSERT(ms >= 250 && ms < 5000);
        free(req);
    }
    /* every RPC: GetAccountAt too (on a replica its history may lag) */
    CU_ASSERT_EQUAL(with, 11);
}

/* ---- per RPC ---- */

static grpc_status_code get_account(const struct qtenant *t, const char *id, trpc_status *st)
{
    Tally__V1__Account *a = NULL;
    grpc_status_code code = qget_account(t, id, NULL, QFIX_CALL_MS, &a, st);

    FREE_MSG(a);
    return code;
}

static void test_get_account_errors(void)
{
    char spaced[QFIX_ID + 2];

    snprintf(spaced, sizeof(spaced), "%s ", RD.a1.id);
    EXPECT_ERR(INVALID, get_account(R, "", &st_));
    EXPECT_ERR(INVALID, get_account(R, "not-a-uuid", &st_));
    EXPECT_ERR(INVALID, get_account(R, "00000000-0000-0000-0000-000000000000", &st_));
    EXPECT_ERR(INVALID, get_account(R, spaced, &st_));
    EXPECT_ERR(INVALID, get_account(R, "6f1c1a2e00004000800000000000beef", &st_));
    EXPECT_ERR(INVALID, get_account(R, "'; DROP TABLE rm.accounts; --", &st_));
    EXPECT_ERR(NOT_FOUND, get_account(R, UNKNOWN_ID, &st_));
    /* a transfer's id is no account */
    EXPECT_ERR(NOT_FOUND, get_account(R, RD.t1.id, &st_));
}

static grpc_status_code list_accounts(const struct qtenant *t, int status, const char *owner,
                                      const char *currency, int page_size, const char *token,
                                      trpc_status *st)
{
    Tally__V1__ListAccountsRequest req = TALLY__V1__LIST_ACCOUNTS_REQUEST__INIT;
    Tally__V1__ListAccountsResponse *resp = NULL;
    grpc_status_code code;

    req.status = (Tally__V1__AccountStatus)status;
    req.owner = (char *)(owner ? owner : "");
    req.currency = (char *)(currency ? currency : "");
    req.page_size = page_size;
    req.page_token = (char *)(token ? token : "");
    code = tally__v1__query_service__trpc_list_accounts(Q.qch, &req, &resp, &t->opts, st);
    FREE_MSG(resp);
    return code;
}

static void test_list_accounts_errors(void)
{
    char long_owner[300];

    memset(long_owner, 'o', 257);
    long_owner[257] = '\0';
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, 1001, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, -1, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, INT32_MAX, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, INT32_MIN, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 4, NULL, NULL, 0, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 99, NULL, NULL, 0, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, -1, NULL, NULL, 0, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, "eur", 0, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, "EURO", 0, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, "E'R", 0, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, long_owner, NULL, 0, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, "\xc3\x28", NULL, 0, NULL, &st_));
    /* the limits themselves are fine */
    CU_ASSERT_EQUAL(list_accounts(R, 0, NULL, NULL, 1000, NULL, NULL), OK);
    long_owner[256] = '\0';
    CU_ASSERT_EQUAL(list_accounts(R, 0, long_owner, NULL, 1, NULL, NULL), OK);
}

static grpc_status_code list_entries(const struct qtenant *t, const char *id, int backwards,
                                     const Google__Protobuf__Timestamp *from,
                                     const Google__Protobuf__Timestamp *to, int page_size,
                                     const char *token, int *n, trpc_status *st)
{
    Tally__V1__ListEntriesRequest req = TALLY__V1__LIST_ENTRIES_REQUEST__INIT;
    Tally__V1__ListEntriesResponse *resp = NULL;
    grpc_status_code code;

    req.account_id = (char *)id;
    req.direction = backwards ? TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS
                              : TALLY__V1__READ_DIRECTION__READ_DIRECTION_FORWARDS;
    req.from_time = (Google__Protobuf__Timestamp *)from;
    req.to_time = (Google__Protobuf__Timestamp *)to;
    req.page_size = page_size;
    req.page_token = (char *)(token ? token : "");
    code = tally__v1__query_service__trpc_list_entries(Q.qch, &req, &resp, &t->opts, st);
    if (n)
        *n = resp ? (int)resp->n_entries : -1;
    FREE_MSG(resp);
    return code;
}

static void test_list_entries_errors(void)
{
    Google__Protobuf__Timestamp a, b, bad;
    int64_t now = qfix_now_us();

    qts(&a, now - 1000000);
    qts(&b, now);
    EXPECT_ERR(INVALID, list_entries(R, "", 0, NULL, NULL, 0, NULL, NULL, &st_));
    EXPECT_ERR(INVALID, list_entries(R, "x", 0, NULL, NULL, 0, NULL, NULL, &st_));
    EXPECT_ERR(NOT_FOUND, list_entries(R, UNKNOWN_ID, 0, NULL, NULL, 0, NULL, NULL, &st_));
    EXPECT_ERR(NOT_FOUND, list_entries(R, UNKNOWN_ID, 1, &a, &b, 5, NULL, NULL, &st_));
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, NULL, NULL, 1001, NULL, NULL, &st_));
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, NULL, NULL, -5, NULL, NULL, &st_));
    /* inverted and empty ranges */
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, &b, &a, 0, NULL, NULL, &st_));
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, &a, &a, 0, NULL, NULL, &st_));
    /* timestamps outside what protobuf allows */
    qts(&bad, now);
    bad.nanos = -1;
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, &bad, NULL, 0, NULL, NULL, &st_));
    bad.nanos = 1000000000;
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, NULL, &bad, 0, NULL, NULL, &st_));
    bad.nanos = 0;
    bad.seconds = 253402300800LL; /* 10000-01-01 */
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, NULL, &bad, 0, NULL, NULL, &st_));
    bad.seconds = -62135596801LL; /* before 0001-01-01 */
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, &bad, NULL, 0, NULL, NULL, &st_));
    bad.seconds = INT64_MAX;
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, &bad, NULL, 0, NULL, NULL, &st_));
    bad.seconds = INT64_MIN;
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, NULL, &bad, 0, NULL, NULL, &st_));
    /* the widest legal range is fine */
    bad.seconds = -62135596800LL;
    qts(&b, 253402300799LL * 1000000);
    CU_ASSERT_EQUAL(list_entries(R, RD.a1.id, 0, &bad, &b, 0, NULL, NULL, NULL), OK);
}

/* The first page's token of a request (page_size 1). */
static void first_token(char *out, size_t len, const struct qtenant *t, const char *entries_of,
                        int backwards, const Google__Protobuf__Timestamp *from, int status,
                        const char *owner)
{
    trpc_status st;

    out[0] = '\0';
    if (entries_of) {
        Tally__V1__ListEntriesRequest req = TALLY__V1__LIST_ENTRIES_REQUEST__INIT;
        Tally__V1__ListEntriesResponse *resp = NULL;

        req.account_id = (char *)entries_of;
        req.direction = backwards ? TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS
                                  : TALLY__V1__READ_DIRECTION__READ_DIRECTION_FORWARDS;
        req.from_time = (Google__Protobuf__Timestamp *)from;
        req.page_size = 1;
        if (CHECK_OK(tally__v1__query_service__trpc_list_entries(Q.qch, &req, &resp, &t->opts, &st),
                     &st))
            snprintf(out, len, "%s", resp->next_page_token);
        FREE_MSG(resp);
    } else {
        Tally__V1__ListAccountsRequest req = TALLY__V1__LIST_ACCOUNTS_REQUEST__INIT;
        Tally__V1__ListAccountsResponse *resp = NULL;

        req.status = (Tally__V1__AccountStatus)status;
        req.owner = (char *)(owner ? owner : "");
        req.page_size = 1;
        if (CHECK_OK(
                tally__v1__query_service__trpc_list_accounts(Q.qch, &req, &resp, &t->opts, &st),
                &st))
            snprintf(out, len, "%s", resp->next_page_token);
        FREE_MSG(resp);
    }
    CU_ASSERT(out[0] != '\0');
}

/* A page token valid for one request is refused by every other. */
static void test_page_tokens_mismatched(void)
{
    enum { OPEN = TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN };
    char acc[2048], acc_alice[2048], ent[2048], ent_back[2048], ent_from[2048], e_acc[2048];
    char tampered[2100];
    Google__Protobuf__Timestamp from;

    qts(&from, 1000000);
    first_token(acc, sizeof(acc), R, NULL, 0, NULL, 0, NULL);
    first_token(acc_alice, sizeof(acc_alice), R, NULL, 0, NULL, 0, "alice");
    first_token(ent, sizeof(ent), R, RD.a1.id, 0, NULL, 0, NULL);
    first_token(ent_back, sizeof(ent_back), R, RD.a1.id, 1, NULL, 0, NULL);
    first_token(ent_from, sizeof(ent_from), R, RD.a1.id, 0, &from, 0, NULL);
    first_token(e_acc, sizeof(e_acc), &E, NULL, 0, NULL, 0, NULL);
    /* each works with its own request */
    CU_ASSERT_EQUAL(list_accounts(R, 0, NULL, NULL, 1, acc, NULL), OK);
    CU_ASSERT_EQUAL(list_accounts(R, 0, "alice", NULL, 1, acc_alice, NULL), OK);
    CU_ASSERT_EQUAL(list_entries(R, RD.a1.id, 0, NULL, NULL, 1, ent, NULL, NULL), OK);
    CU_ASSERT_EQUAL(list_entries(R, RD.a1.id, 1, NULL, NULL, 1, ent_back, NULL, NULL), OK);
    CU_ASSERT_EQUAL(list_entries(R, RD.a1.id, 0, &from, NULL, 1, ent_from, NULL, NULL), OK);
    CU_ASSERT_EQUAL(list_accounts(&E, 0, NULL, NULL, 1, e_acc, NULL), OK);
    /* other filters */
    EXPECT_ERR(INVALID, list_accounts(R, 0, "alice", NULL, 1, acc, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, OPEN, NULL, NULL, 1, acc, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, "EUR", 1, acc, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, "bob", NULL, 1, acc_alice, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, 1, acc_alice, &st_));
    /* another tenant's token, both ways */
    EXPECT_ERR(INVALID, list_accounts(&E, 0, NULL, NULL, 1, acc, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, 1, e_acc, &st_));
    EXPECT_ERR(INVALID, list_entries(&E, RD.a1.id, 0, NULL, NULL, 1, ent, NULL, &st_));
    EXPECT_ERR(INVALID, list_entries(&E, e1.id, 0, NULL, NULL, 1, ent, NULL, &st_));
    /* another list, account, direction or range */
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, NULL, NULL, 1, acc, NULL, &st_));
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, 1, ent, &st_));
    EXPECT_ERR(INVALID, list_entries(R, RD.a2.id, 0, NULL, NULL, 1, ent, NULL, &st_));
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 1, NULL, NULL, 1, ent, NULL, &st_));
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, NULL, NULL, 1, ent_back, NULL, &st_));
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, NULL, NULL, 1, ent_from, NULL, &st_));
    EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, &from, NULL, 1, ent, NULL, &st_));
    /* tampered: each character changed in turn. The tokens are validated,
     * not signed (cursor.h): a change inside a key's digits still decodes to
     * a well-formed key and pages R's own rows from there; every other
     * change is refused. Never anything but OK or INVALID_ARGUMENT. */
    {
        int accepted = 0, refused = 0;
        size_t len = strlen(acc);

        for (size_t i = 0; i < len; i++) {
            trpc_status st = {0};
            grpc_status_code code;

            snprintf(tampered, sizeof(tampered), "%s", acc);
            tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
            code = list_accounts(R, 0, NULL, NULL, 1, tampered, &st);
            if (code == OK) {
                accepted++;
                continue;
            }
            refused++;
            qcheck_error(__LINE__, "tampered token", code, &st, INVALID);
        }
        CU_ASSERT(refused > 3 * accepted);
        fprintf(stderr, "(%d of %d one-character changes refused) ", refused, refused + accepted);
    }
    /* truncated, extended */
    snprintf(tampered, sizeof(tampered), "%.*s", (int)strlen(acc) / 2, acc);
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, 1, tampered, &st_));
    snprintf(tampered, sizeof(tampered), "%sAAAA", acc);
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, 1, tampered, &st_));
}

/* Tokens made by hand: garbage, wrong shapes, and tokens with a valid
 * fingerprint (a client who read cursor.c can make those) carrying keys
 * that are out of range, malformed, or point into another tenant's rows.
 * Never a database error; never another tenant's row. */
static void test_page_tokens_forged(void)
{
    const char *acc_params[3] = {NULL, NULL, NULL};
    char tok[2048], big[3000], keys[256], range[64];
    const char *ent_params[3] = {RD.a1.id, "forwards", "-/-"};
    int64_t a1_opened = qsql_int("SELECT (extract(epoch FROM opened_at) * 1000000)::bigint"
                                 "  FROM rm.accounts WHERE account_id = $1::uuid",
                                 RD.a1.id, NULL);
    static const char *const garbage[] = {
        "x",
        "!!!!",
        "eyJjIjoiYWNjb3VudHMifQ",                   /* {"c":"accounts"} */
        "e30",                                      /* {} */
        "WzEsMl0",                                  /* [1,2] */
        "bnVsbA",                                   /* null */
        "AAAA",                                     /* NUL bytes */
        "eyJjIjoiYWNjb3VudHMiLCJmIjoiIiwiayI6W119", /* {"c":"accounts","f":"","k":[]} */
        "e30=",
        "e30==",
        "A",
    };

    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, 1, garbage[i], &st_));
        EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, NULL, NULL, 1, garbage[i], NULL, &st_));
    }
    memset(big, 'A', 2500);
    big[2500] = '\0';
    EXPECT_ERR(INVALID, list_accounts(R, 0, NULL, NULL, 1, big, &st_));
    /* a well-formed forgery for R itself works (the format is not secret)... */
    snprintf(keys, sizeof(keys), "[\"0\",\"00000000-0000-0000-0000-000000000000\"]");
    qforge_token(tok, "accounts", R->id, acc_params, 3, keys);
    CU_ASSERT_EQUAL(list_accounts(R, 0, NULL, NULL, 1, tok, NULL), OK);
    /* ...but malformed or out-of-range keys are refused, never a SQL error */
    {
        static const char *const bad_keys[] = {
            "[\"99999999999999999999\",\"00000000-0000-0000-0000-000000000000\"]",
            "[\"9223372036854775807\",\"00000000-0000-0000-0000-000000000000\"]",
            "[\"-9223372036854775808\",\"00000000-0000-0000-0000-000000000000\"]",
            "[\"253402300800000000\",\"00000000-0000-0000-0000-000000000000\"]",
            "[\"1e5\",\"00000000-0000-0000-0000-000000000000\"]",
            "[\"\",\"00000000-0000-0000-0000-000000000000\"]",
            "[\"0x10\",\"00000000-0000-0000-0000-000000000000\"]",
            "[\"0\",\"not-a-uuid\"]",
            "[\"0\",\"'; DROP TABLE rm.accounts; --\"]",
            "[\"0\"]",
            "[\"0\",\"00000000-0000-0000-0000-000000000000\",\"x\"]",
            "[0,\"00000000-0000-0000-0000-000000000000\"]",
            "[\"0\",null]",
            "{}",
        };

        for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
            trpc_status st = {0};
            grpc_status_code code;

            qforge_token(tok, "accounts", R->id, acc_params, 3, bad_keys[i]);
            code = list_accounts(R, 0, NULL, NULL, 1, tok, &st);
            qcheck_error(__LINE__, bad_keys[i], code, &st, INVALID);
        }
    }
    /* a forged key that points into R's rows, under E's fingerprint: E gets
     * its own accounts only */
    {
        Tally__V1__ListAccountsRequest req = TALLY__V1__LIST_ACCOUNTS_REQUEST__INIT;
        Tally__V1__ListAccountsResponse *resp = NULL;
        trpc_status st;

        snprintf(keys, sizeof(keys), "[\"%" PRId64 "\",\"%s\"]", a1_opened - 1, RD.a1.id);
        qforge_token(tok, "accounts", E.id, acc_params, 3, keys);
        req.page_size = 100;
        req.page_token = tok;
        if (CHECK_OK(tally__v1__query_service__trpc_list_accounts(Q.qch, &req, &resp, &E.opts, &st),
                     &st)) {
            CU_ASSERT_EQUAL(resp->n_accounts, 2);
            for (size_t i = 0; i < resp->n_accounts; i++)
                CU_ASSERT(strcmp(resp->accounts[i]->account_id, e1.id) == 0 ||
                          strcmp(resp->accounts[i]->account_id, e2.id) == 0);
        }
        FREE_MSG(resp);
    }
    /* entries: R's account under E's fingerprint: nothing of R's */
    {
        int n = -1;
        trpc_status st = {0};
        grpc_status_code code;

        qforge_token(tok, "entries", E.id, ent_params, 3, "[\"0\"]");
        code = list_entries(&E, RD.a1.id, 0, NULL, NULL, 100, tok, &n, &st);
        CU_ASSERT(code == NOT_FOUND || (code == OK && n == 0));
        if (!(code == NOT_FOUND || (code == OK && n == 0)))
            qreport(__LINE__, "forged entries token of another tenant's account", code, &st);
    }
    /* entries: own account, keys at the int64 edges or malformed */
    {
        static const char *const ent_keys[] = {"[\"-9223372036854775808\"]",
                                               "[\"9223372036854775807\"]"};
        static const char *const bad[] = {
            "[\"9223372036854775808\"]", "[\"1.5\"]", "[\"\"]", "[\"1\",\"2\"]", "[]", "[1]"};
        const char *own[3] = {RD.a1.id, "forwards", "-/-"};

        for (size_t i = 0; i < sizeof(ent_keys) / sizeof(ent_keys[0]); i++) {
            trpc_status st = {0};
            grpc_status_code code;

            qforge_token(tok, "entries", R->id, own, 3, ent_keys[i]);
            code = list_entries(R, RD.a1.id, 0, NULL, NULL, 100, tok, NULL, &st);
            CU_ASSERT_EQUAL(code, OK);
            if (code != OK)
                qreport(__LINE__, ent_keys[i], code, &st);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            EXPECT_ERR(INVALID, (qforge_token(tok, "entries", R->id, own, 3, bad[i]),
                                 list_entries(R, RD.a1.id, 0, NULL, NULL, 100, tok, NULL, &st_)));
        /* the range is part of the fingerprint: "-/-" is not "0/-" */
        snprintf(range, sizeof(range), "%s", "0/-");
        own[2] = range;
        qforge_token(tok, "entries", R->id, own, 3, "[\"0\"]");
        EXPECT_ERR(INVALID, list_entries(R, RD.a1.id, 0, NULL, NULL, 100, tok, NULL, &st_));
    }
}

static grpc_status_code get_operation(const struct qtenant *t, const char *id, trpc_status *st)
{
    Tally__V1__GetOperationRequest req = TALLY__V1__GET_OPERATION_REQUEST__INIT;
    Tally__V1__Operation *resp = NULL;
    grpc_status_code code;

    req.operation_id = (char *)id;
    code = tally__v1__query_service__trpc_get_operation(Q.qch, &req, &resp, &t->opts, st);
    FREE_MSG(resp);
    return code;
}

static grpc_status_code get_transfer(const struct qtenant *t, const char *id, trpc_status *st)
{
    Tally__V1__GetTransferRequest req = TALLY__V1__GET_TRANSFER_REQUEST__INIT;
    Tally__V1__Transfer *resp = NULL;
    grpc_status_code code;

    req.transfer_id = (char *)id;
    code = tally__v1__query_service__trpc_get_transfer(Q.qch, &req, &resp, &t->opts, st);
    FREE_MSG(resp);
    return code;
}

static void test_get_operation_and_transfer_errors(void)
{
    EXPECT_ERR(INVALID, get_operation(R, "", &st_));
    EXPECT_ERR(INVALID, get_operation(R, "op-1", &st_));
    EXPECT_ERR(NOT_FOUND, get_operation(R, UNKNOWN_ID, &st_));
    EXPECT_ERR(NOT_FOUND, get_operation(R, RD.a1.id, &st_));
    EXPECT_ERR(INVALID, get_transfer(R, "", &st_));
    EXPECT_ERR(INVALID, get_transfer(R, "transfer", &st_));
    EXPECT_ERR(NOT_FOUND, get_transfer(R, UNKNOWN_ID, &st_));
    EXPECT_ERR(NOT_FOUND, get_transfer(R, RD.a1.id, &st_));
    EXPECT_ERR(NOT_FOUND, get_transfer(R, RD.t1.op, &st_));
}

/* at: 'v' version, 't' time (us), 'n' neither, 'T' time case without a
 * Timestamp */
static grpc_status_code get_account_at(const struct qtenant *t, const char *id, char at, int64_t v,
                                       int32_t nanos, trpc_status *st)
{
    Tally__V1__GetAccountAtRequest req = TALLY__V1__GET_ACCOUNT_AT_REQUEST__INIT;
    Tally__V1__Account *resp = NULL;
    Google__Protobuf__Timestamp ts;
    grpc_status_code code;

    req.account_id = (char *)id;
    if (at == 'v') {
        req.at_case = TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_VERSION;
        req.version = v;
    } else if (at == 't') {
        req.at_case = TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_TIME;
        req.time = qts(&ts, v);
        if (nanos)
            ts.nanos = nanos;
    } else if (at == 'T') {
        req.at_case = TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_TIME;
        req.time = NULL;
    }
    code = tally__v1__query_service__trpc_get_account_at(Q.qch, &req, &resp, &t->opts, st);
    FREE_MSG(resp);
    return code;
}

static void test_get_account_at_errors(void)
{
    int64_t now = qfix_now_us();

    EXPECT_ERR(INVALID, get_account_at(R, RD.a1.id, 'n', 0, 0, &st_));
    EXPECT_ERR(INVALID, get_account_at(R, RD.a1.id, 'T', 0, 0, &st_));
    EXPECT_ERR(INVALID, get_account_at(R, RD.a1.id, 'v', 0, 0, &st_));
    EXPECT_ERR(INVALID, get_account_at(R, RD.a1.id, 'v', -1, 0, &st_));
    EXPECT_ERR(INVALID, get_account_at(R, RD.a1.id, 'v', INT64_MIN, 0, &st_));
    EXPECT_ERR(INVALID, get_account_at(R, RD.a1.id, 't', now, -5, &st_));
    EXPECT_ERR(INVALID, get_account_at(R, RD.a1.id, 't', now, 1000000000, &st_));
    EXPECT_ERR(INVALID, get_account_at(R, "", 'v', 1, 0, &st_));
    EXPECT_ERR(INVALID, get_account_at(R, "x", 'v', 1, 0, &st_));
    EXPECT_ERR(NOT_FOUND, get_account_at(R, UNKNOWN_ID, 'v', 1, 0, &st_));
    EXPECT_ERR(NOT_FOUND, get_account_at(R, UNKNOWN_ID, 't', now, 0, &st_));
    /* a version not reached yet; a time before the account existed */
    EXPECT_ERR(NOT_FOUND, get_account_at(R, RD.a1.id, 'v', 9, 0, &st_));
    EXPECT_ERR(NOT_FOUND, get_account_at(R, RD.a1.id, 'v', INT64_MAX, 0, &st_));
    EXPECT_ERR(NOT_FOUND, get_account_at(R, RD.a1.id, 't', 1000000, 0, &st_));
    EXPECT_ERR(NOT_FOUND, get_account_at(R, RD.a1.id, 't', now - 3600LL * 1000000, 0, &st_));
    /* a transfer is not an account */
    EXPECT_ERR(NOT_FOUND, get_account_at(R, RD.t1.id, 'v', 1, 0, &st_));
    CU_ASSERT_EQUAL(get_account_at(R, RD.a1.id, 'v', 8, 0, NULL), OK);
    CU_ASSERT_EQUAL(get_account_at(R, RD.a1.id, 't', now + 3600LL * 1000000, 0, NULL), OK);
}

static grpc_status_code read_stream(const struct qtenant *t, const char *type, const char *id,
                                    int64_t from, int limit, int *n, trpc_status *st)
{
    Tally__V1__ReadStreamRequest req = TALLY__V1__READ_STREAM_REQUEST__INIT;
    Tally__V1__ReadStreamResponse *resp = NULL;
    grpc_status_code code;

    req.aggregate_type = (char *)type;
    req.aggregate_id = (char *)id;
    req.from_version = from;
    req.limit = limit;
    code = tally__v1__query_service__trpc_read_stream(Q.qch, &req, &resp, &t->opts, st);
    if (n)
        *n = resp ? (int)resp->n_events : -1;
    FREE_MSG(resp);
    return code;
}

static void test_read_stream_errors(void)
{
    EXPECT_ERR(INVALID, read_stream(R, "", RD.a1.id, 0, 0, NULL, &st_));
    EXPECT_ERR(INVALID, read_stream(R, "Account", RD.a1.id, 0, 0, NULL, &st_));
    EXPECT_ERR(INVALID, read_stream(R, "payment", RD.a1.id, 0, 0, NULL, &st_));
    EXPECT_ERR(INVALID, read_stream(R, "account' OR '1'='1", RD.a1.id, 0, 0, NULL, &st_));
    EXPECT_ERR(INVALID, read_stream(R, "account", "", 0, 0, NULL, &st_));
    EXPECT_ERR(INVALID, read_stream(R, "account", "1", 0, 0, NULL, &st_));
    EXPECT_ERR(INVALID, read_stream(R, "account", RD.a1.id, -1, 0, NULL, &st_));
    EXPECT_ERR(INVALID, read_stream(R, "account", RD.a1.id, 0, 1001, NULL, &st_));
    EXPECT_ERR(INVALID, read_stream(R, "account", RD.a1.id, 0, -1, NULL, &st_));
    CU_ASSERT_EQUAL(read_stream(R, "account", RD.a1.id, 0, 1000, NULL, NULL), OK);
    CU_ASSERT_EQUAL(read_stream(R, "account", RD.a1.id, INT64_MAX, 1, NULL, NULL), OK);
}

static grpc_status_code read_all(const struct qtenant *t, const Tally__V1__EventFilter *f,
                                 const Tally__V1__Position *after, int limit, trpc_status *st)
{
    Tally__V1__ReadAllRequest req = TALLY__V1__READ_ALL_REQUEST__INIT;
    Tally__V1__ReadAllResponse *resp = NULL;
    grpc_status_code code;

    req.filter = (Tally__V1__EventFilter *)f;
    req.after = (Tally__V1__Position *)after;
    req.limit = limit;
    code = tally__v1__query_service__trpc_read_all(Q.qch, &req, &resp, &t->opts, st);
    FREE_MSG(resp);
    return code;
}

static void test_read_all_errors(void)
{
    Tally__V1__EventFilter f = TALLY__V1__EVENT_FILTER__INIT;
    Tally__V1__Position neg = {PROTOBUF_C_MESSAGE_INIT(&tally__v1__position__descriptor), 1, -1};
    Tally__V1__Position huge = {PROTOBUF_C_MESSAGE_INIT(&tally__v1__position__descriptor),
                                UINT64_MAX, INT64_MAX};
    char *many[17], *empty[] = {(char *)""}, long65[70], long129[140], *one[1];

    for (int i = 0; i < 17; i++)
        many[i] = (char *)"account";
    memset(long65, 'T', 65);
    long65[65] = '\0';
    memset(long129, 'c', 129);
    long129[129] = '\0';
    EXPECT_ERR(INVALID, read_all(R, NULL, NULL, 1001, &st_));
    EXPECT_ERR(INVALID, read_all(R, NULL, NULL, -1, &st_));
    EXPECT_ERR(INVALID, read_all(R, NULL, &neg, 0, &st_));
    f.n_aggregate_types = 17;
    f.aggregate_types = many;
    EXPECT_ERR(INVALID, read_all(R, &f, NULL, 0, &st_));
    f.n_aggregate_types = 1;
    f.aggregate_types = empty;
    EXPECT_ERR(INVALID, read_all(R, &f, NULL, 0, &st_));
    f.n_aggregate_types = 0;
    f.n_event_type_prefixes = 17;
    f.event_type_prefixes = many;
    EXPECT_ERR(INVALID, read_all(R, &f, NULL, 0, &st_));
    one[0] = long65;
    f.n_event_type_prefixes = 1;
    f.event_type_prefixes = one;
    EXPECT_ERR(INVALID, read_all(R, &f, NULL, 0, &st_));
    f.event_type_prefixes = empty;
    EXPECT_ERR(INVALID, read_all(R, &f, NULL, 0, &st_));
    f.n_event_type_prefixes = 0;
    f.aggregate_id = (char *)"nope";
    EXPECT_ERR(INVALID, read_all(R, &f, NULL, 0, &st_));
    f.aggregate_id = (char *)"";
    f.correlation_id = long129;
    EXPECT_ERR(INVALID, read_all(R, &f, NULL, 0, &st_));
    f.correlation_id = (char *)"\xff\xfe";
    EXPECT_ERR(INVALID, read_all(R, &f, NULL, 0, &st_));
    /* the limits themselves, and a position past everything, are fine */
    CU_ASSERT_EQUAL(read_all(R, NULL, NULL, 1000, NULL), OK);
    CU_ASSERT_EQUAL(read_all(R, NULL, &huge, 0, NULL), OK);
    long129[128] = '\0';
    f.correlation_id = long129;
    CU_ASSERT_EQUAL(read_all(R, &f, NULL, 0, NULL), OK);
}

static grpc_status_code by_correlation(const struct qtenant *t, const char *corr, int limit, int *n,
                                       trpc_status *st)
{
    Tally__V1__ListEventsByCorrelationRequest req =
        TALLY__V1__LIST_EVENTS_BY_CORRELATION_REQUEST__INIT;
    Tally__V1__ListEventsByCorrelationResponse *resp = NULL;
    grpc_status_code code;

    req.correlation_id = (char *)corr;
    req.limit = limit;
    code =
        tally__v1__query_service__trpc_list_events_by_correlation(Q.qch, &req, &resp, &t->opts, st);
    if (n)
        *n = resp ? (int)resp->n_events : -1;
    FREE_MSG(resp);
    return code;
}

static void test_correlation_errors(void)
{
    char long129[140];
    int n = -1;

    memset(long129, 'c', 129);
    long129[129] = '\0';
    EXPECT_ERR(INVALID, by_correlation(R, "", 0, NULL, &st_));
    EXPECT_ERR(INVALID, by_correlation(R, long129, 0, NULL, &st_));
    EXPECT_ERR(INVALID, by_correlation(R, "\xc3\x28", 0, NULL, &st_));
    EXPECT_ERR(INVALID, by_correlation(R, RD.corr_t1, 1001, NULL, &st_));
    EXPECT_ERR(INVALID, by_correlation(R, RD.corr_t1, -1, NULL, &st_));
    /* unknown: an empty list; wildcards are literal */
    CU_ASSERT_EQUAL(by_correlation(R, "no-such-flow", 0, &n, NULL), OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(by_correlation(R, "%", 0, &n, NULL), OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(by_correlation(R, RD.corr_t1, 1000, &n, NULL), OK);
    CU_ASSERT_EQUAL(n, 4);
}

static grpc_status_code usage(const struct qtenant *t, const char *from, const char *to, int *rows,
                              trpc_status *st)
{
    Tally__V1__GetTenantUsageRequest req = TALLY__V1__GET_TENANT_USAGE_REQUEST__INIT;
    Tally__V1__GetTenantUsageResponse *resp = NULL;
    grpc_status_code code;

    req.from_date = (char *)from;
    req.to_date = (char *)to;
    code = tally__v1__query_service__trpc_get_tenant_usage(Q.qch, &req, &resp, &t->opts, st);
    if (rows)
        *rows = resp ? (int)resp->n_rows : -1;
    FREE_MSG(resp);
    return code;
}

static void test_usage_errors(void)
{
    static const char *const bad[] = {"",
                                      "2024-1-01",
                                      "2024-01-1",
                                      "24-01-01",
                                      "2024/01/01",
                                      "2024-13-01",
                                      "2024-00-10",
                                      "2024-02-30",
                                      "2023-02-29",
                                      "2024-04-31",
                                      "1969-12-31",
                                      "2024-01-01x",
                                      "2024-01-01 ",
                                      "+024-01-01",
                                      "2024-01-0a",
                                      "'2024-01-01'"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        EXPECT_ERR(INVALID, usage(R, bad[i], "2024-12-31", NULL, &st_));
        EXPECT_ERR(INVALID, usage(R, "2024-01-01", bad[i], NULL, &st_));
    }
    /* inverted */
    EXPECT_ERR(INVALID, usage(R, "2024-03-02", "2024-03-01", NULL, &st_));
    /* 367 days (leap year) and more */
    EXPECT_ERR(INVALID, usage(R, "2024-01-01", "2025-01-01", NULL, &st_));
    EXPECT_ERR(INVALID, usage(R, "1970-01-01", "9999-12-31", NULL, &st_));
    /* exactly 366 days, a leap day, one day: fine */
    CU_ASSERT_EQUAL(usage(R, "2024-01-01", "2024-12-31", NULL, NULL), OK);
    CU_ASSERT_EQUAL(usage(R, "2023-01-01", "2024-01-01", NULL, NULL), OK);
    CU_ASSERT_EQUAL(usage(R, "2024-02-29", "2024-02-29", NULL, NULL), OK);
}

CU_TestInfo error_tests[] = {
    {"UNAUTHENTICATED: every RPC, every bad credential", test_unauthenticated_every_rpc},
    {"INVALID_ARGUMENT: an undecodable request to every RPC", test_garbage_request_every_rpc},
    {"min_position: negative is INVALID_ARGUMENT, unreached is DEADLINE_EXCEEDED (every RPC)",
     test_min_position_checked_every_rpc},
    {"GetAccount: bad ids, NOT_FOUND", test_get_account_errors},
    {"ListAccounts: page sizes, status, currency, owner", test_list_accounts_errors},
    {"ListEntries: ids, page sizes, inverted and impossible time ranges", test_list_entries_errors},
    {"page tokens: mismatched request, tenant, list; tampered", test_page_tokens_mismatched},
    {"page tokens: forged (garbage, bad keys, another tenant's rows)", test_page_tokens_forged},
    {"GetOperation, GetTransfer: bad ids, NOT_FOUND", test_get_operation_and_transfer_errors},
    {"GetAccountAt: missing oneof, bad version or time, NOT_FOUND", test_get_account_at_errors},
    {"ReadStream: type, id, from_version, limit", test_read_stream_errors},
    {"ReadAll: limit, after, every filter field", test_read_all_errors},
    {"ListEventsByCorrelation: id, limit", test_correlation_errors},
    {"GetTenantUsage: malformed, impossible, inverted, over-long ranges", test_usage_errors},
    CU_TEST_INFO_NULL,
};

/* ---- isolation: tenant X sees nothing of tenant R ---- */

static struct qtenant X;
static struct qres xa, xdep;

int isolation_init(void)
{
    trpc_status st;

    if (rm_init() != 0 || qfix_tenant(&X, "stranger") != 0)
        return -1;
    /* X's deposit carries R's correlation id: correlation ids are the
     * caller's strings, tenants may collide */
    if (qc_open(&X, "alice", "EUR", 0, NULL, &xa, &st) != OK ||
        qc_deposit(&X, xa.id, 42, "EUR", "x-dep", RD.corr_t1, &xdep, &st) != OK) {
        fprintf(stderr, "isolation_init: %s\n", st.msg);
        return -1;
    }
    return 0;
}

static void test_isolation_single_objects(void)
{
    const struct qres *accounts[] = {&RD.a1, &RD.a2, &RD.a3, &RD.a4, &RD.a5};
    Tally__V1__Account *a = NULL;
    trpc_status st;

    for (size_t i = 0; i < 5; i++) {
        EXPECT_ERR(NOT_FOUND, get_account(&X, accounts[i]->id, &st_));
        EXPECT_ERR(NOT_FOUND,
                   list_entries(&X, accounts[i]->id, 0, NULL, NULL, 0, NULL, NULL, &st_));
        EXPECT_ERR(NOT_FOUND,
                   list_entries(&X, accounts[i]->id, 1, NULL, NULL, 0, NULL, NULL, &st_));
        EXPECT_ERR(NOT_FOUND, get_account_at(&X, accounts[i]->id, 'v', 1, 0, &st_));
        EXPECT_ERR(NOT_FOUND, get_account_at(&X, accounts[i]->id, 't',
                                             qfix_now_us() + 3600LL * 1000000, 0, &st_));
        EXPECT_ERR(NOT_FOUND, get_operation(&X, accounts[i]->op, &st_));
    }
    EXPECT_ERR(NOT_FOUND, get_operation(&X, RD.dep.op, &st_));
    EXPECT_ERR(NOT_FOUND, get_operation(&X, RD.t1.op, &st_));
    EXPECT_ERR(NOT_FOUND, get_transfer(&X, RD.t1.id, &st_));
    EXPECT_ERR(NOT_FOUND, get_transfer(&X, RD.t2.id, &st_));
    /* ...with min_position of R's write too */
    {
        Tally__V1__Account *b = NULL;
        grpc_status_code code = qget_account(&X, RD.a1.id, &RD.usd, QFIX_CALL_MS, &b, &st);

        qcheck_error(__LINE__, "GetAccount with R's position", code, &st, NOT_FOUND);
        FREE_MSG(b);
    }
    /* and R still sees its own, X its own */
    CU_ASSERT_EQUAL(qget_account(R, RD.a1.id, NULL, QFIX_CALL_MS, &a, &st), OK);
    FREE_MSG(a);
    CU_ASSERT_EQUAL(qget_account(&X, xa.id, &xdep, QFIX_CALL_MS, &a, &st), OK);
    FREE_MSG(a);
    EXPECT_ERR(NOT_FOUND, get_account(R, xa.id, &st_));
}

static void test_isolation_lists_and_log(void)
{
    char ids[8][QFIX_ID];
    Tally__V1__Event *ev[16];
    Tally__V1__EventFilter f = TALLY__V1__EVENT_FILTER__INIT;
    int pages, n;

    /* lists: X's own account only, whatever the filter */
    n = qlist_accounts_all(&X, 0, NULL, NULL, 0, &xdep, ids, 8, &pages);
    CU_ASSERT(n == 1 && strcmp(ids[0], xa.id) == 0);
    n = qlist_accounts_all(&X, 0, "alice", "EUR", 0, NULL, ids, 8, &pages);
    CU_ASSERT(n == 1 && strcmp(ids[0], xa.id) == 0);
    n = qlist_accounts_all(&X, TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_FROZEN, NULL, NULL, 0,
                           NULL, ids, 8, &pages);
    CU_ASSERT_EQUAL(n, 0);
    n = qlist_accounts_all(&X, 0, "bob", NULL, 0, NULL, ids, 8, &pages);
    CU_ASSERT_EQUAL(n, 0);
    /* streams: empty */
    CU_ASSERT_EQUAL(read_stream(&X, "account", RD.a1.id, 0, 0, &n, NULL), OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(read_stream(&X, "transfer", RD.t1.id, 0, 0, &n, NULL), OK);
    CU_ASSERT_EQUAL(n, 0);
    /* the log: X's two events, with any filter */
    n = qread_all(&X, NULL, 0, ev, 16, NULL, &pages);
    CU_ASSERT_EQUAL(n, 2);
    for (int i = 0; i < n; i++)
        CU_ASSERT_STRING_EQUAL(ev[i]->tenant_id, X.id);
    qevents_free(ev, n > 0 ? n : 0);
    f.aggregate_id = RD.a1.id;
    CU_ASSERT_EQUAL(qread_all(&X, &f, 0, ev, 16, NULL, &pages), 0);
    f.aggregate_id = (char *)"";
    f.correlation_id = RD.corr_t1;
    n = qread_all(&X, &f, 0, ev, 16, NULL, &pages);
    CU_ASSERT(n == 1 && strcmp(ev[0]->event_type, "Deposited") == 0 &&
              strcmp(ev[0]->aggregate_id, xa.id) == 0 && strcmp(ev[0]->tenant_id, X.id) == 0);
    qevents_free(ev, n > 0 ? n : 0);
    /* correlation: the same id in two tenants stays apart */
    CU_ASSERT_EQUAL(by_correlation(&X, RD.corr_t1, 0, &n, NULL), OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(by_correlation(R, RD.corr_t1, 0, &n, NULL), OK);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(by_correlation(&X, RD.t2.corr, 0, &n, NULL), OK);
    CU_ASSERT_EQUAL(n, 0);
    /* R's page tokens are refused */
    {
        char tok[2048];

        first_token(tok, sizeof(tok), R, NULL, 0, NULL, 0, NULL);
        EXPECT_ERR(INVALID, list_accounts(&X, 0, NULL, NULL, 1, tok, &st_));
        first_token(tok, sizeof(tok), R, RD.a1.id, 0, NULL, 0, NULL);
        EXPECT_ERR(INVALID, list_entries(&X, RD.a1.id, 0, NULL, NULL, 1, tok, NULL, &st_));
    }
}

static void test_isolation_usage_and_status(void)
{
    Tally__V1__GetTenantUsageRequest req = TALLY__V1__GET_TENANT_USAGE_REQUEST__INIT;
    Tally__V1__GetTenantUsageResponse *resp = NULL;
    Tally__V1__ProjectionStatus *s = NULL;
    Tally__V1__Position p;
    trpc_status st;
    char from[11], to[11];
    int64_t opened = 0, deposited = 0, other = 0, volume = 0;

    qday(from, -1);
    qday(to, 1);
    req.from_date = from;
    req.to_date = to;
    req.min_position = qres_pos(&xdep, &p);
    if (CHECK_OK(tally__v1__query_service__trpc_get_tenant_usage(Q.qch, &req, &resp, &X.opts, &st),
                 &st)) {
        for (size_t i = 0; i < resp->n_rows; i++) {
            const Tally__V1__UsageRow *r = resp->rows[i];

            if (strcmp(r->event_type, "AccountOpened") == 0)
                opened += r->event_count;
            else if (strcmp(r->event_type, "Deposited") == 0) {
                deposited += r->event_count;
                for (size_t m = 0; m < r->n_volume; m++)
                    volume += r->volume[m]->minor_units;
            } else
                other += r->event_count;
        }
        CU_ASSERT(opened == 1 && deposited == 1 && other == 0 && volume == 42);
    }
    FREE_MSG(resp);
    /* the projection status is the deployment's, not a tenant's: it names
     * nothing of R */
    if (CHECK_OK(qstatus(&X, &s, &st), &st)) {
        CU_ASSERT_PTR_NULL(strstr(s->blocked_reason, R->id));
        CU_ASSERT_PTR_NULL(strstr(s->blocked_reason, RD.a1.id));
    }
    FREE_MSG(s);
}

CU_TestInfo isolation_tests[] = {
    {"another tenant's account, operation, transfer, history: NOT_FOUND",
     test_isolation_single_objects},
    {"lists, streams, ReadAll, correlation, tokens: nothing of the other tenant",
     test_isolation_lists_and_log},
    {"usage counts only the caller's events; status names no tenant",
     test_isolation_usage_and_status},
    CU_TEST_INFO_NULL,
};
