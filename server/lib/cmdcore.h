/* cmdcore.h - the command path without gRPC: load an aggregate's state for a
 * decision, decide ONE event with the domain's pure functions (account.h,
 * transfer.h), and append it with store_append (outbox, operation,
 * idempotency and snapshot rows in the same statement), retrying a bounded
 * number of times when another writer took the stream version.
 *
 * Two callers: tally-command (server/command/exec.c wraps this with
 * authentication, request hashing and the reply) and the transfer saga in
 * tally-projector (projector/saga.c), so a saga step is decided and written
 * by exactly the code a command uses.
 *
 * State comes from the write side only: the account cache (aggcache.h;
 * wrong at worst, never the cause of a wrong write, because the unique
 * (stream, version) constraint rejects a stale decision) or the latest
 * snapshot plus later events. Never from the read model.
 *
 * Every function takes the caller's connection (one per thread, outside a
 * transaction) and leaves it outside a transaction. Errors: short
 * client-safe message in *st, the database error in the log. */
#ifndef SERVER_CMDCORE_H
#define SERVER_CMDCORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "tally/v1/events.pb-c.h"

#include "account.h"
#include "aggcache.h"
#include "doorbell.h"
#include "store.h"
#include "transfer.h"
#include "trpc.h"

/* Idempotency keys with this prefix belong to the transfer saga
 * ("saga:<transfer_id>:<step>", projector/saga.h): a client key may not
 * start with it (tally-command answers INVALID_ARGUMENT), so a client can
 * never take a saga step's key and stall a transfer. */
#define CMDCORE_RESERVED_KEY_PREFIX "saga:"

/* Process-wide collaborators (borrowed; any may be shared by threads). */
struct cmdcore_env {
    aggcache *accounts; /* struct account_state by "tenant/account"; NULL = no cache */
    doorbell *bell;     /* rung after every append; NULL = none */
    int snapshot_every; /* a snapshot every N events of an account stream (0 = never) */
    int max_attempts;   /* appends tried per command on version conflicts (>= 1) */
};

/* What is written beside the event: the operation row, the metadata copied
 * onto the event, and optionally the idempotency row and the finish of
 * another (saga) operation. Strings are borrowed for the call. */
struct cmdcore_write {
    const char *tenant_id;
    const char *operation_id;     /* the new operation row */
    const char *operation_kind;   /* "Deposit", "TransferDebit" */
    const char *operation_status; /* "SUCCEEDED" or "PENDING" */
    const char *correlation_id;
    const char *causation_id;
    const char *user_id;                 /* may be NULL */
    const char *finish_operation_id;     /* NULL = none */
    const char *finish_operation_status; /* "SUCCEEDED" / "FAILED" */
    const char *finish_operation_reason; /* may be NULL */
    const char *idem_key;                /* NULL = no idempotency row */
    const uint8_t *idem_hash;            /* 32 bytes when idem_key is set */
    const uint8_t *idem_response;        /* the stored reply; NULL = empty */
    size_t idem_response_len;
};

/* ---- loading ---- */

/* The cache key of an account: "tenant/account" into buf (>= 80 bytes). */
void cmdcore_account_key(const char *tenant_id, const char *account_id, char *buf, size_t len);

/* Loads an account's state: from env->accounts unless fresh (or no cache),
 * else the latest snapshot plus later events (then cached if it exists). A
 * missing account is OK with s->exists false (and is never cached). */
grpc_status_code cmdcore_load_account(PGconn *conn, const struct cmdcore_env *env,
                                      const char *tenant_id, const char *account_id, int fresh,
                                      struct account_state *s, trpc_status *st);

/* Loads a transfer's state from its events (transfers are short: no cache,
 * no snapshot). A missing transfer is OK with t->exists false. */
grpc_status_code cmdcore_load_transfer(PGconn *conn, const char *tenant_id, const char *transfer_id,
                                       struct transfer_state *t, trpc_status *st);

/* ---- appending ---- */

