/* account.c - decide/evolve for the account aggregate, its events in proto
 * form, and its snapshot JSON. See account.h for the rules. */
#include "account.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define OK_STATUS(st) trpc_status_set((st), GRPC_STATUS_OK, "ok")

_Static_assert(ACCOUNT_STATUS_OPEN == (int)TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN &&
                   ACCOUNT_STATUS_FROZEN == (int)TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_FROZEN &&
                   ACCOUNT_STATUS_CLOSED == (int)TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_CLOSED,
               "enum account_status mirrors tally.v1.AccountStatus");

void account_state_init(struct account_state *s)
{
    memset(s, 0, sizeof(*s));
    s->status = ACCOUNT_STATUS_NONE;
}

void account_payment_info_init(struct account_payment_info *p)
{
    memset(p, 0, sizeof(*p));
}

/* ---- event names ---- */

static const struct {
    Tally__V1__Event__PayloadCase type;
    const char *name;
} event_names[] = {
    {TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED, "AccountOpened"},
    {TALLY__V1__EVENT__PAYLOAD_DEPOSITED, "Deposited"},
    {TALLY__V1__EVENT__PAYLOAD_WITHDRAWN, "Withdrawn"},
    {TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED, "TransferDebited"},
    {TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED, "TransferCredited"},
    {TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED, "TransferDebitReversed"},
    {TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE, "PaymentMade"},
    {TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED, "PaymentRefunded"},
    {TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN, "AccountFrozen"},
    {TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN, "AccountUnfrozen"},
    {TALLY__V1__EVENT__PAYLOAD_ACCOUNT_CLOSED, "AccountClosed"},
};

#define N_EVENT_NAMES (sizeof(event_names) / sizeof(event_names[0]))

bool account_event_type_is_account(Tally__V1__Event__PayloadCase type)
{
    return account_event_type_name(type) != NULL;
}

const char *account_event_type_name(Tally__V1__Event__PayloadCase type)
{
    size_t i;

    for (i = 0; i < N_EVENT_NAMES; i++)
        if (event_names[i].type == type)
            return event_names[i].name;
    return NULL;
}

Tally__V1__Event__PayloadCase account_event_type_from_name(const char *name)
{
    size_t i;

    if (name == NULL)
        return TALLY__V1__EVENT__PAYLOAD__NOT_SET;
    for (i = 0; i < N_EVENT_NAMES; i++)
        if (strcmp(event_names[i].name, name) == 0)
            return event_names[i].type;
    return TALLY__V1__EVENT__PAYLOAD__NOT_SET;
}

/* ---- events <-> proto ---- */

/* Points a Money message at a struct money (borrowed). */
static Tally__V1__Money *money_pb(Tally__V1__Money *pb, const struct money *m)
{
    Tally__V1__Money init = TALLY__V1__MONEY__INIT;

    *pb = init;
    pb->minor_units = m->minor_units;
    pb->currency = (char *)m->currency;
    return pb;
}

