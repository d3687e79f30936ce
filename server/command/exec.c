/* exec.c - see exec.h. */
#include "exec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "json.h"
#include "log.h"
#include "text.h"
#include "uuid.h"

/* ---- workers ---- */

static void worker_disconnect(struct cmd_worker *w)
{
    PQfreeCancel(w->cancel);
    w->cancel = NULL;
    PQfinish(w->conn);
    w->conn = NULL;
}

void *cmd_worker_init(void *arg, int index)
{
    struct cmd_worker *w = calloc(1, sizeof(*w));
    trpc_status st;

    (void)index;
    if (w == NULL)
        return NULL;
    w->env = arg;
    w->conn = pg_connect(&w->env->pg, &st); /* NULL is fine: retried per call */
    if (w->conn)
        w->cancel = PQgetCancel(w->conn);
    return w;
}

void cmd_worker_fini(void *arg)
{
    struct cmd_worker *w = arg;

    if (w == NULL)
        return;
    worker_disconnect(w);
    free(w);
}

/* A usable connection for this call, or UNAVAILABLE. One quick attempt: the
 * client retries, the call must not hang on a dead database. */
static grpc_status_code worker_conn(struct cmd_worker *w, trpc_status *st)
{
    struct pg_opts o;

    if (w->conn && PQstatus(w->conn) == CONNECTION_OK &&
        PQtransactionStatus(w->conn) == PQTRANS_IDLE)
        return GRPC_STATUS_OK;
    worker_disconnect(w);
    o = w->env->pg;
    o.connect_attempts = 1;
    o.connect_timeout_s = 2;
    w->conn = pg_connect(&o, st);
    if (w->conn == NULL)
        return trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
    w->cancel = PQgetCancel(w->conn);
    return GRPC_STATUS_OK;
}

static void cancel_query(void *arg)
{
    struct cmd_worker *w = arg;
    char err[128];

    if (w->cancel)
        PQcancel(w->cancel, err, sizeof(err));
}

/* ---- begin ---- */

/* The reply's CommandResponse: resp itself, or its `result` member. */
static Tally__V1__CommandResponse **result_slot(ProtobufCMessage *resp)
{
    const ProtobufCFieldDescriptor *f;

    if (resp->descriptor == &tally__v1__command_response__descriptor)
        return NULL;
    f = protobuf_c_message_descriptor_get_field_by_name(resp->descriptor, "result");
    if (f == NULL || f->descriptor != &tally__v1__command_response__descriptor)
        abort(); /* programmer error: every command reply carries a result */
    return (Tally__V1__CommandResponse **)((char *)resp + f->offset);
}

static grpc_status_code read_correlation(struct cmd *c, trpc_status *st)
{
    size_t len = 0;
    const char *v = trpc_call_metadata(c->call, "x-correlation-id", &len);

    if (v == NULL || len == 0) {
        if (uuid_v7_new(c->correlation_id) != 0)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "no randomness available");
        return GRPC_STATUS_OK;
    }
    if (len > TALLY_MAX_CORRELATION_BYTES)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "x-correlation-id is too long (%zu bytes, at most %d)", len,
                               TALLY_MAX_CORRELATION_BYTES);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];

        /* gRPC ASCII metadata: printable; keep it to what logs and URLs like */
        if (ch < 0x21 || ch > 0x7e)
            return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                                   "x-correlation-id must be printable ascii without spaces");
    }
    memcpy(c->correlation_id, v, len);
    c->correlation_id[len] = '\0';
    return GRPC_STATUS_OK;
}

/* SHA-256 of the method path and the request's canonical bytes. */
static grpc_status_code request_hash(struct cmd *c, const ProtobufCMessage *req, trpc_status *st)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    const char *path = trpc_call_path(c->call);
    unsigned int n = 0;
    int ok = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (buf && md) {
        protobuf_c_message_pack(req, buf);
        ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, path, strlen(path) + 1) && EVP_DigestUpdate(md, buf, len) &&
             EVP_DigestFinal_ex(md, c->idem_hash, &n) && n == 32;
    }
    EVP_MD_CTX_free(md);
    free(buf);
    return ok ? GRPC_STATUS_OK : trpc_status_set(st, GRPC_STATUS_INTERNAL, "cannot hash request");
}

struct replay_free {
    ProtobufCMessage *msg;
    Tally__V1__CommandResponse *shared; /* result shared with the reply */
};

static void replay_free_fn(void *arg)
{
    struct replay_free *rf = arg;

    if (rf->shared)
        rf->shared->position = NULL; /* the position lives in the call's arena */
    protobuf_c_message_free_unpacked(rf->msg, NULL);
}

