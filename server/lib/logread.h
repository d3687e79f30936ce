/* logread.h - reading the event log as Event envelopes: an aggregate's
 * stream, the tenant's whole log in (tx_id, global_position) order behind
 * the commit fence (DESIGN §5), and one correlation's events. Shared by the
 * QueryService (ReadStream, ReadAll, ListEventsByCorrelation) and the
 * Subscribe catch-up.
 *
 * Every envelope handed to a callback is a complete protobuf-c message
 * allocated with malloc throughout: the callback owns it and frees it with
 * protobuf_c_message_free_unpacked(&ev->base, NULL) (or keeps it). */
#ifndef SERVER_LOGREAD_H
#define SERVER_LOGREAD_H

#include <stdint.h>

#include <libpq-fe.h>

#include "tally/v1/events.pb-c.h"
#include "tally/v1/types.pb-c.h"

#include "store.h"
#include "trpc.h"

/* Takes ownership of ev. Returns 0 to go on, non-zero to stop the read
 * early (not an error). */
typedef int (*logread_fn)(void *arg, Tally__V1__Event *ev);

/* Limits of one read. */
#define LOGREAD_MAX_LIMIT  1000
#define LOGREAD_SCAN_LIMIT 5000 /* rows scanned per ReadAll call */

/* Checks an EventFilter from a request: aggregate types and prefixes
 * 1..64 bytes each (at most 16 of each), aggregate_id a UUID, correlation id
 * at most 128 bytes. f may be NULL (no filter). */
grpc_status_code logread_filter_check(const Tally__V1__EventFilter *f, trpc_status *st);

/* Where a ReadAll stopped. */
struct logread_page {
    struct store_position next; /* pass as `after` to continue */
    int end_of_log;             /* nothing more was visible behind the fence */
    int delivered;              /* events given to the callback */
};

/* The tenant's events (tenant_id NULL: every tenant's, for the Subscribe
 * tail) strictly after `after` ({0,0} = from the start), in log order, only
 * those behind the fence, matching filter (NULL = all):
 * at most `limit` (1..LOGREAD_MAX_LIMIT) delivered, at most scan_limit rows
 * scanned. page->next is the last delivered event's position when the
 * limit was reached, else the last scanned row's (so a filter that matches
 * nothing still advances). */
grpc_status_code logread_all(PGconn *conn, const char *tenant_id, struct store_position after,
                             const Tally__V1__EventFilter *filter, int limit, int scan_limit,
                             logread_fn fn, void *arg, struct logread_page *page, trpc_status *st);

/* One stream's events: forwards from from_version (0 = first) or backwards
 * from from_version (0 = last); at most limit (+1 is read to tell
 * *has_more). */
grpc_status_code logread_stream(PGconn *conn, const char *tenant_id, const char *aggregate_type,
                                const char *aggregate_id, int64_t from_version, int backwards,
                                int limit, logread_fn fn, void *arg, int *has_more,
                                trpc_status *st);

/* One correlation id's events in log order (committed ones; behind the
 * fence). At most limit. */
grpc_status_code logread_correlation(PGconn *conn, const char *tenant_id,
                                     const char *correlation_id, int limit, logread_fn fn,
                                     void *arg, trpc_status *st);

/* Compares positions: <0, 0, >0. */
int logread_position_cmp(struct store_position a, struct store_position b);

#endif /* SERVER_LOGREAD_H */