void account_event_to_proto(const struct account_event *ev, struct account_event_pb *pb,
                            Tally__V1__Event *env)
{
    memset(pb, 0, sizeof(*pb));
    env->payload_case = ev->type;
    env->event_type =
        (char *)(account_event_type_name(ev->type) ? account_event_type_name(ev->type) : "");
    env->event_version = ACCOUNT_EVENT_VERSION;

    switch (ev->type) {
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED: {
        Tally__V1__AccountOpened m = TALLY__V1__ACCOUNT_OPENED__INIT;

        m.account_id = (char *)ev->u.account_opened.account_id;
        m.owner = (char *)ev->u.account_opened.owner;
        m.currency = (char *)ev->u.account_opened.currency;
        m.overdraft_limit = ev->u.account_opened.overdraft_limit;
        pb->msg.account_opened = m;
        env->account_opened = &pb->msg.account_opened;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_DEPOSITED: {
        Tally__V1__Deposited m = TALLY__V1__DEPOSITED__INIT;

        m.amount = money_pb(&pb->amount, &ev->u.deposited.amount);
        m.reference = (char *)ev->u.deposited.reference;
        pb->msg.deposited = m;
        env->deposited = &pb->msg.deposited;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_WITHDRAWN: {
        Tally__V1__Withdrawn m = TALLY__V1__WITHDRAWN__INIT;

        m.amount = money_pb(&pb->amount, &ev->u.withdrawn.amount);
        m.reference = (char *)ev->u.withdrawn.reference;
        pb->msg.withdrawn = m;
        env->withdrawn = &pb->msg.withdrawn;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED: {
        Tally__V1__TransferDebited m = TALLY__V1__TRANSFER_DEBITED__INIT;

        m.transfer_id = (char *)ev->u.transfer_debited.transfer_id;
        m.amount = money_pb(&pb->amount, &ev->u.transfer_debited.amount);
        m.counterpart_account_id = (char *)ev->u.transfer_debited.counterpart_account_id;
        pb->msg.transfer_debited = m;
        env->transfer_debited = &pb->msg.transfer_debited;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED: {
        Tally__V1__TransferCredited m = TALLY__V1__TRANSFER_CREDITED__INIT;

        m.transfer_id = (char *)ev->u.transfer_credited.transfer_id;
        m.amount = money_pb(&pb->amount, &ev->u.transfer_credited.amount);
        m.counterpart_account_id = (char *)ev->u.transfer_credited.counterpart_account_id;
        pb->msg.transfer_credited = m;
        env->transfer_credited = &pb->msg.transfer_credited;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED: {
        Tally__V1__TransferDebitReversed m = TALLY__V1__TRANSFER_DEBIT_REVERSED__INIT;

        m.transfer_id = (char *)ev->u.transfer_debit_reversed.transfer_id;
        m.amount = money_pb(&pb->amount, &ev->u.transfer_debit_reversed.amount);
        m.counterpart_account_id = (char *)ev->u.transfer_debit_reversed.counterpart_account_id;
        m.reason = (char *)ev->u.transfer_debit_reversed.reason;
        pb->msg.transfer_debit_reversed = m;
        env->transfer_debit_reversed = &pb->msg.transfer_debit_reversed;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE: {
        Tally__V1__PaymentMade m = TALLY__V1__PAYMENT_MADE__INIT;

        m.payment_id = (char *)ev->u.payment_made.payment_id;
        m.amount = money_pb(&pb->amount, &ev->u.payment_made.amount);
        m.merchant_reference = (char *)ev->u.payment_made.merchant_reference;
        pb->msg.payment_made = m;
        env->payment_made = &pb->msg.payment_made;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED: {
        Tally__V1__PaymentRefunded m = TALLY__V1__PAYMENT_REFUNDED__INIT;

        m.payment_id = (char *)ev->u.payment_refunded.payment_id;
        m.amount = money_pb(&pb->amount, &ev->u.payment_refunded.amount);
        m.total_refunded = money_pb(&pb->total_refunded, &ev->u.payment_refunded.total_refunded);
        pb->msg.payment_refunded = m;
        env->payment_refunded = &pb->msg.payment_refunded;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN: {
        Tally__V1__AccountFrozen m = TALLY__V1__ACCOUNT_FROZEN__INIT;

        m.reason = (char *)ev->u.account_frozen.reason;
        pb->msg.account_frozen = m;
        env->account_frozen = &pb->msg.account_frozen;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN: {
        Tally__V1__AccountUnfrozen m = TALLY__V1__ACCOUNT_UNFROZEN__INIT;

        m.reason = (char *)ev->u.account_unfrozen.reason;
        pb->msg.account_unfrozen = m;
        env->account_unfrozen = &pb->msg.account_unfrozen;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_CLOSED: {
        Tally__V1__AccountClosed m = TALLY__V1__ACCOUNT_CLOSED__INIT;

        m.reason = (char *)ev->u.account_closed.reason;
        pb->msg.account_closed = m;
        env->account_closed = &pb->msg.account_closed;
        break;
    }
    default:
        /* not an account event: leave no dangling payload behind */
        env->payload_case = TALLY__V1__EVENT__PAYLOAD__NOT_SET;
        break;
    }
}

/* Shape checks of stored events. Every failure is INTERNAL: a stored event
 * that breaks them means a corrupt log or a codec bug, not bad input. */

static grpc_status_code malformed(trpc_status *st, const char *event, const char *what)
{
    return trpc_status_set(st, GRPC_STATUS_INTERNAL, "malformed %s event: %s", event, what);
}

static grpc_status_code copy_text(char *dst, size_t size, const char *src, size_t min_bytes,
                                  const char *event, const char *field, trpc_status *st)
{
    size_t len = src ? strlen(src) : 0;

    if (len < min_bytes || len >= size || !text_is_utf8(src, len))
        return malformed(st, event, field);
    if (len > 0)
        memcpy(dst, src, len);
    dst[len] = '\0';
    return GRPC_STATUS_OK;
}

static grpc_status_code copy_id(char dst[UUID_STR_SIZE], const char *src, const char *event,
                                const char *field, trpc_status *st)
{
    if (uuid_normalize(src, dst) != 0)
        return malformed(st, event, field);
    return GRPC_STATUS_OK;
}

static grpc_status_code copy_money(struct money *dst, const Tally__V1__Money *src,
                                   const char *event, const char *field, trpc_status *st)
{
    if (src == NULL || src->minor_units <= 0 || !money_currency_is_valid(src->currency))
        return malformed(st, event, field);
    dst->minor_units = src->minor_units;
    memcpy(dst->currency, src->currency, MONEY_CODE_SIZE);
    return GRPC_STATUS_OK;
}

grpc_status_code account_event_from_proto(const Tally__V1__Event *env, struct account_event *ev,
                                          trpc_status *st)
{
    const char *name;

    if (env == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "malformed event: no event");
    name = account_event_type_name(env->payload_case);
    if (name == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                               "malformed event: payload %d is not an account event",
                               (int)env->payload_case);
    memset(ev, 0, sizeof(*ev));
    ev->type = env->payload_case;

    switch (env->payload_case) {
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED: {
        const Tally__V1__AccountOpened *m = env->account_opened;

        if (m == NULL)
            return malformed(st, name, "no payload");
        if (copy_id(ev->u.account_opened.account_id, m->account_id, name, "accountId", st) ||
            copy_text(ev->u.account_opened.owner, TEXT_FIELD_SIZE, m->owner, 1, name, "owner", st))
            return GRPC_STATUS_INTERNAL;
        if (!money_currency_is_valid(m->currency))
            return malformed(st, name, "currency");
        memcpy(ev->u.account_opened.currency, m->currency, MONEY_CODE_SIZE);
        if (m->overdraft_limit < 0)
            return malformed(st, name, "overdraftLimit");
        ev->u.account_opened.overdraft_limit = m->overdraft_limit;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_DEPOSITED:
    case TALLY__V1__EVENT__PAYLOAD_WITHDRAWN: {
        /* Deposited and Withdrawn have the same layout, and so do their
         * members of the union in struct account_event */
        const Tally__V1__Money *amount;
        const char *reference;

        if (env->payload_case == TALLY__V1__EVENT__PAYLOAD_DEPOSITED) {
            if (env->deposited == NULL)
                return malformed(st, name, "no payload");
            amount = env->deposited->amount;
            reference = env->deposited->reference;
        } else {
            if (env->withdrawn == NULL)
                return malformed(st, name, "no payload");
            amount = env->withdrawn->amount;
            reference = env->withdrawn->reference;
        }
        if (copy_money(&ev->u.deposited.amount, amount, name, "amount", st) ||
            copy_text(ev->u.deposited.reference, TEXT_FIELD_SIZE, reference, 0, name, "reference",
                      st))
            return GRPC_STATUS_INTERNAL;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED:
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED: {
        const char *transfer_id, *counterpart;
        const Tally__V1__Money *amount;

        if (env->payload_case == TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED) {
            if (env->transfer_debited == NULL)
                return malformed(st, name, "no payload");
            transfer_id = env->transfer_debited->transfer_id;
            amount = env->transfer_debited->amount;
            counterpart = env->transfer_debited->counterpart_account_id;
        } else {
            if (env->transfer_credited == NULL)
                return malformed(st, name, "no payload");
            transfer_id = env->transfer_credited->transfer_id;
            amount = env->transfer_credited->amount;
            counterpart = env->transfer_credited->counterpart_account_id;
        }
        if (copy_id(ev->u.transfer_debited.transfer_id, transfer_id, name, "transferId", st) ||
            copy_money(&ev->u.transfer_debited.amount, amount, name, "amount", st) ||
            copy_id(ev->u.transfer_debited.counterpart_account_id, counterpart, name,
                    "counterpartAccountId", st))
            return GRPC_STATUS_INTERNAL;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED: {
        const Tally__V1__TransferDebitReversed *m = env->transfer_debit_reversed;

        if (m == NULL)
            return malformed(st, name, "no payload");
        if (copy_id(ev->u.transfer_debit_reversed.transfer_id, m->transfer_id, name, "transferId",
                    st) ||
            copy_money(&ev->u.transfer_debit_reversed.amount, m->amount, name, "amount", st) ||
            copy_id(ev->u.transfer_debit_reversed.counterpart_account_id, m->counterpart_account_id,
                    name, "counterpartAccountId", st) ||
            copy_text(ev->u.transfer_debit_reversed.reason, TEXT_FIELD_SIZE, m->reason, 0, name,
                      "reason", st))
            return GRPC_STATUS_INTERNAL;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE: {
        const Tally__V1__PaymentMade *m = env->payment_made;

        if (m == NULL)
            return malformed(st, name, "no payload");
        if (copy_id(ev->u.payment_made.payment_id, m->payment_id, name, "paymentId", st) ||
            copy_money(&ev->u.payment_made.amount, m->amount, name, "amount", st) ||
            copy_text(ev->u.payment_made.merchant_reference, TEXT_FIELD_SIZE, m->merchant_reference,
                      1, name, "merchantReference", st))
            return GRPC_STATUS_INTERNAL;
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED: {
        const Tally__V1__PaymentRefunded *m = env->payment_refunded;

        if (m == NULL)
            return malformed(st, name, "no payload");
        if (copy_id(ev->u.payment_refunded.payment_id, m->payment_id, name, "paymentId", st) ||
            copy_money(&ev->u.payment_refunded.amount, m->amount, name, "amount", st) ||
            copy_money(&ev->u.payment_refunded.total_refunded, m->total_refunded, name,
                       "totalRefunded", st))
            return GRPC_STATUS_INTERNAL;
        if (strcmp(ev->u.payment_refunded.amount.currency,
                   ev->u.payment_refunded.total_refunded.currency) != 0 ||
            ev->u.payment_refunded.total_refunded.minor_units <
                ev->u.payment_refunded.amount.minor_units)
            return malformed(st, name, "totalRefunded");
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN:
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN:
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_CLOSED: {
        const char *reason;

        if (env->payload_case == TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN) {
            if (env->account_frozen == NULL)
                return malformed(st, name, "no payload");
            reason = env->account_frozen->reason;
        } else if (env->payload_case == TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN) {
            if (env->account_unfrozen == NULL)
                return malformed(st, name, "no payload");
            reason = env->account_unfrozen->reason;
        } else {
            if (env->account_closed == NULL)
                return malformed(st, name, "no payload");
            reason = env->account_closed->reason;
        }
        if (copy_text(ev->u.account_frozen.reason, TEXT_FIELD_SIZE, reason, 0, name, "reason", st))
            return GRPC_STATUS_INTERNAL;
        break;
    }
    default:
        return malformed(st, name, "unexpected payload");
    }
    return OK_STATUS(st);
}

/* ---- evolve ---- */

/* The amount of an event that moves money, or NULL; *credit tells the
 * direction. */
static const struct money *event_amount(const struct account_event *ev, bool *credit)
{
    *credit = true;
    switch (ev->type) {
    case TALLY__V1__EVENT__PAYLOAD_DEPOSITED:
        return &ev->u.deposited.amount;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED:
        return &ev->u.transfer_credited.amount;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED:
        return &ev->u.transfer_debit_reversed.amount;
    case TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED:
        return &ev->u.payment_refunded.amount;
    case TALLY__V1__EVENT__PAYLOAD_WITHDRAWN:
        *credit = false;
        return &ev->u.withdrawn.amount;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED:
        *credit = false;
        return &ev->u.transfer_debited.amount;
    case TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE:
        *credit = false;
        return &ev->u.payment_made.amount;
    default:
        return NULL;
    }
}

grpc_status_code account_evolve(struct account_state *s, const struct account_event *ev,
                                trpc_status *st)
{
    struct account_state n = *s;
    const char *name = account_event_type_name(ev->type);
    const struct money *amount;
    bool credit;

    if (name == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                               "event payload %d does not belong to an account stream",
                               (int)ev->type);
    if (ev->type == TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED) {
        if (s->exists)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                                   "AccountOpened for an account that already exists");
        n.exists = true;
        memcpy(n.account_id, ev->u.account_opened.account_id, sizeof(n.account_id));
        memcpy(n.owner, ev->u.account_opened.owner, sizeof(n.owner));
        memcpy(n.currency, ev->u.account_opened.currency, sizeof(n.currency));
        n.overdraft_limit = ev->u.account_opened.overdraft_limit;
        n.balance = 0;
        n.status = ACCOUNT_STATUS_OPEN;
    } else if (!s->exists) {
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s for an account that was never opened",
                               name);
    }

    amount = event_amount(ev, &credit);
    if (amount != NULL) {
        bool ok;

        if (amount->minor_units <= 0)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s with a non-positive amount", name);
        if (strcmp(amount->currency, s->currency) != 0)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s in %.3s on an account in %.3s",
                                   name, amount->currency, s->currency);
        ok = credit ? money_add(n.balance, amount->minor_units, &n.balance)
                    : money_sub(n.balance, amount->minor_units, &n.balance);
        if (!ok)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "%s overflows the balance", name);
    }

    switch (ev->type) {
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN:
        n.status = ACCOUNT_STATUS_FROZEN;
        break;
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN:
        n.status = ACCOUNT_STATUS_OPEN;
        break;
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_CLOSED:
        n.status = ACCOUNT_STATUS_CLOSED;
        break;
    default:
        break;
    }
    if (!money_add(n.version, 1, &n.version))
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "stream version overflow");
    *s = n;
    return OK_STATUS(st);
}

grpc_status_code account_evolve_proto(struct account_state *s, const Tally__V1__Event *env,
                                      trpc_status *st)
{
    struct account_event ev;

    if (account_event_from_proto(env, &ev, st) != GRPC_STATUS_OK)
        return GRPC_STATUS_INTERNAL;
    if (env->version != 0 && (s->version == INT64_MAX || env->version != s->version + 1))
        return trpc_status_set(st, GRPC_STATUS_INTERNAL,
                               "event version %" PRId64 " does not follow stream version %" PRId64,
                               env->version, s->version);
    return account_evolve(s, &ev, st);
}

grpc_status_code account_payment_info_apply(struct account_payment_info *p, const char *payment_id,
                                            const Tally__V1__Event *env, trpc_status *st)
{
    char id[UUID_STR_SIZE];
    struct account_event ev;

    if (uuid_normalize(payment_id, id) != 0)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "payment_id is not a valid uuid");
    if (env == NULL || (env->payload_case != TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE &&
                        env->payload_case != TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED))
        return OK_STATUS(st);
    if (account_event_from_proto(env, &ev, st) != GRPC_STATUS_OK)
        return GRPC_STATUS_INTERNAL;

    if (ev.type == TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE) {
        if (strcmp(ev.u.payment_made.payment_id, id) != 0)
            return OK_STATUS(st);
        if (p->exists)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "payment made twice");
        p->exists = true;
        p->amount = ev.u.payment_made.amount.minor_units;
        memcpy(p->currency, ev.u.payment_made.amount.currency, sizeof(p->currency));
        return OK_STATUS(st);
    }
    if (strcmp(ev.u.payment_refunded.payment_id, id) != 0)
        return OK_STATUS(st);
    if (!p->exists || strcmp(ev.u.payment_refunded.total_refunded.currency, p->currency) != 0 ||
        ev.u.payment_refunded.total_refunded.minor_units > p->amount)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "refund does not match its payment");
    /* total_refunded is the running total: it replaces, never adds */
    if (ev.u.payment_refunded.total_refunded.minor_units > p->refunded)
        p->refunded = ev.u.payment_refunded.total_refunded.minor_units;
    return OK_STATUS(st);
}

/* ---- decide ---- */

static grpc_status_code check_amount(const Tally__V1__Money *amount, struct money *out,
                                     trpc_status *st)
{
    if (amount == NULL)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "amount is required");
    if (amount->minor_units <= 0)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "amount must be positive (got %" PRId64 ")", amount->minor_units);
    if (money_check_currency("amount currency", amount->currency, st) != GRPC_STATUS_OK)
        return GRPC_STATUS_INVALID_ARGUMENT;
    out->minor_units = amount->minor_units;
    memcpy(out->currency, amount->currency, MONEY_CODE_SIZE);
    return GRPC_STATUS_OK;
}

static grpc_status_code need_account(const struct account_state *s, trpc_status *st)
{
    if (!s->exists)
        return trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "account not found");
    return GRPC_STATUS_OK;
}

static grpc_status_code need_not_closed(const struct account_state *s, trpc_status *st)
{
    if (s->status == ACCOUNT_STATUS_CLOSED)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "account is closed");
    return GRPC_STATUS_OK;
}

static grpc_status_code need_open(const struct account_state *s, trpc_status *st)
{
    if (need_not_closed(s, st) != GRPC_STATUS_OK)
        return GRPC_STATUS_FAILED_PRECONDITION;
    if (s->status == ACCOUNT_STATUS_FROZEN)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "account is frozen");
    return GRPC_STATUS_OK;
}

static grpc_status_code need_currency(const struct account_state *s, const struct money *m,
                                      trpc_status *st)
{
    if (strcmp(s->currency, m->currency) != 0)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                               "currency mismatch: account is %s, amount is %s", s->currency,
                               m->currency);
    return GRPC_STATUS_OK;
}

/* The balance after paying m out; what names the debit in the message. */
static grpc_status_code check_debit(const struct account_state *s, const struct money *m,
                                    const char *what, trpc_status *st)
{
    int64_t after;

    /* balance >= -overdraft_limit >= -INT64_MAX, so a failed subtraction can
     * only mean "far below the limit" */
    if (!money_sub(s->balance, m->minor_units, &after) || after < -s->overdraft_limit)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                               "insufficient funds: balance %" PRId64 ", overdraft limit %" PRId64
                               ", %s %" PRId64,
                               s->balance, s->overdraft_limit, what, m->minor_units);
    return GRPC_STATUS_OK;
}

static grpc_status_code check_credit(const struct account_state *s, const struct money *m,
                                     trpc_status *st)
{
    int64_t after;

    if (!money_add(s->balance, m->minor_units, &after))
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                               "balance would overflow: balance %" PRId64 ", credit %" PRId64,
                               s->balance, m->minor_units);
    return GRPC_STATUS_OK;
}

