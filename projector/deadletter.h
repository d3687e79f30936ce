/* deadletter.h - sequenced dead letters of one projection (P10 in
 * ../shared/notes/event-store-peers.md; table dead_letters, 0001 + 0002).
 *
 * An event whose projection keeps failing is parked as a dead letter (the
 * "head" of its aggregate); from then on every later event of the same
 * aggregate is parked behind it ("queued", attempts 0) instead of being
 * applied, so the aggregate's rows never skip an event, while the other
 * aggregates go on. `tally-admin dead-letters retry` asks for the chain to
 * be retried; the projector re-applies it in log order and unblocks the
 * aggregate once every row is resolved.
 *
 * The in-memory set of blocked aggregates mirrors the unresolved heads of
 * the projection; it is reloaded with dl_load after (re)connecting or a
 * lost compare-and-set. Not thread-safe: one set per projection thread. */
#ifndef PROJECTOR_DEADLETTER_H
#define PROJECTOR_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "rawlog.h"
#include "trpc.h"

/* The blocked aggregates of one projection. */
struct dl_set {
    const char *projection; /* dead_letters.projection ("rm", "saga"); borrowed */
    size_t n, cap;
    struct dl_blocked {
        char key[128]; /* "tenant/aggregate_type/aggregate_id" */
        int64_t head;  /* dead_letters.id of the failed event */
    } * v;
};

/* An empty set for projection (borrowed, static storage). */
void dl_set_init(struct dl_set *s, const char *projection);
void dl_set_cleanup(struct dl_set *s);

/* The sequencing key "tenant/aggregate_type/aggregate_id" (the read model
 * sequences by an event's own aggregate, the saga by its transfer). */
void dl_key(const char *tenant_id, const char *aggregate_type, const char *aggregate_id, char *buf,
            size_t len);

/* The head id blocking key, or 0. */
int64_t dl_blocked_head(const struct dl_set *s, const char *key);

/* Records key as blocked behind head (replacing an older head). Returns 0,
 * or -1 on OOM. */
int dl_block(struct dl_set *s, const char *key, int64_t head);

/* Removes key. */
void dl_unblock(struct dl_set *s, const char *key);

/* Replaces the set with the projection's unresolved heads. */
grpc_status_code dl_load(PGconn *conn, struct dl_set *s, trpc_status *st);

/* Queues (pipeline mode, the caller's transaction) the row that parks ev
 * behind head under (aggregate_type, aggregate_id) - normally ev's own; the
 * saga passes the transfer. Idempotent (ON CONFLICT DO NOTHING). One
 * COMMAND_OK result. Returns OK or UNAVAILABLE. */
grpc_status_code dl_send_queued(PGconn *conn, const struct dl_set *s, const struct rawlog_event *ev,
                                const char *aggregate_type, const char *aggregate_id, int64_t head,
                                trpc_status *st);

/* Inserts (plain statement, the caller's transaction) the head row of ev
 * with the last error and the attempts made; *id receives its id (an
 * existing row of this position is reused). */
grpc_status_code dl_insert_head(PGconn *conn, const struct dl_set *s, const struct rawlog_event *ev,
                                const char *aggregate_type, const char *aggregate_id,
                                const char *error, int attempts, int64_t *id, trpc_status *st);

/* A chain to retry: the unresolved rows of one blocked aggregate whose
 * retry was requested, in log order. */
struct dl_chain {
    char tenant_id[40];
    char aggregate_type[32];
    char aggregate_id[40];
    size_t n;
    int64_t *ids;
    int64_t *positions;
};

/* The chains with a retry request (at most max_chains). *chains is
 * malloc'd (free with dl_chains_free); *n may be 0. */
grpc_status_code dl_retry_requests(PGconn *conn, const struct dl_set *s, size_t max_chains,
                                   struct dl_chain **chains, size_t *n, trpc_status *st);
void dl_chains_free(struct dl_chain *chains, size_t n);

/* Marks row id resolved (plain statement, the caller's transaction). */
grpc_status_code dl_resolve(PGconn *conn, int64_t id, trpc_status *st);

/* After a failed retry of row `failed` of a chain: records the error and one
 * more attempt on it, makes it the head of the aggregate (queued_behind
 * NULL), re-parks the chain's other unresolved rows behind it and clears
 * every retry request of the chain. Autocommit. */
grpc_status_code dl_retry_failed(PGconn *conn, const struct dl_set *s, const struct dl_chain *c,
                                 int64_t failed, const char *error, trpc_status *st);

#endif /* PROJECTOR_DEADLETTER_H */
