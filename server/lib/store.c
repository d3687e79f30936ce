/* store.c - see store.h. The append is one INSERT ... with data-modifying
 * CTEs: events, their outbox rows, the operation row, the optional
 * idempotency row (which takes the position from the events it inserts) and
 * the optional snapshot, all in the statement's implicit transaction. */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

static const char APPEND_SQL[] =
    "WITH ev AS ("
    "  INSERT INTO events (event_id, tenant_id, aggregate_type, aggregate_id, version,"
    "                      event_type, event_version, data, metadata, operation_id,"
    "                      correlation_id)"
    "  SELECT (e.doc->>'id')::uuid, $1::uuid, e.doc->>'type', (e.doc->>'aggregateId')::uuid,"
    "         (e.doc->>'version')::bigint, e.doc->>'eventType', (e.doc->>'eventVersion')::int,"
    "         e.doc->'data', $6::jsonb, $2::uuid, $5"
    "    FROM jsonb_array_elements($7::jsonb) WITH ORDINALITY AS e(doc, ord)"
    "   ORDER BY e.ord"
    "  RETURNING global_position, tx_id"
    "), ob AS ("
    "  INSERT INTO outbox (global_position, tx_id, tenant_id)"
    "  SELECT global_position, tx_id, $1::uuid FROM ev"
    "), op AS ("
    "  INSERT INTO operations (operation_id, tenant_id, kind, status, aggregate_type,"
    "                          aggregate_id, correlation_id)"
    "  VALUES ($2::uuid, $1::uuid, $3, $4, $8, $9::uuid, $5)"
    "), fin AS ("
    "  UPDATE operations SET status = $16, failure_reason = $17, updated_at = now()"
    "   WHERE $15::uuid IS NOT NULL AND operation_id = $15::uuid AND tenant_id = $1::uuid"
    "), last AS ("
    "  SELECT tx_id, global_position FROM ev ORDER BY global_position DESC LIMIT 1"
    "), idem AS ("
    "  INSERT INTO idempotency_keys (tenant_id, key, request_hash, status_code, response,"
    "                                position_tx_id, position_global, operation_id)"
    "  SELECT $1::uuid, $10, $11::bytea, 0, $12::bytea, last.tx_id, last.global_position,"
    "         $2::uuid"
    "    FROM last WHERE $10::text IS NOT NULL"
    "), snap AS ("
    "  INSERT INTO snapshots (tenant_id, aggregate_type, aggregate_id, version, state,"
    "                         recorded_at)"
    "  SELECT $1::uuid, $18, $19::uuid, $13::bigint, $14::jsonb, now()"
    "   WHERE $13::bigint IS NOT NULL"
    ")"
    "SELECT tx_id::text, global_position FROM last";

/* The append is the hot path: it runs as a prepared statement (planned once
 * per connection, like pgbench -M prepared). A connection remembers nothing
 * we can ask cheaply, so the statement is prepared on first use per thread
 * and connection, and again whenever the server says it does not know it
 * (SQLSTATE 26000: a new connection at a recycled address, a reset). */
#define APPEND_STMT "tally_append"

static _Thread_local PGconn *append_prepared_on;

static PGresult *exec_append(PGconn *conn, const char *const *values, const int *lengths,
                             const int *formats)
{
    PGresult *res;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (append_prepared_on != conn) {
            res = PQprepare(conn, APPEND_STMT, APPEND_SQL, 19, NULL);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

                if (state == NULL || strcmp(state, "42P05") != 0) /* not: already exists */
                    return res;
            }
            PQclear(res);
            append_prepared_on = conn;
        }
        res = PQexecPrepared(conn, APPEND_STMT, 19, values, lengths, formats, 0);
        if (PQresultStatus(res) == PGRES_FATAL_ERROR && PQresultErrorField(res, PG_DIAG_SQLSTATE) &&
            strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "26000") == 0 && attempt == 0) {
            PQclear(res);
            append_prepared_on = NULL;
            continue;
        }
        return res;
    }
    return NULL; /* not reached */
}