static void event_start(struct account_event *out, Tally__V1__Event__PayloadCase type)
{
    memset(out, 0, sizeof(*out));
    out->type = type;
}

/* Copies an already checked string; it always fits. */
static void set_text(char *dst, size_t size, const char *src)
{
    (void)text_copy(dst, size, src);
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        grpc_status_code try_rc_ = (expr);                                                         \
        if (try_rc_ != GRPC_STATUS_OK)                                                             \
            return try_rc_;                                                                        \
    } while (0)

grpc_status_code account_decide_open(const struct account_state *s, const char *account_id,
                                     const char *owner, const char *currency,
                                     int64_t overdraft_limit, struct account_event *out,
                                     trpc_status *st)
{
    char id[UUID_STR_SIZE];

    TRY(uuid_check("account_id", account_id, id, st));
    TRY(text_check_required("owner", owner, st));
    TRY(money_check_currency("currency", currency, st));
    if (overdraft_limit < 0)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "overdraft_limit must not be negative");
    if (s->exists)
        return trpc_status_set(st, GRPC_STATUS_ALREADY_EXISTS, "account already exists");

    event_start(out, TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED);
    memcpy(out->u.account_opened.account_id, id, sizeof(id));
    set_text(out->u.account_opened.owner, TEXT_FIELD_SIZE, owner);
    memcpy(out->u.account_opened.currency, currency, MONEY_CODE_SIZE);
    out->u.account_opened.overdraft_limit = overdraft_limit;
    return OK_STATUS(st);
}

