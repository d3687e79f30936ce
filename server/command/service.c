/* service.c - see service.h. */
#include "service.h"

#include "tally/v1/command.trpc.h"

#include "exec.h"
#include "handlers.h"
#include "log.h"

#define ACCOUNT_CACHE_ENTRIES 100000
#define SNAPSHOT_EVERY        100
#define MAX_APPEND_ATTEMPTS   8

static struct cmd_env env;

int command_service_setup(const struct config *cfg, trpc_server_opts *opts)
{
    pg_opts_init(&env.pg);
    env.pg.conninfo = cfg->db;
    env.pg.application_name = "tally-command";
    env.snapshot_every = SNAPSHOT_EVERY;
    env.max_attempts = MAX_APPEND_ATTEMPTS;
    env.accounts = aggcache_new(ACCOUNT_CACHE_ENTRIES, sizeof(struct account_state));
    env.auth = auth_cache_new(AUTH_CACHE_TTL_MS, AUTH_CACHE_NEGATIVE_TTL_MS, AUTH_CACHE_SLOTS);
    env.bell = doorbell_new(cfg->db, "tally_outbox");
    if (env.accounts == NULL || env.auth == NULL || env.bell == NULL) {
        log_error("cannot allocate the command service's state");
        command_service_teardown();
        return -1;
    }
    opts->worker_init = cmd_worker_init;
    opts->worker_fini = cmd_worker_fini;
    opts->worker_arg = &env;
    return 0;
}

int command_service_register(trpc_server *srv, const struct config *cfg)
{
    (void)cfg;
    if (tally__v1__command_service__trpc_register(srv, &command_handlers, NULL) != 0) {
        log_error("cannot register %s", TALLY__V1__COMMAND_SERVICE__NAME);
        return -1;
    }
    return 0;
}

void command_service_teardown(void)
{
    doorbell_free(env.bell);
    auth_cache_free(env.auth);
    aggcache_free(env.accounts);
    env.bell = NULL;
    env.auth = NULL;
    env.accounts = NULL;
}
