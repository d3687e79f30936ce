/* deadletter.c - see deadletter.h. The set is a small array: it holds only
 * aggregates with an unresolved dead letter, normally none. */
#include "deadletter.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

void dl_set_init(struct dl_set *s, const char *projection)
{
    memset(s, 0, sizeof(*s));
    s->projection = projection;
}

void dl_set_cleanup(struct dl_set *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

void dl_key(const char *tenant_id, const char *aggregate_type, const char *aggregate_id, char *buf,
            size_t len)
{
    snprintf(buf, len, "%s/%s/%s", tenant_id, aggregate_type, aggregate_id);
}

int64_t dl_blocked_head(const struct dl_set *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].key, key) == 0)
            return s->v[i].head;
    return 0;
}

int dl_block(struct dl_set *s, const char *key, int64_t head)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].key, key) == 0) {
            s->v[i].head = head;
            return 0;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct dl_blocked *v = realloc(s->v, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    snprintf(s->v[s->n].key, sizeof(s->v[s->n].key), "%s", key);
    s->v[s->n].head = head;
    s->n++;
    return 0;
}

void dl_unblock(struct dl_set *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].key, key) == 0) {
            s->v[i] = s->v[s->n - 1];
            s->n--;
            return;
        }
}

grpc_status_code dl_load(PGconn *conn, struct dl_set *s, trpc_status *st)
{
    static const char sql[] = "SELECT id, tenant_id::text, aggregate_type, aggregate_id::text"
                              "  FROM dead_letters"
                              " WHERE projection = $1 AND resolved_at IS NULL"
                              "   AND queued_behind IS NULL";
    const char *values[1] = {s->projection};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, values, NULL, NULL, 0);

    if (pg_check(res, PGRES_TUPLES_OK, 4, st, "could not read dead letters", "load dead letters %s",
                 s->projection) != GRPC_STATUS_OK)
        goto out;
    s->n = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        char key[128];
        int64_t id = 0;

        pg_get_int64(res, i, 0, &id);
        dl_key(PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), key,
               sizeof(key));
        if (dl_block(s, key, id) != 0) {
            trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
            goto out;
        }
    }
    if (s->n)
        log_warn("projection %s: %zu aggregate(s) blocked by dead letters", s->projection, s->n);
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
out:
    PQclear(res);
    return st->code;
}

static const char INSERT_SQL[] =
    "INSERT INTO dead_letters (projection, global_position, tx_id, tenant_id, aggregate_type,"
    "                          aggregate_id, error, attempts, event_id, event_type,"
    "                          queued_behind, last_attempt_at)"
    " VALUES ($1, $2::bigint, $3::xid8, $4::uuid, $5, $6::uuid, $7, $8::int, $9::uuid, $10,"
    "         $11::bigint, CASE WHEN $8::int > 0 THEN now() END)";

