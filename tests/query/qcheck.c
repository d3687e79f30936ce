/* qcheck.c - see qcheck.h. */
#include "qcheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct rdata RD;

void qreport(int line, const char *what, grpc_status_code code, const trpc_status *st)
{
    fprintf(stderr, "\n  line %d: %s -> %s \"%s\"\n", line, what, trpc_status_code_name(code),
            code == OK || st == NULL ? "" : st->msg);
}

int qcheck_ok(int line, const char *what, grpc_status_code code, const trpc_status *st)
{
    CHECK(line, code == OK);
    if (code != OK)
        qreport(line, what, code, st);
    return code == OK;
}

/* Words that would betray a database error passed through. */
static const char *const leaks[] = {"ERROR",     "SQL",         "select ", "SELECT", "relation \"",
                                    "column \"", "syntax",      "PQ",      "libpq",  "postgres",
                                    "tuple",     "DETAIL",      "HINT",    "\n",     "violates",
                                    "xid8",      "out of range"};

void qcheck_error(int line, const char *what, grpc_status_code code, const trpc_status *st,
                  grpc_status_code want)
{
    int ok_code = code == want;
    int ok_msg = code != OK && st->msg[0] != '\0' && strlen(st->msg) < 200;

    for (size_t i = 0; ok_msg && i < sizeof(leaks) / sizeof(leaks[0]); i++)
        if (strstr(st->msg, leaks[i]) != NULL)
            ok_msg = 0;
    CHECK(line, ok_code);
    CHECK(line, ok_msg);
    if (!ok_code || !ok_msg)
        fprintf(stderr, "\n  line %d: %s\n    got %s \"%s\", want %s with a short safe message\n",
                line, what, trpc_status_code_name(code), code == OK ? "" : st->msg,
                trpc_status_code_name(want));
}

/* ---- generic calls ---- */

const trpc_method_desc *qmethod(const char *name)
{
    const trpc_service_desc *s = &tally__v1__query_service__trpc_service;

    for (size_t i = 0; i < s->n_methods; i++)
        if (strcmp(s->methods[i].name, name) == 0)
            return &s->methods[i];
    return NULL;
}

grpc_status_code qcall(const trpc_method_desc *m, const ProtobufCMessage *req,
                       const trpc_call_opts *o, trpc_status *st)
{
    ProtobufCMessage *resp = NULL;
    grpc_status_code code = trpc_unary(Q.qch, m, req, &resp, o, st);

    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return code;
}

int qhas_min_position(const trpc_method_desc *m)
{
    return protobuf_c_message_descriptor_get_field_by_name(m->input, "min_position") != NULL;
}

ProtobufCMessage *qany_request(const trpc_method_desc *m, const char *id, const char *corr,
                               const Tally__V1__Position *pos, Tally__V1__Position *posbuf)
{
    static char today[11];
    const ProtobufCMessageDescriptor *d = m->input;
    ProtobufCMessage *msg = calloc(1, d->sizeof_message);

    if (msg == NULL)
        return NULL;
    if (today[0] == '\0')
        qday(today, 0);
    protobuf_c_message_init(d, msg);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *at = (char *)msg + f->offset;

        if (f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED) {
            const char *v = NULL;

            if (strstr(f->name, "_id") && strcmp(f->name, "correlation_id") != 0)
                v = id;
            else if (strcmp(f->name, "aggregate_type") == 0)
                v = "account";
            else if (strcmp(f->name, "correlation_id") == 0)
                v = corr;
            else if (strcmp(f->name, "from_date") == 0 || strcmp(f->name, "to_date") == 0)
                v = today;
            if (v)
                *(const char **)at = v;
        } else if (strcmp(f->name, "min_position") == 0 && pos) {
            *posbuf = *pos;
            *(Tally__V1__Position **)at = posbuf;
        }
    }
    if (d == &tally__v1__get_account_at_request__descriptor) {
        Tally__V1__GetAccountAtRequest *r = (Tally__V1__GetAccountAtRequest *)msg;

        r->at_case = TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_VERSION;
        r->version = 1;
    }
    return msg;
}

/* ---- typed helpers ---- */

