/* rmapply.c - see rmapply.h. One statement per event: data-modifying CTEs
 * write every table the event touches, and the final SELECT counts the rows
 * the guarded change hit (1 = applied); plus one usage statement per batch. */
#include "rmapply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "evcodec.h"
#include "log.h"
#include "pg.h"
#include "transfer.h"

/* rm.transfers, column by column: a later event never erases what an
 * earlier one (of any stream) set, whatever the order. */
#define TRANSFER_UPSERT_SET                                                                        \
    " ON CONFLICT (tenant_id, transfer_id) DO UPDATE SET"                                          \
    "  source_account_id = COALESCE(EXCLUDED.source_account_id, t.source_account_id),"             \
    "  destination_account_id = COALESCE(EXCLUDED.destination_account_id,"                         \
    "                                    t.destination_account_id),"                               \
    "  amount = COALESCE(EXCLUDED.amount, t.amount),"                                              \
    "  currency = COALESCE(EXCLUDED.currency, t.currency),"                                        \
    "  reference = COALESCE(EXCLUDED.reference, t.reference),"                                     \
    "  operation_id = COALESCE(EXCLUDED.operation_id, t.operation_id),"                            \
    "  correlation_id = COALESCE(EXCLUDED.correlation_id, t.correlation_id),"                      \
    "  requested_at = COALESCE(EXCLUDED.requested_at, t.requested_at),"                            \
    "  debited_at = COALESCE(EXCLUDED.debited_at, t.debited_at),"                                  \
    "  credited_at = COALESCE(EXCLUDED.credited_at, t.credited_at),"                               \
    "  reversed_at = COALESCE(EXCLUDED.reversed_at, t.reversed_at),"                               \
    "  completed_at = COALESCE(EXCLUDED.completed_at, t.completed_at),"                            \
    "  failed_at = COALESCE(EXCLUDED.failed_at, t.failed_at),"                                     \
    "  failure_reason = COALESCE(EXCLUDED.failure_reason, t.failure_reason),"                      \
    "  compensated = COALESCE(EXCLUDED.compensated, t.compensated),"                               \
    "  updated_at = GREATEST(EXCLUDED.updated_at, t.updated_at)"

/* $3 account, $4 owner, $5 currency, $6 overdraft, $7 version */
static const char OPEN_SQL[] =
    "WITH a AS ("
    "  INSERT INTO accounts (tenant_id, account_id, owner, currency, status, balance,"
    "                        overdraft_limit, version, opened_at, updated_at)"
    "  VALUES ($1::uuid, $3::uuid, $4, $5, 'OPEN', 0, $6::bigint, $7::bigint,"
    "          $2::timestamptz, $2::timestamptz)"
    "  ON CONFLICT DO NOTHING RETURNING 1"
    ") SELECT count(*) FROM a";
#define OPEN_NPARAMS 7

/* $3 account, $4 version, $5 delta, $6 currency, $7 kind, $8 counterpart,
 * $9 transfer_id, $10 payment_id, $11 reference, $12 operation_id,
 * $13 correlation_id, $14 tx_id, $15 global_position, $16 transfer source,
 * $17 transfer destination, $18 debited, $19 credited, $20 reversed */
static const char BALANCE_SQL[] =
    "WITH a AS ("
    "  UPDATE accounts SET balance = balance + $5::bigint, version = $4::bigint,"
    "                      updated_at = $2::timestamptz"
    "   WHERE tenant_id = $1::uuid AND account_id = $3::uuid AND version = $4::bigint - 1"
    "     AND currency = $6"
    "  RETURNING balance"
    "), e AS ("
    "  INSERT INTO entries (tenant_id, account_id, version, kind, amount, currency, balance_after,"
    "                       counterpart_account_id, transfer_id, payment_id, reference,"
    "                       operation_id, correlation_id, recorded_at, tx_id, global_position)"
    "  SELECT $1::uuid, $3::uuid, $4::bigint, $7, $5::bigint, $6, a.balance, $8::uuid,"
    "         $9::uuid, $10::uuid, $11, $12::uuid, $13, $2::timestamptz, $14::xid8, $15::bigint"
    "    FROM a"
    "  RETURNING 1"
    "), tr AS ("
    "  INSERT INTO transfers AS t (tenant_id, transfer_id, source_account_id,"
    "                              destination_account_id, amount, currency, debited_at,"
    "                              credited_at, reversed_at, updated_at)"
    "  SELECT $1::uuid, $9::uuid, $16::uuid, $17::uuid, abs($5::bigint), $6,"
    "         CASE WHEN $18::boolean THEN $2::timestamptz END,"
    "         CASE WHEN $19::boolean THEN $2::timestamptz END,"
    "         CASE WHEN $20::boolean THEN $2::timestamptz END, $2::timestamptz"
    "    FROM a WHERE $9::uuid IS NOT NULL" TRANSFER_UPSERT_SET ")"
    " SELECT count(*) FROM e";
