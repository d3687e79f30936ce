/* leader.h - one active projector among several (DESIGN §7, P4 in
 * ../shared/notes/event-store-peers.md).
 *
 * A thread with a dedicated connection tries pg_try_advisory_lock(key)
 * every retry_ms. The lock is SESSION-level: it is held without any open
 * transaction (a transaction held open would freeze the commit fence for
 * every reader), and PostgreSQL releases it when the session ends, e.g.
 * when the active process is killed: a standby's next attempt then wins,
 * within retry_ms plus the time the server takes to notice the dead
 * connection (immediate for a killed process on the same host).
 *
 * While active, the thread checks its connection every retry_ms; if the
 * connection breaks, the lock is gone with it and the instance is standby
 * again at once (the projections stop applying before anyone else can take
 * over; their compare-and-set checkpoints and the saga's idempotency keys
 * make an overlap harmless anyway). Thread-safe. */
#ifndef PROJECTOR_LEADER_H
#define PROJECTOR_LEADER_H

#include <stdint.h>

#include "pg.h"
#include "wake.h"

/* The advisory lock keys ("tallyprj", "tallyrbd" in ASCII). */
#define LEADER_KEY_PROJECTOR 0x74616c6c79707267LL
#define LEADER_KEY_REBUILD   0x74616c6c79726264LL

typedef struct leader leader;

/* Starts the thread (o is copied; conninfo must outlive it). w (may be
 * NULL) is poked whenever the role changes, so waiting workers notice at
 * once. NULL on OOM or thread failure. */
leader *leader_new(const struct pg_opts *o, int64_t key, int retry_ms, wake *w);

/* 1 while this instance holds the lock. */
int leader_is_active(leader *l);

/* Times this instance became active (for tests and logs). */
uint64_t leader_terms(leader *l);

/* Stops the thread and closes its connection (releasing the lock). NULL is
 * a no-op. */
void leader_free(leader *l);

/* One attempt on conn (idle, outside a transaction): 1 if the session now
 * holds key (or already did), 0 if another session does, -1 on error. */
int leader_try_lock(PGconn *conn, int64_t key);

#endif /* PROJECTOR_LEADER_H */
