/* test_daemons.c - the three daemons as black boxes, started by the harness:
 * port 0 and the ready file, health, reflection, their service, the
 * command-line contract (exit 2 on bad configuration, flags over env),
 * failure to bind (exit 1) and clean shutdown on SIGTERM/SIGINT.
 * One suite per daemon, all with the same tests. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "grpc/health/v1/health.trpc.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "tally/v1/command.trpc.h"
#include "tally/v1/query.trpc.h"
#include "tally/v1/subscription.trpc.h"

#include "harness.h"
#include "trpc.h"

#define CALL_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 10000
#define PROMPT_STOP_MS  3000 /* an idle daemon exits this fast after SIGTERM */
#define RUN_TIMEOUT_MS  10000

static enum harness_daemon_kind kind; /* the suite's daemon */

static const trpc_service_desc *service(void)
{
    switch (kind) {
    case HARNESS_COMMAND:
        return &tally__v1__command_service__trpc_service;
    case HARNESS_QUERY:
        return &tally__v1__query_service__trpc_service;
    case HARNESS_PROJECTOR:
        return &tally__v1__subscription_service__trpc_service;
    }
    return NULL;
}

static const char *name(void)
{
    return harness_daemon_name(kind);
}

/* The suite's daemon on database db. */
static void start_daemon_on(struct harness_daemon *d, const char *db, const char *const *args,
                            const char *const *env)
{
    CU_ASSERT_EQUAL_FATAL(harness_daemon_start(d, kind, db, args, env), 0);
}

/* A fresh database and the suite's daemon on it. */
static void start_daemon(struct harness_daemon *d, const char *const *args, const char *const *env)
{
    char db[HARNESS_CONNINFO_MAX];

    CU_ASSERT_EQUAL_FATAL(harness_db_create(db), 0);
    start_daemon_on(d, db, args, env);
}

/* SIGTERM; the daemon must exit 0 (under ASan: also without leaks). */
static void stop_daemon(struct harness_daemon *d)
{
    CU_ASSERT_EQUAL(harness_daemon_stop(d, STOP_TIMEOUT_MS), 0);
}

static int log_contains(const struct harness_daemon *d, const char *needle)
{
    char *log = harness_daemon_log(d);
    int found = log != NULL && strstr(log, needle) != NULL;

    free(log);
    return found;
}

/* grpc.health.v1.Health/Check of service; *status is the serving status
 * when the call is OK. */
static grpc_status_code health_check(const char *addr, const char *svc, int *status)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *resp = NULL;
    trpc_call_opts opts = {.timeout_ms = CALL_TIMEOUT_MS};
    trpc_status st = {0};
    trpc_channel *ch = trpc_channel_new(addr);
    grpc_status_code code;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
    req.service = (char *)svc;
    *status = -1;
    code = grpc__health__v1__health__trpc_check(ch, &req, &resp, &opts, &st);
    if (code == GRPC_STATUS_OK) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
        *status = (int)resp->status;
        grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    } else {
        CU_ASSERT_PTR_NULL(resp);
    }
    trpc_channel_free(ch);
    return code;
}

/* The service names listed by reflection at path (v1alpha or v1: their
 * messages are the same on the wire), joined by '\n' into buf. One request
 * on the bidi stream, then half-close: the server answers it and ends. */
