/* service.h - tally-command's gRPC service: tally.v1.CommandService. */
#ifndef SERVER_COMMAND_SERVICE_H
#define SERVER_COMMAND_SERVICE_H

#include "config.h"
#include "trpc.h"

/* Adds CommandService to srv (before trpc_server_start), with its handler
 * table; methods without a handler yet answer UNIMPLEMENTED. cfg is
 * borrowed and must outlive the server. Returns 0, or -1 (logged). */
int command_service_register(trpc_server *srv, const struct config *cfg);

#endif /* SERVER_COMMAND_SERVICE_H */
