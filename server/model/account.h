/* account.h - the account aggregate as pure functions.
 *
 *   decide: (state, command arguments) -> exactly ONE event, or an error
 *   evolve: (state, event) -> next state
 *
 * No I/O, no clock, no randomness, no mutable globals: every function here is
 * thread-safe and deterministic. Ids (account, transfer, payment) are made
 * by the caller (uuid.h) and passed in.
 *
 * Events. decide writes a `struct account_event`: plain data with fixed-size
 * buffers (no pointers), safe to copy, owned by the caller. To store or send
 * it, account_event_to_proto() points a Tally__V1__Event's payload at it; to
 * apply an event read back from storage (decoded into a Tally__V1__Event by
 * the JSON codec, or unpacked), account_evolve_proto() copies its payload
 * out first, so the state never points into the message.
 *
 * Rules (every violation is an error and decide writes nothing):
 *  - Input first (INVALID_ARGUMENT): ids are UUIDs (stored in lower case);
 *    amounts are present and > 0 with a valid ISO 4217 currency; owner and
 *    merchant reference 1..256 bytes, reference and reason 0..256 bytes,
 *    all valid UTF-8 (NULL = "").
 *  - Then state: the account must exist (NOT_FOUND "account not found") except
 *    for Open (ALREADY_EXISTS); a closed account rejects every command
 *    (FAILED_PRECONDITION "account is closed"), with one exception, the
 *    compensation TransferDebitReverse (below); a frozen account rejects
 *    Deposit, Withdraw, TransferDebit, TransferCredit and Pay
 *    (FAILED_PRECONDITION "account is frozen").
 *  - The amount's currency must be the account's (FAILED_PRECONDITION
 *    "currency mismatch: account is EUR, amount is USD").
 *  - The balance never goes below -overdraft_limit (FAILED_PRECONDITION
 *    "insufficient funds: balance 100, overdraft limit 0, withdrawal 150";
 *    the last word is "withdrawal", "transfer" or "payment").
 *  - Every sum is overflow-checked; a balance that would leave int64 is
 *    FAILED_PRECONDITION "balance would overflow".
 *
 * Decisions the API left open:
 *  - TransferDebitReverse (the saga's compensation) is accepted on an open,
 *    frozen AND closed account: it gives back money this account lost in a
 *    transfer, and refusing it would make that money vanish. On a closed
 *    account the balance then becomes non-zero: the money stays visible
 *    there (operators can see a closed account with a balance); the account
 *    stays closed. It can only fail for a missing account, a currency
 *    mismatch or an overflow. The saga, not this state, guarantees that it
 *    reverses a real debit once (the state keeps no transfer list).
 *  - Refund is accepted on a frozen account (money coming back from a
 *    merchant is not the owner moving money; a freeze blocks the owner), and
 *    rejected on a closed one.
 *  - Close is accepted on a frozen account (at zero balance).
 *
 * Every decide function: s and out must not be NULL; st may be NULL. Returns
 * GRPC_STATUS_OK and fills *out, or an error code with st set (then *out is
 * unspecified). The new event's stream version is s->version + 1.
 */
#ifndef SERVER_MODEL_ACCOUNT_H
#define SERVER_MODEL_ACCOUNT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "tally/v1/events.pb-c.h"

#include "money.h"
#include "tally_limits.h"
#include "text.h"
#include "trpc.h"
#include "uuid.h"

#define ACCOUNT_AGGREGATE_TYPE "account"
/* Schema version of every account event payload (Event.event_version). */
#define ACCOUNT_EVENT_VERSION 1

/* Same values as tally.v1.AccountStatus. */
enum account_status {
    ACCOUNT_STATUS_NONE = 0, /* the account does not exist */
    ACCOUNT_STATUS_OPEN = 1,
    ACCOUNT_STATUS_FROZEN = 2,
    ACCOUNT_STATUS_CLOSED = 3,
};

/* The state of one account stream. Plain data, fixed size, copyable. */
struct account_state {
    bool exists;                    /* an AccountOpened was applied */
    char account_id[UUID_STR_SIZE]; /* lower case */
    char owner[TEXT_FIELD_SIZE];
    char currency[MONEY_CODE_SIZE];
    int64_t balance;         /* minor units, >= -overdraft_limit */
    int64_t overdraft_limit; /* >= 0 */
    enum account_status status;
    int64_t version; /* events applied; 0 when none */
};

/* Sets *s to "no such account, version 0". */
void account_state_init(struct account_state *s);

/* What the caller found in the event log about one payment id on this
 * account (PaymentMade / PaymentRefunded events carrying that paymentId; see
 * account_payment_info_apply). The state does not keep payments. */
struct account_payment_info {
    bool exists;                    /* a PaymentMade with this id exists */
    int64_t amount;                 /* the payment's amount (minor units) */
    int64_t refunded;               /* sum of its refunds so far */
    char currency[MONEY_CODE_SIZE]; /* the payment's currency */
};

void account_payment_info_init(struct account_payment_info *p);

