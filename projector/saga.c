/* saga.c - see saga.h. */
#include "saga.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "account.h"
#include "aggcache.h"
#include "cmdcore.h"
#include "deadletter.h"
#include "doorbell.h"
#include "evcodec.h"
#include "log.h"
#include "pconn.h"
#include "rmproj.h"
#include "store.h"
#include "transfer.h"
#include "uuid.h"

#define BACKOFF_MAX_MS       5000
#define STANDBY_CHECK_MS     1000
#define RETRY_CHECK_EVERY_MS 1000
#define CACHE_ENTRIES        10000
#define APPEND_ATTEMPTS      8
#define USER_MAX             256

struct saga {
    struct saga_opts o;
    pthread_t thread;
    wake *w;
    leader *l;
    aggcache *cache;
    doorbell *bell;
    struct cmdcore_env env;
    struct dl_set dl;
    struct store_position cp;
    int64_t epoch;
    int loaded;
    long next_retry_check_ms;
    struct store_position poison;
    int attempts;
    int delay_ms;
};

enum step_result {
    STEP_DONE = 0,  /* the step is written now or was before */
    STEP_TRANSIENT, /* try again later; not the event's fault */
    STEP_FAILED,    /* an attempt that counts towards a dead letter */
};

enum saga_step {
    SAGA_IDLE = 0,
    SAGA_PROGRESS,
    SAGA_RETRY_LATER,
    SAGA_DB_ERROR,
};

/* A decoded trigger event. */
struct trigger {
    const struct rawlog_event *ev;
    Tally__V1__Event__PayloadCase type;
    struct transfer_event t; /* TransferRequested */
    struct account_event a;  /* the three account events */
    char transfer_id[UUID_STR_SIZE];
    char user_id[USER_MAX];
};

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void saga_step_key(const char *transfer_id, const char *step, char *buf, size_t len)
{
    snprintf(buf, len, SAGA_KEY_PREFIX "%s:%s", transfer_id, step);
}

void saga_reason(const char *side, const char *msg, char *buf, size_t len)
{
    size_t n, start;

    if (strncmp(msg, "account ", 8) == 0)
        snprintf(buf, len, "%s %s", side, msg);
    else
        snprintf(buf, len, "%s", msg);
    n = strlen(buf);
    if (n + 1 < len)
        return;
    /* cut at the limit: drop a UTF-8 sequence left incomplete at the end */
    start = n;
    while (start > 0 && ((unsigned char)buf[start - 1] & 0xC0) == 0x80)
        start--;
    if (start > 0 && (unsigned char)buf[start - 1] >= 0xC0) {
        unsigned char lead = (unsigned char)buf[start - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;

        if (n - (start - 1) < need)
            buf[start - 1] = '\0';
    }
}

static int is_trigger(const char *event_type)
{
    return strcmp(event_type, "TransferRequested") == 0 ||
           strcmp(event_type, "TransferDebited") == 0 ||
           strcmp(event_type, "TransferCredited") == 0 ||
           strcmp(event_type, "TransferDebitReversed") == 0;
}

static grpc_status_code decode_trigger(const struct rawlog_event *ev, struct trigger *tr,
                                       trpc_status *st)
{
    Tally__V1__Event env = TALLY__V1__EVENT__INIT;
    grpc_status_code code;
    json_error_t jerr;
    json_t *meta;

    memset(tr, 0, sizeof(*tr));
    tr->ev = ev;
    if (evcodec_payload_from_json(&env, ev->event_type, ev->data, strlen(ev->data), st) !=
        GRPC_STATUS_OK)
        return st->code;
    tr->type = env.payload_case;
    if (tr->type == TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED) {
        code = transfer_event_from_proto(&env, &tr->t, st);
        if (code == GRPC_STATUS_OK)
            snprintf(tr->transfer_id, sizeof(tr->transfer_id), "%s",
                     tr->t.u.transfer_requested.transfer_id);
    } else {
        code = account_event_from_proto(&env, &tr->a, st);
        if (code == GRPC_STATUS_OK) {
            const char *id = tr->type == TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED
                                 ? tr->a.u.transfer_debited.transfer_id
                             : tr->type == TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED
                                 ? tr->a.u.transfer_credited.transfer_id
                                 : tr->a.u.transfer_debit_reversed.transfer_id;

            snprintf(tr->transfer_id, sizeof(tr->transfer_id), "%s", id);
        }
    }
    evcodec_payload_clear(&env);
    if (code != GRPC_STATUS_OK)
        return code;
    meta = json_loads(ev->metadata, 0, &jerr);
    if (json_is_string(json_object_get(meta, "userId")))
        snprintf(tr->user_id, sizeof(tr->user_id), "%s",
                 json_string_value(json_object_get(meta, "userId")));
    json_decref(meta);
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

static enum step_result classify(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_OK:
        return STEP_DONE;
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_ABORTED:
    case GRPC_STATUS_CANCELLED:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return STEP_TRANSIENT;
    default:
        return STEP_FAILED;
    }
}

/* ---- the write of one step ---- */

struct step_write {
    char key[96];
    uint8_t hash[32];
    char operation_id[UUID_STR_SIZE];
    struct cmdcore_write w;
};

/* Fills sw for step `step` of tr's transfer: a new operation row of kind
 * `kind`, the idempotency key, the trigger as causation. */
static grpc_status_code step_write_init(struct step_write *sw, const struct trigger *tr,
                                        const char *step, const char *kind, trpc_status *st)
{
    unsigned int n = 0;

    memset(sw, 0, sizeof(*sw));
    saga_step_key(tr->transfer_id, step, sw->key, sizeof(sw->key));
    if (!EVP_Digest(sw->key, strlen(sw->key), sw->hash, &n, EVP_sha256(), NULL) || n != 32)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "cannot hash the step key");
    if (uuid_v7_new(sw->operation_id) != 0)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "no randomness available");
    sw->w.tenant_id = tr->ev->tenant_id;
    sw->w.operation_id = sw->operation_id;
    sw->w.operation_kind = kind;
    sw->w.operation_status = "SUCCEEDED";
    sw->w.correlation_id = tr->ev->correlation_id;
    sw->w.causation_id = tr->ev->event_id;
    sw->w.user_id = tr->user_id[0] ? tr->user_id : "tally-projector";
    sw->w.idem_key = sw->key;
    sw->w.idem_hash = sw->hash;
    st->code = GRPC_STATUS_OK;
    return GRPC_STATUS_OK;
}

