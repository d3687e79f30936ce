/* ffx.h - the fixture of the fault suite: one fresh migrated database, one
 * tenant with a token and FFX_ACCOUNTS accounts, the three daemons started
 * by the harness (each can be killed and restarted), gRPC channels to the
 * command and query servers, a libpq connection for checks, a client load
 * (Deposit threads with idempotency keys, GetAccount threads) that records
 * every call, and the checks run after a fault:
 *
 *   - every acknowledged Deposit is in the log exactly once (its event, its
 *     outbox row, its operation SUCCEEDED, its idempotency row, all with the
 *     operation id the client was given);
 *   - every unacknowledged one is wholly present or wholly absent;
 *   - retrying each unacknowledged one with its idempotency key leaves
 *     exactly one effect;
 *   - the read model equals the log (balances, versions and ledger lines
 *     per account, and the full fold of tests/projector/fold.h) and the
 *     projector's checkpoint reaches the head of the log.
 *
 * Every function reports a failure on stderr (prefix "ffx: ") and returns
 * an error value; tests assert on it. Main thread only, except the load
 * threads this module runs itself. */
#ifndef TESTS_FAULTS_FFX_H
#define TESTS_FAULTS_FFX_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "tally/v1/command.trpc.h"
#include "tally/v1/query.trpc.h"

#include "harness.h"
#include "trpc.h"

#define FFX_ACCOUNTS 4
#define FFX_ID       40    /* a UUID and its NUL, rounded up */
#define FFX_CALL_MS  8000  /* deadline of every load call */
#define FFX_SLACK_MS 3000  /* a call may return this much after its deadline */
#define FFX_STOP_MS  20000 /* SIGTERM -> exit */

enum ffx_daemon { FFX_CMD = 0, FFX_PROJ, FFX_QRY, FFX_N_DAEMONS };

struct ffx {
    char db[HARNESS_CONNINFO_MAX];
    char tenant_id[HARNESS_ID_MAX];
    char token[HARNESS_TOKEN_MAX];
    char bearer[HARNESS_TOKEN_MAX + 16];
    trpc_metadata md[1];
    struct harness_daemon d[FFX_N_DAEMONS];
    int up[FFX_N_DAEMONS];
    char port[FFX_N_DAEMONS][8]; /* the port of its first start, reused on restarts */
    trpc_channel *cch;           /* CommandService; replaced only while no load runs */
    trpc_channel *qch;           /* QueryService; same */
    PGconn *pg;
    char acct[FFX_ACCOUNTS][FFX_ID];
};

extern struct ffx F;

/* The database, the tenant, the libpq connection, the daemons (want[i] != 0
 * for FFX_CMD, FFX_PROJ, FFX_QRY), the channels, and FFX_ACCOUNTS accounts
 * (needs the command server). Returns 0 or -1. */
int ffx_start(const int want[FFX_N_DAEMONS]);

/* Stops every running daemon (SIGTERM) and closes everything. Returns 0 when
 * each exited 0 with no sanitizer report in its log, else -1 (the log is
 * printed). */
int ffx_stop(void);

/* Starts daemon i (on the port of its first start, so a client's channel
 * finds it again) and, for the command and query servers, opens a new
 * channel to it (the old one is freed). Returns 0 or -1. */
int ffx_daemon_start(enum ffx_daemon i);

/* kill -9 of daemon i. Returns 0 or -1. */
int ffx_daemon_kill9(enum ffx_daemon i);

/* SIGTERM: 0 when it exited 0 with no sanitizer report in its log. */
int ffx_daemon_stop_checked(enum ffx_daemon i);

/* 1 when daemon i's log (so far) holds a sanitizer report. */
int ffx_daemon_log_dirty(enum ffx_daemon i);

/* ---- calls (thread-safe) ---- */

/* Deposit of amount to account acct (0..FFX_ACCOUNTS-1) with idempotency
 * key `key`, also used as the reference. On OK, op (FFX_ID bytes, may be
 * NULL) gets the operation id. */
grpc_status_code ffx_deposit(int acct, int64_t amount, const char *key, int64_t timeout_ms,
                             char *op, trpc_status *st);

/* GetAccount of account acct; on OK *balance gets its balance (may be NULL). */
grpc_status_code ffx_get_account(int acct, int64_t timeout_ms, int64_t *balance, trpc_status *st);

/* GetProjectionStatus; on OK *out gets the reply (free with
 * protobuf_c_message_free_unpacked), else NULL. */
