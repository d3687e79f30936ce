/* rmapply.h - the read-model projection of one event (migrations/0002):
 * what an event changes in rm.accounts, rm.entries, rm.transfers and
 * rm.usage_daily, as one SQL statement.
 *
 * rmapply_decode is pure: it validates the stored payload with the domain's
 * event mapping (account_event_from_proto / transfer_event_from_proto) and
 * says what changes. rmapply_send queues that change as ONE statement on a
 * connection in pipeline mode (the caller's transaction); rmapply_check
 * reads its result. The statements use unqualified table names: the
 * connection's search_path picks the schema (rm, or rm_rebuild during a
 * rebuild), and must also contain public.
 *
 * Guards: a balance or status change applies only to the account row at
 * the previous version and in the event's currency, an AccountOpened only
 * to a missing row; anything else is a projection error of that event (a
 * corrupt or misrouted stream, or a skipped event). rm.transfers rows are
 * filled column by column (see 0002), so they do not depend on the order of
 * events of different streams. */
#ifndef PROJECTOR_RMAPPLY_H
#define PROJECTOR_RMAPPLY_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "money.h"
#include "rawlog.h"
#include "text.h"
#include "trpc.h"
#include "uuid.h"

enum rmapply_kind {
    RMAPPLY_OPEN = 1, /* AccountOpened: a new accounts row */
    RMAPPLY_BALANCE,  /* a ledger line and the balance */
    RMAPPLY_STATUS,   /* AccountFrozen / Unfrozen / Closed */
    RMAPPLY_TRANSFER, /* TransferRequested / Completed / Failed */
};

/* What one event changes. Strings are NUL-terminated; "" = NULL in SQL for
 * the optional ids. */
struct rmapply_change {
    enum rmapply_kind kind;
    /* RMAPPLY_OPEN */
    char owner[TEXT_FIELD_SIZE];
    int64_t overdraft_limit;
    /* RMAPPLY_OPEN, RMAPPLY_BALANCE: the account's currency */
    char currency[MONEY_CODE_SIZE];
    /* RMAPPLY_BALANCE */
    const char *entry_kind; /* "DEPOSIT" ... (static) */
    int64_t delta;          /* signed */
    char counterpart_account_id[UUID_STR_SIZE];
    char payment_id[UUID_STR_SIZE];
    char reference[TEXT_FIELD_SIZE];
    /* RMAPPLY_STATUS */
    const char *status; /* "OPEN", "FROZEN", "CLOSED" (static) */
    /* the transfers row (RMAPPLY_TRANSFER, and BALANCE of transfer events):
       transfer_id "" = no transfers change */
    char transfer_id[UUID_STR_SIZE];
    char source_account_id[UUID_STR_SIZE];
    char destination_account_id[UUID_STR_SIZE];
    int64_t transfer_amount; /* 0 = unknown here */
    char transfer_currency[MONEY_CODE_SIZE];
    char transfer_reference[TEXT_FIELD_SIZE];
    bool requested, debited, credited, reversed, completed, failed;
    char failure_reason[TEXT_FIELD_SIZE];
    bool compensated;
    /* rm.usage_daily: currency "" and volume 0 for events without an amount */
    char usage_currency[MONEY_CODE_SIZE];
    int64_t usage_volume;
};

/* Decodes ev into *out. Returns OK, or INTERNAL with a message naming the
 * problem (unknown event type, malformed payload, payload that does not
 * belong to its stream): a projection error of this event. Pure. */
grpc_status_code rmapply_decode(const struct rawlog_event *ev, struct rmapply_change *out,
                                trpc_status *st);

/* Queues the statement of ev (decoded into *c by rmapply_decode) on conn
 * (pipeline mode, inside the caller's transaction). Returns OK (one result
 * to read with rmapply_check), or UNAVAILABLE when libpq could not queue it
 * (connection trouble). */
grpc_status_code rmapply_send(PGconn *conn, const struct rawlog_event *ev,
                              const struct rmapply_change *c, trpc_status *st);

/* Checks the result of ev's statement: OK, or INTERNAL (the guard refused:
 * the row is missing, at another version or in another currency) or the
 * database error as pg_to_grpc_status (logged). res may be NULL. */
grpc_status_code rmapply_check(const PGresult *res, const struct rawlog_event *ev, trpc_status *st);

#endif /* PROJECTOR_RMAPPLY_H */
