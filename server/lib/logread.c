/* logread.c - see logread.h. */
#include "logread.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "evcodec.h"
#include "log.h"
#include "pg.h"
#include "tally_limits.h"
#include "text.h"
#include "uuid.h"

#define EVENT_COLUMNS                                                                              \
    "e.event_id::text, e.tenant_id::text, e.aggregate_type, e.aggregate_id::text, e.version,"      \
    " e.event_type, e.event_version, e.tx_id::text, e.global_position,"                            \
    " (extract(epoch FROM e.recorded_at) * 1000000)::bigint, e.metadata::text,"                    \
    " e.operation_id::text"
#define N_EVENT_COLUMNS 12 /* then data::text */

#define MAX_FILTER_VALUES 16
#define MAX_FILTER_BYTES  64

int logread_position_cmp(struct store_position a, struct store_position b)
{
    if (a.tx_id != b.tx_id)
        return a.tx_id < b.tx_id ? -1 : 1;
    if (a.global_position != b.global_position)
        return a.global_position < b.global_position ? -1 : 1;
    return 0;
}

static char *dup_value(const PGresult *res, int row, int col)
{
    return strdup(PQgetvalue(res, row, col));
}

static char *dup_json_string(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s && s[0] ? strdup(s) : (char *)protobuf_c_empty_string;
}

/* An envelope from columns 0..N_EVENT_COLUMNS-1 and the payload JSON in
 * column data_col. */
static Tally__V1__Event *event_from_row(const PGresult *res, int row, int data_col, trpc_status *st)
{
    Tally__V1__Event *ev = malloc(sizeof(*ev));
    Tally__V1__Position *pos = malloc(sizeof(*pos));
    Google__Protobuf__Timestamp *ts = malloc(sizeof(*ts));
    Tally__V1__EventMetadata *md = malloc(sizeof(*md));
    json_t *meta = NULL;
    int64_t us = 0;

    if (ev == NULL || pos == NULL || ts == NULL || md == NULL) {
        free(ev);
        free(pos);
        free(ts);
        free(md);
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
        return NULL;
    }
    tally__v1__event__init(ev);
    tally__v1__position__init(pos);
    google__protobuf__timestamp__init(ts);
    tally__v1__event_metadata__init(md);
    ev->position = pos;
    ev->recorded_at = ts;
    ev->metadata = md;
    ev->event_id = dup_value(res, row, 0);
    ev->tenant_id = dup_value(res, row, 1);
    ev->aggregate_type = dup_value(res, row, 2);
    ev->aggregate_id = dup_value(res, row, 3);
    pg_get_int64(res, row, 4, &ev->version);
    ev->event_type = dup_value(res, row, 5);
    ev->event_version = atoi(PQgetvalue(res, row, 6));
    pg_get_uint64(res, row, 7, &pos->tx_id);
    pg_get_int64(res, row, 8, &pos->global_position);
    pg_get_int64(res, row, 9, &us);
    ts->seconds = us / 1000000;
    ts->nanos = (int32_t)(us % 1000000) * 1000;
    if (ts->nanos < 0) {
        ts->seconds -= 1;
        ts->nanos += 1000000000;
    }
    meta = json_loads(PQgetvalue(res, row, 10), 0, NULL);
    md->correlation_id = dup_json_string(meta, "correlationId");
    md->causation_id = dup_json_string(meta, "causationId");
    md->user_id = dup_json_string(meta, "userId");
    json_decref(meta);
    ev->operation_id = dup_value(res, row, 11);
    if (ev->event_id == NULL || ev->tenant_id == NULL || ev->aggregate_type == NULL ||
        ev->aggregate_id == NULL || ev->event_type == NULL || ev->operation_id == NULL ||
        md->correlation_id == NULL || md->causation_id == NULL || md->user_id == NULL) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
        goto fail;
    }
    if (evcodec_payload_from_json(ev, ev->event_type, PQgetvalue(res, row, data_col),
                                  (size_t)PQgetlength(res, row, data_col), st) != GRPC_STATUS_OK) {
        log_error("event %s at %" PRId64 ": %s", ev->event_id, pos->global_position, st->msg);
        goto fail;
    }
    return ev;
fail:
    protobuf_c_message_free_unpacked(&ev->base, NULL);
    return NULL;
}

/* Delivers rows [0, n) of res (data in column data_col; rows whose
 * match_col is "f" are skipped when match_col >= 0). */