grpc_status_code qget_account(const struct qtenant *t, const char *id, const struct qres *r,
                              int64_t timeout_ms, Tally__V1__Account **out, trpc_status *st)
{
    Tally__V1__GetAccountRequest req = TALLY__V1__GET_ACCOUNT_REQUEST__INIT;
    Tally__V1__Position p;
    trpc_call_opts o = t->opts;

    o.timeout_ms = timeout_ms;
    req.account_id = (char *)id;
    req.min_position = r ? qres_pos(r, &p) : NULL;
    *out = NULL;
    return tally__v1__query_service__trpc_get_account(Q.qch, &req, out, &o, st);
}

int qlist_accounts_all(const struct qtenant *t, int status, const char *owner, const char *currency,
                       int page_size, const struct qres *r, char ids[][QFIX_ID], int max,
                       int *pages)
{
    char token[2048] = "";
    int n = 0;

    *pages = 0;
    for (;;) {
        Tally__V1__ListAccountsRequest req = TALLY__V1__LIST_ACCOUNTS_REQUEST__INIT;
        Tally__V1__ListAccountsResponse *resp = NULL;
        Tally__V1__Position p;
        trpc_status st;
        grpc_status_code code;

        req.status = (Tally__V1__AccountStatus)status;
        req.owner = (char *)(owner ? owner : "");
        req.currency = (char *)(currency ? currency : "");
        req.page_size = page_size;
        req.page_token = token;
        req.min_position = r ? qres_pos(r, &p) : NULL;
        code = tally__v1__query_service__trpc_list_accounts(Q.qch, &req, &resp, &t->opts, &st);
        (*pages)++;
        if (code != OK) {
            qreport(__LINE__, "ListAccounts", code, &st);
            return -1;
        }
        for (size_t i = 0; i < resp->n_accounts; i++) {
            if (n == max) {
                FREE_MSG(resp);
                fprintf(stderr, "\n  qlist_accounts_all: more than %d accounts\n", max);
                return -1;
            }
            snprintf(ids[n++], QFIX_ID, "%s", resp->accounts[i]->account_id);
        }
        snprintf(token, sizeof(token), "%s", resp->next_page_token);
        FREE_MSG(resp);
        if (token[0] == '\0' || *pages > 10000)
            return n;
    }
}

int qlist_entries_all(const struct qtenant *t, const char *id, int backwards, int64_t from_us,
                      int64_t to_us, int page_size, const struct qres *r, int64_t *versions,
                      Tally__V1__Entry **entries, int max, int *pages)
{
    char token[2048] = "";
    int n = 0;

    *pages = 0;
    for (;;) {
        Tally__V1__ListEntriesRequest req = TALLY__V1__LIST_ENTRIES_REQUEST__INIT;
        Tally__V1__ListEntriesResponse *resp = NULL;
        Google__Protobuf__Timestamp from, to;
        Tally__V1__Position p;
        trpc_status st;
        grpc_status_code code;

        req.account_id = (char *)id;
        req.direction = backwards ? TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS
                                  : TALLY__V1__READ_DIRECTION__READ_DIRECTION_FORWARDS;
        req.from_time = from_us ? qts(&from, from_us) : NULL;
        req.to_time = to_us ? qts(&to, to_us) : NULL;
        req.page_size = page_size;
        req.page_token = token;
        req.min_position = r ? qres_pos(r, &p) : NULL;
        code = tally__v1__query_service__trpc_list_entries(Q.qch, &req, &resp, &t->opts, &st);
        (*pages)++;
        if (code != OK) {
            qreport(__LINE__, "ListEntries", code, &st);
            return -1;
        }
        for (size_t i = 0; i < resp->n_entries; i++) {
            if (n == max) {
                FREE_MSG(resp);
                fprintf(stderr, "\n  qlist_entries_all: more than %d entries\n", max);
                return -1;
            }
            versions[n] = resp->entries[i]->version;
            if (entries) {
                entries[n] = resp->entries[i];
                resp->entries[i] = NULL;
            }
            n++;
        }
        if (entries) /* the entries moved out: drop only the husk */
            resp->n_entries = 0;
        snprintf(token, sizeof(token), "%s", resp->next_page_token);
        FREE_MSG(resp);
        if (token[0] == '\0' || *pages > 10000)
            return n;
    }
}

void qentries_free(Tally__V1__Entry **entries, int n)
{
    for (int i = 0; i < n; i++)
        FREE_MSG(entries[i]);
}

