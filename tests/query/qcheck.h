/* qcheck.h - checks and QueryService helpers shared by the suites of
 * test_query (main thread only: they assert through CUnit).
 *
 * The shared data of the "read model and log" suite (tenant R) lives here
 * too: the errors and isolation suites read it. */
#ifndef TESTS_QUERY_QCHECK_H
#define TESTS_QUERY_QCHECK_H

#include <stdint.h>

#include <CUnit/CUnit.h>

#include "qfix.h"

#define OK GRPC_STATUS_OK

#define CHECK(line, cond)                                                                          \
    CU_assertImplementation((cond), (unsigned)(line), #cond, __FILE__, "", CU_FALSE)

#define FREE_MSG(m)                                                                                \
    do {                                                                                           \
        if ((m) != NULL)                                                                           \
            protobuf_c_message_free_unpacked(&(m)->base, NULL);                                    \
        (m) = NULL;                                                                                \
    } while (0)

/* Prints "line N: what -> CODE "msg"" to stderr. */
void qreport(int line, const char *what, grpc_status_code code, const trpc_status *st);

/* Asserts code == OK; prints the call otherwise. Evaluates to the check. */
int qcheck_ok(int line, const char *what, grpc_status_code code, const trpc_status *st);
#define CHECK_OK(code, st) qcheck_ok(__LINE__, #code, (code), (st))

/* Asserts an error reply: code == want, and a message that is short, says
 * something, and leaks nothing of the database (no SQL, no libpq text). */
void qcheck_error(int line, const char *what, grpc_status_code code, const trpc_status *st,
                  grpc_status_code want);

/* Runs call (an expression that may use `&st_`) and checks it failed with
 * want (qcheck_error). */
#define EXPECT_ERR(want, call)                                                                     \
    do {                                                                                           \
        trpc_status st_ = {0};                                                                     \
        grpc_status_code code_ = (call);                                                           \
        qcheck_error(__LINE__, #call, code_, &st_, (want));                                        \
    } while (0)

/* ---- generic calls ---- */

/* The QueryService method called name ("GetAccount"); NULL if unknown. */
const trpc_method_desc *qmethod(const char *name);

/* One call of m; the reply (if any) is dropped. */
grpc_status_code qcall(const trpc_method_desc *m, const ProtobufCMessage *req,
                       const trpc_call_opts *o, trpc_status *st);

/* A valid request of m (free()): every id field set to id, aggregate_type
 * "account", correlation_id corr, a date range of today, GetAccountAt at
 * version 1, and min_position (when the message has one) = *pos (pos may
 * be NULL; posbuf holds the copy and must outlive the message). */
ProtobufCMessage *qany_request(const trpc_method_desc *m, const char *id, const char *corr,
                               const Tally__V1__Position *pos, Tally__V1__Position *posbuf);

/* True when m's request has a min_position field. */
int qhas_min_position(const trpc_method_desc *m);

/* ---- typed helpers ---- */

/* GetAccount with t's token (min_position from r, NULL = none). */
grpc_status_code qget_account(const struct qtenant *t, const char *id, const struct qres *r,
                              int64_t timeout_ms, Tally__V1__Account **out, trpc_status *st);

/* Every page of ListAccounts (filters: status 0 = any, owner/currency NULL
 * = any) with page_size, min_position from r (NULL = none), ids in order
 * into ids (capacity max). Returns the count, or -1 after reporting a
 * failed call (or overflow). *pages gets the number of calls. */
int qlist_accounts_all(const struct qtenant *t, int status, const char *owner, const char *currency,
                       int page_size, const struct qres *r, char ids[][QFIX_ID], int max,
                       int *pages);

/* Every page of ListEntries: versions into versions (capacity max), the
 * entries themselves (when entries is not NULL, capacity max; FREE_MSG each
 * via qentries_free). from_us / to_us 0 = unset. Returns the count or -1. */
int qlist_entries_all(const struct qtenant *t, const char *id, int backwards, int64_t from_us,
                      int64_t to_us, int page_size, const struct qres *r, int64_t *versions,
                      Tally__V1__Entry **entries, int max, int *pages);
void qentries_free(Tally__V1__Entry **entries, int n);

/* Every event of ReadAll from the start (after NULL) in pages of limit,
 * with filter (may be NULL): copies of the events into out (capacity max;
 * free with qevents_free). *last gets the final next_position. Returns the
 * count or -1. */
int qread_all(const struct qtenant *t, const Tally__V1__EventFilter *filter, int limit,
              Tally__V1__Event **out, int max, Tally__V1__Position *last, int *pages);
void qevents_free(Tally__V1__Event **ev, int n);

/* GetProjectionStatus (t's token). */
grpc_status_code qstatus(const struct qtenant *t, Tally__V1__ProjectionStatus **out,
                         trpc_status *st);

/* A Timestamp from microseconds since the epoch (caller-owned ts). */
Google__Protobuf__Timestamp *qts(Google__Protobuf__Timestamp *ts, int64_t us);
int64_t qts_us(const Google__Protobuf__Timestamp *ts);

/* (a.tx, a.gp) vs (b.tx, b.gp): <0, 0, >0. NULL counts as {0,0}. */
int qpos_cmp(const Tally__V1__Position *a, const Tally__V1__Position *b);

/* UTC day "YYYY-MM-DD" of now + days (from the database's clock). */
void qday(char out[11], int days);

/* ---- forged page tokens ----
 * The token format of server/query/cursor.c (base64url of
 * {"c":kind,"f":fingerprint,"k":[keys]}) with a fingerprint computed as the
 * server does (SHA-256 of kind, tenant and parameters; NULL params count as
 * absent): what a client who read the source could forge. out: 2048 bytes.
 * keys_json is the JSON array text, e.g. "[\"1\",\"abc\"]". */
void qforge_token(char *out, const char *kind, const char *tenant_id, const char *const *params,
                  int n, const char *keys_json);
/* base64url (no padding) of text. out: 2048 bytes. */
void qb64url(char *out, const char *text);

/* ---- the read-model suite's data (tenant R), shared ---- */

struct rdata {
    struct qtenant t;
    struct qres a1, a2, a3, a4, a5; /* the accounts (id = account id) */
    struct qres dep, wd, pay, refund, frz, cls, t1, t2, t3, usd;
    char corr_t1[64];
    int ready;
};
extern struct rdata RD;

#endif /* TESTS_QUERY_QCHECK_H */
