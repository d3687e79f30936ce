/* cmd_log.c - the event log subcommands: events (ReadStream: one
 * aggregate's stream), log (ReadAll: the tenant's log in order, filtered)
 * and trace (ListEventsByCorrelation: one business flow). Text output is a
 * table; --json prints one Event object per line, as watch does, so the
 * outputs of all four compose with line tools. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tally/v1/query.trpc.h"

#include "cli_value.h"
#include "command.h"
#include "exitcode.h"
#include "output.h"
#include "render.h"
#include "tally_limits.h"

#define ERR_SIZE 256
/* Largest batch the server returns (query.proto). */
#define MAX_LIMIT 1000

/* Collects events for the table (text mode) or prints each as a JSON line. */
struct sink {
    const struct session *s;
    output_table *t; /* NULL in --json mode */
    size_t count;
};

static int sink_init(struct sink *k, const struct session *s)
{
    memset(k, 0, sizeof(*k));
    k->s = s;
    if (s->json)
        return EXITCODE_OK;
    k->t = output_table_new(render_event_headers, RENDER_EVENT_COLUMNS);
    if (k->t == NULL)
        return session_error(s, EXITCODE_OTHER, "out of memory");
    return EXITCODE_OK;
}

static int sink_add(struct sink *k, Tally__V1__Event *const *events, size_t n)
{
    struct render_event r;
    const char *cells[RENDER_EVENT_COLUMNS];
    size_t i;
    int rc;

    for (i = 0; i < n; i++, k->count++) {
        if (k->t == NULL) {
            if ((rc = command_print_event_line(k->s, events[i])) != 0)
                return rc;
            continue;
        }
        render_event(events[i], &r, cells);
        if (output_table_add(k->t, cells) != 0)
            return session_error(k->s, EXITCODE_OTHER, "out of memory");
    }
    return EXITCODE_OK;
}

static void sink_finish(struct sink *k, int rc)
{
    if (k->t != NULL && rc == EXITCODE_OK)
        output_table_print(k->t, stdout);
    output_table_free(k->t);
    k->t = NULL;
}

static int limit_opt(const struct session *s, const struct cli_args *a, int32_t *out)
{
    const char *v = cli_args_get(a, "limit");
    char err[ERR_SIZE];
    int64_t n;

    *out = 0;
    if (v == NULL)
        return EXITCODE_OK;
    if (cli_value_int64("--limit", v, 1, MAX_LIMIT, &n, err, sizeof(err)) != 0)
        return session_usage(s, "%s", err);
    *out = (int32_t)n;
    return EXITCODE_OK;
}

/* ---- events ---- */