/* 1 when the step's key is stored (the step was written), 0 when not, -1
 * on error (st). */
static int step_done(PGconn *conn, const struct trigger *tr, const char *key, trpc_status *st)
{
    struct store_idem row;
    int found;

    if (store_idem_find(conn, tr->ev->tenant_id, key, &row, st) != GRPC_STATUS_OK)
        return -1;
    found = row.found;
    store_idem_cleanup(&row);
    return found;
}

/* The operation id of the Transfer command: that of its TransferRequested. */
static grpc_status_code transfer_operation(PGconn *conn, const struct trigger *tr, char *out,
                                           trpc_status *st)
{
    static const char sql[] = "SELECT operation_id::text FROM events"
                              " WHERE tenant_id = $1::uuid AND aggregate_type = 'transfer'"
                              "   AND aggregate_id = $2::uuid AND version = 1";
    const char *values[2] = {tr->ev->tenant_id, tr->transfer_id};
    PGresult *res;

    if (tr->type == TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED) {
        snprintf(out, UUID_STR_SIZE, "%s", tr->ev->operation_id);
        return st->code = GRPC_STATUS_OK;
    }
    res = PQexecParams(conn, sql, 2, NULL, values, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 1, st, "could not read the transfer",
                 "saga: operation of transfer %s", tr->transfer_id) == GRPC_STATUS_OK) {
        if (PQntuples(res) == 1) {
            snprintf(out, UUID_STR_SIZE, "%s", PQgetvalue(res, 0, 0));
            st->code = GRPC_STATUS_OK;
        } else {
            trpc_status_set(st, GRPC_STATUS_INTERNAL, "transfer %s has no request",
                            tr->transfer_id);
        }
    }
    PQclear(res);
    return st->code;
}

/* TransferCompleted (complete) or TransferFailed(reason, compensated) on
 * the transfer stream, finishing the transfer's operation, under `step`. */
