/* main.c - tally-projector: projections and live subscriptions. Serves
 * SubscriptionService, health and reflection until SIGTERM or SIGINT, and
 * runs, while it holds the projector lock (leader.h), the read-model
 * consumer (consumer.h) and the transfer saga (saga.h); a standby instance
 * serves and waits for the lock. With --rebuild it rebuilds the query
 * tables (rebuild.h) and exits. Command line: config.h and options.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "consumer.h"
#include "leader.h"
#include "log.h"
#include "options.h"
#include "rebuild.h"
#include "saga.h"
#include "service.h"
#include "subscribe.h"
#include "trpc.h"
#include "wake.h"

#define PROG              "tally-projector"
#define DEFAULT_PORT      50053
#define OUTBOX_CHANNEL    "tally_outbox"
#define PROJECTED_CHANNEL "tally_projected" /* tally-query's ckwatch LISTENs */

int main(int argc, char **argv)
{
    struct config cfg;
    struct projector_options po;
    struct pg_opts pg;
    trpc_server_opts opts;
    trpc_server *srv = NULL;
    wake *w = NULL;
    leader *l = NULL;
    consumer *c = NULL;
    saga *sg = NULL;
    char **rest = NULL;
    char addr[300];
    int rc, rest_argc = 0, port, sig, started = 0, status = 1;

    trpc_block_signals(); /* before any thread: gRPC's threads inherit the mask */
    projector_options_init(&po);
    rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (rest == NULL)
        return 1;
    if (projector_options_parse(&po, argc, argv, rest, &rest_argc) != 0) {
        free(rest);
        return CONFIG_BAD;
    }
    rc = config_load(&cfg, PROG, DEFAULT_PORT, rest_argc, rest);
    if (rc == CONFIG_VERSION) {
        printf("%s %s\n", PROG, TALLY_VERSION);
        free(rest);
        return 0;
    }
    if (rc == CONFIG_HELP)
        projector_options_usage();
    if (rc != CONFIG_OK) {
        free(rest);
        return rc == CONFIG_HELP ? 0 : CONFIG_BAD;
    }
    log_set_ident(PROG);
    log_min_level = cfg.log_level;
    pg_opts_init(&pg);
    pg.conninfo = cfg.db;
    pg.application_name = PROG;

    if (po.rebuild) {
        status = rebuild_run(&pg, &po);
        free(rest);
        return status;
    }

    log_info("starting: listen=%s workers=%d pool_size=%d batch_size=%d poll_ms=%d "
             "outbox_retention_s=%ld max_attempts=%d",
             cfg.listen_addr, cfg.workers, cfg.pool_size, po.batch_size, po.poll_ms,
             po.outbox_retention_s, po.max_attempts);
    w = wake_new(&pg, OUTBOX_CHANNEL);
    l = w ? leader_new(&pg, LEADER_KEY_PROJECTOR, po.lock_retry_ms, w) : NULL;
    if (w == NULL || l == NULL) {
        log_error("cannot start the projector's threads");
        goto out;
    }
    {
        struct consumer_opts co = {0};
        struct saga_opts so = {0};

        co.pg = pg;
        co.batch_size = po.batch_size;
        co.poll_ms = po.poll_ms;
        co.max_attempts = po.max_attempts;
        co.backoff_ms = po.backoff_ms;
        co.outbox_retention_s = po.outbox_retention_s;
        co.projected_channel = PROJECTED_CHANNEL;
        so.pg = pg;
        so.batch_size = po.batch_size;
        so.poll_ms = po.poll_ms;
        so.max_attempts = po.max_attempts;
        so.backoff_ms = po.backoff_ms;
        c = consumer_start(&co, w, l);
        sg = c ? saga_start(&so, w, l) : NULL;
        if (c == NULL || sg == NULL)
            goto out;
    }

    config_server_opts(&cfg, &opts);
    if (subscribe_setup(&cfg, &opts) != 0)
        goto out;
    srv = trpc_server_new(&opts);
    if (srv == NULL) {
        log_error("cannot create the server");
        goto out;
    }
    if (projector_service_register(srv, &cfg) != 0)
        goto out;
    port = trpc_server_start(srv);
    started = 1;
    if (port <= 0) {
        log_error("cannot listen on %s", cfg.listen_addr);
        goto out;
    }
    if (config_bound_addr(&cfg, port, addr, sizeof(addr)) != 0)
        goto out;
    log_info("listening on %s", addr);
    if (config_write_ready_file(&cfg, port) != 0)
        goto out;

    sig = trpc_wait_for_signal(); /* not inside log_info: its arguments may be skipped */
    log_info("%s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = 0;
out:
    if (started)
        trpc_server_shutdown(srv);
    /* after the shutdown (every stream has finished) but before the server is
     * freed: the tail thread must not touch a stream of a freed server */
    subscribe_teardown();
    trpc_server_free(srv);
    if (w)
        wake_shutdown(w); /* every worker's wait ends now */
    consumer_stop(c);
    saga_stop(sg);
    leader_free(l);
    wake_free(w);
    free(rest);
    log_info("exit %d", status);
    return status;
}
