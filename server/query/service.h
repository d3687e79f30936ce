/* service.h - tally-query's gRPC service: tally.v1.QueryService.
 *
 * Reading from a streaming replica (DESIGN §9): point --db (or
 * TALLY_DATABASE_URL) at a hot standby of the primary; nothing else changes,
 * and no second connection to the primary is needed or wanted. Everything
 * tally-query does is read-only: authentication reads api_tokens and
 * tenants, the RPCs read the query tables, the event log, snapshots,
 * operations and the checkpoint. The checkpoint watcher (ckwatch.h) reads
 * the projector's checkpoint row on the same server as the reads; the
 * projector writes that row in the same transaction as the query tables, so
 * once the standby shows a checkpoint at or past a position, its query
 * tables and event log include that position: `min_position` gives
 * read-your-writes on the standby. LISTEN is refused during recovery, so on
 * a standby the watcher polls the replicated row instead (every 10 ms while
 * a call waits, every second otherwise). Listening on the primary instead
 * would be wrong, not just more connections: its NOTIFY arrives before the
 * standby has replayed the batch.
 *
 * Limits on a standby: a token created on the primary authenticates once the
 * standby has replayed it (until then UNAUTHENTICATED, cached for the
 * negative TTL); GetAccountAt takes no min_position, so right after a
 * command it may not see that command's event on a lagging standby;
 * GetProjectionStatus describes the standby: lag and backlog as far as it
 * has replayed, notification_queue_usage and blocked_reason from its own
 * sessions. Tested by tests/query/test_replica.c. */
#ifndef SERVER_QUERY_SERVICE_H
#define SERVER_QUERY_SERVICE_H

#include "config.h"
#include "trpc.h"

/* Makes the process-wide state (auth cache, checkpoint watcher) and sets
 * the pool's per-thread database connections in opts. Call before
 * trpc_server_new; cfg must outlive the server. Returns 0 or -1 (logged). */
int query_service_setup(const struct config *cfg, trpc_server_opts *opts);

/* Adds QueryService to srv (before trpc_server_start). 0 or -1 (logged). */
int query_service_register(trpc_server *srv, const struct config *cfg);

/* Frees what setup made, after trpc_server_free. */
void query_service_teardown(void);

#endif /* SERVER_QUERY_SERVICE_H */