#define BALANCE_NPARAMS 20

/* $3 account, $4 version, $5 status */
static const char STATUS_SQL[] =
    "WITH a AS ("
    "  UPDATE accounts SET status = $5, version = $4::bigint, updated_at = $2::timestamptz"
    "   WHERE tenant_id = $1::uuid AND account_id = $3::uuid AND version = $4::bigint - 1"
    "  RETURNING 1"
    ") SELECT count(*) FROM a";
#define STATUS_NPARAMS 5

/* $3 transfer_id, $4 source, $5 destination, $6 amount, $7 currency,
 * $8 reference, $9 operation_id, $10 correlation_id, $11 requested,
 * $12 completed, $13 failed, $14 failure_reason, $15 compensated */
static const char TRANSFER_SQL[] =
    "WITH tr AS ("
    "  INSERT INTO transfers AS t (tenant_id, transfer_id, source_account_id,"
    "                              destination_account_id, amount, currency, reference,"
    "                              operation_id, correlation_id, requested_at, completed_at,"
    "                              failed_at, failure_reason, compensated, updated_at)"
    "  VALUES ($1::uuid, $3::uuid, $4::uuid, $5::uuid, $6::bigint, $7, $8, $9::uuid, $10,"
    "          CASE WHEN $11::boolean THEN $2::timestamptz END,"
    "          CASE WHEN $12::boolean THEN $2::timestamptz END,"
    "          CASE WHEN $13::boolean THEN $2::timestamptz END, $14, $15::boolean,"
    "          $2::timestamptz)" TRANSFER_UPSERT_SET " RETURNING 1"
    ") SELECT count(*) FROM tr";
#define TRANSFER_NPARAMS 15

/* rm.usage_daily, once per batch with the batch's sums (one row per tenant,
 * day, type and currency: updating a shared row once per event would make a
 * batch quadratic in its size): $1..$6 arrays of tenant, day, event type,
 * currency, count, volume. */
static const char USAGE_SQL[] =
    "INSERT INTO usage_daily AS x (tenant_id, day, event_type, currency, event_count, volume)"
    " SELECT * FROM unnest($1::uuid[], $2::date[], $3::text[], $4::text[], $5::bigint[],"
    "                      $6::numeric[])"
    " ON CONFLICT (tenant_id, day, event_type, currency)"
    " DO UPDATE SET event_count = x.event_count + EXCLUDED.event_count,"
    "               volume = x.volume + EXCLUDED.volume";
#define USAGE_NPARAMS 6

#define MAX_PARAMS 20

/* ---- decoding (pure) ---- */

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static void set_usage(struct rmapply_change *c, const struct money *m)
{
    copy(c->usage_currency, sizeof(c->usage_currency), m->currency);
    c->usage_volume = m->minor_units;
}

static void set_balance(struct rmapply_change *c, const char *kind, int64_t sign,
                        const struct money *m)
{
    c->kind = RMAPPLY_BALANCE;
    c->entry_kind = kind;
    c->delta = sign * m->minor_units;
    copy(c->currency, sizeof(c->currency), m->currency);
    set_usage(c, m);
}

