/* ptest.h - shared fixtures of the projector tests: a fresh database with
 * a tenant and token, tally-command and tally-projector daemons, a blocking
 * CommandService client, SQL helpers, and waits for the projections.
 *
 * Every function reports a failure on stderr (prefix "ptest: ") and returns
 * an error value; tests assert on it. Not thread-safe unless noted. */
#ifndef TESTS_PROJECTOR_PTEST_H
#define TESTS_PROJECTOR_PTEST_H

#include <stdint.h>

#include <libpq-fe.h>

#include "tally/v1/command.trpc.h"

#include "harness.h"
#include "trpc.h"

#define PTEST_MAX_PROJECTORS 4
#define PTEST_ID             37 /* a UUID and its NUL */

struct ptest {
    char db[HARNESS_CONNINFO_MAX];
    char tenant_id[HARNESS_ID_MAX];
    char token[HARNESS_TOKEN_MAX];
    char bearer[HARNESS_TOKEN_MAX + 16];
    struct harness_daemon command;
    int command_up;
    struct harness_daemon projector[PTEST_MAX_PROJECTORS];
    int projector_up[PTEST_MAX_PROJECTORS];
    trpc_channel *ch;
    PGconn *conn;
};

/* A fresh database with tenant "acme" and its token, tally-command started,
 * a channel to it and a libpq connection. Returns 0 or -1. */
int ptest_setup(struct ptest *t);

/* Stops every daemon (each must exit 0), closes everything. Returns 0 when
 * every daemon stopped cleanly, else -1. */
int ptest_teardown(struct ptest *t);

/* Starts projector slot i (0..3) with extra args (NULL-terminated, may be
 * NULL). Returns 0 or -1. */
int ptest_projector_start(struct ptest *t, int i, const char *const *args);

/* Stops projector slot i with SIGTERM; returns its exit status. */
int ptest_projector_stop(struct ptest *t, int i);

/* kill -9 of projector slot i. */
void ptest_projector_kill9(struct ptest *t, int i);

/* Runs `tally-projector --db <db> <args...>` to completion (e.g.
 * --rebuild). Returns its exit status or -1. */
int ptest_projector_run(struct ptest *t, const char *const *args, int timeout_ms);

/* Runs `tally-admin --db <db> <args...>`; *out (may be NULL) gets stdout
 * (free()). Returns its exit status or -1. */
int ptest_admin(struct ptest *t, const char *const *args, char **out);

/* ---- CommandService (the tenant's token; 10 s deadline) ---- */

grpc_status_code ptest_open(struct ptest *t, const char *currency, int64_t overdraft,
                            char id[PTEST_ID], trpc_status *st);
grpc_status_code ptest_deposit(struct ptest *t, const char *id, int64_t amount,
                               const char *currency, const char *reference, trpc_status *st);
/* A deposit with an idempotency key (NULL = none). */
grpc_status_code ptest_deposit_key(struct ptest *t, const char *id, int64_t amount,
                                   const char *currency, const char *reference, const char *key,
                                   trpc_status *st);
grpc_status_code ptest_withdraw(struct ptest *t, const char *id, int64_t amount,
                                const char *currency, trpc_status *st);
/* payment_id (may be NULL) receives the new payment's id */
grpc_status_code ptest_pay(struct ptest *t, const char *id, int64_t amount, const char *currency,
                           char payment_id[PTEST_ID], trpc_status *st);
grpc_status_code ptest_refund(struct ptest *t, const char *id, const char *payment_id,
                              int64_t amount, const char *currency, trpc_status *st);
grpc_status_code ptest_freeze(struct ptest *t, const char *id, trpc_status *st);
grpc_status_code ptest_unfreeze(struct ptest *t, const char *id, trpc_status *st);
grpc_status_code ptest_close(struct ptest *t, const char *id, trpc_status *st);

/* A transfer; with wait, *status gets the final OperationStatus and reason
 * (>= 257 bytes, may be NULL) the failure reason. transfer_id may be NULL. */
grpc_status_code ptest_transfer(struct ptest *t, const char *src, const char *dst, int64_t amount,
                                const char *currency, int wait, int timeout_ms,
                                char transfer_id[PTEST_ID], int *status, char *reason,
                                trpc_status *st);

/* ---- SQL on t->conn ---- */

/* PQexecParams with text parameters (n values, may be NULL); NULL-safe
 * result (PQclear it). Logs errors. */
PGresult *ptest_sql(struct ptest *t, const char *sql, int n, const char *const *values);

/* Runs sql expecting a command or rows; returns 0 or -1 (logged). */
int ptest_exec(struct ptest *t, const char *sql);

/* The first column of the first row as an int64 (NULL -> dflt); -1 on
 * error (logged) with *out unchanged. */
int ptest_int(struct ptest *t, const char *sql, int n, const char *const *values, int64_t *out);

/* ---- waiting for the projector ---- */

/* Until checkpoint `name` has reached the last event visible behind the
 * fence at the time of the call. Returns 0, or -1 on timeout. */
int ptest_wait_checkpoint(struct ptest *t, const char *name, int timeout_ms);

/* Until no transfer operation is PENDING and both checkpoints ("rm" and
 * "saga") are at the end of the log. Returns 0 or -1. */
int ptest_wait_quiet(struct ptest *t, int timeout_ms);

/* Monotonic milliseconds. */
long ptest_now_ms(void);

void ptest_sleep_ms(long ms);

#endif /* TESTS_PROJECTOR_PTEST_H */
