/* transfer.h - the transfer aggregate as pure functions (stream of
 * TransferRequested, then TransferCompleted or TransferFailed).
 *
 * A transfer is requested by the CommandService (transfer_decide_request,
 * validated against both account states at that moment) and carried out by
 * the transfer saga in the projector: account_decide_transfer_debit on the
 * source, account_decide_transfer_credit on the destination, and
 * account_decide_transfer_debit_reverse when the credit fails; then it
 * records the outcome here (transfer_decide_complete / transfer_decide_fail).
 *
 * Same conventions as account.h: pure, deterministic, thread-safe; decide
 * writes exactly one plain-data event or returns an error with st set
 * (st may be NULL); events go to and come from Tally__V1__Event with the
 * same ownership rules as account_event_to_proto / _from_proto. */
#ifndef SERVER_MODEL_TRANSFER_H
#define SERVER_MODEL_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>

#include "tally/v1/events.pb-c.h"

#include "account.h"
#include "money.h"
#include "text.h"
#include "trpc.h"
#include "uuid.h"

#define TRANSFER_AGGREGATE_TYPE "transfer"
/* Schema version of every transfer event payload (Event.event_version). */
#define TRANSFER_EVENT_VERSION 1

enum transfer_status {
    TRANSFER_STATUS_NONE = 0,      /* no such transfer */
    TRANSFER_STATUS_REQUESTED = 1, /* in flight (OPERATION_STATUS_PENDING) */
    TRANSFER_STATUS_COMPLETED = 2, /* both legs booked (SUCCEEDED) */
    TRANSFER_STATUS_FAILED = 3,    /* no effect on balances in the end (FAILED) */
};

/* The state of one transfer stream. Plain data, fixed size, copyable. */
struct transfer_state {
    bool exists;
    char transfer_id[UUID_STR_SIZE];
    char source_account_id[UUID_STR_SIZE];
    char destination_account_id[UUID_STR_SIZE];
    struct money amount;
    char reference[TEXT_FIELD_SIZE];
    enum transfer_status status;
    bool compensated;                     /* when FAILED: the debit was reversed */
    char failure_reason[TEXT_FIELD_SIZE]; /* when FAILED */
    int64_t version;                      /* events applied; 0 when none */
};

void transfer_state_init(struct transfer_state *t);

/* One transfer event: type is a transfer payload case of Tally__V1__Event
 * (TRANSFER_REQUESTED, TRANSFER_COMPLETED, TRANSFER_FAILED). */
struct transfer_event {
    Tally__V1__Event__PayloadCase type;
    union {
        struct {
            char transfer_id[UUID_STR_SIZE];
            char source_account_id[UUID_STR_SIZE];
            char destination_account_id[UUID_STR_SIZE];
            struct money amount;
            char reference[TEXT_FIELD_SIZE];
        } transfer_requested;
        struct {
            char transfer_id[UUID_STR_SIZE];
        } transfer_completed;
        struct {
            char transfer_id[UUID_STR_SIZE];
            char reason[TEXT_FIELD_SIZE];
            bool compensated;
        } transfer_failed;
    } u;
};

/* Storage for the protobuf-c messages of one transfer event. */
struct transfer_event_pb {
    union {
        Tally__V1__TransferRequested transfer_requested;
        Tally__V1__TransferCompleted transfer_completed;
        Tally__V1__TransferFailed transfer_failed;
    } msg;
    Tally__V1__Money amount;
};

bool transfer_event_type_is_transfer(Tally__V1__Event__PayloadCase type);

/* "TransferRequested", "TransferCompleted", "TransferFailed" (static); NULL
 * for any other case. */
const char *transfer_event_type_name(Tally__V1__Event__PayloadCase type);

/* The transfer payload case of an event_type name, or PAYLOAD__NOT_SET. */
Tally__V1__Event__PayloadCase transfer_event_type_from_name(const char *name);

/* As account_event_to_proto: env borrows *ev and *pb (keep both in place
 * while env is used; nothing to free). */
void transfer_event_to_proto(const struct transfer_event *ev, struct transfer_event_pb *pb,
                             Tally__V1__Event *env);

/* As account_event_from_proto, for transfer cases (INTERNAL otherwise). */
grpc_status_code transfer_event_from_proto(const Tally__V1__Event *env, struct transfer_event *ev,
                                           trpc_status *st);

/* TransferRequested needs a non-existent transfer; TransferCompleted and
 * TransferFailed need a REQUESTED one with the same transfer id. Increments
 * t->version. Returns OK or INTERNAL (*t unchanged). */
grpc_status_code transfer_evolve(struct transfer_state *t, const struct transfer_event *ev,
                                 trpc_status *st);

/* transfer_event_from_proto + transfer_evolve; a non-zero env->version must
 * equal t->version + 1. */
grpc_status_code transfer_evolve_proto(struct transfer_state *t, const Tally__V1__Event *env,
                                       trpc_status *st);

/* TransferRequested, validated in this order:
 *  INVALID_ARGUMENT: transfer_id, source_account_id, destination_account_id
 *    UUIDs; source == destination ("source and destination must differ");
 *    amount present, > 0, valid currency; reference 0..256 bytes UTF-8;
 *  ALREADY_EXISTS: t exists ("transfer already exists");
 *  NOT_FOUND: "source account not found", "destination account not found";
 *  FAILED_PRECONDITION: source frozen or closed ("source account is
 *    frozen"/"... is closed"), destination closed ("destination account is
 *    closed"), "currency mismatch: source account is EUR, amount is USD",
 *    "currency mismatch: source account is EUR, destination account is USD".
 * source and destination are the states loaded for those ids (a state that
 * exists with another id is INTERNAL). A frozen destination is accepted
 * here; its credit fails later and the saga reverses the debit. Funds are
 * not checked here: the debit step decides (an insufficient balance ends as
 * TransferFailed, compensated false). */
grpc_status_code transfer_decide_request(const struct transfer_state *t, const char *transfer_id,
                                         const char *source_account_id,
                                         const char *destination_account_id,
                                         const struct account_state *source,
                                         const struct account_state *destination,
                                         const Tally__V1__Money *amount, const char *reference,
                                         struct transfer_event *out, trpc_status *st);

/* TransferCompleted: t must be REQUESTED (NOT_FOUND "transfer not found";
 * FAILED_PRECONDITION "transfer already completed"/"transfer already
 * failed": a saga retrying a finished step can treat these as done). */
grpc_status_code transfer_decide_complete(const struct transfer_state *t,
                                          struct transfer_event *out, trpc_status *st);

/* TransferFailed(reason 1..256 bytes UTF-8, compensated): t must be
 * REQUESTED (as transfer_decide_complete). */
grpc_status_code transfer_decide_fail(const struct transfer_state *t, const char *reason,
                                      bool compensated, struct transfer_event *out,
                                      trpc_status *st);

#endif /* SERVER_MODEL_TRANSFER_H */
