/* session.c - see session.h. */
#include "session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_value.h"
#include "exitcode.h"

const struct cli_opt session_opts[] = {
    {"addr", CLI_VALUE, "HOST:PORT",
     "CommandService address (TALLY_ADDR, default 127.0.0.1:50051)"},
    {"query-addr", CLI_VALUE, "HOST:PORT",
     "QueryService address (TALLY_QUERY_ADDR, default 127.0.0.1:50052)"},
    {"subscribe-addr", CLI_VALUE, "HOST:PORT",
     "SubscriptionService address (TALLY_SUBSCRIBE_ADDR, default 127.0.0.1:50053)"},
    {"token", CLI_VALUE, "TOKEN", "API token, sent as a bearer token (TALLY_TOKEN)"},
    {"json", CLI_FLAG, NULL, "print proto3 JSON instead of text"},
    {"timeout", CLI_VALUE, "DURATION", "deadline of each call, e.g. 500ms, 10s, 2m (default 30s)"},
    {"deadline", CLI_VALUE, "DURATION", "same as --timeout"},
    {"tls-ca", CLI_VALUE, "FILE",
     "TLS: CA certificates (PEM) the servers must chain to (TALLY_TLS_CA)"},
    {"tls-cert", CLI_VALUE, "FILE", "client certificate (PEM) for mutual TLS (TALLY_TLS_CERT)"},
    {"tls-key", CLI_VALUE, "FILE", "its private key (PEM) (TALLY_TLS_KEY)"},
    {"tls-server-name", CLI_VALUE, "NAME",
     "name the servers' certificates must carry (TALLY_TLS_SERVER_NAME)"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static const char *const env_names[SESSION_N_SERVICES] = {
    "TALLY_ADDR",
    "TALLY_QUERY_ADDR",
    "TALLY_SUBSCRIBE_ADDR",
};
static const char *const flag_names[SESSION_N_SERVICES] = {"addr", "query-addr", "subscribe-addr"};
static const char *const defaults[SESSION_N_SERVICES] = {
    SESSION_DEFAULT_ADDR,
    SESSION_DEFAULT_QUERY_ADDR,
    SESSION_DEFAULT_SUBSCRIBE_ADDR,
};
static const char *const server_names[SESSION_N_SERVICES] = {"tally-command", "tally-query",
                                                             "tally-projector"};

/* flag > environment (when set and not empty) > default */
static const char *setting(const struct cli_args *a, const char *flag, const char *env,
                           const char *def)
{
    const char *v = cli_args_get(a, flag);

    if (v != NULL)
        return v;
    v = getenv(env);
    if (v != NULL && v[0] != '\0')
        return v;
    return def;
}

/* 0 when path is NULL or a readable file; else EXITCODE_USAGE, printed. */
static int check_file(const struct session *s, const char *flag, const char *path)
{
    FILE *f;

    if (path == NULL)
        return EXITCODE_OK;
    f = fopen(path, "r");
    if (f == NULL)
        return session_usage(s, "--%s %s: %s", flag, path, strerror(errno));
    fclose(f);
    return EXITCODE_OK;
}

/* The TLS settings: flags > environment; on when any file is given. */
static int tls_init(struct session *s, const struct cli_args *a)
{
    int rc;

    s->tls.ca_file = setting(a, "tls-ca", "TALLY_TLS_CA", NULL);
    s->tls.cert_file = setting(a, "tls-cert", "TALLY_TLS_CERT", NULL);
    s->tls.key_file = setting(a, "tls-key", "TALLY_TLS_KEY", NULL);
    s->tls.server_name = setting(a, "tls-server-name", "TALLY_TLS_SERVER_NAME", NULL);
    s->use_tls = s->tls.ca_file != NULL || s->tls.cert_file != NULL || s->tls.key_file != NULL;
    if ((s->tls.cert_file == NULL) != (s->tls.key_file == NULL))
        return session_usage(s, "--tls-cert and --tls-key go together");
    if ((rc = check_file(s, "tls-ca", s->tls.ca_file)) != EXITCODE_OK ||
        (rc = check_file(s, "tls-cert", s->tls.cert_file)) != EXITCODE_OK ||
        (rc = check_file(s, "tls-key", s->tls.key_file)) != EXITCODE_OK)
        return rc;
    return EXITCODE_OK;
}

int session_init(struct session *s, const char *cmd, const struct cli_args *a)
{
    const char *timeout;
    char err[256];
    int i;
    size_t n;

    memset(s, 0, sizeof(*s));
    s->cmd = cmd;
    for (i = 0; i < SESSION_N_SERVICES; i++)
        s->addr[i] = setting(a, flag_names[i], env_names[i], defaults[i]);
    s->token = setting(a, "token", "TALLY_TOKEN", NULL);
    s->json = cli_args_has(a, "json");
    s->timeout_ms = SESSION_DEFAULT_TIMEOUT_MS;
    timeout = cli_args_get(a, "timeout");
    if (cli_args_get(a, "deadline") != NULL)
        timeout = cli_args_get(a, "deadline");
    if (timeout != NULL) {
        if (cli_value_duration_ms(timeout, &s->timeout_ms, err, sizeof(err)) != 0)
            return session_usage(s, "--timeout: %s", err);
        s->timeout_given = true;
    }
    for (i = 0; i < SESSION_N_SERVICES; i++) {
        if (s->addr[i][0] == '\0')
            return session_usage(s, "--%s must not be empty", flag_names[i]);
    }
    if ((i = tls_init(s, a)) != EXITCODE_OK)
        return i;
    /* only the write commands define --correlation-id */
    s->correlation_id = cli_args_get(a, "correlation-id");
    n = 0;
    if (s->token != NULL) {
        size_t len = strlen(s->token) + sizeof("Bearer ");

        s->bearer = malloc(len);
        if (s->bearer == NULL)
            return session_error(s, EXITCODE_OTHER, "out of memory");
        snprintf(s->bearer, len, "Bearer %s", s->token);
        s->md[n].key = "authorization";
        s->md[n].value = s->bearer;
        n++;
    }
    if (s->correlation_id != NULL) {
        s->md[n].key = "x-correlation-id";
        s->md[n].value = s->correlation_id;
        n++;
    }
    s->opts.metadata = n > 0 ? s->md : NULL;
    s->opts.n_metadata = n;
    s->opts.timeout_ms = s->timeout_ms;
    return EXITCODE_OK;
}

void session_cleanup(struct session *s)
{
    int i;

    for (i = 0; i < SESSION_N_SERVICES; i++) {
        trpc_channel_free(s->ch[i]);
        s->ch[i] = NULL;
    }
    free(s->bearer);
    s->bearer = NULL;
}

trpc_channel *session_channel(struct session *s, enum session_service svc)
{
    if (s->ch[svc] == NULL) {
        trpc_status st = {0};

        s->ch[svc] = s->use_tls ? trpc_channel_new_tls(s->addr[svc], &s->tls, &st)
                                : trpc_channel_new(s->addr[svc]);
        if (s->ch[svc] == NULL)
            session_error(s, EXITCODE_OTHER, "cannot make a channel to %s (%s)%s%s", s->addr[svc],
                          server_names[svc], st.msg[0] ? ": " : "", st.msg);
    }
    return s->ch[svc];
}

const trpc_call_opts *session_call_opts(struct session *s)
{
    return &s->opts;
}

int session_fail(const struct session *s, enum session_service svc, const trpc_status *st)
{
    char msg[sizeof(st->msg)];
    size_t i;

    /* one line, whatever the server sent */
    snprintf(msg, sizeof(msg), "%s", st->msg[0] != '\0' ? st->msg : "(no message)");
    for (i = 0; msg[i] != '\0'; i++) {
        if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
            msg[i] = ' ';
    }

    if (st->code == GRPC_STATUS_UNAVAILABLE || st->code == GRPC_STATUS_DEADLINE_EXCEEDED)
        fprintf(stderr, "tallyctl: %s: %s: %s (%s at %s)\n", s->cmd,
                trpc_status_code_name(st->code), msg, server_names[svc], s->addr[svc]);
    else
        fprintf(stderr, "tallyctl: %s: %s: %s\n", s->cmd, trpc_status_code_name(st->code), msg);
    return exitcode_for_status(st->code);
}

int session_usage(const struct session *s, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "tallyctl: %s: ", s->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'tallyctl %s --help')\n", s->cmd);
    return EXITCODE_USAGE;
}

int session_error(const struct session *s, int code, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "tallyctl: %s: ", s->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}
