/* cmd_read.c - the QueryService subcommands over the read model and time
 * travel: get, ls, entries, op, transfer-status, at, usage, status. Lists
 * print as aligned tables, single objects as key: value blocks; --json
 * prints the reply message (for a list fetched with --all, one reply holding
 * every page). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tally/v1/query.trpc.h"

#include "cli_value.h"
#include "command.h"
#include "exitcode.h"
#include "output.h"
#include "render.h"

#define ERR_SIZE 256
/* Largest page the server accepts (query.proto). */
#define MAX_PAGE_SIZE 1000

static int id_arg(const struct session *s, const char *what, const char *text,
                  char out[UUID_STR_SIZE])
{
    char err[ERR_SIZE];

    if (cli_value_uuid(what, text, out, err, sizeof(err)) != 0)
        return session_usage(s, "%s", err);
    return EXITCODE_OK;
}

static trpc_channel *query_channel(struct session *s)
{
    return session_channel(s, SESSION_QUERY);
}

/* --page-size N (1..1000) into *out, 0 when absent. */
static int page_size_opt(const struct session *s, const struct cli_args *a, int32_t *out)
{
    const char *v = cli_args_get(a, "page-size");
    char err[ERR_SIZE];
    int64_t n;

    *out = 0;
    if (v == NULL)
        return EXITCODE_OK;
    if (cli_value_int64("--page-size", v, 1, MAX_PAGE_SIZE, &n, err, sizeof(err)) != 0)
        return session_usage(s, "%s", err);
    *out = (int32_t)n;
    return EXITCODE_OK;
}

static int time_opt(const struct session *s, const struct cli_args *a, const char *name,
                    Google__Protobuf__Timestamp *ts, Google__Protobuf__Timestamp **out)
{
    const char *v = cli_args_get(a, name);
    char err[ERR_SIZE];

    *out = NULL;
    if (v == NULL)
        return EXITCODE_OK;
    google__protobuf__timestamp__init(ts);
    if (cli_value_time(v, &ts->seconds, &ts->nanos, err, sizeof(err)) != 0)
        return session_usage(s, "--%s: %s", name, err);
    *out = ts;
    return EXITCODE_OK;
}

static void print_more(const struct session *s, const char *token)
{
    if (token != NULL && token[0] != '\0')
        fprintf(stderr, "tallyctl: %s: more results: add --page-token %s (or --all)\n", s->cmd,
                token);
}

/* ---- get, at ---- */

static int print_account(const struct session *s, const Tally__V1__Account *acc)
{
    struct output_kv kv = {0};
    int rc;

    if (command_json(s, &acc->base, &rc))
        return rc;
    render_account(acc, &kv);
    output_kv_print(&kv, stdout);
    return EXITCODE_OK;
}

static int run_get(struct session *s, const struct cli_args *a)
{
    Tally__V1__GetAccountRequest req = TALLY__V1__GET_ACCOUNT_REQUEST__INIT;
    Tally__V1__Account *resp = NULL;
    Tally__V1__Position pos;
    char id[UUID_STR_SIZE];
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = id_arg(s, "ACCOUNT", a->pos[0], id)) != 0 ||
        (rc = command_read_common(s, a, &pos, &req.min_position)) != 0)
        return rc;
    req.account_id = id;
    if ((ch = query_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__query_service__trpc_get_account(ch, &req, &resp, session_call_opts(s), &st) !=
        GRPC_STATUS_OK)
        return session_fail(s, SESSION_QUERY, &st);
    rc = print_account(s, resp);
    tally__v1__account__free_unpacked(resp, NULL);
    return rc;
}

