/* test_tallyctl_cli.c - the built tallyctl run as a program against the real
 * daemons (tally-command, tally-query, tally-projector started by the
 * harness on a fresh migrated database): its text output, the shape of its
 * --json output (parsed with jansson), its exit code for success and for
 * every error class, amounts typed and shown in the currency's units, and
 * watch (an event appears, SIGINT/SIGTERM end it with 130/143, --from the
 * printed position resumes without a gap or a repeat).
 *
 * Every run's stderr is checked for sanitizer reports: the ASan build runs
 * the ASan tallyctl, whose leak check makes the exit code non-zero too.
 * The last test stops the daemons: each must exit 0. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "harness.h"

#define RUN_MS   30000 /* one tallyctl run (ASan builds are slow) */
#define STOP_MS  20000 /* SIGTERM -> daemon exit */
#define WAIT_MS  20000 /* a line to appear in watch's output */
#define MAX_ARGS 40
#define UUID_LEN 36

static struct {
    char db[HARNESS_CONNINFO_MAX];
    char token[HARNESS_TOKEN_MAX], token_b[HARNESS_TOKEN_MAX];
    struct harness_daemon d[3];
    bool running[3];
    char env_addr[3][HARNESS_ADDR_MAX + 32];
    char env_token[HARNESS_TOKEN_MAX + 16];
    const char *env[6];
    char dead_addr[HARNESS_ADDR_MAX]; /* a loopback port nobody listens on */
} fx;

static const char *const env_names[3] = {"TALLY_ADDR", "TALLY_QUERY_ADDR", "TALLY_SUBSCRIBE_ADDR"};

/* ---- running tallyctl ---- */

struct run {
    int rc;
    char *out;
    char *err;
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* Runs tallyctl with args (NULL-terminated) and env (the fixture's, then
 * extra, later entries win). Fills r; checks that stderr holds no sanitizer
 * report. */
static void ctl_env_v(struct run *r, const char *const *extra, va_list ap)
{
    const char *argv[MAX_ARGS + 2];
    const char *env[16];
    size_t n = 0, e = 0, i;
    const char *a;

    argv[n++] = TALLYCTL_PATH;
    while ((a = va_arg(ap, const char *)) != NULL && n < MAX_ARGS)
        argv[n++] = a;
    argv[n] = NULL;
    for (i = 0; fx.env[i] != NULL; i++)
        env[e++] = fx.env[i];
    /* an extra entry replaces the fixture's entry of the same name */
    for (i = 0; extra != NULL && extra[i] != NULL && e < 15; i++) {
        size_t k, nlen = strcspn(extra[i], "=") + 1;

        for (k = 0; k < e && strncmp(env[k], extra[i], nlen) != 0; k++)
            ;
        env[k] = extra[i];
        if (k == e)
            e++;
    }
    env[e] = NULL;
    memset(r, 0, sizeof(*r));
    r->rc = harness_run(argv, env, RUN_MS, &r->out, &r->err);
    if (r->out == NULL)
        r->out = strdup("");
    if (r->err == NULL)
        r->err = strdup("");
    CU_ASSERT_PTR_NULL(strstr(r->err, "Sanitizer"));
    CU_ASSERT_PTR_NULL(strstr(r->err, "runtime error:"));
}

static void ctl(struct run *r, ...)
{
    va_list ap;

    va_start(ap, r);
    ctl_env_v(r, NULL, ap);
    va_end(ap);
}

static void ctl_env(struct run *r, const char *const *extra, ...)
{
    va_list ap;

    va_start(ap, extra);
    ctl_env_v(r, extra, ap);
    va_end(ap);
}

/* Asserts the exit code; on a mismatch prints what tallyctl said. */
#define CHECK_RC(r, want)                                                                          \
    do {                                                                                           \
        if ((r)->rc != (want))                                                                     \
            fprintf(stderr, "\n  line %d: exit %d, wanted %d\n  stdout: %s\n  stderr: %s\n",       \
                    __LINE__, (r)->rc, (want), (r)->out, (r)->err);                                \
        CU_ASSERT_EQUAL((r)->rc, (want));                                                          \
    } while (0)

/* An error must be exactly one line on stderr, "tallyctl: CMD: STATUS: ...",
 * and nothing on stdout. */
static void check_error_line(const struct run *r, const char *prefix)
{
    size_t n = strlen(r->err);

    if (strncmp(r->err, prefix, strlen(prefix)) != 0)
        fprintf(stderr, "\n  stderr \"%s\" does not start with \"%s\"\n", r->err, prefix);
    CU_ASSERT_EQUAL(strncmp(r->err, prefix, strlen(prefix)), 0);
    CU_ASSERT(n > 0 && r->err[n - 1] == '\n');
    CU_ASSERT_PTR_EQUAL(strchr(r->err, '\n'), r->err + n - 1);
    CU_ASSERT_STRING_EQUAL(r->out, "");
}

/* The value of "key:" in a key: value block, copied into buf ("" if
 * absent). */
static char *kv_get(const char *text, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);
    const char *line = text;

