/* rawlog.h - fenced reads of the event log as raw rows (DESIGN §5), for
 * the projections: the stored JSON payload as it is, in batches that own
 * their rows (server/lib/logread.h reads envelopes for the RPCs).
 *
 * Every read returns events strictly after a position, in log order
 * (tx_id, global_position), and only those whose writing transaction is
 * older than every transaction still running
 * (tx_id < pg_snapshot_xmin(pg_current_snapshot())). An event that commits
 * later therefore always sorts after everything already returned: paging
 * with the last position returned never skips an event, whatever order
 * concurrent commands commit in, and a rolled-back transaction leaves no
 * hole to wait for.
 *
 * The read is one autocommit statement: the caller must not be inside a
 * transaction that has written anything (its own xid would hold the fence
 * back), and nothing is held open afterwards.
 *
 * A batch owns its PGresult; the events' strings point into it. Used by the
 * read-model consumer, the transfer saga and --rebuild; the batch type is
 * also what the consumer hands to its after-commit hook (consumer.h). */
#ifndef PROJECTOR_RAWLOG_H
#define PROJECTOR_RAWLOG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "logread.h" /* server/lib: logread_position_cmp */
#include "store.h"
#include "trpc.h"

/* One stored event. Strings are NUL-terminated and borrowed from the batch. */
struct rawlog_event {
    struct store_position pos;
    const char *event_id;
    const char *tenant_id;
    const char *aggregate_type; /* "account", "transfer" */
    const char *aggregate_id;
    int64_t version;
    const char *event_type; /* "Deposited" */
    int event_version;
    const char *data;     /* proto3 JSON of the payload */
    const char *metadata; /* {"correlationId", "causationId", "userId"} */
    const char *operation_id;
    const char *correlation_id;
    const char *recorded_at; /* timestamptz text in UTC ("2024-01-02 03:04:05.678901+00") */
    int64_t recorded_at_us;  /* the same as microseconds since the Unix epoch */
};

struct rawlog_batch {
    struct store_position after; /* the position the read started after */
    size_t n;                    /* events in ev */
    struct rawlog_event *ev;     /* n events in log order; NULL when n == 0 */
    PGresult *res;               /* owns the strings */
};

/* Reads at most limit (>= 1) events after `after` into *b (which must be
 * empty: zeroed or cleaned). Returns OK (n may be 0: nothing new behind the
 * fence) or the database error (logged; st set; b empty). */
grpc_status_code rawlog_next(PGconn *conn, struct store_position after, int limit,
                             struct rawlog_batch *b, trpc_status *st);

/* Reads the events of the given positions (any order, duplicates allowed),
 * returned in log order, for re-applying dead letters. positions has n
 * entries. Same result rules as rawlog_next (no fence: these events were
 * read before). */
grpc_status_code rawlog_positions(PGconn *conn, const int64_t *positions, size_t n,
                                  struct rawlog_batch *b, trpc_status *st);

/* Frees the batch's storage and empties it. NULL-safe; idempotent. */
void rawlog_batch_cleanup(struct rawlog_batch *b);

/* The position of the last event, or b->after when empty. */
struct store_position rawlog_batch_end(const struct rawlog_batch *b);

/* 1 when committed events wait beyond the fence: some older transaction (a
 * command in flight, a projector or saga batch, autoanalyze) still holds an
 * xid, so a read now returns less than has committed. Its commit may ring no
 * doorbell (only commands ring one), so a reader that found nothing new
 * should look again soon instead of waiting for the next wake-up or its
 * safety-net poll. 0 otherwise, and on an error (the caller's next read
 * reports it). One autocommit statement. */
int rawlog_fence_held(PGconn *conn);

#endif /* PROJECTOR_RAWLOG_H */
