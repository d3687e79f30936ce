/* log_rpcs.h - QueryService RPCs served from the event log and the write
 * side (see log_rpcs.c); the read-model RPCs are in rm_rpcs.h. */
#ifndef SERVER_QUERY_LOG_RPCS_H
#define SERVER_QUERY_LOG_RPCS_H

#include "tally/v1/query.pb-c.h"

#include "account.h"
#include "trpc.h"

grpc_status_code qry_get_operation(trpc_call *call, const Tally__V1__GetOperationRequest *req,
                                   Tally__V1__Operation *resp);
grpc_status_code qry_read_stream(trpc_call *call, const Tally__V1__ReadStreamRequest *req,
                                 Tally__V1__ReadStreamResponse *resp);
grpc_status_code qry_read_all(trpc_call *call, const Tally__V1__ReadAllRequest *req,
                              Tally__V1__ReadAllResponse *resp);
grpc_status_code
qry_list_events_by_correlation(trpc_call *call,
                               const Tally__V1__ListEventsByCorrelationRequest *req,
                               Tally__V1__ListEventsByCorrelationResponse *resp);
grpc_status_code qry_get_account_at(trpc_call *call, const Tally__V1__GetAccountAtRequest *req,
                                    Tally__V1__Account *resp);
grpc_status_code qry_get_projection_status(trpc_call *call,
                                           const Tally__V1__GetProjectionStatusRequest *req,
                                           Tally__V1__ProjectionStatus *resp);

/* Fills an Account reply from a domain state (strings copied into the
 * call's arena; times left unset). */
void qry_account_from_state(trpc_call *call, const struct account_state *s,
                            Tally__V1__Account *out);

#endif /* SERVER_QUERY_LOG_RPCS_H */
