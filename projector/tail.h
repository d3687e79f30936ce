/* tail.h - the Subscribe live tail: one thread per tally-projector process
 * that follows the whole event log (every tenant) into a ring (ring.h).
 *
 * It has its own connection, independent of the projection consumer (every
 * projector process serves Subscribe, standbys included). It LISTENs on the
 * command servers' doorbell channel and reads, after every notification,
 * every poll_ms (the safety net: NOTIFY is only a wake-up, DESIGN §6) and
 * after every reconnect, the events after the ring's newest position behind
 * the commit fence, in (tx_id, global_position) order, in pages, each page
 * one autocommit statement: it never holds a transaction open. While
 * committed events wait beyond the fence (an older transaction is still
 * open; its commit rings no doorbell) it reads again after 1, 2, 4, then
 * every 8 ms. It starts at the end of the log as it is when it first
 * connects.
 *
 * After each read, after every tail_wake and at least every poll_ms, it calls
 * tick on its own thread: that is where live subscribers are served (so the
 * ring's single writer is also its only unlocked reader). tick runs while
 * the database is down too. */
#ifndef PROJECTOR_TAIL_H
#define PROJECTOR_TAIL_H

#include <libpq-fe.h>

#include "pg.h"
#include "ring.h"
#include "store.h"
#include "trpc.h"

#define TAIL_POLL_MS_DEFAULT 200

typedef struct tail tail;

struct tail_opts {
    const struct pg_opts *pg; /* copied; its conninfo must outlive the tail */
    const char *channel;      /* LISTEN channel, a plain identifier (copied) */
    int poll_ms;              /* safety-net read interval, 10..60000 */
    ring *ring;               /* borrowed: the tail is its only writer */
    /* On the tail thread. `fresh`: new events were read, or poll_ms passed
     * since the last fresh tick (time-based work is due). */
    void (*tick)(void *arg, int fresh);
    void *arg;
};

/* Starts the tail thread (it connects in the background, retrying with
 * backoff). NULL on bad options, OOM or thread failure. */
tail *tail_new(const struct tail_opts *o);

/* Makes the tail thread call tick soon. Thread-safe, never blocks (safe in
 * runtime callbacks). */
void tail_wake(tail *t);

/* Stops the thread (after its current tick) and frees. NULL is a no-op. */
void tail_free(tail *t);

/* The position of the newest event behind the commit fence ({0,0} for an
 * empty log), read through conn (outside a transaction): every event at or
 * before it has committed, every later commit sorts after it. Returns OK or
 * the database error (st, logged). */
grpc_status_code tail_log_end(PGconn *conn, struct store_position *at, trpc_status *st);

#endif /* PROJECTOR_TAIL_H */
