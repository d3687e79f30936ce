/* qfix.c - see qfix.h. */
#include "qfix.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>

struct qfix Q;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("qfix: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- time ---- */

int64_t qfix_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t qfix_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void qfix_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- daemons ---- */

static const char *const projector_args[] = {"--max-attempts", "2", "--retry-backoff-ms", "20",
                                             NULL};

int qfix_start(void)
{
    memset(&Q, 0, sizeof(Q));
    if (harness_db_create(Q.db) != 0)
        return -1;
    Q.pg = PQconnectdb(Q.db);
    if (PQstatus(Q.pg) != CONNECTION_OK) {
        say("cannot connect: %s", PQerrorMessage(Q.pg));
        return -1;
    }
    if (harness_daemon_start(&Q.cmd, HARNESS_COMMAND, Q.db, NULL, NULL) != 0)
        return -1;
    Q.cmd_up = 1;
    if (qfix_projector_start() != 0)
        return -1;
    if (harness_daemon_start(&Q.qry, HARNESS_QUERY, Q.db, NULL, NULL) != 0)
        return -1;
    Q.qry_up = 1;
    Q.cch = trpc_channel_new(Q.cmd.addr);
    Q.qch = trpc_channel_new(Q.qry.addr);
    return Q.cch && Q.qch ? 0 : -1;
}

int qfix_daemon_stop_checked(struct harness_daemon *d, int *up)
{
    char *log;
    int status, dirty;

    if (!*up)
        return 0;
    *up = 0;
    status = harness_daemon_stop(d, QFIX_STOP_MS);
    if (d->stop_ms > 3000)
        fprintf(stderr, "(%s took %ld ms to exit) ", d->name, d->stop_ms);
    log = harness_daemon_log(d);
    dirty = log == NULL || strstr(log, "Sanitizer") != NULL || strstr(log, "runtime error") != NULL;
    if (dirty || status != 0) {
        say("%s: exit status %d%s", d->name, status, dirty ? ", sanitizer report in its log" : "");
        harness_daemon_print_log(d);
    }
    free(log);
    return status == 0 && !dirty ? 0 : -1;
}

int qfix_stop(void)
{
    int rc = 0;

    trpc_channel_free(Q.cch);
    trpc_channel_free(Q.qch);
    Q.cch = Q.qch = NULL;
    if (qfix_daemon_stop_checked(&Q.qry, &Q.qry_up) != 0)
        rc = -1;
    if (qfix_daemon_stop_checked(&Q.proj, &Q.proj_up) != 0)
        rc = -1;
    if (qfix_daemon_stop_checked(&Q.cmd, &Q.cmd_up) != 0)
        rc = -1;
    PQfinish(Q.pg);
    Q.pg = NULL;
    return rc;
}

int qfix_projector_start(void)
{
    if (Q.proj_up) {
        say("projector already running");
        return -1;
    }
    if (harness_daemon_start(&Q.proj, HARNESS_PROJECTOR, Q.db, projector_args, NULL) != 0)
        return -1;
    Q.proj_up = 1;
    return 0;
}

int qfix_projector_stop(void)
{
    return qfix_daemon_stop_checked(&Q.proj, &Q.proj_up);
}

int qfix_projector_kill9(void)
{
    if (!Q.proj_up) {
        say("projector not running");
        return -1;
    }
    Q.proj_up = 0;
    return harness_daemon_kill9(&Q.proj) == 128 + 9 ? 0 : -1;
}

int qfix_tenant(struct qtenant *t, const char *name)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    if (harness_tenant_token(Q.db, t->name, t->id, t->token) != 0)
        return -1;
    snprintf(t->bearer, sizeof(t->bearer), "Bearer %s", t->token);
    t->md[0].key = "authorization";
    t->md[0].value = t->bearer;
    t->opts.timeout_ms = QFIX_CALL_MS;
    t->opts.metadata = t->md;
    t->opts.n_metadata = 1;
    return 0;
}

trpc_call_opts qfix_opts(const struct qtenant *t, trpc_metadata md[2], int64_t timeout_ms,
                         const char *corr)
{
    trpc_call_opts o = {0};

    md[0] = t->md[0];
    md[1].key = "x-correlation-id";
    md[1].value = corr;
    o.timeout_ms = timeout_ms;
    o.metadata = md;
    o.n_metadata = corr ? 2 : 1;
    return o;
}

/* ---- CommandService ---- */

static void money(Tally__V1__Money *m, int64_t amount, const char *currency)
{
    tally__v1__money__init(m);
    m->minor_units = amount;
    m->currency = (char *)currency;
}

