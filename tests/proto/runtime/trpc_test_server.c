/* trpc_test_server.c - serves trpctest.v1.TestService (plus health and
 * reflection) on 127.0.0.1 until SIGINT/SIGTERM, for checks with clients
 * that are not ours (grpcurl, grpc-js, grpcio). Prints "port <n>" on stdout.
 * Usage: trpc_test_server [port] */
#include <stdio.h>
#include <stdlib.h>

#include "test_support.h"

int main(int argc, char **argv)
{
    trpc_server_opts o;
    char addr[64];
    ts_server t;
    int sig;

    trpc_block_signals();
    o = ts_default_opts();
    snprintf(addr, sizeof(addr), "127.0.0.1:%s", argc > 1 ? argv[1] : "0");
    o.listen_addr = addr;
    if (ts_start(&t, &o) != 0) {
        fprintf(stderr, "trpc_test_server: cannot start on %s\n", addr);
        return 1;
    }
    printf("port %d\n", t.port);
    fflush(stdout);
    sig = trpc_wait_for_signal();
    fprintf(stderr, "trpc_test_server: signal %d, shutting down\n", sig);
    ts_stop(&t);
    return 0;
}
