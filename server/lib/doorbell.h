/* doorbell.h - the coalesced NOTIFY that wakes the projector after a commit.
 *
 * NOTIFY inside a command's transaction takes a cluster-wide lock through
 * commit (DESIGN §6), so commands never NOTIFY themselves: after their commit
 * they ring this doorbell. One thread with its own connection sends
 * `NOTIFY <channel>`; rings that arrive while a NOTIFY is in flight, or in
 * the 2 ms pause after it, are coalesced into exactly one more. NOTIFY is only a wake-up: the
 * projector also polls, so a lost ring delays it, never loses an event. Its session commits
 * asynchronously (synchronous_commit off): a NOTIFY neither waits for nor holds the commit fence
 * through a WAL flush.
 *
 * Users: tally-command (channel tally_outbox, after each command's commit),
 * the projector's saga (tally_outbox, after its own commands) and read-model
 * consumer (tally_projected, after each committed batch: tally-query's
 * ckwatch.h listens). */
#ifndef SERVER_DOORBELL_H
#define SERVER_DOORBELL_H

#include <stdint.h>

typedef struct doorbell doorbell;

/* Starts the doorbell thread; it connects lazily with conninfo (copied) and
 * reconnects with backoff. channel must be a plain SQL identifier. NULL on
 * OOM or thread failure. */
doorbell *doorbell_new(const char *conninfo, const char *channel);

/* Requests a NOTIFY. Never blocks on the database; thread-safe. */
void doorbell_ring(doorbell *d);

/* NOTIFYs sent so far (for tests and stats). Thread-safe. */
uint64_t doorbell_sent(doorbell *d);

/* Stops the thread (after a pending NOTIFY, if connected) and frees. NULL is
 * a no-op. */
void doorbell_free(doorbell *d);

#endif /* SERVER_DOORBELL_H */