static void fill(struct qres *r, const Tally__V1__CommandResponse *c)
{
    if (r == NULL || c == NULL)
        return;
    snprintf(r->op, sizeof(r->op), "%s", c->operation_id);
    r->version = c->version;
    if (c->position) {
        r->tx_id = c->position->tx_id;
        r->gp = c->position->global_position;
    }
    snprintf(r->corr, sizeof(r->corr), "%s", c->correlation_id);
}

static void clear(struct qres *r)
{
    if (r)
        memset(r, 0, sizeof(*r));
}

grpc_status_code qc_open(const struct qtenant *t, const char *owner, const char *currency,
                         int64_t overdraft, const char *corr, struct qres *r, trpc_status *st)
{
    Tally__V1__OpenAccountRequest req = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__OpenAccountResponse *resp = NULL;
    trpc_metadata md[2];
    trpc_call_opts o = qfix_opts(t, md, QFIX_CALL_MS, corr);
    grpc_status_code code;

    clear(r);
    req.owner = (char *)owner;
    req.currency = (char *)currency;
    req.overdraft_limit = overdraft;
    code = tally__v1__command_service__trpc_open_account(Q.cch, &req, &resp, &o, st);
    if (code == GRPC_STATUS_OK && r) {
        snprintf(r->id, sizeof(r->id), "%s", resp->account_id);
        fill(r, resp->result);
    }
    if (resp)
        tally__v1__open_account_response__free_unpacked(resp, NULL);
    return code;
}

static grpc_status_code finish(grpc_status_code code, Tally__V1__CommandResponse *resp,
                               struct qres *r)
{
    if (code == GRPC_STATUS_OK)
        fill(r, resp);
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code qc_deposit(const struct qtenant *t, const char *id, int64_t amount,
                            const char *currency, const char *reference, const char *corr,
                            struct qres *r, trpc_status *st)
{
    Tally__V1__DepositRequest req = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m;
    trpc_metadata md[2];
    trpc_call_opts o = qfix_opts(t, md, QFIX_CALL_MS, corr);

    clear(r);
    money(&m, amount, currency);
    req.account_id = (char *)id;
    req.amount = &m;
    req.reference = (char *)(reference ? reference : "");
    grpc_status_code code = tally__v1__command_service__trpc_deposit(Q.cch, &req, &resp, &o, st);

    return finish(code, resp, r);
}

grpc_status_code qc_withdraw(const struct qtenant *t, const char *id, int64_t amount,
                             const char *currency, const char *reference, const char *corr,
                             struct qres *r, trpc_status *st)
{
    Tally__V1__WithdrawRequest req = TALLY__V1__WITHDRAW_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m;
    trpc_metadata md[2];
    trpc_call_opts o = qfix_opts(t, md, QFIX_CALL_MS, corr);

    clear(r);
    money(&m, amount, currency);
    req.account_id = (char *)id;
    req.amount = &m;
    req.reference = (char *)(reference ? reference : "");
    grpc_status_code code = tally__v1__command_service__trpc_withdraw(Q.cch, &req, &resp, &o, st);

    return finish(code, resp, r);
}

grpc_status_code qc_pay(const struct qtenant *t, const char *id, int64_t amount,
                        const char *currency, const char *merchant_reference, const char *corr,
                        struct qres *r, trpc_status *st)
{
    Tally__V1__PayRequest req = TALLY__V1__PAY_REQUEST__INIT;
    Tally__V1__PayResponse *resp = NULL;
    Tally__V1__Money m;
    trpc_metadata md[2];
    trpc_call_opts o = qfix_opts(t, md, QFIX_CALL_MS, corr);
    grpc_status_code code;

