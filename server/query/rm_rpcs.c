/* rm_rpcs.c - see rm_rpcs.h. Replies borrow strings from the PGresult,
 * which is cleared after the reply is packed (trpc_call_defer). */
#include "rm_rpcs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cursor.h"
#include "log.h"
#include "money.h"
#include "qexec.h"
#include "text.h"
#include "uuid.h"

static void pqclear_defer(void *res)
{
    PQclear(res);
}

/* Runs sql and keeps the result until the reply is packed. NULL with st
 * set on failure (the handler returns qry_finish(call, st)). */
static PGresult *query(struct qry *q, const char *sql, int n, const char *const *values,
                       int nfields, const char *what, trpc_status *st)
{
    PGresult *res = PQexecParams(q->conn, sql, n, NULL, values, NULL, NULL, 0);

    trpc_call_defer(q->call, pqclear_defer, res);
    if (pg_check(res, PGRES_TUPLES_OK, nfields, st, what, "%s tenant=%s", trpc_call_path(q->call),
                 q->who.tenant_id) != GRPC_STATUS_OK)
        return NULL;
    return res;
}

static int64_t col_int64(const PGresult *res, int row, int col)
{
    int64_t v = 0;

    pg_get_int64(res, row, col, &v);
    return v;
}

static Tally__V1__Money *money_at(trpc_call *call, int64_t minor, char *currency)
{
    Tally__V1__Money *m =
        (Tally__V1__Money *)trpc_call_new_message(call, &tally__v1__money__descriptor);

    m->minor_units = minor;
    m->currency = currency;
    return m;
}

/* ---- accounts ---- */

#define ACCOUNT_COLUMNS                                                                            \
    "account_id::text, owner, currency, status, balance, overdraft_limit, version, " QRY_US_SQL(   \
        "opened_at") ", " QRY_US_SQL("updated_at")
#define N_ACCOUNT_COLUMNS 9

static Tally__V1__AccountStatus account_status(const char *s)
{
    if (strcmp(s, "OPEN") == 0)
        return TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN;
    if (strcmp(s, "FROZEN") == 0)
        return TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_FROZEN;
    if (strcmp(s, "CLOSED") == 0)
        return TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_CLOSED;
    return TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_UNSPECIFIED;
}

static void account_from_row(trpc_call *call, const PGresult *res, int row, Tally__V1__Account *a)
{
    a->account_id = PQgetvalue(res, row, 0);
    a->owner = PQgetvalue(res, row, 1);
    a->currency = PQgetvalue(res, row, 2);
    a->status = account_status(PQgetvalue(res, row, 3));
    a->balance = money_at(call, col_int64(res, row, 4), a->currency);
    a->overdraft_limit = col_int64(res, row, 5);
    a->version = col_int64(res, row, 6);
    a->opened_at = qry_timestamp(call, col_int64(res, row, 7));
    a->updated_at = qry_timestamp(call, col_int64(res, row, 8));
}

grpc_status_code qry_get_account(trpc_call *call, const Tally__V1__GetAccountRequest *req,
                                 Tally__V1__Account *resp)
{
    static const char sql[] = "SELECT " ACCOUNT_COLUMNS " FROM rm.accounts"
                              " WHERE tenant_id = $1::uuid AND account_id = $2::uuid";
    struct qry q;
    trpc_status st;
    char id[UUID_STR_SIZE];
    const char *values[2];
    PGresult *res;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK ||
        uuid_check("account_id", req->account_id, id, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    values[0] = q.who.tenant_id;
    values[1] = id;
    if ((res = query(&q, sql, 2, values, N_ACCOUNT_COLUMNS, "could not read the account", &st)) ==
        NULL)
        return qry_finish(call, &st);
    if (PQntuples(res) == 0)
        return trpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "account %s not found", id);
    account_from_row(call, res, 0, resp);
    return GRPC_STATUS_OK;
}

static const char *status_filter(Tally__V1__AccountStatus s)
{
    switch (s) {
    case TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN:
        return "OPEN";
    case TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_FROZEN:
        return "FROZEN";
    case TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_CLOSED:
        return "CLOSED";
    default:
        return NULL;
    }
}

/* The range of an opened_at key: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z,
 * microseconds since the epoch. */
#define CURSOR_MIN_US (-62135596800LL * 1000000)
#define CURSOR_MAX_US (253402300799LL * 1000000 + 999999)

/* A cursor key that must be a decimal int64. */
static grpc_status_code int64_key(const char *s, int64_t *out, trpc_status *st)
{
    char *end;

    errno = 0;
    *out = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0')
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "invalid page_token (it must come from the same request)");
    return GRPC_STATUS_OK;
}