static grpc_status_code reflection_list(const char *addr, const char *path, char *buf, size_t size)
{
    Grpc__Reflection__V1alpha__ServerReflectionRequest req =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    Grpc__Reflection__V1alpha__ServerReflectionResponse *resp = NULL;
    trpc_call_opts opts = {.timeout_ms = CALL_TIMEOUT_MS};
    trpc_status st = {0};
    trpc_channel *ch = trpc_channel_new(addr);
    uint8_t packed[64];
    void *raw = NULL;
    size_t raw_len = 0, len, n = 0;
    grpc_status_code code;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
    buf[0] = '\0';
    req.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    req.list_services = (char *)"";
    len = grpc__reflection__v1alpha__server_reflection_request__pack(&req, packed);
    code = trpc_unary_raw(ch, path, packed, len, &raw, &raw_len, &opts, &st);
    if (code == GRPC_STATUS_OK) {
        resp = grpc__reflection__v1alpha__server_reflection_response__unpack(NULL, raw_len, raw);
        CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
        CU_ASSERT_EQUAL_FATAL(
            resp->message_response_case,
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
        for (size_t i = 0; i < resp->list_services_response->n_service; i++) {
            int w =
                snprintf(buf + n, size - n, "%s\n", resp->list_services_response->service[i]->name);

            if (w < 0 || (size_t)w >= size - n)
                break;
            n += (size_t)w;
        }
        grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);
    } else {
        fprintf(stderr, "\n%s: %s %s\n", path, trpc_status_code_name(code), st.msg);
    }
    free(raw);
    trpc_channel_free(ch);
    return code;
}

/* ---- tests ---- */

static void test_daemon_port0_writes_ready_file_and_logs_address(void)
{
    struct harness_daemon d;
    char line[HARNESS_ADDR_MAX + 16];
    int port = 0, used = 0;

    start_daemon(&d, NULL, NULL);
    CU_ASSERT_EQUAL(sscanf(d.addr, "127.0.0.1:%d%n", &port, &used), 1);
    CU_ASSERT_EQUAL((size_t)used, strlen(d.addr));
    CU_ASSERT(port > 0 && port <= 65535);
    snprintf(line, sizeof(line), "listening on %s\n", d.addr);
    CU_ASSERT(log_contains(&d, line));
    stop_daemon(&d);
}