/* Appends one event to a stream: env (the envelope, its payload set; the
 * other envelope fields are ignored) becomes version `version` of
 * (aggregate_type, aggregate_id), with a new UUIDv7 event id, w's rows and
 * the optional snapshot (the stream's state after the event; borrowed).
 * Rings env->bell on success. On OK *pos (may be NULL) is the event's
 * position. On a unique violation returns ABORTED with *conflict saying
 * which (store_append); conflict must not be NULL. */
grpc_status_code cmdcore_append(PGconn *conn, const struct cmdcore_env *env,
                                const struct cmdcore_write *w, const char *aggregate_type,
                                const char *aggregate_id, int64_t version,
                                const Tally__V1__Event *ev_env, json_t *snapshot,
                                struct store_position *pos, enum store_conflict *conflict,
                                trpc_status *st);

/* ---- one account command ---- */

/* Decides one account event on the current state; payment is the payment's
 * info when the command named a payment_id, else NULL. Returns OK with *out
 * set, or an error with st set. */
typedef grpc_status_code (*cmdcore_decide_fn)(const struct account_state *s,
                                              const struct account_payment_info *payment,
                                              const void *arg, struct account_event *out,
                                              trpc_status *st);

/* Appends the decided event (the caller's hook around cmdcore_append, e.g.
 * to pack the reply stored with the idempotency key). version is the
 * stream's version after the event, snapshot NULL or the state to store.
 * Must set *conflict (STORE_CONFLICT_NONE on success). */
typedef grpc_status_code (*cmdcore_append_fn)(void *arg, const char *account_id, int64_t version,
                                              const Tally__V1__Event *ev_env, json_t *snapshot,
                                              enum store_conflict *conflict, trpc_status *st);

/* Returns non-zero when the caller gave up (a cancelled call). */
typedef int (*cmdcore_cancelled_fn)(void *arg);

struct cmdcore_account_cmd {
    const char *tenant_id;
    const char *account_id; /* checked UUID, lower case */
    const char *payment_id; /* non-NULL: look the payment up for the decision */
    int has_expected;       /* expected_version given */
    int64_t expected_version;
    const char *kind; /* for log lines ("Deposit") */
    cmdcore_decide_fn decide;
    const void *decide_arg;
    /* the append: append(append_arg, ...) when set, else cmdcore_append with
       write (which must then be set) */
    cmdcore_append_fn append;
    void *append_arg;
    const struct cmdcore_write *write;
    cmdcore_cancelled_fn cancelled; /* NULL = never */
    void *cancelled_arg;
};

enum cmdcore_result {
    CMDCORE_APPENDED = 0, /* the event is written (returns OK) */
    CMDCORE_REJECTED,     /* decide refused: a business or input error in st */
    CMDCORE_DUPLICATE,    /* the idempotency key was stored meanwhile: the
                             command is someone else's (ABORTED) */
    CMDCORE_ERROR,        /* anything else: database, expected version,
                             too many conflicts, cancelled (st) */
};

/* Runs one account command: load (cache first), check expected_version
 * (a mismatch against the cache is re-checked against the log: ABORTED
 * "expected version X, current version Y"), look up the payment, decide,
 * evolve, snapshot every env->snapshot_every versions, append; on a version
 * conflict drop the cache entry, reload from the log and go again (from
 * the second conflict on after a short random sleep, up to 20 ms), at most
 * env->max_attempts times (then ABORTED "too many concurrent writes to
 * account ..., try again"). A refusal decided on cached state (anything but
 * INVALID_ARGUMENT) is decided again on fresh state from the log: only a
 * refusal of the log's state is final. On APPENDED the cache holds the new state and *after
 * (may be NULL) is that state. *result is always set. Returns st->code. */
grpc_status_code cmdcore_account(PGconn *conn, const struct cmdcore_env *env,
                                 const struct cmdcore_account_cmd *cmd, enum cmdcore_result *result,
                                 struct account_state *after, trpc_status *st);

#endif /* SERVER_CMDCORE_H */