static enum step_result transfer_outcome(saga *s, PGconn *conn, const struct trigger *tr,
                                         const char *step, int complete, const char *reason,
                                         bool compensated, trpc_status *st)
{
    struct step_write sw;
    char op[UUID_STR_SIZE];
    int done;

    if (step_write_init(&sw, tr, step, complete ? "TransferComplete" : "TransferFail", st) !=
        GRPC_STATUS_OK)
        return STEP_FAILED;
    done = step_done(conn, tr, sw.key, st);
    if (done != 0)
        return done > 0 ? STEP_DONE : classify(st->code);
    if (transfer_operation(conn, tr, op, st) != GRPC_STATUS_OK)
        return classify(st->code);
    sw.w.finish_operation_id = op;
    sw.w.finish_operation_status = complete ? "SUCCEEDED" : "FAILED";
    sw.w.finish_operation_reason = complete ? NULL : reason;
    for (int attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
        struct transfer_state t;
        struct transfer_event ev;
        struct transfer_event_pb pb;
        Tally__V1__Event env = TALLY__V1__EVENT__INIT;
        enum store_conflict conflict;
        grpc_status_code code;

        if (cmdcore_load_transfer(conn, tr->ev->tenant_id, tr->transfer_id, &t, st) !=
            GRPC_STATUS_OK)
            return classify(st->code);
        code = complete ? transfer_decide_complete(&t, &ev, st)
                        : transfer_decide_fail(&t, reason, compensated, &ev, st);
        if (code == GRPC_STATUS_FAILED_PRECONDITION) {
            /* finished already (by an earlier run whose key we did not see) */
            log_info("saga: transfer %s: %s", tr->transfer_id, st->msg);
            return STEP_DONE;
        }
        if (code != GRPC_STATUS_OK)
            return STEP_FAILED;
        transfer_event_to_proto(&ev, &pb, &env);
        if (cmdcore_append(conn, &s->env, &sw.w, TRANSFER_AGGREGATE_TYPE, tr->transfer_id,
                           t.version + 1, &env, NULL, NULL, &conflict, st) == GRPC_STATUS_OK) {
            log_debug("saga: transfer %s %s", tr->transfer_id, complete ? "completed" : "failed");
            return STEP_DONE;
        }
        if (conflict == STORE_CONFLICT_IDEMPOTENCY)
            return STEP_DONE;
        if (conflict != STORE_CONFLICT_VERSION)
            return classify(st->code);
    }
    trpc_status_set(st, GRPC_STATUS_ABORTED, "too many concurrent writes to transfer %s",
                    tr->transfer_id);
    return STEP_TRANSIENT;
}

/* ---- account steps ---- */

struct leg_arg {
    const char *transfer_id;
    Tally__V1__Money amount;
    const char *counterpart;
    const char *reason; /* reversal */
};

static grpc_status_code decide_debit(const struct account_state *s,
                                     const struct account_payment_info *p, const void *arg,
                                     struct account_event *out, trpc_status *st)
{
    const struct leg_arg *a = arg;

    (void)p;
    return account_decide_transfer_debit(s, a->transfer_id, &a->amount, a->counterpart, out, st);
}

static grpc_status_code decide_credit(const struct account_state *s,
                                      const struct account_payment_info *p, const void *arg,
                                      struct account_event *out, trpc_status *st)
{
    const struct leg_arg *a = arg;

    (void)p;
    return account_decide_transfer_credit(s, a->transfer_id, &a->amount, a->counterpart, out, st);
}

static grpc_status_code decide_reverse(const struct account_state *s,
                                       const struct account_payment_info *p, const void *arg,
                                       struct account_event *out, trpc_status *st)
{
    const struct leg_arg *a = arg;

    (void)p;
    return account_decide_transfer_debit_reverse(s, a->transfer_id, &a->amount, a->counterpart,
                                                 a->reason, out, st);
}

static void leg_init(struct leg_arg *a, const char *transfer_id, const struct money *m,
                     const char *counterpart, const char *reason)
{
    tally__v1__money__init(&a->amount);
    a->transfer_id = transfer_id;
    a->amount.minor_units = m->minor_units;
    a->amount.currency = (char *)m->currency;
    a->counterpart = counterpart;
    a->reason = reason;
}

/* Runs one account command of a step under sw (cmdcore_account). */
static enum cmdcore_result account_leg(saga *s, PGconn *conn, const struct trigger *tr,
                                       struct step_write *sw, const char *account_id,
                                       cmdcore_decide_fn decide, const struct leg_arg *arg,
                                       trpc_status *st)
{
    struct cmdcore_account_cmd cmd = {0};
    enum cmdcore_result result;

    cmd.tenant_id = tr->ev->tenant_id;
    cmd.account_id = account_id;
    cmd.kind = sw->w.operation_kind;
    cmd.decide = decide;
    cmd.decide_arg = arg;
    cmd.write = &sw->w;
    cmdcore_account(conn, &s->env, &cmd, &result, NULL, st);
    return result;
}