int qread_all(const struct qtenant *t, const Tally__V1__EventFilter *filter, int limit,
              Tally__V1__Event **out, int max, Tally__V1__Position *last, int *pages)
{
    Tally__V1__Position after = TALLY__V1__POSITION__INIT;
    int n = 0;

    *pages = 0;
    for (;;) {
        Tally__V1__ReadAllRequest req = TALLY__V1__READ_ALL_REQUEST__INIT;
        Tally__V1__ReadAllResponse *resp = NULL;
        trpc_status st;
        grpc_status_code code;
        int end;

        req.after = *pages ? &after : NULL;
        req.filter = (Tally__V1__EventFilter *)filter;
        req.limit = limit;
        code = tally__v1__query_service__trpc_read_all(Q.qch, &req, &resp, &t->opts, &st);
        (*pages)++;
        if (code != OK) {
            qreport(__LINE__, "ReadAll", code, &st);
            return -1;
        }
        for (size_t i = 0; i < resp->n_events; i++) {
            if (n == max) {
                FREE_MSG(resp);
                fprintf(stderr, "\n  qread_all: more than %d events\n", max);
                return -1;
            }
            out[n++] = resp->events[i];
            resp->events[i] = NULL;
        }
        resp->n_events = 0;
        if (resp->next_position) {
            after.tx_id = resp->next_position->tx_id;
            after.global_position = resp->next_position->global_position;
        }
        end = resp->end_of_log;
        FREE_MSG(resp);
        if (end || *pages > 10000) {
            if (last)
                *last = after;
            return n;
        }
    }
}

void qevents_free(Tally__V1__Event **ev, int n)
{
    for (int i = 0; i < n; i++)
        FREE_MSG(ev[i]);
}

grpc_status_code qstatus(const struct qtenant *t, Tally__V1__ProjectionStatus **out,
                         trpc_status *st)
{
    Tally__V1__GetProjectionStatusRequest req = TALLY__V1__GET_PROJECTION_STATUS_REQUEST__INIT;

    *out = NULL;
    return tally__v1__query_service__trpc_get_projection_status(Q.qch, &req, out, &t->opts, st);
}

Google__Protobuf__Timestamp *qts(Google__Protobuf__Timestamp *ts, int64_t us)
{
    google__protobuf__timestamp__init(ts);
    ts->seconds = us / 1000000;
    ts->nanos = (int32_t)(us % 1000000) * 1000;
    if (ts->nanos < 0) {
        ts->seconds -= 1;
        ts->nanos += 1000000000;
    }
    return ts;
}

int64_t qts_us(const Google__Protobuf__Timestamp *ts)
{
    return ts ? ts->seconds * 1000000 + ts->nanos / 1000 : 0;
}

int qpos_cmp(const Tally__V1__Position *a, const Tally__V1__Position *b)
{
    uint64_t at = a ? a->tx_id : 0, bt = b ? b->tx_id : 0;
    int64_t ag = a ? a->global_position : 0, bg = b ? b->global_position : 0;

    if (at != bt)
        return at < bt ? -1 : 1;
    if (ag != bg)
        return ag < bg ? -1 : 1;
    return 0;
}

void qday(char out[11], int days)
{
    char n[16];

    snprintf(n, sizeof(n), "%d", days);
    qsql_str(out, 11, "SELECT to_char((now() AT TIME ZONE 'UTC')::date + $1::int, 'YYYY-MM-DD')", n,
             NULL);
}

/* ---- forged tokens ---- */

void qb64url(char *out, const char *text)
{
    unsigned char b64[4096];
    int len = EVP_EncodeBlock(b64, (const unsigned char *)text, (int)strlen(text));

    while (len > 0 && b64[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++)
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    out[len] = '\0';
}

void qforge_token(char *out, const char *kind, const char *tenant_id, const char *const *params,
                  int n, const char *keys_json)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char fp[33], json[1200];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, kind, strlen(kind) + 1);
    EVP_DigestUpdate(ctx, tenant_id, strlen(tenant_id) + 1);
    for (int i = 0; i < n; i++) {
        uint8_t tag = params[i] ? 1 : 0;

        EVP_DigestUpdate(ctx, &tag, 1);
        if (params[i])
            EVP_DigestUpdate(ctx, params[i], strlen(params[i]) + 1);
    }
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 16; i++)
        snprintf(fp + 2 * i, 3, "%02x", md[i]);
    snprintf(json, sizeof(json), "{\"c\":\"%s\",\"f\":\"%s\",\"k\":%s}", kind, fp, keys_json);
    qb64url(out, json);
}