/* Folds one event of the account's stream into *p when it concerns the
 * payment payment_id (PaymentMade sets exists/amount/currency,
 * PaymentRefunded raises refunded to its total_refunded); any other event
 * leaves *p unchanged. Returns OK, or INTERNAL for a malformed event or an
 * overflow (then *p is unchanged). */
grpc_status_code account_payment_info_apply(struct account_payment_info *p, const char *payment_id,
                                            const Tally__V1__Event *ev, trpc_status *st);

/* ---- events ---- */

/* One account event: type is the Tally__V1__Event payload case (one of the
 * account cases: ACCOUNT_OPENED .. ACCOUNT_CLOSED), u the matching member.
 * Strings are NUL-terminated inside the struct. */
struct account_event {
    Tally__V1__Event__PayloadCase type;
    union {
        struct {
            char account_id[UUID_STR_SIZE];
            char owner[TEXT_FIELD_SIZE];
            char currency[MONEY_CODE_SIZE];
            int64_t overdraft_limit;
        } account_opened;
        struct {
            struct money amount;
            char reference[TEXT_FIELD_SIZE];
        } deposited, withdrawn;
        struct {
            char transfer_id[UUID_STR_SIZE];
            struct money amount;
            char counterpart_account_id[UUID_STR_SIZE];
        } transfer_debited, transfer_credited;
        struct {
            char transfer_id[UUID_STR_SIZE];
            struct money amount;
            char counterpart_account_id[UUID_STR_SIZE];
            char reason[TEXT_FIELD_SIZE];
        } transfer_debit_reversed;
        struct {
            char payment_id[UUID_STR_SIZE];
            struct money amount;
            char merchant_reference[TEXT_FIELD_SIZE];
        } payment_made;
        struct {
            char payment_id[UUID_STR_SIZE];
            struct money amount;
            struct money total_refunded;
        } payment_refunded;
        struct {
            char reason[TEXT_FIELD_SIZE];
        } account_frozen, account_unfrozen, account_closed;
    } u;
};

/* Storage for the protobuf-c messages of one event (see to_proto). */
struct account_event_pb {
    union {
        Tally__V1__AccountOpened account_opened;
        Tally__V1__Deposited deposited;
        Tally__V1__Withdrawn withdrawn;
        Tally__V1__TransferDebited transfer_debited;
        Tally__V1__TransferCredited transfer_credited;
        Tally__V1__TransferDebitReversed transfer_debit_reversed;
        Tally__V1__PaymentMade payment_made;
        Tally__V1__PaymentRefunded payment_refunded;
        Tally__V1__AccountFrozen account_frozen;
        Tally__V1__AccountUnfrozen account_unfrozen;
        Tally__V1__AccountClosed account_closed;
    } msg;
    Tally__V1__Money amount;
    Tally__V1__Money total_refunded;
};

/* True for the payload cases of the account stream. */
bool account_event_type_is_account(Tally__V1__Event__PayloadCase type);

/* The event_type name of an account payload case ("Deposited", ...: the
 * message name), static storage; NULL for any other case. */
const char *account_event_type_name(Tally__V1__Event__PayloadCase type);

/* The account payload case of an event_type name (exact, case-sensitive),
 * or TALLY__V1__EVENT__PAYLOAD__NOT_SET. */
Tally__V1__Event__PayloadCase account_event_type_from_name(const char *name);

/* Points env's payload at ev: sets env->payload_case, the matching union
 * member (-> pb->msg), env->event_type (static name) and env->event_version;
 * the other envelope fields are left alone. The messages in *pb are
 * initialised here and their strings point into *ev (borrowed, cast from
 * const; never modify them). So *ev and *pb must stay alive and in place
 * while env is used (pack, JSON encode), and env's payload must not be
 * freed with free_unpacked. Nothing to free afterwards. */
void account_event_to_proto(const struct account_event *ev, struct account_event_pb *pb,
                            Tally__V1__Event *env);

/* Copies env's payload (an account case) into *ev, checking its shape:
 * strings within their limits and valid UTF-8, ids valid UUIDs (lower-cased),
 * amounts present with a valid currency. env is not retained. Returns OK, or
 * INTERNAL ("malformed <EventType> event: ...") for anything else, e.g.
 * a transfer payload or PAYLOAD__NOT_SET. */
grpc_status_code account_event_from_proto(const Tally__V1__Event *env, struct account_event *ev,
                                          trpc_status *st);

/* ---- evolve ---- */

/* Applies one event: AccountOpened needs a non-existent account; any other
 * event needs an existing one, a currency equal to the account's and
 * amounts > 0; balances are overflow-checked. Business limits (overdraft,
 * status) are NOT re-checked: stored events are facts. Increments
 * s->version. Returns OK, or INTERNAL when the event cannot follow this
 * state (corrupt or misrouted stream); then *s is unchanged. */
grpc_status_code account_evolve(struct account_state *s, const struct account_event *ev,
                                trpc_status *st);

/* account_event_from_proto + account_evolve. When env->version is non-zero
 * it must equal s->version + 1 (else INTERNAL). env is not retained. */
grpc_status_code account_evolve_proto(struct account_state *s, const Tally__V1__Event *env,
                                      trpc_status *st);

/* ---- decide (see the rules at the top) ---- */

