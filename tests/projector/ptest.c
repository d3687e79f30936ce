/* ptest.c - see ptest.h. */
#include "ptest.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CALL_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 15000

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("ptest: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

long ptest_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ptest_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int ptest_setup(struct ptest *t)
{
    memset(t, 0, sizeof(*t));
    if (harness_db_create(t->db) != 0 ||
        harness_tenant_token(t->db, "acme", t->tenant_id, t->token) != 0)
        return -1;
    snprintf(t->bearer, sizeof(t->bearer), "Bearer %s", t->token);
    t->conn = PQconnectdb(t->db);
    if (PQstatus(t->conn) != CONNECTION_OK) {
        say("connect: %s", PQerrorMessage(t->conn));
        return -1;
    }
    if (harness_daemon_start(&t->command, HARNESS_COMMAND, t->db, NULL, NULL) != 0)
        return -1;
    t->command_up = 1;
    t->ch = trpc_channel_new(t->command.addr);
    return t->ch ? 0 : -1;
}

int ptest_teardown(struct ptest *t)
{
    int rc = 0;

    trpc_channel_free(t->ch);
    t->ch = NULL;
    for (int i = 0; i < PTEST_MAX_PROJECTORS; i++)
        if (t->projector_up[i] && ptest_projector_stop(t, i) != 0)
            rc = -1;
    if (t->command_up && harness_daemon_stop(&t->command, STOP_TIMEOUT_MS) != 0)
        rc = -1;
    t->command_up = 0;
    PQfinish(t->conn);
    t->conn = NULL;
    return rc;
}

int ptest_projector_start(struct ptest *t, int i, const char *const *args)
{
    if (harness_daemon_start(&t->projector[i], HARNESS_PROJECTOR, t->db, args, NULL) != 0)
        return -1;
    t->projector_up[i] = 1;
    return 0;
}

int ptest_projector_stop(struct ptest *t, int i)
{
    if (!t->projector_up[i])
        return t->projector[i].exit_status;
    t->projector_up[i] = 0;
    return harness_daemon_stop(&t->projector[i], STOP_TIMEOUT_MS);
}

void ptest_projector_kill9(struct ptest *t, int i)
{
    if (!t->projector_up[i])
        return;
    t->projector_up[i] = 0;
    harness_daemon_kill9(&t->projector[i]);
}

static int run_tool(const char *path, struct ptest *t, const char *const *args, int timeout_ms,
                    char **out)
{
    const char *argv[32];
    size_t n = 0;
    char *err = NULL;
    int rc;

    if (path == NULL) {
        say("tool not built");
        return -1;
    }
    argv[n++] = path;
    argv[n++] = "--db";
    argv[n++] = t->db;
    for (size_t i = 0; args && args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    rc = harness_run(argv, NULL, timeout_ms, out, &err);
    if (rc != 0)
        say("%s %s: exit %d: %s", path, args && args[0] ? args[0] : "", rc, err ? err : "");
    free(err);
    return rc;
}

int ptest_projector_run(struct ptest *t, const char *const *args, int timeout_ms)
{
    return run_tool(harness_daemon_path(HARNESS_PROJECTOR), t, args, timeout_ms, NULL);
}

int ptest_admin(struct ptest *t, const char *const *args, char **out)
{
    return run_tool(harness_admin_path(), t, args, 60000, out);
}

/* ---- CommandService ---- */

static trpc_call_opts call_opts(struct ptest *t, trpc_metadata *md, int timeout_ms)
{
    trpc_call_opts o = {0};

    md->key = "authorization";
    md->value = t->bearer;
    o.timeout_ms = timeout_ms;
    o.metadata = md;
    o.n_metadata = 1;
    return o;
}

grpc_status_code ptest_open(struct ptest *t, const char *currency, int64_t overdraft,
                            char id[PTEST_ID], trpc_status *st)
{
    Tally__V1__OpenAccountRequest req = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__OpenAccountResponse *resp = NULL;
    trpc_metadata md;
    trpc_call_opts o = call_opts(t, &md, CALL_TIMEOUT_MS);
    grpc_status_code code;

    req.owner = (char *)"ptest owner";
    req.currency = (char *)currency;
    req.overdraft_limit = overdraft;
    code = tally__v1__command_service__trpc_open_account(t->ch, &req, &resp, &o, st);
    if (code == GRPC_STATUS_OK)
        snprintf(id, PTEST_ID, "%s", resp->account_id);
    if (resp)
        tally__v1__open_account_response__free_unpacked(resp, NULL);
    return code;
}

static void money(Tally__V1__Money *m, int64_t amount, const char *currency)
{
    tally__v1__money__init(m);
    m->minor_units = amount;
    m->currency = (char *)currency;
}

grpc_status_code ptest_deposit(struct ptest *t, const char *id, int64_t amount,
                               const char *currency, const char *reference, trpc_status *st)
{
    return ptest_deposit_key(t, id, amount, currency, reference, NULL, st);
}

grpc_status_code ptest_deposit_key(struct ptest *t, const char *id, int64_t amount,
                                   const char *currency, const char *reference, const char *key,
                                   trpc_status *st)
{
    Tally__V1__DepositRequest req = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m;
    trpc_metadata md;
    trpc_call_opts o = call_opts(t, &md, CALL_TIMEOUT_MS);
    grpc_status_code code;

    money(&m, amount, currency);
    req.account_id = (char *)id;
    req.amount = &m;
    req.reference = (char *)(reference ? reference : "");
    if (key)
        req.idempotency_key = (char *)key;
    code = tally__v1__command_service__trpc_deposit(t->ch, &req, &resp, &o, st);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code ptest_withdraw(struct ptest *t, const char *id, int64_t amount,
                                const char *currency, trpc_status *st)
{
    Tally__V1__WithdrawRequest req = TALLY__V1__WITHDRAW_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m;
    trpc_metadata md;
    trpc_call_opts o = call_opts(t, &md, CALL_TIMEOUT_MS);
    grpc_status_code code;

    money(&m, amount, currency);
    req.account_id = (char *)id;
    req.amount = &m;
    req.reference = (char *)"cash";
    code = tally__v1__command_service__trpc_withdraw(t->ch, &req, &resp, &o, st);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code ptest_pay(struct ptest *t, const char *id, int64_t amount, const char *currency,
                           char payment_id[PTEST_ID], trpc_status *st)
{
    Tally__V1__PayRequest req = TALLY__V1__PAY_REQUEST__INIT;
    Tally__V1__PayResponse *resp = NULL;
    Tally__V1__Money m;
    trpc_metadata md;
    trpc_call_opts o = call_opts(t, &md, CALL_TIMEOUT_MS);
    grpc_status_code code;

    money(&m, amount, currency);
    req.account_id = (char *)id;
    req.amount = &m;
    req.merchant_reference = (char *)"shop";
    code = tally__v1__command_service__trpc_pay(t->ch, &req, &resp, &o, st);
    if (code == GRPC_STATUS_OK && payment_id)
        snprintf(payment_id, PTEST_ID, "%s", resp->payment_id);
    if (resp)
        tally__v1__pay_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code ptest_refund(struct ptest *t, const char *id, const char *payment_id,
                              int64_t amount, const char *currency, trpc_status *st)
{
    Tally__V1__RefundRequest req = TALLY__V1__REFUND_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m;
    trpc_metadata md;
    trpc_call_opts o = call_opts(t, &md, CALL_TIMEOUT_MS);
    grpc_status_code code;

    money(&m, amount, currency);
    req.account_id = (char *)id;
    req.payment_id = (char *)payment_id;
    req.amount = &m;
    code = tally__v1__command_service__trpc_refund(t->ch, &req, &resp, &o, st);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code ptest_freeze(struct ptest *t, const char *id, trpc_status *st)
{
    Tally__V1__FreezeAccountRequest req = TALLY__V1__FREEZE_ACCOUNT_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    trpc_metadata md;
    trpc_call_opts o = call_opts(t, &md, CALL_TIMEOUT_MS);
    grpc_status_code code;

    req.account_id = (char *)id;
    req.reason = (char *)"ptest";
    code = tally__v1__command_service__trpc_freeze_account(t->ch, &req, &resp, &o, st);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code ptest_unfreeze(struct ptest *t, const char *id, trpc_status *st)
{
    Tally__V1__UnfreezeAccountRequest req = TALLY__V1__UNFREEZE_ACCOUNT_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    trpc_metadata md;
    trpc_call_opts o = call_opts(t, &md, CALL_TIMEOUT_MS);
    grpc_status_code code;

    req.account_id = (char *)id;
    req.reason = (char *)"ptest";
    code = tally__v1__command_service__trpc_unfreeze_account(t->ch, &req, &resp, &o, st);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code ptest_close(struct ptest *t, const char *id, trpc_status *st)
{
    Tally__V1__CloseAccountRequest req = TALLY__V1__CLOSE_ACCOUNT_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    trpc_metadata md;
    trpc_call_opts o = call_opts(t, &md, CALL_TIMEOUT_MS);
    grpc_status_code code;

    req.account_id = (char *)id;
    req.reason = (char *)"ptest";
    code = tally__v1__command_service__trpc_close_account(t->ch, &req, &resp, &o, st);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code ptest_transfer(struct ptest *t, const char *src, const char *dst, int64_t amount,
                                const char *currency, int wait, int timeout_ms,
                                char transfer_id[PTEST_ID], int *status, char *reason,
                                trpc_status *st)
{
    Tally__V1__TransferRequest req = TALLY__V1__TRANSFER_REQUEST__INIT;
    Tally__V1__TransferResponse *resp = NULL;
    Tally__V1__Money m;
    trpc_metadata md;
    trpc_call_opts o = call_opts(t, &md, timeout_ms > 0 ? timeout_ms : CALL_TIMEOUT_MS);
    grpc_status_code code;

    money(&m, amount, currency);
    req.source_account_id = (char *)src;
    req.destination_account_id = (char *)dst;
    req.amount = &m;
    req.reference = (char *)"ptest transfer";
    req.wait = wait != 0;
    code = tally__v1__command_service__trpc_transfer(t->ch, &req, &resp, &o, st);
    if (code == GRPC_STATUS_OK) {
        if (transfer_id)
            snprintf(transfer_id, PTEST_ID, "%s", resp->transfer_id);
        if (status)
            *status = (int)resp->status;
        if (reason)
            snprintf(reason, 257, "%s", resp->failure_reason ? resp->failure_reason : "");
    }
    if (resp)
        tally__v1__transfer_response__free_unpacked(resp, NULL);
    return code;
}

/* ---- SQL ---- */

PGresult *ptest_sql(struct ptest *t, const char *sql, int n, const char *const *values)
{
    PGresult *res = PQexecParams(t->conn, sql, n, NULL, values, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(res);

    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)
        say("sql failed: %s\n  %s", PQresultErrorMessage(res), sql);
    return res;
}

int ptest_exec(struct ptest *t, const char *sql)
{
    PGresult *res = ptest_sql(t, sql, 0, NULL);
    ExecStatusType s = PQresultStatus(res);

    PQclear(res);
    return s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK ? 0 : -1;
}

int ptest_int(struct ptest *t, const char *sql, int n, const char *const *values, int64_t *out)
{
    PGresult *res = ptest_sql(t, sql, n, values);
    int rc = -1;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1 && PQnfields(res) >= 1) {
        if (!PQgetisnull(res, 0, 0))
            *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        rc = 0;
    }
    PQclear(res);
    return rc;
}

/* 1 when checkpoint `name` is at or past the last event visible now. */
static int checkpoint_done(struct ptest *t, const char *name)
{
    static const char sql[] =
        "SELECT count(*) FROM events e"
        " WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot())"
        "   AND (e.tx_id, e.global_position) >"
        "       (SELECT c.tx_id, c.global_position FROM projector_checkpoints c"
        "         WHERE c.name = $1)";
    const char *values[1] = {name};
    int64_t n = -1;

    if (ptest_int(t, sql, 1, values, &n) != 0)
        return 0;
    return n == 0;
}

int ptest_wait_checkpoint(struct ptest *t, const char *name, int timeout_ms)
{
    long deadline = ptest_now_ms() + timeout_ms;

    while (!checkpoint_done(t, name)) {
        if (ptest_now_ms() > deadline) {
            say("checkpoint %s did not reach the end of the log in %d ms", name, timeout_ms);
            return -1;
        }
        ptest_sleep_ms(20);
    }
    return 0;
}

int ptest_wait_quiet(struct ptest *t, int timeout_ms)
{
    long deadline = ptest_now_ms() + timeout_ms;

    for (;;) {
        int64_t pending = -1;

        if (ptest_int(t, "SELECT count(*) FROM operations WHERE status = 'PENDING'", 0, NULL,
                      &pending) == 0 &&
            pending == 0 && checkpoint_done(t, "saga") && checkpoint_done(t, "rm"))
            return 0;
        if (ptest_now_ms() > deadline) {
            say("projections not quiet after %d ms (%lld pending operations)", timeout_ms,
                (long long)pending);
            return -1;
        }
        ptest_sleep_ms(20);
    }
}
