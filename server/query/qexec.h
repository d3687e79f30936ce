/* qexec.h - what every QueryService RPC does first: a database connection,
 * authentication (the token's tenant scopes every read), and the
 * read-your-writes wait for `min_position` (ckwatch.h: bounded by the call's
 * deadline, no polling by the call itself). Plus small reply builders. */
#ifndef SERVER_QUERY_QEXEC_H
#define SERVER_QUERY_QEXEC_H

#include <stdint.h>

#include <libpq-fe.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "tally/v1/types.pb-c.h"

#include "auth.h"
#include "ckwatch.h"
#include "pg.h"
#include "pgworker.h"
#include "trpc.h"

/* Name of the read model's checkpoint row, and the channel the projector
 * notifies after each committed batch. */
#define QRY_CHECKPOINT "rm"
#define QRY_CHANNEL    "tally_projected"

/* Page sizes (documented in query.proto). */
#define QRY_PAGE_DEFAULT  50
#define QRY_PAGE_MAX      1000
#define QRY_LIMIT_DEFAULT 100

struct qry_env {
    struct pg_opts pg;
    auth_cache *auth;
    ckwatch *watch;
};

/* worker_init / worker_fini for trpc_server_opts (arg: struct qry_env *);
 * the worker data is a struct pg_worker. */
void *qry_worker_init(void *env, int index);
void qry_worker_fini(void *worker);

struct qry {
    trpc_call *call;
    struct qry_env *env;
    PGconn *conn;
    struct auth_identity who;
};

/* Connection, authentication, then the wait for min_position (NULL or
 * {0,0} = none). Returns OK to go on, or the error (st). */
grpc_status_code qry_begin(struct qry *q, trpc_call *call, const Tally__V1__Position *min_position,
                           trpc_status *st);

/* A page size: 0 -> def, 1..max as given, else INVALID_ARGUMENT naming
 * field. */
grpc_status_code qry_page_size(const char *field, int32_t requested, int def, int max, int *out,
                               trpc_status *st);

/* A Timestamp in the call's arena from microseconds since the epoch. */
Google__Protobuf__Timestamp *qry_timestamp(trpc_call *call, int64_t unix_us);

/* Microseconds since the epoch of a request Timestamp; INVALID_ARGUMENT for
 * nanos outside 0..999999999 or a time outside 0001..9999. */
grpc_status_code qry_timestamp_us(const char *field, const Google__Protobuf__Timestamp *ts,
                                  int64_t *out, trpc_status *st);

/* SQL for a timestamptz from a bigint parameter of microseconds since the
 * epoch (exact, unlike to_timestamp's double seconds): QRY_TS_SQL("$3"). */
#define QRY_TS_SQL(param) "(timestamptz 'epoch' + (" param ")::bigint * interval '1 microsecond')"
/* ... and back: a bigint of microseconds since the epoch from a column. */
#define QRY_US_SQL(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

/* Ends a handler: OK, or the error with its message. */
grpc_status_code qry_finish(trpc_call *call, const trpc_status *st);

#endif /* SERVER_QUERY_QEXEC_H */
