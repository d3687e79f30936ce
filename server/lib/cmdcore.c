/* cmdcore.c - see cmdcore.h. */
#include "cmdcore.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "evcodec.h"
#include "log.h"
#include "uuid.h"

/* ---- loading ---- */

struct load_ctx {
    struct account_state *s;
    struct transfer_state *t;
    trpc_status *st;
};

static int load_row(void *arg, int64_t version, const char *event_type, const char *json,
                    const char *recorded_at)
{
    struct load_ctx *lc = arg;
    Tally__V1__Event env = TALLY__V1__EVENT__INIT;
    grpc_status_code code;

    (void)recorded_at;
    if (event_type == NULL) { /* the snapshot (accounts only) */
        json_error_t jerr;
        json_t *j = json_loads(json, 0, &jerr);

        code = j && lc->s ? account_state_from_json(j, lc->s, lc->st)
                          : trpc_status_set(lc->st, GRPC_STATUS_INTERNAL, "unreadable snapshot");
        json_decref(j);
        if (code == GRPC_STATUS_OK && lc->s->version != version)
            code = trpc_status_set(lc->st, GRPC_STATUS_INTERNAL, "snapshot version mismatch");
        return code != GRPC_STATUS_OK;
    }
    code = evcodec_payload_from_json(&env, event_type, json, strlen(json), lc->st);
    if (code == GRPC_STATUS_OK) {
        env.version = version;
        code = lc->s ? account_evolve_proto(lc->s, &env, lc->st)
                     : transfer_evolve_proto(lc->t, &env, lc->st);
    }
    evcodec_payload_clear(&env);
    if (code != GRPC_STATUS_OK)
        log_error("%s %s version %" PRId64 ": %s", lc->s ? "account" : "transfer",
                  lc->s ? lc->s->account_id : lc->t->transfer_id, version, lc->st->msg);
    return code != GRPC_STATUS_OK;
}

void cmdcore_account_key(const char *tenant_id, const char *account_id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", tenant_id, account_id);
}

grpc_status_code cmdcore_load_account(PGconn *conn, const struct cmdcore_env *env,
                                      const char *tenant_id, const char *account_id, int fresh,
                                      struct account_state *s, trpc_status *st)
{
    char key[128];
    struct load_ctx lc = {s, NULL, st};
    trpc_status lst;

    cmdcore_account_key(tenant_id, account_id, key, sizeof(key));
    if (!fresh && env->accounts && aggcache_get(env->accounts, key, s))
        return GRPC_STATUS_OK;
    account_state_init(s);
    if (store_load_stream(conn, tenant_id, ACCOUNT_AGGREGATE_TYPE, account_id, 0, 0, 1, load_row,
                          &lc, &lst) != GRPC_STATUS_OK) {
        *st = lst;
        return st->code;
    }
    if (s->exists && env->accounts)
        aggcache_put(env->accounts, key, s);
    st->code = GRPC_STATUS_OK;
    return GRPC_STATUS_OK;
}

grpc_status_code cmdcore_load_transfer(PGconn *conn, const char *tenant_id, const char *transfer_id,
                                       struct transfer_state *t, trpc_status *st)
{
    struct load_ctx lc = {NULL, t, st};
    trpc_status lst;

    transfer_state_init(t);
    if (store_load_stream(conn, tenant_id, TRANSFER_AGGREGATE_TYPE, transfer_id, 0, 0, 0, load_row,
                          &lc, &lst) != GRPC_STATUS_OK) {
        *st = lst;
        return st->code;
    }
    st->code = GRPC_STATUS_OK;
    return GRPC_STATUS_OK;
}

/* ---- appending ---- */

