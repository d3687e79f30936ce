/* ffx.c - see ffx.h. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "ffx.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fold.h"

struct ffx F;

/* Guards F.cch / F.qch: calls hold it shared, a channel swap exclusive
 * (writer-preferring, so a swap is not starved by back-to-back calls). */
static pthread_rwlock_t chan_lock;
static pthread_once_t chan_once = PTHREAD_ONCE_INIT;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("ffx: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void chan_lock_init(void)
{
    pthread_rwlockattr_t a;

    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&chan_lock, &a);
    pthread_rwlockattr_destroy(&a);
}

/* ---- time ---- */

int64_t ffx_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ffx_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- SQL ---- */

/* F.pg, reset first if the server ended its session (a restart). */
static PGconn *pg(void)
{
    if (PQstatus(F.pg) == CONNECTION_BAD)
        PQreset(F.pg);
    return F.pg;
}

/* PQexecParams on F.pg, once more on a new session if the server had ended
 * the old one (PostgreSQL restarted: the first statement finds out). */
static PGresult *exec(const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(pg(), sql, n, NULL, params, NULL, NULL, 0);

    if (PQstatus(F.pg) == CONNECTION_BAD) {
        PQclear(res);
        res = PQexecParams(pg(), sql, n, NULL, params, NULL, NULL, 0);
    }
    return res;
}