const char *store_xid_text(uint64_t tx_id, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIu64, tx_id);
    return buf;
}

static enum store_conflict conflict_of(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

    if (state == NULL || strcmp(state, "23505") != 0 || constraint == NULL)
        return STORE_CONFLICT_NONE;
    if (strcmp(constraint, "events_stream_version") == 0)
        return STORE_CONFLICT_VERSION;
    if (strcmp(constraint, "idempotency_keys_pkey") == 0)
        return STORE_CONFLICT_IDEMPOTENCY;
    if (strcmp(constraint, "operations_pkey") == 0)
        return STORE_CONFLICT_OPERATION;
    return STORE_CONFLICT_NONE;
}

/* The events as one JSON array parameter: no array-literal quoting, and the
 * payloads stay JSON. */
static char *events_param(const struct store_append *a)
{
    json_t *arr = json_array();
    char *out = NULL;

    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < a->n_events; i++) {
        const struct store_event *e = &a->events[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:i, s:O}", "id", e->event_id, "type",
                              e->aggregate_type, "aggregateId", e->aggregate_id, "version",
                              (json_int_t)e->version, "eventType", e->event_type, "eventVersion",
                              e->event_version, "data", e->data);
        if (o == NULL || json_array_append_new(arr, o) != 0)
            goto out;
    }
    out = json_dumps(arr, JSON_COMPACT);
out:
    json_decref(arr);
    return out;
}

static char *metadata_param(const struct store_append *a)
{
    json_t *o = json_object();
    char *out = NULL;

    if (o == NULL)
        return NULL;
    if (a->correlation_id && a->correlation_id[0])
        json_object_set_new(o, "correlationId", json_string(a->correlation_id));
    if (a->causation_id && a->causation_id[0])
        json_object_set_new(o, "causationId", json_string(a->causation_id));
    if (a->user_id && a->user_id[0])
        json_object_set_new(o, "userId", json_string(a->user_id));
    out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return out;
}

grpc_status_code store_append(PGconn *conn, const struct store_append *a,
                              struct store_position *pos, enum store_conflict *conflict,
                              trpc_status *st)
{
    PGresult *res = NULL;
    char *events = NULL, *meta = NULL;
    char snapver[24];
    const char *values[19];
    int lengths[19] = {0};
    int formats[19] = {0};
    enum store_conflict c = STORE_CONFLICT_NONE;

    if (conflict)
        *conflict = STORE_CONFLICT_NONE;
    events = events_param(a);
    meta = metadata_param(a);
    if (events == NULL || meta == NULL) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
        goto out;
    }
    snprintf(snapver, sizeof(snapver), "%" PRId64, a->snapshot_version);
    values[0] = a->tenant_id;
    values[1] = a->operation_id;
    values[2] = a->operation_kind;
    values[3] = a->operation_status;
    values[4] = a->correlation_id;
    values[5] = meta;
    values[6] = events;
    values[7] = a->operation_aggregate_type;
    values[8] = a->operation_aggregate_id;
    values[9] = a->idem_key;
    values[10] = a->idem_key ? (const char *)a->idem_hash : NULL;
    lengths[10] = 32;
    formats[10] = 1;
    values[11] = a->idem_key ? (const char *)a->idem_response : NULL;
    lengths[11] = (int)a->idem_response_len;
    formats[11] = 1;
    values[12] = a->snapshot_aggregate_type ? snapver : NULL;
    values[13] = a->snapshot_aggregate_type ? a->snapshot_json : NULL;
    values[14] = a->finish_operation_id;
    values[15] = a->finish_operation_status;
    values[16] = a->finish_operation_reason;
    values[17] = a->snapshot_aggregate_type;
    values[18] = a->snapshot_aggregate_id;
    if (a->idem_key && a->idem_response == NULL) {
        values[11] = "";
        lengths[11] = 0;
    }
    res = exec_append(conn, values, lengths, formats);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        c = conflict_of(res);
        if (c != STORE_CONFLICT_NONE) {
            trpc_status_set(st, GRPC_STATUS_ABORTED, "concurrent write, try again");
        } else {
            log_error("append op=%s kind=%s: %s", a->operation_id, a->operation_kind,
                      PQresultErrorMessage(res));
            trpc_status_set(st, pg_to_grpc_status(res), "could not record the events");
        }
        goto out;
    }
    if (PQntuples(res) != 1 || PQnfields(res) != 2) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "could not record the events");
        goto out;
    }
    pos->tx_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    pos->global_position = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