/* The keys of a ListAccounts page token: opened_at (microseconds since the
 * epoch) must be a time PostgreSQL can add to the epoch (a forged key beyond
 * 0001..9999 would fail in SQL, not as a bad token), then the account id. */
static grpc_status_code account_cursor_key(char keys[][CURSOR_KEY_SIZE], int64_t *us,
                                           trpc_status *st)
{
    if (int64_key(keys[0], us, st) != GRPC_STATUS_OK)
        return st->code;
    if (*us < CURSOR_MIN_US || *us > CURSOR_MAX_US || !uuid_is_valid(keys[1]))
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "invalid page_token");
    return GRPC_STATUS_OK;
}

grpc_status_code qry_list_accounts(trpc_call *call, const Tally__V1__ListAccountsRequest *req,
                                   Tally__V1__ListAccountsResponse *resp)
{
    /* Keyset paging on (opened_at, account_id): a row that exists when the
     * first page is read is returned exactly once, whatever arrives meanwhile. */
    static const char sql[] =
        "SELECT " ACCOUNT_COLUMNS " FROM rm.accounts"
        " WHERE tenant_id = $1::uuid"
        "   AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR owner = $3)"
        "   AND ($4::text IS NULL OR currency = $4)"
        "   AND ($5::bigint IS NULL OR (opened_at, account_id) > (" QRY_TS_SQL(
            "$5") ", $6::uuid))"
                  " ORDER BY opened_at, account_id LIMIT $7::int";
    struct qry q;
    trpc_status st;
    const char *status = status_filter(req->status);
    const char *owner = req->owner[0] ? req->owner : NULL;
    const char *currency = req->currency[0] ? req->currency : NULL;
    const char *params[3] = {status, owner, currency};
    const char *values[7];
    char keys[2][CURSOR_KEY_SIZE], limbuf[PG_INT_BUF];
    uint8_t fp[CURSOR_FP_LEN];
    int page, n;
    PGresult *res;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK ||
        qry_page_size("page_size", req->page_size, QRY_PAGE_DEFAULT, QRY_PAGE_MAX, &page, &st) !=
            GRPC_STATUS_OK ||
        text_check("owner", req->owner, 0, TALLY_MAX_TEXT_BYTES, &st) != GRPC_STATUS_OK ||
        (currency && money_check_currency("currency", currency, &st) != GRPC_STATUS_OK))
        return qry_finish(call, &st);
    if (req->status != TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_UNSPECIFIED && status == NULL)
        return trpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "unknown status %d",
                              (int)req->status);
    cursor_fingerprint("accounts", q.who.tenant_id, params, 3, fp);
    values[0] = q.who.tenant_id;
    values[1] = status;
    values[2] = owner;
    values[3] = currency;
    values[4] = values[5] = NULL;
    if (req->page_token[0]) {
        int64_t us;

        if (cursor_decode(req->page_token, "accounts", fp, keys, 2, &st) != GRPC_STATUS_OK ||
            account_cursor_key(keys, &us, &st) != GRPC_STATUS_OK)
            return qry_finish(call, &st);
        values[4] = keys[0];
        values[5] = keys[1];
    }
    values[6] = pg_int64_param(limbuf, page + 1); /* one more tells whether a next page exists */
    if ((res = query(&q, sql, 7, values, N_ACCOUNT_COLUMNS, "could not list accounts", &st)) ==
        NULL)
        return qry_finish(call, &st);
    n = PQntuples(res) > page ? page : PQntuples(res);
    resp->accounts = trpc_call_alloc(call, sizeof(*resp->accounts) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        Tally__V1__Account *a =
            (Tally__V1__Account *)trpc_call_new_message(call, &tally__v1__account__descriptor);

        account_from_row(call, res, i, a);
        resp->accounts[i] = a;
    }
    resp->n_accounts = (size_t)n;
    if (PQntuples(res) > page) {
        const char *k[2] = {PQgetvalue(res, n - 1, 7), PQgetvalue(res, n - 1, 0)};

        resp->next_page_token = cursor_encode(call, "accounts", fp, k, 2);
    }
    return GRPC_STATUS_OK;
}

/* ---- entries ---- */