static void test_daemon_health_check_serving(void)
{
    struct harness_daemon d;
    int status;

    start_daemon(&d, NULL, NULL);
    CU_ASSERT_EQUAL(health_check(d.addr, "", &status), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    CU_ASSERT_EQUAL(health_check(d.addr, service()->full_name, &status), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    CU_ASSERT_EQUAL(health_check(d.addr, "tally.v1.NoSuchService", &status), GRPC_STATUS_NOT_FOUND);
    stop_daemon(&d);
}

static void test_daemon_reflection_lists_its_services(void)
{
    static const char *const paths[] = {
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    };
    struct harness_daemon d;
    char names[4096], want[256];

    start_daemon(&d, NULL, NULL);
    snprintf(want, sizeof(want), "%s\n", service()->full_name);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        CU_ASSERT_EQUAL(reflection_list(d.addr, paths[i], names, sizeof(names)), GRPC_STATUS_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(names, want));
        CU_ASSERT_PTR_NOT_NULL(strstr(names, "grpc.health.v1.Health\n"));
    }
    stop_daemon(&d);
}

/* Every RPC of the daemon's service, called without a bearer token, answers
 * UNAUTHENTICATED, or UNIMPLEMENTED while its handler is not written yet
 * (health and reflection show that the service itself is registered).
 * Once every RPC of every service exists, drop UNIMPLEMENTED here. */
static void test_daemon_service_rpcs_without_token_are_unauthenticated_or_unimplemented(void)
{
    const trpc_service_desc *svc = service();
    trpc_call_opts opts = {.timeout_ms = CALL_TIMEOUT_MS};
    struct harness_daemon d;
    trpc_channel *ch;

    start_daemon(&d, NULL, NULL);
    ch = trpc_channel_new(d.addr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
    CU_ASSERT(svc->n_methods > 0);
    for (size_t i = 0; i < svc->n_methods; i++) {
        const trpc_method_desc *m = &svc->methods[i];
        ProtobufCMessage *req = calloc(1, m->input->sizeof_message);
        ProtobufCMessage *resp = NULL;
        trpc_status st = {0};

        CU_ASSERT_PTR_NOT_NULL_FATAL(req);
        protobuf_c_message_init(m->input, req);
        if (m->kind == TRPC_UNARY) {
            CU_ASSERT_EQUAL(trpc_unary(ch, m, req, &resp, &opts, &st), st.code);
            CU_ASSERT_PTR_NULL(resp);
        } else {
            trpc_client_stream *s = trpc_client_stream_start(ch, m, req, &opts, &st);

            CU_ASSERT_EQUAL(m->kind, TRPC_SERVER_STREAMING);
            CU_ASSERT_PTR_NOT_NULL(s);
            if (s != NULL) {
                CU_ASSERT_EQUAL(trpc_client_stream_next(s, &resp, &st), 0);
                CU_ASSERT_PTR_NULL(resp);
                trpc_client_stream_free(s);
            }
        }
        if (st.code != GRPC_STATUS_UNAUTHENTICATED && st.code != GRPC_STATUS_UNIMPLEMENTED)
            fprintf(stderr, "\n%s: %s %s\n", m->path, trpc_status_code_name(st.code), st.msg);
        CU_ASSERT(st.code == GRPC_STATUS_UNAUTHENTICATED || st.code == GRPC_STATUS_UNIMPLEMENTED);
        if (resp != NULL)
            protobuf_c_message_free_unpacked(resp, NULL);
        free(req);
    }
    trpc_channel_free(ch);
    stop_daemon(&d);
}

static void test_daemon_sigterm_exits_0_promptly(void)
{
    struct harness_daemon d;

    start_daemon(&d, NULL, NULL);
    CU_ASSERT_EQUAL(harness_daemon_signal_stop(&d, SIGTERM, STOP_TIMEOUT_MS), 0);
    CU_ASSERT(d.stop_ms < PROMPT_STOP_MS);
    CU_ASSERT(log_contains(&d, "SIGTERM received, shutting down"));
}

static void test_daemon_sigint_exits_0_promptly(void)
{
    struct harness_daemon d;

    start_daemon(&d, NULL, NULL);
    CU_ASSERT_EQUAL(harness_daemon_signal_stop(&d, SIGINT, STOP_TIMEOUT_MS), 0);
    CU_ASSERT(d.stop_ms < PROMPT_STOP_MS);
    CU_ASSERT(log_contains(&d, "SIGINT received, shutting down"));
}

/* Runs the daemon with --listen 127.0.0.1:0 --ready-file <tmp> and args;
 * returns its exit status, with its stdout and stderr in *out and *err. *ready_made is
 * set if the ready file appeared. */
static int run_daemon(const char *const *args, const char *const *env, char **out, char **err,
                      int *ready_made)
{
    const char *argv[16];
    char ready[HARNESS_PATH_MAX];
    size_t n = 0;
    int st;

    CU_ASSERT_PTR_NOT_NULL_FATAL(harness_tmpdir());
    CU_ASSERT_PTR_NOT_NULL_FATAL(harness_daemon_path(kind));
    snprintf(ready, sizeof(ready), "%s/run-daemon.ready", harness_tmpdir());
    unlink(ready);
    argv[n++] = harness_daemon_path(kind);
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    st = harness_run(argv, env, RUN_TIMEOUT_MS, out, err);
    *ready_made = access(ready, F_OK) == 0;
    unlink(ready);
    return st;
}

struct bad_config {
    const char *args[3];
    const char *env[2];
    const char *message; /* after "<daemon>: " */
};

static const struct bad_config bad_configs[] = {
    {{"--bogus"}, {NULL}, "unknown option \"--bogus\" (see --help)\n"},
    {{"--pool-size", "x"}, {NULL}, "invalid --pool-size \"x\" (expected 1..256)\n"},
    {{"--pool-size", "0"}, {NULL}, "invalid --pool-size \"0\" (expected 1..256)\n"},
    {{"--workers", "65"}, {NULL}, "invalid --workers \"65\" (expected 1..64)\n"},
    {{"--listen", "127.0.0.1:99999"},
     {NULL},
     "invalid --listen \"127.0.0.1:99999\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", "nonsense"},
     {NULL},
     "invalid --listen \"nonsense\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--log-level", "verbose"},
     {NULL},
     "invalid --log-level \"verbose\" (expected debug|info|warn|error)\n"},
    {{NULL}, {"TALLY_POOL_SIZE=x"}, "invalid TALLY_POOL_SIZE \"x\" (expected 1..256)\n"},
    {{NULL}, {"TALLY_WORKERS=0"}, "invalid TALLY_WORKERS \"0\" (expected 1..64)\n"},
    {{NULL},
     {"TALLY_LOG_LEVEL=loud"},
     "invalid TALLY_LOG_LEVEL \"loud\" (expected debug|info|warn|error)\n"},
    {{"unexpected"}, {NULL}, "unexpected argument \"unexpected\" (see --help)\n"},
};

