/* service.c - see service.h. */
#include "service.h"

#include "tally/v1/query.trpc.h"

#include "log.h"

/* The QueryService handlers. A NULL member is answered UNIMPLEMENTED by
 * the runtime; each RPC fills its member as it is implemented. */
static const Tally__V1__QueryService_TrpcHandlers handlers = {0};

int query_service_register(trpc_server *srv, const struct config *cfg)
{
    (void)cfg;
    if (tally__v1__query_service__trpc_register(srv, &handlers, NULL) != 0) {
        log_error("cannot register %s", TALLY__V1__QUERY_SERVICE__NAME);
        return -1;
    }
    return 0;
}