grpc_status_code dl_send_queued(PGconn *conn, const struct dl_set *s, const struct rawlog_event *ev,
                                const char *aggregate_type, const char *aggregate_id, int64_t head,
                                trpc_status *st)
{
    char gp[PG_INT_BUF], tx[PG_INT_BUF], hd[PG_INT_BUF], err[64], text[sizeof(INSERT_SQL) + 64];
    const char *values[11];

    snprintf(err, sizeof(err), "queued behind dead letter %" PRId64, head);
    snprintf(text, sizeof(text), "%s ON CONFLICT (projection, global_position) DO NOTHING",
             INSERT_SQL);
    values[0] = s->projection;
    values[1] = pg_int64_param(gp, ev->pos.global_position);
    values[2] = pg_uint64_param(tx, ev->pos.tx_id);
    values[3] = ev->tenant_id;
    values[4] = aggregate_type;
    values[5] = aggregate_id;
    values[6] = err;
    values[7] = "0";
    values[8] = ev->event_id;
    values[9] = ev->event_type;
    values[10] = pg_int64_param(hd, head);
    if (!PQsendQueryParams(conn, text, 11, NULL, values, NULL, NULL, 0)) {
        log_warn("dead letters: cannot queue: %s", PQerrorMessage(conn));
        return trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

grpc_status_code dl_insert_head(PGconn *conn, const struct dl_set *s, const struct rawlog_event *ev,
                                const char *aggregate_type, const char *aggregate_id,
                                const char *error, int attempts, int64_t *id, trpc_status *st)
{
    char gp[PG_INT_BUF], tx[PG_INT_BUF], at[PG_INT_BUF], text[sizeof(INSERT_SQL) + 256];
    const char *values[11];
    PGresult *res;

    /* an existing row (a queued one, or from an earlier run) becomes the head */
    snprintf(text, sizeof(text),
             "%s ON CONFLICT (projection, global_position) DO UPDATE SET"
             " error = EXCLUDED.error, attempts = EXCLUDED.attempts, queued_behind = NULL,"
             " resolved_at = NULL, last_attempt_at = now() RETURNING id",
             INSERT_SQL);
    values[0] = s->projection;
    values[1] = pg_int64_param(gp, ev->pos.global_position);
    values[2] = pg_uint64_param(tx, ev->pos.tx_id);
    values[3] = ev->tenant_id;
    values[4] = aggregate_type;
    values[5] = aggregate_id;
    values[6] = error;
    values[7] = pg_int64_param(at, attempts);
    values[8] = ev->event_id;
    values[9] = ev->event_type;
    values[10] = NULL;
    res = PQexecParams(conn, text, 11, NULL, values, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 1, st, "could not record a dead letter",
                 "dead letter %s at %" PRId64, s->projection,
                 ev->pos.global_position) == GRPC_STATUS_OK) {
        if (PQntuples(res) != 1 || pg_get_int64(res, 0, 0, id) != 0)
            trpc_status_set(st, GRPC_STATUS_INTERNAL, "could not record a dead letter");
        else {
            st->code = GRPC_STATUS_OK;
            st->msg[0] = '\0';
        }
    }
    PQclear(res);
    return st->code;
}

void dl_chains_free(struct dl_chain *chains, size_t n)
{
    for (size_t i = 0; chains && i < n; i++) {
        free(chains[i].ids);
        free(chains[i].positions);
    }
    free(chains);
}

grpc_status_code dl_retry_requests(PGconn *conn, const struct dl_set *s, size_t max_chains,
                                   struct dl_chain **chains, size_t *n, trpc_status *st)
{
    /* every unresolved row of each aggregate that has a retry request */
    static const char sql[] =
        "SELECT d.id, d.global_position, d.tenant_id::text, d.aggregate_type,"
        "       d.aggregate_id::text"
        "  FROM dead_letters d"
        "  JOIN (SELECT DISTINCT tenant_id, aggregate_type, aggregate_id FROM dead_letters"
        "         WHERE projection = $1 AND resolved_at IS NULL"
        "           AND retry_requested_at IS NOT NULL LIMIT $2::int) r"
        "    ON (r.tenant_id, r.aggregate_type, r.aggregate_id)"
        "     = (d.tenant_id, d.aggregate_type, d.aggregate_id)"
        " WHERE d.projection = $1 AND d.resolved_at IS NULL"
        " ORDER BY d.tenant_id, d.aggregate_type, d.aggregate_id, d.tx_id, d.global_position";
    char lim[PG_INT_BUF];
    const char *values[2] = {s->projection, pg_int64_param(lim, (int64_t)max_chains)};
    PGresult *res = PQexecParams(conn, sql, 2, NULL, values, NULL, NULL, 0);
    struct dl_chain *c = NULL;
    size_t nc = 0;
    int rows;

    *chains = NULL;
    *n = 0;
    if (pg_check(res, PGRES_TUPLES_OK, 5, st, "could not read dead letters",
                 "dead letter retries %s", s->projection) != GRPC_STATUS_OK)
        goto out;
    rows = PQntuples(res);
    if (rows > 0) {
        c = calloc((size_t)rows, sizeof(*c)); /* at most one chain per row */
        if (c == NULL) {
            trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
            goto out;
        }
    }
    for (int i = 0; i < rows; i++) {
        struct dl_chain *ch = nc ? &c[nc - 1] : NULL;

        if (ch == NULL || strcmp(ch->tenant_id, PQgetvalue(res, i, 2)) != 0 ||
            strcmp(ch->aggregate_type, PQgetvalue(res, i, 3)) != 0 ||
            strcmp(ch->aggregate_id, PQgetvalue(res, i, 4)) != 0) {
            ch = &c[nc++];
            snprintf(ch->tenant_id, sizeof(ch->tenant_id), "%s", PQgetvalue(res, i, 2));
            snprintf(ch->aggregate_type, sizeof(ch->aggregate_type), "%s", PQgetvalue(res, i, 3));
            snprintf(ch->aggregate_id, sizeof(ch->aggregate_id), "%s", PQgetvalue(res, i, 4));
            ch->ids = calloc((size_t)rows, sizeof(int64_t));
            ch->positions = calloc((size_t)rows, sizeof(int64_t));
            if (ch->ids == NULL || ch->positions == NULL) {
                dl_chains_free(c, nc);
                c = NULL;
                nc = 0;
                trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
                goto out;
            }
        }
        pg_get_int64(res, i, 0, &ch->ids[ch->n]);
        pg_get_int64(res, i, 1, &ch->positions[ch->n]);
        ch->n++;
    }
    *chains = c;
    *n = nc;
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
out:
    PQclear(res);
    return st->code;
}

grpc_status_code dl_resolve(PGconn *conn, int64_t id, trpc_status *st)
{
    static const char sql[] =
        "UPDATE dead_letters SET resolved_at = now(), retry_requested_at = NULL,"
        "       last_attempt_at = CASE WHEN queued_behind IS NULL THEN now() ELSE last_attempt_at "
        "END"
        " WHERE id = $1::bigint";
    char idbuf[PG_INT_BUF];
    const char *values[1] = {pg_int64_param(idbuf, id)};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, values, NULL, NULL, 0);
    grpc_status_code code =
        pg_check(res, PGRES_COMMAND_OK, 0, st, "could not resolve a dead letter",
                 "resolve dead letter %" PRId64, id);

    PQclear(res);
    return code; /* pg_check leaves st alone on success */
}