/* Deposit and Withdraw differ only in direction. */
static grpc_status_code decide_cash(const struct account_state *s, const Tally__V1__Money *amount,
                                    const char *reference, bool deposit, struct account_event *out,
                                    trpc_status *st)
{
    struct money m;

    TRY(check_amount(amount, &m, st));
    TRY(text_check_optional("reference", reference, st));
    TRY(need_account(s, st));
    TRY(need_open(s, st));
    TRY(need_currency(s, &m, st));
    if (deposit) {
        TRY(check_credit(s, &m, st));
        event_start(out, TALLY__V1__EVENT__PAYLOAD_DEPOSITED);
    } else {
        TRY(check_debit(s, &m, "withdrawal", st));
        event_start(out, TALLY__V1__EVENT__PAYLOAD_WITHDRAWN);
    }
    /* deposited and withdrawn share one layout in the union */
    out->u.deposited.amount = m;
    set_text(out->u.deposited.reference, TEXT_FIELD_SIZE, reference);
    return OK_STATUS(st);
}

grpc_status_code account_decide_deposit(const struct account_state *s,
                                        const Tally__V1__Money *amount, const char *reference,
                                        struct account_event *out, trpc_status *st)
{
    return decide_cash(s, amount, reference, true, out, st);
}

grpc_status_code account_decide_withdraw(const struct account_state *s,
                                         const Tally__V1__Money *amount, const char *reference,
                                         struct account_event *out, trpc_status *st)
{
    return decide_cash(s, amount, reference, false, out, st);
}