grpc_status_code ffx_projection_status(int64_t timeout_ms, Tally__V1__ProjectionStatus **out,
                                       trpc_status *st);

/* ---- the load ---- */

/* One Deposit the load made. */
struct ffx_op {
    char key[48];
    int acct;
    int64_t amount;
    grpc_status_code code; /* of the last attempt */
    int64_t ms;            /* how long the call took */
    char op[FFX_ID];       /* operation id when acknowledged */
    char msg[256];         /* the status message when not */
};

/* What the load saw, per kind of call. */
struct ffx_tally {
    long ok, unavailable, deadline, other; /* by status */
    int64_t max_ms;                        /* slowest call */
    long late;                             /* calls slower than their deadline + FFX_SLACK_MS */
    grpc_status_code other_code;           /* one of the others, and its message */
    char other_msg[256];
};

struct ffx_load;

/* Starts n_cmd Deposit threads (keys "<tag>-<thread>-<n>", amounts 1..97,
 * accounts round-robin) and n_qry GetAccount threads (every 10th call a
 * GetProjectionStatus), each calling back to back with a pause of pause_ms
 * (0: none) on a failure. They use F.cch / F.qch as they are at each call.
 * Returns NULL on failure. */
struct ffx_load *ffx_load_start(int n_cmd, int n_qry, const char *tag, int pause_ms);

/* Acknowledged Deposits so far (thread-safe count). */
long ffx_load_acked(const struct ffx_load *l);

/* Failed Deposits so far (thread-safe count). */
long ffx_load_failed(const struct ffx_load *l);

/* Successful queries so far. */
long ffx_load_queried(const struct ffx_load *l);

/* Stops and joins the threads. Afterwards the results below are stable. */
void ffx_load_stop(struct ffx_load *l);

/* The Deposits made (in no particular order) and the totals. */
struct ffx_op *ffx_load_ops(struct ffx_load *l, size_t *n);
void ffx_load_tallies(const struct ffx_load *l, struct ffx_tally *cmd, struct ffx_tally *qry);

/* Prints the totals, prefixed with what. */
void ffx_load_print(const struct ffx_load *l, const char *what);

void ffx_load_free(struct ffx_load *l);

/* ---- checks (main thread; SQL on F.pg) ---- */

/* What ffx_check_ops found. */
struct ffx_check {
    long acked;          /* acknowledged ops */
    long acked_bad;      /* acknowledged but not exactly once with its operation id */
    long unacked;        /* not acknowledged */
    long unacked_whole;  /* ... wholly present (event, outbox, operation, idempotency row) */
    long unacked_absent; /* ... wholly absent */
    long torn;           /* partly present: the failure this suite exists to find */
};

/* Checks every op in SQL (see the header comment). The first problems are
 * printed. Returns 0 when acked_bad == 0 and torn == 0, else -1. */
int ffx_check_ops(const struct ffx_op *ops, size_t n, struct ffx_check *c);

/* Retries every unacknowledged op with its key and amount until it is
 * acknowledged (each attempt FFX_CALL_MS; overall timeout_ms), recording the
 * new result in the op. Returns the number still unacknowledged (0 = all). */
long ffx_retry_unacked(struct ffx_op *ops, size_t n, int64_t timeout_ms);

/* The sum of the amounts of every op (what the balances must add up to once
 * all are acknowledged). */
int64_t ffx_ops_sum(const struct ffx_op *ops, size_t n);

/* Waits (up to timeout_ms) until the projector's checkpoint has passed
 * every event and the read model equals the log: per account, rm.accounts
 * balance == the sum of its Deposited amounts, version == its last event's
 * version, and one rm.entries line per Deposited event; then the full fold
 * (tests/projector/fold.h) must match too. Returns 0, or -1 after printing
 * the differences. */
int ffx_wait_projected(int64_t timeout_ms);

/* Sum of the balances of the tenant's accounts in the log (Deposited only),
 * or -1 on an error. */
int64_t ffx_log_sum(void);

/* Runs sql (text parameters, NULL-terminated) on F.pg; the first value as
 * int64, or -1 when none, NULL or an error (printed). */
int64_t ffx_sql_int(const char *sql, ...) __attribute__((sentinel));

/* ---- time ---- */

int64_t ffx_mono_ms(void);
void ffx_sleep_ms(long ms);

#endif /* TESTS_FAULTS_FFX_H */
