/* exec.h - the pipeline every CommandService RPC runs through.
 *
 *   cmd_begin:  database connection, authentication (the token's tenant),
 *               correlation and operation ids, and the idempotency check
 *               (a stored answer is replayed byte for byte);
 *   cmd_account: load the account (cache, else snapshot + later events),
 *               check expected_version, decide, append the event with its
 *               outbox, operation, idempotency and snapshot rows in one
 *               statement, retry a bounded number of times on a concurrent
 *               write, ring the doorbell (the non-gRPC core of this is
 *               server/lib/cmdcore.h, shared with the transfer saga);
 *   cmd_fail:   remember a business failure under the idempotency key.
 *
 * One struct cmd per call, on the handler's stack. The handler runs on a
 * pool thread whose worker data is a struct cmd_worker. */
#ifndef SERVER_COMMAND_EXEC_H
#define SERVER_COMMAND_EXEC_H

#include <stdint.h>

#include <libpq-fe.h>

#include "tally/v1/command.pb-c.h"

#include "account.h"
#include "aggcache.h"
#include "auth.h"
#include "cmdcore.h"
#include "doorbell.h"
#include "pg.h"
#include "store.h"
#include "tally_limits.h"
#include "transfer.h"
#include "trpc.h"

/* Process-wide state of tally-command (made once in main). */
struct cmd_env {
    struct pg_opts pg;  /* conninfo borrowed from the config */
    aggcache *accounts; /* struct account_state by tenant/id */
    auth_cache *auth;
    doorbell *bell;
    int snapshot_every; /* a snapshot every N events of a stream (100) */
    int max_attempts;   /* appends tried on concurrent writes (8) */
};

/* A pool thread's resources. */
struct cmd_worker {
    struct cmd_env *env;
    PGconn *conn;     /* NULL or bad: reconnected on the next call */
    PGcancel *cancel; /* for the connection's running query */
};

/* worker_init / worker_fini for trpc_server_opts (arg: struct cmd_env *). */
void *cmd_worker_init(void *env, int index);
void cmd_worker_fini(void *worker);

struct cmd {
    trpc_call *call;
    struct cmd_env *env;
    struct cmd_worker *worker;
    PGconn *conn;
    const char *kind; /* "Deposit" */
    struct auth_identity who;
    char correlation_id[TALLY_MAX_CORRELATION_BYTES + 1];
    char operation_id[UUID_STR_SIZE];
    const char *idem_key; /* NULL when the request has none */
    uint8_t idem_hash[32];
    int has_expected;
    int64_t expected_version;
    /* the reply and its CommandResponse (the reply itself, or its result) */
    ProtobufCMessage *resp;
    Tally__V1__CommandResponse *result;
};

/* Result of cmd_begin besides a status. */
enum cmd_begin_result {
    CMD_PROCEED = 0,  /* go on and execute */
    CMD_REPLAYED = 1, /* a stored answer was put in resp (or the stored error
                         returned): the handler returns at once */
};

/* Starts a command. req is the request (hashed for idempotency), idem_key
 * its idempotency_key ("" = none), expected its expected_version (NULL =
 * none). resp is the handler's reply; result NULL means resp is itself a
 * CommandResponse, else the handler's result sub-message, allocated here.
 * Returns OK with *r = CMD_PROCEED to go on; OK or a stored error with
 * *r = CMD_REPLAYED for a replay; or an error (with st) to return (a key
 * with CMDCORE_RESERVED_KEY_PREFIX is INVALID_ARGUMENT). */
grpc_status_code cmd_begin(struct cmd *c, trpc_call *call, const char *kind,
                           const ProtobufCMessage *req, const char *idem_key,
                           const Google__Protobuf__Int64Value *expected, ProtobufCMessage *resp,
                           enum cmd_begin_result *r, trpc_status *st);

/* Decides one account event on the current state (arg is the handler's). */
typedef cmdcore_decide_fn cmd_account_decide_fn;

/* Runs an account command: account_id must already be checked (lower
 * case); payment_id non-NULL loads that payment's info for the decision.
 * must_not_exist (OpenAccount) skips the cache and treats the stream as new.
 * On OK the reply's CommandResponse is complete (position included). A
 * business failure is remembered under the idempotency key. */
grpc_status_code cmd_account(struct cmd *c, const char *account_id, const char *payment_id,
                             cmd_account_decide_fn decide, const void *arg, trpc_status *st);

/* Loads an account's state for a decision that reads it (e.g. the transfer
 * request): cache unless fresh, else snapshot + events. */
grpc_status_code cmd_load_account(struct cmd *c, const char *account_id, int fresh,
                                  struct account_state *s, trpc_status *st);

/* Appends one event of a new or existing stream for c (the transfer
 * request uses it directly). version is the stream's version after the
 * event; op_status "SUCCEEDED" or "PENDING"; snapshot may be NULL. Fills the
 * reply's CommandResponse. */
grpc_status_code cmd_append(struct cmd *c, const char *aggregate_type, const char *aggregate_id,
                            int64_t version, const Tally__V1__Event *env, const char *op_status,
                            json_t *snapshot, enum store_conflict *conflict, trpc_status *st);

/* Remembers a business failure (NOT_FOUND, ALREADY_EXISTS,
 * FAILED_PRECONDITION) under the idempotency key, so a retry gets the same
 * answer; other codes (input errors, ABORTED, UNAVAILABLE) are not stored.
 * Returns st->code (or the database error if storing failed). */
grpc_status_code cmd_fail(struct cmd *c, trpc_status *st);

/* Replays the stored answer of the idempotency key after an idempotency
 * conflict. */
grpc_status_code cmd_replay_stored(struct cmd *c, trpc_status *st);

#endif /* SERVER_COMMAND_EXEC_H */
