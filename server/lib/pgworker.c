/* pgworker.c - see pgworker.h. */
#include "pgworker.h"

#include <string.h>

static void disconnect(struct pg_worker *w)
{
    PQfreeCancel(w->cancel);
    w->cancel = NULL;
    PQfinish(w->conn);
    w->conn = NULL;
}

void pg_worker_init(struct pg_worker *w, const struct pg_opts *opts)
{
    trpc_status st;

    memset(w, 0, sizeof(*w));
    w->opts = opts;
    w->conn = pg_connect(opts, &st);
    if (w->conn)
        w->cancel = PQgetCancel(w->conn);
}

void pg_worker_cleanup(struct pg_worker *w)
{
    disconnect(w);
}

PGconn *pg_worker_conn(struct pg_worker *w, trpc_status *st)
{
    struct pg_opts o;

    if (w->conn && PQstatus(w->conn) == CONNECTION_OK &&
        PQtransactionStatus(w->conn) == PQTRANS_IDLE)
        return w->conn;
    disconnect(w);
    o = *w->opts;
    o.connect_attempts = 1; /* the client retries; a call must not hang on a dead database */
    o.connect_timeout_s = 2;
    w->conn = pg_connect(&o, st);
    if (w->conn == NULL) {
        trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
        return NULL;
    }
    w->cancel = PQgetCancel(w->conn);
    return w->conn;
}

void pg_worker_cancel(void *arg)
{
    struct pg_worker *w = arg;
    char err[128];

    if (w->cancel)
        PQcancel(w->cancel, err, sizeof(err));
}