    buf[0] = '\0';
    while (line != NULL && *line != '\0') {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *v = line + klen + 1, *end;

            while (*v == ' ')
                v++;
            end = strchr(v, '\n');
            if (end == NULL)
                end = v + strlen(v);
            snprintf(buf, size, "%.*s", (int)(end - v), v);
            return buf;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return buf;
}

static bool is_uuid(const char *s)
{
    size_t i;

    if (s == NULL || strlen(s) != UUID_LEN)
        return false;
    for (i = 0; i < UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* "TX:POS" */
static bool is_position(const char *s)
{
    unsigned long long tx;
    long long pos;
    char end;

    return sscanf(s, "%llu:%lld%c", &tx, &pos, &end) == 2;
}

static int count_lines(const char *s)
{
    int n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* Parses the whole of text as one JSON object (NULL + a test failure if it
 * is not). */
static json_t *json_one(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);

    if (j == NULL || !json_is_object(j)) {
        fprintf(stderr, "\n  not one JSON object: %s (%s)\n", text, e.text);
        CU_FAIL("not one JSON object");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Parses text as JSON lines: a new array of the objects (one per line). */
static json_t *json_lines(const char *text)
{
    json_t *arr = json_array();
    const char *line = text;

    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        json_error_t e;
        json_t *j = json_loadb(line, len, 0, &e);

        if (j == NULL || !json_is_object(j)) {
            fprintf(stderr, "\n  not a JSON object line: %.*s\n", (int)len, line);
            CU_FAIL("not a JSON object line");
            json_decref(j);
        } else {
            json_array_append_new(arr, j);
        }
        line += len;
        if (*line == '\n')
            line++;
    }
    return arr;
}

/* The string at a dotted path ("result.position.txId"), or NULL. */
static const char *jstr(json_t *j, const char *path)
{
    char buf[128], *p, *save = NULL;

    snprintf(buf, sizeof(buf), "%s", path);
    for (p = strtok_r(buf, ".", &save); p != NULL && j != NULL; p = strtok_r(NULL, ".", &save))
        j = json_object_get(j, p);
    return json_is_string(j) ? json_string_value(j) : NULL;
}

static bool jstr_is(json_t *j, const char *path, const char *want)
{
    const char *v = jstr(j, path);

    if (v == NULL || strcmp(v, want) != 0) {
        fprintf(stderr, "\n  %s is \"%s\", wanted \"%s\"\n", path, v ? v : "(absent)", want);
        return false;
    }
    return true;
}

/* Opens an account and returns its id in id (UUID_LEN + 1). */
static void open_account(const char *owner, const char *currency, char *id)
{
    struct run r;
    char buf[64];

    ctl(&r, "open", owner, currency, NULL);
    CHECK_RC(&r, 0);
    snprintf(id, UUID_LEN + 1, "%s", kv_get(r.out, "account_id", buf, sizeof(buf)));
    CU_ASSERT_FATAL(is_uuid(id));
    run_free(&r);
}

/* Deposits and returns the command's position in pos (64 bytes). */
static void deposit(const char *id, const char *amount, const char *currency, char *pos)
{
    struct run r;
    char buf[64];

    ctl(&r, "deposit", id, amount, currency, NULL);
    CHECK_RC(&r, 0);
    if (pos != NULL)
        snprintf(pos, 64, "%s", kv_get(r.out, "position", buf, sizeof(buf)));
    run_free(&r);
}

/* ---- the fixture ---- */

static int find_dead_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd); /* nobody listens there now */
    return port;
}

static int suite_init(void)
{
    static const enum harness_daemon_kind kinds[3] = {HARNESS_COMMAND, HARNESS_QUERY,
                                                      HARNESS_PROJECTOR};
    int i, port;

    memset(&fx, 0, sizeof(fx));
    if (harness_db_create(fx.db) != 0 || harness_tenant_token(fx.db, "acme", NULL, fx.token) != 0 ||
        harness_tenant_token(fx.db, "globex", NULL, fx.token_b) != 0)
        return -1;
    for (i = 0; i < 3; i++) {
        if (harness_daemon_start(&fx.d[i], kinds[i], fx.db, NULL, NULL) != 0)
            return -1;
        fx.running[i] = true;
        snprintf(fx.env_addr[i], sizeof(fx.env_addr[i]), "%s=%s", env_names[i], fx.d[i].addr);
        fx.env[i] = fx.env_addr[i];
    }
    snprintf(fx.env_token, sizeof(fx.env_token), "TALLY_TOKEN=%s", fx.token);
    fx.env[3] = fx.env_token;
    fx.env[4] = NULL;
    port = find_dead_port();
    if (port <= 0)
        return -1;
    snprintf(fx.dead_addr, sizeof(fx.dead_addr), "127.0.0.1:%d", port);
    return 0;
}

static int suite_cleanup(void)
{
    int i;

    for (i = 0; i < 3; i++) {
        if (fx.running[i])
            harness_daemon_stop(&fx.d[i], STOP_MS);
        fx.running[i] = false;
    }
    return 0;
}

/* ---- help and usage ---- */

static const char *const commands[] = {
    "open",     "deposit", "withdraw", "transfer", "pay",     "refund", "freeze",
    "unfreeze", "close",   "get",      "ls",       "entries", "op",     "transfer-status",
    "at",       "usage",   "status",   "events",   "log",     "trace",  "watch",
};

static void test_help_lists_every_command_and_exit_code(void)
{
    struct run r;
    size_t i;
    char want[64];

    ctl(&r, "--help", NULL);
    CHECK_RC(&r, 0);
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        snprintf(want, sizeof(want), "\n  %s ", commands[i]);
        if (strstr(r.out, want) == NULL)
            fprintf(stderr, "\n  --help does not list %s\n", commands[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.out, want));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "Exit codes:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "    6  FAILED_PRECONDITION"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "  130  watch stopped by SIGINT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "TALLY_SUBSCRIBE_ADDR"));
    CU_ASSERT_STRING_EQUAL(r.err, "");
    run_free(&r);

    ctl(&r, "--version", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(strncmp(r.out, "tallyctl ", 9), 0);
    run_free(&r);
}

static void test_help_on_every_subcommand(void)
{
    struct run r;
    size_t i;
    char want[64];

    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        snprintf(want, sizeof(want), "usage: tallyctl %s", commands[i]);
        ctl(&r, commands[i], "--help", NULL);
        CHECK_RC(&r, 0);
        CU_ASSERT_EQUAL(strncmp(r.out, want, strlen(want)), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "Global options:"));
        CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "Exit: 0 OK, 2 usage error"));
        run_free(&r);
    }
    /* -h, and `help CMD`, say the same */
    ctl(&r, "help", "deposit", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(strncmp(r.out, "usage: tallyctl deposit ACCOUNT AMOUNT CURRENCY", 47), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "--idempotency-key KEY"));
    run_free(&r);
    ctl(&r, "watch", "-h", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "--from WHERE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "exits 130"));
    run_free(&r);
}

/* Usage errors are found before any call: every address points at a dead
 * port, so a call would exit 9, not 2. */
static void usage_error(const char *want_in_err, ...)
{
    char a[3][HARNESS_ADDR_MAX + 32];
    const char *extra[4];
    const char *argv[MAX_ARGS + 1];
    struct run r;
    va_list ap;
    size_t n = 0;
    int i;

    for (i = 0; i < 3; i++) {
        snprintf(a[i], sizeof(a[i]), "%s=%s", env_names[i], fx.dead_addr);
        extra[i] = a[i];
    }
    extra[3] = NULL;
    va_start(ap, want_in_err);
    while ((argv[n] = va_arg(ap, const char *)) != NULL && n < MAX_ARGS)
        n++;
    va_end(ap);
    /* the variadic ctl_env needs the arguments spelled out */
    ctl_env(&r, extra, n > 0 ? argv[0] : NULL, n > 1 ? argv[1] : NULL, n > 2 ? argv[2] : NULL,
            n > 3 ? argv[3] : NULL, n > 4 ? argv[4] : NULL, n > 5 ? argv[5] : NULL,
            n > 6 ? argv[6] : NULL, n > 7 ? argv[7] : NULL, NULL);
    CHECK_RC(&r, 2);
    check_error_line(&r, "tallyctl: ");
    if (strstr(r.err, want_in_err) == NULL)
        fprintf(stderr, "\n  stderr \"%s\" lacks \"%s\"\n", r.err, want_in_err);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, want_in_err));
    run_free(&r);
}

#define ACC  "0190a0a0-0000-7000-8000-000000000001"
#define ACC2 "0190a0a0-0000-7000-8000-000000000002"