grpc_status_code cmdcore_append(PGconn *conn, const struct cmdcore_env *env,
                                const struct cmdcore_write *w, const char *aggregate_type,
                                const char *aggregate_id, int64_t version,
                                const Tally__V1__Event *ev_env, json_t *snapshot,
                                struct store_position *pos, enum store_conflict *conflict,
                                trpc_status *st)
{
    struct store_append a = {0};
    struct store_event ev = {0};
    struct store_position p = {0};
    char event_id[UUID_STR_SIZE];
    json_t *data = NULL;
    char *snap = NULL;

    *conflict = STORE_CONFLICT_NONE;
    if (uuid_v7_new(event_id) != 0)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "no randomness available");
    data = evcodec_payload_to_json(ev_env, st);
    if (data == NULL)
        return st->code;
    if (w->idem_key) {
        a.idem_key = w->idem_key;
        a.idem_hash = w->idem_hash;
        a.idem_response = w->idem_response;
        a.idem_response_len = w->idem_response_len;
    }
    if (snapshot) {
        snap = json_dumps(snapshot, JSON_COMPACT);
        if (snap == NULL) {
            trpc_status_set(st, GRPC_STATUS_INTERNAL, "out of memory");
            goto out;
        }
        a.snapshot_aggregate_type = aggregate_type;
        a.snapshot_aggregate_id = aggregate_id;
        a.snapshot_version = version;
        a.snapshot_json = snap;
    }
    ev.event_id = event_id;
    ev.aggregate_type = aggregate_type;
    ev.aggregate_id = aggregate_id;
    ev.version = version;
    ev.event_type = evcodec_type_of(ev_env->payload_case);
    ev.event_version = ev_env->event_version > 0 ? ev_env->event_version : 1;
    ev.data = data;
    a.tenant_id = w->tenant_id;
    a.operation_id = w->operation_id;
    a.operation_kind = w->operation_kind;
    a.operation_status = w->operation_status;
    a.operation_aggregate_type = aggregate_type;
    a.operation_aggregate_id = aggregate_id;
    a.finish_operation_id = w->finish_operation_id;
    a.finish_operation_status = w->finish_operation_status;
    a.finish_operation_reason = w->finish_operation_reason;
    a.correlation_id = w->correlation_id;
    a.causation_id = w->causation_id;
    a.user_id = w->user_id;
    a.events = &ev;
    a.n_events = 1;
    if (store_append(conn, &a, &p, conflict, st) != GRPC_STATUS_OK)
        goto out;
    if (pos)
        *pos = p;
    if (env->bell)
        doorbell_ring(env->bell);
out:
    json_decref(data);
    free(snap);
    return st->code;
}

/* ---- one account command ---- */

static grpc_status_code default_append(const struct cmdcore_account_cmd *cmd, PGconn *conn,
                                       const struct cmdcore_env *env, int64_t version,
                                       const Tally__V1__Event *ev_env, json_t *snapshot,
                                       enum store_conflict *conflict, trpc_status *st)
{
    if (cmd->append)
        return cmd->append(cmd->append_arg, cmd->account_id, version, ev_env, snapshot, conflict,
                           st);
    return cmdcore_append(conn, env, cmd->write, ACCOUNT_AGGREGATE_TYPE, cmd->account_id, version,
                          ev_env, snapshot, NULL, conflict, st);
}

/* Before retry number `conflicts` (1, 2, ...) of an append that lost a
 * version race: the first retry goes at once (a fresh load usually settles
 * it); later ones sleep a random time in [0, min(BACKOFF_CAP_US, BACKOFF_BASE_US
 * << conflicts)) ("full jitter"), so writers that keep colliding on one hot
 * account spread out instead of colliding again in lockstep. */
#define BACKOFF_BASE_US 500
#define BACKOFF_CAP_US  20000

static void conflict_backoff(int conflicts)
{
    unsigned int r;
    long cap;
    struct timespec ts;

    if (conflicts < 2)
        return;
    cap = conflicts > 6 ? BACKOFF_CAP_US : (long)BACKOFF_BASE_US << conflicts;
    if (cap > BACKOFF_CAP_US)
        cap = BACKOFF_CAP_US;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = (unsigned int)cap / 2;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(r % (unsigned long)cap) * 1000L;
    nanosleep(&ts, NULL);
}

/* Writers to one account inside this process take turns: each command holds
 * its account's stripe from load to append, so threads of one process never
 * race each other for a stream version (which costs a wasted round trip and,
 * with many writers on a hot account, ABORTED after max_attempts). Version
 * races remain only between processes (several tally-command instances, the
 * saga in tally-projector), and the retry loop handles those. A command holds
 * one stripe at a time, so stripes cannot deadlock. Two accounts sharing a
 * stripe also take turns, for one round trip: with 4,096 stripes, 16 writers
 * on distinct accounts share one in about 3% of moments. */
#define STRIPES 4096

static pthread_mutex_t stripes[STRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;

static void stripes_init(void)
{
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&stripes[i], NULL);
}

static pthread_mutex_t *stripe_of(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    pthread_once(&stripes_once, stripes_init);
    return &stripes[h % STRIPES];
}

static grpc_status_code account_locked(PGconn *conn, const struct cmdcore_env *env,
                                       const struct cmdcore_account_cmd *cmd, const char *key,
                                       enum cmdcore_result *result, struct account_state *after,
                                       trpc_status *st);

