/* rmapply.h - the read-model projection of one event (migrations/0002):
 * what an event changes in rm.accounts, rm.entries, rm.transfers and
 * rm.usage_daily, as one SQL statement.
 *
 * rmapply_decode is pure: it validates the stored payload with the domain's
 * event mapping (account_event_from_proto / transfer_event_from_proto) and
 * says what changes. rmapply_send queues that change as ONE prepared
 * statement on a connection in pipeline mode (the caller's transaction);
 * rmapply_check reads its result. rm.usage_daily is written once per batch
 * (rmapply_usage_*), with the batch's sums. The statements use unqualified table names: the
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

/* Prepares the projection's statements on conn (once per connection,
 * before rmapply_send / rmapply_usage_send). Returns OK or the error. */
grpc_status_code rmapply_prepare(PGconn *conn, trpc_status *st);

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

/* ---- rm.usage_daily, summed per batch ---- */

__extension__ typedef unsigned __int128 rmapply_i128; /* sums of int64 amounts */

struct rmapply_usage_row {
    char tenant_id[UUID_STR_SIZE];
    char day[11]; /* "YYYY-MM-DD", UTC */
    char event_type[48];
    char currency[MONEY_CODE_SIZE]; /* "" for events without an amount */
    int64_t count;
    rmapply_i128 volume;
};

/* The usage rows of the events applied in one transaction. Zero-initialise;
 * reuse with rmapply_usage_reset; free with rmapply_usage_cleanup. */
struct rmapply_usage {
    size_t n, cap;
    struct rmapply_usage_row *v;
};

void rmapply_usage_reset(struct rmapply_usage *u);
void rmapply_usage_cleanup(struct rmapply_usage *u);

/* Counts ev (decoded into *c) once in its row. Returns 0, or -1 on OOM. */
int rmapply_usage_add(struct rmapply_usage *u, const struct rawlog_event *ev,
                      const struct rmapply_change *c);

/* Queues (pipeline mode, the caller's transaction) one statement adding the
 * rows of u (n >= 1) to rm.usage_daily; one COMMAND_OK result. Returns OK,
 * INTERNAL (OOM) or UNAVAILABLE. */
grpc_status_code rmapply_usage_send(PGconn *conn, const struct rmapply_usage *u, trpc_status *st);

#endif /* PROJECTOR_RMAPPLY_H */
