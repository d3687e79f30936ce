/* pconn.c - see pconn.h. */
#include "pconn.h"

#include <stdio.h>

#include "log.h"

PGconn *pconn_open(const struct pg_opts *o, const char *schema, trpc_status *st)
{
    static const char sql[] = "SELECT set_config('TimeZone', 'UTC', false),"
                              "       CASE WHEN $1::text IS NOT NULL"
                              "            THEN set_config('search_path', $1, false) END";
    char path[128];
    const char *values[1] = {NULL};
    PGconn *conn = pg_connect(o, st);
    PGresult *res;

    if (conn == NULL)
        return NULL;
    if (schema) {
        snprintf(path, sizeof(path), "%s, public", schema);
        values[0] = path;
    }
    res = PQexecParams(conn, sql, 1, NULL, values, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 2, st, "database unavailable",
                 "projector session settings") != GRPC_STATUS_OK) {
        PQclear(res);
        PQfinish(conn);
        return NULL;
    }
    PQclear(res);
    return conn;
}