/* TransferRequested: debit the source, or fail the transfer. */
static enum step_result step_debit(saga *s, PGconn *conn, const struct trigger *tr, trpc_status *st)
{
    const struct transfer_event *t = &tr->t;
    struct step_write sw;
    struct leg_arg arg;
    char reason[TEXT_FIELD_SIZE];
    int done;

    if (step_write_init(&sw, tr, "debit", "TransferDebit", st) != GRPC_STATUS_OK)
        return STEP_FAILED;
    done = step_done(conn, tr, sw.key, st);
    if (done != 0)
        return done > 0 ? STEP_DONE : classify(st->code);
    leg_init(&arg, tr->transfer_id, &t->u.transfer_requested.amount,
             t->u.transfer_requested.destination_account_id, NULL);
    switch (account_leg(s, conn, tr, &sw, t->u.transfer_requested.source_account_id, decide_debit,
                        &arg, st)) {
    case CMDCORE_APPENDED:
    case CMDCORE_DUPLICATE:
        return STEP_DONE;
    case CMDCORE_REJECTED:
        saga_reason("source", st->msg, reason, sizeof(reason));
        log_info("saga: transfer %s: debit refused: %s", tr->transfer_id, reason);
        /* the same key: the debit step ends one way or the other, never both */
        return transfer_outcome(s, conn, tr, "debit", 0, reason, false, st);
    default:
        return classify(st->code);
    }
}

/* TransferDebited: credit the destination, or reverse the debit. */
static enum step_result step_credit(saga *s, PGconn *conn, const struct trigger *tr,
                                    trpc_status *st)
{
    const struct account_event *a = &tr->a;
    const char *source = tr->ev->aggregate_id;
    const char *destination = a->u.transfer_debited.counterpart_account_id;
    struct step_write sw;
    struct leg_arg arg;
    char reason[TEXT_FIELD_SIZE];
    int done;

    if (step_write_init(&sw, tr, "credit", "TransferCredit", st) != GRPC_STATUS_OK)
        return STEP_FAILED;
    done = step_done(conn, tr, sw.key, st);
    if (done != 0)
        return done > 0 ? STEP_DONE : classify(st->code);
    leg_init(&arg, tr->transfer_id, &a->u.transfer_debited.amount, source, NULL);
    switch (account_leg(s, conn, tr, &sw, destination, decide_credit, &arg, st)) {
    case CMDCORE_APPENDED:
    case CMDCORE_DUPLICATE:
        return STEP_DONE;
    case CMDCORE_REJECTED:
        break;
    default:
        return classify(st->code);
    }
    saga_reason("destination", st->msg, reason, sizeof(reason));
    log_info("saga: transfer %s: credit refused, reversing the debit: %s", tr->transfer_id, reason);
    /* compensation under the same key: the credit step ends one way only */
    sw.w.operation_kind = "TransferDebitReverse";
    leg_init(&arg, tr->transfer_id, &a->u.transfer_debited.amount, destination, reason);
    switch (account_leg(s, conn, tr, &sw, source, decide_reverse, &arg, st)) {
    case CMDCORE_APPENDED:
    case CMDCORE_DUPLICATE:
        return STEP_DONE;
    case CMDCORE_REJECTED: /* the money would be stuck: an operator must look */
        log_error("saga: transfer %s: reversal refused: %s", tr->transfer_id, st->msg);
        return STEP_FAILED;
    default:
        return classify(st->code);
    }
}

static enum step_result handle(saga *s, PGconn *conn, const struct trigger *tr, trpc_status *st)
{
    switch (tr->type) {
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED:
        return step_debit(s, conn, tr, st);
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED:
        return step_credit(s, conn, tr, st);
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED:
        return transfer_outcome(s, conn, tr, "complete", 1, NULL, false, st);
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED:
        return transfer_outcome(s, conn, tr, "fail", 0, tr->a.u.transfer_debit_reversed.reason,
                                true, st);
    default:
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "not a saga event");
        return STEP_FAILED;
    }
}

/* ---- the loop ---- */

