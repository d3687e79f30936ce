/* test_command.c - the CommandService over real gRPC against the real
 * tally-command daemon (started by the harness on a fresh migrated
 * database per suite), with every effect checked in the database through
 * libpq: the events, outbox, operations, idempotency_keys and snapshots rows.
 *
 * Suites: every command's happy path; every error (status code, an
 * actionable message, and no row written); idempotency (byte-identical
 * replays, stored business failures, 16 concurrent retries); 32 concurrent
 * writers against 4 accounts (invariants folded from the log) and the
 * outbox; snapshots and a restart; the doorbell (LISTEN tally_outbox).
 * The last test of every suite stops the daemon: it must exit 0, and its log
 * must hold no sanitizer report (the ASan build runs the ASan daemon).
 *
 * CUnit asserts run on the main thread only: client threads record what
 * they saw and the main thread checks it. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <libpq-fe.h>

#include "tally/v1/command.trpc.h"

#include "harness.h"
#include "trpc.h"

#define CALL_MS    15000     /* deadline of every call (ASan builds are slow) */
#define STOP_MS    20000     /* SIGTERM -> exit */
#define TOKEN_NAME "default" /* the name tally-admin gives harness tokens */
#define UUID_LEN   36

#define OK GRPC_STATUS_OK

#define CMD_PATH(m) "/tally.v1.CommandService/" m

/* ---- the fixture: one database, two tenants, one daemon per suite ---- */

struct tenant {
    char name[32];
    char id[HARNESS_ID_MAX];
    char token[HARNESS_TOKEN_MAX];
    char bearer[HARNESS_TOKEN_MAX + 16];
    trpc_metadata md[1];
    trpc_call_opts opts;
};

static struct {
    char db[HARNESS_CONNINFO_MAX];
    struct tenant a, b;
    struct harness_daemon d;
    int running;
    trpc_channel *ch;
    PGconn *pg;
} fx;

static void tenant_opts(struct tenant *t)
{
    snprintf(t->bearer, sizeof(t->bearer), "Bearer %s", t->token);
    t->md[0].key = "authorization";
    t->md[0].value = t->bearer;
    t->opts.timeout_ms = CALL_MS;
    t->opts.metadata = t->md;
    t->opts.n_metadata = 1;
}

static int daemon_start(void)
{
    if (harness_daemon_start(&fx.d, HARNESS_COMMAND, fx.db, NULL, NULL) != 0)
        return -1;
    fx.running = 1;
    fx.ch = trpc_channel_new(fx.d.addr);
    return fx.ch ? 0 : -1;
}

static int suite_init(void)
{
    memset(&fx, 0, sizeof(fx));
    snprintf(fx.a.name, sizeof(fx.a.name), "acme");
    snprintf(fx.b.name, sizeof(fx.b.name), "globex");
    if (harness_db_create(fx.db) != 0 ||
        harness_tenant_token(fx.db, fx.a.name, fx.a.id, fx.a.token) != 0 ||
        harness_tenant_token(fx.db, fx.b.name, fx.b.id, fx.b.token) != 0)
        return -1;
    tenant_opts(&fx.a);
    tenant_opts(&fx.b);
    fx.pg = PQconnectdb(fx.db);
    if (PQstatus(fx.pg) != CONNECTION_OK) {
        fprintf(stderr, "test_command: cannot connect: %s", PQerrorMessage(fx.pg));
        return -1;
    }
    return daemon_start();
}

static int suite_cleanup(void)
{
    trpc_channel_free(fx.ch);
    fx.ch = NULL;
    if (fx.running)
        harness_daemon_stop(&fx.d, STOP_MS);
    fx.running = 0;
    PQfinish(fx.pg);
    fx.pg = NULL;
    return 0;
}

#define CHECK(line, cond)                                                                          \
    CU_assertImplementation((cond), (unsigned)(line), #cond, __FILE__, "", CU_FALSE)

/* Stops the daemon: exit status 0 and no sanitizer report in its log. */
static void daemon_stop_checked(int line)
{
    char *log;
    int status, dirty;

    trpc_channel_free(fx.ch);
    fx.ch = NULL;
    CHECK(line, fx.running);
    if (!fx.running)
        return;
    status = harness_daemon_stop(&fx.d, STOP_MS);
    fx.running = 0;
    CHECK(line, status == 0);
    if (fx.d.stop_ms > 3000) /* a hint for whoever wonders where the time goes */
        fprintf(stderr, "(%s took %ld ms to exit) ", fx.d.name, fx.d.stop_ms);
    log = harness_daemon_log(&fx.d);
    CHECK(line, log != NULL);
    dirty =
        log != NULL && (strstr(log, "Sanitizer") != NULL || strstr(log, "runtime error") != NULL);
    CHECK(line, !dirty);
    if (dirty || status != 0)
        harness_daemon_print_log(&fx.d);
    free(log);
}

static void test_daemon_exits_cleanly(void)
{
    daemon_stop_checked(__LINE__);
}

/* ---- small things ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Canonical lower-case UUID text. */
static int is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != UUID_LEN)
        return 0;
    for (int i = 0; i < UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* A UUIDv7 (version 7, RFC 4122 variant) whose time is within ten minutes
 * of now. */
static int is_uuid_v7(const char *s)
{
    char hex[13];
    int64_t ms;

    if (!is_uuid(s) || s[14] != '7' || strchr("89ab", s[19]) == NULL)
        return 0;
    memcpy(hex, s, 8);
    memcpy(hex + 8, s + 9, 4);
    hex[12] = '\0';
    ms = strtoll(hex, NULL, 16);
    return llabs(ms - now_ms()) < 10 * 60 * 1000;
}

/* A new caller-chosen id (version 4 layout), unique in this process. */
static void fresh_id(char out[UUID_LEN + 1])
{
    static unsigned counter;

    snprintf(out, UUID_LEN + 1, "%08x-0000-4000-8000-%012x", (unsigned)getpid(), ++counter);
}

static char *repeat(char *buf, const char *unit, size_t times)
{
    size_t n = strlen(unit);

    for (size_t i = 0; i < times; i++)
        memcpy(buf + i * n, unit, n);
    buf[times * n] = '\0';
    return buf;
}

/* The channel calls go to: the suite's daemon, or the one via() chose. */
static trpc_channel *ch_override;

static trpc_channel *chan(void)
{
    return ch_override ? ch_override : fx.ch;
}

/* ---- the database ---- */

static PGresult *dbqv(const char *sql, va_list ap)
{
    const char *params[16];
    int n = 0;
    const char *p;
    PGresult *res;

    while ((p = va_arg(ap, const char *)) != NULL && n < 16)
        params[n++] = p;
    res = PQexecParams(fx.pg, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "\ntest_command: %s\n  %s", sql, PQresultErrorMessage(res));
        CU_FAIL("query failed");
    }
    return res;
}

/* Runs sql with text parameters (NULL-terminated list); PQclear the result. */
static PGresult *dbq(const char *sql, ...) __attribute__((sentinel));
static PGresult *dbq(const char *sql, ...)
{
    va_list ap;
    PGresult *res;

    va_start(ap, sql);
    res = dbqv(sql, ap);
    va_end(ap);
    return res;
}

/* The first value as int64; -1 when there is none or it is NULL. */
static int64_t db_int(const char *sql, ...) __attribute__((sentinel));
static int64_t db_int(const char *sql, ...)
{
    va_list ap;
    PGresult *res;
    int64_t v = -1;

    va_start(ap, sql);
    res = dbqv(sql, ap);
    va_end(ap);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* The first value as text into buf ("" when none). */
static char *db_str(char *buf, size_t len, const char *sql, ...) __attribute__((sentinel));
static char *db_str(char *buf, size_t len, const char *sql, ...)
{
    va_list ap;
    PGresult *res;

    va_start(ap, sql);
    res = dbqv(sql, ap);
    va_end(ap);
    buf[0] = '\0';
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
        snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return buf;
}

/* Rows of every table a command writes. */
struct counts {
    int64_t events, outbox, operations, idem, snapshots;
};

static void counts_get(struct counts *c)
{
    PGresult *res = dbq("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM outbox),"
                        "       (SELECT count(*) FROM operations),"
                        "       (SELECT count(*) FROM idempotency_keys),"
                        "       (SELECT count(*) FROM snapshots)",
                        NULL);

    memset(c, 0, sizeof(*c));
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        c->events = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        c->outbox = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        c->operations = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        c->idem = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        c->snapshots = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    }
    PQclear(res);
}

/* The version of a stream (0 when empty). */
static int64_t stream_version(const struct tenant *t, const char *type, const char *id)
{
    return db_int("SELECT COALESCE(max(version), 0) FROM events"
                  " WHERE tenant_id = $1::uuid AND aggregate_type = $2 AND aggregate_id = $3::uuid",
                  t->id, type, id, NULL);
}

/* ---- calls ---- */

/* How a call is made: idempotency key, expected_version, metadata (NULL:
 * tenant A's bearer token). NULL = all defaults. */
struct k {
    const char *key;
    int has_expected;
    int64_t expected;
    const trpc_call_opts *opts;
};

static const trpc_call_opts *opts_of(const struct k *k)
{
    return k && k->opts ? k->opts : &fx.a.opts;
}

static char *key_of(const struct k *k)
{
    return (char *)(k && k->key ? k->key : "");
}

static Google__Protobuf__Int64Value *expected_of(const struct k *k, Google__Protobuf__Int64Value *v)
{
    if (k == NULL || !k->has_expected)
        return NULL;
    google__protobuf__int64_value__init(v);
    v->value = k->expected;
    return v;
}

/* Money of units in cur; cur NULL = no amount at all. */
static Tally__V1__Money *money(Tally__V1__Money *m, int64_t units, const char *cur)
{
    if (cur == NULL)
        return NULL;
    tally__v1__money__init(m);
    m->minor_units = units;
    m->currency = (char *)cur;
    return m;
}

static char *str(const char *s)
{
    return (char *)(s ? s : "");
}

/* Metadata: a tenant's bearer token plus an x-correlation-id. */
struct copts {
    trpc_metadata md[2];
    trpc_call_opts o;
};

static const trpc_call_opts *with_corr(struct copts *c, const struct tenant *t, const char *corr)
{
    c->md[0] = t->md[0];
    c->md[1].key = "x-correlation-id";
    c->md[1].value = corr;
    c->o.timeout_ms = CALL_MS;
    c->o.metadata = c->md;
    c->o.n_metadata = 2;
    return &c->o;
}

/* Metadata with just an authorization value (NULL: no metadata at all). */
static const trpc_call_opts *with_auth(struct copts *c, const char *authorization)
{
    c->md[0].key = "authorization";
    c->md[0].value = authorization;
    c->o.timeout_ms = CALL_MS;
    c->o.metadata = authorization ? c->md : NULL;
    c->o.n_metadata = authorization ? 1 : 0;
    return &c->o;
}

#define FREE_MSG(m)                                                                                \
    do {                                                                                           \
        if ((m) != NULL)                                                                           \
            protobuf_c_message_free_unpacked(&(m)->base, NULL);                                    \
    } while (0)

/* The typed calls: each returns the status; *out (when out is not NULL)
 * receives the reply on OK (FREE_MSG it), else NULL. They touch only
 * read-only fixture state, so client threads may call them. */

static grpc_status_code c_open(const struct k *k, const char *id, const char *owner,
                               const char *cur, int64_t overdraft,
                               Tally__V1__OpenAccountResponse **out, trpc_status *st)
{
    Tally__V1__OpenAccountRequest r = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__OpenAccountResponse *resp = NULL;
    grpc_status_code code;

    r.account_id = str(id);
    r.owner = str(owner);
    r.currency = str(cur);
    r.overdraft_limit = overdraft;
    r.idempotency_key = key_of(k);
    code = tally__v1__command_service__trpc_open_account(chan(), &r, &resp, opts_of(k), st);
    if (out)
        *out = resp;
    else
        FREE_MSG(resp);
    return code;
}

static grpc_status_code c_deposit(const struct k *k, const char *id, int64_t units, const char *cur,
                                  const char *ref, Tally__V1__CommandResponse **out,
                                  trpc_status *st)
{
    Tally__V1__DepositRequest r = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m;
    Google__Protobuf__Int64Value ev;
    grpc_status_code code;

    r.account_id = str(id);
    r.amount = money(&m, units, cur);
    r.reference = str(ref);
    r.idempotency_key = key_of(k);
    r.expected_version = expected_of(k, &ev);
    code = tally__v1__command_service__trpc_deposit(chan(), &r, &resp, opts_of(k), st);
    if (out)
        *out = resp;
    else
        FREE_MSG(resp);
    return code;
}

static grpc_status_code c_withdraw(const struct k *k, const char *id, int64_t units,
                                   const char *cur, const char *ref,
                                   Tally__V1__CommandResponse **out, trpc_status *st)
{
    Tally__V1__WithdrawRequest r = TALLY__V1__WITHDRAW_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m;
    Google__Protobuf__Int64Value ev;
    grpc_status_code code;

    r.account_id = str(id);
    r.amount = money(&m, units, cur);
    r.reference = str(ref);
    r.idempotency_key = key_of(k);
    r.expected_version = expected_of(k, &ev);
    code = tally__v1__command_service__trpc_withdraw(chan(), &r, &resp, opts_of(k), st);
    if (out)
        *out = resp;
    else
        FREE_MSG(resp);
    return code;
}

static grpc_status_code c_transfer(const struct k *k, const char *src, const char *dst,
                                   int64_t units, const char *cur, const char *ref,
                                   const char *transfer_id, int wait,
                                   Tally__V1__TransferResponse **out, trpc_status *st)
{
    Tally__V1__TransferRequest r = TALLY__V1__TRANSFER_REQUEST__INIT;
    Tally__V1__TransferResponse *resp = NULL;
    Tally__V1__Money m;
    Google__Protobuf__Int64Value ev;
    grpc_status_code code;

    r.source_account_id = str(src);
    r.destination_account_id = str(dst);
    r.amount = money(&m, units, cur);
    r.reference = str(ref);
    r.transfer_id = str(transfer_id);
    r.wait = wait != 0;
    r.idempotency_key = key_of(k);
    r.expected_version = expected_of(k, &ev);
    code = tally__v1__command_service__trpc_transfer(chan(), &r, &resp, opts_of(k), st);
    if (out)
        *out = resp;
    else
        FREE_MSG(resp);
    return code;
}

