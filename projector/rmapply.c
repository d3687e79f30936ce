/* rmapply.c - see rmapply.h. One statement per event: data-modifying CTEs
 * write every table the event touches, and the final SELECT counts the rows
 * the guarded change hit (1 = applied). */
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

/* rm.usage_daily: $1 tenant, $2 recorded_at, $3 event_type, $4 currency,
 * $5 volume (every statement below uses these five first). */
#define USAGE_CTE                                                                                  \
    "u AS ("                                                                                       \
    "  INSERT INTO usage_daily AS x (tenant_id, day, event_type, currency, event_count, volume)"   \
    "  VALUES ($1::uuid, ($2::timestamptz AT TIME ZONE 'UTC')::date, $3, $4, 1, $5::numeric)"      \
    "  ON CONFLICT (tenant_id, day, event_type, currency)"                                         \
    "  DO UPDATE SET event_count = x.event_count + 1, volume = x.volume + EXCLUDED.volume"         \
    ")"

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

/* $6 account, $7 owner, $8 currency, $9 overdraft, $10 version */
static const char OPEN_SQL[] =
    "WITH a AS ("
    "  INSERT INTO accounts (tenant_id, account_id, owner, currency, status, balance,"
    "                        overdraft_limit, version, opened_at, updated_at)"
    "  VALUES ($1::uuid, $6::uuid, $7, $8, 'OPEN', 0, $9::bigint, $10::bigint,"
    "          $2::timestamptz, $2::timestamptz)"
    "  ON CONFLICT DO NOTHING RETURNING 1"
    "), " USAGE_CTE " SELECT count(*) FROM a";
#define OPEN_NPARAMS 10

/* $6 account, $7 version, $8 delta, $9 currency, $10 kind, $11 counterpart,
 * $12 transfer_id, $13 payment_id, $14 reference, $15 operation_id,
 * $16 correlation_id, $17 tx_id, $18 global_position, $19 transfer source,
 * $20 transfer destination, $21 debited, $22 credited, $23 reversed */
static const char BALANCE_SQL[] =
    "WITH a AS ("
    "  UPDATE accounts SET balance = balance + $8::bigint, version = $7::bigint,"
    "                      updated_at = $2::timestamptz"
    "   WHERE tenant_id = $1::uuid AND account_id = $6::uuid AND version = $7::bigint - 1"
    "     AND currency = $9"
    "  RETURNING balance"
    "), e AS ("
    "  INSERT INTO entries (tenant_id, account_id, version, kind, amount, currency, balance_after,"
    "                       counterpart_account_id, transfer_id, payment_id, reference,"
    "                       operation_id, correlation_id, recorded_at, tx_id, global_position)"
    "  SELECT $1::uuid, $6::uuid, $7::bigint, $10, $8::bigint, $9, a.balance, $11::uuid,"
    "         $12::uuid, $13::uuid, $14, $15::uuid, $16, $2::timestamptz, $17::xid8, $18::bigint"
    "    FROM a"
    "  RETURNING 1"
    "), tr AS ("
    "  INSERT INTO transfers AS t (tenant_id, transfer_id, source_account_id,"
    "                              destination_account_id, amount, currency, debited_at,"
    "                              credited_at, reversed_at, updated_at)"
    "  SELECT $1::uuid, $12::uuid, $19::uuid, $20::uuid, abs($8::bigint), $9,"
    "         CASE WHEN $21::boolean THEN $2::timestamptz END,"
    "         CASE WHEN $22::boolean THEN $2::timestamptz END,"
    "         CASE WHEN $23::boolean THEN $2::timestamptz END, $2::timestamptz"
    "    FROM a WHERE $12::uuid IS NOT NULL" TRANSFER_UPSERT_SET "), " USAGE_CTE
    " SELECT count(*) FROM e";
#define BALANCE_NPARAMS 23

/* $6 account, $7 version, $8 status */
static const char STATUS_SQL[] =
    "WITH a AS ("
    "  UPDATE accounts SET status = $8, version = $7::bigint, updated_at = $2::timestamptz"
    "   WHERE tenant_id = $1::uuid AND account_id = $6::uuid AND version = $7::bigint - 1"
    "  RETURNING 1"
    "), " USAGE_CTE " SELECT count(*) FROM a";