/* advance's autocommit CAS does not wait for its WAL flush (set_config(...,
 * true) lasts until the end of this one-statement transaction, and the
 * commit reads it): a checkpoint-only transaction would otherwise hold the
 * commit fence (DESIGN §5) through an fsync after every batch. A crash that
 * loses it moves the saga back, and its steps are idempotent. The saga's
 * command transactions (cmdcore) keep synchronous commits: they write
 * events. */
static const char ADVANCE_SQL[] =
    "SELECT projector_checkpoint_cas($1, $6::bigint, $2::xid8, $3::bigint,"
    "                                $4::xid8, $5::bigint),"
    "       set_config('synchronous_commit', 'off', true)";

/* Moves the checkpoint to `to` (compare-and-set, autocommit). */
static grpc_status_code advance(saga *s, PGconn *conn, struct store_position to, trpc_status *st)
{
    char t1[PG_INT_BUF], g1[PG_INT_BUF], t2[PG_INT_BUF], g2[PG_INT_BUF], e[PG_INT_BUF];
    const char *values[6] = {SAGA_CHECKPOINT,
                             pg_uint64_param(t1, s->cp.tx_id),
                             pg_int64_param(g1, s->cp.global_position),
                             pg_uint64_param(t2, to.tx_id),
                             pg_int64_param(g2, to.global_position),
                             pg_int64_param(e, s->epoch)};
    PGresult *res;

    if (logread_position_cmp(to, s->cp) <= 0)
        return st->code = GRPC_STATUS_OK;
    res = PQexecParams(conn, ADVANCE_SQL, 6, NULL, values, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 2, st, "could not move the checkpoint", "saga checkpoint") ==
        GRPC_STATUS_OK) {
        s->cp = to;
        st->code = GRPC_STATUS_OK;
    } else {
        s->loaded = 0; /* moved by someone else, or the connection: reload */
    }
    PQclear(res);
    return st->code;
}

static grpc_status_code load(saga *s, PGconn *conn, trpc_status *st)
{
    if (rmproj_checkpoint_ensure(conn, SAGA_CHECKPOINT, st) != GRPC_STATUS_OK ||
        rmproj_checkpoint_read(conn, SAGA_CHECKPOINT, &s->cp, &s->epoch, st) != GRPC_STATUS_OK ||
        dl_load(conn, &s->dl, st) != GRPC_STATUS_OK)
        return st->code;
    s->loaded = 1;
    return GRPC_STATUS_OK;
}

/* Parks ev behind the transfer's dead letter (autocommit). */
static grpc_status_code park(saga *s, PGconn *conn, const struct rawlog_event *ev,
                             const char *transfer_id, int64_t head, trpc_status *st)
{
    PGresult *res, *extra;
    grpc_status_code code;

    if (dl_send_queued(conn, &s->dl, ev, TRANSFER_AGGREGATE_TYPE, transfer_id, head, st) !=
        GRPC_STATUS_OK)
        return st->code;
    res = PQgetResult(conn);
    while (res && (extra = PQgetResult(conn)) != NULL)
        PQclear(extra);
    code = pg_check(res, PGRES_COMMAND_OK, 0, st, "could not park an event", "saga: park %" PRId64,
                    ev->pos.global_position);
    PQclear(res);
    return code; /* pg_check leaves st alone on success */
}

/* A failed attempt of ev (its transfer: transfer_id, or ev's own aggregate
 * when it could not be decoded): retry later or make it a dead letter. The
 * checkpoint is at the event before ev. */
static enum saga_step failed_attempt(saga *s, PGconn *conn, const struct rawlog_event *ev,
                                     const char *agg_type, const char *agg_id,
                                     const trpc_status *why)
{
    trpc_status st = {0};
    char key[128];
    int64_t id = 0;

    if (s->attempts > 0 && logread_position_cmp(s->poison, ev->pos) == 0) {
        s->attempts++;
    } else {
        s->poison = ev->pos;
        s->attempts = 1;
    }
    log_warn("saga: %s %s at %" PRId64 " failed (attempt %d of %d): %s", ev->event_type,
             ev->aggregate_id, ev->pos.global_position, s->attempts, s->o.max_attempts, why->msg);
    if (s->attempts < s->o.max_attempts) {
        long d = s->o.backoff_ms;

        for (int i = 1; i < s->attempts && d < 30000; i++)
            d *= 2;
        s->delay_ms = (int)(d < 30000 ? d : 30000);
        return SAGA_RETRY_LATER;
    }
    if (pg_command(conn, "BEGIN", &st, "database unavailable") != GRPC_STATUS_OK)
        return SAGA_DB_ERROR;
    if (dl_insert_head(conn, &s->dl, ev, agg_type, agg_id, why->msg, s->attempts, &id, &st) !=
            GRPC_STATUS_OK ||
        advance(s, conn, ev->pos, &st) != GRPC_STATUS_OK ||
        pg_command(conn, "COMMIT", &st, "database unavailable") != GRPC_STATUS_OK) {
        pg_rollback_quietly(conn);
        s->loaded = 0;
        return SAGA_DB_ERROR;
    }
    log_error("saga: %s at %" PRId64 " is dead letter %" PRId64 "; later events of %s %s wait",
              ev->event_type, ev->pos.global_position, id, agg_type, agg_id);
    dl_key(ev->tenant_id, agg_type, agg_id, key, sizeof(key));
    if (dl_block(&s->dl, key, id) != 0)
        s->loaded = 0;
    s->attempts = 0;
    return SAGA_PROGRESS;
}

