/* rmproj.h - the read-model projection: reads the log after its checkpoint
 * (rawlog.h), applies each batch to the query tables (rmapply.h) and
 * advances the checkpoint with a compare-and-set IN THE SAME TRANSACTION
 * (effectively once: a crash or a lost compare-and-set rolls the batch
 * back, and the batch is read again). Marks the batch's outbox rows
 * published in that transaction too (live projection only).
 *
 * Poison events: a batch whose statement for event k fails commits the
 * events before k; event k is retried (rmproj_step says RETRY_LATER, with a
 * doubling backoff) and after max_attempts failed attempts it becomes a dead
 * letter (deadletter.h) in one transaction with the checkpoint, and its
 * aggregate's later events are parked behind it. Connection trouble,
 * serialization failures and a lost compare-and-set are not attempts.
 *
 * The runner is a plain object driven by its caller's loop (the live
 * consumer thread, consumer.h, or --rebuild, rebuild.h): no threads, no
 * waiting except rmproj_step's own statements. The connection it is given
 * must have search_path "<schema>, public" and TimeZone UTC (pconn.h). It
 * never holds a transaction open between calls. */
#ifndef PROJECTOR_RMPROJ_H
#define PROJECTOR_RMPROJ_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "rawlog.h"
#include "store.h"
#include "trpc.h"

/* Called after each commit with the batch whose first n events the
 * transaction covered (the checkpoint moved from b->after to
 * b->ev[n - 1].pos): every event of the log in order, including the ones
 * parked as dead letters (the log is the log; only the read model skipped
 * them). Runs on the projection's thread; must not block for long. */
typedef void (*rmproj_commit_fn)(void *arg, const struct rawlog_batch *b, size_t n);

struct rmproj_opts {
    const char *checkpoint; /* projector_checkpoints.name and dead_letters.projection:
                               "rm" or "rm_rebuild" (static storage) */
    int mark_outbox;        /* 1: mark the batch's outbox rows published */
    int batch_size;         /* events per transaction, 1..1000 */
    int max_attempts;       /* failed attempts before an event is a dead letter, >= 1 */
    int backoff_ms;         /* wait after the first failed attempt; doubles */
    int backoff_max_ms;
    rmproj_commit_fn on_commit; /* NULL = none */
    void *on_commit_arg;
};

typedef struct rmproj rmproj;

/* NULL on OOM. o is copied. */
rmproj *rmproj_new(const struct rmproj_opts *o);
void rmproj_free(rmproj *p); /* NULL-safe */

enum rmproj_step {
    RMPROJ_IDLE = 0,    /* nothing behind the fence after the checkpoint */
    RMPROJ_PROGRESS,    /* committed a batch (or a dead letter): call again */
    RMPROJ_RETRY_LATER, /* an event failed; call again after rmproj_retry_delay_ms */
    RMPROJ_DB_ERROR,    /* connection trouble or a transient error: reconnect / back off
                           (the state is reloaded on the next call) */
};

/* Runs one step on conn: (re)loads the checkpoint and blocked aggregates if
 * needed, retries the dead-letter chains an operator asked for (at most
 * once a second), reads one batch and applies it. *applied (may be NULL)
 * receives the number of events the step moved the checkpoint over. */
enum rmproj_step rmproj_step(rmproj *p, PGconn *conn, size_t *applied);

/* Milliseconds to wait before the next step after RETRY_LATER. */
int rmproj_retry_delay_ms(const rmproj *p);

/* Forces a reload of the checkpoint and dead letters, and a new preparation
 * of the statements, on the next step: call it whenever the connection
 * changes (a new PGconn may reuse a freed one's address). */
void rmproj_invalidate(rmproj *p);

/* The checkpoint as last loaded or committed. */
struct store_position rmproj_checkpoint(const rmproj *p);

/* Catches up inside the caller's open transaction (for the rebuild's swap):
 * applies every event after the checkpoint that is behind the fence, with
 * no compare-and-set and no commit, and moves the in-memory checkpoint
 * (the caller stores it). A dead-lettered aggregate's events are parked as
 * usual; an event that fails is an error (the caller's transaction is rolled
 * back; run rmproj_step to deal with it, then try again). */
grpc_status_code rmproj_catch_up_in_txn(rmproj *p, PGconn *conn, trpc_status *st);

/* Ensures the checkpoint row exists (INSERT ... ON CONFLICT DO NOTHING) at
 * (0, 0). */
grpc_status_code rmproj_checkpoint_ensure(PGconn *conn, const char *name, trpc_status *st);

/* Reads a checkpoint row (its position and epoch; epoch may be NULL):
 * NOT_FOUND when absent. */
grpc_status_code rmproj_checkpoint_read(PGconn *conn, const char *name, struct store_position *pos,
                                        int64_t *epoch, trpc_status *st);

#endif /* PROJECTOR_RMPROJ_H */