static void test_usage_errors_exit_2_before_any_call(void)
{
    usage_error("missing command", NULL);
    usage_error("unknown command \"frobnicate\"", "frobnicate", NULL);
    usage_error("tallyctl: deposit: unknown option --amount", "deposit", ACC, "--amount", "5",
                NULL);
    usage_error("tallyctl: deposit: expected ACCOUNT AMOUNT CURRENCY", "deposit", ACC, "5", NULL);
    usage_error("got more", "get", ACC, ACC2, NULL);
    usage_error("ACCOUNT \"42\" is not a valid uuid", "deposit", "42", "5", "EUR", NULL);
    usage_error("needs a value", "deposit", ACC, "5", "EUR", "--reference", NULL);
    usage_error("invalid --expected-version", "deposit", ACC, "5", "EUR", "--expected-version", "x",
                NULL);
    usage_error("--expected-version does not apply", "open", "alice", "EUR", "--expected-version",
                "1", NULL);
    usage_error("invalid duration \"soon\"", "status", "--timeout", "soon", NULL);
    usage_error("give exactly one of --version N and --time T", "at", ACC, NULL);
    usage_error("give exactly one of --version N and --time T", "at", ACC, "--version", "1",
                "--time", "2024-05-01T00:00:00Z", NULL);
    usage_error("invalid time \"yesterday\"", "at", ACC, "--time", "yesterday", NULL);
    usage_error("invalid position \"12\"", "get", ACC, "--min-position", "12", NULL);
    usage_error("--from: expected start, end or TX:POS", "watch", "--from", "now", NULL);
    usage_error("invalid --status \"gone\"", "ls", "--status", "gone", NULL);
    usage_error("invalid --page-size \"5000\"", "ls", "--page-size", "5000", NULL);
    usage_error("invalid date \"2023-02-29\"", "usage", "--from", "2023-02-29", NULL);
}

/* Amounts are checked by the CLI in the currency's units before anything
 * is sent: rounding, sign, overflow, unknown currency. */
static void test_amount_errors_exit_2_with_the_reason(void)
{
    usage_error("invalid amount \"12.345\": too many decimals for EUR (at most 2)", "deposit", ACC,
                "12.345", "EUR", NULL);
    usage_error("invalid amount \"1.5\": too many decimals for JPY (at most 0)", "withdraw", ACC,
                "1.5", "JPY", NULL);
    usage_error("invalid amount \"1.2345\": too many decimals for KWD (at most 3)", "deposit", ACC,
                "1.2345", "KWD", NULL);
    usage_error("invalid amount \"-5.00\": must be greater than zero", "deposit", ACC, "-5.00",
                "EUR", NULL);
    usage_error("invalid amount \"0\": must be greater than zero", "transfer", ACC, ACC2, "0",
                "EUR", NULL);
    usage_error("invalid amount \"92233720368547758.08\": amount out of range", "deposit", ACC,
                "92233720368547758.08", "EUR", NULL);
    usage_error("invalid amount \"1,50\"", "pay", ACC, "1,50", "EUR", "shop", NULL);
    usage_error("unknown currency \"EURO\"", "deposit", ACC, "1", "EURO", NULL);
    usage_error("--overdraft-limit: invalid amount \"-1\": must not be negative", "open", "alice",
                "EUR", "--overdraft-limit", "-1", NULL);
}

/* ---- commands: text and JSON ---- */

static void test_open_and_deposit_print_key_value_blocks(void)
{
    struct run r;
    char id[64], buf[128];

    ctl(&r, "open", "alice", "eur", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(r.err, "");
    CU_ASSERT(is_uuid(kv_get(r.out, "account_id", id, sizeof(id))));
    CU_ASSERT(is_uuid(kv_get(r.out, "operation_id", buf, sizeof(buf))));
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "version", buf, sizeof(buf)), "1");
    CU_ASSERT(is_position(kv_get(r.out, "position", buf, sizeof(buf))));
    CU_ASSERT(kv_get(r.out, "correlation_id", buf, sizeof(buf))[0] != '\0');
    /* values are aligned after the longest key */
    CU_ASSERT_EQUAL(strncmp(r.out, "account_id:     ", 16), 0);
    run_free(&r);

    ctl(&r, "deposit", id, "12.34", "EUR", "--reference", "inv 7", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "version", buf, sizeof(buf)), "2");
    CU_ASSERT(is_position(kv_get(r.out, "position", buf, sizeof(buf))));
    run_free(&r);

    /* the stream as a table, the amount in EUR */
    ctl(&r, "events", id, NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(strncmp(r.out, "POSITION", 8), 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "AccountOpened  owner=alice currency=EUR"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "Deposited      amount=12.34 EUR reference=inv 7"));
    run_free(&r);

    /* time travel shows the balance the same way */
    ctl(&r, "at", id, "--version", "2", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "balance", buf, sizeof(buf)), "12.34 EUR");
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "status", buf, sizeof(buf)), "OPEN");
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "version", buf, sizeof(buf)), "2");
    run_free(&r);
    ctl(&r, "at", id, "--version", "1", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "balance", buf, sizeof(buf)), "0.00 EUR");
    run_free(&r);
}

