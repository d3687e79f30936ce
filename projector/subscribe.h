/* subscribe.h - tally.v1.SubscriptionService.Subscribe (subscription.proto
 * is the contract; DESIGN §7).
 *
 * A subscription reads its tenant's events from the table after its start
 * (catch-up, on the pool thread that runs the handler: blocking sends give
 * natural backpressure) until its position is inside the live ring's window
 * (ring.h). Then the handler detaches the stream and the tail thread
 * (tail.h) serves it from the ring without holding a thread: the rest of the
 * backlog, `caught_up` once it reaches the ring's newest event, then live
 * events. A live subscriber whose stream queue is full is skipped until the
 * runtime says it drained (on_writable) and resumes from its ring cursor; one
 * that the ring overtakes meanwhile gets `fell_behind` and catches up from
 * the table again, on a catch-up worker (never waiting on a slow client),
 * until it re-enters the ring. Every event comes strictly after every
 * position sent before it (entries at or before the joining position are
 * skipped at the seam), so there is never a duplicate, and each switch
 * starts exactly where the last one stopped, so there is never a gap. A
 * subscriber's state is a few hundred bytes; the ring is shared and the
 * stream's own queue (16 messages) bounds what a slow one holds.
 *
 * Live mode sends a checkpoint after checkpoint_interval_events of the
 * tenant's events scanned without a match, or checkpoint_interval_seconds
 * after the first of them; a heartbeat after heartbeat_interval_seconds
 * without any message. Catch-up ends every page of at most
 * checkpoint_interval_events scanned events with an event or a checkpoint.
 * Positions in checkpoints and heartbeats are "scanned up to here" and may
 * name another tenant's event: pass them back as `after` unchanged.
 *
 * Requests: start START_BEGINNING/UNSPECIFIED, START_END (after the newest
 * event behind the commit fence when the call starts: an event that
 * committed just before the call while an older transaction was still open
 * may still come; none that commits after it is missed), START_AFTER with
 * `after` (required, global_position >= 0; `after` is refused with any other
 * start); filter as logread_filter_check; checkpoint_interval_events
 * 0..1000000 (0 = 1000), checkpoint_interval_seconds 0..3600 (0 = 5),
 * heartbeat_interval_seconds 0..3600 (0 = 15); otherwise INVALID_ARGUMENT.
 * The token's tenant scopes the stream. Client cancel frees everything;
 * server shutdown ends open streams with UNAVAILABLE (trpc_server_shutdown).
 *
 * Process settings (environment, read once by subscribe_setup):
 *   TALLY_SUBSCRIBE_RING     ring capacity in events, 16..10000000 (10000)
 *   TALLY_SUBSCRIBE_POLL_MS  the tail's safety-net poll, 10..60000 (200)
 *   TALLY_SUBSCRIBE_WORKERS  catch-up workers for fallen-behind subscribers,
 *                            1..64 (2); each has a database connection */
#ifndef PROJECTOR_SUBSCRIBE_H
#define PROJECTOR_SUBSCRIBE_H

#include "tally/v1/subscription.pb-c.h"

#include "config.h"
#include "trpc.h"

/* Starts the tail thread and the catch-up workers, and sets opts'
 * worker_init/worker_fini (each pool thread gets a database connection).
 * Call once, from main, before trpc_server_new(opts). cfg must outlive the
 * service. Returns 0, or -1 (logged; subscribe_teardown is still safe). */
int subscribe_setup(const struct config *cfg, trpc_server_opts *opts);

/* The Subscribe handler (for the generated handler table). */
grpc_status_code subscribe_rpc(trpc_call *call, const Tally__V1__SubscribeRequest *req,
                               trpc_stream *out);

/* Stops the tail and the workers and frees everything. Call after
 * trpc_server_shutdown (which waits until every stream has finished). Safe
 * after a failed or missing setup. */
void subscribe_teardown(void);

#endif /* PROJECTOR_SUBSCRIBE_H */
