/* store.h - the write side of the event log: load a stream, append events
 * with their outbox rows, operation row, idempotency row and snapshot in ONE
 * statement (one round trip, one transaction), and the idempotency and
 * payment look-ups commands need. Knows nothing of the domain: events arrive
 * as proto3 JSON.
 *
 * Every function takes the caller's connection (one per pool thread) and
 * leaves it outside a transaction. Errors: a short client-safe message in
 * *st, the full database error in the log. */
#ifndef SERVER_STORE_H
#define SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "trpc.h"

/* A position in the log: the consistency token (DESIGN §5). */
struct store_position {
    uint64_t tx_id;
    int64_t global_position;
};

/* One event to append. */
struct store_event {
    const char *event_id;       /* UUID (v7), made by the caller */
    const char *aggregate_type; /* "account", "transfer" */
    const char *aggregate_id;   /* UUID */
    int64_t version;            /* the stream's version after this event */
    const char *event_type;     /* "Deposited" */
    int event_version;          /* payload schema version, >= 1 */
    json_t *data;               /* proto3 JSON of the payload (borrowed) */
};

enum store_conflict {
    STORE_CONFLICT_NONE = 0,
    STORE_CONFLICT_VERSION,     /* a stream version was taken: reload, retry */
    STORE_CONFLICT_IDEMPOTENCY, /* the idempotency key was stored meanwhile */
    STORE_CONFLICT_OPERATION,   /* the operation id exists already */
};

struct store_append {
    const char *tenant_id;
    /* the operation row: every command writes one */
    const char *operation_id;
    const char *operation_kind;   /* "Deposit" */
    const char *operation_status; /* "SUCCEEDED", or "PENDING" (transfer) */
    const char *operation_aggregate_type;
    const char *operation_aggregate_id;
    /* optional: also finish another (saga) operation in the same statement */
    const char *finish_operation_id;     /* NULL = none */
    const char *finish_operation_status; /* "SUCCEEDED" / "FAILED" */
    const char *finish_operation_reason; /* may be NULL */
    /* metadata copied onto every event */
    const char *correlation_id;
    const char *causation_id;
    const char *user_id;
    const struct store_event *events;
    size_t n_events; /* >= 1 */
    /* optional snapshot of one stream (state after its event at version) */
    const char *snapshot_aggregate_type; /* NULL = none */
    const char *snapshot_aggregate_id;
    int64_t snapshot_version;
    const char *snapshot_json;
    /* optional idempotency row: the reply without its position */
    const char *idem_key;     /* NULL = none */
    const uint8_t *idem_hash; /* 32 bytes */
    const uint8_t *idem_response;
    size_t idem_response_len;
};

/* Appends atomically. On OK *pos is the position of the last event. On a
 * unique violation returns ABORTED with *conflict saying which (never
 * swallowed: the caller reloads and retries, or reports). conflict may be
 * NULL. */
grpc_status_code store_append(PGconn *conn, const struct store_append *a,
                              struct store_position *pos, enum store_conflict *conflict,
                              trpc_status *st);

/* Called for each row store_load_stream finds: first the snapshot, if any
 * (event_type NULL, json = the state), then every later event in version
 * order. recorded_at_us is the row's time in microseconds since the epoch
 * (decimal text). Returns 0 to go on, non-zero to stop with INTERNAL. json
 * and event_type are valid only during the call. */
typedef int (*store_row_fn)(void *arg, int64_t version, const char *event_type, const char *json,
                            const char *recorded_at_us);

/* Loads a stream after after_version (0 = from the start); with
 * use_snapshot the latest snapshot above after_version comes first and only
 * later events follow. to_version > 0 bounds the read (inclusive), and then
 * the snapshot chosen is the latest at or below it. Returns OK (also for an
 * empty stream), or the error. */
grpc_status_code store_load_stream(PGconn *conn, const char *tenant_id, const char *aggregate_type,
                                   const char *aggregate_id, int64_t after_version,
                                   int64_t to_version, int use_snapshot, store_row_fn fn, void *arg,
                                   trpc_status *st);

/* A stored idempotency row. */
struct store_idem {
    int found;
    uint8_t hash[32];
    grpc_status_code code;
    char message[256];
    uint8_t *response; /* malloc'd (free()), NULL when code != OK */
    size_t response_len;
    struct store_position pos;
};

/* Looks up (tenant, key). OK with out->found 0 when absent. */
grpc_status_code store_idem_find(PGconn *conn, const char *tenant_id, const char *key,
                                 struct store_idem *out, trpc_status *st);

/* Remembers a business failure for (tenant, key) so a retry gets the same
 * answer. If the key was stored meanwhile, nothing changes (the caller
 * re-reads it). */
grpc_status_code store_idem_put_failure(PGconn *conn, const char *tenant_id, const char *key,
                                        const uint8_t hash[32], grpc_status_code code,
                                        const char *message, trpc_status *st);

/* Replaces the stored reply of (tenant, key) and its position (a Transfer
 * that waited stores its final answer, positioned at its outcome event). */
grpc_status_code store_idem_set_response(PGconn *conn, const char *tenant_id, const char *key,
                                         const uint8_t *response, size_t len,
                                         struct store_position pos, trpc_status *st);

/* The version and position of a stream's last event. NOT_FOUND for an
 * empty stream. */
grpc_status_code store_stream_last(PGconn *conn, const char *tenant_id, const char *aggregate_type,
                                   const char *aggregate_id, int64_t *version,
                                   struct store_position *pos, trpc_status *st);

/* Frees out->response. */
void store_idem_cleanup(struct store_idem *out);

/* A payment's amount and its refunds so far, from the account's stream. */
struct store_payment {
    int found;
    int64_t amount;
    int64_t refunded;
    char currency[4];
};

grpc_status_code store_payment_find(PGconn *conn, const char *tenant_id, const char *account_id,
                                    const char *payment_id, struct store_payment *out,
                                    trpc_status *st);

/* Status of an operation row (for Transfer with wait): "PENDING",
 * "SUCCEEDED", "FAILED" in status (>= 16 bytes), reason (>= 256 bytes, may
 * be empty). NOT_FOUND if absent. */
grpc_status_code store_operation_status(PGconn *conn, const char *tenant_id,
                                        const char *operation_id, char *status, size_t status_len,
                                        char *reason, size_t reason_len, trpc_status *st);

/* Text form of a position's tx_id for SQL parameters (xid8). buf >= 21. */
const char *store_xid_text(uint64_t tx_id, char *buf, size_t len);

#endif /* SERVER_STORE_H */
