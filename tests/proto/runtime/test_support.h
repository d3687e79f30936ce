/* test_support.h - shared by the trpc runtime tests: the test service's
 * handlers (trpctest.v1.TestService), observations they record, and a
 * server + channel on 127.0.0.1:0 per test. */
#ifndef TESTS_PROTO_RUNTIME_TEST_SUPPORT_H
#define TESTS_PROTO_RUNTIME_TEST_SUPPORT_H

#include <stdint.h>

#include "trpctest/v1/test.pb-c.h"
#include "trpctest/v1/test.trpc.h"

#include "trpc.h"

/* What the handlers saw; read with ts_get, wait with ts_wait. */
enum ts_counter {
    TS_ECHO_CALLS,          /* Echo handler entered */
    TS_ECHO_CANCELLED,      /* Echo woke from its sleep cancelled */
    TS_CANCEL_CB,           /* the on_cancel callback ran */
    TS_DEFERS,              /* deferred functions run */
    TS_BLOCKED,             /* MODE_BLOCK handlers waiting at the gate */
    TS_COUNT_CALLS,         /* Count handler entered */
    TS_STREAM_CLOSED,       /* a Count send returned TRPC_STREAM_CLOSED */
    TS_STREAM_IS_CANCELLED, /* ...and trpc_call_is_cancelled said so */
    TS_ON_CLOSE,            /* a stream's on_close ran */
    TS_DETACHED_DONE,       /* a detached Count owner called trpc_stream_finish */
    TS_FULL,                /* a no-wait send found the queue full */
    TS_WRITABLE,            /* on_writable ran */
    TS_MAX_QUEUED,          /* the highest trpc_stream_queued seen (not a count) */
    TS_WORKER_INIT,         /* worker_init calls */
    TS_WORKER_FINI,         /* worker_fini calls */
    TS_N_COUNTERS,
};

typedef struct ts_server {
    trpc_server *srv;
    trpc_channel *ch;
    int port;
    char target[64];
} ts_server;

/* Resets every counter and closes the gate. */
void ts_reset(void);
int ts_get(enum ts_counter c);
/* Waits up to ms for counter c to reach at least want; returns its value. */
int ts_wait(enum ts_counter c, int want, int ms);
/* Opens the gate MODE_BLOCK handlers wait at. */
void ts_open_gate(void);
/* Raises counter c to v if it is lower. */
void ts_max(enum ts_counter c, int v);

/* Default options for a test server (127.0.0.1:0, 2 CQ threads, 4 pool
 * threads whose resource is the string "worker-<i>"). */
trpc_server_opts ts_default_opts(void);
/* Starts a server with opts (NULL: defaults) serving TestService with the
 * test handlers, and a channel to it. 0, or -1. */
int ts_start(ts_server *t, const trpc_server_opts *opts);
/* Frees the channel, shuts the server down and frees it. */
void ts_stop(ts_server *t);

int64_t ts_now_ms(void);
void ts_sleep_ms(int ms);

#endif /* TESTS_PROTO_RUNTIME_TEST_SUPPORT_H */