/* The inputs every transfer step checks: transfer id, amount, counterpart. */
static grpc_status_code check_transfer_step(const struct account_state *s, const char *transfer_id,
                                            const Tally__V1__Money *amount,
                                            const char *counterpart_field, const char *counterpart,
                                            char tid[UUID_STR_SIZE], struct money *m,
                                            char cid[UUID_STR_SIZE], trpc_status *st)
{
    TRY(uuid_check("transfer_id", transfer_id, tid, st));
    TRY(check_amount(amount, m, st));
    TRY(uuid_check(counterpart_field, counterpart, cid, st));
    TRY(need_account(s, st));
    if (strcmp(cid, s->account_id) == 0)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "source and destination must differ");
    return GRPC_STATUS_OK;
}

grpc_status_code account_decide_transfer_debit(const struct account_state *s,
                                               const char *transfer_id,
                                               const Tally__V1__Money *amount,
                                               const char *destination_account_id,
                                               struct account_event *out, trpc_status *st)
{
    char tid[UUID_STR_SIZE], cid[UUID_STR_SIZE];
    struct money m;

    TRY(check_transfer_step(s, transfer_id, amount, "destination_account_id",
                            destination_account_id, tid, &m, cid, st));
    TRY(need_open(s, st));
    TRY(need_currency(s, &m, st));
    TRY(check_debit(s, &m, "transfer", st));