#define STATUS_NPARAMS 8

/* $6 transfer_id, $7 source, $8 destination, $9 amount, $10 currency,
 * $11 reference, $12 operation_id, $13 correlation_id, $14 requested,
 * $15 completed, $16 failed, $17 failure_reason, $18 compensated */
static const char TRANSFER_SQL[] =
    "WITH tr AS ("
    "  INSERT INTO transfers AS t (tenant_id, transfer_id, source_account_id,"
    "                              destination_account_id, amount, currency, reference,"
    "                              operation_id, correlation_id, requested_at, completed_at,"
    "                              failed_at, failure_reason, compensated, updated_at)"
    "  VALUES ($1::uuid, $6::uuid, $7::uuid, $8::uuid, $9::bigint, $10, $11, $12::uuid, $13,"
    "          CASE WHEN $14::boolean THEN $2::timestamptz END,"
    "          CASE WHEN $15::boolean THEN $2::timestamptz END,"
    "          CASE WHEN $16::boolean THEN $2::timestamptz END, $17, $18::boolean,"
    "          $2::timestamptz)" TRANSFER_UPSERT_SET " RETURNING 1"
    "), " USAGE_CTE " SELECT count(*) FROM tr";
#define TRANSFER_NPARAMS 18

#define MAX_PARAMS 23

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
    char version[PG_INT_BUF], num1[PG_INT_BUF], num2[PG_INT_BUF], tx[PG_INT_BUF], gp[PG_INT_BUF];
    const char *sql;
    int n;

    pg_int64_param(version, ev->version);
    v[0] = ev->tenant_id;
    v[1] = ev->recorded_at;
    v[2] = ev->event_type;
    v[3] = c.usage_currency;
    v[4] = pg_int64_param(num2, c.usage_volume);
    switch (c.kind) {
    case RMAPPLY_OPEN:
        sql = OPEN_SQL;
        n = OPEN_NPARAMS;
        v[5] = ev->aggregate_id;
        v[6] = c.owner;
        v[7] = c.currency;
        v[8] = pg_int64_param(num1, c.overdraft_limit);
        v[9] = version;
        break;
    case RMAPPLY_BALANCE:
        sql = BALANCE_SQL;
        n = BALANCE_NPARAMS;
        v[5] = ev->aggregate_id;
        v[6] = version;
        v[7] = pg_int64_param(num1, c.delta);
        v[8] = c.currency;
        v[9] = c.entry_kind;
        v[10] = opt(c.counterpart_account_id);
        v[11] = opt(c.transfer_id);
        v[12] = opt(c.payment_id);
        v[13] = c.reference;
        v[14] = ev->operation_id;
        v[15] = ev->correlation_id;
        v[16] = pg_uint64_param(tx, ev->pos.tx_id);
        v[17] = pg_int64_param(gp, ev->pos.global_position);
        v[18] = opt(c.source_account_id);
        v[19] = opt(c.destination_account_id);
        v[20] = flag(c.debited);
        v[21] = flag(c.credited);
        v[22] = flag(c.reversed);
        break;
    case RMAPPLY_STATUS:
        sql = STATUS_SQL;
        n = STATUS_NPARAMS;
        v[5] = ev->aggregate_id;
        v[6] = version;
        v[7] = c.status;
        break;
    default:
        sql = TRANSFER_SQL;
        n = TRANSFER_NPARAMS;
        v[5] = c.transfer_id;
        v[6] = opt(c.source_account_id);
        v[7] = opt(c.destination_account_id);
        v[8] = c.requested ? pg_int64_param(num1, c.transfer_amount) : NULL;
        v[9] = c.requested ? c.transfer_currency : NULL;
        v[10] = c.requested ? c.transfer_reference : NULL;
        v[11] = c.requested ? ev->operation_id : NULL;
        v[12] = c.requested ? ev->correlation_id : NULL;
        v[13] = flag(c.requested);
        v[14] = flag(c.completed);
        v[15] = flag(c.failed);
        v[16] = c.failed ? c.failure_reason : NULL;
        v[17] = c.failed ? flag(c.compensated) : NULL;
        break;
    }
    if (!PQsendQueryParams(conn, sql, n, NULL, v, NULL, NULL, 0)) {
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
