/* rm_rpcs.h - QueryService RPCs served from the read model (schema rm,
 * migrations/0002, maintained by tally-projector): GetAccount, ListAccounts,
 * ListEntries, GetTransfer, GetTenantUsage. Every query is scoped to the
 * caller's tenant; another tenant's row is NOT_FOUND. */
#ifndef SERVER_QUERY_RM_RPCS_H
#define SERVER_QUERY_RM_RPCS_H

#include "tally/v1/query.pb-c.h"

#include "trpc.h"

grpc_status_code qry_get_account(trpc_call *call, const Tally__V1__GetAccountRequest *req,
                                 Tally__V1__Account *resp);
grpc_status_code qry_list_accounts(trpc_call *call, const Tally__V1__ListAccountsRequest *req,
                                   Tally__V1__ListAccountsResponse *resp);
grpc_status_code qry_list_entries(trpc_call *call, const Tally__V1__ListEntriesRequest *req,
                                  Tally__V1__ListEntriesResponse *resp);
grpc_status_code qry_get_transfer(trpc_call *call, const Tally__V1__GetTransferRequest *req,
                                  Tally__V1__Transfer *resp);
grpc_status_code qry_get_tenant_usage(trpc_call *call, const Tally__V1__GetTenantUsageRequest *req,
                                      Tally__V1__GetTenantUsageResponse *resp);

#endif /* SERVER_QUERY_RM_RPCS_H */