    event_start(out, TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED);
    memcpy(out->u.transfer_debited.transfer_id, tid, sizeof(tid));
    out->u.transfer_debited.amount = m;
    memcpy(out->u.transfer_debited.counterpart_account_id, cid, sizeof(cid));
    return OK_STATUS(st);
}

grpc_status_code account_decide_transfer_credit(const struct account_state *s,
                                                const char *transfer_id,
                                                const Tally__V1__Money *amount,
                                                const char *source_account_id,
                                                struct account_event *out, trpc_status *st)
{
    char tid[UUID_STR_SIZE], cid[UUID_STR_SIZE];
    struct money m;

    TRY(check_transfer_step(s, transfer_id, amount, "source_account_id", source_account_id, tid, &m,
                            cid, st));
    TRY(need_open(s, st));
    TRY(need_currency(s, &m, st));
    TRY(check_credit(s, &m, st));

    event_start(out, TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED);
    memcpy(out->u.transfer_credited.transfer_id, tid, sizeof(tid));
    out->u.transfer_credited.amount = m;
    memcpy(out->u.transfer_credited.counterpart_account_id, cid, sizeof(cid));
    return OK_STATUS(st);
}

grpc_status_code account_decide_transfer_debit_reverse(const struct account_state *s,
                                                       const char *transfer_id,
                                                       const Tally__V1__Money *amount,
                                                       const char *destination_account_id,
                                                       const char *reason,
                                                       struct account_event *out, trpc_status *st)
{
    char tid[UUID_STR_SIZE], cid[UUID_STR_SIZE];
    struct money m;

