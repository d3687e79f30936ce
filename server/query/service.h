/* service.h - tally-query's gRPC service: tally.v1.QueryService. */
#ifndef SERVER_QUERY_SERVICE_H
#define SERVER_QUERY_SERVICE_H

#include "config.h"
#include "trpc.h"

/* Adds QueryService to srv (before trpc_server_start), with its handler
 * table; methods without a handler yet answer UNIMPLEMENTED. cfg is
 * borrowed and must outlive the server. Returns 0, or -1 (logged). */
int query_service_register(trpc_server *srv, const struct config *cfg);

#endif /* SERVER_QUERY_SERVICE_H */