static grpc_status_code deliver(const PGresult *res, int data_col, int match_col, int limit,
                                logread_fn fn, void *arg, int *delivered, int *last_row,
                                trpc_status *st)
{
    int n = PQntuples(res);

    *delivered = 0;
    *last_row = -1;
    for (int i = 0; i < n; i++) {
        Tally__V1__Event *ev;

        *last_row = i;
        if (match_col >= 0 && strcmp(PQgetvalue(res, i, match_col), "t") != 0)
            continue;
        ev = event_from_row(res, i, data_col, st);
        if (ev == NULL)
            return st->code;
        (*delivered)++;
        if (fn(arg, ev) != 0 || *delivered >= limit)
            break;
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

static grpc_status_code check_list(const char *field, char **v, size_t n, trpc_status *st)
{
    if (n > MAX_FILTER_VALUES)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "filter.%s: at most %d values",
                               field, MAX_FILTER_VALUES);
    for (size_t i = 0; i < n; i++)
        if (text_check(field, v[i], 1, MAX_FILTER_BYTES, st) != GRPC_STATUS_OK)
            return st->code;
    return GRPC_STATUS_OK;
}

grpc_status_code logread_filter_check(const Tally__V1__EventFilter *f, trpc_status *st)
{
    char id[UUID_STR_SIZE];

    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    if (f == NULL)
        return GRPC_STATUS_OK;
    if (check_list("aggregate_types", f->aggregate_types, f->n_aggregate_types, st) ||
        check_list("event_type_prefixes", f->event_type_prefixes, f->n_event_type_prefixes, st))
        return st->code;
    if (f->aggregate_id[0] && uuid_check("filter.aggregate_id", f->aggregate_id, id, st))
        return st->code;
    return text_check("filter.correlation_id", f->correlation_id, 0, TALLY_MAX_CORRELATION_BYTES,
                      st);
}

/* A PostgreSQL text[] literal; each value escaped, prefixes turned into
 * LIKE patterns (with '%', '_' and '\' escaped) when like is set. NULL when
 * n == 0 (no filter), or on OOM (*oom set). */
static char *array_literal(char **v, size_t n, int like, int *oom)
{
    size_t cap = 3;
    char *out, *p;

    if (n == 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        cap += strlen(v[i]) * 4 + 6;
    out = p = malloc(cap);
    if (out == NULL) {
        *oom = 1;
        return NULL;
    }
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        for (const char *s = v[i]; *s; s++) {
            if (like && (*s == '%' || *s == '_' || *s == '\\')) {
                *p++ = '\\'; /* array-literal escape of the LIKE escape */
                *p++ = '\\';
            }
            if (*s == '"' || *s == '\\')
                *p++ = '\\';
            *p++ = *s;
        }
        if (like)
            *p++ = '%';
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

grpc_status_code logread_all(PGconn *conn, const char *tenant_id, struct store_position after,
                             const Tally__V1__EventFilter *filter, int limit, int scan_limit,
                             logread_fn fn, void *arg, struct logread_page *page, trpc_status *st)
{
    static const char sql[] =
        "SELECT " EVENT_COLUMNS ", CASE WHEN e.matched THEN e.data::text END, e.matched"
        "  FROM (SELECT e.*,"
        "               (($4::text[] IS NULL OR e.aggregate_type = ANY($4::text[]))"
        "            AND ($5::uuid IS NULL OR e.aggregate_id = $5::uuid)"
        "            AND ($6::text[] IS NULL OR e.event_type LIKE ANY($6::text[]))"
        "            AND ($7::text IS NULL OR e.correlation_id = $7)) AS matched"
        "          FROM events e"
        "         WHERE ($1::uuid IS NULL OR e.tenant_id = $1::uuid)"
        "           AND (e.tx_id, e.global_position) > ($2::xid8, $3::bigint)"
        "           AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())"
        "         ORDER BY e.tx_id, e.global_position"
        "         LIMIT $8::int) e"
        " ORDER BY e.tx_id, e.global_position";
    char txbuf[PG_INT_BUF], gpbuf[PG_INT_BUF], scanbuf[PG_INT_BUF];
    char *types = NULL, *prefixes = NULL;
    int oom = 0, delivered = 0, last_row = -1;
    const char *values[8];
    PGresult *res = NULL;

    memset(page, 0, sizeof(*page));
    page->next = after;
    if (filter) {
        types = array_literal(filter->aggregate_types, filter->n_aggregate_types, 0, &oom);
        prefixes =
            array_literal(filter->event_type_prefixes, filter->n_event_type_prefixes, 1, &oom);
    }
    if (oom) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
        goto out;
    }
    values[0] = tenant_id;
    values[1] = pg_uint64_param(txbuf, after.tx_id);
    values[2] = pg_int64_param(gpbuf, after.global_position);
    values[3] = types;
    values[4] = filter && filter->aggregate_id[0] ? filter->aggregate_id : NULL;
    values[5] = prefixes;
    values[6] = filter && filter->correlation_id[0] ? filter->correlation_id : NULL;
    values[7] = pg_int64_param(scanbuf, scan_limit);
    res = PQexecParams(conn, sql, 8, NULL, values, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, N_EVENT_COLUMNS + 2, st, "could not read the event log",
                 "read all tenant=%s", tenant_id ? tenant_id : "(all)") != GRPC_STATUS_OK)
        goto out;
    if (deliver(res, N_EVENT_COLUMNS, N_EVENT_COLUMNS + 1, limit, fn, arg, &delivered, &last_row,
                st) != GRPC_STATUS_OK)
        goto out;
    page->delivered = delivered;
    if (last_row >= 0) {
        pg_get_uint64(res, last_row, 7, &page->next.tx_id);
        pg_get_int64(res, last_row, 8, &page->next.global_position);
    }
    page->end_of_log = last_row == PQntuples(res) - 1 && PQntuples(res) < scan_limit;
out:
    PQclear(res);
    free(types);
    free(prefixes);
    return st->code;
}

grpc_status_code logread_stream(PGconn *conn, const char *tenant_id, const char *aggregate_type,
                                const char *aggregate_id, int64_t from_version, int backwards,
                                int limit, logread_fn fn, void *arg, int *has_more, trpc_status *st)
{
    static const char fwd[] = "SELECT " EVENT_COLUMNS ", e.data::text FROM events e"
                              " WHERE e.tenant_id = $1::uuid AND e.aggregate_type = $2"
                              "   AND e.aggregate_id = $3::uuid AND e.version >= $4::bigint"
                              " ORDER BY e.version LIMIT $5::int";
    static const char bwd[] = "SELECT " EVENT_COLUMNS ", e.data::text FROM events e"
                              " WHERE e.tenant_id = $1::uuid AND e.aggregate_type = $2"
                              "   AND e.aggregate_id = $3::uuid"
                              "   AND ($4::bigint = 0 OR e.version <= $4::bigint)"
                              " ORDER BY e.version DESC LIMIT $5::int";
    char vbuf[PG_INT_BUF], lbuf[PG_INT_BUF];
    const char *values[5] = {tenant_id, aggregate_type, aggregate_id,
                             pg_int64_param(vbuf, from_version), pg_int64_param(lbuf, limit + 1)};
    PGresult *res = PQexecParams(conn, backwards ? bwd : fwd, 5, NULL, values, NULL, NULL, 0);
    int delivered = 0, last_row;

    *has_more = 0;
    if (pg_check(res, PGRES_TUPLES_OK, N_EVENT_COLUMNS + 1, st, "could not read the stream",
                 "read stream %s/%s", aggregate_type, aggregate_id) == GRPC_STATUS_OK &&
        deliver(res, N_EVENT_COLUMNS, -1, limit, fn, arg, &delivered, &last_row, st) ==
            GRPC_STATUS_OK)
        *has_more = PQntuples(res) > limit;
    PQclear(res);
    return st->code;
}

grpc_status_code logread_correlation(PGconn *conn, const char *tenant_id,
                                     const char *correlation_id, int limit, logread_fn fn,
                                     void *arg, trpc_status *st)
{
    static const char sql[] = "SELECT " EVENT_COLUMNS ", e.data::text FROM events e"
                              " WHERE e.tenant_id = $1::uuid AND e.correlation_id = $2"
                              "   AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())"
                              " ORDER BY e.tx_id, e.global_position LIMIT $3::int";
    char lbuf[PG_INT_BUF];
    const char *values[3] = {tenant_id, correlation_id, pg_int64_param(lbuf, limit)};
    PGresult *res = PQexecParams(conn, sql, 3, NULL, values, NULL, NULL, 0);
    int delivered, last_row;

    if (pg_check(res, PGRES_TUPLES_OK, N_EVENT_COLUMNS + 1, st, "could not read the events",
                 "read correlation tenant=%s", tenant_id) == GRPC_STATUS_OK)
        deliver(res, N_EVENT_COLUMNS, -1, limit, fn, arg, &delivered, &last_row, st);
    PQclear(res);
    return st->code;
}
