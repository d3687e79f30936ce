/* transfer.c - decide/evolve for the transfer aggregate and its events in
 * proto form. See transfer.h. */
#include "transfer.h"

#include <inttypes.h>
#include <string.h>

#define OK_STATUS(st) trpc_status_set((st), GRPC_STATUS_OK, "ok")

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        grpc_status_code try_rc_ = (expr);                                                         \
        if (try_rc_ != GRPC_STATUS_OK)                                                             \
            return try_rc_;                                                                        \
    } while (0)

void transfer_state_init(struct transfer_state *t)
{
    memset(t, 0, sizeof(*t));
    t->status = TRANSFER_STATUS_NONE;
}

/* ---- event names ---- */

bool transfer_event_type_is_transfer(Tally__V1__Event__PayloadCase type)
{
    return transfer_event_type_name(type) != NULL;
}

const char *transfer_event_type_name(Tally__V1__Event__PayloadCase type)
{
    switch (type) {
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED:
        return "TransferRequested";
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED:
        return "TransferCompleted";
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED:
        return "TransferFailed";
    default:
        return NULL;
    }
}

Tally__V1__Event__PayloadCase transfer_event_type_from_name(const char *name)
{
    static const Tally__V1__Event__PayloadCase cases[] = {
        TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED,
        TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED,
        TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED,
    };
    size_t i;

    if (name == NULL)
        return TALLY__V1__EVENT__PAYLOAD__NOT_SET;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (strcmp(transfer_event_type_name(cases[i]), name) == 0)
            return cases[i];
    return TALLY__V1__EVENT__PAYLOAD__NOT_SET;
}

/* ---- events <-> proto ---- */

