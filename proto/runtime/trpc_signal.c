/* trpc_signal.c - SIGINT/SIGTERM handling for a daemon's main: block them
 * before any thread exists (gRPC's threads inherit the mask), then wait for
 * one synchronously instead of running a handler. */
#include <signal.h>

#include "trpc.h"

static void shutdown_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

void trpc_block_signals(void)
{
    sigset_t set;

    shutdown_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int trpc_wait_for_signal(void)
{
    sigset_t set;
    int sig = 0;

    shutdown_signals(&set);
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}
