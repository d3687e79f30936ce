/* pconn.h - the projector's database connections: tally's session settings
 * (pg.h) plus the projector's own (TimeZone UTC, so timestamps are read and
 * written the same way everywhere; for the read model, search_path
 * "<schema>, public" so the projection's unqualified table names pick the
 * live schema rm or the rebuild's rm_rebuild). */
#ifndef PROJECTOR_PCONN_H
#define PROJECTOR_PCONN_H

#include <libpq-fe.h>

#include "pg.h"
#include "trpc.h"

/* Connects with o (its attempts and backoff) and applies the settings;
 * schema NULL leaves search_path alone. Returns the connection (PQfinish
 * it) or NULL with st set (UNAVAILABLE, logged). */
PGconn *pconn_open(const struct pg_opts *o, const char *schema, trpc_status *st);

#endif /* PROJECTOR_PCONN_H */