void transfer_event_to_proto(const struct transfer_event *ev, struct transfer_event_pb *pb,
                             Tally__V1__Event *env)
{
    const char *name = transfer_event_type_name(ev->type);

    memset(pb, 0, sizeof(*pb));
    env->payload_case = ev->type;
    env->event_type = (char *)(name ? name : "");
    env->event_version = TRANSFER_EVENT_VERSION;

    switch (ev->type) {
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED: {
        Tally__V1__TransferRequested m = TALLY__V1__TRANSFER_REQUESTED__INIT;
        Tally__V1__Money amount = TALLY__V1__MONEY__INIT;

        amount.minor_units = ev->u.transfer_requested.amount.minor_units;
        amount.currency = (char *)ev->u.transfer_requested.amount.currency;
        pb->amount = amount;
        m.transfer_id = (char *)ev->u.transfer_requested.transfer_id;
        m.source_account_id = (char *)ev->u.transfer_requested.source_account_id;
        m.destination_account_id = (char *)ev->u.transfer_requested.destination_account_id;
        m.amount = &pb->amount;
        m.reference = (char *)ev->u.transfer_requested.reference;
        pb->msg.transfer_requested = m;
        env->transfer_requested = &pb->msg.transfer_requested;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED: {
        Tally__V1__TransferCompleted m = TALLY__V1__TRANSFER_COMPLETED__INIT;

        m.transfer_id = (char *)ev->u.transfer_completed.transfer_id;
        pb->msg.transfer_completed = m;
        env->transfer_completed = &pb->msg.transfer_completed;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED: {
        Tally__V1__TransferFailed m = TALLY__V1__TRANSFER_FAILED__INIT;

        m.transfer_id = (char *)ev->u.transfer_failed.transfer_id;
        m.reason = (char *)ev->u.transfer_failed.reason;
        m.compensated = ev->u.transfer_failed.compensated ? 1 : 0;
        pb->msg.transfer_failed = m;
        env->transfer_failed = &pb->msg.transfer_failed;
        break;
    }
    default:
        env->payload_case = TALLY__V1__EVENT__PAYLOAD__NOT_SET;
        break;
    }
}

static grpc_status_code malformed(trpc_status *st, const char *event, const char *what)
{
    return trpc_status_set(st, GRPC_STATUS_INTERNAL, "malformed %s event: %s", event, what);
}

/* Copies a stored string of min_bytes..size-1 bytes of valid UTF-8. */
static bool copy_text(char *dst, size_t size, const char *src, size_t min_bytes)
{
    size_t len = src ? strlen(src) : 0;

    if (len < min_bytes || len >= size || !text_is_utf8(src, len))
        return false;
    if (len > 0)
        memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}

grpc_status_code transfer_event_from_proto(const Tally__V1__Event *env, struct transfer_event *ev,
                                           trpc_status *st)
{
    const char *name;

    if (env == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "malformed event: no event");
    name = transfer_event_type_name(env->payload_case);
    if (name == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                               "malformed event: payload %d is not a transfer event",
                               (int)env->payload_case);
    memset(ev, 0, sizeof(*ev));
    ev->type = env->payload_case;

    switch (env->payload_case) {
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED: {
        const Tally__V1__TransferRequested *m = env->transfer_requested;

        if (m == NULL)
            return malformed(st, name, "no payload");
        if (uuid_normalize(m->transfer_id, ev->u.transfer_requested.transfer_id) != 0)
            return malformed(st, name, "transferId");
        if (uuid_normalize(m->source_account_id, ev->u.transfer_requested.source_account_id) != 0)
            return malformed(st, name, "sourceAccountId");
        if (uuid_normalize(m->destination_account_id,
                           ev->u.transfer_requested.destination_account_id) != 0 ||
            strcmp(ev->u.transfer_requested.source_account_id,
                   ev->u.transfer_requested.destination_account_id) == 0)
            return malformed(st, name, "destinationAccountId");
        if (m->amount == NULL || m->amount->minor_units <= 0 ||
            !money_currency_is_valid(m->amount->currency))
            return malformed(st, name, "amount");
        ev->u.transfer_requested.amount.minor_units = m->amount->minor_units;
        memcpy(ev->u.transfer_requested.amount.currency, m->amount->currency, MONEY_CODE_SIZE);
        if (!copy_text(ev->u.transfer_requested.reference, TEXT_FIELD_SIZE, m->reference, 0))
            return malformed(st, name, "reference");
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED:
        if (env->transfer_completed == NULL)
            return malformed(st, name, "no payload");
        if (uuid_normalize(env->transfer_completed->transfer_id,
                           ev->u.transfer_completed.transfer_id) != 0)
            return malformed(st, name, "transferId");
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED:
        if (env->transfer_failed == NULL)
            return malformed(st, name, "no payload");
        if (uuid_normalize(env->transfer_failed->transfer_id, ev->u.transfer_failed.transfer_id) !=
            0)
            return malformed(st, name, "transferId");
        if (!copy_text(ev->u.transfer_failed.reason, TEXT_FIELD_SIZE, env->transfer_failed->reason,
                       1))
            return malformed(st, name, "reason");
        ev->u.transfer_failed.compensated = env->transfer_failed->compensated != 0;
        break;
    default:
        return malformed(st, name, "unexpected payload");
    }
    return OK_STATUS(st);
}

/* ---- evolve ---- */

grpc_status_code transfer_evolve(struct transfer_state *t, const struct transfer_event *ev,
                                 trpc_status *st)
{
    struct transfer_state n = *t;
    const char *name = transfer_event_type_name(ev->type);

    if (name == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                               "event payload %d does not belong to a transfer stream",
                               (int)ev->type);
    switch (ev->type) {
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED:
        if (t->exists)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                                   "TransferRequested for a transfer that already exists");
        if (ev->u.transfer_requested.amount.minor_units <= 0)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                                   "TransferRequested with a non-positive amount");
        n.exists = true;
        memcpy(n.transfer_id, ev->u.transfer_requested.transfer_id, sizeof(n.transfer_id));
        memcpy(n.source_account_id, ev->u.transfer_requested.source_account_id,
               sizeof(n.source_account_id));
        memcpy(n.destination_account_id, ev->u.transfer_requested.destination_account_id,
               sizeof(n.destination_account_id));
        n.amount = ev->u.transfer_requested.amount;
        memcpy(n.reference, ev->u.transfer_requested.reference, sizeof(n.reference));
        n.status = TRANSFER_STATUS_REQUESTED;
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED:
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED: {
        /* both members start with transfer_id */
        const char *id = ev->type == TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED
                             ? ev->u.transfer_completed.transfer_id
                             : ev->u.transfer_failed.transfer_id;

        if (!t->exists || t->status != TRANSFER_STATUS_REQUESTED)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s for a transfer not in flight",
                                   name);
        if (strcmp(id, t->transfer_id) != 0)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s for another transfer", name);
        if (ev->type == TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED) {
            n.status = TRANSFER_STATUS_COMPLETED;
        } else {
            n.status = TRANSFER_STATUS_FAILED;
            n.compensated = ev->u.transfer_failed.compensated;
            memcpy(n.failure_reason, ev->u.transfer_failed.reason, sizeof(n.failure_reason));
        }
        break;
    }
    default:
        break;
    }
    if (n.version == INT64_MAX)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "stream version overflow");
    n.version++;
    *t = n;
    return OK_STATUS(st);
}

