/* daemon.h - the life of a tally gRPC daemon, shared by tally-command and
 * tally-query: block signals, load the configuration (config.h), set the
 * service up, serve until SIGTERM or SIGINT, shut down gracefully. */
#ifndef SERVER_DAEMON_H
#define SERVER_DAEMON_H

#include "config.h"
#include "trpc.h"

struct daemon_spec {
    const char *prog;    /* "tally-command" */
    const char *version; /* printed by --version */
    int default_port;
    /* before trpc_server_new: process-wide state, pool resources in opts */
    int (*setup)(const struct config *cfg, trpc_server_opts *opts);
    /* before trpc_server_start: add the service */
    int (*register_service)(trpc_server *srv, const struct config *cfg);
    /* after trpc_server_free */
    void (*teardown)(void);
};

/* Runs the daemon; returns the process exit status: 0 after a clean
 * shutdown, 1 on a runtime failure (e.g. the port cannot be bound), 2 on bad
 * configuration. Call from main, before any thread exists. */
int daemon_main(const struct daemon_spec *spec, int argc, char **argv);

#endif /* SERVER_DAEMON_H */