static Tally__V1__EntryKind entry_kind(const char *s)
{
    static const struct {
        const char *name;
        Tally__V1__EntryKind kind;
    } kinds[] = {
        {"DEPOSIT", TALLY__V1__ENTRY_KIND__ENTRY_KIND_DEPOSIT},
        {"WITHDRAWAL", TALLY__V1__ENTRY_KIND__ENTRY_KIND_WITHDRAWAL},
        {"TRANSFER_OUT", TALLY__V1__ENTRY_KIND__ENTRY_KIND_TRANSFER_OUT},
        {"TRANSFER_IN", TALLY__V1__ENTRY_KIND__ENTRY_KIND_TRANSFER_IN},
        {"TRANSFER_REVERSAL", TALLY__V1__ENTRY_KIND__ENTRY_KIND_TRANSFER_REVERSAL},
        {"PAYMENT", TALLY__V1__ENTRY_KIND__ENTRY_KIND_PAYMENT},
        {"REFUND", TALLY__V1__ENTRY_KIND__ENTRY_KIND_REFUND},
    };

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(s, kinds[i].name) == 0)
            return kinds[i].kind;
    return TALLY__V1__ENTRY_KIND__ENTRY_KIND_UNSPECIFIED;
}

grpc_status_code qry_list_entries(trpc_call *call, const Tally__V1__ListEntriesRequest *req,
                                  Tally__V1__ListEntriesResponse *resp)
{
    /* Keyset paging on the account's stream version (immutable, unique). */
    static const char fwd[] =
        "SELECT version, kind, amount, currency, balance_after,"
        "       COALESCE(counterpart_account_id::text, ''), operation_id::text, correlation_id,"
        "       reference, " QRY_US_SQL(
            "recorded_at") ", tx_id::text, global_position"
                           "  FROM rm.entries"
                           " WHERE tenant_id = $1::uuid AND account_id = $2::uuid"
                           "   AND ($3::bigint IS NULL OR recorded_at >= " QRY_TS_SQL(
                               "$3") ")"
                                     "   AND ($4::bigint IS NULL OR recorded_at < " QRY_TS_SQL(
                                         "$4") ")"
                                               "   AND ($5::bigint IS NULL OR version > $5::bigint)"
                                               " ORDER BY version LIMIT $6::int";
    static const char bwd[] =
        "SELECT version, kind, amount, currency, balance_after,"
        "       COALESCE(counterpart_account_id::text, ''), operation_id::text, correlation_id,"
        "       reference, " QRY_US_SQL(
            "recorded_at") ", tx_id::text, global_position"
                           "  FROM rm.entries"
                           " WHERE tenant_id = $1::uuid AND account_id = $2::uuid"
                           "   AND ($3::bigint IS NULL OR recorded_at >= " QRY_TS_SQL(
                               "$3") ")"
                                     "   AND ($4::bigint IS NULL OR recorded_at < " QRY_TS_SQL(
                                         "$4") ")"
                                               "   AND ($5::bigint IS NULL OR version < $5::bigint)"
                                               " ORDER BY version DESC LIMIT $6::int";
    static const char exists[] = "SELECT 1 FROM rm.accounts"
                                 " WHERE tenant_id = $1::uuid AND account_id = $2::uuid";
    struct qry q;
    trpc_status st;
    char id[UUID_STR_SIZE], from[PG_INT_BUF], to[PG_INT_BUF], limbuf[PG_INT_BUF];
    char keys[1][CURSOR_KEY_SIZE];
    int backwards = req->direction == TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS;
    int64_t from_us = 0, to_us = 0, key;
    const char *values[6], *params[3];
    uint8_t fp[CURSOR_FP_LEN];
    int page, n;
    PGresult *res;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK ||
        uuid_check("account_id", req->account_id, id, &st) != GRPC_STATUS_OK ||
        qry_page_size("page_size", req->page_size, QRY_PAGE_DEFAULT, QRY_PAGE_MAX, &page, &st) !=
            GRPC_STATUS_OK ||
        (req->from_time && qry_timestamp_us("from_time", req->from_time, &from_us, &st)) ||
        (req->to_time && qry_timestamp_us("to_time", req->to_time, &to_us, &st)))
        return qry_finish(call, &st);
    if (req->from_time && req->to_time && to_us <= from_us)
        return trpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                              "to_time must be after from_time");
    values[0] = q.who.tenant_id;
    values[1] = id;
    values[2] = req->from_time ? pg_int64_param(from, from_us) : NULL;
    values[3] = req->to_time ? pg_int64_param(to, to_us) : NULL;
    values[4] = NULL;
    params[0] = id;
    params[1] = backwards ? "backwards" : "forwards";
    params[2] = NULL;
    {
        char range[2 * PG_INT_BUF + 2];

        snprintf(range, sizeof(range), "%s/%s", values[2] ? values[2] : "-",
                 values[3] ? values[3] : "-");
        params[2] = range;
        cursor_fingerprint("entries", q.who.tenant_id, params, 3, fp);
    }
    if (req->page_token[0]) {
        if (cursor_decode(req->page_token, "entries", fp, keys, 1, &st) != GRPC_STATUS_OK ||
            int64_key(keys[0], &key, &st) != GRPC_STATUS_OK)
            return qry_finish(call, &st);
        values[4] = keys[0];
    }
    values[5] = pg_int64_param(limbuf, page + 1);
    if ((res = query(&q, backwards ? bwd : fwd, 6, values, 12, "could not list entries", &st)) ==
        NULL)
        return qry_finish(call, &st);
    if (PQntuples(res) == 0 && !req->page_token[0]) {
        /* no lines: an empty account, or none of ours */
        PGresult *e = query(&q, exists, 2, values, 1, "could not list entries", &st);

        if (e == NULL)
            return qry_finish(call, &st);
        if (PQntuples(e) == 0)
            return trpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "account %s not found", id);
    }
    n = PQntuples(res) > page ? page : PQntuples(res);
    resp->entries = trpc_call_alloc(call, sizeof(*resp->entries) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        Tally__V1__Entry *e =
            (Tally__V1__Entry *)trpc_call_new_message(call, &tally__v1__entry__descriptor);
        Tally__V1__Position *p =
            (Tally__V1__Position *)trpc_call_new_message(call, &tally__v1__position__descriptor);
        char *currency = PQgetvalue(res, i, 3);

        e->account_id = trpc_call_strdup(call, id);
        e->version = col_int64(res, i, 0);
        e->kind = entry_kind(PQgetvalue(res, i, 1));
        e->amount = money_at(call, col_int64(res, i, 2), currency);
        e->balance_after = money_at(call, col_int64(res, i, 4), currency);
        e->counterpart_account_id = PQgetvalue(res, i, 5);
        e->operation_id = PQgetvalue(res, i, 6);
        e->correlation_id = PQgetvalue(res, i, 7);
        e->reference = PQgetvalue(res, i, 8);
        e->recorded_at = qry_timestamp(call, col_int64(res, i, 9));
        pg_get_uint64(res, i, 10, &p->tx_id);
        p->global_position = col_int64(res, i, 11);
        e->position = p;
        resp->entries[i] = e;
    }
    resp->n_entries = (size_t)n;
    if (PQntuples(res) > page) {
        const char *k[1] = {PQgetvalue(res, n - 1, 0)};

        resp->next_page_token = cursor_encode(call, "entries", fp, k, 1);
    }
    return GRPC_STATUS_OK;
}