/* The transfers columns an account-stream transfer event fills. */
static void set_transfer_leg(struct rmapply_change *c, const struct rawlog_event *ev,
                             const char *transfer_id, const char *counterpart, int incoming,
                             const struct money *m)
{
    copy(c->transfer_id, sizeof(c->transfer_id), transfer_id);
    copy(c->counterpart_account_id, sizeof(c->counterpart_account_id), counterpart);
    copy(c->reference, sizeof(c->reference), transfer_id);
    copy(c->source_account_id, sizeof(c->source_account_id),
         incoming ? counterpart : ev->aggregate_id);
    copy(c->destination_account_id, sizeof(c->destination_account_id),
         incoming ? ev->aggregate_id : counterpart);
    c->transfer_amount = m->minor_units;
    copy(c->transfer_currency, sizeof(c->transfer_currency), m->currency);
}

static grpc_status_code decode_account(const struct rawlog_event *ev, const Tally__V1__Event *env,
                                       struct rmapply_change *c, trpc_status *st)
{
    struct account_event a;

    if (strcmp(ev->aggregate_type, ACCOUNT_AGGREGATE_TYPE) != 0)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s event in a %s stream", ev->event_type,
                               ev->aggregate_type);
    if (account_event_from_proto(env, &a, st) != GRPC_STATUS_OK)
        return st->code;
    switch (a.type) {
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED:
        if (strcmp(a.u.account_opened.account_id, ev->aggregate_id) != 0 || ev->version != 1)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                                   "AccountOpened of another account or not at version 1");
        c->kind = RMAPPLY_OPEN;
        copy(c->owner, sizeof(c->owner), a.u.account_opened.owner);
        copy(c->currency, sizeof(c->currency), a.u.account_opened.currency);
        c->overdraft_limit = a.u.account_opened.overdraft_limit;
        break;
    case TALLY__V1__EVENT__PAYLOAD_DEPOSITED:
        set_balance(c, "DEPOSIT", 1, &a.u.deposited.amount);
        copy(c->reference, sizeof(c->reference), a.u.deposited.reference);
        break;
    case TALLY__V1__EVENT__PAYLOAD_WITHDRAWN:
        set_balance(c, "WITHDRAWAL", -1, &a.u.withdrawn.amount);
        copy(c->reference, sizeof(c->reference), a.u.withdrawn.reference);
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED:
        set_balance(c, "TRANSFER_OUT", -1, &a.u.transfer_debited.amount);
        set_transfer_leg(c, ev, a.u.transfer_debited.transfer_id,
                         a.u.transfer_debited.counterpart_account_id, 0,
                         &a.u.transfer_debited.amount);
        c->debited = true;
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED:
        set_balance(c, "TRANSFER_IN", 1, &a.u.transfer_credited.amount);
        set_transfer_leg(c, ev, a.u.transfer_credited.transfer_id,
                         a.u.transfer_credited.counterpart_account_id, 1,
                         &a.u.transfer_credited.amount);
        c->credited = true;
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED:
        set_balance(c, "TRANSFER_REVERSAL", 1, &a.u.transfer_debit_reversed.amount);
        set_transfer_leg(c, ev, a.u.transfer_debit_reversed.transfer_id,
                         a.u.transfer_debit_reversed.counterpart_account_id, 0,
                         &a.u.transfer_debit_reversed.amount);
        c->reversed = true;
        break;
    case TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE:
        set_balance(c, "PAYMENT", -1, &a.u.payment_made.amount);
        copy(c->payment_id, sizeof(c->payment_id), a.u.payment_made.payment_id);
        copy(c->reference, sizeof(c->reference), a.u.payment_made.merchant_reference);
        break;
    case TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED:
        set_balance(c, "REFUND", 1, &a.u.payment_refunded.amount);
        copy(c->payment_id, sizeof(c->payment_id), a.u.payment_refunded.payment_id);
        copy(c->reference, sizeof(c->reference), a.u.payment_refunded.payment_id);
        break;
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN:
        c->kind = RMAPPLY_STATUS;
        c->status = "FROZEN";
        break;
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN:
        c->kind = RMAPPLY_STATUS;
        c->status = "OPEN";
        break;
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_CLOSED:
        c->kind = RMAPPLY_STATUS;
        c->status = "CLOSED";
        break;
    default:
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "unexpected account event %s",
                               ev->event_type);
    }
    return GRPC_STATUS_OK;
}

static grpc_status_code decode_transfer(const struct rawlog_event *ev, const Tally__V1__Event *env,
                                        struct rmapply_change *c, trpc_status *st)
{
    struct transfer_event t;
    const char *id;