    TRY(text_check_optional("reason", reason, st));
    TRY(check_transfer_step(s, transfer_id, amount, "destination_account_id",
                            destination_account_id, tid, &m, cid, st));
    /* no status check: a compensation must not strand the money (account.h) */
    TRY(need_currency(s, &m, st));
    TRY(check_credit(s, &m, st));

    event_start(out, TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED);
    memcpy(out->u.transfer_debit_reversed.transfer_id, tid, sizeof(tid));
    out->u.transfer_debit_reversed.amount = m;
    memcpy(out->u.transfer_debit_reversed.counterpart_account_id, cid, sizeof(cid));
    set_text(out->u.transfer_debit_reversed.reason, TEXT_FIELD_SIZE, reason);
    return OK_STATUS(st);
}

grpc_status_code account_decide_pay(const struct account_state *s, const char *payment_id,
                                    const struct account_payment_info *payment,
                                    const Tally__V1__Money *amount, const char *merchant_reference,
                                    struct account_event *out, trpc_status *st)
{
    char pid[UUID_STR_SIZE];
    struct money m;

    TRY(uuid_check("payment_id", payment_id, pid, st));
    TRY(check_amount(amount, &m, st));
    TRY(text_check_required("merchant_reference", merchant_reference, st));
    TRY(need_account(s, st));
    if (payment != NULL && payment->exists)
        return trpc_status_set(st, GRPC_STATUS_ALREADY_EXISTS, "payment already exists");
    TRY(need_open(s, st));
    TRY(need_currency(s, &m, st));
    TRY(check_debit(s, &m, "payment", st));

    event_start(out, TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE);
    memcpy(out->u.payment_made.payment_id, pid, sizeof(pid));
    out->u.payment_made.amount = m;
    set_text(out->u.payment_made.merchant_reference, TEXT_FIELD_SIZE, merchant_reference);
    return OK_STATUS(st);
}

grpc_status_code account_decide_refund(const struct account_state *s, const char *payment_id,
                                       const struct account_payment_info *payment,
                                       const Tally__V1__Money *amount, struct account_event *out,
                                       trpc_status *st)
{
    char pid[UUID_STR_SIZE];
    struct money m;
    int64_t total;

    TRY(uuid_check("payment_id", payment_id, pid, st));
    TRY(check_amount(amount, &m, st));
    TRY(need_account(s, st));
    /* a frozen account accepts refunds (account.h); a closed one does not */
    TRY(need_not_closed(s, st));
    if (payment == NULL || !payment->exists)
        return trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "payment not found");
    TRY(need_currency(s, &m, st));
    if (strcmp(payment->currency, m.currency) != 0)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                               "currency mismatch: payment is %.3s, amount is %s",
                               payment->currency, m.currency);
    if (!money_add(payment->refunded, m.minor_units, &total) || total > payment->amount)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                               "refund exceeds payment: paid %" PRId64 ", refunded %" PRId64
                               ", refund %" PRId64,
                               payment->amount, payment->refunded, m.minor_units);
    TRY(check_credit(s, &m, st));

    event_start(out, TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED);
    memcpy(out->u.payment_refunded.payment_id, pid, sizeof(pid));
    out->u.payment_refunded.amount = m;
    out->u.payment_refunded.total_refunded = m;
    out->u.payment_refunded.total_refunded.minor_units = total;
    return OK_STATUS(st);
}

grpc_status_code account_decide_freeze(const struct account_state *s, const char *reason,
                                       struct account_event *out, trpc_status *st)
{
    TRY(text_check_optional("reason", reason, st));
    TRY(need_account(s, st));
    TRY(need_not_closed(s, st));
    if (s->status == ACCOUNT_STATUS_FROZEN)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "account is already frozen");

    event_start(out, TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN);
    set_text(out->u.account_frozen.reason, TEXT_FIELD_SIZE, reason);
    return OK_STATUS(st);
}

grpc_status_code account_decide_unfreeze(const struct account_state *s, const char *reason,
                                         struct account_event *out, trpc_status *st)
{
    TRY(text_check_optional("reason", reason, st));
    TRY(need_account(s, st));
    TRY(need_not_closed(s, st));
    if (s->status != ACCOUNT_STATUS_FROZEN)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "account is not frozen");

    event_start(out, TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN);
    set_text(out->u.account_unfrozen.reason, TEXT_FIELD_SIZE, reason);
    return OK_STATUS(st);
}