static PGresult *sqlv(const char *sql, va_list ap)
{
    const char *params[16];
    int n = 0;
    const char *p;
    PGresult *res;

    while ((p = va_arg(ap, const char *)) != NULL && n < 16)
        params[n++] = p;
    res = exec(sql, n, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
        say("%s\n  %s", sql, PQresultErrorMessage(res));
    return res;
}

int64_t ffx_sql_int(const char *sql, ...)
{
    va_list ap;
    PGresult *res;
    int64_t v = -1;

    va_start(ap, sql);
    res = sqlv(sql, ap);
    va_end(ap);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0 &&
        !PQgetisnull(res, 0, 0))
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* ---- calls ---- */

static trpc_call_opts opts(trpc_metadata md[1], int64_t timeout_ms)
{
    trpc_call_opts o = {0};

    md[0] = F.md[0];
    o.timeout_ms = timeout_ms;
    o.metadata = md;
    o.n_metadata = 1;
    return o;
}

grpc_status_code ffx_deposit(int acct, int64_t amount, const char *key, int64_t timeout_ms,
                             char *op, trpc_status *st)
{
    Tally__V1__DepositRequest req = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m = TALLY__V1__MONEY__INIT;
    trpc_metadata md[1];
    trpc_call_opts o = opts(md, timeout_ms);
    grpc_status_code code;

    m.minor_units = amount;
    m.currency = (char *)"EUR";
    req.account_id = F.acct[acct];
    req.amount = &m;
    req.reference = (char *)key;
    req.idempotency_key = (char *)key;
    pthread_rwlock_rdlock(&chan_lock);
    code = tally__v1__command_service__trpc_deposit(F.cch, &req, &resp, &o, st);
    pthread_rwlock_unlock(&chan_lock);
    if (code == GRPC_STATUS_OK && op != NULL)
        snprintf(op, FFX_ID, "%s", resp->operation_id);
    if (resp != NULL)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code ffx_get_account(int acct, int64_t timeout_ms, int64_t *balance, trpc_status *st)
{
    Tally__V1__GetAccountRequest req = TALLY__V1__GET_ACCOUNT_REQUEST__INIT;
    Tally__V1__Account *resp = NULL;
    trpc_metadata md[1];
    trpc_call_opts o = opts(md, timeout_ms);
    grpc_status_code code;

    req.account_id = F.acct[acct];
    pthread_rwlock_rdlock(&chan_lock);
    code = tally__v1__query_service__trpc_get_account(F.qch, &req, &resp, &o, st);
    pthread_rwlock_unlock(&chan_lock);
    if (code == GRPC_STATUS_OK && balance != NULL)
        *balance = resp->balance ? resp->balance->minor_units : 0;
    if (resp != NULL)
        tally__v1__account__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code ffx_projection_status(int64_t timeout_ms, Tally__V1__ProjectionStatus **out,
                                       trpc_status *st)
{
    Tally__V1__GetProjectionStatusRequest req = TALLY__V1__GET_PROJECTION_STATUS_REQUEST__INIT;
    trpc_metadata md[1];
    trpc_call_opts o = opts(md, timeout_ms);
    grpc_status_code code;

    *out = NULL;
    pthread_rwlock_rdlock(&chan_lock);
    code = tally__v1__query_service__trpc_get_projection_status(F.qch, &req, out, &o, st);
    pthread_rwlock_unlock(&chan_lock);
    return code;
}

static grpc_status_code open_account(int i, trpc_status *st)
{
    Tally__V1__OpenAccountRequest req = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__OpenAccountResponse *resp = NULL;
    trpc_metadata md[1];
    trpc_call_opts o = opts(md, 20000);
    grpc_status_code code;

    req.owner = (char *)"fault suite";
    req.currency = (char *)"EUR";
    pthread_rwlock_rdlock(&chan_lock);
    code = tally__v1__command_service__trpc_open_account(F.cch, &req, &resp, &o, st);
    pthread_rwlock_unlock(&chan_lock);
    if (code == GRPC_STATUS_OK)
        snprintf(F.acct[i], FFX_ID, "%s", resp->account_id);
    if (resp != NULL)
        tally__v1__open_account_response__free_unpacked(resp, NULL);
    return code;
}

/* ---- daemons ---- */

static const enum harness_daemon_kind kinds[FFX_N_DAEMONS] = {HARNESS_COMMAND, HARNESS_PROJECTOR,
                                                              HARNESS_QUERY};

int ffx_daemon_log_dirty(enum ffx_daemon i)
{
    char *log = harness_daemon_log(&F.d[i]);
    int dirty =
        log != NULL && (strstr(log, "Sanitizer") != NULL || strstr(log, "runtime error") != NULL);

    free(log);
    return dirty;
}

int ffx_daemon_start(enum ffx_daemon i)
{
    char listen[32];
    const char *args[8];
    const char *port;
    int n = 0, rc;

    if (F.up[i]) {
        say("%s already running", harness_daemon_name(kinds[i]));
        return -1;
    }
    if (i == FFX_PROJ) {
        /* a quick safety-net poll: catching up never waits long for NOTIFY */
        args[n++] = "--poll-interval-ms";
        args[n++] = "200";
    }
    if (F.port[i][0] != '\0') {
        snprintf(listen, sizeof(listen), "127.0.0.1:%s", F.port[i]);
        args[n++] = "--listen";
        args[n++] = listen;
    }
    args[n] = NULL;
    rc = harness_daemon_start(&F.d[i], kinds[i], F.db, args, NULL);
    if (rc != 0 && F.port[i][0] != '\0') {
        say("%s: port %s is taken; on any port", harness_daemon_name(kinds[i]), F.port[i]);
        args[n - 2] = NULL;
        rc = harness_daemon_start(&F.d[i], kinds[i], F.db, args, NULL);
    }
    if (rc != 0)
        return -1;
    F.up[i] = 1;
    port = strrchr(F.d[i].addr, ':');
    port = port ? port + 1 : "";
    if (i != FFX_PROJ) {
        trpc_channel **ch = i == FFX_CMD ? &F.cch : &F.qch;

        /* the same address: the channel finds the daemon again by itself */
        if (*ch == NULL || strcmp(port, F.port[i]) != 0) {
            trpc_channel *fresh = trpc_channel_new(F.d[i].addr);

            if (fresh == NULL) {
                say("cannot make a channel to %s", F.d[i].addr);
                return -1;
            }
            pthread_rwlock_wrlock(&chan_lock);
            trpc_channel_free(*ch);
            *ch = fresh;
            pthread_rwlock_unlock(&chan_lock);
        }
    }
    if (F.port[i][0] == '\0')
        snprintf(F.port[i], sizeof(F.port[i]), "%s", port);
    return 0;
}

int ffx_daemon_kill9(enum ffx_daemon i)
{
    if (!F.up[i]) {
        say("%s is not running", harness_daemon_name(kinds[i]));
        return -1;
    }
    F.up[i] = 0;
    if (harness_daemon_kill9(&F.d[i]) != 128 + 9)
        return -1;
    if (ffx_daemon_log_dirty(i)) {
        harness_daemon_print_log(&F.d[i]);
        return -1;
    }
    return 0;
}

int ffx_daemon_stop_checked(enum ffx_daemon i)
{
    int status, dirty;

    if (!F.up[i])
        return 0;
    F.up[i] = 0;
    status = harness_daemon_stop(&F.d[i], FFX_STOP_MS);
    dirty = ffx_daemon_log_dirty(i);
    if (dirty || status != 0) {
        say("%s: exit status %d%s", F.d[i].name, status, dirty ? ", sanitizer report" : "");
        harness_daemon_print_log(&F.d[i]);
    }
    return status == 0 && !dirty ? 0 : -1;
}

int ffx_start(const int want[FFX_N_DAEMONS])
{
    trpc_status st;

    pthread_once(&chan_once, chan_lock_init);
    memset(&F, 0, sizeof(F));
    if (harness_db_create(F.db) != 0 ||
        harness_tenant_token(F.db, "faults", F.tenant_id, F.token) != 0)
        return -1;
    snprintf(F.bearer, sizeof(F.bearer), "Bearer %s", F.token);
    F.md[0].key = "authorization";
    F.md[0].value = F.bearer;
    F.pg = PQconnectdb(F.db);
    if (PQstatus(F.pg) != CONNECTION_OK) {
        say("cannot connect: %s", PQerrorMessage(F.pg));
        return -1;
    }
    for (int i = 0; i < FFX_N_DAEMONS; i++) {
        if (want[i] && ffx_daemon_start((enum ffx_daemon)i) != 0)
            return -1;
    }
    if (!F.up[FFX_CMD]) {
        say("ffx_start needs the command server");
        return -1;
    }
    for (int i = 0; i < FFX_ACCOUNTS; i++) {
        if (open_account(i, &st) != GRPC_STATUS_OK) {
            say("OpenAccount: %d %s", st.code, st.msg);
            return -1;
        }
    }
    return 0;
}

int ffx_stop(void)
{
    int rc = 0;

    pthread_rwlock_wrlock(&chan_lock);
    trpc_channel_free(F.cch);
    trpc_channel_free(F.qch);
    F.cch = F.qch = NULL;
    pthread_rwlock_unlock(&chan_lock);
    for (int i = FFX_N_DAEMONS - 1; i >= 0; i--) {
        if (ffx_daemon_stop_checked((enum ffx_daemon)i) != 0)
            rc = -1;
    }
    PQfinish(F.pg);
    F.pg = NULL;
    return rc;
}

/* ---- the load ---- */

struct worker {
    struct ffx_load *l;
    int idx;
    int is_cmd;
    pthread_t th;
    int started;
    struct ffx_op *ops;
    size_t n, cap;
    struct ffx_tally t;
};

struct ffx_load {
    atomic_int stop;
    atomic_long acked, failed, queried;
    int pause_ms;
    char tag[16];
    int n_workers;
    struct worker *w;
    struct ffx_op *all; /* merged by ffx_load_ops */
    size_t n_all;
    struct ffx_tally cmd, qry;
};

static void count(struct ffx_tally *t, grpc_status_code code, int64_t ms, const trpc_status *st)
{
    if (ms > t->max_ms)
        t->max_ms = ms;
    if (ms > FFX_CALL_MS + FFX_SLACK_MS)
        t->late++;
    if (code == GRPC_STATUS_OK) {
        t->ok++;
    } else if (code == GRPC_STATUS_UNAVAILABLE) {
        t->unavailable++;
    } else if (code == GRPC_STATUS_DEADLINE_EXCEEDED) {
        t->deadline++;
    } else {
        t->other++;
        t->other_code = code;
        snprintf(t->other_msg, sizeof(t->other_msg), "%s", st->msg);
    }
}

static void *cmd_main(void *arg)
{
    struct worker *w = arg;
    struct ffx_load *l = w->l;

    for (size_t n = 0; !atomic_load(&l->stop); n++) {
        struct ffx_op *o;
        trpc_status st = {0};
        int64_t t0;

        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 256;
            struct ffx_op *ops = realloc(w->ops, cap * sizeof(*ops));

            if (ops == NULL)
                break;
            w->ops = ops;
            w->cap = cap;
        }
        o = &w->ops[w->n++];
        memset(o, 0, sizeof(*o));
        snprintf(o->key, sizeof(o->key), "%s-%d-%zu", l->tag, w->idx, n);
        o->acct = (int)((w->idx + n) % FFX_ACCOUNTS);
        o->amount = 1 + (int64_t)((w->idx * 31 + n * 7) % 97);
        t0 = ffx_mono_ms();
        o->code = ffx_deposit(o->acct, o->amount, o->key, FFX_CALL_MS, o->op, &st);
        o->ms = ffx_mono_ms() - t0;
        count(&w->t, o->code, o->ms, &st);
        if (o->code == GRPC_STATUS_OK) {
            atomic_fetch_add(&l->acked, 1);
        } else {
            snprintf(o->msg, sizeof(o->msg), "%s", st.msg);
            atomic_fetch_add(&l->failed, 1);
            if (l->pause_ms > 0)
                ffx_sleep_ms(l->pause_ms);
        }
    }
    return NULL;
}

static void *qry_main(void *arg)
{
    struct worker *w = arg;
    struct ffx_load *l = w->l;

    for (size_t n = 0; !atomic_load(&l->stop); n++) {
        trpc_status st = {0};
        grpc_status_code code;
        int64_t t0 = ffx_mono_ms();

        if (n % 10 == 9) {
            Tally__V1__ProjectionStatus *s = NULL;

            code = ffx_projection_status(FFX_CALL_MS, &s, &st);
            if (s != NULL)
                protobuf_c_message_free_unpacked(&s->base, NULL);
        } else {
            code = ffx_get_account((int)((w->idx + n) % FFX_ACCOUNTS), FFX_CALL_MS, NULL, &st);
        }
        count(&w->t, code, ffx_mono_ms() - t0, &st);
        if (code == GRPC_STATUS_OK) {
            atomic_fetch_add(&l->queried, 1);
        } else if (l->pause_ms > 0) {
            ffx_sleep_ms(l->pause_ms);
        }
    }
    return NULL;
}

struct ffx_load *ffx_load_start(int n_cmd, int n_qry, const char *tag, int pause_ms)
{
    struct ffx_load *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->pause_ms = pause_ms;
    snprintf(l->tag, sizeof(l->tag), "%s", tag);
    l->n_workers = n_cmd + n_qry;
    l->w = calloc((size_t)l->n_workers, sizeof(*l->w));
    if (l->w == NULL) {
        free(l);
        return NULL;
    }
    for (int i = 0; i < l->n_workers; i++) {
        struct worker *w = &l->w[i];

        w->l = l;
        w->idx = i;
        w->is_cmd = i < n_cmd;
        if (pthread_create(&w->th, NULL, w->is_cmd ? cmd_main : qry_main, w) != 0) {
            say("pthread_create failed");
            ffx_load_stop(l);
            ffx_load_free(l);
            return NULL;
        }
        w->started = 1;
    }
    return l;
}

long ffx_load_acked(const struct ffx_load *l)
{
    return atomic_load(&((struct ffx_load *)l)->acked);
}

long ffx_load_failed(const struct ffx_load *l)
{
    return atomic_load(&((struct ffx_load *)l)->failed);
}

long ffx_load_queried(const struct ffx_load *l)
{
    return atomic_load(&((struct ffx_load *)l)->queried);
}

static void merge(struct ffx_tally *into, const struct ffx_tally *t)
{
    into->ok += t->ok;
    into->unavailable += t->unavailable;
    into->deadline += t->deadline;
    into->other += t->other;
    into->late += t->late;
    if (t->max_ms > into->max_ms)
        into->max_ms = t->max_ms;
    if (t->other > 0) {
        into->other_code = t->other_code;
        memcpy(into->other_msg, t->other_msg, sizeof(into->other_msg));
    }
}

void ffx_load_stop(struct ffx_load *l)
{
    size_t total = 0, k = 0;

    if (l == NULL)
        return;
    atomic_store(&l->stop, 1);
    for (int i = 0; i < l->n_workers; i++) {
        if (l->w[i].started)
            pthread_join(l->w[i].th, NULL);
        l->w[i].started = 0;
    }
    memset(&l->cmd, 0, sizeof(l->cmd));
    memset(&l->qry, 0, sizeof(l->qry));
    for (int i = 0; i < l->n_workers; i++) {
        merge(l->w[i].is_cmd ? &l->cmd : &l->qry, &l->w[i].t);
        total += l->w[i].n;
    }
    free(l->all);
    l->all = calloc(total ? total : 1, sizeof(*l->all));
    l->n_all = 0;
    if (l->all == NULL)
        return;
    for (int i = 0; i < l->n_workers; i++) {
        if (l->w[i].n > 0)
            memcpy(&l->all[k], l->w[i].ops, l->w[i].n * sizeof(*l->all));
        k += l->w[i].n;
    }
    l->n_all = total;
}

struct ffx_op *ffx_load_ops(struct ffx_load *l, size_t *n)
{
    *n = l->n_all;
    return l->all;
}

void ffx_load_tallies(const struct ffx_load *l, struct ffx_tally *cmd, struct ffx_tally *qry)
{
    if (cmd != NULL)
        *cmd = l->cmd;
    if (qry != NULL)
        *qry = l->qry;
}

static void print_tally(const char *kind, const struct ffx_tally *t)
{
    fprintf(
        stderr,
        "  %s: %ld ok, %ld unavailable, %ld deadline exceeded, %ld other%s%s%s, slowest %" PRId64
        " ms, %ld late\n",
        kind, t->ok, t->unavailable, t->deadline, t->other, t->other ? " (last: " : "",
        t->other ? t->other_msg : "", t->other ? ")" : "", t->max_ms, t->late);
}

void ffx_load_print(const struct ffx_load *l, const char *what)
{
    fprintf(stderr, "\n  [%s]\n", what);
    print_tally("Deposit", &l->cmd);
    if (l->qry.ok + l->qry.unavailable + l->qry.deadline + l->qry.other > 0)
        print_tally("query", &l->qry);
}

void ffx_load_free(struct ffx_load *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < l->n_workers; i++)
        free(l->w[i].ops);
    free(l->w);
    free(l->all);
    free(l);
}

/* ---- checks ---- */

/* '{k1,k2,...}' (keys are [A-Za-z0-9-] only); malloc'd or NULL. */
static char *key_array(const struct ffx_op *ops, size_t n)
{
    size_t cap = 3, len = 0;
    char *s;

    for (size_t i = 0; i < n; i++)
        cap += strlen(ops[i].key) + 1;
    s = malloc(cap);
    if (s == NULL)
        return NULL;
    s[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "", ops[i].key);
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

int ffx_check_ops(const struct ffx_op *ops, size_t n, struct ffx_check *c)
{
    /* Per key, in the order given: the Deposited events with it as their
     * reference and their outbox rows, the idempotency row, and the
     * operations named by either. */
    static const char sql[] =
        "WITH k AS (SELECT key, ord FROM unnest($2::text[]) WITH ORDINALITY AS k(key, ord)),"
        " ev AS (SELECT e.data->>'reference' AS key, count(*) AS n, count(o.global_position) AS"
        "        nout, min(e.operation_id::text) AS op, max(e.operation_id::text) AS op2"
        "          FROM events e LEFT JOIN outbox o ON o.global_position = e.global_position"
        "         WHERE e.tenant_id = $1::uuid AND e.event_type = 'Deposited' GROUP BY 1),"
        " ik AS (SELECT key, operation_id::text AS op, status_code FROM idempotency_keys"
        "         WHERE tenant_id = $1::uuid)"
        " SELECT k.key, COALESCE(ev.n, 0), COALESCE(ev.nout, 0), (ik.key IS NOT NULL)::int,"
        "        COALESCE(ev.op, ''), COALESCE(ev.op2, ''), COALESCE(ik.op, ''),"
        "        (SELECT count(*) FROM operations p WHERE p.tenant_id = $1::uuid"
        "           AND p.operation_id::text IN (ev.op, ev.op2, ik.op)),"
        "        COALESCE((SELECT string_agg(p.status, ',') FROM operations p"
        "                   WHERE p.tenant_id = $1::uuid"
        "                     AND p.operation_id::text IN (ev.op, ev.op2, ik.op)), ''),"
        "        COALESCE(ik.status_code, -1)"
        "   FROM k LEFT JOIN ev ON ev.key = k.key LEFT JOIN ik ON ik.key = k.key ORDER BY k.ord";
    char *keys = key_array(ops, n);
    const char *params[2] = {F.tenant_id, keys};
    PGresult *res = NULL;
    int printed = 0, rc = -1;
    int64_t orphans;

    memset(c, 0, sizeof(*c));
    if (keys == NULL)
        goto out;
    res = exec(sql, 2, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || (size_t)PQntuples(res) != n) {
        say("check_ops: %s", PQresultErrorMessage(res));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ffx_op *o = &ops[i];
        long ev = atol(PQgetvalue(res, (int)i, 1)), nout = atol(PQgetvalue(res, (int)i, 2));
        long ik = atol(PQgetvalue(res, (int)i, 3)), nops = atol(PQgetvalue(res, (int)i, 7));
        const char *op = PQgetvalue(res, (int)i, 4), *op2 = PQgetvalue(res, (int)i, 5);
        const char *ikop = PQgetvalue(res, (int)i, 6), *status = PQgetvalue(res, (int)i, 8);
        long ikcode = atol(PQgetvalue(res, (int)i, 9));
        int whole = ev == 1 && nout == 1 && ik == 1 && ikcode == 0 && strcmp(op, op2) == 0 &&
                    strcmp(op, ikop) == 0 && nops == 1 && strcmp(status, "SUCCEEDED") == 0;
        int absent = ev == 0 && nout == 0 && ik == 0 && nops == 0;
        int bad = 0;

        if (o->code == GRPC_STATUS_OK) {
            c->acked++;
            if (!whole || strcmp(op, o->op) != 0) {
                c->acked_bad++;
                bad = 1;
            }
        } else {
            c->unacked++;
            if (whole)
                c->unacked_whole++;
            else if (absent)
                c->unacked_absent++;
            else {
                c->torn++;
                bad = 1;
            }
        }
        if (bad && printed++ < 10)
            say("%s (%s, acknowledged op %s): %ld events (ops %s %s), %ld outbox rows, %ld "
                "idempotency rows (op %s, status %ld), %ld operations (%s)",
                o->key, o->code == GRPC_STATUS_OK ? "acknowledged" : "not acknowledged",
                o->op[0] ? o->op : "-", ev, op, op2, nout, ik, ikop, ikcode, nops, status);
    }
    /* and nothing else: no operation without its event */
    orphans = ffx_sql_int("SELECT count(*) FROM operations p WHERE p.tenant_id = $1::uuid"
                          "   AND NOT EXISTS (SELECT 1 FROM events e"
                          "                    WHERE e.operation_id = p.operation_id)",
                          F.tenant_id, NULL);
    if (orphans != 0) {
        say("%" PRId64 " operations without events", orphans);
        c->torn += orphans > 0 ? orphans : 1;
    }
    rc = c->acked_bad == 0 && c->torn == 0 ? 0 : -1;
out:
    PQclear(res);
    free(keys);
    return rc;
}

long ffx_retry_unacked(struct ffx_op *ops, size_t n, int64_t timeout_ms)
{
    int64_t deadline = ffx_mono_ms() + timeout_ms;
    long left = 0;

    for (size_t i = 0; i < n; i++) {
        struct ffx_op *o = &ops[i];

        while (o->code != GRPC_STATUS_OK) {
            trpc_status st = {0};
            int64_t t0 = ffx_mono_ms();

            o->code = ffx_deposit(o->acct, o->amount, o->key, FFX_CALL_MS, o->op, &st);
            o->ms = ffx_mono_ms() - t0;
            if (o->code == GRPC_STATUS_OK)
                break;
            snprintf(o->msg, sizeof(o->msg), "%s", st.msg);
            if (ffx_mono_ms() > deadline) {
                say("retry of %s: %d %s", o->key, o->code, o->msg);
                break;
            }
            ffx_sleep_ms(100);
        }
        if (o->code != GRPC_STATUS_OK)
            left++;
    }
    return left;
}

int64_t ffx_ops_sum(const struct ffx_op *ops, size_t n)
{
    int64_t sum = 0;

    for (size_t i = 0; i < n; i++)
        sum += ops[i].amount;
    return sum;
}

int64_t ffx_log_sum(void)
{
    return ffx_sql_int("SELECT COALESCE(sum((data->'amount'->>'minorUnits')::bigint), 0)"
                       "  FROM events WHERE tenant_id = $1::uuid AND event_type = 'Deposited'",
                       F.tenant_id, NULL);
}

/* Per account: the log's balance, version and Deposited count against
 * rm.accounts and rm.entries; the number of accounts that differ. */
static const char mismatch_sql[] =
    "WITH lg AS (SELECT aggregate_id AS id,"
    "       COALESCE(sum((data->'amount'->>'minorUnits')::bigint)"
    "                FILTER (WHERE event_type = 'Deposited'), 0) AS bal,"
    "       max(version) AS v, count(*) FILTER (WHERE event_type = 'Deposited') AS n"
    "  FROM events WHERE tenant_id = $1::uuid AND aggregate_type = 'account' GROUP BY 1),"
    " rmv AS (SELECT a.account_id AS id, a.balance AS bal, a.version AS v,"
    "       (SELECT count(*) FROM rm.entries en WHERE en.tenant_id = a.tenant_id"
    "           AND en.account_id = a.account_id) AS n"
    "  FROM rm.accounts a WHERE a.tenant_id = $1::uuid)"
    " SELECT count(*) FROM lg FULL JOIN rmv USING (id)"
    "  WHERE lg.bal IS DISTINCT FROM rmv.bal OR lg.v IS DISTINCT FROM rmv.v"
    "     OR lg.n IS DISTINCT FROM rmv.n";

/* Events past the checkpoint (-1 without a checkpoint row). */
static const char behind_sql[] =
    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM projector_checkpoints WHERE name = 'rm')"
    "            THEN -1"
    "       ELSE (SELECT count(*) FROM events e, projector_checkpoints c WHERE c.name = 'rm'"
    "               AND (e.tx_id, e.global_position) > (c.tx_id, c.global_position)) END";

int ffx_wait_projected(int64_t timeout_ms)
{
    int64_t deadline = ffx_mono_ms() + timeout_ms, behind = -1, mismatched = -1;
    size_t rows = 0;

    for (;;) {
        behind = ffx_sql_int(behind_sql, NULL);
        mismatched = behind == 0 ? ffx_sql_int(mismatch_sql, F.tenant_id, NULL) : -1;
        if (behind == 0 && mismatched == 0)
            break;
        if (ffx_mono_ms() > deadline) {
            say("not projected after %" PRId64 " ms: %" PRId64
                " events past the checkpoint, %" PRId64 " accounts differ",
                timeout_ms, behind, mismatched);
            return -1;
        }
        ffx_sleep_ms(100);
    }
    if (fold_compare(pg(), "rm", &rows) != 0) {
        say("the read model differs from the fold of the log");
        return -1;
    }
    return rows > 0 ? 0 : -1;
}