out:
    if (conflict)
        *conflict = c;
    PQclear(res);
    free(events);
    free(meta);
    return st->code;
}

grpc_status_code store_load_stream(PGconn *conn, const char *tenant_id, const char *aggregate_type,
                                   const char *aggregate_id, int64_t after_version,
                                   int64_t to_version, int use_snapshot, store_row_fn fn, void *arg,
                                   trpc_status *st)
{
    /* One round trip: the newest usable snapshot (if asked), then the
     * events after it (or after after_version), in version order. */
    static const char sql[] =
        "WITH s AS ("
        "  SELECT version, state::text AS state, recorded_at FROM snapshots"
        "   WHERE $5 AND tenant_id = $1::uuid AND aggregate_type = $2"
        "     AND aggregate_id = $3::uuid AND version > $4::bigint"
        "     AND ($6::bigint = 0 OR version <= $6::bigint)"
        "   ORDER BY version DESC LIMIT 1"
        ")"
        " SELECT 0 AS k, version, NULL::text, state,"
        "        (extract(epoch FROM recorded_at) * 1000000)::bigint::text FROM s"
        " UNION ALL"
        " SELECT 1, version, event_type, data::text,"
        "        (extract(epoch FROM recorded_at) * 1000000)::bigint::text FROM ("
        "   SELECT e.version, e.event_type, e.data, e.recorded_at FROM events e"
        "    WHERE e.tenant_id = $1::uuid AND e.aggregate_type = $2"
        "      AND e.aggregate_id = $3::uuid"
        "      AND e.version > GREATEST($4::bigint, COALESCE((SELECT version FROM s), 0))"
        "      AND ($6::bigint = 0 OR e.version <= $6::bigint)"
        "    ORDER BY e.version) ev"
        " ORDER BY 1, 2";
    PGresult *res = NULL;
    char after[24], to[24];
    const char *values[6];

    snprintf(after, sizeof(after), "%" PRId64, after_version);
    snprintf(to, sizeof(to), "%" PRId64, to_version);
    values[0] = tenant_id;
    values[1] = aggregate_type;
    values[2] = aggregate_id;
    values[3] = after;
    values[4] = use_snapshot ? "true" : "false";
    values[5] = to;
    res = PQexecParams(conn, sql, 6, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 5) {
        log_error("load %s %s: %s", aggregate_type, aggregate_id, PQresultErrorMessage(res));
        trpc_status_set(st, pg_to_grpc_status(res), "could not load %s", aggregate_type);
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t version = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        const char *type = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);

        if (fn(arg, version, type, PQgetvalue(res, i, 3), PQgetvalue(res, i, 4)) != 0) {
            log_error("load %s %s: version %" PRId64 " could not be applied", aggregate_type,
                      aggregate_id, version);
            trpc_status_set(st, GRPC_STATUS_INTERNAL, "could not load %s", aggregate_type);
            goto out;
        }
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
out:
    PQclear(res);
    return st->code;
}

/* bytea in binary result format is the raw bytes */
grpc_status_code store_idem_find(PGconn *conn, const char *tenant_id, const char *key,
                                 struct store_idem *out, trpc_status *st)
{
    static const char sql[] = "SELECT request_hash, status_code, status_message, response,"
                              "       position_tx_id::text::bigint, position_global"
                              "  FROM idempotency_keys WHERE tenant_id = $1::uuid AND key = $2";
    const char *values[2] = {tenant_id, key};
    PGresult *res;