    clear(r);
    money(&m, amount, currency);
    req.account_id = (char *)id;
    req.amount = &m;
    req.merchant_reference = (char *)merchant_reference;
    code = tally__v1__command_service__trpc_pay(Q.cch, &req, &resp, &o, st);
    if (code == GRPC_STATUS_OK && r) {
        snprintf(r->id, sizeof(r->id), "%s", resp->payment_id);
        fill(r, resp->result);
    }
    if (resp)
        tally__v1__pay_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code qc_refund(const struct qtenant *t, const char *id, const char *payment_id,
                           int64_t amount, const char *currency, const char *corr, struct qres *r,
                           trpc_status *st)
{
    Tally__V1__RefundRequest req = TALLY__V1__REFUND_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m;
    trpc_metadata md[2];
    trpc_call_opts o = qfix_opts(t, md, QFIX_CALL_MS, corr);

    clear(r);
    money(&m, amount, currency);
    req.account_id = (char *)id;
    req.payment_id = (char *)payment_id;
    req.amount = &m;
    grpc_status_code code = tally__v1__command_service__trpc_refund(Q.cch, &req, &resp, &o, st);

    return finish(code, resp, r);
}

grpc_status_code qc_status(const struct qtenant *t, enum qc_status_cmd which, const char *id,
                           const char *corr, struct qres *r, trpc_status *st)
{
    Tally__V1__CommandResponse *resp = NULL;
    trpc_metadata md[2];
    trpc_call_opts o = qfix_opts(t, md, QFIX_CALL_MS, corr);
    grpc_status_code code;

    clear(r);
    if (which == QC_FREEZE) {
        Tally__V1__FreezeAccountRequest req = TALLY__V1__FREEZE_ACCOUNT_REQUEST__INIT;

        req.account_id = (char *)id;
        req.reason = (char *)"test freeze";
        code = tally__v1__command_service__trpc_freeze_account(Q.cch, &req, &resp, &o, st);
    } else if (which == QC_UNFREEZE) {
        Tally__V1__UnfreezeAccountRequest req = TALLY__V1__UNFREEZE_ACCOUNT_REQUEST__INIT;

        req.account_id = (char *)id;
        req.reason = (char *)"test unfreeze";
        code = tally__v1__command_service__trpc_unfreeze_account(Q.cch, &req, &resp, &o, st);
    } else {
        Tally__V1__CloseAccountRequest req = TALLY__V1__CLOSE_ACCOUNT_REQUEST__INIT;

        req.account_id = (char *)id;
        req.reason = (char *)"test close";
        code = tally__v1__command_service__trpc_close_account(Q.cch, &req, &resp, &o, st);
    }
    return finish(code, resp, r);
}

grpc_status_code qc_transfer(const struct qtenant *t, const char *src, const char *dst,
                             int64_t amount, const char *currency, int wait, const char *corr,
                             struct qres *r, trpc_status *st)
{
    Tally__V1__TransferRequest req = TALLY__V1__TRANSFER_REQUEST__INIT;
    Tally__V1__TransferResponse *resp = NULL;
    Tally__V1__Money m;
    trpc_metadata md[2];
    trpc_call_opts o = qfix_opts(t, md, QFIX_CALL_MS, corr);
    grpc_status_code code;

    clear(r);
    money(&m, amount, currency);
    req.source_account_id = (char *)src;
    req.destination_account_id = (char *)dst;
    req.amount = &m;
    req.reference = (char *)"test transfer";
    req.wait = wait != 0;
    code = tally__v1__command_service__trpc_transfer(Q.cch, &req, &resp, &o, st);
    if (code == GRPC_STATUS_OK && r) {
        snprintf(r->id, sizeof(r->id), "%s", resp->transfer_id);
        r->status = (int)resp->status;
        snprintf(r->reason, sizeof(r->reason), "%s", resp->failure_reason);
        fill(r, resp->result);
    }
    if (resp)
        tally__v1__transfer_response__free_unpacked(resp, NULL);
    return code;
}

Tally__V1__Position *qres_pos(const struct qres *r, Tally__V1__Position *p)
{
    tally__v1__position__init(p);
    p->tx_id = r->tx_id;
    p->global_position = r->gp;
    return p;
}

/* ---- SQL ---- */

static PGresult *qsqlv(const char *sql, va_list ap)
{
    const char *params[16];
    int n = 0;
    const char *p;
    PGresult *res;

    while ((p = va_arg(ap, const char *)) != NULL && n < 16)
        params[n++] = p;
    res = PQexecParams(Q.pg, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        say("%s\n  %s", sql, PQresultErrorMessage(res));
        CU_FAIL("query failed");
    }
    return res;
}

PGresult *qsql(const char *sql, ...)
{
    va_list ap;
    PGresult *res;

    va_start(ap, sql);
    res = qsqlv(sql, ap);
    va_end(ap);
    return res;
}

int64_t qsql_int(const char *sql, ...)
{
    va_list ap;
    PGresult *res;
    int64_t v = -1;

    va_start(ap, sql);
    res = qsqlv(sql, ap);
    va_end(ap);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

char *qsql_str(char *buf, size_t len, const char *sql, ...)
{
    va_list ap;
    PGresult *res;

    va_start(ap, sql);
    res = qsqlv(sql, ap);
    va_end(ap);
    buf[0] = '\0';
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
        snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return buf;
}