    if (strcmp(ev->aggregate_type, TRANSFER_AGGREGATE_TYPE) != 0)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s event in a %s stream", ev->event_type,
                               ev->aggregate_type);
    if (transfer_event_from_proto(env, &t, st) != GRPC_STATUS_OK)
        return st->code;
    c->kind = RMAPPLY_TRANSFER;
    switch (t.type) {
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED:
        id = t.u.transfer_requested.transfer_id;
        c->requested = true;
        copy(c->source_account_id, sizeof(c->source_account_id),
             t.u.transfer_requested.source_account_id);
        copy(c->destination_account_id, sizeof(c->destination_account_id),
             t.u.transfer_requested.destination_account_id);
        c->transfer_amount = t.u.transfer_requested.amount.minor_units;
        copy(c->transfer_currency, sizeof(c->transfer_currency),
             t.u.transfer_requested.amount.currency);
        copy(c->transfer_reference, sizeof(c->transfer_reference),
             t.u.transfer_requested.reference);
        set_usage(c, &t.u.transfer_requested.amount);
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED:
        id = t.u.transfer_completed.transfer_id;
        c->completed = true;
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED:
        id = t.u.transfer_failed.transfer_id;
        c->failed = true;
        copy(c->failure_reason, sizeof(c->failure_reason), t.u.transfer_failed.reason);
        c->compensated = t.u.transfer_failed.compensated;
        break;
    default:
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "unexpected transfer event %s",
                               ev->event_type);
    }
    if (strcmp(id, ev->aggregate_id) != 0)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s of another transfer", ev->event_type);
    copy(c->transfer_id, sizeof(c->transfer_id), id);
    return GRPC_STATUS_OK;
}

grpc_status_code rmapply_decode(const struct rawlog_event *ev, struct rmapply_change *out,
                                trpc_status *st)
{
    Tally__V1__Event env = TALLY__V1__EVENT__INIT;
    grpc_status_code code;

    memset(out, 0, sizeof(*out));
    if (evcodec_case_of(ev->event_type) == TALLY__V1__EVENT__PAYLOAD__NOT_SET)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "unknown event type \"%.64s\"",
                               ev->event_type);
    if (evcodec_payload_from_json(&env, ev->event_type, ev->data, strlen(ev->data), st) !=
        GRPC_STATUS_OK)
        return st->code;
    if (account_event_type_is_account(env.payload_case))
        code = decode_account(ev, &env, out, st);
    else
        code = decode_transfer(ev, &env, out, st);
    evcodec_payload_clear(&env);
    if (code == GRPC_STATUS_OK) {
        st->code = GRPC_STATUS_OK;
        st->msg[0] = '\0';
    }
    return code;
}

/* ---- SQL ---- */

/* The statements are prepared once per connection (planned once: the
 * projection's hot path). A plan names tables by OID: the rebuild's swap
 * drops the old tables in its transaction, which invalidates the plans, and
 * the next execution plans again through search_path. */
static const struct {
    const char *name;
    const char *sql;
    int nparams;
} STMTS[] = {
    {"rm_open", OPEN_SQL, OPEN_NPARAMS},       {"rm_balance", BALANCE_SQL, BALANCE_NPARAMS},
    {"rm_status", STATUS_SQL, STATUS_NPARAMS}, {"rm_transfer", TRANSFER_SQL, TRANSFER_NPARAMS},
    {"rm_usage", USAGE_SQL, USAGE_NPARAMS},
};