    memset(out, 0, sizeof(*out));
    res = PQexecParams(conn, sql, 2, NULL, values, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 6) {
        log_error("idempotency lookup: %s", PQresultErrorMessage(res));
        trpc_status_set(st, pg_to_grpc_status(res), "could not check the idempotency key");
        goto out;
    }
    if (PQntuples(res) == 1) {
        const uint8_t *v;

        out->found = 1;
        if (PQgetlength(res, 0, 0) == 32)
            memcpy(out->hash, PQgetvalue(res, 0, 0), 32);
        v = (const uint8_t *)PQgetvalue(res, 0, 1); /* int4, network order */
        out->code = (grpc_status_code)(((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) |
                                       ((uint32_t)v[2] << 8) | v[3]);
        snprintf(out->message, sizeof(out->message), "%.*s", PQgetlength(res, 0, 2),
                 PQgetvalue(res, 0, 2));
        if (!PQgetisnull(res, 0, 3)) {
            size_t n = (size_t)PQgetlength(res, 0, 3);

            out->response = malloc(n ? n : 1);
            if (out->response == NULL) {
                trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
                goto out;
            }
            memcpy(out->response, PQgetvalue(res, 0, 3), n);
            out->response_len = n;
        }
        for (int f = 4; f <= 5; f++) {
            uint64_t x = 0;

            if (PQgetisnull(res, 0, f))
                continue;
            v = (const uint8_t *)PQgetvalue(res, 0, f);
            for (int b = 0; b < 8; b++)
                x = (x << 8) | v[b];
            if (f == 4)
                out->pos.tx_id = x;
            else
                out->pos.global_position = (int64_t)x;
        }
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
out:
    PQclear(res);
    return st->code;
}

grpc_status_code store_idem_put_failure(PGconn *conn, const char *tenant_id, const char *key,
                                        const uint8_t hash[32], grpc_status_code code,
                                        const char *message, trpc_status *st)
{
    static const char sql[] =
        "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status_code, status_message)"
        " VALUES ($1::uuid, $2, $3::bytea, $4::int, $5)"
        " ON CONFLICT (tenant_id, key) DO NOTHING";
    char codebuf[16];
    const char *values[5] = {tenant_id, key, (const char *)hash, codebuf, message};
    int lengths[5] = {0, 0, 32, 0, 0};
    int formats[5] = {0, 0, 1, 0, 0};
    PGresult *res;

    snprintf(codebuf, sizeof(codebuf), "%d", (int)code);
    res = PQexecParams(conn, sql, 5, NULL, values, lengths, formats, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        log_error("idempotency store: %s", PQresultErrorMessage(res));
        trpc_status_set(st, pg_to_grpc_status(res), "could not store the idempotency key");
    } else {
        st->code = GRPC_STATUS_OK;
        st->msg[0] = '\0';
    }
    PQclear(res);
    return st->code;
}

grpc_status_code store_idem_set_response(PGconn *conn, const char *tenant_id, const char *key,
                                         const uint8_t *response, size_t len,
                                         struct store_position pos, trpc_status *st)
{
    static const char sql[] = "UPDATE idempotency_keys SET response = $3::bytea,"
                              "       position_tx_id = $4::xid8, position_global = $5::bigint"
                              " WHERE tenant_id = $1::uuid AND key = $2 AND status_code = 0";
    char txbuf[PG_INT_BUF], gpbuf[PG_INT_BUF];
    const char *values[5] = {tenant_id, key, (const char *)response,
                             pg_uint64_param(txbuf, pos.tx_id),
                             pg_int64_param(gpbuf, pos.global_position)};
    int lengths[5] = {0, 0, (int)len, 0, 0};
    int formats[5] = {0, 0, 1, 0, 0};
    PGresult *res;

    if (response == NULL)
        values[2] = "";
    res = PQexecParams(conn, sql, 5, NULL, values, lengths, formats, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        log_error("idempotency update: %s", PQresultErrorMessage(res));
        trpc_status_set(st, pg_to_grpc_status(res), "could not store the response");
    } else {
        st->code = GRPC_STATUS_OK;
        st->msg[0] = '\0';
    }
    PQclear(res);
    return st->code;
}

grpc_status_code store_stream_last(PGconn *conn, const char *tenant_id, const char *aggregate_type,
                                   const char *aggregate_id, int64_t *version,
                                   struct store_position *pos, trpc_status *st)
{
    static const char sql[] = "SELECT version, tx_id::text, global_position FROM events"
                              " WHERE tenant_id = $1::uuid AND aggregate_type = $2"
                              "   AND aggregate_id = $3::uuid ORDER BY version DESC LIMIT 1";
    const char *values[3] = {tenant_id, aggregate_type, aggregate_id};
    PGresult *res = PQexecParams(conn, sql, 3, NULL, values, NULL, NULL, 0);

    if (pg_check(res, PGRES_TUPLES_OK, 3, st, "could not read the stream", "last of %s %s",
                 aggregate_type, aggregate_id) == GRPC_STATUS_OK) {
        if (PQntuples(res) == 0 || pg_get_int64(res, 0, 0, version) != 0 ||
            pg_get_uint64(res, 0, 1, &pos->tx_id) != 0 ||
            pg_get_int64(res, 0, 2, &pos->global_position) != 0) {
            trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "%s %s not found", aggregate_type,
                            aggregate_id);
        } else {
            st->code = GRPC_STATUS_OK;
            st->msg[0] = '\0';
        }
    }
    PQclear(res);
    return st->code;
}

void store_idem_cleanup(struct store_idem *out)
{
    free(out->response);
    out->response = NULL;
}

grpc_status_code store_payment_find(PGconn *conn, const char *tenant_id, const char *account_id,
                                    const char *payment_id, struct store_payment *out,
                                    trpc_status *st)
{
    /* matches the partial index events_payment */
    static const char sql[] =
        "SELECT event_type, (data->'amount'->>'minorUnits')::bigint, data->'amount'->>'currency'"
        "  FROM events"
        " WHERE tenant_id = $1::uuid AND aggregate_id = $2::uuid AND aggregate_type = 'account'"
        "   AND event_type IN ('PaymentMade', 'PaymentRefunded') AND data->>'paymentId' = $3"
        " ORDER BY version";
    const char *values[3] = {tenant_id, account_id, payment_id};
    PGresult *res;

    memset(out, 0, sizeof(*out));
    res = PQexecParams(conn, sql, 3, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 3) {
        log_error("payment lookup: %s", PQresultErrorMessage(res));
        trpc_status_set(st, pg_to_grpc_status(res), "could not look up the payment");
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t amount = strtoll(PQgetvalue(res, i, 1), NULL, 10);

        if (strcmp(PQgetvalue(res, i, 0), "PaymentMade") == 0) {
            out->found = 1;
            out->amount = amount;
            snprintf(out->currency, sizeof(out->currency), "%s", PQgetvalue(res, i, 2));
        } else if (__builtin_add_overflow(out->refunded, amount, &out->refunded)) {
            trpc_status_set(st, GRPC_STATUS_INTERNAL, "refund total out of range");
            goto out;
        }
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
out:
    PQclear(res);
    return st->code;
}

grpc_status_code store_operation_status(PGconn *conn, const char *tenant_id,
                                        const char *operation_id, char *status, size_t status_len,
                                        char *reason, size_t reason_len, trpc_status *st)
{
    static const char sql[] = "SELECT status, COALESCE(failure_reason, '') FROM operations"
                              " WHERE tenant_id = $1::uuid AND operation_id = $2::uuid";
    const char *values[2] = {tenant_id, operation_id};
    PGresult *res = PQexecParams(conn, sql, 2, NULL, values, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 2) {
        log_error("operation lookup: %s", PQresultErrorMessage(res));
        trpc_status_set(st, pg_to_grpc_status(res), "could not read the operation");
    } else if (PQntuples(res) == 0) {
        trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "operation %s not found", operation_id);
    } else {
        snprintf(status, status_len, "%s", PQgetvalue(res, 0, 0));
        snprintf(reason, reason_len, "%s", PQgetvalue(res, 0, 1));
        st->code = GRPC_STATUS_OK;
        st->msg[0] = '\0';
    }
    PQclear(res);
    return st->code;
}
