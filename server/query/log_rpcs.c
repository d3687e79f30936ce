/* log_rpcs.c - the QueryService RPCs served from the event log and the
 * write-side tables: GetOperation, ReadStream, ReadAll,
 * ListEventsByCorrelation, GetAccountAt (time travel by replay, never the
 * read model) and GetProjectionStatus. */
#include "log_rpcs.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "evcodec.h"
#include "log.h"
#include "logread.h"
#include "qexec.h"
#include "tally_limits.h"
#include "text.h"
#include "uuid.h"

/* ---- collecting envelopes into a repeated field ---- */

struct evlist {
    Tally__V1__Event **v;
    size_t n, cap;
    int oom;
};

static int evlist_add(void *arg, Tally__V1__Event *ev)
{
    struct evlist *l = arg;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        Tally__V1__Event **v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL) {
            protobuf_c_message_free_unpacked(&ev->base, NULL);
            l->oom = 1;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = ev;
    return 0;
}

static void evlist_free(void *arg)
{
    struct evlist *l = arg;

    for (size_t i = 0; i < l->n; i++)
        protobuf_c_message_free_unpacked(&l->v[i]->base, NULL);
    free(l->v);
}

/* An evlist in the call's arena, freed after the reply is packed. */
static struct evlist *evlist_new(trpc_call *call)
{
    struct evlist *l = trpc_call_alloc(call, sizeof(*l));

    trpc_call_defer(call, evlist_free, l);
    return l;
}

static grpc_status_code evlist_check(const struct evlist *l, trpc_status *st)
{
    if (l->oom)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
    return st->code;
}

static grpc_status_code aggregate_type_check(const char *type, trpc_status *st)
{
    if (type == NULL || type[0] == '\0')
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "aggregate_type is required");
    if (strcmp(type, ACCOUNT_AGGREGATE_TYPE) != 0 && strcmp(type, "transfer") != 0)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "aggregate_type must be \"account\" or \"transfer\"");
    return GRPC_STATUS_OK;
}

/* ---- GetOperation ---- */

static Tally__V1__OperationStatus operation_status(const char *s)
{
    if (strcmp(s, "PENDING") == 0)
        return TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_PENDING;
    if (strcmp(s, "SUCCEEDED") == 0)
        return TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED;
    if (strcmp(s, "FAILED") == 0)
        return TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED;
    return TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_UNSPECIFIED;
}

static void pqclear_defer(void *res)
{
    PQclear(res);
}