static grpc_status_code c_pay(const struct k *k, const char *id, int64_t units, const char *cur,
                              const char *merchant_ref, const char *payment_id,
                              Tally__V1__PayResponse **out, trpc_status *st)
{
    Tally__V1__PayRequest r = TALLY__V1__PAY_REQUEST__INIT;
    Tally__V1__PayResponse *resp = NULL;
    Tally__V1__Money m;
    Google__Protobuf__Int64Value ev;
    grpc_status_code code;

    r.account_id = str(id);
    r.amount = money(&m, units, cur);
    r.merchant_reference = str(merchant_ref);
    r.payment_id = str(payment_id);
    r.idempotency_key = key_of(k);
    r.expected_version = expected_of(k, &ev);
    code = tally__v1__command_service__trpc_pay(chan(), &r, &resp, opts_of(k), st);
    if (out)
        *out = resp;
    else
        FREE_MSG(resp);
    return code;
}

static grpc_status_code c_refund(const struct k *k, const char *id, const char *payment_id,
                                 int64_t units, const char *cur, Tally__V1__CommandResponse **out,
                                 trpc_status *st)
{
    Tally__V1__RefundRequest r = TALLY__V1__REFUND_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m;
    Google__Protobuf__Int64Value ev;
    grpc_status_code code;

    r.account_id = str(id);
    r.payment_id = str(payment_id);
    r.amount = money(&m, units, cur);
    r.idempotency_key = key_of(k);
    r.expected_version = expected_of(k, &ev);
    code = tally__v1__command_service__trpc_refund(chan(), &r, &resp, opts_of(k), st);
    if (out)
        *out = resp;
    else
        FREE_MSG(resp);
    return code;
}

enum status_cmd { FREEZE, UNFREEZE, CLOSE };

/* FreezeAccount, UnfreezeAccount, CloseAccount (same request shape). */
static grpc_status_code c_status(enum status_cmd which, const struct k *k, const char *id,
                                 const char *reason, Tally__V1__CommandResponse **out,
                                 trpc_status *st)
{
    Tally__V1__CommandResponse *resp = NULL;
    Google__Protobuf__Int64Value ev;
    grpc_status_code code;

    if (which == FREEZE) {
        Tally__V1__FreezeAccountRequest r = TALLY__V1__FREEZE_ACCOUNT_REQUEST__INIT;

        r.account_id = str(id);
        r.reason = str(reason);
        r.idempotency_key = key_of(k);
        r.expected_version = expected_of(k, &ev);
        code = tally__v1__command_service__trpc_freeze_account(chan(), &r, &resp, opts_of(k), st);
    } else if (which == UNFREEZE) {
        Tally__V1__UnfreezeAccountRequest r = TALLY__V1__UNFREEZE_ACCOUNT_REQUEST__INIT;

        r.account_id = str(id);
        r.reason = str(reason);
        r.idempotency_key = key_of(k);
        r.expected_version = expected_of(k, &ev);
        code = tally__v1__command_service__trpc_unfreeze_account(chan(), &r, &resp, opts_of(k), st);
    } else {
        Tally__V1__CloseAccountRequest r = TALLY__V1__CLOSE_ACCOUNT_REQUEST__INIT;

        r.account_id = str(id);
        r.reason = str(reason);
        r.idempotency_key = key_of(k);
        r.expected_version = expected_of(k, &ev);
        code = tally__v1__command_service__trpc_close_account(chan(), &r, &resp, opts_of(k), st);
    }
    if (out)
        *out = resp;
    else
        FREE_MSG(resp);
    return code;
}

/* A raw unary call of msg's bytes (or of bytes/len when msg is NULL). On
 * OK *out (when not NULL) holds the reply's bytes (free()). */
static grpc_status_code c_raw(const trpc_call_opts *o, const char *path,
                              const ProtobufCMessage *msg, const void *bytes, size_t len,
                              void **out, size_t *out_len, trpc_status *st)
{
    uint8_t *buf = NULL;
    void *resp = NULL;
    size_t resp_len = 0;
    grpc_status_code code;

    if (msg) {
        len = protobuf_c_message_get_packed_size(msg);
        buf = malloc(len ? len : 1);
        if (buf == NULL)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "test: out of memory");
        protobuf_c_message_pack(msg, buf);
        bytes = buf;
    }
    code = trpc_unary_raw(chan(), path, bytes, len, &resp, &resp_len, o ? o : &fx.a.opts, st);
    free(buf);
    if (out) {
        *out = resp;
        *out_len = resp_len;
    } else {
        free(resp);
    }
    return code;
}

/* ---- checks ---- */

static void report(int line, const char *what, grpc_status_code code, const trpc_status *st)
{
    fprintf(stderr, "\n  line %d: %s -> %s \"%s\"\n", line, what, trpc_status_code_name(code),
            code == OK ? "" : st->msg);
}

/* code must be OK (else the call and its status are printed). */
#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        trpc_status st_ = {0};                                                                     \
        grpc_status_code code_ = (call);                                                           \
        CU_ASSERT_EQUAL(code_, OK);                                                                \
        if (code_ != OK)                                                                           \
            report(__LINE__, #call, code_, &st_);                                                  \
    } while (0)

#define CHECK_OK_FATAL(call)                                                                       \
    do {                                                                                           \
        trpc_status st_ = {0};                                                                     \
        grpc_status_code code_ = (call);                                                           \
        if (code_ != OK)                                                                           \
            report(__LINE__, #call, code_, &st_);                                                  \
        CU_ASSERT_EQUAL_FATAL(code_, OK);                                                          \
    } while (0)

static void check_reject(int line, const char *what, grpc_status_code code, const trpc_status *st,
                         grpc_status_code want, const char *substr, const struct counts *b,
                         const struct counts *a, int64_t idem_delta)
{
    int ok_code = code == want && st->code == want;
    int ok_msg = code != OK && strstr(st->msg, substr) != NULL;
    int ok_rows = a->events == b->events && a->outbox == b->outbox &&
                  a->operations == b->operations && a->snapshots == b->snapshots &&
                  a->idem == b->idem + idem_delta;

    CHECK(line, ok_code);
    CHECK(line, ok_msg);
    CHECK(line, ok_rows);
    if (!ok_code || !ok_msg)
        fprintf(stderr, "\n  line %d: %s\n    got %s \"%s\", want %s \"...%s...\"\n", line, what,
                trpc_status_code_name(code), code == OK ? "" : st->msg, trpc_status_code_name(want),
                substr);
    if (!ok_rows)
        fprintf(stderr,
                "\n  line %d: %s wrote rows: events %" PRId64 "->%" PRId64 ", outbox %" PRId64
                "->%" PRId64 ", operations %" PRId64 "->%" PRId64 ", idempotency_keys %" PRId64
                "->%" PRId64 ", snapshots %" PRId64 "->%" PRId64 "\n",
                line, what, b->events, a->events, b->outbox, a->outbox, b->operations,
                a->operations, b->idem, a->idem, b->snapshots, a->snapshots);
}

/* Runs call (an expression that uses `&st_`, the call's status) and checks
 * that it failed with want, that the message contains substr, and that it
 * wrote no row (idem_delta: idempotency_keys rows it may add). */
#define EXPECT_REJECT_IDEM(idem_delta, want, substr, call)                                         \
    do {                                                                                           \
        struct counts before_, after_;                                                             \
        trpc_status st_ = {0};                                                                     \
        grpc_status_code code_;                                                                    \
        counts_get(&before_);                                                                      \
        code_ = (call);                                                                            \
        counts_get(&after_);                                                                       \
        check_reject(__LINE__, #call, code_, &st_, (want), (substr), &before_, &after_,            \
                     (idem_delta));                                                                \
    } while (0)

#define EXPECT_REJECT(want, substr, call) EXPECT_REJECT_IDEM(0, want, substr, call)

/* A stored business failure: one idempotency row, nothing else. */
#define EXPECT_REJECT_STORED(want, substr, call) EXPECT_REJECT_IDEM(1, want, substr, call)

/* Checks the event a successful command wrote at r->version of the stream
 * (agg_type, agg_id) of tenant t, the reply against it, its operation row
 * and its outbox row. data: the event's expected proto3 JSON; corr: the
 * x-correlation-id sent (NULL: a generated one is expected). */
static void check_event(int line, const struct tenant *t, const Tally__V1__CommandResponse *r,
                        const char *agg_type, const char *agg_id, const char *event_type,
                        const char *data, const char *kind, const char *op_status, const char *corr)
{
    static const char sql[] =
        "SELECT e.tx_id::text, e.global_position, e.event_id::text, e.event_type,"
        "       e.data = $4::jsonb, e.data::text,"
        "       e.metadata->>'correlationId', e.metadata->>'causationId',"
        "       e.metadata->>'userId', (SELECT count(*) FROM jsonb_object_keys(e.metadata)),"
        "       e.operation_id::text, e.correlation_id, e.event_version,"
        "       o.kind, o.status, o.aggregate_type, o.aggregate_id::text, o.correlation_id,"
        "       (SELECT count(*) FROM outbox x WHERE x.global_position = e.global_position"
        "           AND x.tx_id = e.tx_id AND x.tenant_id = e.tenant_id),"
        "       (SELECT max(version) FROM events m WHERE m.tenant_id = e.tenant_id"
        "           AND m.aggregate_type = e.aggregate_type AND m.aggregate_id = e.aggregate_id),"
        "       (SELECT count(*) FROM events n WHERE n.operation_id = e.operation_id)"
        "  FROM events e LEFT JOIN operations o"
        "       ON o.operation_id = e.operation_id AND o.tenant_id = e.tenant_id"
        " WHERE e.tenant_id = $1::uuid AND e.aggregate_type = $2 AND e.aggregate_id = $3::uuid"
        "   AND e.version = $5::bigint";
    char version[24], tx[24];
    PGresult *res;

    CHECK(line, r != NULL);
    if (r == NULL)
        return;
    snprintf(version, sizeof(version), "%" PRId64, r->version);
    res = dbq(sql, t->id, agg_type, agg_id, data, version, NULL);
    CHECK(line, PQntuples(res) == 1);
    if (PQntuples(res) != 1) {
        fprintf(stderr, "\n  line %d: no %s event at %s/%s version %s\n", line, event_type,
                agg_type, agg_id, version);
        PQclear(res);
        return;
    }
    /* the reply */
    CHECK(line, is_uuid_v7(r->operation_id));
    CHECK(line, r->position != NULL);
    if (corr)
        CHECK(line, strcmp(r->correlation_id, corr) == 0);
    else
        CHECK(line, is_uuid_v7(r->correlation_id));
    if (r->position) {
        snprintf(tx, sizeof(tx), "%" PRIu64, r->position->tx_id);
        CHECK(line, strcmp(PQgetvalue(res, 0, 0), tx) == 0);
        CHECK(line, strtoll(PQgetvalue(res, 0, 1), NULL, 10) == r->position->global_position);
    }
    /* the event row */
    CHECK(line, is_uuid_v7(PQgetvalue(res, 0, 2)));
    CHECK(line, strcmp(PQgetvalue(res, 0, 3), event_type) == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 4), "t") == 0);
    if (strcmp(PQgetvalue(res, 0, 4), "t") != 0)
        fprintf(stderr, "\n  line %d: %s data\n    got  %s\n    want %s\n", line, event_type,
                PQgetvalue(res, 0, 5), data);
    CHECK(line, strcmp(PQgetvalue(res, 0, 6), r->correlation_id) == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 7), r->operation_id) == 0); /* caused by the command */
    CHECK(line, strcmp(PQgetvalue(res, 0, 8), TOKEN_NAME) == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 9), "3") == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 10), r->operation_id) == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 11), r->correlation_id) == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 12), "1") == 0);
    /* the operation row */
    CHECK(line, strcmp(PQgetvalue(res, 0, 13), kind) == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 14), op_status) == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 15), agg_type) == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 16), agg_id) == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 17), r->correlation_id) == 0);
    /* one outbox row, the reply's version is the stream's, one event per command */
    CHECK(line, strcmp(PQgetvalue(res, 0, 18), "1") == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 19), version) == 0);
    CHECK(line, strcmp(PQgetvalue(res, 0, 20), "1") == 0);
    PQclear(res);
}

#define CHECK_EVENT(...) check_event(__LINE__, __VA_ARGS__)

/* Opens an EUR account (or cur) for tenant A; the id goes to id. */
static void open_ok(int line, const char *cur, int64_t overdraft, char id[UUID_LEN + 1])
{
    Tally__V1__OpenAccountResponse *r = NULL;
    trpc_status st = {0};
    grpc_status_code code = c_open(NULL, NULL, "test owner", cur, overdraft, &r, &st);

    CHECK(line, code == OK);
    id[0] = '\0';
    if (code != OK) {
        report(line, "open", code, &st);
        return;
    }
    snprintf(id, UUID_LEN + 1, "%s", r->account_id);
    FREE_MSG(r);
}

#define OPEN(cur, od, id) open_ok(__LINE__, cur, od, id)

/* ---- suite: happy paths ---- */

static void test_open_account_generated_id(void)
{
    Tally__V1__OpenAccountResponse *r = NULL;
    char data[512];

    CHECK_OK_FATAL(c_open(NULL, NULL, "Ada Lovelace", "EUR", 500, &r, &st_));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->result);
    CU_ASSERT(is_uuid_v7(r->account_id));
    CU_ASSERT_EQUAL(r->result->version, 1);
    snprintf(data, sizeof(data),
             "{\"accountId\":\"%s\",\"owner\":\"Ada Lovelace\",\"currency\":\"EUR\","
             "\"overdraftLimit\":\"500\"}",
             r->account_id);
    CHECK_EVENT(&fx.a, r->result, "account", r->account_id, "AccountOpened", data, "OpenAccount",
                "SUCCEEDED", NULL);
    FREE_MSG(r);
}

