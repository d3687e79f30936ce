/* ckwatch.h - watches a projector checkpoint so reads can wait for their
 * writes (read-your-writes through `min_position`).
 *
 * One thread per process with its own connection reads the checkpoint row:
 * on `NOTIFY <channel>` (tally-projector rings `tally_projected` after each
 * committed batch; when the server allows LISTEN: a streaming replica does
 * not), and on a timer, the safety net: every 10 ms while some call waits,
 * every second otherwise. Waiting calls sleep on a condition variable: a read
 * never polls the database itself. The checkpoint table replicates with the
 * query tables, so on a replica the position it shows is exactly what the
 * replica's query tables include. */
#ifndef SERVER_CKWATCH_H
#define SERVER_CKWATCH_H

#include "pg.h"
#include "store.h"
#include "trpc.h"

typedef struct ckwatch ckwatch;

/* Starts the watcher for projector_checkpoints row `name`, listening on
 * channel (NULL: timer only). pg is copied (its conninfo must outlive the
 * watcher). NULL on OOM. */
ckwatch *ckwatch_new(const struct pg_opts *pg, const char *name, const char *channel);

/* Stops the thread and frees. NULL is a no-op. */
void ckwatch_free(ckwatch *w);

/* The last checkpoint read ({0,0} before the first read). */
struct store_position ckwatch_current(ckwatch *w);

/* Notifications that woke the watcher, and checkpoint reads made, so far
 * (tests and stats). */
uint64_t ckwatch_notifications(ckwatch *w);
uint64_t ckwatch_reads(ckwatch *w);

/* Waits until the checkpoint is at or past pos, bounded by the call's
 * deadline (call may be NULL: then by timeout_ms; with a call, timeout_ms is
 * ignored). Returns OK, DEADLINE_EXCEEDED ("projections have not reached
 * position ... yet"), or CANCELLED. */
grpc_status_code ckwatch_wait(ckwatch *w, struct store_position pos, trpc_call *call,
                              int64_t timeout_ms, trpc_status *st);

#endif /* SERVER_CKWATCH_H */