grpc_status_code rmapply_prepare(PGconn *conn, trpc_status *st)
{
    for (size_t i = 0; i < sizeof(STMTS) / sizeof(STMTS[0]); i++) {
        PGresult *res = PQprepare(conn, STMTS[i].name, STMTS[i].sql, STMTS[i].nparams, NULL);
        grpc_status_code code = pg_check(res, PGRES_COMMAND_OK, -1, st, "database unavailable",
                                         "prepare %s", STMTS[i].name);

        PQclear(res);
        if (code != GRPC_STATUS_OK)
            return code;
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

static const char *opt(const char *s)
{
    return s && s[0] ? s : NULL;
}

static const char *flag(bool b)
{
    return b ? "true" : "false";
}

grpc_status_code rmapply_send(PGconn *conn, const struct rawlog_event *ev,
                              const struct rmapply_change *cp, trpc_status *st)
{
    const struct rmapply_change c = *cp;
    const char *v[MAX_PARAMS] = {0};
    char version[PG_INT_BUF], num1[PG_INT_BUF], tx[PG_INT_BUF], gp[PG_INT_BUF];
    const char *stmt;
    int n;

    pg_int64_param(version, ev->version);
    v[0] = ev->tenant_id;
    v[1] = ev->recorded_at;
    switch (c.kind) {
    case RMAPPLY_OPEN:
        stmt = "rm_open";
        n = OPEN_NPARAMS;
        v[2] = ev->aggregate_id;
        v[3] = c.owner;
        v[4] = c.currency;
        v[5] = pg_int64_param(num1, c.overdraft_limit);
        v[6] = version;
        break;
    case RMAPPLY_BALANCE:
        stmt = "rm_balance";
        n = BALANCE_NPARAMS;
        v[2] = ev->aggregate_id;
        v[3] = version;
        v[4] = pg_int64_param(num1, c.delta);
        v[5] = c.currency;
        v[6] = c.entry_kind;
        v[7] = opt(c.counterpart_account_id);
        v[8] = opt(c.transfer_id);
        v[9] = opt(c.payment_id);
        v[10] = c.reference;
        v[11] = ev->operation_id;
        v[12] = ev->correlation_id;
        v[13] = pg_uint64_param(tx, ev->pos.tx_id);
        v[14] = pg_int64_param(gp, ev->pos.global_position);
        v[15] = opt(c.source_account_id);
        v[16] = opt(c.destination_account_id);
        v[17] = flag(c.debited);
        v[18] = flag(c.credited);
        v[19] = flag(c.reversed);
        break;
    case RMAPPLY_STATUS:
        stmt = "rm_status";
        n = STATUS_NPARAMS;
        v[2] = ev->aggregate_id;
        v[3] = version;
        v[4] = c.status;
        break;
    default:
        stmt = "rm_transfer";
        n = TRANSFER_NPARAMS;
        v[2] = c.transfer_id;
        v[3] = opt(c.source_account_id);
        v[4] = opt(c.destination_account_id);
        v[5] = c.requested ? pg_int64_param(num1, c.transfer_amount) : NULL;
        v[6] = c.requested ? c.transfer_currency : NULL;
        v[7] = c.requested ? c.transfer_reference : NULL;
        v[8] = c.requested ? ev->operation_id : NULL;
        v[9] = c.requested ? ev->correlation_id : NULL;
        v[10] = flag(c.requested);
        v[11] = flag(c.completed);
        v[12] = flag(c.failed);
        v[13] = c.failed ? c.failure_reason : NULL;
        v[14] = c.failed ? flag(c.compensated) : NULL;
        break;
    }
    if (!PQsendQueryPrepared(conn, stmt, n, v, NULL, NULL, 0)) {
        log_warn("projection: cannot queue event %" PRId64 ": %s", ev->pos.global_position,
                 PQerrorMessage(conn));
        return trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

grpc_status_code rmapply_check(const PGresult *res, const struct rawlog_event *ev, trpc_status *st)
{
    int64_t n = 0;

    if (pg_check(res, PGRES_TUPLES_OK, 1, st, "projection failed",
                 "project %s %s v%" PRId64 " at %" PRId64, ev->event_type, ev->aggregate_id,
                 ev->version, ev->pos.global_position) != GRPC_STATUS_OK) {
        const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

        /* keep the database's own words: they go to dead_letters.error */
        if (primary)
            snprintf(st->msg, sizeof(st->msg), "%s", primary);
        return st->code;
    }
    if (PQntuples(res) != 1 || pg_get_int64(res, 0, 0, &n) != 0 || n != 1)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                               "%s v%" PRId64 " does not follow the read model's row (missing, "
                               "at another version or in another currency)",
                               ev->event_type, ev->version);
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

/* ---- usage ---- */

void rmapply_usage_reset(struct rmapply_usage *u)
{
    u->n = 0;
}

void rmapply_usage_cleanup(struct rmapply_usage *u)
{
    free(u->v);
    memset(u, 0, sizeof(*u));
}

int rmapply_usage_add(struct rmapply_usage *u, const struct rawlog_event *ev,
                      const struct rmapply_change *c)
{
    struct rmapply_usage_row *r;

    for (size_t i = 0; i < u->n; i++) {
        r = &u->v[i];
        if (strncmp(r->day, ev->recorded_at, 10) == 0 && strcmp(r->tenant_id, ev->tenant_id) == 0 &&
            strcmp(r->event_type, ev->event_type) == 0 &&
            strcmp(r->currency, c->usage_currency) == 0) {
            r->count++;
            r->volume += c->usage_volume;
            return 0;
        }
    }
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 16;
        struct rmapply_usage_row *v = realloc(u->v, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        u->v = v;
        u->cap = cap;
    }
    r = &u->v[u->n++];
    snprintf(r->tenant_id, sizeof(r->tenant_id), "%s", ev->tenant_id);
    snprintf(r->day, sizeof(r->day), "%.10s", ev->recorded_at); /* UTC: rawlog.h */
    snprintf(r->event_type, sizeof(r->event_type), "%s", ev->event_type);
    snprintf(r->currency, sizeof(r->currency), "%s", c->usage_currency);
    r->count = 1;
    r->volume = c->usage_volume;
    return 0;
}

/* Appends s as a quoted element of an array literal. */
static int put_elem(char **buf, size_t *len, size_t *cap, const char *s, int first)
{
    size_t need = strlen(s) * 2 + 4;

    if (*len + need + 2 > *cap) {
        size_t ncap = (*cap + need) * 2;
        char *b = realloc(*buf, ncap);

        if (b == NULL)
            return -1;
        *buf = b;
        *cap = ncap;
    }
    if (!first)
        (*buf)[(*len)++] = ',';
    (*buf)[(*len)++] = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            (*buf)[(*len)++] = '\\';
        (*buf)[(*len)++] = *s;
    }
    (*buf)[(*len)++] = '"';
    (*buf)[*len] = '\0';
    return 0;
}

/* Decimal text of a non-negative 128-bit sum (volumes). */
static const char *i128_text(rmapply_i128 v, char buf[48])
{
    char tmp[48];
    size_t n = 0, i = 0;

    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v > 0 && n < sizeof(tmp));
    while (n > 0)
        buf[i++] = tmp[--n];
    buf[i] = '\0';
    return buf;
}

grpc_status_code rmapply_usage_send(PGconn *conn, const struct rmapply_usage *u, trpc_status *st)
{
    char *arr[USAGE_NPARAMS] = {0};
    size_t len[USAGE_NPARAMS] = {0}, cap[USAGE_NPARAMS] = {0};
    const char *v[USAGE_NPARAMS];
    grpc_status_code code = GRPC_STATUS_OK;

    for (int a = 0; a < USAGE_NPARAMS; a++) {
        cap[a] = 64;
        arr[a] = malloc(cap[a]);
        if (arr[a] == NULL) {
            code = trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
            goto out;
        }
        arr[a][len[a]++] = '{';
        arr[a][len[a]] = '\0';
    }
    for (size_t i = 0; i < u->n; i++) {
        const struct rmapply_usage_row *r = &u->v[i];
        char count[PG_INT_BUF], volume[48];
        const char *f[USAGE_NPARAMS] = {r->tenant_id,
                                        r->day,
                                        r->event_type,
                                        r->currency,
                                        pg_int64_param(count, r->count),
                                        i128_text(r->volume, volume)};

        for (int a = 0; a < USAGE_NPARAMS; a++)
            if (put_elem(&arr[a], &len[a], &cap[a], f[a], i == 0) != 0) {
                code = trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
                goto out;
            }
    }
    for (int a = 0; a < USAGE_NPARAMS; a++) {
        arr[a][len[a]++] = '}';
        arr[a][len[a]] = '\0';
        v[a] = arr[a];
    }
    if (!PQsendQueryPrepared(conn, "rm_usage", USAGE_NPARAMS, v, NULL, NULL, 0)) {
        log_warn("projection: cannot queue the usage: %s", PQerrorMessage(conn));
        code = trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
        goto out;
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
out:
    for (int a = 0; a < USAGE_NPARAMS; a++)
        free(arr[a]);
    return code;
}
