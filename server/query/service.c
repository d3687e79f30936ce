/* service.c - see service.h. */
#include "service.h"

#include "tally/v1/query.trpc.h"

#include "log.h"
#include "log_rpcs.h"
#include "qexec.h"
#include "rm_rpcs.h"

static struct qry_env env;

static const Tally__V1__QueryService_TrpcHandlers handlers = {
    .get_account = qry_get_account,
    .list_accounts = qry_list_accounts,
    .list_entries = qry_list_entries,
    .get_transfer = qry_get_transfer,
    .get_tenant_usage = qry_get_tenant_usage,
    .get_operation = qry_get_operation,
    .get_account_at = qry_get_account_at,
    .read_stream = qry_read_stream,
    .read_all = qry_read_all,
    .list_events_by_correlation = qry_list_events_by_correlation,
    .get_projection_status = qry_get_projection_status,
};

int query_service_setup(const struct config *cfg, trpc_server_opts *opts)
{
    pg_opts_init(&env.pg);
    env.pg.conninfo = cfg->db;
    env.pg.application_name = "tally-query";
    env.auth = auth_cache_new(AUTH_CACHE_TTL_MS, AUTH_CACHE_NEGATIVE_TTL_MS, AUTH_CACHE_SLOTS);
    env.watch = ckwatch_new(&env.pg, QRY_CHECKPOINT, QRY_CHANNEL);
    if (env.auth == NULL || env.watch == NULL) {
        log_error("cannot allocate the query service's state");
        query_service_teardown();
        return -1;
    }
    opts->worker_init = qry_worker_init;
    opts->worker_fini = qry_worker_fini;
    opts->worker_arg = &env;
    return 0;
}

int query_service_register(trpc_server *srv, const struct config *cfg)
{
    (void)cfg;
    if (tally__v1__query_service__trpc_register(srv, &handlers, &env) != 0) {
        log_error("cannot register %s", TALLY__V1__QUERY_SERVICE__NAME);
        return -1;
    }
    return 0;
}

void query_service_teardown(void)
{
    ckwatch_free(env.watch);
    auth_cache_free(env.auth);
    env.watch = NULL;
    env.auth = NULL;
}