static void test_daemon_bad_config_exits_2_with_one_line_before_serving(void)
{
    for (size_t i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++) {
        const struct bad_config *c = &bad_configs[i];
        char *out = NULL, *err = NULL, want[256];
        int ready_made, st;

        snprintf(want, sizeof(want), "%s: %s", name(), c->message);
        st = run_daemon(c->args, c->env, &out, &err, &ready_made);
        if (st != 2 || err == NULL || strcmp(err, want) != 0)
            fprintf(stderr, "\ncase %zu: status %d, stderr \"%s\", expected \"%s\"\n", i, st,
                    err ? err : "(none)", want);
        CU_ASSERT_EQUAL(st, 2);
        CU_ASSERT_PTR_NOT_NULL(err);
        CU_ASSERT_STRING_EQUAL(err ? err : "", want);
        CU_ASSERT_STRING_EQUAL(out ? out : "(none)", "");
        CU_ASSERT_FALSE(ready_made);
        free(out);
        free(err);
    }
}

static void test_daemon_help_and_version_exit_0(void)
{
    const char *const help[] = {"--help", NULL};
    const char *const version[] = {"--version", NULL};
    char *out = NULL, *err = NULL, want[128];
    int ready_made;

    CU_ASSERT_EQUAL(run_daemon(help, NULL, &out, &err, &ready_made), 0);
    snprintf(want, sizeof(want), "usage: %s [options]\n", name());
    CU_ASSERT(out != NULL && strncmp(out, want, strlen(want)) == 0);
    CU_ASSERT_STRING_EQUAL(err ? err : "(none)", "");
    CU_ASSERT_FALSE(ready_made);
    free(out);
    free(err);

    CU_ASSERT_EQUAL(run_daemon(version, NULL, &out, &err, &ready_made), 0);
    snprintf(want, sizeof(want), "%s %s\n", name(), TALLY_VERSION);
    CU_ASSERT_STRING_EQUAL(out ? out : "(none)", want);
    CU_ASSERT_STRING_EQUAL(err ? err : "(none)", "");
    CU_ASSERT_FALSE(ready_made);
    free(out);
    free(err);
}

static void test_daemon_flags_override_env(void)
{
    const char *const pool_flag[] = {"--pool-size", "5", NULL};
    const char *const pool_env[] = {"TALLY_POOL_SIZE=x", "TALLY_WORKERS=2", NULL};
    const char *const info_flag[] = {"--log-level", "info", NULL};
    const char *const quiet_env[] = {"TALLY_LOG_LEVEL=error", NULL};
    struct harness_daemon d;
    char db[HARNESS_CONNINFO_MAX];
    int status;

    CU_ASSERT_EQUAL_FATAL(harness_db_create(db), 0);
    /* env TALLY_WORKERS applies; --pool-size wins over a bad TALLY_POOL_SIZE */
    start_daemon_on(&d, db, pool_flag, pool_env);
    CU_ASSERT(log_contains(&d, " workers=2 pool_size=5 "));
    stop_daemon(&d);

    /* env TALLY_LOG_LEVEL=error alone silences info lines... */
    start_daemon_on(&d, db, NULL, quiet_env);
    CU_ASSERT_EQUAL(health_check(d.addr, "", &status), GRPC_STATUS_OK);
    CU_ASSERT_FALSE(log_contains(&d, "listening on"));
    stop_daemon(&d);

    /* ...and --log-level info overrides it */
    start_daemon_on(&d, db, info_flag, quiet_env);
    CU_ASSERT(log_contains(&d, "listening on"));
    stop_daemon(&d);
}

