/* saga.h - the transfer saga (process manager, DESIGN §7, P11 in
 * ../shared/notes/event-store-peers.md).
 *
 * A thread that, while this instance is the active projector, reads the
 * log after its own checkpoint ("saga") and reacts to four events:
 *
 *   TransferRequested     -> debit the source (step "debit"):
 *                            TransferDebited on the source account, or, when
 *                            the debit is refused (funds, frozen, closed...),
 *                            TransferFailed(compensated = false) on the
 *                            transfer, finishing its operation FAILED
 *   TransferDebited       -> credit the destination (step "credit"):
 *                            TransferCredited, or, when refused (closed,
 *                            frozen, currency), TransferDebitReversed on the
 *                            source
 *   TransferCredited      -> TransferCompleted (step "complete"), finishing
 *                            the transfer's operation SUCCEEDED
 *   TransferDebitReversed -> TransferFailed(compensated = true) with the
 *                            reversal's reason (step "fail"), finishing the
 *                            operation FAILED
 *
 * Every step is an ordinary command through the same code as tally-command
 * (cmdcore.h: load, domain decide, store_append with outbox and operation
 * row), idempotent by the key "saga:<transfer_id>:<step>" in the transfer's
 * tenant (one key per step, whichever of its two outcomes is written, so a
 * step can never end both ways), with causation_id = the triggering event's
 * event_id and the transfer's correlation_id. The checkpoint is advanced
 * after the steps (compare-and-set); a crash at any point re-runs steps whose
 * key exists already, which do nothing: no double debit or credit.
 *
 * A step that keeps failing (not a refusal: e.g. a corrupt stream) is
 * retried with backoff and after max_attempts parked in dead_letters
 * (projection "saga", sequenced by transfer). */
#ifndef PROJECTOR_SAGA_H
#define PROJECTOR_SAGA_H

#include <stddef.h>

#include "cmdcore.h"
#include "leader.h"
#include "pg.h"
#include "rawlog.h"
#include "wake.h"

#define SAGA_CHECKPOINT "saga"
#define SAGA_KEY_PREFIX CMDCORE_RESERVED_KEY_PREFIX

struct saga_opts {
    struct pg_opts pg; /* copied; conninfo must outlive the saga */
    int batch_size;    /* events read per step */
    int poll_ms;       /* safety-net poll */
    int max_attempts;  /* failing step attempts before a dead letter */
    int backoff_ms;    /* first retry delay */
};

typedef struct saga saga;

/* Starts the thread (w and l borrowed; they must outlive the saga). NULL on
 * failure (logged). */
saga *saga_start(const struct saga_opts *o, wake *w, leader *l);

/* Stops the thread after the step in flight (call wake_shutdown first) and
 * frees. NULL is a no-op. */
void saga_stop(saga *s);

/* The idempotency key of a step into buf (>= 64 bytes). */
void saga_step_key(const char *transfer_id, const char *step, char *buf, size_t len);

/* "source account is frozen" from a refusal of the source's debit
 * ("account is frozen"): prefixes `side` when msg starts with "account ",
 * else copies msg. */
void saga_reason(const char *side, const char *msg, char *buf, size_t len);

#endif /* PROJECTOR_SAGA_H */