grpc_status_code cmdcore_account(PGconn *conn, const struct cmdcore_env *env,
                                 const struct cmdcore_account_cmd *cmd, enum cmdcore_result *result,
                                 struct account_state *after, trpc_status *st)
{
    char key[128];
    pthread_mutex_t *m;
    grpc_status_code code;

    *result = CMDCORE_ERROR;
    cmdcore_account_key(cmd->tenant_id, cmd->account_id, key, sizeof(key));
    m = stripe_of(key);
    pthread_mutex_lock(m);
    code = account_locked(conn, env, cmd, key, result, after, st);
    pthread_mutex_unlock(m);
    return code;
}

static grpc_status_code account_locked(PGconn *conn, const struct cmdcore_env *env,
                                       const struct cmdcore_account_cmd *cmd, const char *key,
                                       enum cmdcore_result *result, struct account_state *after,
                                       trpc_status *st)
{
    int conflicts = 0;
    int fresh = 0;

    for (int attempt = 0; attempt < env->max_attempts; attempt++) {
        struct account_state s, next;
        struct account_payment_info payment;
        struct account_event ev;
        struct account_event_pb pb;
        Tally__V1__Event ev_env = TALLY__V1__EVENT__INIT;
        enum store_conflict conflict;
        json_t *snapshot = NULL;
        grpc_status_code code;

        if (cmd->cancelled && cmd->cancelled(cmd->cancelled_arg))
            return trpc_status_set(st, GRPC_STATUS_CANCELLED, "call cancelled");
        if (cmdcore_load_account(conn, env, cmd->tenant_id, cmd->account_id, fresh, &s, st) !=
            GRPC_STATUS_OK)
            return st->code;
        if (cmd->has_expected && s.version != cmd->expected_version) {
            if (!fresh) { /* the cache may be behind: ask the log */
                fresh = 1;
                attempt--;
                continue;
            }
            return trpc_status_set(st, GRPC_STATUS_ABORTED,
                                   "expected version %" PRId64 ", current version %" PRId64,
                                   cmd->expected_version, s.version);
        }
        account_payment_info_init(&payment);
        if (cmd->payment_id) {
            struct store_payment sp;

            if (store_payment_find(conn, cmd->tenant_id, cmd->account_id, cmd->payment_id, &sp,
                                   st) != GRPC_STATUS_OK)
                return st->code;
            payment.exists = sp.found;
            payment.amount = sp.amount;
            payment.refunded = sp.refunded;
            memcpy(payment.currency, sp.currency, sizeof(payment.currency));
        }
        if (cmd->decide(&s, cmd->payment_id ? &payment : NULL, cmd->decide_arg, &ev, st) !=
            GRPC_STATUS_OK) {
            /* a refusal decided on cached state may rest on a stale entry
               (another process wrote since): confirm it against the log
               before it is final (and stored under an idempotency key) */
            if (st->code != GRPC_STATUS_INVALID_ARGUMENT && !fresh) {
                fresh = 1;
                attempt--;
                continue;
            }
            *result = CMDCORE_REJECTED;
            return st->code;
        }
        next = s;
        if (account_evolve(&next, &ev, st) != GRPC_STATUS_OK)
            return st->code;
        account_event_to_proto(&ev, &pb, &ev_env);
        if (env->snapshot_every > 0 && next.version % env->snapshot_every == 0)
            snapshot = account_state_to_json(&next);
        code = default_append(cmd, conn, env, next.version, &ev_env, snapshot, &conflict, st);
        json_decref(snapshot);
        if (code == GRPC_STATUS_OK) {
            if (env->accounts)
                aggcache_put(env->accounts, key, &next);
            if (after)
                *after = next;
            *result = CMDCORE_APPENDED;
            return GRPC_STATUS_OK;
        }
        switch (conflict) {
        case STORE_CONFLICT_VERSION:
            if (env->accounts)
                aggcache_remove(env->accounts, key);
            fresh = 1;
            log_debug("rpc=%s account=%s: version %" PRId64 " taken, retrying", cmd->kind,
                      cmd->account_id, next.version);
            conflict_backoff(++conflicts);
            continue;
        case STORE_CONFLICT_IDEMPOTENCY:
            *result = CMDCORE_DUPLICATE;
            return st->code;
        default:
            return st->code;
        }
    }
    return trpc_status_set(st, GRPC_STATUS_ABORTED,
                           "too many concurrent writes to account %s, try again", cmd->account_id);
}