/* Puts a stored answer into the reply. */
static grpc_status_code replay(struct cmd *c, const struct store_idem *row, trpc_status *st)
{
    ProtobufCMessage *m;
    Tally__V1__CommandResponse **slot;
    Tally__V1__Position *pos;
    struct replay_free *rf;

    if (CRYPTO_memcmp(row->hash, c->idem_hash, 32) != 0)
        return trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                               "idempotency key %s was already used with a different request",
                               c->idem_key);
    if (row->code != GRPC_STATUS_OK)
        return trpc_status_set(st, row->code, "%s", row->message);
    m = protobuf_c_message_unpack(c->resp->descriptor, NULL, row->response_len, row->response);
    if (m == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "stored response is unreadable");
    rf = trpc_call_alloc(c->call, sizeof(*rf));
    rf->msg = m;
    memcpy(c->resp, m, c->resp->descriptor->sizeof_message);
    slot = result_slot(c->resp);
    c->result = slot ? *slot : (Tally__V1__CommandResponse *)c->resp;
    rf->shared = slot ? *slot : NULL;
    trpc_call_defer(c->call, replay_free_fn, rf);
    if (c->result == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "stored response is unreadable");
    pos = (Tally__V1__Position *)trpc_call_new_message(c->call, &tally__v1__position__descriptor);
    pos->tx_id = row->pos.tx_id;
    pos->global_position = row->pos.global_position;
    c->result->position = pos;
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

grpc_status_code cmd_replay_stored(struct cmd *c, trpc_status *st)
{
    struct store_idem row;
    grpc_status_code code;

    if (store_idem_find(c->conn, c->who.tenant_id, c->idem_key, &row, st) != GRPC_STATUS_OK)
        return st->code;
    if (!row.found)
        code = trpc_status_set(st, GRPC_STATUS_ABORTED, "concurrent retry, try again");
    else
        code = replay(c, &row, st);
    store_idem_cleanup(&row);
    return code;
}

grpc_status_code cmd_begin(struct cmd *c, trpc_call *call, const char *kind,
                           const ProtobufCMessage *req, const char *idem_key,
                           const Google__Protobuf__Int64Value *expected, ProtobufCMessage *resp,
                           enum cmd_begin_result *r, trpc_status *st)
{
    size_t auth_len = 0;
    const char *auth_value;
    Tally__V1__CommandResponse **slot;

    memset(c, 0, sizeof(*c));
    *r = CMD_PROCEED;
    c->call = call;
    c->worker = trpc_call_worker_data(call);
    c->env = c->worker->env;
    c->kind = kind;
    c->resp = resp;
    slot = result_slot(resp);
    if (slot) {
        *slot = (Tally__V1__CommandResponse *)trpc_call_new_message(
            call, &tally__v1__command_response__descriptor);
        c->result = *slot;
    } else {
        c->result = (Tally__V1__CommandResponse *)resp;
    }
    if (worker_conn(c->worker, st) != GRPC_STATUS_OK)
        return st->code;
    c->conn = c->worker->conn;
    trpc_call_on_cancel(call, cancel_query, c->worker);

    auth_value = trpc_call_metadata(call, "authorization", &auth_len);
    if (auth_authenticate(c->env->auth, c->conn, auth_value, auth_len, &c->who, st) !=
        GRPC_STATUS_OK)
        return st->code;
    if (read_correlation(c, st) != GRPC_STATUS_OK)
        return st->code;
    if (uuid_v7_new(c->operation_id) != 0)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "no randomness available");
    if (expected) {
        if (expected->value < 0)
            return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                                   "expected_version must be >= 0");
        c->has_expected = 1;
        c->expected_version = expected->value;
    }
    if (idem_key && idem_key[0]) {
        struct store_idem row;
        grpc_status_code code;

        if (text_check("idempotency_key", idem_key, 1, TALLY_MAX_IDEMPOTENCY_BYTES, st) !=
            GRPC_STATUS_OK)
            return st->code;
        if (strncmp(idem_key, CMDCORE_RESERVED_KEY_PREFIX,
                    sizeof(CMDCORE_RESERVED_KEY_PREFIX) - 1) == 0)
            return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                                   "idempotency keys starting with \"%s\" are reserved",
                                   CMDCORE_RESERVED_KEY_PREFIX);
        c->idem_key = idem_key;
        if (request_hash(c, req, st) != GRPC_STATUS_OK)
            return st->code;
        if (store_idem_find(c->conn, c->who.tenant_id, idem_key, &row, st) != GRPC_STATUS_OK)
            return st->code;
        if (row.found) {
            *r = CMD_REPLAYED;
            code = replay(c, &row, st);
            store_idem_cleanup(&row);
            return code;
        }
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

