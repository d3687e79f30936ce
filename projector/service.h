/* service.h - tally-projector's gRPC service: tally.v1.SubscriptionService. */
#ifndef PROJECTOR_SERVICE_H
#define PROJECTOR_SERVICE_H

#include "config.h"
#include "trpc.h"

/* Adds SubscriptionService to srv (before trpc_server_start), with its handler
 * table; methods without a handler yet answer UNIMPLEMENTED. cfg is
 * borrowed and must outlive the server. Returns 0, or -1 (logged). */
int projector_service_register(trpc_server *srv, const struct config *cfg);

#endif /* PROJECTOR_SERVICE_H */
