/* service.h - tally-command's gRPC service: tally.v1.CommandService. */
#ifndef SERVER_COMMAND_SERVICE_H
#define SERVER_COMMAND_SERVICE_H

#include "config.h"
#include "trpc.h"

/* Makes the process-wide state (caches, the doorbell) and sets the pool's
 * per-thread resources in opts (one database connection per pool thread).
 * Call before trpc_server_new. cfg is borrowed and must outlive the server.
 * Returns 0, or -1 (logged). */
int command_service_setup(const struct config *cfg, trpc_server_opts *opts);

/* Adds CommandService to srv (before trpc_server_start). Returns 0, or -1
 * (logged). */
int command_service_register(trpc_server *srv, const struct config *cfg);

/* Frees what setup made, after trpc_server_free. */
void command_service_teardown(void);

#endif /* SERVER_COMMAND_SERVICE_H */