static const struct cli_opt at_opts[] = {
    {"version", CLI_VALUE, "N", "the state after stream version N (>= 1)"},
    {"time", CLI_VALUE, "T", "the state including every event recorded at or before T (RFC 3339)"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static int run_at(struct session *s, const struct cli_args *a)
{
    Tally__V1__GetAccountAtRequest req = TALLY__V1__GET_ACCOUNT_AT_REQUEST__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT, *ts_p;
    Tally__V1__Account *resp = NULL;
    const char *version = cli_args_get(a, "version");
    char id[UUID_STR_SIZE], err[ERR_SIZE];
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = id_arg(s, "ACCOUNT", a->pos[0], id)) != 0 ||
        (rc = time_opt(s, a, "time", &ts, &ts_p)) != 0)
        return rc;
    if ((version == NULL) == (ts_p == NULL))
        return session_usage(s, "give exactly one of --version N and --time T");
    req.account_id = id;
    if (version != NULL) {
        if (cli_value_int64("--version", version, 1, INT64_MAX, &req.version, err, sizeof(err)) !=
            0)
            return session_usage(s, "%s", err);
        req.at_case = TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_VERSION;
    } else {
        req.time = ts_p;
        req.at_case = TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_TIME;
    }
    if ((ch = query_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__query_service__trpc_get_account_at(ch, &req, &resp, session_call_opts(s), &st) !=
        GRPC_STATUS_OK)
        return session_fail(s, SESSION_QUERY, &st);
    rc = print_account(s, resp);
    tally__v1__account__free_unpacked(resp, NULL);
    return rc;
}

/* ---- ls ---- */

static const struct cli_opt ls_opts[] = {
    {"status", CLI_VALUE, "STATUS", "only accounts that are open, frozen or closed"},
    {"owner", CLI_VALUE, "OWNER", "only this owner's accounts"},
    {"currency", CLI_VALUE, "CURRENCY", "only accounts in this currency"},
    {"page-size", CLI_VALUE, "N", "accounts per page (1..1000, default 50)"},
    {"page-token", CLI_VALUE, "TOKEN", "continue after the page that printed this token"},
    {"all", CLI_FLAG, NULL, "fetch every page"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static const char *const ls_headers[] = {"ACCOUNT_ID", "OWNER",    "STATUS",
                                         ">BALANCE",   ">VERSION", "UPDATED"};

static int account_status_opt(const struct session *s, const char *v, Tally__V1__AccountStatus *out)
{
    static const struct {
        const char *name;
        Tally__V1__AccountStatus value;
    } names[] = {
        {"open", TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN},
        {"frozen", TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_FROZEN},
        {"closed", TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_CLOSED},
    };
    size_t i;

    *out = TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_UNSPECIFIED;
    if (v == NULL)
        return EXITCODE_OK;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(v, names[i].name) == 0) {
            *out = names[i].value;
            return EXITCODE_OK;
        }
    }
    return session_usage(s, "invalid --status \"%.32s\" (expected open, frozen or closed)", v);
}

/* Moves the items of a page into an accumulated reply (for --json --all):
 * the page keeps an empty list, so freeing both frees each item once. */
#define MOVE_ITEMS(acc, page, field, count, type)                                                  \
    do {                                                                                           \
        if ((page)->count > 0) {                                                                   \
            type **grown_ =                                                                        \
                realloc((acc)->field, ((acc)->count + (page)->count) * sizeof(type *));            \
            if (grown_ == NULL)                                                                    \
                goto oom;                                                                          \
            (acc)->field = grown_;                                                                 \
            memcpy((acc)->field + (acc)->count, (page)->field, (page)->count * sizeof(type *));    \
            (acc)->count += (page)->count;                                                         \
            free((page)->field);                                                                   \
            (page)->field = NULL;                                                                  \
            (page)->count = 0;                                                                     \
        }                                                                                          \
    } while (0)

static int run_ls(struct session *s, const struct cli_args *a)
{
    Tally__V1__ListAccountsRequest req = TALLY__V1__LIST_ACCOUNTS_REQUEST__INIT;
    Tally__V1__ListAccountsResponse *page = NULL, all = TALLY__V1__LIST_ACCOUNTS_RESPONSE__INIT;
    Tally__V1__Position pos;
    output_table *t = NULL;
    const char *currency = cli_args_get(a, "currency");
    char cur[MONEY_CODE_SIZE], err[ERR_SIZE], *token = NULL;
    bool every = cli_args_has(a, "all");
    trpc_channel *ch;
    trpc_status st;
    size_t i;
    int rc;

    if ((rc = command_read_common(s, a, &pos, &req.min_position)) != 0 ||
        (rc = account_status_opt(s, cli_args_get(a, "status"), &req.status)) != 0 ||
        (rc = page_size_opt(s, a, &req.page_size)) != 0)
        return rc;
    if (currency != NULL) {
        if (cli_value_currency(currency, cur, err, sizeof(err)) != 0)
            return session_usage(s, "--currency: %s", err);
        req.currency = cur;
    }
    req.owner = (char *)(cli_args_get(a, "owner") != NULL ? cli_args_get(a, "owner") : "");
    req.page_token = (char *)(cli_args_get(a, "page-token") ? cli_args_get(a, "page-token") : "");
    if ((ch = query_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (!s->json && (t = output_table_new(ls_headers, 6)) == NULL)
        goto oom;
    for (;;) {
        if (tally__v1__query_service__trpc_list_accounts(ch, &req, &page, session_call_opts(s),
                                                         &st) != GRPC_STATUS_OK) {
            rc = session_fail(s, SESSION_QUERY, &st);
            goto out;
        }
        for (i = 0; t != NULL && i < page->n_accounts; i++) {
            const Tally__V1__Account *acc = page->accounts[i];
            char money[RENDER_MONEY_SIZE], status[RENDER_ENUM_SIZE], ver[24], upd[RENDER_TIME_SIZE];
            const char *cells[6];

            snprintf(ver, sizeof(ver), "%" PRId64, acc->version);
            cells[0] = acc->account_id;
            cells[1] = acc->owner;
            cells[2] = render_enum(&tally__v1__account_status__descriptor, (int)acc->status,
                                   "ACCOUNT_STATUS_", status);
            cells[3] = render_money(acc->balance, money);
            cells[4] = ver;
            cells[5] = render_time(acc->updated_at, upd);
            if (output_table_add(t, cells) != 0)
                goto oom;
        }
        if (s->json && every)
            MOVE_ITEMS(&all, page, accounts, n_accounts, Tally__V1__Account);
        if (!every || page->next_page_token[0] == '\0')
            break;
        free(token);
        if ((token = strdup(page->next_page_token)) == NULL)
            goto oom;
        req.page_token = token;
        tally__v1__list_accounts_response__free_unpacked(page, NULL);
        page = NULL;
    }
    if (s->json)
        command_json(s, every ? &all.base : &page->base, &rc);
    else {
        output_table_print(t, stdout);
        print_more(s, page->next_page_token);
    }
    goto out;
oom:
    rc = session_error(s, EXITCODE_OTHER, "out of memory");
out:
    for (i = 0; i < all.n_accounts; i++)
        tally__v1__account__free_unpacked(all.accounts[i], NULL);
    free(all.accounts);
    tally__v1__list_accounts_response__free_unpacked(page, NULL);
    output_table_free(t);
    free(token);
    return rc;
}

/* ---- entries ---- */

static const struct cli_opt entries_opts[] = {
    {"backwards", CLI_FLAG, NULL, "newest first"},
    {"from-time", CLI_VALUE, "T", "only lines recorded at or after T (RFC 3339)"},
    {"to-time", CLI_VALUE, "T", "only lines recorded before T (RFC 3339)"},
    {"page-size", CLI_VALUE, "N", "lines per page (1..1000, default 50)"},
    {"page-token", CLI_VALUE, "TOKEN", "continue after the page that printed this token"},
    {"all", CLI_FLAG, NULL, "fetch every page"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static const char *const entries_headers[] = {
    ">VERSION", "TIME", "KIND", ">AMOUNT", ">BALANCE", "COUNTERPART", "REFERENCE", "OPERATION_ID"};

static int run_entries(struct session *s, const struct cli_args *a)
{
    Tally__V1__ListEntriesRequest req = TALLY__V1__LIST_ENTRIES_REQUEST__INIT;
    Tally__V1__ListEntriesResponse *page = NULL, all = TALLY__V1__LIST_ENTRIES_RESPONSE__INIT;
    Google__Protobuf__Timestamp from, to;
    Tally__V1__Position pos;
    output_table *t = NULL;
    char id[UUID_STR_SIZE], *token = NULL;
    bool every = cli_args_has(a, "all");
    trpc_channel *ch;
    trpc_status st;
    size_t i;
    int rc;

    if ((rc = id_arg(s, "ACCOUNT", a->pos[0], id)) != 0 ||
        (rc = command_read_common(s, a, &pos, &req.min_position)) != 0 ||
        (rc = time_opt(s, a, "from-time", &from, &req.from_time)) != 0 ||
        (rc = time_opt(s, a, "to-time", &to, &req.to_time)) != 0 ||
        (rc = page_size_opt(s, a, &req.page_size)) != 0)
        return rc;
    req.account_id = id;
    req.direction = cli_args_has(a, "backwards")
                        ? TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS
                        : TALLY__V1__READ_DIRECTION__READ_DIRECTION_FORWARDS;
    req.page_token = (char *)(cli_args_get(a, "page-token") ? cli_args_get(a, "page-token") : "");
    if ((ch = query_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (!s->json && (t = output_table_new(entries_headers, 8)) == NULL)
        goto oom;
    for (;;) {
        if (tally__v1__query_service__trpc_list_entries(ch, &req, &page, session_call_opts(s),
                                                        &st) != GRPC_STATUS_OK) {
            rc = session_fail(s, SESSION_QUERY, &st);
            goto out;
        }
        for (i = 0; t != NULL && i < page->n_entries; i++) {
            const Tally__V1__Entry *e = page->entries[i];
            char amount[RENDER_MONEY_SIZE], bal[RENDER_MONEY_SIZE], kind[RENDER_ENUM_SIZE];
            char ver[24], when[RENDER_TIME_SIZE];
            const char *cells[8];

            snprintf(ver, sizeof(ver), "%" PRId64, e->version);
            cells[0] = ver;
            cells[1] = render_time(e->recorded_at, when);
            cells[2] =
                render_enum(&tally__v1__entry_kind__descriptor, (int)e->kind, "ENTRY_KIND_", kind);
            cells[3] = render_money(e->amount, amount);
            cells[4] = render_money(e->balance_after, bal);
            cells[5] = e->counterpart_account_id;
            cells[6] = e->reference;
            cells[7] = e->operation_id;
            if (output_table_add(t, cells) != 0)
                goto oom;
        }
        if (s->json && every)
            MOVE_ITEMS(&all, page, entries, n_entries, Tally__V1__Entry);
        if (!every || page->next_page_token[0] == '\0')
            break;
        free(token);
        if ((token = strdup(page->next_page_token)) == NULL)
            goto oom;
        req.page_token = token;
        tally__v1__list_entries_response__free_unpacked(page, NULL);
        page = NULL;
    }
    if (s->json)
        command_json(s, every ? &all.base : &page->base, &rc);
    else {
        output_table_print(t, stdout);
        print_more(s, page->next_page_token);
    }
    goto out;
oom:
    rc = session_error(s, EXITCODE_OTHER, "out of memory");
out:
    for (i = 0; i < all.n_entries; i++)
        tally__v1__entry__free_unpacked(all.entries[i], NULL);
    free(all.entries);
    tally__v1__list_entries_response__free_unpacked(page, NULL);
    output_table_free(t);
    free(token);
    return rc;
}

/* ---- op, transfer-status ---- */

static int run_op(struct session *s, const struct cli_args *a)
{
    Tally__V1__GetOperationRequest req = TALLY__V1__GET_OPERATION_REQUEST__INIT;
    Tally__V1__Operation *op = NULL;
    Tally__V1__Position pos;
    char id[UUID_STR_SIZE], status[RENDER_ENUM_SIZE], t[RENDER_TIME_SIZE];
    struct output_kv kv = {0};
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = id_arg(s, "OPERATION", a->pos[0], id)) != 0 ||
        (rc = command_read_common(s, a, &pos, &req.min_position)) != 0)
        return rc;
    req.operation_id = id;
    if ((ch = query_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__query_service__trpc_get_operation(ch, &req, &op, session_call_opts(s), &st) !=
        GRPC_STATUS_OK)
        return session_fail(s, SESSION_QUERY, &st);
    if (!command_json(s, &op->base, &rc)) {
        output_kv_add(&kv, "operation_id", "%s", op->operation_id);
        output_kv_add(&kv, "kind", "%s", op->kind);
        output_kv_add(&kv, "status", "%s",
                      render_enum(&tally__v1__operation_status__descriptor, (int)op->status,
                                  "OPERATION_STATUS_", status));
        if (op->failure_reason[0] != '\0')
            output_kv_add(&kv, "failure_reason", "%s", op->failure_reason);
        output_kv_add(&kv, "aggregate", "%s/%s", op->aggregate_type, op->aggregate_id);
        output_kv_add(&kv, "correlation_id", "%s", op->correlation_id);
        output_kv_add(&kv, "created_at", "%s", render_time(op->created_at, t));
        output_kv_add(&kv, "updated_at", "%s", render_time(op->updated_at, t));
        output_kv_print(&kv, stdout);
    }
    tally__v1__operation__free_unpacked(op, NULL);
    return rc;
}

static int run_transfer_status(struct session *s, const struct cli_args *a)
{
    Tally__V1__GetTransferRequest req = TALLY__V1__GET_TRANSFER_REQUEST__INIT;
    Tally__V1__Transfer *tr = NULL;
    Tally__V1__Position pos;
    char id[UUID_STR_SIZE], e1[RENDER_ENUM_SIZE], e2[RENDER_ENUM_SIZE], t[RENDER_TIME_SIZE];
    char money[RENDER_MONEY_SIZE];
    struct output_kv kv = {0};
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = id_arg(s, "TRANSFER", a->pos[0], id)) != 0 ||
        (rc = command_read_common(s, a, &pos, &req.min_position)) != 0)
        return rc;
    req.transfer_id = id;
    if ((ch = query_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__query_service__trpc_get_transfer(ch, &req, &tr, session_call_opts(s), &st) !=
        GRPC_STATUS_OK)
        return session_fail(s, SESSION_QUERY, &st);
    if (!command_json(s, &tr->base, &rc)) {
        output_kv_add(&kv, "transfer_id", "%s", tr->transfer_id);
        output_kv_add(&kv, "source", "%s", tr->source_account_id);
        output_kv_add(&kv, "destination", "%s", tr->destination_account_id);
        output_kv_add(&kv, "amount", "%s", render_money(tr->amount, money));
        output_kv_add(&kv, "state", "%s",
                      render_enum(&tally__v1__transfer_state__descriptor, (int)tr->state,
                                  "TRANSFER_STATE_", e1));
        output_kv_add(&kv, "status", "%s",
                      render_enum(&tally__v1__operation_status__descriptor, (int)tr->status,
                                  "OPERATION_STATUS_", e2));
        if (tr->failure_reason[0] != '\0')
            output_kv_add(&kv, "failure_reason", "%s", tr->failure_reason);
        output_kv_add(&kv, "operation_id", "%s", tr->operation_id);
        output_kv_add(&kv, "correlation_id", "%s", tr->correlation_id);
        output_kv_add(&kv, "requested_at", "%s", render_time(tr->requested_at, t));
        output_kv_add(&kv, "updated_at", "%s", render_time(tr->updated_at, t));
        output_kv_print(&kv, stdout);
    }
    tally__v1__transfer__free_unpacked(tr, NULL);
    return rc;
}

/* ---- usage ---- */

static const struct cli_opt usage_opts[] = {
    {"from", CLI_VALUE, "YYYY-MM-DD", "first day, UTC (default: 29 days ago; required with --to)"},
    {"to", CLI_VALUE, "YYYY-MM-DD", "last day, UTC (default: today)"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static void utc_date(time_t when, char out[16])
{
    struct tm tm;

    if (gmtime_r(&when, &tm) == NULL || strftime(out, 16, "%Y-%m-%d", &tm) == 0)
        snprintf(out, 16, "1970-01-01");
}

static int run_usage(struct session *s, const struct cli_args *a)
{
    static const char *const headers[] = {"DATE", "EVENT", ">COUNT", "VOLUME"};
    Tally__V1__GetTenantUsageRequest req = TALLY__V1__GET_TENANT_USAGE_REQUEST__INIT;
    Tally__V1__GetTenantUsageResponse *resp = NULL;
    Tally__V1__Position pos;
    const char *from = cli_args_get(a, "from"), *to = cli_args_get(a, "to");
    char def_from[16], def_to[16], err[ERR_SIZE];
    output_table *t = NULL;
    time_t now = time(NULL);
    trpc_channel *ch;
    trpc_status st;
    size_t i, j;
    int rc;

    if ((rc = command_read_common(s, a, &pos, &req.min_position)) != 0)
        return rc;
    if ((from != NULL && cli_value_date(from, err, sizeof(err)) != 0) ||
        (to != NULL && cli_value_date(to, err, sizeof(err)) != 0))
        return session_usage(s, "%s", err);
    utc_date(now, def_to);
    utc_date(now - 29 * 86400, def_from);
    if (to != NULL && from == NULL)
        return session_usage(s, "--to needs --from");
    req.from_date = (char *)(from != NULL ? from : def_from);
    req.to_date = (char *)(to != NULL ? to : def_to);
    if ((ch = query_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__query_service__trpc_get_tenant_usage(ch, &req, &resp, session_call_opts(s),
                                                        &st) != GRPC_STATUS_OK)
        return session_fail(s, SESSION_QUERY, &st);
    if (command_json(s, &resp->base, &rc))
        goto out;
    if ((t = output_table_new(headers, 4)) == NULL)
        goto oom;
    for (i = 0; i < resp->n_rows; i++) {
        const Tally__V1__UsageRow *r = resp->rows[i];
        char count[24], volume[512] = "", money[RENDER_MONEY_SIZE];
        const char *cells[4];
        size_t off = 0;

        for (j = 0; j < r->n_volume && off < sizeof(volume); j++) {
            int n = snprintf(volume + off, sizeof(volume) - off, "%s%s", j > 0 ? ", " : "",
                             render_money(r->volume[j], money));
            off += n > 0 ? (size_t)n : 0;
        }
        snprintf(count, sizeof(count), "%" PRId64, r->event_count);
        cells[0] = r->date;
        cells[1] = r->event_type;
        cells[2] = count;
        cells[3] = volume;
        if (output_table_add(t, cells) != 0)
            goto oom;
    }
    output_table_print(t, stdout);
    goto out;
oom:
    rc = session_error(s, EXITCODE_OTHER, "out of memory");
out:
    output_table_free(t);
    tally__v1__get_tenant_usage_response__free_unpacked(resp, NULL);
    return rc;
}

/* ---- status ---- */

static int run_status(struct session *s, const struct cli_args *a)
{
    Tally__V1__GetProjectionStatusRequest req = TALLY__V1__GET_PROJECTION_STATUS_REQUEST__INIT;
    Tally__V1__ProjectionStatus *ps = NULL;
    Tally__V1__Position pos;
    char p[RENDER_POSITION_SIZE], t[RENDER_TIME_SIZE];
    struct output_kv kv = {0};
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = command_read_common(s, a, &pos, &req.min_position)) != 0)
        return rc;
    if ((ch = query_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__query_service__trpc_get_projection_status(ch, &req, &ps, session_call_opts(s),
                                                             &st) != GRPC_STATUS_OK)
        return session_fail(s, SESSION_QUERY, &st);
    if (!command_json(s, &ps->base, &rc)) {
        output_kv_add(&kv, "checkpoint", "%s", render_position(ps->checkpoint, p));
        output_kv_add(&kv, "lag_events", "%" PRId64, ps->lag_events);
        output_kv_add(&kv, "lag_seconds", "%.3f", ps->lag_seconds);
        output_kv_add(&kv, "dead_letters", "%" PRId64, ps->dead_letters);
        output_kv_add(&kv, "outbox_backlog", "%" PRId64, ps->outbox_backlog);
        output_kv_add(&kv, "notification_queue_usage", "%.4f", ps->notification_queue_usage);
        if (ps->blocked_reason[0] != '\0')
            output_kv_add(&kv, "blocked_reason", "%s", ps->blocked_reason);
        output_kv_add(&kv, "updated_at", "%s", render_time(ps->updated_at, t));
        output_kv_print(&kv, stdout);
    }
    tally__v1__projection_status__free_unpacked(ps, NULL);
    return rc;
}

static const struct cli_opt page_opts_none[] = {{NULL, CLI_FLAG, NULL, NULL}};

const struct command cmd_read_commands[] = {
    {"get", "ACCOUNT", "show an account (read model)",
     "Shows ACCOUNT's current state from the read model. After a command, pass its\n"
     "position as --min-position to read your own write.\n",
     page_opts_none, COMMAND_READ, 1, 1, run_get},
    {"ls", "", "list accounts",
     "Lists the tenant's accounts, oldest first, one page at a time (--all for\n"
     "every page). With --json: the ListAccountsResponse (all pages merged with\n"
     "--all).\n",
     ls_opts, COMMAND_READ, 0, 0, run_ls},
    {"entries", "ACCOUNT", "list an account's ledger lines",
     "Lists ACCOUNT's ledger lines (one per balance change), oldest first.\n"
     "Amounts are signed: negative for money out.\n",
     entries_opts, COMMAND_READ, 1, 1, run_entries},
    {"op", "OPERATION", "show the status of a command (operation id)", NULL, page_opts_none,
     COMMAND_READ, 1, 1, run_op},
    {"transfer-status", "TRANSFER", "show a transfer and where its saga is", NULL, page_opts_none,
     COMMAND_READ, 1, 1, run_transfer_status},
    {"at", "ACCOUNT", "show an account as it was (--version N | --time T)",
     "Rebuilds ACCOUNT from its events as of stream version N, or as of time T\n"
     "(RFC 3339, e.g. 2024-05-01T12:00:00Z; approximate: recorded_at is the writing\n"
     "transaction's time). Never reads the read model.\n",
     at_opts, 0, 1, 1, run_at},
    {"usage", "", "per-day event counts and volumes of the tenant",
     "Per-day (UTC) counts and money volumes per event type, from --from to --to\n"
     "inclusive (at most 366 days).\n",
     usage_opts, COMMAND_READ, 0, 0, run_usage},
    {"status", "", "how far the projections are behind the log", NULL, page_opts_none, COMMAND_READ,
     0, 0, run_status},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL},
};