static void test_open_account_caller_id_and_correlation_id(void)
{
    Tally__V1__OpenAccountResponse *r = NULL;
    struct copts co;
    char id[UUID_LEN + 1], upper[UUID_LEN + 1], data[512];

    fresh_id(id);
    for (int i = 0; i <= UUID_LEN; i++)
        upper[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 'a' + 'A' : id[i]);
    /* the id is stored in lower case; the correlation id is honoured */
    CHECK_OK_FATAL(c_open(&(struct k){.opts = with_corr(&co, &fx.a, "order-4711")}, upper,
                          "Grace Hopper", "USD", 0, &r, &st_));
    CU_ASSERT_STRING_EQUAL(r->account_id, id);
    CU_ASSERT_EQUAL(r->result->version, 1);
    CU_ASSERT_STRING_EQUAL(r->result->correlation_id, "order-4711");
    snprintf(data, sizeof(data),
             "{\"accountId\":\"%s\",\"owner\":\"Grace Hopper\",\"currency\":\"USD\"}", id);
    CHECK_EVENT(&fx.a, r->result, "account", id, "AccountOpened", data, "OpenAccount", "SUCCEEDED",
                "order-4711");
    FREE_MSG(r);
}

static void test_deposit_and_withdraw(void)
{
    Tally__V1__CommandResponse *r = NULL;
    struct copts co;
    char id[UUID_LEN + 1];

    OPEN("EUR", 0, id);
    CHECK_OK_FATAL(c_deposit(NULL, id, 1250, "EUR", "salary", &r, &st_));
    CU_ASSERT_EQUAL(r->version, 2);
    CHECK_EVENT(
        &fx.a, r, "account", id, "Deposited",
        "{\"amount\":{\"minorUnits\":\"1250\",\"currency\":\"EUR\"},\"reference\":\"salary\"}",
        "Deposit", "SUCCEEDED", NULL);
    FREE_MSG(r);

    CHECK_OK_FATAL(c_withdraw(&(struct k){.opts = with_corr(&co, &fx.a, "rent-2024-05")}, id, 250,
                              "EUR", "rent", &r, &st_));
    CU_ASSERT_EQUAL(r->version, 3);
    CHECK_EVENT(&fx.a, r, "account", id, "Withdrawn",
                "{\"amount\":{\"minorUnits\":\"250\",\"currency\":\"EUR\"},\"reference\":\"rent\"}",
                "Withdraw", "SUCCEEDED", "rent-2024-05");
    FREE_MSG(r);

    /* no reference: proto3 JSON leaves the empty string out */
    CHECK_OK_FATAL(c_deposit(NULL, id, 1, "EUR", NULL, &r, &st_));
    CHECK_EVENT(&fx.a, r, "account", id, "Deposited",
                "{\"amount\":{\"minorUnits\":\"1\",\"currency\":\"EUR\"}}", "Deposit", "SUCCEEDED",
                NULL);
    FREE_MSG(r);
}

static void test_transfer_is_pending_with_transfer_requested(void)
{
    Tally__V1__TransferResponse *r = NULL;
    char src[UUID_LEN + 1], dst[UUID_LEN + 1], tid[UUID_LEN + 1], data[1024];

    OPEN("EUR", 0, src);
    OPEN("EUR", 0, dst);
    CHECK_OK(c_deposit(NULL, src, 1000, "EUR", NULL, NULL, &st_));

    CHECK_OK_FATAL(c_transfer(NULL, src, dst, 400, "EUR", "invoice 7", NULL, 0, &r, &st_));
    CU_ASSERT(is_uuid_v7(r->transfer_id));
    CU_ASSERT_EQUAL(r->status, TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_PENDING);
    CU_ASSERT_STRING_EQUAL(r->failure_reason, "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->result);
    CU_ASSERT_EQUAL(r->result->version, 1);
    snprintf(
        data, sizeof(data),
        "{\"transferId\":\"%s\",\"sourceAccountId\":\"%s\",\"destinationAccountId\":\"%s\","
        "\"amount\":{\"minorUnits\":\"400\",\"currency\":\"EUR\"},\"reference\":\"invoice 7\"}",
        r->transfer_id, src, dst);
    CHECK_EVENT(&fx.a, r->result, "transfer", r->transfer_id, "TransferRequested", data, "Transfer",
                "PENDING", NULL);
    /* the request alone touches neither account: the saga does that */
    CU_ASSERT_EQUAL(stream_version(&fx.a, "account", src), 2);
    CU_ASSERT_EQUAL(stream_version(&fx.a, "account", dst), 1);
    FREE_MSG(r);

    /* a caller-chosen transfer id */
    fresh_id(tid);
    CHECK_OK_FATAL(c_transfer(NULL, src, dst, 5, "EUR", NULL, tid, 0, &r, &st_));
    CU_ASSERT_STRING_EQUAL(r->transfer_id, tid);
    snprintf(data, sizeof(data),
             "{\"transferId\":\"%s\",\"sourceAccountId\":\"%s\",\"destinationAccountId\":\"%s\","
             "\"amount\":{\"minorUnits\":\"5\",\"currency\":\"EUR\"}}",
             tid, src, dst);
    CHECK_EVENT(&fx.a, r->result, "transfer", tid, "TransferRequested", data, "Transfer", "PENDING",
                NULL);
    FREE_MSG(r);
}

/* No projector exists yet, so nothing completes a transfer: with wait=true
 * the call runs into its deadline and the transfer stays recorded, PENDING.
 * CHANGE THIS TEST when the projector lands: wait must then end SUCCEEDED. */
static void test_transfer_wait_deadline_exceeded_until_projector_exists(void)
{
    Tally__V1__TransferResponse *r = NULL;
    trpc_call_opts o = fx.a.opts;
    trpc_status st = {0};
    char src[UUID_LEN + 1], dst[UUID_LEN + 1], tid[UUID_LEN + 1];
    int64_t t0;
    grpc_status_code code;

    OPEN("EUR", 0, src);
    OPEN("EUR", 0, dst);
    CHECK_OK(c_deposit(NULL, src, 100, "EUR", NULL, NULL, &st_));
    fresh_id(tid);
    o.timeout_ms = 1500;
    t0 = mono_ms();
    code = c_transfer(&(struct k){.opts = &o}, src, dst, 60, "EUR", NULL, tid, 1, &r, &st);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_DEADLINE_EXCEEDED);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT(mono_ms() - t0 >= 1000);
    FREE_MSG(r);
    CU_ASSERT_EQUAL(stream_version(&fx.a, "transfer", tid), 1);
    CU_ASSERT_EQUAL(db_int("SELECT count(*) FROM operations WHERE aggregate_id = $1::uuid"
                           " AND kind = 'Transfer' AND status = 'PENDING'",
                           tid, NULL),
                    1);
}

static void test_pay_and_refund_partially_then_fully(void)
{
    Tally__V1__PayResponse *p = NULL;
    Tally__V1__CommandResponse *r = NULL;
    char id[UUID_LEN + 1], pid[UUID_LEN + 1], pid2[UUID_LEN + 1], data[1024];

    OPEN("EUR", 0, id);
    CHECK_OK(c_deposit(NULL, id, 5000, "EUR", NULL, NULL, &st_));

    CHECK_OK_FATAL(c_pay(NULL, id, 2000, "EUR", "shop-42", NULL, &p, &st_));
    CU_ASSERT(is_uuid_v7(p->payment_id));
    CU_ASSERT_EQUAL(p->result->version, 3);
    snprintf(pid, sizeof(pid), "%s", p->payment_id);
    snprintf(data, sizeof(data),
             "{\"paymentId\":\"%s\",\"amount\":{\"minorUnits\":\"2000\",\"currency\":\"EUR\"},"
             "\"merchantReference\":\"shop-42\"}",
             pid);
    CHECK_EVENT(&fx.a, p->result, "account", id, "PaymentMade", data, "Pay", "SUCCEEDED", NULL);
    FREE_MSG(p);

    CHECK_OK_FATAL(c_refund(NULL, id, pid, 500, "EUR", &r, &st_));
    CU_ASSERT_EQUAL(r->version, 4);
    snprintf(data, sizeof(data),
             "{\"paymentId\":\"%s\",\"amount\":{\"minorUnits\":\"500\",\"currency\":\"EUR\"},"
             "\"totalRefunded\":{\"minorUnits\":\"500\",\"currency\":\"EUR\"}}",
             pid);
    CHECK_EVENT(&fx.a, r, "account", id, "PaymentRefunded", data, "Refund", "SUCCEEDED", NULL);
    FREE_MSG(r);

    CHECK_OK_FATAL(c_refund(NULL, id, pid, 1500, "EUR", &r, &st_));
    CU_ASSERT_EQUAL(r->version, 5);
    snprintf(data, sizeof(data),
             "{\"paymentId\":\"%s\",\"amount\":{\"minorUnits\":\"1500\",\"currency\":\"EUR\"},"
             "\"totalRefunded\":{\"minorUnits\":\"2000\",\"currency\":\"EUR\"}}",
             pid);
    CHECK_EVENT(&fx.a, r, "account", id, "PaymentRefunded", data, "Refund", "SUCCEEDED", NULL);
    FREE_MSG(r);
    /* fully refunded: not one unit more */
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION,
                  "refund exceeds payment: paid 2000, refunded 2000",
                  c_refund(NULL, id, pid, 1, "EUR", NULL, &st_));

    /* a caller-chosen payment id; upper case is stored in lower case */
    fresh_id(pid2);
    CHECK_OK_FATAL(c_pay(NULL, id, 1, "EUR", "shop-43", pid2, &p, &st_));
    CU_ASSERT_STRING_EQUAL(p->payment_id, pid2);
    CU_ASSERT_EQUAL(p->result->version, 6);
    FREE_MSG(p);
}

static void test_freeze_unfreeze_and_close_at_zero(void)
{
    Tally__V1__CommandResponse *r = NULL;
    char id[UUID_LEN + 1];

    OPEN("EUR", 0, id);
    CHECK_OK(c_deposit(NULL, id, 300, "EUR", NULL, NULL, &st_));

    CHECK_OK_FATAL(c_status(FREEZE, NULL, id, "fraud check", &r, &st_));
    CU_ASSERT_EQUAL(r->version, 3);
    CHECK_EVENT(&fx.a, r, "account", id, "AccountFrozen", "{\"reason\":\"fraud check\"}",
                "FreezeAccount", "SUCCEEDED", NULL);
    FREE_MSG(r);
    /* a frozen account still takes refunds and closes; it takes no deposit */
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is frozen",
                  c_deposit(NULL, id, 1, "EUR", NULL, NULL, &st_));

    CHECK_OK_FATAL(c_status(UNFREEZE, NULL, id, NULL, &r, &st_));
    CU_ASSERT_EQUAL(r->version, 4);
    CHECK_EVENT(&fx.a, r, "account", id, "AccountUnfrozen", "{}", "UnfreezeAccount", "SUCCEEDED",
                NULL);
    FREE_MSG(r);

    CHECK_OK(c_withdraw(NULL, id, 300, "EUR", NULL, NULL, &st_));
    CHECK_OK_FATAL(c_status(CLOSE, NULL, id, "customer left", &r, &st_));
    CU_ASSERT_EQUAL(r->version, 6);
    CHECK_EVENT(&fx.a, r, "account", id, "AccountClosed", "{\"reason\":\"customer left\"}",
                "CloseAccount", "SUCCEEDED", NULL);
    FREE_MSG(r);
}