static void test_daemon_port_in_use_exits_1(void)
{
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof(sa);
    struct harness_daemon d;
    char addr[64], line[128];
    const char *args[] = {"--listen", addr, NULL};
    char *out = NULL, *err = NULL;
    int fd, ready_made;

    /* a port held by a plain listening socket */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CU_ASSERT_FATAL(listen(fd, 1) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    CU_ASSERT_EQUAL(run_daemon(args, NULL, &out, &err, &ready_made), 1);
    snprintf(line, sizeof(line), "cannot listen on %s\n", addr);
    CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, line) : NULL);
    CU_ASSERT_FALSE(ready_made);
    free(out);
    free(err);
    close(fd);

    /* the port of a running daemon: a second one must not share it */
    start_daemon(&d, NULL, NULL);
    snprintf(addr, sizeof(addr), "%s", d.addr);
    CU_ASSERT_EQUAL(run_daemon(args, NULL, &out, &err, &ready_made), 1);
    CU_ASSERT_FALSE(ready_made);
    free(out);
    free(err);
    stop_daemon(&d);
}

static CU_TestInfo daemon_tests[] = {
    {"port 0 -> ready file + 'listening on'", test_daemon_port0_writes_ready_file_and_logs_address},
    {"health Check -> SERVING", test_daemon_health_check_serving},
    {"reflection lists its services", test_daemon_reflection_lists_its_services},
    {"service RPCs without a token -> UNAUTHENTICATED (or UNIMPLEMENTED)",
     test_daemon_service_rpcs_without_token_are_unauthenticated_or_unimplemented},
    {"SIGTERM -> exit 0 promptly", test_daemon_sigterm_exits_0_promptly},
    {"SIGINT -> exit 0 promptly", test_daemon_sigint_exits_0_promptly},
    {"bad config -> exit 2, one line, never serves",
     test_daemon_bad_config_exits_2_with_one_line_before_serving},
    {"--help, --version -> exit 0", test_daemon_help_and_version_exit_0},
    {"flags override env", test_daemon_flags_override_env},
    {"port in use -> exit 1", test_daemon_port_in_use_exits_1},
    CU_TEST_INFO_NULL,
};

static int init_command(void)
{
    kind = HARNESS_COMMAND;
    return 0;
}

static int init_query(void)
{
    kind = HARNESS_QUERY;
    return 0;
}

static int init_projector(void)
{
    kind = HARNESS_PROJECTOR;
    return 0;
}

static CU_SuiteInfo suites[] = {
    {"tally-command", init_command, NULL, NULL, NULL, daemon_tests},
    {"tally-query", init_query, NULL, NULL, NULL, daemon_tests},
    {"tally-projector", init_projector, NULL, NULL, NULL, daemon_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    static const char *const daemon_env[] = {"TALLY_DATABASE_URL", "TALLY_LOG_LEVEL",
                                             "TALLY_WORKERS", "TALLY_POOL_SIZE"};
    unsigned int failed = 1;

    /* the daemons inherit our environment: only the tests set these */
    for (size_t i = 0; i < sizeof(daemon_env) / sizeof(daemon_env[0]); i++)
        unsetenv(daemon_env[i]);
    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