static void test_json_output_is_proto3_json(void)
{
    struct run r;
    json_t *j, *lines;
    char id[UUID_LEN + 1], op[UUID_LEN + 1];
    size_t i;

    ctl(&r, "--json", "open", "bob", "EUR", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 1);
    j = json_one(r.out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT(is_uuid(jstr(j, "accountId")));
    snprintf(id, sizeof(id), "%s", jstr(j, "accountId") ? jstr(j, "accountId") : "");
    CU_ASSERT(is_uuid(jstr(j, "result.operationId")));
    CU_ASSERT(jstr_is(j, "result.version", "1")); /* int64 as a JSON string */
    CU_ASSERT_PTR_NOT_NULL(jstr(j, "result.position.txId"));
    CU_ASSERT_PTR_NOT_NULL(jstr(j, "result.position.globalPosition"));
    CU_ASSERT_PTR_NOT_NULL(jstr(j, "result.correlationId"));
    json_decref(j);
    run_free(&r);

    /* --json after the subcommand works too */
    ctl(&r, "deposit", id, "1.00", "EUR", "--json", NULL);
    CHECK_RC(&r, 0);
    j = json_one(r.out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT(jstr_is(j, "version", "2"));
    snprintf(op, sizeof(op), "%s", jstr(j, "operationId") ? jstr(j, "operationId") : "");
    CU_ASSERT(is_uuid(op));
    json_decref(j);
    run_free(&r);

    ctl(&r, "op", op, "--json", NULL);
    CHECK_RC(&r, 0);
    j = json_one(r.out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT(jstr_is(j, "operationId", op));
    CU_ASSERT(jstr_is(j, "kind", "Deposit"));
    CU_ASSERT(jstr_is(j, "status", "OPERATION_STATUS_SUCCEEDED"));
    CU_ASSERT(jstr_is(j, "aggregateId", id));
    json_decref(j);
    run_free(&r);

    /* a list of events: one Event object per line */
    ctl(&r, "--json", "events", id, NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    CU_ASSERT_EQUAL(json_array_size(lines), 2);
    json_array_foreach(lines, i, j)
    {
        CU_ASSERT(is_uuid(jstr(j, "eventId")));
        CU_ASSERT(jstr_is(j, "aggregateType", "account"));
        CU_ASSERT(jstr_is(j, "aggregateId", id));
        CU_ASSERT_PTR_NOT_NULL(jstr(j, "position.txId"));
        CU_ASSERT_PTR_NOT_NULL(jstr(j, "recordedAt"));
    }
    if (json_array_size(lines) == 2) {
        CU_ASSERT(jstr_is(json_array_get(lines, 0), "eventType", "AccountOpened"));
        CU_ASSERT(jstr_is(json_array_get(lines, 0), "accountOpened.owner", "bob"));
        CU_ASSERT(jstr_is(json_array_get(lines, 1), "eventType", "Deposited"));
        CU_ASSERT(jstr_is(json_array_get(lines, 1), "deposited.amount.minorUnits", "100"));
    }
    json_decref(lines);
    run_free(&r);

    ctl(&r, "--json", "status", NULL);
    CHECK_RC(&r, 0);
    j = json_one(r.out);
    json_decref(j);
    run_free(&r);
}

/* The minor units that reach the server, for 0, 2 and 3-decimal
 * currencies, and how they come back. */
static void check_amount(const char *currency, const char *typed, const char *minor,
                         const char *shown)
{
    char id[UUID_LEN + 1], want[64];
    struct run r;
    json_t *lines;

    open_account("amounts", currency, id);
    deposit(id, typed, currency, NULL);
    ctl(&r, "--json", "events", id, "--from-version", "2", NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    CU_ASSERT_EQUAL_FATAL(json_array_size(lines), 1);
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "deposited.amount.minorUnits", minor));
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "deposited.amount.currency", currency));
    json_decref(lines);
    run_free(&r);
    ctl(&r, "at", id, "--version", "2", NULL);
    CHECK_RC(&r, 0);
    snprintf(want, sizeof(want), "balance:         %s\n", shown);
    if (strstr(r.out, want) == NULL)
        fprintf(stderr, "\n  %s lacks %s", r.out, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, want));
    run_free(&r);
}

static void test_amounts_reach_the_server_in_minor_units(void)
{
    check_amount("EUR", "12.34", "1234", "12.34 EUR");
    check_amount("EUR", "12.3", "1230", "12.30 EUR");
    check_amount("JPY", "500", "500", "500 JPY");
    check_amount("KWD", "1.234", "1234", "1.234 KWD");
    check_amount("KWD", "0.001", "1", "0.001 KWD");
    check_amount("USD", "92233720368547758.07", "9223372036854775807", "92233720368547758.07 USD");
}

static void test_overdraft_limit_in_currency_units(void)
{
    struct run r;
    json_t *lines;
    char id[64], buf[64];

    ctl(&r, "open", "carol", "EUR", "--overdraft-limit", "100.5", NULL);
    CHECK_RC(&r, 0);
    kv_get(r.out, "account_id", id, sizeof(id));
    run_free(&r);
    ctl(&r, "--json", "events", id, NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    CU_ASSERT_EQUAL_FATAL(json_array_size(lines), 1);
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "accountOpened.overdraftLimit", "10050"));
    json_decref(lines);
    run_free(&r);
    /* may go to -100.50, not below */
    ctl(&r, "withdraw", id, "100.50", "EUR", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    ctl(&r, "withdraw", id, "0.01", "EUR", NULL);
    CHECK_RC(&r, 6);
    run_free(&r);
    ctl(&r, "at", id, "--version", "2", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "balance", buf, sizeof(buf)), "-100.50 EUR");
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "overdraft_limit", buf, sizeof(buf)), "100.50 EUR");
    run_free(&r);
}

/* ---- exit codes per error class ---- */

static void test_exit_3_invalid_argument(void)
{
    char owner[300];
    struct run r;

    memset(owner, 'x', sizeof(owner) - 1);
    owner[sizeof(owner) - 1] = '\0';
    ctl(&r, "open", owner, "EUR", NULL);
    CHECK_RC(&r, 3);
    check_error_line(&r, "tallyctl: open: INVALID_ARGUMENT: ");
    run_free(&r);
}

static void test_exit_4_not_found(void)
{
    char id[UUID_LEN + 1];
    const char *other[] = {NULL, NULL};
    char tok[HARNESS_TOKEN_MAX + 16];
    struct run r;

    ctl(&r, "deposit", ACC, "1", "EUR", NULL);
    CHECK_RC(&r, 4);
    check_error_line(&r, "tallyctl: deposit: NOT_FOUND: ");
    run_free(&r);
    /* another tenant's account is not found either */
    open_account("dave", "EUR", id);
    snprintf(tok, sizeof(tok), "TALLY_TOKEN=%s", fx.token_b);
    other[0] = tok;
    ctl_env(&r, other, "deposit", id, "1", "EUR", NULL);
    CHECK_RC(&r, 4);
    check_error_line(&r, "tallyctl: deposit: NOT_FOUND: ");
    run_free(&r);
}

static void test_exit_5_already_exists(void)
{
    const char *id = "0190a0a0-0000-7000-8000-0000000000e5";
    struct run r;
    char buf[64];

    ctl(&r, "open", "erin", "EUR", "--account-id", id, NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "account_id", buf, sizeof(buf)), id);
    run_free(&r);
    ctl(&r, "open", "erin", "EUR", "--account-id", id, NULL);
    CHECK_RC(&r, 5);
    check_error_line(&r, "tallyctl: open: ALREADY_EXISTS: ");
    run_free(&r);
}

static void test_exit_6_failed_precondition(void)
{
    char id[UUID_LEN + 1];
    struct run r;

    open_account("frank", "EUR", id);
    deposit(id, "12.34", "EUR", NULL);
    ctl(&r, "withdraw", id, "1000", "EUR", NULL);
    CHECK_RC(&r, 6);
    check_error_line(&r, "tallyctl: withdraw: FAILED_PRECONDITION: insufficient funds");
    run_free(&r);
    ctl(&r, "deposit", id, "5", "JPY", NULL);
    CHECK_RC(&r, 6);
    check_error_line(&r, "tallyctl: deposit: FAILED_PRECONDITION: currency mismatch");
    run_free(&r);
}