/* AccountOpened. account_id a UUID, owner 1..256 bytes, currency an active
 * ISO 4217 code, overdraft_limit >= 0 (INVALID_ARGUMENT); s must not exist
 * (ALREADY_EXISTS "account already exists"). */
grpc_status_code account_decide_open(const struct account_state *s, const char *account_id,
                                     const char *owner, const char *currency,
                                     int64_t overdraft_limit, struct account_event *out,
                                     trpc_status *st);

/* Deposited. amount NULL is INVALID_ARGUMENT "amount is required".
 * Open accounts only. */
grpc_status_code account_decide_deposit(const struct account_state *s,
                                        const Tally__V1__Money *amount, const char *reference,
                                        struct account_event *out, trpc_status *st);

/* Withdrawn. Open accounts only; balance - amount >= -overdraft_limit. */
grpc_status_code account_decide_withdraw(const struct account_state *s,
                                         const Tally__V1__Money *amount, const char *reference,
                                         struct account_event *out, trpc_status *st);

/* TransferDebited (saga step on the source). Like a withdrawal ("transfer"
 * in the insufficient-funds message). destination_account_id is a UUID,
 * different from s->account_id (INVALID_ARGUMENT). */
grpc_status_code account_decide_transfer_debit(const struct account_state *s,
                                               const char *transfer_id,
                                               const Tally__V1__Money *amount,
                                               const char *destination_account_id,
                                               struct account_event *out, trpc_status *st);

/* TransferCredited (saga step on the destination). Open accounts only
 * (FAILED_PRECONDITION when frozen or closed), same currency, no overflow.
 * source_account_id a UUID different from s->account_id. */
grpc_status_code account_decide_transfer_credit(const struct account_state *s,
                                                const char *transfer_id,
                                                const Tally__V1__Money *amount,
                                                const char *source_account_id,
                                                struct account_event *out, trpc_status *st);

/* TransferDebitReversed (compensation on the source): credits amount back.
 * Accepted when open, frozen or closed (see the top); fails only for bad
 * input, a missing account, a currency mismatch or an overflow. reason
 * 0..256 bytes. */
grpc_status_code account_decide_transfer_debit_reverse(const struct account_state *s,
                                                       const char *transfer_id,
                                                       const Tally__V1__Money *amount,
                                                       const char *destination_account_id,
                                                       const char *reason,
                                                       struct account_event *out, trpc_status *st);

/* PaymentMade. payment_id a UUID; merchant_reference 1..256 bytes; payment
 * describes what the log holds for payment_id on this account (NULL = none):
 * payment->exists is ALREADY_EXISTS "payment already exists". Otherwise
 * like a withdrawal ("payment" in the insufficient-funds message). */
grpc_status_code account_decide_pay(const struct account_state *s, const char *payment_id,
                                    const struct account_payment_info *payment,
                                    const Tally__V1__Money *amount, const char *merchant_reference,
                                    struct account_event *out, trpc_status *st);

/* PaymentRefunded: credits amount back. payment (NULL = none) must exist
 * (NOT_FOUND "payment not found"); amount's currency must equal the
 * payment's and the account's (FAILED_PRECONDITION); refunded + amount must
 * not exceed the payment (FAILED_PRECONDITION "refund exceeds payment:
 * paid 100, refunded 80, refund 30"). Accepted on open and frozen accounts,
 * not on closed ones. The event's total_refunded is refunded + amount. */
grpc_status_code account_decide_refund(const struct account_state *s, const char *payment_id,
                                       const struct account_payment_info *payment,
                                       const Tally__V1__Money *amount, struct account_event *out,
                                       trpc_status *st);

/* AccountFrozen: only when open ("account is already frozen",
 * "account is closed"). */
grpc_status_code account_decide_freeze(const struct account_state *s, const char *reason,
                                       struct account_event *out, trpc_status *st);

/* AccountUnfrozen: only when frozen ("account is not frozen",
 * "account is closed"). */
grpc_status_code account_decide_unfreeze(const struct account_state *s, const char *reason,
                                         struct account_event *out, trpc_status *st);

/* AccountClosed: open or frozen, at a zero balance ("balance is not zero:
 * 100"). */
grpc_status_code account_decide_close(const struct account_state *s, const char *reason,
                                      struct account_event *out, trpc_status *st);

/* ---- snapshots ---- */

/* The state as a JSON object for the snapshots table (new reference, NULL on
 * OOM): {"schema":1,"exists":true,"accountId":"...","owner":"...",
 * "currency":"EUR","balance":"1234","overdraftLimit":"0",
 * "status":"ACCOUNT_STATUS_OPEN","version":"7"} (int64 as decimal strings,
 * as proto3 JSON does, so no reader loses precision). */
json_t *account_state_to_json(const struct account_state *s);

/* Reads account_state_to_json's form back (int64 fields also accepted as
 * JSON integers). Round trip is exact. Returns OK, or INTERNAL
 * ("malformed account snapshot: ...") with *s unchanged. */
grpc_status_code account_state_from_json(const json_t *j, struct account_state *s, trpc_status *st);

#endif /* SERVER_MODEL_ACCOUNT_H */
