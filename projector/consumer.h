/* consumer.h - the live read-model consumer of tally-projector: a thread
 * that, while this instance is the active projector (leader.h), drives the
 * read-model projection (rmproj.h, checkpoint "rm", schema rm) on its own
 * connection:
 *
 *   - after every wake-up (NOTIFY, reconnect of the LISTEN connection:
 *     wake.h), after every own reconnect, and on a safety-net timer
 *     (poll_ms), it reads from the checkpoint until nothing is left behind
 *     the fence; while committed events wait beyond the fence (an older
 *     transaction is open: its commit may ring no doorbell) it looks again
 *     after 1, 2, 4, then every 8 ms;
 *   - it never holds a transaction open while idle;
 *   - on connection trouble it reconnects with a doubling backoff;
 *   - after each committed step (a batch, a dead letter, a retried chain)
 *     it rings a doorbell (server/lib/doorbell.h) on projected_channel:
 *     `NOTIFY tally_projected` from another connection, outside the batch
 *     transaction, coalesced (at most one in flight). tally-query's
 *     checkpoint watch (server/lib/ckwatch.h) LISTENs on it, so a read with
 *     min_position wakes as soon as its position is projected;
 *   - about once a minute it deletes outbox rows published longer than
 *     outbox_retention_s ago (in chunks).
 *
 * For the Subscribe server (projector/subscribe*.c, another engineer): set
 * on_commit to receive, after each committed transaction, the events it
 * covered, in log order, with no gap and no repeat while this instance stays
 * active (see rmproj_commit_fn; b->after is the position before them, so a
 * receiver can check continuity and fall back to reading the table when a
 * batch does not start where the previous one ended, e.g. after a failover
 * or a rebuild swap). It runs on the consumer thread: copy what you need and
 * return. A standby instance calls nothing: its Subscribe streams must read
 * the table themselves (rawlog_next), waking on wake_wait. */
#ifndef PROJECTOR_CONSUMER_H
#define PROJECTOR_CONSUMER_H

#include "leader.h"
#include "pg.h"
#include "rmproj.h"
#include "wake.h"

struct consumer_opts {
    struct pg_opts pg;          /* copied; conninfo must outlive the consumer */
    int batch_size;             /* events per transaction (1..1000) */
    int poll_ms;                /* safety-net poll (e.g. 1000) */
    int max_attempts;           /* poison threshold (rmproj_opts) */
    int backoff_ms;             /* first retry delay of a failing event */
    long outbox_retention_s;    /* published outbox rows older than this are deleted */
    rmproj_commit_fn on_commit; /* NULL = none */
    void *on_commit_arg;
    const char *projected_channel; /* doorbell channel after each commit (a plain
                                      identifier); NULL = none */
};

typedef struct consumer consumer;

/* Starts the thread. w and l are borrowed (they must outlive the consumer).
 * NULL on failure (logged). */
consumer *consumer_start(const struct consumer_opts *o, wake *w, leader *l);

/* Stops the thread (call wake_shutdown(w) first so waits end at once),
 * finishing the batch in flight, and frees. NULL is a no-op. */
void consumer_stop(consumer *c);

/* Deletes outbox rows published more than retention_s seconds ago, at most
 * `chunk` per statement until none is left. *deleted (may be NULL) gets the
 * count. Autocommit statements. */
grpc_status_code consumer_outbox_cleanup(PGconn *conn, long retention_s, int chunk, long *deleted,
                                         trpc_status *st);

#endif /* PROJECTOR_CONSUMER_H */