static void test_exit_7_aborted_on_expected_version(void)
{
    char id[UUID_LEN + 1];
    struct run r;

    open_account("grace", "EUR", id);
    ctl(&r, "deposit", id, "1", "EUR", "--expected-version", "99", NULL);
    CHECK_RC(&r, 7);
    check_error_line(&r, "tallyctl: deposit: ABORTED: ");
    run_free(&r);
    ctl(&r, "deposit", id, "1", "EUR", "--expected-version", "1", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
}

static void test_exit_8_unauthenticated(void)
{
    const char *bad[] = {"TALLY_TOKEN=tly_not-a-real-token", NULL};
    const char *none[] = {"TALLY_TOKEN=", NULL};
    struct run r;

    ctl_env(&r, bad, "open", "heidi", "EUR", NULL);
    CHECK_RC(&r, 8);
    check_error_line(&r, "tallyctl: open: UNAUTHENTICATED: ");
    run_free(&r);
    ctl_env(&r, none, "log", NULL);
    CHECK_RC(&r, 8);
    check_error_line(&r, "tallyctl: log: UNAUTHENTICATED: ");
    run_free(&r);
    /* --token wins over TALLY_TOKEN */
    ctl_env(&r, bad, "open", "heidi", "EUR", "--token", fx.token, NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
}

static void test_exit_9_unavailable_names_the_address(void)
{
    char env[HARNESS_ADDR_MAX + 32];
    const char *extra[] = {env, NULL};
    struct run r;

    ctl(&r, "open", "ivan", "EUR", "--addr", fx.dead_addr, NULL);
    CHECK_RC(&r, 9);
    check_error_line(&r, "tallyctl: open: UNAVAILABLE: ");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, fx.dead_addr));
    run_free(&r);
    /* the flag wins over the environment */
    snprintf(env, sizeof(env), "TALLY_QUERY_ADDR=%s", fx.dead_addr);
    ctl_env(&r, extra, "log", NULL);
    CHECK_RC(&r, 9);
    check_error_line(&r, "tallyctl: log: UNAVAILABLE: ");
    run_free(&r);
    ctl_env(&r, extra, "log", "--query-addr", fx.d[1].addr, NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
}

/* The query server waits for a position that will never be projected until
 * the deadline passes; the contract (query.proto) says DEADLINE_EXCEEDED.
 * (If this answers "CANCELLED: call cancelled" now and then, the server saw
 * its call cancelled by the deadline before its own deadline check:
 * ckwatch_wait in server/lib/ckwatch.c must test the deadline first.) */
static void test_exit_10_deadline_exceeded(void)
{
    struct run r;

    ctl(&r, "status", "--min-position", "18446744073709551615:1", "--timeout", "300ms", NULL);
    CHECK_RC(&r, 10);
    check_error_line(&r, "tallyctl: status: DEADLINE_EXCEEDED: ");
    run_free(&r);
}

/* The command server offers no QueryService. */
static void test_exit_11_unimplemented(void)
{
    struct run r;

    ctl(&r, "status", "--query-addr", fx.d[0].addr, NULL);
    CHECK_RC(&r, 11);
    check_error_line(&r, "tallyctl: status: UNIMPLEMENTED: ");
    run_free(&r);
}

/* ---- the rest of the commands ---- */

static void test_idempotency_key_and_correlation_id(void)
{
    char id[UUID_LEN + 1], op1[64], op2[64], buf[64];
    struct run r;
    json_t *lines;

    open_account("judy", "EUR", id);
    ctl(&r, "deposit", id, "2.00", "EUR", "--idempotency-key", "judy-1", NULL);
    CHECK_RC(&r, 0);
    kv_get(r.out, "operation_id", op1, sizeof(op1));
    run_free(&r);
    ctl(&r, "deposit", id, "2.00", "EUR", "--idempotency-key", "judy-1", NULL);
    CHECK_RC(&r, 0);
    kv_get(r.out, "operation_id", op2, sizeof(op2));
    CU_ASSERT_STRING_EQUAL(op1, op2); /* the first answer, not a second deposit */
    run_free(&r);
    ctl(&r, "deposit", id, "3.00", "EUR", "--idempotency-key", "judy-1", NULL);
    CHECK_RC(&r, 6); /* the key reused for another request */
    run_free(&r);

    ctl(&r, "deposit", id, "1.50", "EUR", "--correlation-id", "judy-flow-1", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "correlation_id", buf, sizeof(buf)), "judy-flow-1");
    run_free(&r);
    ctl(&r, "trace", "judy-flow-1", "--json", NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    CU_ASSERT_EQUAL_FATAL(json_array_size(lines), 1);
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "metadata.correlationId", "judy-flow-1"));
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "deposited.amount.minorUnits", "150"));
    json_decref(lines);
    run_free(&r);
    ctl(&r, "trace", "judy-flow-1", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "amount=1.50 EUR"));
    run_free(&r);
}

