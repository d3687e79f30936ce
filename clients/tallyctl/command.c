/* command.c - the option groups and helpers shared by the subcommands. */
#include "command.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli_value.h"
#include "exitcode.h"
#include "output.h"
#include "render.h"
#include "tally_limits.h"

const struct cli_opt command_write_opts[] = {
    {"idempotency-key", CLI_VALUE, "KEY",
     "retrying with the same key and request returns the first answer (<= 128 bytes)"},
    {"expected-version", CLI_VALUE, "N",
     "fail with ABORTED unless the account's stream is at version N"},
    {"correlation-id", CLI_VALUE, "ID", "record the events under this correlation id"},
    {NULL, CLI_FLAG, NULL, NULL},
};

const struct cli_opt command_read_opts[] = {
    {"min-position", CLI_VALUE, "TX:POS",
     "first wait (within --timeout) until the read model includes this position"},
    {NULL, CLI_FLAG, NULL, NULL},
};

int command_write_common(const struct session *s, const struct cli_args *a, const char **key,
                         Google__Protobuf__Int64Value *ver, Google__Protobuf__Int64Value **ver_out)
{
    const char *k = cli_args_get(a, "idempotency-key");
    const char *v = cli_args_get(a, "expected-version");
    const char *c = cli_args_get(a, "correlation-id");
    char err[256];
    int64_t n;

    if (k != NULL && (k[0] == '\0' || strlen(k) > TALLY_MAX_IDEMPOTENCY_BYTES))
        return session_usage(s, "--idempotency-key must be 1 to %d bytes",
                             TALLY_MAX_IDEMPOTENCY_BYTES);
    if (c != NULL && (c[0] == '\0' || strlen(c) > TALLY_MAX_CORRELATION_BYTES))
        return session_usage(s, "--correlation-id must be 1 to %d bytes",
                             TALLY_MAX_CORRELATION_BYTES);
    *key = k != NULL ? k : "";
    *ver_out = NULL;
    if (v != NULL) {
        if (cli_value_int64("--expected-version", v, 0, INT64_MAX, &n, err, sizeof(err)) != 0)
            return session_usage(s, "%s", err);
        google__protobuf__int64_value__init(ver);
        ver->value = n;
        *ver_out = ver;
    }
    return EXITCODE_OK;
}

int command_read_common(const struct session *s, const struct cli_args *a, Tally__V1__Position *pos,
                        Tally__V1__Position **pos_out)
{
    const char *v = cli_args_get(a, "min-position");
    char err[256];

    *pos_out = NULL;
    if (v == NULL)
        return EXITCODE_OK;
    tally__v1__position__init(pos);
    if (cli_value_position(v, &pos->tx_id, &pos->global_position, err, sizeof(err)) != 0)
        return session_usage(s, "--min-position: %s", err);
    *pos_out = pos;
    return EXITCODE_OK;
}

bool command_json(const struct session *s, const ProtobufCMessage *msg, int *rc)
{
    char err[256];

    if (!s->json)
        return false;
    *rc = EXITCODE_OK;
    if (output_json(msg, stdout, err, sizeof(err)) != 0)
        *rc = session_error(s, EXITCODE_OTHER, "cannot print the reply as JSON: %s", err);
    return true;
}

const struct cli_opt command_filter_opts[] = {
    {"type", CLI_LIST, "TYPE", "only this aggregate type: account or transfer (repeatable)"},
    {"id", CLI_VALUE, "UUID", "only this aggregate's events"},
    {"prefix", CLI_LIST, "PREFIX",
     "only event types starting with PREFIX, e.g. Transfer (repeatable)"},
    {"correlation", CLI_VALUE, "ID", "only the events of this correlation id"},
    {NULL, CLI_FLAG, NULL, NULL},
};

int command_filter(const struct session *s, const struct cli_args *a, struct command_filter *f)
{
    const char *vals[COMMAND_FILTER_MAX];
    const char *id = cli_args_get(a, "id");
    const char *corr = cli_args_get(a, "correlation");
    char err[256];
    size_t n, i;

    memset(f, 0, sizeof(*f));
    tally__v1__event_filter__init(&f->filter);
    n = cli_args_list(a, "type", vals, COMMAND_FILTER_MAX);
    if (n > COMMAND_FILTER_MAX)
        return session_usage(s, "at most %d --type options", COMMAND_FILTER_MAX);
    for (i = 0; i < n; i++)
        f->types[i] = (char *)vals[i];
    f->filter.aggregate_types = n > 0 ? f->types : NULL;
    f->filter.n_aggregate_types = n;
    n = cli_args_list(a, "prefix", vals, COMMAND_FILTER_MAX);
    if (n > COMMAND_FILTER_MAX)
        return session_usage(s, "at most %d --prefix options", COMMAND_FILTER_MAX);
    for (i = 0; i < n; i++)
        f->prefixes[i] = (char *)vals[i];
    f->filter.event_type_prefixes = n > 0 ? f->prefixes : NULL;
    f->filter.n_event_type_prefixes = n;
    if (id != NULL) {
        if (cli_value_uuid("--id", id, f->id, err, sizeof(err)) != 0)
            return session_usage(s, "%s", err);
        f->filter.aggregate_id = f->id;
    }
    if (corr != NULL) {
        if (corr[0] == '\0' || strlen(corr) > TALLY_MAX_CORRELATION_BYTES)
            return session_usage(s, "--correlation must be 1 to %d bytes",
                                 TALLY_MAX_CORRELATION_BYTES);
        f->filter.correlation_id = (char *)corr;
    }
    return EXITCODE_OK;
}

int command_print_event_line(const struct session *s, const Tally__V1__Event *e)
{
    struct render_event r;
    const char *cells[RENDER_EVENT_COLUMNS];
    int rc;

    if (command_json(s, &e->base, &rc))
        return rc;
    render_event(e, &r, cells);
    printf("%s  %s  %s  v%s  %s  %s\n", cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]);
    return EXITCODE_OK;
}
