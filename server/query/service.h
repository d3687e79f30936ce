/* service.h - tally-query's gRPC service: tally.v1.QueryService. */
#ifndef SERVER_QUERY_SERVICE_H
#define SERVER_QUERY_SERVICE_H

#include "config.h"
#include "trpc.h"

/* Makes the process-wide state (auth cache, checkpoint watcher) and sets
 * the pool's per-thread database connections in opts. Call before
 * trpc_server_new; cfg must outlive the server. Returns 0 or -1 (logged). */
int query_service_setup(const struct config *cfg, trpc_server_opts *opts);

/* Adds QueryService to srv (before trpc_server_start). 0 or -1 (logged). */
int query_service_register(trpc_server *srv, const struct config *cfg);

/* Frees what setup made, after trpc_server_free. */
void query_service_teardown(void);

#endif /* SERVER_QUERY_SERVICE_H */