static void test_pay_refund_freeze_unfreeze_close(void)
{
    char id[UUID_LEN + 1], pid[64];
    struct run r;

    open_account("ken", "EUR", id);
    deposit(id, "10", "EUR", NULL);
    ctl(&r, "pay", id, "4.00", "EUR", "shop-42", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT(is_uuid(kv_get(r.out, "payment_id", pid, sizeof(pid))));
    run_free(&r);
    ctl(&r, "refund", id, pid, "1.50", "EUR", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    ctl(&r, "refund", id, pid, "2.51", "EUR", NULL); /* 4.01 > 4.00 */
    CHECK_RC(&r, 6);
    check_error_line(&r, "tallyctl: refund: FAILED_PRECONDITION: ");
    run_free(&r);
    ctl(&r, "freeze", id, "--reason", "audit", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    ctl(&r, "deposit", id, "1", "EUR", NULL);
    CHECK_RC(&r, 6);
    run_free(&r);
    ctl(&r, "freeze", id, NULL);
    CHECK_RC(&r, 6);
    run_free(&r);
    ctl(&r, "unfreeze", id, NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    ctl(&r, "close", id, NULL); /* 7.50 left */
    CHECK_RC(&r, 6);
    run_free(&r);
    ctl(&r, "withdraw", id, "7.50", "EUR", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    ctl(&r, "close", id, "--reason", "done", NULL);
    CHECK_RC(&r, 0);
    run_free(&r);
    ctl(&r, "events", id, NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "PaymentMade      amount=4.00 EUR merchant=shop-42"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "PaymentRefunded  amount=1.50 EUR total_refunded=1.50"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "AccountFrozen    reason=audit"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "AccountClosed    reason=done"));
    run_free(&r);
}

static void test_events_paging_and_direction(void)
{
    char id[UUID_LEN + 1];
    struct run r;
    json_t *lines;

    open_account("leo", "EUR", id);
    deposit(id, "1", "EUR", NULL);
    deposit(id, "2", "EUR", NULL);
    ctl(&r, "events", id, "--limit", "2", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 3);
    CU_ASSERT_STRING_EQUAL(r.err,
                           "tallyctl: events: more events: add --from-version 3 (or --all)\n");
    run_free(&r);
    ctl(&r, "events", id, "--limit", "1", "--all", "--json", NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    CU_ASSERT_EQUAL(json_array_size(lines), 3);
    json_decref(lines);
    CU_ASSERT_STRING_EQUAL(r.err, "");
    run_free(&r);
    ctl(&r, "events", id, "--backwards", "--json", NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    CU_ASSERT_EQUAL_FATAL(json_array_size(lines), 3);
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "version", "3"));
    CU_ASSERT(jstr_is(json_array_get(lines, 2), "version", "1"));
    json_decref(lines);
    run_free(&r);
    ctl(&r, "events", ACC, NULL); /* a stream with no events: just the header */
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 1);
    run_free(&r);
}

static void test_log_filters_and_paging(void)
{
    struct run r;
    json_t *lines, *j;
    char after[64];
    const char *p;
    size_t i, total;

    ctl(&r, "log", "--all", "--json", NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    total = json_array_size(lines);
    CU_ASSERT(total >= 10);
    json_decref(lines);
    run_free(&r);

    ctl(&r, "log", "--prefix", "Deposit", "--all", "--json", NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    CU_ASSERT(json_array_size(lines) > 0 && json_array_size(lines) < total);
    json_array_foreach(lines, i, j) CU_ASSERT(jstr_is(j, "eventType", "Deposited"));
    json_decref(lines);
    run_free(&r);

    /* one at a time: the hint's --after continues with the next event */
    ctl(&r, "log", "--limit", "1", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 2);
    p = strstr(r.err, "add --after ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    sscanf(p + strlen("add --after "), "%63s", after);
    CU_ASSERT(is_position(after));
    CU_ASSERT(strncmp(r.out + strlen(r.out) - strlen("owner=alice currency=EUR\n"),
                      "owner=alice currency=EUR\n", 25) == 0);
    run_free(&r);
    ctl(&r, "log", "--limit", "1", "--after", after, "--json", NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    CU_ASSERT_EQUAL_FATAL(json_array_size(lines), 1);
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "eventType", "Deposited"));
    json_decref(lines);
    run_free(&r);

    ctl(&r, "log", "--type", "transfer", "--prefix", "Deposit", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 1); /* the header: no transfer is Deposited */
    run_free(&r);
}

/* ---- reads of the read model (need the projector) ---- */

static void test_read_model_with_min_position(void)
{
    char id[UUID_LEN + 1], pos[64], buf[128];
    struct run r;
    json_t *j, *lines;
    size_t i;
    int n_accounts;
    bool found = false;

    open_account("mallory", "EUR", id);
    deposit(id, "7.25", "EUR", NULL);
    deposit(id, "0.75", "EUR", pos);
    ctl(&r, "get", id, "--min-position", pos, NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "balance", buf, sizeof(buf)), "8.00 EUR");
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "owner", buf, sizeof(buf)), "mallory");
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "version", buf, sizeof(buf)), "3");
    run_free(&r);

    ctl(&r, "ls", "--owner", "mallory", "--json", "--min-position", pos, NULL);
    CHECK_RC(&r, 0);
    j = json_one(r.out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    lines = json_object_get(j, "accounts");
    CU_ASSERT_EQUAL(json_array_size(lines), 1);
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "balance.minorUnits", "800"));
    json_decref(j);
    run_free(&r);
    ctl(&r, "ls", "--all", "--page-size", "2", "--min-position", pos, NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(strncmp(r.out, "ACCOUNT_ID", 10), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, id));
    CU_ASSERT(count_lines(r.out) > 5);
    n_accounts = count_lines(r.out) - 1;
    CU_ASSERT_STRING_EQUAL(r.err, "");
    run_free(&r);
    /* one page and the hint; all pages merged into one reply with --json */
    ctl(&r, "ls", "--page-size", "2", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "tallyctl: ls: more results: add --page-token "));
    run_free(&r);
    ctl(&r, "ls", "--all", "--page-size", "2", "--json", NULL);
    CHECK_RC(&r, 0);
    j = json_one(r.out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "accounts")), (size_t)n_accounts);
    CU_ASSERT_PTR_NULL(json_object_get(j, "nextPageToken"));
    json_decref(j);
    run_free(&r);
    ctl(&r, "ls", "--status", "closed", "--json", NULL);
    CHECK_RC(&r, 0);
    j = json_one(r.out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_array_foreach(json_object_get(j, "accounts"), i, lines)
        CU_ASSERT(jstr_is(lines, "status", "ACCOUNT_STATUS_CLOSED"));
    json_decref(j);
    run_free(&r);

    ctl(&r, "entries", id, "--min-position", pos, NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "DEPOSIT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "8.00 EUR"));
    run_free(&r);
    ctl(&r, "withdraw", id, "1.25", "EUR", NULL);
    CHECK_RC(&r, 0);
    kv_get(r.out, "position", pos, sizeof(pos));
    run_free(&r);
    ctl(&r, "entries", id, "--backwards", "--all", "--page-size", "1", "--json", "--min-position",
        pos, NULL);
    CHECK_RC(&r, 0);
    j = json_one(r.out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    lines = json_object_get(j, "entries");
    CU_ASSERT_EQUAL_FATAL(json_array_size(lines), 3);
    /* newest first; money out is negative */
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "kind", "ENTRY_KIND_WITHDRAWAL"));
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "amount.minorUnits", "-125"));
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "balanceAfter.minorUnits", "675"));
    CU_ASSERT(jstr_is(json_array_get(lines, 2), "amount.minorUnits", "725"));
    json_decref(j);
    run_free(&r);
    ctl(&r, "entries", id, "--backwards", "--page-size", "1", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "WITHDRAWAL  -1.25 EUR  6.75 EUR"));
    run_free(&r);

    ctl(&r, "usage", "--json", "--min-position", pos, NULL);
    CHECK_RC(&r, 0);
    j = json_one(r.out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_array_foreach(json_object_get(j, "rows"), i, lines)
    {
        if (jstr(lines, "eventType") != NULL && strcmp(jstr(lines, "eventType"), "Deposited") == 0)
            found = true;
    }
    CU_ASSERT(found);
    json_decref(j);
    run_free(&r);

    ctl(&r, "status", "--min-position", pos, NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT(is_position(kv_get(r.out, "checkpoint", buf, sizeof(buf))));
    run_free(&r);
}

static void test_transfer_wait_status_and_failed_exit_12(void)
{
    char a[UUID_LEN + 1], b[UUID_LEN + 1], tid[64], buf[256], corr[128];
    struct run r;
    json_t *lines;

    open_account("nina", "EUR", a);
    open_account("oscar", "EUR", b);
    deposit(a, "10.00", "EUR", NULL);
    ctl(&r, "transfer", a, b, "4.00", "EUR", "--wait", "--timeout", "15s", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "status", buf, sizeof(buf)), "SUCCEEDED");
    CU_ASSERT(is_uuid(kv_get(r.out, "transfer_id", tid, sizeof(tid))));
    kv_get(r.out, "correlation_id", corr, sizeof(corr));
    run_free(&r);
    ctl(&r, "at", b, "--version", "2", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "balance", buf, sizeof(buf)), "4.00 EUR");
    run_free(&r);
    ctl(&r, "trace", corr, "--json", NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    CU_ASSERT(json_array_size(lines) >= 4);
    if (json_array_size(lines) >= 4) {
        CU_ASSERT(jstr_is(json_array_get(lines, 0), "eventType", "TransferRequested"));
        CU_ASSERT(jstr_is(json_array_get(lines, json_array_size(lines) - 1), "eventType",
                          "TransferCompleted"));
    }
    json_decref(lines);
    run_free(&r);
    ctl(&r, "trace", corr, NULL);
    CHECK_RC(&r, 0);
    snprintf(buf, sizeof(buf), "TransferRequested  amount=4.00 EUR from=%s to=%s", a, b);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, buf));
    snprintf(buf, sizeof(buf), "TransferCredited   amount=4.00 EUR from=%s transfer=%s", a, tid);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, buf));
    run_free(&r);
    ctl(&r, "transfer-status", tid, NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "state", buf, sizeof(buf)), "COMPLETED");
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "amount", buf, sizeof(buf)), "4.00 EUR");
    run_free(&r);

    /* the saga fails (insufficient funds): exit 12 with the reason */
    ctl(&r, "transfer", a, b, "100.00", "EUR", "--wait", "--timeout", "15s", NULL);
    CHECK_RC(&r, 12);
    CU_ASSERT_STRING_EQUAL(kv_get(r.out, "status", buf, sizeof(buf)), "FAILED");
    CU_ASSERT_EQUAL(strncmp(r.err, "tallyctl: transfer: transfer ", 29), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "failed: "));
    run_free(&r);

    /* same source and destination */
    ctl(&r, "transfer", a, a, "1", "EUR", NULL);
    CHECK_RC(&r, 3);
    check_error_line(&r, "tallyctl: transfer: INVALID_ARGUMENT: ");
    run_free(&r);
}