/* ---- transfers ---- */

static Tally__V1__TransferState transfer_state(const char *s)
{
    if (strcmp(s, "REQUESTED") == 0)
        return TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_REQUESTED;
    if (strcmp(s, "DEBITED") == 0)
        return TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_DEBITED;
    if (strcmp(s, "COMPLETED") == 0)
        return TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_COMPLETED;
    if (strcmp(s, "REVERSED") == 0)
        return TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_REVERSED;
    if (strcmp(s, "FAILED") == 0)
        return TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_FAILED;
    return TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_UNSPECIFIED;
}

static Tally__V1__OperationStatus op_status(const char *s)
{
    if (strcmp(s, "SUCCEEDED") == 0)
        return TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED;
    if (strcmp(s, "FAILED") == 0)
        return TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED;
    return TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_PENDING;
}

grpc_status_code qry_get_transfer(trpc_call *call, const Tally__V1__GetTransferRequest *req,
                                  Tally__V1__Transfer *resp)
{
    /* A row exists from the first transfer event applied; until its
     * TransferRequested is applied the request's columns are NULL. */
    static const char sql[] =
        "SELECT transfer_id::text, COALESCE(source_account_id::text, ''),"
        "       COALESCE(destination_account_id::text, ''), COALESCE(amount, 0),"
        "       COALESCE(currency, ''), state, status, COALESCE(failure_reason, ''),"
        "       COALESCE(operation_id::text, ''), COALESCE(correlation_id, ''),"
        "       " QRY_US_SQL("COALESCE(requested_at, updated_at)") ", " QRY_US_SQL(
            "updated_at") "  FROM rm.transfers WHERE tenant_id = $1::uuid AND transfer_id = "
                          "$2::uuid";
    struct qry q;
    trpc_status st;
    char id[UUID_STR_SIZE];
    const char *values[2];
    PGresult *res;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK ||
        uuid_check("transfer_id", req->transfer_id, id, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    values[0] = q.who.tenant_id;
    values[1] = id;
    if ((res = query(&q, sql, 2, values, 12, "could not read the transfer", &st)) == NULL)
        return qry_finish(call, &st);
    if (PQntuples(res) == 0)
        return trpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "transfer %s not found", id);
    resp->transfer_id = PQgetvalue(res, 0, 0);
    resp->source_account_id = PQgetvalue(res, 0, 1);
    resp->destination_account_id = PQgetvalue(res, 0, 2);
    resp->amount = money_at(call, col_int64(res, 0, 3), PQgetvalue(res, 0, 4));
    resp->state = transfer_state(PQgetvalue(res, 0, 5));
    resp->status = op_status(PQgetvalue(res, 0, 6));
    resp->failure_reason = PQgetvalue(res, 0, 7);
    resp->operation_id = PQgetvalue(res, 0, 8);
    resp->correlation_id = PQgetvalue(res, 0, 9);
    resp->requested_at = qry_timestamp(call, col_int64(res, 0, 10));
    resp->updated_at = qry_timestamp(call, col_int64(res, 0, 11));
    return GRPC_STATUS_OK;
}