static void process_retries(saga *s, PGconn *conn)
{
    struct dl_chain *chains = NULL;
    size_t nc = 0;
    trpc_status st = {0};

    if (dl_retry_requests(conn, &s->dl, 16, &chains, &nc, &st) != GRPC_STATUS_OK)
        return;
    for (size_t i = 0; i < nc; i++) {
        struct dl_chain *c = &chains[i];
        struct rawlog_batch b;
        char key[128];
        size_t done = 0;

        dl_key(c->tenant_id, c->aggregate_type, c->aggregate_id, key, sizeof(key));
        if (rawlog_positions(conn, c->positions, c->n, &b, &st) != GRPC_STATUS_OK)
            break;
        log_info("saga: retrying %zu dead letter(s) of transfer %s", c->n, c->aggregate_id);
        for (; done < c->n && done < b.n; done++) {
            struct trigger tr;
            enum step_result r = STEP_FAILED;

            if (decode_trigger(&b.ev[done], &tr, &st) == GRPC_STATUS_OK)
                r = handle(s, conn, &tr, &st);
            if (r == STEP_DONE) {
                if (dl_resolve(conn, c->ids[done], &st) != GRPC_STATUS_OK)
                    break;
                continue;
            }
            if (r == STEP_FAILED &&
                dl_retry_failed(conn, &s->dl, c, c->ids[done], st.msg, &st) == GRPC_STATUS_OK)
                dl_block(&s->dl, key, c->ids[done]);
            break;
        }
        if (done == c->n) {
            log_info("saga: transfer %s unblocked", c->aggregate_id);
            dl_unblock(&s->dl, key);
        }
        rawlog_batch_cleanup(&b);
    }
    dl_chains_free(chains, nc);
}

static enum saga_step saga_step_once(saga *s, PGconn *conn)
{
    struct rawlog_batch b;
    trpc_status st = {0};
    enum saga_step result = SAGA_PROGRESS;
    struct store_position done_upto;
    long now = now_ms();

    if (!s->loaded && load(s, conn, &st) != GRPC_STATUS_OK)
        return SAGA_DB_ERROR;
    if (now >= s->next_retry_check_ms) {
        s->next_retry_check_ms = now + RETRY_CHECK_EVERY_MS;
        process_retries(s, conn);
    }
    if (rawlog_next(conn, s->cp, s->o.batch_size, &b, &st) != GRPC_STATUS_OK)
        return SAGA_DB_ERROR;
    if (b.n == 0) {
        rawlog_batch_cleanup(&b);
        return SAGA_IDLE;
    }
    done_upto = b.after;
    for (size_t i = 0; i < b.n; i++) {
        const struct rawlog_event *ev = &b.ev[i];
        struct trigger tr;
        char key[128];
        int64_t head;
        enum step_result r;

        if (!is_trigger(ev->event_type)) {
            done_upto = ev->pos;
            continue;
        }
        if (decode_trigger(ev, &tr, &st) != GRPC_STATUS_OK) {
            if (advance(s, conn, done_upto, &st) != GRPC_STATUS_OK) {
                result = SAGA_DB_ERROR;
                break;
            }
            result = failed_attempt(s, conn, ev, ev->aggregate_type, ev->aggregate_id, &st);
            break;
        }
        dl_key(ev->tenant_id, TRANSFER_AGGREGATE_TYPE, tr.transfer_id, key, sizeof(key));
        head = dl_blocked_head(&s->dl, key);
        if (head) {
            if (park(s, conn, ev, tr.transfer_id, head, &st) != GRPC_STATUS_OK) {
                result = SAGA_DB_ERROR;
                break;
            }
            done_upto = ev->pos;
            continue;
        }
        r = handle(s, conn, &tr, &st);
        if (r == STEP_DONE) {
            done_upto = ev->pos;
            continue;
        }
        if (advance(s, conn, done_upto, &st) != GRPC_STATUS_OK) {
            result = SAGA_DB_ERROR;
            break;
        }
        if (r == STEP_TRANSIENT) {
            log_warn("saga: %s of transfer %s: %s; will retry", ev->event_type, tr.transfer_id,
                     st.msg);
            s->delay_ms = s->o.backoff_ms;
            result = PQstatus(conn) == CONNECTION_BAD ? SAGA_DB_ERROR : SAGA_RETRY_LATER;
        } else {
            result = failed_attempt(s, conn, ev, TRANSFER_AGGREGATE_TYPE, tr.transfer_id, &st);
        }
        break;
    }
    if (result == SAGA_PROGRESS && advance(s, conn, done_upto, &st) != GRPC_STATUS_OK)
        result = SAGA_DB_ERROR;
    if (s->attempts && logread_position_cmp(s->poison, s->cp) <= 0)
        s->attempts = 0;
    rawlog_batch_cleanup(&b);
    return result;
}