/* ---- watch ---- */

struct bg {
    pid_t pid;
    char out_path[HARNESS_PATH_MAX];
    char err_path[HARNESS_PATH_MAX];
};

/* Starts tallyctl with args in the background, output to files. */
static int bg_start(struct bg *b, const char *const *args)
{
    static unsigned seq;
    const char *argv[MAX_ARGS + 2];
    size_t n = 0, i;
    int fd;

    argv[n++] = TALLYCTL_PATH;
    for (i = 0; args[i] != NULL && n < MAX_ARGS; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    seq++;
    snprintf(b->out_path, sizeof(b->out_path), "%s/watch-%u.out", harness_tmpdir(), seq);
    snprintf(b->err_path, sizeof(b->err_path), "%s/watch-%u.err", harness_tmpdir(), seq);
    b->pid = fork();
    if (b->pid < 0)
        return -1;
    if (b->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (i = 0; fx.env[i] != NULL; i++)
            putenv((char *)fx.env[i]);
        fd = open(b->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(127);
        fd = open(b->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;
    FILE *m;
    int c;

    m = open_memstream(&buf, &len);
    if (f != NULL && m != NULL) {
        while ((c = fgetc(f)) != EOF)
            fputc(c, m);
    }
    if (m != NULL)
        fclose(m);
    if (f != NULL)
        fclose(f);
    return buf != NULL ? buf : strdup("");
}

/* Waits until the output holds needle; returns it (free()) or NULL. */
static char *bg_wait_for(const struct bg *b, const char *needle)
{
    struct timespec nap = {0, 20 * 1000 * 1000};
    int waited;

    for (waited = 0; waited < WAIT_MS; waited += 20) {
        char *out = slurp(b->out_path);

        if (strstr(out, needle) != NULL)
            return out;
        free(out);
        if (waitpid(b->pid, NULL, WNOHANG) == b->pid)
            break; /* exited early; the caller's assertions show how */
        nanosleep(&nap, NULL);
    }
    return NULL;
}

/* Sends sig and returns the exit status (0..255, 128 + signal if killed),
 * or -1 if it did not exit in time (then it is killed). */
static int bg_stop(struct bg *b, int sig)
{
    struct timespec nap = {0, 20 * 1000 * 1000};
    int st, waited;

    if (sig != 0)
        kill(b->pid, sig);
    for (waited = 0; waited < WAIT_MS; waited += 20) {
        pid_t p = waitpid(b->pid, &st, WNOHANG);

        if (p == b->pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (p < 0 && errno != EINTR)
            return -1;
        nanosleep(&nap, NULL);
    }
    kill(b->pid, SIGKILL);
    waitpid(b->pid, &st, 0);
    return -1;
}

/* watch --from end prints a deposit made after it started; Ctrl-C ends it
 * with 130 and the resume position; --from that position continues with
 * exactly the next event. */
static void test_watch_prints_events_and_stops_on_sigint(void)
{
    char id[UUID_LEN + 1], from[64];
    const char *args[] = {"watch", "--checkpoints", "--id", id, NULL};
    struct bg b;
    struct run r;
    char *out, *err;
    const char *p;
    json_t *lines;
    int rc;

    open_account("peggy", "EUR", id);
    CU_ASSERT_EQUAL_FATAL(bg_start(&b, args), 0);
    /* subscribed once it reports it has caught up */
    out = bg_wait_for(&b, "# caught up at ");
    CU_ASSERT_PTR_NOT_NULL(out);
    free(out);
    deposit(id, "3.21", "EUR", NULL);
    out = bg_wait_for(&b, "Deposited  amount=3.21 EUR");
    CU_ASSERT_PTR_NOT_NULL(out);
    if (out != NULL) {
        /* "POSITION  TIME  account/ID  v2  Deposited  amount=3.21 EUR" */
        CU_ASSERT_PTR_NOT_NULL(strstr(out, id));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "  v2  Deposited  amount=3.21 EUR\n"));
        /* the account's opening came before the watch: not printed */
        CU_ASSERT_PTR_NULL(strstr(out, "AccountOpened"));
    }
    free(out);
    rc = bg_stop(&b, SIGINT);
    CU_ASSERT_EQUAL(rc, 130);
    err = slurp(b.err_path);
    p = strstr(err, "tallyctl: watch: stopped by SIGINT; resume with --from ");
    CU_ASSERT_PTR_NOT_NULL(p);
    from[0] = '\0';
    if (p != NULL)
        sscanf(p + strlen("tallyctl: watch: stopped by SIGINT; resume with --from "), "%63s", from);
    CU_ASSERT(is_position(from));
    CU_ASSERT_PTR_NULL(strstr(err, "Sanitizer"));
    free(err);

    /* resume: the next event after the printed position is the next deposit */
    deposit(id, "4.56", "EUR", NULL);
    ctl(&r, "watch", "--from", from, "--id", id, "--count", "1", "--json", NULL);
    CHECK_RC(&r, 0);
    lines = json_lines(r.out);
    CU_ASSERT_EQUAL_FATAL(json_array_size(lines), 1);
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "deposited.amount.minorUnits", "456"));
    CU_ASSERT(jstr_is(json_array_get(lines, 0), "version", "3"));
    json_decref(lines);
    run_free(&r);

    /* from the start: every event of the stream, in order */
    ctl(&r, "watch", "--from", "start", "--id", id, "--count", "3", NULL);
    CHECK_RC(&r, 0);
    CU_ASSERT_EQUAL(count_lines(r.out), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "  v1  AccountOpened  owner=peggy"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "  v3  Deposited  amount=4.56 EUR"));
    run_free(&r);
}