static void test_refund_and_close_accepted_on_frozen_account(void)
{
    Tally__V1__PayResponse *p = NULL;
    char id[UUID_LEN + 1], pid[UUID_LEN + 1];

    OPEN("GBP", 0, id);
    CHECK_OK(c_deposit(NULL, id, 100, "GBP", NULL, NULL, &st_));
    CHECK_OK_FATAL(c_pay(NULL, id, 100, "GBP", "m", NULL, &p, &st_));
    snprintf(pid, sizeof(pid), "%s", p->payment_id);
    FREE_MSG(p);
    CHECK_OK(c_status(FREEZE, NULL, id, NULL, NULL, &st_));
    CHECK_OK(c_refund(NULL, id, pid, 100, "GBP", NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is frozen",
                  c_pay(NULL, id, 100, "GBP", "m", NULL, NULL, &st_));
    CHECK_OK(c_status(UNFREEZE, NULL, id, NULL, NULL, &st_));
    CHECK_OK(c_withdraw(NULL, id, 100, "GBP", NULL, NULL, &st_));
    CHECK_OK(c_status(FREEZE, NULL, id, NULL, NULL, &st_));
    CHECK_OK(c_status(CLOSE, NULL, id, NULL, NULL, &st_));
    CU_ASSERT_EQUAL(stream_version(&fx.a, "account", id), 9);
}

/* Every event has exactly one outbox row with its tx_id, position and
 * tenant, and every outbox row has its event. */
static void check_outbox(int line)
{
    int64_t events = db_int("SELECT count(*) FROM events", NULL);
    int64_t outbox = db_int("SELECT count(*) FROM outbox", NULL);
    int64_t matched = db_int("SELECT count(*) FROM events e JOIN outbox o"
                             "  ON o.global_position = e.global_position AND o.tx_id = e.tx_id"
                             " AND o.tenant_id = e.tenant_id",
                             NULL);

    CHECK(line, events > 0);
    CHECK(line, outbox == events);
    CHECK(line, matched == events);
    if (outbox != events || matched != events)
        fprintf(stderr,
                "\n  line %d: %" PRId64 " events, %" PRId64 " outbox rows, %" PRId64 " matching\n",
                line, events, outbox, matched);
}

static void test_outbox_one_row_per_event(void)
{
    check_outbox(__LINE__);
    /* every command is one operation; only Transfer leaves one PENDING */
    CU_ASSERT_EQUAL(db_int("SELECT count(*) FROM operations", NULL),
                    db_int("SELECT count(*) FROM events", NULL));
    CU_ASSERT_EQUAL(
        db_int("SELECT count(*) FROM operations WHERE status = 'PENDING'", NULL),
        db_int("SELECT count(*) FROM events WHERE event_type = 'TransferRequested'", NULL));
}

/* ---- suite: errors ---- */

static void test_ids_missing_or_malformed(void)
{
    char id[UUID_LEN + 1], other[UUID_LEN + 1], pid[UUID_LEN + 1];
    static const char *const bad[] = {
        "",
        "not-a-uuid",
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",   /* one digit short */
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b0", /* one digit long */
        "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b",      /* no hyphens */
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",  /* not hex */
        "00000000-0000-0000-0000-000000000000",  /* nil */
    };

    OPEN("EUR", 0, id);
    OPEN("EUR", 0, other);
    CHECK_OK(c_deposit(NULL, id, 1000, "EUR", NULL, NULL, &st_));
    fresh_id(pid);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *b = bad[i];

        if (b[0] != '\0') /* empty: generated */
            EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "account_id",
                          c_open(NULL, b, "x", "EUR", 0, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "account_id",
                      c_deposit(NULL, b, 1, "EUR", NULL, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "account_id",
                      c_withdraw(NULL, b, 1, "EUR", NULL, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "account_id",
                      c_pay(NULL, b, 1, "EUR", "m", NULL, NULL, &st_));
        if (b[0] != '\0')
            EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "payment_id",
                          c_pay(NULL, id, 1, "EUR", "m", b, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "account_id",
                      c_refund(NULL, b, pid, 1, "EUR", NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "payment_id",
                      c_refund(NULL, id, b, 1, "EUR", NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "source_account_id",
                      c_transfer(NULL, b, other, 1, "EUR", NULL, NULL, 0, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "destination_account_id",
                      c_transfer(NULL, id, b, 1, "EUR", NULL, NULL, 0, NULL, &st_));
        if (b[0] != '\0')
            EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "transfer_id",
                          c_transfer(NULL, id, other, 1, "EUR", NULL, b, 0, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "account_id",
                      c_status(FREEZE, NULL, b, NULL, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "account_id",
                      c_status(UNFREEZE, NULL, b, NULL, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "account_id",
                      c_status(CLOSE, NULL, b, NULL, NULL, &st_));
    }
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "source and destination must differ",
                  c_transfer(NULL, id, id, 1, "EUR", NULL, NULL, 0, NULL, &st_));
}

static void test_amounts_missing_zero_negative(void)
{
    char id[UUID_LEN + 1], other[UUID_LEN + 1], pid[UUID_LEN + 1];
    Tally__V1__PayResponse *p = NULL;
    static const int64_t bad[] = {0, -1, -100, INT64_MIN};

    OPEN("EUR", 0, id);
    OPEN("EUR", 0, other);
    CHECK_OK(c_deposit(NULL, id, 1000, "EUR", NULL, NULL, &st_));
    CHECK_OK_FATAL(c_pay(NULL, id, 100, "EUR", "m", NULL, &p, &st_));
    snprintf(pid, sizeof(pid), "%s", p->payment_id);
    FREE_MSG(p);

    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount is required",
                  c_deposit(NULL, id, 0, NULL, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount is required",
                  c_withdraw(NULL, id, 0, NULL, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount is required",
                  c_pay(NULL, id, 0, NULL, "m", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount is required",
                  c_refund(NULL, id, pid, 0, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount is required",
                  c_transfer(NULL, id, other, 0, NULL, NULL, NULL, 0, NULL, &st_));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = bad[i];

        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount must be positive",
                      c_deposit(NULL, id, v, "EUR", NULL, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount must be positive",
                      c_withdraw(NULL, id, v, "EUR", NULL, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount must be positive",
                      c_pay(NULL, id, v, "EUR", "m", NULL, NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount must be positive",
                      c_refund(NULL, id, pid, v, "EUR", NULL, &st_));
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount must be positive",
                      c_transfer(NULL, id, other, v, "EUR", NULL, NULL, 0, NULL, &st_));
    }
    /* negative overdraft limit */
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "overdraft_limit",
                  c_open(NULL, NULL, "x", "EUR", -1, NULL, &st_));
}

static void test_balance_overflow_is_failed_precondition(void)
{
    char id[UUID_LEN + 1], msg[128];

    OPEN("EUR", 0, id);
    CHECK_OK(c_deposit(NULL, id, INT64_MAX, "EUR", NULL, NULL, &st_));
    snprintf(msg, sizeof(msg), "balance would overflow: balance %" PRId64, INT64_MAX);
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, msg,
                  c_deposit(NULL, id, INT64_MAX, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, msg,
                  c_deposit(NULL, id, 1, "EUR", NULL, NULL, &st_));
    /* the balance is still INT64_MAX: all of it can be withdrawn */
    CHECK_OK(c_withdraw(NULL, id, INT64_MAX, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "insufficient funds: balance 0",
                  c_withdraw(NULL, id, 1, "EUR", NULL, NULL, &st_));
}

static void test_currencies_unknown_and_mismatched(void)
{
    char eur[UUID_LEN + 1], usd[UUID_LEN + 1], pid[UUID_LEN + 1];
    Tally__V1__PayResponse *p = NULL;
    static const char *const unknown[] = {"QQQ", "EU", "EURO", "eur", "E1R"};

    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "currency",
                      c_open(NULL, NULL, "x", unknown[i], 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "currency is required",
                  c_open(NULL, NULL, "x", "", 0, NULL, &st_));

    OPEN("EUR", 0, eur);
    OPEN("USD", 0, usd);
    CHECK_OK(c_deposit(NULL, eur, 1000, "EUR", NULL, NULL, &st_));
    CHECK_OK_FATAL(c_pay(NULL, eur, 100, "EUR", "m", NULL, &p, &st_));
    snprintf(pid, sizeof(pid), "%s", p->payment_id);
    FREE_MSG(p);

    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount currency",
                  c_deposit(NULL, eur, 1, "QQQ", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount currency is required",
                  c_deposit(NULL, eur, 1, "", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION,
                  "currency mismatch: account is EUR, amount is USD",
                  c_deposit(NULL, eur, 1, "USD", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION,
                  "currency mismatch: account is EUR, amount is USD",
                  c_withdraw(NULL, eur, 1, "USD", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION,
                  "currency mismatch: account is EUR, amount is USD",
                  c_pay(NULL, eur, 1, "USD", "m", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "currency mismatch",
                  c_refund(NULL, eur, pid, 1, "USD", NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "currency mismatch",
                  c_transfer(NULL, eur, usd, 1, "EUR", NULL, NULL, 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "currency mismatch",
                  c_transfer(NULL, eur, usd, 1, "USD", NULL, NULL, 0, NULL, &st_));
}

static void test_text_fields_limits(void)
{
    static char s256[257], s257[258], e256[257], e258[259];
    char id[UUID_LEN + 1], other[UUID_LEN + 1];
    Tally__V1__OpenAccountResponse *r = NULL;

    repeat(s256, "x", 256);
    repeat(s257, "x", 257);
    repeat(e256, "\xc3\xa9", 128); /* 128 x U+00E9: 256 bytes */
    repeat(e258, "\xc3\xa9", 129); /* 258 bytes, 129 characters: the limit is bytes */
    OPEN("EUR", 0, id);
    OPEN("EUR", 0, other);
    CHECK_OK(c_deposit(NULL, id, 1000, "EUR", NULL, NULL, &st_));

    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "owner is required",
                  c_open(NULL, NULL, "", "EUR", 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "owner is too long (257 bytes, at most 256)",
                  c_open(NULL, NULL, s257, "EUR", 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "owner is too long (258 bytes, at most 256)",
                  c_open(NULL, NULL, e258, "EUR", 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "reference is too long",
                  c_deposit(NULL, id, 1, "EUR", s257, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "reference is too long",
                  c_withdraw(NULL, id, 1, "EUR", s257, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "reference is too long",
                  c_transfer(NULL, id, other, 1, "EUR", s257, NULL, 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "merchant_reference is required",
                  c_pay(NULL, id, 1, "EUR", "", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "merchant_reference is too long",
                  c_pay(NULL, id, 1, "EUR", s257, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "reason is too long",
                  c_status(FREEZE, NULL, id, s257, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "reason is too long",
                  c_status(UNFREEZE, NULL, id, s257, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "reason is too long",
                  c_status(CLOSE, NULL, id, s257, NULL, &st_));

    /* exactly 256 bytes is fine, also in two-byte characters */
    CHECK_OK_FATAL(c_open(NULL, NULL, e256, "EUR", 0, &r, &st_));
    CU_ASSERT_EQUAL(db_int("SELECT octet_length(data->>'owner') FROM events"
                           " WHERE aggregate_id = $1::uuid AND version = 1",
                           r->account_id, NULL),
                    256);
    FREE_MSG(r);
    CHECK_OK(c_open(NULL, NULL, s256, "EUR", 0, NULL, &st_));
    CHECK_OK(c_deposit(NULL, id, 1, "EUR", s256, NULL, &st_));
    CHECK_OK(c_pay(NULL, id, 1, "EUR", s256, NULL, NULL, &st_));
    CHECK_OK(c_status(FREEZE, NULL, id, s256, NULL, &st_));
}

/* Strings that are not UTF-8, sent as raw bytes (protobuf-c packs them as
 * given; the server must refuse them). */
static void test_strings_not_utf8(void)
{
    static const char *const bad[] = {
        "\xff\xfe",         /* never valid */
        "ab\xc3\x28",       /* bad continuation */
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "caf\xc3",          /* truncated */
    };
    char id[UUID_LEN + 1];

    OPEN("EUR", 0, id);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        Tally__V1__OpenAccountRequest o = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
        Tally__V1__DepositRequest d = TALLY__V1__DEPOSIT_REQUEST__INIT;
        Tally__V1__PayRequest p = TALLY__V1__PAY_REQUEST__INIT;
        Tally__V1__FreezeAccountRequest f = TALLY__V1__FREEZE_ACCOUNT_REQUEST__INIT;
        Tally__V1__Money m;

        o.owner = (char *)bad[i];
        o.currency = (char *)"EUR";
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "utf-8",
                      c_raw(NULL, CMD_PATH("OpenAccount"), &o.base, NULL, 0, NULL, NULL, &st_));
        d.account_id = id;
        d.amount = money(&m, 1, "EUR");
        d.reference = (char *)bad[i];
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "utf-8",
                      c_raw(NULL, CMD_PATH("Deposit"), &d.base, NULL, 0, NULL, NULL, &st_));
        p.account_id = id;
        p.amount = money(&m, 1, "EUR");
        p.merchant_reference = (char *)bad[i];
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "utf-8",
                      c_raw(NULL, CMD_PATH("Pay"), &p.base, NULL, 0, NULL, NULL, &st_));
        f.account_id = id;
        f.reason = (char *)bad[i];
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "utf-8",
                      c_raw(NULL, CMD_PATH("FreezeAccount"), &f.base, NULL, 0, NULL, NULL, &st_));
    }
}

static void test_unknown_account_not_found(void)
{
    char id[UUID_LEN + 1], ghost[UUID_LEN + 1], pid[UUID_LEN + 1];

    OPEN("EUR", 0, id);
    CHECK_OK(c_deposit(NULL, id, 1000, "EUR", NULL, NULL, &st_));
    fresh_id(ghost);
    fresh_id(pid);
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_deposit(NULL, ghost, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_withdraw(NULL, ghost, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_pay(NULL, ghost, 1, "EUR", "m", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "not found",
                  c_refund(NULL, ghost, pid, 1, "EUR", NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_status(FREEZE, NULL, ghost, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_status(UNFREEZE, NULL, ghost, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_status(CLOSE, NULL, ghost, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "source account not found",
                  c_transfer(NULL, ghost, id, 1, "EUR", NULL, NULL, 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "destination account not found",
                  c_transfer(NULL, id, ghost, 1, "EUR", NULL, NULL, 0, NULL, &st_));
    /* an unknown payment on a known account */
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "payment not found",
                  c_refund(NULL, id, pid, 1, "EUR", NULL, &st_));
}

static void test_ids_taken_already_exists(void)
{
    char id[UUID_LEN + 1], src[UUID_LEN + 1], pid[UUID_LEN + 1], tid[UUID_LEN + 1];

    fresh_id(id);
    CHECK_OK(c_open(NULL, id, "first", "EUR", 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_ALREADY_EXISTS, "account already exists",
                  c_open(NULL, id, "second", "EUR", 0, NULL, &st_));
    CHECK_OK(c_deposit(NULL, id, 1000, "EUR", NULL, NULL, &st_));
    fresh_id(pid);
    CHECK_OK(c_pay(NULL, id, 10, "EUR", "m", pid, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_ALREADY_EXISTS, "payment already exists",
                  c_pay(NULL, id, 10, "EUR", "m", pid, NULL, &st_));
    OPEN("EUR", 0, src);
    CHECK_OK(c_deposit(NULL, src, 1000, "EUR", NULL, NULL, &st_));
    fresh_id(tid);
    CHECK_OK(c_transfer(NULL, src, id, 10, "EUR", NULL, tid, 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_ALREADY_EXISTS, "transfer already exists",
                  c_transfer(NULL, src, id, 10, "EUR", NULL, tid, 0, NULL, &st_));
}

static void test_frozen_account_rejects_money_movements(void)
{
    char id[UUID_LEN + 1], other[UUID_LEN + 1];

    OPEN("EUR", 0, id);
    OPEN("EUR", 0, other);
    CHECK_OK(c_deposit(NULL, id, 1000, "EUR", NULL, NULL, &st_));
    CHECK_OK(c_status(FREEZE, NULL, id, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is frozen",
                  c_deposit(NULL, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is frozen",
                  c_withdraw(NULL, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is frozen",
                  c_pay(NULL, id, 1, "EUR", "m", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "source account is frozen",
                  c_transfer(NULL, id, other, 1, "EUR", NULL, NULL, 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is already frozen",
                  c_status(FREEZE, NULL, id, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is not frozen",
                  c_status(UNFREEZE, NULL, other, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "balance is not zero: 1000",
                  c_status(CLOSE, NULL, id, NULL, NULL, &st_));
}

static void test_closed_account_rejects_everything(void)
{
    char id[UUID_LEN + 1], other[UUID_LEN + 1], pid[UUID_LEN + 1];
    Tally__V1__PayResponse *p = NULL;

    OPEN("EUR", 0, id);
    OPEN("EUR", 0, other);
    CHECK_OK(c_deposit(NULL, other, 1000, "EUR", NULL, NULL, &st_));
    CHECK_OK(c_deposit(NULL, id, 100, "EUR", NULL, NULL, &st_));
    CHECK_OK_FATAL(c_pay(NULL, id, 100, "EUR", "m", NULL, &p, &st_));
    snprintf(pid, sizeof(pid), "%s", p->payment_id);
    FREE_MSG(p);
    CHECK_OK(c_status(CLOSE, NULL, id, NULL, NULL, &st_));

    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is closed",
                  c_deposit(NULL, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is closed",
                  c_withdraw(NULL, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is closed",
                  c_pay(NULL, id, 1, "EUR", "m", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is closed",
                  c_refund(NULL, id, pid, 1, "EUR", NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is closed",
                  c_status(FREEZE, NULL, id, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is closed",
                  c_status(UNFREEZE, NULL, id, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "account is closed",
                  c_status(CLOSE, NULL, id, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "source account is closed",
                  c_transfer(NULL, id, other, 1, "EUR", NULL, NULL, 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "destination account is closed",
                  c_transfer(NULL, other, id, 1, "EUR", NULL, NULL, 0, NULL, &st_));
}

static void test_insufficient_funds_and_overdraft_limit(void)
{
    char id[UUID_LEN + 1], deep[UUID_LEN + 1], msg[160];

    OPEN("EUR", 1000, id);
    CHECK_OK(c_deposit(NULL, id, 500, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION,
                  "insufficient funds: balance 500, overdraft limit 1000, withdrawal 1501",
                  c_withdraw(NULL, id, 1501, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION,
                  "insufficient funds: balance 500, overdraft limit 1000, payment 1501",
                  c_pay(NULL, id, 1501, "EUR", "m", NULL, NULL, &st_));
    CHECK_OK(c_withdraw(NULL, id, 1500, "EUR", NULL, NULL, &st_)); /* down to the limit */
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION,
                  "insufficient funds: balance -1000, overdraft limit 1000, withdrawal 1",
                  c_withdraw(NULL, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "insufficient funds",
                  c_pay(NULL, id, 1, "EUR", "m", NULL, NULL, &st_));

    /* the largest limit: no wrap-around below it */
    OPEN("EUR", INT64_MAX, deep);
    CHECK_OK(c_withdraw(NULL, deep, INT64_MAX, "EUR", NULL, NULL, &st_));
    snprintf(msg, sizeof(msg), "insufficient funds: balance -%" PRId64, INT64_MAX);
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, msg,
                  c_withdraw(NULL, deep, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, msg,
                  c_withdraw(NULL, deep, INT64_MAX, "EUR", NULL, NULL, &st_));
    CHECK_OK(c_deposit(NULL, deep, INT64_MAX, "EUR", NULL, NULL, &st_));
    CU_ASSERT_EQUAL(stream_version(&fx.a, "account", deep), 3);
}

static void test_wrong_expected_version_aborted(void)
{
    char id[UUID_LEN + 1], other[UUID_LEN + 1];
    Tally__V1__CommandResponse *r = NULL;

    OPEN("EUR", 0, id);
    OPEN("EUR", 0, other);
    CHECK_OK(c_deposit(NULL, id, 100, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(
        GRPC_STATUS_ABORTED, "expected version 1, current version 2",
        c_deposit(&(struct k){.has_expected = 1, .expected = 1}, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(
        GRPC_STATUS_ABORTED, "current version 2",
        c_withdraw(&(struct k){.has_expected = 1, .expected = 5}, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(
        GRPC_STATUS_ABORTED, "current version 2",
        c_pay(&(struct k){.has_expected = 1, .expected = 0}, id, 1, "EUR", "m", NULL, NULL, &st_));
    EXPECT_REJECT(
        GRPC_STATUS_ABORTED, "current version 2",
        c_status(FREEZE, &(struct k){.has_expected = 1, .expected = 3}, id, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_ABORTED, "current version 2",
                  c_transfer(&(struct k){.has_expected = 1, .expected = 1}, id, other, 1, "EUR",
                             NULL, NULL, 0, NULL, &st_));
    EXPECT_REJECT(
        GRPC_STATUS_INVALID_ARGUMENT, "expected_version",
        c_deposit(&(struct k){.has_expected = 1, .expected = -1}, id, 1, "EUR", NULL, NULL, &st_));
    /* the right version goes through */
    CHECK_OK_FATAL(
        c_deposit(&(struct k){.has_expected = 1, .expected = 2}, id, 1, "EUR", NULL, &r, &st_));
    CU_ASSERT_EQUAL(r->version, 3);
    FREE_MSG(r);
    CHECK_OK(c_transfer(&(struct k){.has_expected = 1, .expected = 3}, id, other, 1, "EUR", NULL,
                        NULL, 0, NULL, &st_));
}

static void test_correlation_id_malformed(void)
{
    struct copts co;
    char id[UUID_LEN + 1], long_id[130];

    OPEN("EUR", 0, id);
    repeat(long_id, "c", 129);
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "x-correlation-id",
                  c_deposit(&(struct k){.opts = with_corr(&co, &fx.a, long_id)}, id, 1, "EUR", NULL,
                            NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "x-correlation-id",
                  c_deposit(&(struct k){.opts = with_corr(&co, &fx.a, "has space")}, id, 1, "EUR",
                            NULL, NULL, &st_));
    repeat(long_id, "c", 128);
    CHECK_OK(c_deposit(&(struct k){.opts = with_corr(&co, &fx.a, long_id)}, id, 1, "EUR", NULL,
                       NULL, &st_));
}

static void test_token_missing_malformed_unknown(void)
{
    struct copts co;
    char id[UUID_LEN + 1], unknown[128], tampered[HARNESS_TOKEN_MAX + 16], junk[64];

    OPEN("EUR", 0, id);
    snprintf(unknown, sizeof(unknown), "Bearer tly_%s",
             repeat(junk, "A", 43)); /* well formed, never issued */
    snprintf(tampered, sizeof(tampered), "%s", fx.a.bearer);
    tampered[strlen(tampered) - 1] = tampered[strlen(tampered) - 1] == 'A' ? 'B' : 'A';

    EXPECT_REJECT(
        GRPC_STATUS_UNAUTHENTICATED, "missing bearer token",
        c_deposit(&(struct k){.opts = with_auth(&co, NULL)}, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(
        GRPC_STATUS_UNAUTHENTICATED, "missing bearer token",
        c_open(&(struct k){.opts = with_auth(&co, NULL)}, NULL, "x", "EUR", 0, NULL, &st_));
    EXPECT_REJECT(
        GRPC_STATUS_UNAUTHENTICATED, "missing bearer token",
        c_deposit(&(struct k){.opts = with_auth(&co, "Bearer")}, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_UNAUTHENTICATED, "missing bearer token",
                  c_deposit(&(struct k){.opts = with_auth(&co, "Basic dXNlcjpwYXNz")}, id, 1, "EUR",
                            NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_UNAUTHENTICATED, "malformed bearer token",
                  c_deposit(&(struct k){.opts = with_auth(&co, "Bearer tly_!!!")}, id, 1, "EUR",
                            NULL, NULL, &st_));
    EXPECT_REJECT(
        GRPC_STATUS_UNAUTHENTICATED, "invalid or revoked token",
        c_deposit(&(struct k){.opts = with_auth(&co, unknown)}, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(
        GRPC_STATUS_UNAUTHENTICATED, "invalid or revoked token",
        c_open(&(struct k){.opts = with_auth(&co, tampered)}, NULL, "x", "EUR", 0, NULL, &st_));
    /* the token is checked before anything else, the key included */
    EXPECT_REJECT(GRPC_STATUS_UNAUTHENTICATED, "invalid or revoked token",
                  c_deposit(&(struct k){.opts = with_auth(&co, unknown), .key = "auth-1"}, id, 1,
                            "EUR", NULL, NULL, &st_));
    /* the scheme is case-insensitive */
    snprintf(tampered, sizeof(tampered), "bearer %s", fx.a.token);
    CHECK_OK(
        c_deposit(&(struct k){.opts = with_auth(&co, tampered)}, id, 1, "EUR", NULL, NULL, &st_));
}

/* A revoked token stops working within the servers' auth cache TTL (5 s). */
static void test_token_revoked_is_unauthenticated(void)
{
    const char *argv[] = {harness_admin_path(), "--db", fx.db,    "token",     "create",
                          "--tenant",           "acme", "--name", "revoke-me", NULL};
    const char *revoke[] = {harness_admin_path(), "--db", fx.db, "token", "revoke", NULL, NULL};
    char *out = NULL, *err = NULL, token_id[UUID_LEN + 1] = "", auth[HARNESS_TOKEN_MAX + 16];
    struct copts co;
    char ghost[UUID_LEN + 1];
    grpc_status_code code = OK;
    int64_t t0, waited;

    CU_ASSERT_PTR_NOT_NULL_FATAL(harness_admin_path());
    CU_ASSERT_EQUAL_FATAL(harness_run(argv, NULL, 30000, &out, &err), 0);
    CU_ASSERT_FATAL(out != NULL && err != NULL);
    out[strcspn(out, "\n")] = '\0';
    CU_ASSERT_EQUAL(sscanf(err, "token id %36s", token_id), 1);
    snprintf(auth, sizeof(auth), "Bearer %s", out);
    free(out);
    free(err);
    out = err = NULL;
    fresh_id(ghost); /* a probe that writes nothing: NOT_FOUND while the token works */

    /* it works (and is now cached) */
    EXPECT_REJECT(
        GRPC_STATUS_NOT_FOUND, "account not found",
        c_deposit(&(struct k){.opts = with_auth(&co, auth)}, ghost, 1, "EUR", NULL, NULL, &st_));
    revoke[5] = token_id;
    CU_ASSERT_EQUAL_FATAL(harness_run(revoke, NULL, 30000, &out, &err), 0);
    free(out);
    free(err);
    t0 = mono_ms();
    for (;;) {
        trpc_status st = {0};

        code =
            c_deposit(&(struct k){.opts = with_auth(&co, auth)}, ghost, 1, "EUR", NULL, NULL, &st);
        waited = mono_ms() - t0;
        if (code != GRPC_STATUS_NOT_FOUND || waited > 8000)
            break;
        sleep_ms(250);
    }
    CU_ASSERT_EQUAL(code, GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT(waited <= 6500); /* 5 s TTL + slack */
    EXPECT_REJECT(
        GRPC_STATUS_UNAUTHENTICATED, "invalid or revoked token",
        c_open(&(struct k){.opts = with_auth(&co, auth)}, NULL, "x", "EUR", 0, NULL, &st_));
    /* the tenant's other token is unaffected */
    CHECK_OK(c_open(NULL, NULL, "x", "EUR", 0, NULL, &st_));
}

static void test_garbage_protobuf_bytes_invalid_argument(void)
{
    static const uint8_t garbage[][6] = {
        {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, /* field 1, length beyond the message */
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* unterminated varint tag */
        {0x0a, 0x05, 'a', 'b', 0x00, 0x00},   /* truncated string */
        {0x12, 0x03, 0x08, 0x80, 0x80, 0x00}, /* amount: truncated varint inside */
        {0x0f, 0x00, 0x00, 0x00, 0x00, 0x00}, /* wire type 7 */
    };
    static const char *const paths[] = {
        CMD_PATH("OpenAccount"),   CMD_PATH("Deposit"),
        CMD_PATH("Withdraw"),      CMD_PATH("Transfer"),
        CMD_PATH("Pay"),           CMD_PATH("Refund"),
        CMD_PATH("FreezeAccount"), CMD_PATH("UnfreezeAccount"),
        CMD_PATH("CloseAccount"),
    };

    for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++)
        for (size_t g = 0; g < sizeof(garbage) / sizeof(garbage[0]); g++)
            EXPECT_REJECT(
                GRPC_STATUS_INVALID_ARGUMENT, "request",
                c_raw(NULL, paths[p], NULL, garbage[g], sizeof(garbage[g]), NULL, NULL, &st_));
}

static void test_oversized_message_resource_exhausted(void)
{
    Tally__V1__OpenAccountRequest o = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    size_t n = 5u << 20; /* over the default 4 MiB limit */
    char *owner = malloc(n + 1);
    char id[UUID_LEN + 1];

    CU_ASSERT_PTR_NOT_NULL_FATAL(owner);
    memset(owner, 'x', n);
    owner[n] = '\0';
    o.owner = owner;
    o.currency = (char *)"EUR";
    EXPECT_REJECT(GRPC_STATUS_RESOURCE_EXHAUSTED, "larger than max",
                  c_raw(NULL, CMD_PATH("OpenAccount"), &o.base, NULL, 0, NULL, NULL, &st_));
    free(owner);
    /* the server still serves */
    OPEN("EUR", 0, id);
    CU_ASSERT(is_uuid(id));
}

/* Tenant B never sees tenant A's accounts: NOT_FOUND, never A's data. */
static void test_other_tenant_account_not_found(void)
{
    const struct k *b = &(struct k){.opts = &fx.b.opts};
    char id[UUID_LEN + 1], bid[UUID_LEN + 1], pid[UUID_LEN + 1];
    Tally__V1__PayResponse *p = NULL;
    Tally__V1__OpenAccountResponse *o = NULL;
    trpc_status st = {0};
    grpc_status_code code;

    fresh_id(id);
    CHECK_OK(c_open(NULL, id, "Secret Owner", "EUR", 0, NULL, &st_));
    CHECK_OK(c_deposit(NULL, id, 7777, "EUR", NULL, NULL, &st_));
    CHECK_OK_FATAL(c_pay(NULL, id, 77, "EUR", "m", NULL, &p, &st_));
    snprintf(pid, sizeof(pid), "%s", p->payment_id);
    FREE_MSG(p);
    CHECK_OK_FATAL(c_open(b, NULL, "b's own", "EUR", 0, &o, &st_));
    snprintf(bid, sizeof(bid), "%s", o->account_id);
    FREE_MSG(o);
    CHECK_OK(c_deposit(b, bid, 100, "EUR", NULL, NULL, &st_));

    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_deposit(b, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_withdraw(b, id, 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_pay(b, id, 1, "EUR", "m", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "not found", c_refund(b, id, pid, 1, "EUR", NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "payment not found",
                  c_refund(b, bid, pid, 1, "EUR", NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_status(FREEZE, b, id, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_status(UNFREEZE, b, id, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_status(CLOSE, b, id, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "source account not found",
                  c_transfer(b, id, bid, 1, "EUR", NULL, NULL, 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "destination account not found",
                  c_transfer(b, bid, id, 1, "EUR", NULL, NULL, 0, NULL, &st_));
    /* a version check does not reveal A's version (3) either */
    code = c_deposit(&(struct k){.opts = &fx.b.opts, .has_expected = 1, .expected = 3}, id, 1,
                     "EUR", NULL, NULL, &st);
    CU_ASSERT_NOT_EQUAL(code, OK);
    CU_ASSERT(strstr(st.msg, "Secret") == NULL && strstr(st.msg, "7777") == NULL &&
              strstr(st.msg, "current version 3") == NULL);
    /* nor does opening an account with A's id: B gets its own stream */
    CHECK_OK(c_open(b, id, "b's twin", "EUR", 0, NULL, &st_));
    CHECK_OK(c_deposit(b, id, 5, "EUR", NULL, NULL, &st_));
    CU_ASSERT_EQUAL(stream_version(&fx.a, "account", id), 3);
    CU_ASSERT_EQUAL(stream_version(&fx.b, "account", id), 2);
    /* ... and A's account is untouched by all this */
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "insufficient funds: balance 7700,",
                  c_withdraw(NULL, id, 7701, "EUR", NULL, NULL, &st_));
}

/* ---- suite: idempotency ---- */

/* Sends msg twice with the same idempotency key (already in msg): both OK,
 * the same bytes, and one command's rows. */
static void check_replay(int line, const char *path, const ProtobufCMessage *msg)
{
    struct counts b, a;
    trpc_status st1 = {0}, st2 = {0};
    void *r1 = NULL, *r2 = NULL;
    size_t n1 = 0, n2 = 0;
    grpc_status_code c1, c2;

    counts_get(&b);
    c1 = c_raw(NULL, path, msg, NULL, 0, &r1, &n1, &st1);
    c2 = c_raw(NULL, path, msg, NULL, 0, &r2, &n2, &st2);
    counts_get(&a);
    CHECK(line, c1 == OK);
    CHECK(line, c2 == OK);
    if (c1 != OK || c2 != OK)
        fprintf(stderr, "\n  line %d: %s: %s \"%s\", then %s \"%s\"\n", line, path,
                trpc_status_code_name(c1), st1.msg, trpc_status_code_name(c2), st2.msg);
    CHECK(line, n1 > 0 && n1 == n2 && memcmp(r1, r2, n1) == 0);
    CHECK(line, a.events == b.events + 1);
    CHECK(line, a.outbox == b.outbox + 1);
    CHECK(line, a.operations == b.operations + 1);
    CHECK(line, a.idem == b.idem + 1);
    free(r1);
    free(r2);
}

#define CHECK_REPLAY(path, msg) check_replay(__LINE__, path, &(msg).base)

static void test_same_key_same_request_replays_bytes_for_every_rpc(void)
{
    Tally__V1__OpenAccountRequest o = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__DepositRequest d = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__WithdrawRequest w = TALLY__V1__WITHDRAW_REQUEST__INIT;
    Tally__V1__TransferRequest t = TALLY__V1__TRANSFER_REQUEST__INIT;
    Tally__V1__PayRequest p = TALLY__V1__PAY_REQUEST__INIT;
    Tally__V1__RefundRequest r = TALLY__V1__REFUND_REQUEST__INIT;
    Tally__V1__FreezeAccountRequest f = TALLY__V1__FREEZE_ACCOUNT_REQUEST__INIT;
    Tally__V1__UnfreezeAccountRequest u = TALLY__V1__UNFREEZE_ACCOUNT_REQUEST__INIT;
    Tally__V1__CloseAccountRequest c = TALLY__V1__CLOSE_ACCOUNT_REQUEST__INIT;
    Tally__V1__Money m1, m2, m3, m4, m5;
    char id[UUID_LEN + 1], other[UUID_LEN + 1], pid[UUID_LEN + 1];
    Tally__V1__CommandResponse *cr = NULL;

    /* a generated account id, payment id and transfer id come back the same */
    o.owner = (char *)"idem";
    o.currency = (char *)"EUR";
    o.idempotency_key = (char *)"open-1";
    CHECK_REPLAY(CMD_PATH("OpenAccount"), o);

    OPEN("EUR", 0, id);
    OPEN("EUR", 0, other);
    d.account_id = id;
    d.amount = money(&m1, 1000, "EUR");
    d.idempotency_key = (char *)"dep-1";
    CHECK_REPLAY(CMD_PATH("Deposit"), d);
    w.account_id = id;
    w.amount = money(&m2, 100, "EUR");
    w.idempotency_key = (char *)"wd-1";
    CHECK_REPLAY(CMD_PATH("Withdraw"), w);
    t.source_account_id = id;
    t.destination_account_id = other;
    t.amount = money(&m3, 10, "EUR");
    t.idempotency_key = (char *)"tr-1";
    CHECK_REPLAY(CMD_PATH("Transfer"), t);
    p.account_id = id;
    p.amount = money(&m4, 100, "EUR");
    p.merchant_reference = (char *)"m";
    fresh_id(pid);
    p.payment_id = pid;
    p.idempotency_key = (char *)"pay-1";
    CHECK_REPLAY(CMD_PATH("Pay"), p);
    r.account_id = id;
    r.payment_id = pid;
    r.amount = money(&m5, 40, "EUR");
    r.idempotency_key = (char *)"ref-1";
    CHECK_REPLAY(CMD_PATH("Refund"), r);
    f.account_id = id;
    f.idempotency_key = (char *)"frz-1";
    CHECK_REPLAY(CMD_PATH("FreezeAccount"), f);
    u.account_id = id;
    u.idempotency_key = (char *)"unf-1";
    CHECK_REPLAY(CMD_PATH("UnfreezeAccount"), u);
    c.account_id = other;
    c.idempotency_key = (char *)"cls-1";
    CHECK_OK(c_status(FREEZE, NULL, other, NULL, NULL, &st_));
    CHECK_REPLAY(CMD_PATH("CloseAccount"), c);

    /* the stored answer is the original even after the stream moved on:
     * the replay of dep-1 still says version 2 */
    CHECK_OK(c_deposit(NULL, id, 1, "EUR", NULL, NULL, &st_));
    CHECK_OK_FATAL(c_deposit(&(struct k){.key = "dep-1"}, id, 1000, "EUR", NULL, &cr, &st_));
    CU_ASSERT_EQUAL(cr->version, 2);
    FREE_MSG(cr);
}

static void test_same_key_different_request_failed_precondition(void)
{
    Tally__V1__DepositRequest d = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__Money m;
    char id[UUID_LEN + 1], other[UUID_LEN + 1];

    OPEN("EUR", 0, id);
    OPEN("EUR", 0, other);
    CHECK_OK(c_deposit(&(struct k){.key = "k-1"}, id, 100, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "idempotency key k-1",
                  c_deposit(&(struct k){.key = "k-1"}, id, 200, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "different request",
                  c_deposit(&(struct k){.key = "k-1"}, other, 100, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "different request",
                  c_deposit(&(struct k){.key = "k-1"}, id, 100, "EUR", "ref", NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "different request",
                  c_deposit(&(struct k){.key = "k-1", .has_expected = 1, .expected = 1}, id, 100,
                            "EUR", NULL, NULL, &st_));
    /* the same bytes to another method are another request */
    d.account_id = id;
    d.amount = money(&m, 100, "EUR");
    d.idempotency_key = (char *)"k-1";
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "different request",
                  c_raw(NULL, CMD_PATH("Withdraw"), &d.base, NULL, 0, NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "different request",
                  c_open(&(struct k){.key = "k-1"}, NULL, "x", "EUR", 0, NULL, &st_));
    /* keys are per tenant: B's k-1 is a key of its own */
    {
        Tally__V1__OpenAccountResponse *o = NULL;

        CHECK_OK_FATAL(c_open(&(struct k){.opts = &fx.b.opts}, NULL, "b", "EUR", 0, &o, &st_));
        CHECK_OK(c_deposit(&(struct k){.key = "k-1", .opts = &fx.b.opts}, o->account_id, 100, "EUR",
                           NULL, NULL, &st_));
        FREE_MSG(o);
    }
    /* a key of up to 128 bytes; longer is an input error */
    {
        char key[130];

        repeat(key, "k", 129);
        EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "idempotency_key",
                      c_deposit(&(struct k){.key = key}, id, 1, "EUR", NULL, NULL, &st_));
        repeat(key, "k", 128);
        CHECK_OK(c_deposit(&(struct k){.key = key}, id, 1, "EUR", NULL, NULL, &st_));
    }
}

static void test_business_failure_is_stored_and_replayed(void)
{
    char id[UUID_LEN + 1], ghost[UUID_LEN + 1], msg[256];
    trpc_status st = {0};

    /* FAILED_PRECONDITION: stays the answer after the funds arrive */
    OPEN("EUR", 0, id);
    CHECK_OK(c_deposit(NULL, id, 100, "EUR", NULL, NULL, &st_));
    CU_ASSERT_EQUAL(c_withdraw(&(struct k){.key = "w-1"}, id, 500, "EUR", NULL, NULL, &st),
                    GRPC_STATUS_FAILED_PRECONDITION);
    snprintf(msg, sizeof(msg), "%s", st.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "insufficient funds: balance 100"));
    CU_ASSERT_EQUAL(db_int("SELECT status_code FROM idempotency_keys WHERE key = 'w-1'", NULL),
                    GRPC_STATUS_FAILED_PRECONDITION);
    CHECK_OK(c_deposit(NULL, id, 1000, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, msg,
                  c_withdraw(&(struct k){.key = "w-1"}, id, 500, "EUR", NULL, NULL, &st_));
    /* ... while the same key with another request is still refused */
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "different request",
                  c_withdraw(&(struct k){.key = "w-1"}, id, 50, "EUR", NULL, NULL, &st_));

    /* NOT_FOUND: stays the answer after the account is opened */
    fresh_id(ghost);
    EXPECT_REJECT_STORED(GRPC_STATUS_NOT_FOUND, "account not found",
                         c_deposit(&(struct k){.key = "g-1"}, ghost, 1, "EUR", NULL, NULL, &st_));
    CHECK_OK(c_open(NULL, ghost, "late", "EUR", 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_NOT_FOUND, "account not found",
                  c_deposit(&(struct k){.key = "g-1"}, ghost, 1, "EUR", NULL, NULL, &st_));

    /* ALREADY_EXISTS */
    EXPECT_REJECT_STORED(GRPC_STATUS_ALREADY_EXISTS, "account already exists",
                         c_open(&(struct k){.key = "o-1"}, ghost, "again", "EUR", 0, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_ALREADY_EXISTS, "account already exists",
                  c_open(&(struct k){.key = "o-1"}, ghost, "again", "EUR", 0, NULL, &st_));
}

/* INVALID_ARGUMENT, UNAUTHENTICATED and ABORTED are not remembered: the key
 * stays free for the corrected or later retry. */
static void test_input_errors_and_conflicts_are_not_stored(void)
{
    char id[UUID_LEN + 1], unknown[128], junk[64];
    struct copts co;
    Tally__V1__CommandResponse *r = NULL;

    OPEN("EUR", 0, id);
    EXPECT_REJECT(GRPC_STATUS_INVALID_ARGUMENT, "amount must be positive",
                  c_deposit(&(struct k){.key = "bad-1"}, id, 0, "EUR", NULL, NULL, &st_));
    CHECK_OK(c_deposit(&(struct k){.key = "bad-1"}, id, 100, "EUR", NULL, NULL, &st_));

    snprintf(unknown, sizeof(unknown), "Bearer tly_%s", repeat(junk, "Z", 43));
    EXPECT_REJECT(GRPC_STATUS_UNAUTHENTICATED, "invalid or revoked token",
                  c_deposit(&(struct k){.key = "auth-1", .opts = with_auth(&co, unknown)}, id, 5,
                            "EUR", NULL, NULL, &st_));
    CHECK_OK(c_deposit(&(struct k){.key = "auth-1"}, id, 5, "EUR", NULL, NULL, &st_));

    /* version 3 now: expected 5 conflicts, then succeeds once it is true */
    EXPECT_REJECT(GRPC_STATUS_ABORTED, "current version 3",
                  c_deposit(&(struct k){.key = "ab-1", .has_expected = 1, .expected = 5}, id, 7,
                            "EUR", NULL, NULL, &st_));
    CHECK_OK(c_deposit(NULL, id, 1, "EUR", NULL, NULL, &st_));
    CHECK_OK(c_deposit(NULL, id, 1, "EUR", NULL, NULL, &st_));
    CHECK_OK_FATAL(c_deposit(&(struct k){.key = "ab-1", .has_expected = 1, .expected = 5}, id, 7,
                             "EUR", NULL, &r, &st_));
    CU_ASSERT_EQUAL(r->version, 6);
    FREE_MSG(r);
}

#define RACE_THREADS 16

struct race {
    pthread_barrier_t *go;
    const char *path;
    const uint8_t *req;
    size_t req_len;
    grpc_status_code code;
    trpc_status st;
    void *resp;
    size_t resp_len;
};

static void *race_main(void *arg)
{
    struct race *r = arg;

    pthread_barrier_wait(r->go);
    r->code = trpc_unary_raw(chan(), r->path, r->req, r->req_len, &r->resp, &r->resp_len,
                             &fx.a.opts, &r->st);
    return NULL;
}

/* 16 threads send the same request with the same key at once: one event,
 * 16 identical replies. Rounds over Deposit, OpenAccount with a generated id
 * (a lost race would open a second account), Transfer with the caller's
 * transfer id and OpenAccount with the caller's id (the losers run into the
 * stream's version first, then find the winner's answer). */
static void test_concurrent_retries_of_one_key(void)
{
    char id[UUID_LEN + 1], dst[UUID_LEN + 1], key[32], chosen[UUID_LEN + 1];
    static const char *const paths[] = {CMD_PATH("Deposit"), CMD_PATH("OpenAccount"),
                                        CMD_PATH("Transfer"), CMD_PATH("OpenAccount")};

    OPEN("EUR", 0, id);
    OPEN("EUR", 0, dst);
    for (int round = 0; round < 8; round++) {
        Tally__V1__DepositRequest d = TALLY__V1__DEPOSIT_REQUEST__INIT;
        Tally__V1__OpenAccountRequest o = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
        Tally__V1__TransferRequest t = TALLY__V1__TRANSFER_REQUEST__INIT;
        Tally__V1__Money m;
        const ProtobufCMessage *msg;
        struct race races[RACE_THREADS];
        pthread_t th[RACE_THREADS];
        pthread_barrier_t go;
        struct counts b, a;
        uint8_t buf[256];
        size_t len;
        int same = 1, all_ok = 1, kind = round % 4;

        snprintf(key, sizeof(key), "race-%d", round);
        fresh_id(chosen);
        if (kind == 0) {
            d.account_id = id;
            d.amount = money(&m, 100 + round, "EUR");
            d.idempotency_key = key;
            msg = &d.base;
        } else if (kind == 2) {
            t.source_account_id = id;
            t.destination_account_id = dst;
            t.amount = money(&m, 1, "EUR");
            t.transfer_id = chosen;
            t.idempotency_key = key;
            msg = &t.base;
        } else {
            o.account_id = kind == 3 ? chosen : (char *)"";
            o.owner = (char *)"racer";
            o.currency = (char *)"EUR";
            o.idempotency_key = key;
            msg = &o.base;
        }
        len = protobuf_c_message_pack(msg, buf);
        counts_get(&b);
        pthread_barrier_init(&go, NULL, RACE_THREADS);
        for (int i = 0; i < RACE_THREADS; i++) {
            races[i] = (struct race){.go = &go, .path = paths[kind], .req = buf, .req_len = len};
            CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, race_main, &races[i]), 0);
        }
        for (int i = 0; i < RACE_THREADS; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        counts_get(&a);
        for (int i = 0; i < RACE_THREADS; i++) {
            if (races[i].code != OK) {
                all_ok = 0;
                fprintf(stderr, "\n  race %d (%s) thread %d: %s \"%s\"\n", round, paths[kind], i,
                        trpc_status_code_name(races[i].code), races[i].st.msg);
            } else if (races[0].code == OK &&
                       (races[i].resp_len != races[0].resp_len ||
                        memcmp(races[i].resp, races[0].resp, races[0].resp_len) != 0)) {
                same = 0;
            }
        }
        CU_ASSERT(all_ok);
        CU_ASSERT(same);
        CU_ASSERT_EQUAL(a.events, b.events + 1);
        CU_ASSERT_EQUAL(a.outbox, b.outbox + 1);
        CU_ASSERT_EQUAL(a.operations, b.operations + 1);
        CU_ASSERT_EQUAL(a.idem, b.idem + 1);
        if (a.events != b.events + 1)
            fprintf(stderr, "\n  race %d (%s): %" PRId64 " events\n", round, paths[kind],
                    a.events - b.events);
        for (int i = 0; i < RACE_THREADS; i++)
            free(races[i].resp);
    }
    CU_ASSERT_EQUAL(stream_version(&fx.a, "account", id), 3);
}

/* ---- suite: concurrency ---- */

#define CONC_THREADS  32
#define CONC_ACCOUNTS 4
#define CONC_OPS      40    /* per thread */
#define CONC_MAX_MS   25000 /* and no longer than this */
#define CONC_INITIAL  2000

static const int64_t conc_limits[CONC_ACCOUNTS] = {0, 100, 1000, 50000};
static char conc_ids[CONC_ACCOUNTS][UUID_LEN + 1];

struct ack {
    char op[UUID_LEN + 1];
    int account;
    int withdraw;
    int64_t amount;
    int64_t version;
};

struct worker {
    pthread_barrier_t *go;
    unsigned seed;
    int64_t deadline;
    struct ack acks[CONC_OPS];
    int n_acks, n_insufficient, n_aborted, n_other;
    grpc_status_code other_code;
    char other_msg[256];
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    pthread_barrier_wait(w->go);
    for (int i = 0; i < CONC_OPS && mono_ms() < w->deadline; i++) {
        int acct = (int)(rand_r(&w->seed) % CONC_ACCOUNTS);
        int withdraw = rand_r(&w->seed) % 100 < 55;
        int64_t amount = 1 + rand_r(&w->seed) % (withdraw ? 1500 : 1000);
        Tally__V1__CommandResponse *r = NULL;
        trpc_status st = {0};
        grpc_status_code code = withdraw
                                    ? c_withdraw(NULL, conc_ids[acct], amount, "EUR", NULL, &r, &st)
                                    : c_deposit(NULL, conc_ids[acct], amount, "EUR", NULL, &r, &st);

        if (code == OK) {
            struct ack *a = &w->acks[w->n_acks++];

            snprintf(a->op, sizeof(a->op), "%s", r->operation_id);
            a->account = acct;
            a->withdraw = withdraw;
            a->amount = amount;
            a->version = r->version;
        } else if (code == GRPC_STATUS_FAILED_PRECONDITION && withdraw &&
                   strstr(st.msg, "insufficient funds") != NULL) {
            w->n_insufficient++;
        } else if (code == GRPC_STATUS_ABORTED) {
            w->n_aborted++; /* allowed (bounded retries), but must write nothing */
        } else {
            if (w->n_other++ == 0) {
                w->other_code = code;
                snprintf(w->other_msg, sizeof(w->other_msg), "%s", st.msg);
            }
        }
        FREE_MSG(r);
    }
    return NULL;
}

static int ack_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ack *)a)->op, ((const struct ack *)b)->op);
}

static void test_concurrent_writers_keep_every_invariant(void)
{
    static struct worker workers[CONC_THREADS];
    static struct ack all[CONC_THREADS * CONC_OPS];
    pthread_t th[CONC_THREADS];
    pthread_barrier_t go;
    int n_all = 0, insufficient = 0, aborted = 0, other = 0;
    int64_t deadline;
    PGresult *res;

    for (int a = 0; a < CONC_ACCOUNTS; a++) {
        OPEN("EUR", conc_limits[a], conc_ids[a]);
        CHECK_OK(c_deposit(NULL, conc_ids[a], CONC_INITIAL, "EUR", NULL, NULL, &st_));
    }
    pthread_barrier_init(&go, NULL, CONC_THREADS);
    deadline = mono_ms() + CONC_MAX_MS;
    for (int i = 0; i < CONC_THREADS; i++) {
        memset(&workers[i], 0, sizeof(workers[i]));
        workers[i].go = &go;
        workers[i].seed = 0x5eed0000u + (unsigned)i;
        workers[i].deadline = deadline;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < CONC_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < CONC_THREADS; i++) {
        memcpy(&all[n_all], workers[i].acks, (size_t)workers[i].n_acks * sizeof(struct ack));
        n_all += workers[i].n_acks;
        insufficient += workers[i].n_insufficient;
        aborted += workers[i].n_aborted;
        other += workers[i].n_other;
        if (workers[i].n_other)
            fprintf(stderr, "\n  thread %d: %d unexpected answers, first %s \"%s\"\n", i,
                    workers[i].n_other, trpc_status_code_name(workers[i].other_code),
                    workers[i].other_msg);
    }
    fprintf(stderr, "\n  %d acknowledged, %d insufficient funds, %d aborted ", n_all, insufficient,
            aborted);
    CU_ASSERT_EQUAL(other, 0);
    CU_ASSERT(n_all >= CONC_THREADS * CONC_OPS / 4); /* it did run */
    CU_ASSERT(insufficient > 0);                     /* and it did hit the limits */
    qsort(all, (size_t)n_all, sizeof(all[0]), ack_cmp);

    /* per account: contiguous versions, never below the limit in any prefix,
     * every event either setup or acknowledged exactly once */
    for (int a = 0; a < CONC_ACCOUNTS; a++) {
        int64_t balance = 0, limit = -1, prefix_bad = 0, gaps = 0, unknown = 0, mismatch = 0;
        int n_rows, acked_here = 0;
        char msg[160];

        res = dbq("SELECT version, event_type, operation_id::text,"
                  "       COALESCE((data->'amount'->>'minorUnits')::bigint, 0),"
                  "       COALESCE((data->>'overdraftLimit')::bigint, 0)"
                  "  FROM events WHERE tenant_id = $1::uuid AND aggregate_type = 'account'"
                  "   AND aggregate_id = $2::uuid ORDER BY version",
                  fx.a.id, conc_ids[a], NULL);
        n_rows = PQntuples(res);
        for (int i = 0; i < n_rows; i++) {
            int64_t version = strtoll(PQgetvalue(res, i, 0), NULL, 10);
            const char *type = PQgetvalue(res, i, 1);
            struct ack key, *hit;
            int64_t amount = strtoll(PQgetvalue(res, i, 3), NULL, 10);

            if (version != i + 1)
                gaps++;
            if (strcmp(type, "AccountOpened") == 0) {
                limit = strtoll(PQgetvalue(res, i, 4), NULL, 10);
                continue;
            }
            if (strcmp(type, "Deposited") == 0)
                balance += amount;
            else if (strcmp(type, "Withdrawn") == 0)
                balance -= amount;
            else
                unknown++;
            if (balance < -limit)
                prefix_bad++;
            if (i == 1) /* the setup deposit */
                continue;
            snprintf(key.op, sizeof(key.op), "%s", PQgetvalue(res, i, 2));
            hit = bsearch(&key, all, (size_t)n_all, sizeof(all[0]), ack_cmp);
            if (hit == NULL || hit->account != a ||
                hit->withdraw != (strcmp(type, "Withdrawn") == 0) || hit->amount != amount ||
                hit->version != version)
                mismatch++;
            else
                acked_here++;
        }
        PQclear(res);
        CU_ASSERT_EQUAL(limit, conc_limits[a]);
        CU_ASSERT_EQUAL(gaps, 0);
        CU_ASSERT_EQUAL(prefix_bad, 0);
        CU_ASSERT_EQUAL(unknown, 0);
        CU_ASSERT_EQUAL(mismatch, 0);
        {
            int expected_here = 0;

            for (int i = 0; i < n_all; i++)
                expected_here += all[i].account == a;
            CU_ASSERT_EQUAL(acked_here, expected_here); /* none lost, none extra */
            CU_ASSERT_EQUAL(n_rows, 2 + expected_here);
        }
        /* the server decides on the folded balance: one unit too much fails
         * (and says the balance), exactly all of it succeeds */
        snprintf(msg, sizeof(msg),
                 "insufficient funds: balance %" PRId64 ", overdraft limit %" PRId64 ",", balance,
                 limit);
        EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, msg,
                      c_withdraw(NULL, conc_ids[a], balance + limit + 1, "EUR", NULL, NULL, &st_));
        if (balance + limit > 0)
            CHECK_OK(c_withdraw(NULL, conc_ids[a], balance + limit, "EUR", NULL, NULL, &st_));
    }
    /* each acknowledged operation id once in the whole log */
    res = dbq("SELECT count(*), count(DISTINCT operation_id) FROM events", NULL);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    PQclear(res);
    for (int i = 1; i < n_all; i++)
        CU_ASSERT(strcmp(all[i - 1].op, all[i].op) != 0);
}

static void test_outbox_after_concurrency(void)
{
    check_outbox(__LINE__);
    CU_ASSERT_EQUAL(db_int("SELECT count(*) FROM operations", NULL),
                    db_int("SELECT count(*) FROM events", NULL));
    /* one command, one transaction */
    CU_ASSERT_EQUAL(db_int("SELECT count(DISTINCT tx_id) FROM events", NULL),
                    db_int("SELECT count(*) FROM events", NULL));
}

/* ---- suite: snapshots ---- */

static void test_snapshots_every_100_events_and_restart(void)
{
    char id[UUID_LEN + 1], v[24], msg[160], buf[64];
    int64_t balance = 0;
    PGresult *res;

    OPEN("EUR", 0, id);
    for (int i = 1; i <= 250; i++) {
        trpc_status st = {0};
        grpc_status_code code = c_deposit(NULL, id, i, "EUR", NULL, NULL, &st);

        if (code != OK) {
            report(__LINE__, "deposit", code, &st);
            CU_FAIL_FATAL("deposit failed");
        }
        balance += i;
    }
    CU_ASSERT_EQUAL(stream_version(&fx.a, "account", id), 251);
    CU_ASSERT_STRING_EQUAL(db_str(buf, sizeof(buf),
                                  "SELECT string_agg(version::text, ',' ORDER BY version)"
                                  "  FROM snapshots WHERE aggregate_id = $1::uuid",
                                  id, NULL),
                           "100,200");
    /* each snapshot is the fold of the events up to its version */
    for (int s = 100; s <= 200; s += 100) {
        snprintf(v, sizeof(v), "%d", s);
        res =
            dbq("SELECT s.state->>'balance' = (SELECT COALESCE(sum((data->'amount'->>'minorUnits')"
                "::bigint), 0) FROM events e WHERE e.aggregate_id = s.aggregate_id"
                "   AND e.tenant_id = s.tenant_id AND e.version <= s.version)::text,"
                "       s.state->>'version', s.state->>'accountId', s.state->>'currency',"
                "       s.state->>'status', s.state->>'overdraftLimit', s.state->>'exists',"
                "       s.aggregate_type, s.state::text"
                "  FROM snapshots s WHERE s.tenant_id = $1::uuid AND s.aggregate_id = $2::uuid"
                "   AND s.version = $3::bigint",
                fx.a.id, id, v, NULL);
        CU_ASSERT_EQUAL_FATAL(PQntuples(res), 1);
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 0), "t");
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 1), v);
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 2), id);
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 3), "EUR");
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 4), "ACCOUNT_STATUS_OPEN");
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 5), "0");
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 6), "true");
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 7), "account");
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
            fprintf(stderr, "\n  snapshot %s: %s\n", v, PQgetvalue(res, 0, 8));
        PQclear(res);
    }

    /* a new process: no cache, the state comes from snapshot 200 + events */
    daemon_stop_checked(__LINE__);
    CU_ASSERT_EQUAL_FATAL(daemon_start(), 0);
    snprintf(msg, sizeof(msg), "insufficient funds: balance %" PRId64 ",", balance);
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, msg,
                  c_withdraw(NULL, id, balance + 1, "EUR", NULL, NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_ABORTED, "current version 251",
                  c_withdraw(&(struct k){.has_expected = 1, .expected = 250}, id, balance, "EUR",
                             NULL, NULL, &st_));
    CHECK_OK(c_withdraw(&(struct k){.has_expected = 1, .expected = 251}, id, balance, "EUR", NULL,
                        NULL, &st_));
    EXPECT_REJECT(GRPC_STATUS_FAILED_PRECONDITION, "insufficient funds: balance 0,",
                  c_withdraw(NULL, id, 1, "EUR", NULL, NULL, &st_));
    CU_ASSERT_EQUAL(stream_version(&fx.a, "account", id), 252);
}

/* ---- suite: the doorbell ---- */

struct listener {
    PGconn *conn;
    int n;        /* notifications received */
    int bad;      /* on another channel or with a payload */
    int pids[64]; /* distinct backend pids that sent them */
    int n_pids;
};

static int listen_start(struct listener *l)
{
    PGresult *res;

    memset(l, 0, sizeof(*l));
    l->conn = PQconnectdb(fx.db);
    if (PQstatus(l->conn) != CONNECTION_OK)
        return -1;
    res = PQexec(l->conn, "LISTEN tally_outbox");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Collects notifications until want have arrived (then for settle_ms more)
 * or until timeout_ms have passed. */
static void listen_collect(struct listener *l, int want, long settle_ms, long timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;

    for (;;) {
        PGnotify *n;
        fd_set fds;
        struct timeval tv;
        int64_t left = end - mono_ms();

        if (left <= 0)
            break;
        FD_ZERO(&fds);
        FD_SET(PQsocket(l->conn), &fds);
        tv.tv_sec = (time_t)(left / 1000);
        tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
        if (select(PQsocket(l->conn) + 1, &fds, NULL, NULL, &tv) < 0 && errno != EINTR)
            break;
        if (!PQconsumeInput(l->conn))
            break;
        while ((n = PQnotifies(l->conn)) != NULL) {
            int seen = 0;

            l->n++;
            if (strcmp(n->relname, "tally_outbox") != 0 || n->extra[0] != '\0')
                l->bad++;
            for (int i = 0; i < l->n_pids; i++)
                seen |= l->pids[i] == n->be_pid;
            if (!seen && l->n_pids < 64)
                l->pids[l->n_pids++] = n->be_pid;
            if (l->n == want) {
                int64_t settle = mono_ms() + settle_ms;

                end = settle < end ? settle : end;
            }
            PQfreemem(n);
        }
    }
}

struct burst {
    pthread_barrier_t *go;
    char id[UUID_LEN + 1];
    int ok;
};

#define BURST_THREADS  16
#define BURST_COMMANDS 25 /* per thread */

static void *burst_main(void *arg)
{
    struct burst *b = arg;

    pthread_barrier_wait(b->go);
    for (int i = 0; i < BURST_COMMANDS; i++) {
        trpc_status st = {0};

        b->ok += c_deposit(NULL, b->id, 1, "EUR", NULL, NULL, &st) == OK;
    }
    return NULL;
}

static void test_doorbell_rings_after_a_command(void)
{
    struct listener l;
    char id[UUID_LEN + 1];

    CU_ASSERT_EQUAL_FATAL(listen_start(&l), 0);
    OPEN("EUR", 0, id);
    listen_collect(&l, 1, 200, 5000);
    CU_ASSERT(l.n >= 1);
    CU_ASSERT_EQUAL(l.bad, 0);
    PQfinish(l.conn);
}

/* A burst of concurrent commands: the notifications arrive, fewer than the
 * commands (coalesced), all from the doorbell's own connection, never from
 * a connection that runs commands (so no command NOTIFYs inside its
 * transaction). */
static void test_doorbell_coalesces_and_never_notifies_from_a_command(void)
{
    struct listener l;
    struct burst bursts[BURST_THREADS];
    pthread_t th[BURST_THREADS];
    pthread_barrier_t go;
    PGresult *res;
    int ok = 0, from_worker = 0;

    for (int i = 0; i < BURST_THREADS; i++) {
        memset(&bursts[i], 0, sizeof(bursts[i]));
        bursts[i].go = &go;
        OPEN("EUR", 0, bursts[i].id);
    }
    sleep_ms(300); /* let the doorbell of the opens ring out */
    CU_ASSERT_EQUAL_FATAL(listen_start(&l), 0);
    pthread_barrier_init(&go, NULL, BURST_THREADS);
    for (int i = 0; i < BURST_THREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, burst_main, &bursts[i]), 0);
    for (int i = 0; i < BURST_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < BURST_THREADS; i++)
        ok += bursts[i].ok;
    CU_ASSERT_EQUAL(ok, BURST_THREADS * BURST_COMMANDS);
    listen_collect(&l, 1, 1000, 5000);
    fprintf(stderr, "\n  %d commands, %d notifications from %d backend(s) ", ok, l.n, l.n_pids);
    CU_ASSERT(l.n >= 1);
    CU_ASSERT(l.n < ok);
    CU_ASSERT_EQUAL(l.bad, 0);
    CU_ASSERT_EQUAL(l.n_pids, 1); /* one doorbell connection */

    /* the connections that run commands (application_name tally-command) */
    res = dbq("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
              "   AND application_name = 'tally-command'",
              NULL);
    CU_ASSERT(PQntuples(res) >= 1);
    for (int i = 0; i < PQntuples(res); i++)
        for (int p = 0; p < l.n_pids; p++)
            from_worker += atoi(PQgetvalue(res, i, 0)) == l.pids[p];
    CU_ASSERT_EQUAL(from_worker, 0);
    PQclear(res);
    PQfinish(l.conn);
}

/* ---- suite: two instances on one database ---- */

/* Design: command servers scale out. Each keeps a cache of account states,
 * which another instance's writes make stale; a stale cache may cost a
 * retry, but every answer must rest on the log. */
static struct {
    struct harness_daemon d;
    int running;
    trpc_channel *ch;
} two;

static int two_init(void)
{
    if (suite_init() != 0)
        return -1;
    memset(&two, 0, sizeof(two));
    if (harness_daemon_start(&two.d, HARNESS_COMMAND, fx.db, NULL, NULL) != 0)
        return -1;
    two.running = 1;
    two.ch = trpc_channel_new(two.d.addr);
    return two.ch ? 0 : -1;
}

static int two_cleanup(void)
{
    ch_override = NULL;
    trpc_channel_free(two.ch);
    if (two.running)
        harness_daemon_stop(&two.d, STOP_MS);
    two.running = 0;
    return suite_cleanup();
}

/* The calls that follow go to instance 1 or 2. */
static void via(int instance)
{
    ch_override = instance == 1 ? NULL : two.ch;
}

static void test_decisions_never_rest_on_another_instance_stale_cache(void)
{
    char id[UUID_LEN + 1], dst[UUID_LEN + 1];
    Tally__V1__CommandResponse *r = NULL;

    via(1);
    OPEN("EUR", 0, id); /* instance 1 caches: balance 0 */
    OPEN("EUR", 0, dst);
    via(2);
    CHECK_OK(c_deposit(NULL, id, 1000, "EUR", NULL, NULL, &st_));
    via(1);
    CHECK_OK_FATAL(c_withdraw(NULL, id, 500, "EUR", NULL, &r, &st_));
    CU_ASSERT_EQUAL(r->version, 3);
    FREE_MSG(r);

    /* frozen in instance 1's cache, unfrozen by instance 2: a transfer ... */
    CHECK_OK(c_status(FREEZE, NULL, id, NULL, NULL, &st_));
    via(2);
    CHECK_OK(c_status(UNFREEZE, NULL, id, NULL, NULL, &st_));
    via(1);
    CHECK_OK(c_transfer(NULL, id, dst, 1, "EUR", NULL, NULL, 0, NULL, &st_));
    /* ... and a deposit */
    CHECK_OK(c_status(FREEZE, NULL, id, NULL, NULL, &st_));
    via(2);
    CHECK_OK(c_status(UNFREEZE, NULL, id, NULL, NULL, &st_));
    via(1);
    CHECK_OK(c_deposit(NULL, id, 1, "EUR", NULL, NULL, &st_));

    /* emptied by instance 2: instance 1 may close it */
    via(2);
    CHECK_OK(c_withdraw(NULL, id, 501, "EUR", NULL, NULL, &st_));
    via(1);
    CHECK_OK(c_status(CLOSE, NULL, id, NULL, NULL, &st_));
    CU_ASSERT_EQUAL(stream_version(&fx.a, "account", id), 10);
}

/* A refusal decided on a stale state would be stored under the key for
 * good: the retry would never succeed. */
static void test_stale_cache_refusal_is_never_stored_under_a_key(void)
{
    char id[UUID_LEN + 1];

    via(1);
    OPEN("EUR", 0, id);
    CHECK_OK(c_deposit(NULL, id, 10, "EUR", NULL, NULL, &st_)); /* cached: 10 */
    via(2);
    CHECK_OK(c_deposit(NULL, id, 990, "EUR", NULL, NULL, &st_));
    via(1);
    CHECK_OK(c_pay(&(struct k){.key = "pay-stale"}, id, 600, "EUR", "m", NULL, NULL, &st_));
    CU_ASSERT_EQUAL(
        db_int("SELECT status_code FROM idempotency_keys WHERE key = 'pay-stale'", NULL), 0);
    /* and a real refusal is still a refusal (confirmed against the log) */
    EXPECT_REJECT_STORED(
        GRPC_STATUS_FAILED_PRECONDITION, "insufficient funds: balance 400,",
        c_withdraw(&(struct k){.key = "wd-real"}, id, 401, "EUR", NULL, NULL, &st_));
    via(1);
}

static void test_second_instance_exits_cleanly(void)
{
    char *log;
    int status, dirty;

    via(1);
    trpc_channel_free(two.ch);
    two.ch = NULL;
    status = harness_daemon_stop(&two.d, STOP_MS);
    two.running = 0;
    CU_ASSERT_EQUAL(status, 0);
    log = harness_daemon_log(&two.d);
    CU_ASSERT_PTR_NOT_NULL(log);
    dirty =
        log != NULL && (strstr(log, "Sanitizer") != NULL || strstr(log, "runtime error") != NULL);
    CU_ASSERT(!dirty);
    if (dirty)
        harness_daemon_print_log(&two.d);
    free(log);
}

/* ---- registry ---- */

static CU_TestInfo happy_tests[] = {
    {"OpenAccount with a generated id", test_open_account_generated_id},
    {"OpenAccount with the caller's id and x-correlation-id",
     test_open_account_caller_id_and_correlation_id},
    {"Deposit and Withdraw", test_deposit_and_withdraw},
    {"Transfer is PENDING with TransferRequested",
     test_transfer_is_pending_with_transfer_requested},
    {"Transfer wait=true is DEADLINE_EXCEEDED until the projector exists",
     test_transfer_wait_deadline_exceeded_until_projector_exists},
    {"Pay, Refund partially then fully", test_pay_and_refund_partially_then_fully},
    {"Freeze, Unfreeze, Close at zero", test_freeze_unfreeze_and_close_at_zero},
    {"Refund and Close accepted on a frozen account",
     test_refund_and_close_accepted_on_frozen_account},
    {"outbox: one row per event", test_outbox_one_row_per_event},
    {"daemon exits cleanly", test_daemon_exits_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo error_tests[] = {
    {"ids missing or malformed: INVALID_ARGUMENT", test_ids_missing_or_malformed},
    {"amounts missing, zero, negative: INVALID_ARGUMENT", test_amounts_missing_zero_negative},
    {"balance overflow: FAILED_PRECONDITION", test_balance_overflow_is_failed_precondition},
    {"currencies unknown and mismatched", test_currencies_unknown_and_mismatched},
    {"text fields: 256 bytes, no more", test_text_fields_limits},
    {"strings not UTF-8: INVALID_ARGUMENT", test_strings_not_utf8},
    {"unknown account or payment: NOT_FOUND", test_unknown_account_not_found},
    {"ids taken: ALREADY_EXISTS", test_ids_taken_already_exists},
    {"frozen account", test_frozen_account_rejects_money_movements},
    {"closed account", test_closed_account_rejects_everything},
    {"insufficient funds and the overdraft limit", test_insufficient_funds_and_overdraft_limit},
    {"wrong expected_version: ABORTED with the current version",
     test_wrong_expected_version_aborted},
    {"x-correlation-id malformed: INVALID_ARGUMENT", test_correlation_id_malformed},
    {"token missing, malformed, unknown: UNAUTHENTICATED", test_token_missing_malformed_unknown},
    {"token revoked: UNAUTHENTICATED within the cache TTL", test_token_revoked_is_unauthenticated},
    {"garbage protobuf bytes: INVALID_ARGUMENT", test_garbage_protobuf_bytes_invalid_argument},
    {"oversized message: RESOURCE_EXHAUSTED", test_oversized_message_resource_exhausted},
    {"another tenant's account: NOT_FOUND", test_other_tenant_account_not_found},
    {"daemon exits cleanly", test_daemon_exits_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo idempotency_tests[] = {
    {"same key, same request: the same bytes, one event (every RPC)",
     test_same_key_same_request_replays_bytes_for_every_rpc},
    {"same key, different request: FAILED_PRECONDITION",
     test_same_key_different_request_failed_precondition},
    {"business failures are stored and replayed", test_business_failure_is_stored_and_replayed},
    {"input errors, UNAUTHENTICATED, ABORTED are not stored",
     test_input_errors_and_conflicts_are_not_stored},
    {"16 concurrent retries of one key: one event, identical replies",
     test_concurrent_retries_of_one_key},
    {"daemon exits cleanly", test_daemon_exits_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo concurrency_tests[] = {
    {"32 writers on 4 accounts keep every invariant", test_concurrent_writers_keep_every_invariant},
    {"outbox: one row per event, same tx_id", test_outbox_after_concurrency},
    {"daemon exits cleanly", test_daemon_exits_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo snapshot_tests[] = {
    {"snapshots at 100 and 200, right state after a restart",
     test_snapshots_every_100_events_and_restart},
    {"daemon exits cleanly", test_daemon_exits_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo doorbell_tests[] = {
    {"a command rings the doorbell", test_doorbell_rings_after_a_command},
    {"a burst is coalesced, never NOTIFYed by a command",
     test_doorbell_coalesces_and_never_notifies_from_a_command},
    {"daemon exits cleanly", test_daemon_exits_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo two_instance_tests[] = {
    {"decisions never rest on another instance's stale cache",
     test_decisions_never_rest_on_another_instance_stale_cache},
    {"a stale-cache refusal is never stored under a key",
     test_stale_cache_refusal_is_never_stored_under_a_key},
    {"second instance exits cleanly", test_second_instance_exits_cleanly},
    {"daemon exits cleanly", test_daemon_exits_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"happy paths", suite_init, suite_cleanup, NULL, NULL, happy_tests},
    {"errors", suite_init, suite_cleanup, NULL, NULL, error_tests},
    {"idempotency", suite_init, suite_cleanup, NULL, NULL, idempotency_tests},
    {"concurrency", suite_init, suite_cleanup, NULL, NULL, concurrency_tests},
    {"snapshots", suite_init, suite_cleanup, NULL, NULL, snapshot_tests},
    {"doorbell", suite_init, suite_cleanup, NULL, NULL, doorbell_tests},
    {"two instances", two_init, two_cleanup, NULL, NULL, two_instance_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    unsigned int failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        if (argc > 1) { /* run one suite by name */
            CU_pSuite s = CU_get_suite(argv[1]);

            if (s == NULL) {
                fprintf(stderr, "no suite \"%s\"\n", argv[1]);
                CU_cleanup_registry();
                return EXIT_FAILURE;
            }
            CU_basic_run_suite(s);
        } else {
            CU_basic_run_tests();
        }
        failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