grpc_status_code qry_get_operation(trpc_call *call, const Tally__V1__GetOperationRequest *req,
                                   Tally__V1__Operation *resp)
{
    static const char sql[] =
        "SELECT operation_id::text, kind, status, COALESCE(failure_reason, ''), aggregate_type,"
        "       aggregate_id::text, correlation_id, " QRY_US_SQL("created_at") ", " QRY_US_SQL(
            "updated_at") " FROM operations"
                          " WHERE tenant_id = $1::uuid AND operation_id = $2::uuid";
    struct qry q;
    trpc_status st;
    char id[UUID_STR_SIZE];
    const char *values[2];
    PGresult *res;
    int64_t us;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK ||
        uuid_check("operation_id", req->operation_id, id, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    values[0] = q.who.tenant_id;
    values[1] = id;
    res = PQexecParams(q.conn, sql, 2, NULL, values, NULL, NULL, 0);
    trpc_call_defer(call, pqclear_defer, res); /* the reply borrows its strings */
    if (pg_check(res, PGRES_TUPLES_OK, 9, &st, "could not read the operation", "GetOperation %s",
                 id) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    if (PQntuples(res) == 0)
        return trpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "operation %s not found", id);
    resp->operation_id = PQgetvalue(res, 0, 0);
    resp->kind = PQgetvalue(res, 0, 1);
    resp->status = operation_status(PQgetvalue(res, 0, 2));
    resp->failure_reason = PQgetvalue(res, 0, 3);
    resp->aggregate_type = PQgetvalue(res, 0, 4);
    resp->aggregate_id = PQgetvalue(res, 0, 5);
    resp->correlation_id = PQgetvalue(res, 0, 6);
    if (pg_get_int64(res, 0, 7, &us) == 0)
        resp->created_at = qry_timestamp(call, us);
    if (pg_get_int64(res, 0, 8, &us) == 0)
        resp->updated_at = qry_timestamp(call, us);
    return GRPC_STATUS_OK;
}

/* ---- ReadStream, ReadAll, ListEventsByCorrelation ---- */

grpc_status_code qry_read_stream(trpc_call *call, const Tally__V1__ReadStreamRequest *req,
                                 Tally__V1__ReadStreamResponse *resp)
{
    struct qry q;
    trpc_status st;
    char id[UUID_STR_SIZE];
    int limit, has_more = 0;
    struct evlist *l;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK ||
        aggregate_type_check(req->aggregate_type, &st) != GRPC_STATUS_OK ||
        uuid_check("aggregate_id", req->aggregate_id, id, &st) != GRPC_STATUS_OK ||
        qry_page_size("limit", req->limit, QRY_LIMIT_DEFAULT, LOGREAD_MAX_LIMIT, &limit, &st) !=
            GRPC_STATUS_OK)
        return qry_finish(call, &st);
    if (req->from_version < 0)
        return trpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "from_version must be >= 0");
    l = evlist_new(call);
    if (logread_stream(q.conn, q.who.tenant_id, req->aggregate_type, id, req->from_version,
                       req->direction == TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS, limit,
                       evlist_add, l, &has_more, &st) != GRPC_STATUS_OK ||
        evlist_check(l, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    resp->events = l->v;
    resp->n_events = l->n;
    resp->has_more = has_more;
    return GRPC_STATUS_OK;
}

grpc_status_code qry_read_all(trpc_call *call, const Tally__V1__ReadAllRequest *req,
                              Tally__V1__ReadAllResponse *resp)
{
    struct qry q;
    trpc_status st;
    int limit;
    struct store_position after = {0, 0};
    struct logread_page page;
    struct evlist *l;
    Tally__V1__Position *next;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK ||
        logread_filter_check(req->filter, &st) != GRPC_STATUS_OK ||
        qry_page_size("limit", req->limit, QRY_LIMIT_DEFAULT, LOGREAD_MAX_LIMIT, &limit, &st) !=
            GRPC_STATUS_OK)
        return qry_finish(call, &st);
    if (req->after) {
        if (req->after->global_position < 0)
            return trpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                                  "after.global_position must be >= 0");
        after.tx_id = req->after->tx_id;
        after.global_position = req->after->global_position;
    }
    l = evlist_new(call);
    if (logread_all(q.conn, q.who.tenant_id, after, req->filter, limit, LOGREAD_SCAN_LIMIT,
                    evlist_add, l, &page, &st) != GRPC_STATUS_OK ||
        evlist_check(l, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    next = (Tally__V1__Position *)trpc_call_new_message(call, &tally__v1__position__descriptor);
    next->tx_id = page.next.tx_id;
    next->global_position = page.next.global_position;
    resp->events = l->v;
    resp->n_events = l->n;
    resp->next_position = next;
    resp->end_of_log = page.end_of_log;
    return GRPC_STATUS_OK;
}

grpc_status_code
qry_list_events_by_correlation(trpc_call *call,
                               const Tally__V1__ListEventsByCorrelationRequest *req,
                               Tally__V1__ListEventsByCorrelationResponse *resp)
{
    struct qry q;
    trpc_status st;
    int limit;
    struct evlist *l;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK ||
        text_check("correlation_id", req->correlation_id, 1, TALLY_MAX_CORRELATION_BYTES, &st) !=
            GRPC_STATUS_OK ||
        qry_page_size("limit", req->limit, QRY_LIMIT_DEFAULT, LOGREAD_MAX_LIMIT, &limit, &st) !=
            GRPC_STATUS_OK)
        return qry_finish(call, &st);
    l = evlist_new(call);
    if (logread_correlation(q.conn, q.who.tenant_id, req->correlation_id, limit, evlist_add, l,
                            &st) != GRPC_STATUS_OK ||
        evlist_check(l, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    resp->events = l->v;
    resp->n_events = l->n;
    return GRPC_STATUS_OK;
}

/* ---- GetAccountAt ---- */

struct replay {
    struct account_state s;
    int64_t last_us;   /* recorded_at of the last applied row */
    int64_t opened_us; /* recorded_at of AccountOpened (version 1), if replayed */
    int opened_seen;
    trpc_status *st;
};

static int replay_row(void *arg, int64_t version, const char *event_type, const char *json,
                      const char *recorded_at_us)
{
    struct replay *r = arg;
    Tally__V1__Event env = TALLY__V1__EVENT__INIT;
    grpc_status_code code;

    r->last_us = strtoll(recorded_at_us, NULL, 10);
    if (event_type == NULL) { /* the snapshot */
        json_t *j = json_loads(json, 0, NULL);

        code = j ? account_state_from_json(j, &r->s, r->st)
                 : trpc_status_set(r->st, GRPC_STATUS_INTERNAL, "unreadable snapshot");
        json_decref(j);
        return code != GRPC_STATUS_OK || r->s.version != version;
    }
    if (version == 1) {
        r->opened_us = r->last_us;
        r->opened_seen = 1;
    }
    code = evcodec_payload_from_json(&env, event_type, json, strlen(json), r->st);
    if (code == GRPC_STATUS_OK) {
        env.version = version;
        code = account_evolve_proto(&r->s, &env, r->st);
    }
    evcodec_payload_clear(&env);
    return code != GRPC_STATUS_OK;
}

/* The last version of the account recorded at or before at_us; 0 if none. */
static grpc_status_code version_at(struct qry *q, const char *id, int64_t at_us, int64_t *version,
                                   trpc_status *st)
{
    static const char sql[] = "SELECT COALESCE(max(version), 0) FROM events"
                              " WHERE tenant_id = $1::uuid AND aggregate_type = 'account'"
                              "   AND aggregate_id = $2::uuid AND recorded_at <= " QRY_TS_SQL("$3");
    char buf[PG_INT_BUF];
    const char *values[3] = {q->who.tenant_id, id, pg_int64_param(buf, at_us)};
    PGresult *res = PQexecParams(q->conn, sql, 3, NULL, values, NULL, NULL, 0);

    if (pg_check(res, PGRES_TUPLES_OK, 1, st, "could not read the account", "GetAccountAt %s",
                 id) == GRPC_STATUS_OK &&
        pg_get_int64(res, 0, 0, version) != 0)
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "could not read the account");
    PQclear(res);
    return st->code;
}

/* recorded_at of the account's AccountOpened (version 1): the replay began
 * at a snapshot above it. */
static grpc_status_code opened_at(struct qry *q, const char *id, int64_t *us, trpc_status *st)
{
    static const char sql[] = "SELECT " QRY_US_SQL(
        "recorded_at") " FROM events"
                       " WHERE tenant_id = $1::uuid AND aggregate_type = 'account'"
                       "   AND aggregate_id = $2::uuid AND version = 1";
    const char *values[2] = {q->who.tenant_id, id};
    PGresult *res = PQexecParams(q->conn, sql, 2, NULL, values, NULL, NULL, 0);

    if (pg_check(res, PGRES_TUPLES_OK, 1, st, "could not read the account", "GetAccountAt %s",
                 id) == GRPC_STATUS_OK &&
        (PQntuples(res) != 1 || pg_get_int64(res, 0, 0, us) != 0))
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "could not read the account");
    PQclear(res);
    return st->code;
}