static void test_watch_json_lines_and_sigterm_exits_143(void)
{
    char id[UUID_LEN + 1];
    const char *args[] = {"watch", "--json", "--checkpoints", "--id", id, NULL};
    struct bg b;
    char *out, *err;
    json_t *lines, *j;
    size_t i;
    bool seen = false;

    open_account("quinn", "JPY", id);
    CU_ASSERT_EQUAL_FATAL(bg_start(&b, args), 0);
    out = bg_wait_for(&b, "{\"caughtUp\":");
    CU_ASSERT_PTR_NOT_NULL(out);
    free(out);
    deposit(id, "500", "JPY", NULL);
    out = bg_wait_for(&b, "\"Deposited\"");
    CU_ASSERT_PTR_NOT_NULL(out);
    CU_ASSERT_EQUAL(bg_stop(&b, SIGTERM), 143);
    if (out != NULL) {
        lines = json_lines(out);
        json_array_foreach(lines, i, j)
        {
            if (jstr(j, "eventId") != NULL) {
                CU_ASSERT(jstr_is(j, "deposited.amount.minorUnits", "500"));
                CU_ASSERT(jstr_is(j, "deposited.amount.currency", "JPY"));
                seen = true;
            } else {
                /* a progress message: a SubscribeResponse with one member */
                CU_ASSERT_EQUAL(json_object_size(j), 1);
            }
        }
        CU_ASSERT(seen);
        json_decref(lines);
    }
    free(out);
    err = slurp(b.err_path);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "stopped by SIGTERM; resume with --from "));
    free(err);
}

/* A watch with --timeout ends with DEADLINE_EXCEEDED (10) and says where to
 * resume. */
static void test_watch_timeout_exits_10_with_resume_position(void)
{
    char id[UUID_LEN + 1];
    struct run r;

    open_account("rita", "EUR", id);
    ctl(&r, "watch", "--from", "start", "--id", id, "--timeout", "1s", NULL);
    CHECK_RC(&r, 10);
    CU_ASSERT_EQUAL(count_lines(r.out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "  v1  AccountOpened  owner=rita"));
    CU_ASSERT_EQUAL(strncmp(r.err, "tallyctl: watch: DEADLINE_EXCEEDED: ", 36), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "\ntallyctl: watch: resume with --from "));
    run_free(&r);
}

/* ---- the end ---- */

/* The projector's shutdown ends a running watch with UNAVAILABLE (9) and
 * the resume position; then every daemon must have exited 0. */
static void test_daemons_stop_cleanly(void)
{
    const char *args[] = {"watch", "--checkpoints", NULL};
    struct bg b;
    char *out, *err;
    int i;

    CU_ASSERT_EQUAL_FATAL(bg_start(&b, args), 0);
    out = bg_wait_for(&b, "# caught up at ");
    CU_ASSERT_PTR_NOT_NULL(out);
    free(out);
    CU_ASSERT_EQUAL(harness_daemon_stop(&fx.d[2], STOP_MS), 0);
    fx.running[2] = false;
    CU_ASSERT_EQUAL(bg_stop(&b, 0), 9);
    err = slurp(b.err_path);
    CU_ASSERT_EQUAL(strncmp(err, "tallyctl: watch: UNAVAILABLE: ", 30), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\ntallyctl: watch: resume with --from "));
    CU_ASSERT_PTR_NULL(strstr(err, "Sanitizer"));
    free(err);
    for (i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(harness_daemon_stop(&fx.d[i], STOP_MS), 0);
        fx.running[i] = false;
    }
}

static CU_TestInfo cli_tests[] = {
    {"--help lists every command and exit code", test_help_lists_every_command_and_exit_code},
    {"--help on every subcommand", test_help_on_every_subcommand},
    {"usage errors exit 2 before any call", test_usage_errors_exit_2_before_any_call},
    {"amount errors exit 2 with the reason", test_amount_errors_exit_2_with_the_reason},
    {"open and deposit print key: value blocks", test_open_and_deposit_print_key_value_blocks},
    {"--json output is proto3 JSON", test_json_output_is_proto3_json},
    {"amounts reach the server in minor units", test_amounts_reach_the_server_in_minor_units},
    {"overdraft limit in currency units", test_overdraft_limit_in_currency_units},
    {"exit 3 INVALID_ARGUMENT", test_exit_3_invalid_argument},
    {"exit 4 NOT_FOUND", test_exit_4_not_found},
    {"exit 5 ALREADY_EXISTS", test_exit_5_already_exists},
    {"exit 6 FAILED_PRECONDITION", test_exit_6_failed_precondition},
    {"exit 7 ABORTED on --expected-version", test_exit_7_aborted_on_expected_version},
    {"exit 8 UNAUTHENTICATED", test_exit_8_unauthenticated},
    {"exit 9 UNAVAILABLE names the address", test_exit_9_unavailable_names_the_address},
    {"exit 10 DEADLINE_EXCEEDED", test_exit_10_deadline_exceeded},
    {"exit 11 UNIMPLEMENTED", test_exit_11_unimplemented},
    {"idempotency key and correlation id", test_idempotency_key_and_correlation_id},
    {"pay, refund, freeze, unfreeze, close", test_pay_refund_freeze_unfreeze_close},
    {"events paging and direction", test_events_paging_and_direction},
    {"log filters and paging", test_log_filters_and_paging},
    {"read model with --min-position", test_read_model_with_min_position},
    {"transfer --wait, transfer-status, FAILED exits 12",
     test_transfer_wait_status_and_failed_exit_12},
    {"watch prints events, SIGINT exits 130, --from resumes",
     test_watch_prints_events_and_stops_on_sigint},
    {"watch --json lines, SIGTERM exits 143", test_watch_json_lines_and_sigterm_exits_143},
    {"watch --timeout exits 10 with the resume position",
     test_watch_timeout_exits_10_with_resume_position},
    {"projector shutdown ends watch with 9; daemons stop cleanly", test_daemons_stop_cleanly},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tallyctl", suite_init, suite_cleanup, NULL, NULL, cli_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned int failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
