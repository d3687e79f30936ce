/* pgworker.h - the database connection a pool thread owns (one per thread,
 * DESIGN §8), reconnected lazily: a call on a dead database fails fast with
 * UNAVAILABLE instead of hanging, and the next call tries again. */
#ifndef SERVER_PGWORKER_H
#define SERVER_PGWORKER_H

#include <libpq-fe.h>

#include "pg.h"
#include "trpc.h"

struct pg_worker {
    const struct pg_opts *opts; /* borrowed */
    PGconn *conn;               /* NULL or bad: reconnected by pg_worker_conn */
    PGcancel *cancel;           /* cancels conn's running query */
};

/* Connects (once; failure is fine, the first call retries). */
void pg_worker_init(struct pg_worker *w, const struct pg_opts *opts);

/* Closes the connection. */
void pg_worker_cleanup(struct pg_worker *w);

/* A usable connection outside a transaction: the current one, or a new one
 * after one quick attempt. NULL with st = UNAVAILABLE "database unavailable". */
PGconn *pg_worker_conn(struct pg_worker *w, trpc_status *st);

/* trpc_call_on_cancel callback (arg: struct pg_worker *): cancels the
 * running query, e.g. when the client gives up. */
void pg_worker_cancel(void *w);

#endif /* SERVER_PGWORKER_H */