/* ---- usage ---- */

/* A "YYYY-MM-DD" day: OK with its days since the epoch in *days. */
static grpc_status_code parse_day(const char *field, const char *s, long *days, trpc_status *st)
{
    struct tm tm = {0};
    int y, m, d, n = 0;

    /* digits at fixed places: sscanf alone would take signs and spaces */
    for (int i = 0; i < 10 && s[i]; i++)
        if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                                   "%s must be a date YYYY-MM-DD (1970..9999)", field);
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || m < 1 ||
        m > 12 || d < 1 || d > 31 || y < 1970 || y > 9999)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "%s must be a date YYYY-MM-DD (1970..9999)", field);
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    *days = (long)(timegm(&tm) / 86400);
    if (tm.tm_mday != d) /* normalized: Feb 30 and friends */
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s is not a valid date", field);
    return GRPC_STATUS_OK;
}

grpc_status_code qry_get_tenant_usage(trpc_call *call, const Tally__V1__GetTenantUsageRequest *req,
                                      Tally__V1__GetTenantUsageResponse *resp)
{
    static const char sql[] =
        "SELECT to_char(day, 'YYYY-MM-DD'), event_type, currency, event_count, volume::text"
        "  FROM rm.usage_daily"
        " WHERE tenant_id = $1::uuid AND day BETWEEN $2::date AND $3::date"
        " ORDER BY day, event_type, currency";
    struct qry q;
    trpc_status st;
    long from, to;
    const char *values[3];
    PGresult *res;
    Tally__V1__UsageRow *row = NULL;
    size_t cap;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK ||
        parse_day("from_date", req->from_date, &from, &st) != GRPC_STATUS_OK ||
        parse_day("to_date", req->to_date, &to, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    if (to < from)
        return trpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                              "to_date must not be before from_date");
    if (to - from > 365)
        return trpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "the range is at most 366 days");
    values[0] = q.who.tenant_id;
    values[1] = req->from_date;
    values[2] = req->to_date;
    if ((res = query(&q, sql, 3, values, 5, "could not read the usage", &st)) == NULL)
        return qry_finish(call, &st);
    cap = (size_t)PQntuples(res);
    resp->rows = trpc_call_alloc(call, sizeof(*resp->rows) * (cap ? cap : 1));
    /* one UsageRow per (day, event type) (rows i..j-1 of the result); its
     * volume has one Money per currency */
    for (int i = 0, j; i < PQntuples(res); i = j) {
        const char *day = PQgetvalue(res, i, 0), *type = PQgetvalue(res, i, 1);

        for (j = i + 1; j < PQntuples(res) && strcmp(PQgetvalue(res, j, 0), day) == 0 &&
                        strcmp(PQgetvalue(res, j, 1), type) == 0;
             j++)
            ;
        row = (Tally__V1__UsageRow *)trpc_call_new_message(call, &tally__v1__usage_row__descriptor);
        row->date = (char *)day;
        row->event_type = (char *)type;
        row->volume = trpc_call_alloc(call, sizeof(*row->volume) * (size_t)(j - i));
        resp->rows[resp->n_rows++] = row;
        for (int k = i; k < j; k++) {
            char *currency = PQgetvalue(res, k, 2);
            int64_t volume;

            row->event_count += col_int64(res, k, 3);
            if (currency[0] == '\0')
                continue;
            if (pg_get_int64(res, k, 4, &volume) != 0)
                return trpc_call_fail(call, GRPC_STATUS_OUT_OF_RANGE,
                                      "volume of %s on %s exceeds int64", type, day);
            row->volume[row->n_volume++] = money_at(call, volume, currency);
        }
    }
    return GRPC_STATUS_OK;
}