grpc_status_code dl_retry_failed(PGconn *conn, const struct dl_set *s, const struct dl_chain *c,
                                 int64_t failed, const char *error, trpc_status *st)
{
    static const char sql[] =
        "WITH h AS ("
        "  UPDATE dead_letters SET attempts = attempts + 1, error = $2, queued_behind = NULL,"
        "         retry_requested_at = NULL, last_attempt_at = now()"
        "   WHERE id = $1::bigint RETURNING id"
        ")"
        " UPDATE dead_letters d SET queued_behind = (SELECT id FROM h), retry_requested_at = NULL"
        "  WHERE d.projection = $3 AND d.resolved_at IS NULL AND d.id <> $1::bigint"
        "    AND d.tenant_id = $4::uuid AND d.aggregate_type = $5 AND d.aggregate_id = $6::uuid";
    char idbuf[PG_INT_BUF];
    const char *values[6] = {pg_int64_param(idbuf, failed),
                             error,
                             s->projection,
                             c->tenant_id,
                             c->aggregate_type,
                             c->aggregate_id};
    PGresult *res = PQexecParams(conn, sql, 6, NULL, values, NULL, NULL, 0);

    if (pg_check(res, PGRES_COMMAND_OK, 0, st, "could not update dead letters",
                 "retry failed, dead letter %" PRId64, failed) == GRPC_STATUS_OK) {
        st->code = GRPC_STATUS_OK;
        st->msg[0] = '\0';
    }
    PQclear(res);
    return st->code;
}