grpc_status_code transfer_evolve_proto(struct transfer_state *t, const Tally__V1__Event *env,
                                       trpc_status *st)
{
    struct transfer_event ev;

    if (transfer_event_from_proto(env, &ev, st) != GRPC_STATUS_OK)
        return GRPC_STATUS_INTERNAL;
    if (env->version != 0 && (t->version == INT64_MAX || env->version != t->version + 1))
        return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                               "event version %" PRId64 " does not follow stream version %" PRId64,
                               env->version, t->version);
    return transfer_evolve(t, &ev, st);
}

/* ---- decide ---- */

grpc_status_code transfer_decide_request(const struct transfer_state *t, const char *transfer_id,
                                         const char *source_account_id,
                                         const char *destination_account_id,
                                         const struct account_state *source,
                                         const struct account_state *destination,
                                         const Tally__V1__Money *amount, const char *reference,
                                         struct transfer_event *out, trpc_status *st)
{
    char tid[UUID_STR_SIZE], sid[UUID_STR_SIZE], did[UUID_STR_SIZE];

    TRY(uuid_check("transfer_id", transfer_id, tid, st));
    TRY(uuid_check("source_account_id", source_account_id, sid, st));
    TRY(uuid_check("destination_account_id", destination_account_id, did, st));
    if (strcmp(sid, did) == 0)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "source and destination must differ");
    if (amount == NULL)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "amount is required");
    if (amount->minor_units <= 0)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "amount must be positive (got %" PRId64 ")", amount->minor_units);
    TRY(money_check_currency("amount currency", amount->currency, st));
    TRY(text_check_optional("reference", reference, st));

    if (t->exists)
        return trpc_status_set(st, GRPC_STATUS_ALREADY_EXISTS, "transfer already exists");
    if (!source->exists)
        return trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "source account not found");
    if (!destination->exists)
        return trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "destination account not found");
    if (strcmp(source->account_id, sid) != 0 || strcmp(destination->account_id, did) != 0)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                               "transfer request checked against the wrong account state");
    if (source->status == ACCOUNT_STATUS_CLOSED)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "source account is closed");
    if (source->status == ACCOUNT_STATUS_FROZEN)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "source account is frozen");
    if (destination->status == ACCOUNT_STATUS_CLOSED)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                               "destination account is closed");
    if (strcmp(source->currency, amount->currency) != 0)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                               "currency mismatch: source account is %s, amount is %s",
                               source->currency, amount->currency);
    if (strcmp(source->currency, destination->currency) != 0)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                               "currency mismatch: source account is %s, destination account is %s",
                               source->currency, destination->currency);

    memset(out, 0, sizeof(*out));
    out->type = TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED;
    memcpy(out->u.transfer_requested.transfer_id, tid, sizeof(tid));
    memcpy(out->u.transfer_requested.source_account_id, sid, sizeof(sid));
    memcpy(out->u.transfer_requested.destination_account_id, did, sizeof(did));
    out->u.transfer_requested.amount.minor_units = amount->minor_units;
    memcpy(out->u.transfer_requested.amount.currency, amount->currency, MONEY_CODE_SIZE);
    (void)text_copy(out->u.transfer_requested.reference, TEXT_FIELD_SIZE, reference);
    return OK_STATUS(st);
}

static grpc_status_code need_in_flight(const struct transfer_state *t, trpc_status *st)
{
    if (!t->exists)
        return trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "transfer not found");
    if (t->status == TRANSFER_STATUS_COMPLETED)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "transfer already completed");
    if (t->status == TRANSFER_STATUS_FAILED)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "transfer already failed");
    return GRPC_STATUS_OK;
}

grpc_status_code transfer_decide_complete(const struct transfer_state *t,
                                          struct transfer_event *out, trpc_status *st)
{
    TRY(need_in_flight(t, st));
    memset(out, 0, sizeof(*out));
    out->type = TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED;
    memcpy(out->u.transfer_completed.transfer_id, t->transfer_id, UUID_STR_SIZE);
    return OK_STATUS(st);
}

grpc_status_code transfer_decide_fail(const struct transfer_state *t, const char *reason,
                                      bool compensated, struct transfer_event *out, trpc_status *st)
{
    TRY(text_check_required("reason", reason, st));
    TRY(need_in_flight(t, st));
    memset(out, 0, sizeof(*out));
    out->type = TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED;
    memcpy(out->u.transfer_failed.transfer_id, t->transfer_id, UUID_STR_SIZE);
    (void)text_copy(out->u.transfer_failed.reason, TEXT_FIELD_SIZE, reason);
    out->u.transfer_failed.compensated = compensated;
    return OK_STATUS(st);
}
