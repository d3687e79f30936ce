/* service.c - see service.h. */
#include "service.h"

#include "tally/v1/subscription.trpc.h"

#include "log.h"
#include "subscribe.h"

/* The SubscriptionService handlers. */
static const Tally__V1__SubscriptionService_TrpcHandlers handlers = {
    .subscribe = subscribe_rpc,
};

int projector_service_register(trpc_server *srv, const struct config *cfg)
{
    (void)cfg;
    if (tally__v1__subscription_service__trpc_register(srv, &handlers, NULL) != 0) {
        log_error("cannot register %s", TALLY__V1__SUBSCRIPTION_SERVICE__NAME);
        return -1;
    }
    return 0;
}