void qry_account_from_state(trpc_call *call, const struct account_state *s, Tally__V1__Account *out)
{
    Tally__V1__Money *bal =
        (Tally__V1__Money *)trpc_call_new_message(call, &tally__v1__money__descriptor);

    out->account_id = trpc_call_strdup(call, s->account_id);
    out->owner = trpc_call_strdup(call, s->owner);
    out->currency = trpc_call_strdup(call, s->currency);
    out->status = (Tally__V1__AccountStatus)s->status;
    bal->minor_units = s->balance;
    bal->currency = out->currency;
    out->balance = bal;
    out->overdraft_limit = s->overdraft_limit;
    out->version = s->version;
}

grpc_status_code qry_get_account_at(trpc_call *call, const Tally__V1__GetAccountAtRequest *req,
                                    Tally__V1__Account *resp)
{
    struct qry q;
    trpc_status st;
    char id[UUID_STR_SIZE];
    int64_t version = 0, at_us;
    struct replay r;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK ||
        uuid_check("account_id", req->account_id, id, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    switch (req->at_case) {
    case TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_VERSION:
        if (req->version < 1)
            return trpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "version must be >= 1");
        version = req->version;
        break;
    case TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_TIME:
        if (req->time == NULL ||
            qry_timestamp_us("time", req->time, &at_us, &st) != GRPC_STATUS_OK ||
            version_at(&q, id, at_us, &version, &st) != GRPC_STATUS_OK)
            return qry_finish(call, &st);
        if (version == 0)
            return trpc_call_fail(call, GRPC_STATUS_NOT_FOUND,
                                  "account %s did not exist at that time", id);
        break;
    default:
        return trpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "set version or time");
    }
    account_state_init(&r.s);
    r.last_us = r.opened_us = 0;
    r.opened_seen = 0;
    r.st = &st;
    if (store_load_stream(q.conn, q.who.tenant_id, ACCOUNT_AGGREGATE_TYPE, id, 0, version, 1,
                          replay_row, &r, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    if (!r.s.exists)
        return trpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "account %s not found", id);
    if (r.s.version < version)
        return trpc_call_fail(call, GRPC_STATUS_NOT_FOUND,
                              "account %s has no version %" PRId64 " (latest %" PRId64 ")", id,
                              version, r.s.version);
    if (!r.opened_seen && opened_at(&q, id, &r.opened_us, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    qry_account_from_state(call, &r.s, resp);
    resp->opened_at = qry_timestamp(call, r.opened_us);
    resp->updated_at = qry_timestamp(call, r.last_us);
    return GRPC_STATUS_OK;
}

/* ---- GetProjectionStatus ---- */

grpc_status_code qry_get_projection_status(trpc_call *call,
                                           const Tally__V1__GetProjectionStatusRequest *req,
                                           Tally__V1__ProjectionStatus *resp)
{
    /* Lag counts what is committed and behind the fence but not projected;
     * blocked_reason names the oldest open transaction when it holds the
     * fence back (an idle one elsewhere in the cluster stalls every
     * projector: DESIGN §5). */
    static const char sql[] =
        "WITH cp AS (SELECT tx_id, global_position, updated_at FROM projector_checkpoints"
        "             WHERE name = $1"
        "            UNION ALL SELECT '0'::xid8, 0, NULL"
        "             WHERE NOT EXISTS (SELECT 1 FROM projector_checkpoints WHERE name = $1)),"
        " pending AS (SELECT e.recorded_at FROM events e, cp"
        "              WHERE (e.tx_id, e.global_position) > (cp.tx_id, cp.global_position)),"
        " oldest AS (SELECT pid, extract(epoch FROM now() - xact_start)::bigint AS age"
        "              FROM pg_stat_activity"
        "             WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)"
        "               AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        "             ORDER BY xact_start LIMIT 1)"
        " SELECT cp.tx_id::text, cp.global_position,"
        "        (SELECT count(*) FROM pending),"
        "        COALESCE((SELECT extract(epoch FROM now() - min(recorded_at)) FROM pending), 0),"
        "        (SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL),"
        "        (SELECT count(*) FROM outbox WHERE published_at IS NULL),"
        "        pg_notification_queue_usage(),"
        "        COALESCE((SELECT 'transaction of backend ' || pid || ' open for ' || age"
        "                         || ' s holds the commit fence back'"
        "                    FROM oldest WHERE age >= 5), ''),"
        "        " QRY_US_SQL("COALESCE(cp.updated_at, now())") " FROM cp";
    struct qry q;
    trpc_status st;
    const char *values[1] = {QRY_CHECKPOINT};
    PGresult *res;
    Tally__V1__Position *p;
    int64_t us;

    if (qry_begin(&q, call, req->min_position, &st) != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    res = PQexecParams(q.conn, sql, 1, NULL, values, NULL, NULL, 0);
    trpc_call_defer(call, pqclear_defer, res);
    if (pg_check(res, PGRES_TUPLES_OK, 9, &st, "could not read the projection status",
                 "GetProjectionStatus") != GRPC_STATUS_OK)
        return qry_finish(call, &st);
    if (PQntuples(res) != 1)
        return trpc_call_fail(call, GRPC_STATUS_INTERNAL, "could not read the projection status");
    p = (Tally__V1__Position *)trpc_call_new_message(call, &tally__v1__position__descriptor);
    pg_get_uint64(res, 0, 0, &p->tx_id);
    pg_get_int64(res, 0, 1, &p->global_position);
    resp->checkpoint = p;
    pg_get_int64(res, 0, 2, &resp->lag_events);
    resp->lag_seconds = strtod(PQgetvalue(res, 0, 3), NULL);
    pg_get_int64(res, 0, 4, &resp->dead_letters);
    pg_get_int64(res, 0, 5, &resp->outbox_backlog);
    resp->notification_queue_usage = strtod(PQgetvalue(res, 0, 6), NULL);
    resp->blocked_reason = PQgetvalue(res, 0, 7);
    if (pg_get_int64(res, 0, 8, &us) == 0)
        resp->updated_at = qry_timestamp(call, us);
    return GRPC_STATUS_OK;
}
