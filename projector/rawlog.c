/* rawlog.c - see rawlog.h. */
#include "rawlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

#define COLUMNS                                                                                    \
    "e.tx_id::text, e.global_position, e.event_id::text, e.tenant_id::text, e.aggregate_type,"     \
    " e.aggregate_id::text, e.version, e.event_type, e.event_version, e.data::text,"               \
    " e.metadata::text, e.operation_id::text, e.correlation_id,"                                   \
    " to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00',"             \
    " (extract(epoch FROM e.recorded_at) * 1000000)::bigint"
#define NCOLUMNS 15

/* Row-value comparison on (tx_id, global_position) is an index range of
 * events_log_order; the fence is evaluated once per statement. */
static const char NEXT_SQL[] = "SELECT " COLUMNS " FROM events e"
                               " WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot())"
                               "   AND (e.tx_id, e.global_position) > ($1::xid8, $2::bigint)"
                               " ORDER BY e.tx_id, e.global_position"
                               " LIMIT $3";

static const char POSITIONS_SQL[] = "SELECT " COLUMNS " FROM events e"
                                    " WHERE e.global_position = ANY($1::bigint[])"
                                    " ORDER BY e.tx_id, e.global_position";

void rawlog_batch_cleanup(struct rawlog_batch *b)
{
    if (b == NULL)
        return;
    PQclear(b->res);
    free(b->ev);
    b->res = NULL;
    b->ev = NULL;
    b->n = 0;
}

struct store_position rawlog_batch_end(const struct rawlog_batch *b)
{
    return b->n ? b->ev[b->n - 1].pos : b->after;
}

/* Fills b from a result of COLUMNS; takes res. */
static grpc_status_code fill(PGresult *res, struct rawlog_batch *b, trpc_status *st)
{
    size_t n = (size_t)PQntuples(res);

    b->res = res;
    b->n = 0;
    b->ev = n ? calloc(n, sizeof(*b->ev)) : NULL;
    if (n && b->ev == NULL) {
        rawlog_batch_cleanup(b);
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        struct rawlog_event *e = &b->ev[i];
        int r = (int)i;
        int64_t ev_version = 0;

        if (pg_get_uint64(res, r, 0, &e->pos.tx_id) != 0 ||
            pg_get_int64(res, r, 1, &e->pos.global_position) != 0 ||
            pg_get_int64(res, r, 6, &e->version) != 0 ||
            pg_get_int64(res, r, 8, &ev_version) != 0 ||
            pg_get_int64(res, r, 14, &e->recorded_at_us) != 0) {
            rawlog_batch_cleanup(b);
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "unreadable event row");
        }
        e->event_version = (int)ev_version;
        e->event_id = PQgetvalue(res, r, 2);
        e->tenant_id = PQgetvalue(res, r, 3);
        e->aggregate_type = PQgetvalue(res, r, 4);
        e->aggregate_id = PQgetvalue(res, r, 5);
        e->event_type = PQgetvalue(res, r, 7);
        e->data = PQgetvalue(res, r, 9);
        e->metadata = PQgetvalue(res, r, 10);
        e->operation_id = PQgetvalue(res, r, 11);
        e->correlation_id = PQgetvalue(res, r, 12);
        e->recorded_at = PQgetvalue(res, r, 13);
        b->n++;
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

grpc_status_code rawlog_next(PGconn *conn, struct store_position after, int limit,
                             struct rawlog_batch *b, trpc_status *st)
{
    char tx[PG_INT_BUF], gp[PG_INT_BUF], lim[PG_INT_BUF];
    const char *values[3];
    PGresult *res;

    memset(b, 0, sizeof(*b));
    b->after = after;
    values[0] = pg_uint64_param(tx, after.tx_id);
    values[1] = pg_int64_param(gp, after.global_position);
    values[2] = pg_int64_param(lim, limit);
    res = PQexecParams(conn, NEXT_SQL, 3, NULL, values, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, NCOLUMNS, st, "could not read the event log",
                 "read log after %" PRIu64 "/%" PRId64, after.tx_id,
                 after.global_position) != GRPC_STATUS_OK) {
        PQclear(res);
        return st->code;
    }
    return fill(res, b, st);
}

grpc_status_code rawlog_positions(PGconn *conn, const int64_t *positions, size_t n,
                                  struct rawlog_batch *b, trpc_status *st)
{
    char *arr = malloc(n * 22 + 3);
    size_t len = 0;
    const char *values[1];
    PGresult *res;

    memset(b, 0, sizeof(*b));
    if (arr == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
    arr[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(arr + len, "%s%" PRId64, i ? "," : "", positions[i]);
    arr[len++] = '}';
    arr[len] = '\0';
    values[0] = arr;
    res = PQexecParams(conn, POSITIONS_SQL, 1, NULL, values, NULL, NULL, 0);
    free(arr);
    if (pg_check(res, PGRES_TUPLES_OK, NCOLUMNS, st, "could not read the event log",
                 "read %zu events by position", n) != GRPC_STATUS_OK) {
        PQclear(res);
        return st->code;
    }
    return fill(res, b, st);
}

int rawlog_fence_held(PGconn *conn)
{
    static const char sql[] = "SELECT EXISTS (SELECT 1 FROM events e"
                              " WHERE e.tx_id >= pg_snapshot_xmin(pg_current_snapshot()))";
    PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    int held = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
               PQgetvalue(res, 0, 0)[0] == 't';

    PQclear(res);
    return held;
}
