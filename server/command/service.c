/* service.c - see service.h. */
#include "service.h"

#include "tally/v1/command.trpc.h"

#include "log.h"

/* The CommandService handlers. A NULL member is answered UNIMPLEMENTED by
 * the runtime; each RPC fills its member as it is implemented. */
static const Tally__V1__CommandService_TrpcHandlers handlers = {0};

int command_service_register(trpc_server *srv, const struct config *cfg)
{
    (void)cfg;
    if (tally__v1__command_service__trpc_register(srv, &handlers, NULL) != 0) {
        log_error("cannot register %s", TALLY__V1__COMMAND_SERVICE__NAME);
        return -1;
    }
    return 0;
}
