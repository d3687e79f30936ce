/* daemon.c - see daemon.h. */
#include "daemon.h"

#include <signal.h>
#include <stdio.h>

#include "log.h"

int daemon_main(const struct daemon_spec *spec, int argc, char **argv)
{
    struct config cfg;
    trpc_server_opts opts;
    trpc_server *srv = NULL;
    char addr[300];
    int rc, port, sig, started = 0, set_up = 0, status = 1;

    trpc_block_signals(); /* before any thread: gRPC's threads inherit the mask */
    rc = config_load(&cfg, spec->prog, spec->default_port, argc, argv);
    if (rc == CONFIG_VERSION) {
        printf("%s %s\n", spec->prog, spec->version);
        return 0;
    }
    if (rc != CONFIG_OK)
        return rc == CONFIG_HELP ? 0 : CONFIG_BAD;
    log_set_ident(spec->prog);
    log_min_level = cfg.log_level;
    log_info("starting: listen=%s workers=%d pool_size=%d max_message_bytes=%d", cfg.listen_addr,
             cfg.workers, cfg.pool_size, cfg.max_message_bytes);

    config_server_opts(&cfg, &opts);
    if (spec->setup(&cfg, &opts) != 0)
        goto out;
    set_up = 1;
    srv = trpc_server_new(&opts);
    if (srv == NULL) {
        log_error("cannot create the server");
        goto out;
    }
    if (spec->register_service(srv, &cfg) != 0)
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
    trpc_server_free(srv);
    if (set_up)
        spec->teardown();
    log_info("exit %d", status);
    return status;
}