static void *saga_main(void *arg)
{
    saga *s = arg;
    PGconn *conn = NULL;
    int backoff = s->o.backoff_ms > 0 ? s->o.backoff_ms : 100;
    uint64_t seen = wake_generation(s->w);

    while (!wake_is_shutdown(s->w)) {
        trpc_status st = {0};

        if (!leader_is_active(s->l)) {
            if (conn) {
                PQfinish(conn);
                conn = NULL;
            }
            wake_wait(s->w, &seen, STANDBY_CHECK_MS);
            continue;
        }
        if (conn == NULL) {
            conn = pconn_open(&s->o.pg, NULL, &st);
            if (conn == NULL) {
                wake_sleep(s->w, backoff);
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            s->loaded = 0;
        }
        seen = wake_generation(s->w);
        switch (saga_step_once(s, conn)) {
        case SAGA_PROGRESS:
            backoff = s->o.backoff_ms > 0 ? s->o.backoff_ms : 100;
            break;
        case SAGA_IDLE:
            wake_wait(s->w, &seen, s->o.poll_ms);
            break;
        case SAGA_RETRY_LATER:
            wake_sleep(s->w, s->delay_ms);
            break;
        default:
            pg_rollback_quietly(conn);
            if (PQstatus(conn) == CONNECTION_BAD) {
                PQfinish(conn);
                conn = NULL;
            }
            s->loaded = 0;
            wake_sleep(s->w, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            break;
        }
    }
    PQfinish(conn);
    return NULL;
}

saga *saga_start(const struct saga_opts *o, wake *w, leader *l)
{
    saga *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        log_error("saga: out of memory");
        return NULL;
    }
    s->o = *o;
    s->w = w;
    s->l = l;
    if (s->o.max_attempts < 1)
        s->o.max_attempts = 1;
    dl_set_init(&s->dl, SAGA_CHECKPOINT);
    s->cache = aggcache_new(CACHE_ENTRIES, sizeof(struct account_state));
    s->bell = doorbell_new(o->pg.conninfo ? o->pg.conninfo : "", "tally_outbox");
    if (s->cache == NULL || s->bell == NULL) {
        log_error("saga: cannot start");
        goto fail;
    }
    s->env.accounts = s->cache;
    s->env.bell = s->bell;
    s->env.snapshot_every = 100;
    s->env.max_attempts = APPEND_ATTEMPTS;
    if (pthread_create(&s->thread, NULL, saga_main, s) != 0) {
        log_error("saga: cannot start its thread");
        goto fail;
    }
    return s;
fail:
    doorbell_free(s->bell);
    aggcache_free(s->cache);
    dl_set_cleanup(&s->dl);
    free(s);
    return NULL;
}

void saga_stop(saga *s)
{
    if (s == NULL)
        return;
    wake_shutdown(s->w);
    pthread_join(s->thread, NULL);
    doorbell_free(s->bell);
    aggcache_free(s->cache);
    dl_set_cleanup(&s->dl);
    free(s);
}