static const struct cli_opt events_opts[] = {
    {"type", CLI_VALUE, "TYPE", "the aggregate type: account (default) or transfer"},
    {"from-version", CLI_VALUE, "N",
     "start at version N (forwards: N and later; backwards: N and earlier)"},
    {"backwards", CLI_FLAG, NULL, "newest first"},
    {"limit", CLI_VALUE, "N", "at most N events per call (1..1000, default 100)"},
    {"all", CLI_FLAG, NULL, "read to the end of the stream"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static int run_events(struct session *s, const struct cli_args *a)
{
    Tally__V1__ReadStreamRequest req = TALLY__V1__READ_STREAM_REQUEST__INIT;
    Tally__V1__ReadStreamResponse *resp = NULL;
    Tally__V1__Position pos;
    const char *type = cli_args_get(a, "type"), *from = cli_args_get(a, "from-version");
    char id[UUID_STR_SIZE], err[ERR_SIZE];
    bool every = cli_args_has(a, "all");
    bool back = cli_args_has(a, "backwards");
    struct sink k;
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if (cli_value_uuid("ID", a->pos[0], id, err, sizeof(err)) != 0)
        return session_usage(s, "%s", err);
    if ((rc = command_read_common(s, a, &pos, &req.min_position)) != 0 ||
        (rc = limit_opt(s, a, &req.limit)) != 0)
        return rc;
    if (from != NULL && cli_value_int64("--from-version", from, 0, INT64_MAX, &req.from_version,
                                        err, sizeof(err)) != 0)
        return session_usage(s, "%s", err);
    req.aggregate_type = (char *)(type != NULL ? type : "account");
    req.aggregate_id = id;
    req.direction = back ? TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS
                         : TALLY__V1__READ_DIRECTION__READ_DIRECTION_FORWARDS;
    if ((ch = session_channel(s, SESSION_QUERY)) == NULL)
        return EXITCODE_OTHER;
    if ((rc = sink_init(&k, s)) != 0)
        return rc;
    for (;;) {
        int64_t next;

        if (tally__v1__query_service__trpc_read_stream(ch, &req, &resp, session_call_opts(s),
                                                       &st) != GRPC_STATUS_OK) {
            rc = session_fail(s, SESSION_QUERY, &st);
            break;
        }
        if ((rc = sink_add(&k, resp->events, resp->n_events)) != 0)
            break;
        if (!resp->has_more || resp->n_events == 0)
            break;
        next = resp->events[resp->n_events - 1]->version + (back ? -1 : 1);
        if (next < 1) /* backwards past version 1: nothing is left */
            break;
        if (!every) {
            fprintf(stderr,
                    "tallyctl: events: more events: add --from-version %" PRId64 " (or --all)\n",
                    next);
            break;
        }
        req.from_version = next;
        tally__v1__read_stream_response__free_unpacked(resp, NULL);
        resp = NULL;
    }
    sink_finish(&k, rc);
    tally__v1__read_stream_response__free_unpacked(resp, NULL);
    return rc;
}

/* ---- log ---- */

static const struct cli_opt log_opts[] = {
    {"after", CLI_VALUE, "TX:POS", "only events after this position (default: from the start)"},
    {"limit", CLI_VALUE, "N", "at most N events per call (1..1000, default 100)"},
    {"all", CLI_FLAG, NULL, "read until the end of the log"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static int run_log(struct session *s, const struct cli_args *a)
{
    Tally__V1__ReadAllRequest req = TALLY__V1__READ_ALL_REQUEST__INIT;
    Tally__V1__ReadAllResponse *resp = NULL;
    Tally__V1__Position pos, after = TALLY__V1__POSITION__INIT;
    struct command_filter f;
    const char *after_text = cli_args_get(a, "after");
    char err[ERR_SIZE], p[RENDER_POSITION_SIZE];
    bool every = cli_args_has(a, "all");
    struct sink k;
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = command_read_common(s, a, &pos, &req.min_position)) != 0 ||
        (rc = limit_opt(s, a, &req.limit)) != 0 || (rc = command_filter(s, a, &f)) != 0)
        return rc;
    if (after_text != NULL) {
        if (cli_value_position(after_text, &after.tx_id, &after.global_position, err,
                               sizeof(err)) != 0)
            return session_usage(s, "--after: %s", err);
        req.after = &after;
    }
    req.filter = &f.filter;
    if ((ch = session_channel(s, SESSION_QUERY)) == NULL)
        return EXITCODE_OTHER;
    if ((rc = sink_init(&k, s)) != 0)
        return rc;
    for (;;) {
        if (tally__v1__query_service__trpc_read_all(ch, &req, &resp, session_call_opts(s), &st) !=
            GRPC_STATUS_OK) {
            rc = session_fail(s, SESSION_QUERY, &st);
            break;
        }
        if ((rc = sink_add(&k, resp->events, resp->n_events)) != 0)
            break;
        if (resp->end_of_log || resp->next_position == NULL)
            break;
        /* a reply that does not move forward would loop forever */
        if (req.after != NULL && resp->next_position->tx_id == after.tx_id &&
            resp->next_position->global_position == after.global_position)
            break;
        if (!every) {
            fprintf(stderr, "tallyctl: log: more events: add --after %s (or --all)\n",
                    render_position(resp->next_position, p));
            break;
        }
        after.tx_id = resp->next_position->tx_id;
        after.global_position = resp->next_position->global_position;
        req.after = &after;
        tally__v1__read_all_response__free_unpacked(resp, NULL);
        resp = NULL;
    }
    sink_finish(&k, rc);
    tally__v1__read_all_response__free_unpacked(resp, NULL);
    return rc;
}

/* ---- trace ---- */

static const struct cli_opt trace_opts[] = {
    {"limit", CLI_VALUE, "N", "at most N events (1..1000, default 100)"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static int run_trace(struct session *s, const struct cli_args *a)
{
    Tally__V1__ListEventsByCorrelationRequest req =
        TALLY__V1__LIST_EVENTS_BY_CORRELATION_REQUEST__INIT;
    Tally__V1__ListEventsByCorrelationResponse *resp = NULL;
    Tally__V1__Position pos;
    struct sink k;
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if (a->pos[0][0] == '\0' || strlen(a->pos[0]) > TALLY_MAX_CORRELATION_BYTES)
        return session_usage(s, "CORRELATION_ID must be 1 to %d bytes",
                             TALLY_MAX_CORRELATION_BYTES);
    if ((rc = command_read_common(s, a, &pos, &req.min_position)) != 0 ||
        (rc = limit_opt(s, a, &req.limit)) != 0)
        return rc;
    req.correlation_id = (char *)a->pos[0];
    if ((ch = session_channel(s, SESSION_QUERY)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__query_service__trpc_list_events_by_correlation(
            ch, &req, &resp, session_call_opts(s), &st) != GRPC_STATUS_OK)
        return session_fail(s, SESSION_QUERY, &st);
    if ((rc = sink_init(&k, s)) == 0) {
        rc = sink_add(&k, resp->events, resp->n_events);
        sink_finish(&k, rc);
    }
    tally__v1__list_events_by_correlation_response__free_unpacked(resp, NULL);
    return rc;
}

const struct command cmd_log_commands[] = {
    {"events", "ID", "read one aggregate's event stream",
     "Reads the events of account ID (or --type transfer) in version order.\n"
     "--json prints one Event per line.\n",
     events_opts, COMMAND_READ, 1, 1, run_events},
    {"log", "", "read the tenant's event log in order",
     "Reads the tenant's events in log order (transaction, position), after\n"
     "--after, filtered like watch. Only events every reader can see are\n"
     "returned, so continuing with --after never skips one. --json prints one\n"
     "Event per line.\n",
     log_opts, COMMAND_READ | COMMAND_FILTER, 0, 0, run_log},
    {"trace", "CORRELATION_ID", "every event of one business flow",
     "Lists the events recorded under CORRELATION_ID (e.g. a transfer's request,\n"
     "debit, credit and outcome) in log order. --json prints one Event per line.\n",
     trace_opts, COMMAND_READ, 1, 1, run_trace},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL},
};