grpc_status_code account_decide_close(const struct account_state *s, const char *reason,
                                      struct account_event *out, trpc_status *st)
{
    TRY(text_check_optional("reason", reason, st));
    TRY(need_account(s, st));
    TRY(need_not_closed(s, st));
    if (s->balance != 0)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "balance is not zero: %" PRId64,
                               s->balance);

    event_start(out, TALLY__V1__EVENT__PAYLOAD_ACCOUNT_CLOSED);
    set_text(out->u.account_closed.reason, TEXT_FIELD_SIZE, reason);
    return OK_STATUS(st);
}

/* ---- snapshots ---- */

#define SNAPSHOT_SCHEMA 1

static const char *const status_names[] = {
    "ACCOUNT_STATUS_UNSPECIFIED",
    "ACCOUNT_STATUS_OPEN",
    "ACCOUNT_STATUS_FROZEN",
    "ACCOUNT_STATUS_CLOSED",
};

json_t *account_state_to_json(const struct account_state *s)
{
    char balance[24], overdraft[24], version[24];
    int status = (int)s->status;

    if (status < 0 || status > ACCOUNT_STATUS_CLOSED)
        return NULL;
    snprintf(balance, sizeof(balance), "%" PRId64, s->balance);
    snprintf(overdraft, sizeof(overdraft), "%" PRId64, s->overdraft_limit);
    snprintf(version, sizeof(version), "%" PRId64, s->version);
    return json_pack("{s:i, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "schema", SNAPSHOT_SCHEMA,
                     "exists", s->exists ? 1 : 0, "accountId", s->account_id, "owner", s->owner,
                     "currency", s->currency, "balance", balance, "overdraftLimit", overdraft,
                     "status", status_names[status], "version", version);
}

/* A strict decimal int64: optional '-', digits, nothing else. */
static bool parse_int64_text(const char *p, int64_t *out)
{
    bool neg = false;
    uint64_t mag = 0, limit;

    if (*p == '-') {
        neg = true;
        p++;
    }
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (*p == '\0')
        return false;
    for (; *p; p++) {
        unsigned d;

        if (*p < '0' || *p > '9')
            return false;
        d = (unsigned)(*p - '0');
        if (mag > (limit - d) / 10)
            return false;
        mag = mag * 10 + d;
    }
    *out = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    return true;
}

static bool json_int64(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    return json_is_string(v) && parse_int64_text(json_string_value(v), out);
}

static bool json_text(const json_t *v, char *dst, size_t size)
{
    const char *s;
    size_t len;

    if (!json_is_string(v))
        return false;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len >= size || strlen(s) != len || !text_is_utf8(s, len))
        return false;
    memcpy(dst, s, len + 1);
    return true;
}

static grpc_status_code bad_snapshot(trpc_status *st, const char *what)
{
    return trpc_status_set(st, GRPC_STATUS_INTERNAL, "malformed account snapshot: %s", what);
}

grpc_status_code account_state_from_json(const json_t *j, struct account_state *s, trpc_status *st)
{
    struct account_state n;
    const char *status;
    int64_t schema;
    size_t i;

    account_state_init(&n);
    if (!json_is_object(j))
        return bad_snapshot(st, "not an object");
    if (!json_int64(json_object_get(j, "schema"), &schema) || schema != SNAPSHOT_SCHEMA)
        return bad_snapshot(st, "schema");
    if (!json_is_boolean(json_object_get(j, "exists")))
        return bad_snapshot(st, "exists");
    n.exists = json_is_true(json_object_get(j, "exists"));
    if (!json_text(json_object_get(j, "accountId"), n.account_id, sizeof(n.account_id)) ||
        (n.exists ? uuid_normalize(n.account_id, n.account_id) != 0 : n.account_id[0] != '\0'))
        return bad_snapshot(st, "accountId");
    if (!json_text(json_object_get(j, "owner"), n.owner, sizeof(n.owner)) ||
        (n.exists && n.owner[0] == '\0'))
        return bad_snapshot(st, "owner");
    if (!json_text(json_object_get(j, "currency"), n.currency, sizeof(n.currency)) ||
        (n.exists ? !money_currency_is_valid(n.currency) : n.currency[0] != '\0'))
        return bad_snapshot(st, "currency");
    if (!json_int64(json_object_get(j, "overdraftLimit"), &n.overdraft_limit) ||
        n.overdraft_limit < 0)
        return bad_snapshot(st, "overdraftLimit");
    if (!json_int64(json_object_get(j, "balance"), &n.balance))
        return bad_snapshot(st, "balance");
    if (!json_int64(json_object_get(j, "version"), &n.version) || n.version < 0)
        return bad_snapshot(st, "version");
    status = json_string_value(json_object_get(j, "status"));
    for (i = 0; status != NULL && i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (strcmp(status, status_names[i]) == 0)
            break;
    if (status == NULL || i == sizeof(status_names) / sizeof(status_names[0]) ||
        (n.exists != (i != ACCOUNT_STATUS_NONE)))
        return bad_snapshot(st, "status");
    n.status = (enum account_status)i;
    *s = n;
    return OK_STATUS(st);
}