grpc_status_code cmd_fail(struct cmd *c, trpc_status *st)
{
    trpc_status st2;
    grpc_status_code code = st->code;

    if (c->idem_key == NULL ||
        (code != GRPC_STATUS_NOT_FOUND && code != GRPC_STATUS_ALREADY_EXISTS &&
         code != GRPC_STATUS_FAILED_PRECONDITION))
        return code;
    if (store_idem_put_failure(c->conn, c->who.tenant_id, c->idem_key, c->idem_hash, code, st->msg,
                               &st2) != GRPC_STATUS_OK) {
        *st = st2;
        return st->code;
    }
    /* a concurrent retry may have stored its answer first: that one wins */
    return cmd_replay_stored(c, st);
}

/* ---- loading and appending: cmdcore.h ---- */

static void core_env(const struct cmd *c, struct cmdcore_env *e)
{
    e->accounts = c->env->accounts;
    e->bell = c->env->bell;
    e->snapshot_every = c->env->snapshot_every;
    e->max_attempts = c->env->max_attempts;
}

grpc_status_code cmd_load_account(struct cmd *c, const char *account_id, int fresh,
                                  struct account_state *s, trpc_status *st)
{
    struct cmdcore_env e;

    core_env(c, &e);
    return cmdcore_load_account(c->conn, &e, c->who.tenant_id, account_id, fresh, s, st);
}

grpc_status_code cmd_append(struct cmd *c, const char *aggregate_type, const char *aggregate_id,
                            int64_t version, const Tally__V1__Event *env, const char *op_status,
                            json_t *snapshot, enum store_conflict *conflict, trpc_status *st)
{
    struct cmdcore_env e;
    struct cmdcore_write w = {0};
    struct store_position pos = {0};
    uint8_t *template = NULL;
    Tally__V1__Position *p;

    *conflict = STORE_CONFLICT_NONE;
    core_env(c, &e);
    /* the reply is packed after the handler returns: copy into the arena */
    c->result->operation_id = trpc_call_strdup(c->call, c->operation_id);
    c->result->version = version;
    c->result->correlation_id = trpc_call_strdup(c->call, c->correlation_id);
    c->result->position = NULL;
    if (c->idem_key) { /* the answer a retry gets, without the position */
        w.idem_response_len = protobuf_c_message_get_packed_size(c->resp);
        template = malloc(w.idem_response_len ? w.idem_response_len : 1);
        if (template == NULL)
            return trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
        protobuf_c_message_pack(c->resp, template);
        w.idem_key = c->idem_key;
        w.idem_hash = c->idem_hash;
        w.idem_response = template;
    }
    w.tenant_id = c->who.tenant_id;
    w.operation_id = c->operation_id;
    w.operation_kind = c->kind;
    w.operation_status = op_status;
    w.correlation_id = c->correlation_id;
    w.causation_id = c->operation_id;
    w.user_id = c->who.token_name;
    if (cmdcore_append(c->conn, &e, &w, aggregate_type, aggregate_id, version, env, snapshot, &pos,
                       conflict, st) == GRPC_STATUS_OK) {
        p = (Tally__V1__Position *)trpc_call_new_message(c->call, &tally__v1__position__descriptor);
        p->tx_id = pos.tx_id;
        p->global_position = pos.global_position;
        c->result->position = p;
    }
    free(template);
    return st->code;
}

/* ---- one account command: cmdcore_account with this call's hooks ---- */

static int call_cancelled(void *arg)
{
    struct cmd *c = arg;

    return trpc_call_is_cancelled(c->call);
}

static grpc_status_code append_account(void *arg, const char *account_id, int64_t version,
                                       const Tally__V1__Event *env, json_t *snapshot,
                                       enum store_conflict *conflict, trpc_status *st)
{
    return cmd_append(arg, ACCOUNT_AGGREGATE_TYPE, account_id, version, env, "SUCCEEDED", snapshot,
                      conflict, st);
}

grpc_status_code cmd_account(struct cmd *c, const char *account_id, const char *payment_id,
                             cmd_account_decide_fn decide, const void *arg, trpc_status *st)
{
    struct cmdcore_env e;
    struct cmdcore_account_cmd cmd = {0};
    enum cmdcore_result result;

    core_env(c, &e);
    cmd.tenant_id = c->who.tenant_id;
    cmd.account_id = account_id;
    cmd.payment_id = payment_id;
    cmd.has_expected = c->has_expected;
    cmd.expected_version = c->expected_version;
    cmd.kind = c->kind;
    cmd.decide = decide;
    cmd.decide_arg = arg;
    cmd.append = append_account;
    cmd.append_arg = c;
    cmd.cancelled = call_cancelled;
    cmd.cancelled_arg = c;
    cmdcore_account(c->conn, &e, &cmd, &result, NULL, st);
    switch (result) {
    case CMDCORE_APPENDED:
        return GRPC_STATUS_OK;
    case CMDCORE_REJECTED:
        return cmd_fail(c, st);
    case CMDCORE_DUPLICATE:
        return cmd_replay_stored(c, st);
    default:
        return st->code;
    }
}
