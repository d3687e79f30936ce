/* test_subscribers.c - load: 1,000 concurrent Subscribe streams on
 * tally-projector while tally-command takes a Deposit load for a bounded
 * time (issue 7, item 2).
 *
 * The subscribers are gRPC C core calls on one completion queue, driven by
 * the test's main thread (no thread per stream), spread over a few channels
 * that each hold their own HTTP/2 connection. Every subscriber starts at the
 * beginning of one tenant's log; writer threads deposit into that tenant's
 * accounts at a fixed rate through tally-command. Then the test checks:
 *
 *   - every subscriber went live (caught_up) before the load;
 *   - every Deposit was acknowledged;
 *   - every subscriber received exactly the tenant's events as stored, in
 *     log order: the same count, each position strictly after the one
 *     before (no duplicate), and the same FNV-1a hash over the sequence of
 *     (tx_id, global_position) as the events table (no gap, nothing else).
 *     A stream that ends with UNAVAILABLE subscribes again after the last
 *     event it received, as subscription.proto tells clients to (at most
 *     MAX_RESUMES times; the count is printed): on a CPU-starved machine the
 *     server's keepalive (30 s ping, 10 s to answer) drops a connection whose
 *     ping waits behind seconds of unread stream data. The resumed stream
 *     must continue exactly: the checks above span it. Any other end fails;
 *   - the memory of tally-projector and tally-command stays bounded: VmRSS
 *     from /proc/<pid>/status before the subscribers, with them, sampled
 *     every 250 ms during the load, after the load and after the streams
 *     ended, and VmHWM at the end. Growth over the baseline must stay under
 *     PROJ_BOUND_KB / CMD_BOUND_KB (see there for the figures and why);
 *   - both daemons still answer, then shut down cleanly (exit status 0; under
 *     ASan that includes LeakSanitizer).
 *
 * The figures are printed ("load:" lines) for the README.
 *
 * The soft RLIMIT_NOFILE is raised to the hard limit first; the daemons
 * inherit it. Environment (for experiments; the defaults are what CI runs):
 * TALLY_LOAD_SUBSCRIBERS (1000), TALLY_LOAD_CHANNELS (20),
 * TALLY_LOAD_SECONDS and TALLY_LOAD_RATE (deposits per second, all writers
 * together; defaults below, lower under AddressSanitizer). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <libpq-fe.h>

#include "tally/v1/command.trpc.h"
#include "tally/v1/subscription.trpc.h"

#include "harness.h"
#include "loadutil.h"
#include "trpc.h"

#if defined(__SANITIZE_ADDRESS__)
#define ASAN         1
#define LOAD_SECONDS 10
#define LOAD_RATE    20 /* deposits/s: 200 events x 1,000 streams */
#else
#define ASAN         0
#define LOAD_SECONDS 12
#define LOAD_RATE    50 /* deposits/s: 600 events x 1,000 streams */
#endif
#define SUBSCRIBERS 1000
#define CHANNELS    20
#define WRITERS     4
#define CALL_MS     30000
#define LIVE_MS     90000  /* all subscribers caught up */
#define DRAIN_MS    120000 /* all events delivered after the load */
#define END_MS      60000  /* all streams ended after the cancel */
#define STREAM_S    600    /* each stream's deadline: a broken server cannot hang us */
#define STOP_MS     30000
#define SAMPLE_MS   250
#define MAX_RESUMES 20 /* per subscriber */

/* Memory bounds: growth of VmRSS over the baseline (the daemon started and
 * warmed up, no subscriber yet), at every sample and at the end.
 *
 * tally-projector: measured (debug build) about 20 MB with 1,000 live streams
 * and at most about 25 MB during the load: gRPC's per-stream state plus the
 * runtime's per-stream queue (16 messages) and the subscriber's state, times
 * 1,000, and the live ring. 64 MB is over twice that, and far below what a
 * leak per delivered message (900,000 of them) or an unbounded queue would
 * cost. Under AddressSanitizer the shadow memory, redzones and the quarantine
 * of freed blocks (capped at 32 MB for the daemons of this test) add to it:
 * 256 MB.
 *
 * tally-command: measured a few MB for 4 writers; 32 MB (ASan: 128 MB). */
#if ASAN
#define PROJ_BOUND_KB (256L * 1024)
#define CMD_BOUND_KB  (128L * 1024)
#else
#define PROJ_BOUND_KB (64L * 1024)
#define CMD_BOUND_KB  (32L * 1024)
#endif

#define OK GRPC_STATUS_OK

/* ---- settings ---- */

static int env_int(const char *name, int def, int lo, int hi)
{
    const char *v = getenv(name);
    char *end;
    long n;

    if (v == NULL || *v == '\0')
        return def;
    n = strtol(v, &end, 10);
    if (*end != '\0' || n < lo || n > hi) {
        fprintf(stderr, "test_subscribers: ignoring %s=%s (expected %d..%d)\n", name, v, lo, hi);
        return def;
    }
    return (int)n;
}

/* ---- the fixture ---- */

static struct {
    char db[HARNESS_CONNINFO_MAX];
    char tenant_id[HARNESS_ID_MAX];
    char token[HARNESS_TOKEN_MAX];
    char bearer[HARNESS_TOKEN_MAX + 16];
    trpc_metadata md[1];
    trpc_call_opts opts;
    struct harness_daemon cmd, proj;
    int cmd_up, proj_up;
    trpc_channel *cmd_ch;
    long nofile;
} fx;

static int suite_init(void)
{
    char asan_env[1024];
    const char *asan = getenv("ASAN_OPTIONS");
    const char *env[] = {asan_env, NULL};

    memset(&fx, 0, sizeof(fx));
    if (loadutil_raise_nofile(&fx.nofile) != 0)
        return -1;
    /* The quarantine keeps freed memory resident on purpose (256 MB by
     * default): capped, the RSS bound below still means something under
     * ASan. A no-op in other builds. */
    snprintf(asan_env, sizeof(asan_env), "ASAN_OPTIONS=%s%squarantine_size_mb=32",
             asan != NULL ? asan : "", asan != NULL && *asan != '\0' ? ":" : "");
    if (harness_db_create(fx.db) != 0)
        return -1;
    if (harness_tenant_token(fx.db, "load", fx.tenant_id, fx.token) != 0)
        return -1;
    snprintf(fx.bearer, sizeof(fx.bearer), "Bearer %s", fx.token);
    fx.md[0].key = "authorization";
    fx.md[0].value = fx.bearer;
    fx.opts.timeout_ms = CALL_MS;
    fx.opts.metadata = fx.md;
    fx.opts.n_metadata = 1;
    if (harness_daemon_start(&fx.cmd, HARNESS_COMMAND, fx.db, NULL, env) != 0)
        return -1;
    fx.cmd_up = 1;
    if (harness_daemon_start(&fx.proj, HARNESS_PROJECTOR, fx.db, NULL, env) != 0)
        return -1;
    fx.proj_up = 1;
    fx.cmd_ch = trpc_channel_new(fx.cmd.addr);
    return fx.cmd_ch != NULL ? 0 : -1;
}

static int suite_cleanup(void)
{
    int rc = 0;

    trpc_channel_free(fx.cmd_ch);
    if (fx.proj_up && harness_daemon_stop(&fx.proj, STOP_MS) != 0)
        rc = -1;
    if (fx.cmd_up && harness_daemon_stop(&fx.cmd, STOP_MS) != 0)
        rc = -1;
    return rc;
}

/* ---- commands ---- */

static int open_account(char id[64])
{
    Tally__V1__OpenAccountRequest req = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__OpenAccountResponse *resp = NULL;
    trpc_status st;

    req.owner = (char *)"load test";
    req.currency = (char *)"EUR";
    if (tally__v1__command_service__trpc_open_account(fx.cmd_ch, &req, &resp, &fx.opts, &st) !=
        OK) {
        fprintf(stderr, "test_subscribers: open account: %s\n", st.msg);
        return -1;
    }
    snprintf(id, 64, "%s", resp->account_id);
    tally__v1__open_account_response__free_unpacked(resp, NULL);
    return 0;
}

static int deposit(const char *acc, int64_t amount, trpc_status *st)
{
    Tally__V1__DepositRequest req = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__Money money = TALLY__V1__MONEY__INIT;
    Tally__V1__CommandResponse *resp = NULL;

    money.minor_units = amount;
    money.currency = (char *)"EUR";
    req.account_id = (char *)acc;
    req.amount = &money;
    if (tally__v1__command_service__trpc_deposit(fx.cmd_ch, &req, &resp, &fx.opts, st) != OK)
        return -1;
    tally__v1__command_response__free_unpacked(resp, NULL);
    return 0;
}

/* A writer deposits into its own account on a fixed schedule (period_ms
 * apart) until end_ms; what it saw is checked on the main thread. */
struct writer {
    pthread_t th;
    char acc[64];
    int64_t start_ms, end_ms;
    double period_ms;
    int ok, failed;
    trpc_status first_error;
    atomic_int done;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    trpc_status st;

    for (int i = 0;; i++) {
        int64_t at = w->start_ms + (int64_t)(i * w->period_ms), now = loadutil_ms();

        if (at >= w->end_ms)
            break;
        if (at > now)
            loadutil_sleep_ms((long)(at - now));
        if (deposit(w->acc, 1 + i % 100, &st) == 0) {
            w->ok++;
        } else {
            if (w->failed++ == 0)
                w->first_error = st;
        }
    }
    atomic_store(&w->done, 1);
    return NULL;
}

/* ---- the expected sequence ---- */

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME  1099511628211ULL

static uint64_t fnv_pos(uint64_t h, uint64_t tx, int64_t gp)
{
    uint64_t v[2] = {tx, (uint64_t)gp};
    const unsigned char *p = (const unsigned char *)v;

    for (size_t i = 0; i < sizeof(v); i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* Positions: the stored sequence, and what subscriber 0 received (on a
 * mismatch the first difference is printed). */
struct pos {
    uint64_t tx;
    int64_t gp;
};

static struct pos_list {
    struct pos *v;
    int64_t n, cap;
} stored, received0;

static void pos_add(struct pos_list *l, uint64_t tx, int64_t gp)
{
    if (l->n == l->cap) {
        struct pos *v = realloc(l->v, (size_t)(l->cap ? l->cap * 2 : 1024) * sizeof(*v));

        if (v == NULL)
            return;
        l->v = v;
        l->cap = l->cap ? l->cap * 2 : 1024;
    }
    l->v[l->n++] = (struct pos){tx, gp};
}

static void pos_diff(void)
{
    int64_t i;

    for (i = 0; i < stored.n && i < received0.n; i++)
        if (stored.v[i].tx != received0.v[i].tx || stored.v[i].gp != received0.v[i].gp)
            break;
    fprintf(stderr,
            "test_subscribers: subscriber 0 differs from the table at index %" PRId64 " of %" PRId64
            "/%" PRId64 ": table %" PRIu64 ":%" PRId64 ", received %" PRIu64 ":%" PRId64 "\n",
            i, stored.n, received0.n, i < stored.n ? stored.v[i].tx : 0,
            i < stored.n ? stored.v[i].gp : 0, i < received0.n ? received0.v[i].tx : 0,
            i < received0.n ? received0.v[i].gp : 0);
}

/* The tenant's events as stored, in log order: count and hash. */
static int expected_events(int64_t *count, uint64_t *hash)
{
    const char *v[1] = {fx.tenant_id};
    PGconn *c = PQconnectdb(fx.db);
    PGresult *res = NULL;
    int rc = -1;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "test_subscribers: cannot connect: %s", PQerrorMessage(c));
        goto out;
    }
    res = PQexecParams(c,
                       "SELECT tx_id::text, global_position FROM events"
                       " WHERE tenant_id = $1::uuid ORDER BY tx_id, global_position",
                       1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "test_subscribers: events: %s", PQresultErrorMessage(res));
        goto out;
    }
    *count = PQntuples(res);
    *hash = FNV_OFFSET;
    stored.n = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        uint64_t tx = strtoull(PQgetvalue(res, i, 0), NULL, 10);
        int64_t gp = strtoll(PQgetvalue(res, i, 1), NULL, 10);

        *hash = fnv_pos(*hash, tx, gp);
        pos_add(&stored, tx, gp);
    }
    rc = 0;
out:
    PQclear(res);
    PQfinish(c);
    return rc;
}

/* ---- the subscribers: C core calls on one completion queue ---- */

enum tag_kind { TAG_START, TAG_MSG, TAG_STATUS };

struct sub;

struct tag {
    struct sub *s;
    enum tag_kind kind;
};

struct sub {
    grpc_channel *ch;
    grpc_call *call;
    grpc_byte_buffer *req;  /* until the start batch completes */
    grpc_byte_buffer *recv; /* RECV_MESSAGE's target */
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice details;
    struct tag t_start, t_msg, t_status;
    int start_pending, msg_pending, status_pending, freed;
    /* what it received */
    int64_t events;
    uint64_t hash, last_tx;
    int64_t last_gp;
    int order_errors, bad_messages, caught_up, fell_behind, ended;
    int record;  /* keep the positions in received0 */
    int resumes; /* subscribed again after UNAVAILABLE */
    char detail[128];
};

struct subs {
    grpc_completion_queue *cq;
    grpc_channel *ch[64];
    int n_ch, n, live, ended, resumes;
    int ending; /* the test cancels: no resubscribing */
    struct sub *s;
};

static void sub_process(struct sub *s, const Tally__V1__SubscribeResponse *m)
{
    const Tally__V1__Position *p;

    switch (m->message_case) {
    case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_EVENT:
        p = m->event != NULL ? m->event->position : NULL;
        if (p == NULL) {
            s->bad_messages++;
            return;
        }
        if (s->events > 0 &&
            (p->tx_id < s->last_tx || (p->tx_id == s->last_tx && p->global_position <= s->last_gp)))
            s->order_errors++;
        s->last_tx = p->tx_id;
        s->last_gp = p->global_position;
        s->hash = fnv_pos(s->hash, p->tx_id, p->global_position);
        s->events++;
        if (s->record)
            pos_add(&received0, p->tx_id, p->global_position);
        break;
    case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_CAUGHT_UP:
        s->caught_up++;
        break;
    case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_FELL_BEHIND:
        s->fell_behind++;
        break;
    default: /* checkpoint, heartbeat */
        break;
    }
}

static int arm_recv(struct sub *s)
{
    grpc_op op;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv;
    if (grpc_call_start_batch(s->call, &op, 1, &s->t_msg, NULL) != GRPC_CALL_OK)
        return -1;
    s->msg_pending = 1;
    return 0;
}

static int sub_start(struct subs *ss, struct sub *s, grpc_channel *ch, grpc_byte_buffer *req)
{
    grpc_metadata md;
    grpc_op ops[4];

    s->ch = ch;
    s->details = grpc_empty_slice();
    s->t_start = (struct tag){s, TAG_START};
    s->t_msg = (struct tag){s, TAG_MSG};
    s->t_status = (struct tag){s, TAG_STATUS};
    grpc_metadata_array_init(&s->initial_md);
    grpc_metadata_array_init(&s->trailing_md);
    s->call = grpc_channel_create_call(
        ch, NULL, GRPC_PROPAGATE_DEFAULTS, ss->cq,
        grpc_slice_from_static_string(TALLY__V1__SUBSCRIPTION_SERVICE__SUBSCRIBE__PATH), NULL,
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(STREAM_S, GPR_TIMESPAN)),
        NULL);
    if (s->call == NULL)
        return -1;
    s->req = grpc_byte_buffer_copy(req);
    memset(&md, 0, sizeof(md));
    md.key = grpc_slice_from_static_string("authorization");
    md.value = grpc_slice_from_static_string(fx.bearer);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 1;
    ops[0].data.send_initial_metadata.metadata = &md;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY; /* a resubscribe may wait for the
                                                           channel to reconnect */
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    if (grpc_call_start_batch(s->call, ops, 4, &s->t_start, NULL) != GRPC_CALL_OK)
        return -1;
    s->start_pending = 1;
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    ops[0].data.recv_status_on_client.status = &s->status;
    ops[0].data.recv_status_on_client.status_details = &s->details;
    if (grpc_call_start_batch(s->call, ops, 1, &s->t_status, NULL) != GRPC_CALL_OK)
        return -1;
    s->status_pending = 1;
    return arm_recv(s);
}

/* The request that resumes s after the last event it received (the
 * contract's way to continue after UNAVAILABLE), or starts at the beginning
 * if it received none. NULL on OOM. */
static grpc_byte_buffer *resume_request(const struct sub *s)
{
    Tally__V1__SubscribeRequest req = TALLY__V1__SUBSCRIBE_REQUEST__INIT;
    Tally__V1__Position after = TALLY__V1__POSITION__INIT;
    uint8_t buf[128];
    grpc_slice sl;
    grpc_byte_buffer *bb;

    req.start = TALLY__V1__SUBSCRIBE_REQUEST__START__START_BEGINNING;
    if (s->events > 0) {
        req.start = TALLY__V1__SUBSCRIBE_REQUEST__START__START_AFTER;
        after.tx_id = s->last_tx;
        after.global_position = s->last_gp;
        req.after = &after;
    }
    sl = grpc_slice_from_copied_buffer((const char *)buf,
                                       tally__v1__subscribe_request__pack(&req, buf));
    bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return bb;
}

/* Once a call's three batches have all come back: a stream that ended with
 * UNAVAILABLE before the test ends it subscribes again after its last event
 * (up to MAX_RESUMES times; a heavily loaded server's keepalive can drop a
 * connection whose client reads slowly), else the call is freed. */
static void sub_release(struct subs *ss, struct sub *s)
{
    if (s->freed || s->start_pending || s->msg_pending || s->status_pending)
        return;
    grpc_metadata_array_destroy(&s->initial_md);
    grpc_metadata_array_destroy(&s->trailing_md);
    grpc_slice_unref(s->details);
    if (s->call != NULL)
        grpc_call_unref(s->call);
    s->call = NULL;
    if (!ss->ending && s->status == GRPC_STATUS_UNAVAILABLE && s->resumes < MAX_RESUMES) {
        grpc_byte_buffer *req = resume_request(s);

        s->resumes++;
        ss->resumes++;
        if (req != NULL && sub_start(ss, s, s->ch, req) == 0) {
            grpc_byte_buffer_destroy(req);
            return;
        }
        if (req != NULL)
            grpc_byte_buffer_destroy(req);
        s->bad_messages++;
        if (s->start_pending || s->msg_pending || s->status_pending) {
            s->resumes = MAX_RESUMES; /* no more: free it when its batches are back */
            grpc_call_cancel(s->call, NULL);
            return;
        }
        grpc_metadata_array_destroy(&s->initial_md);
        grpc_metadata_array_destroy(&s->trailing_md);
        grpc_slice_unref(s->details);
        if (s->call != NULL)
            grpc_call_unref(s->call);
        s->call = NULL;
    }
    s->freed = 1;
    s->ended = 1;
    ss->ended++;
}

/* Handles completions for up to ms milliseconds. */
static void subs_pump(struct subs *ss, int ms)
{
    gpr_timespec until =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
    unsigned handled = 0;

    for (;;) {
        grpc_event ev = grpc_completion_queue_next(ss->cq, until, NULL);
        struct tag *t;
        struct sub *s;

        if (ev.type != GRPC_OP_COMPLETE)
            return; /* timeout */
        t = ev.tag;
        s = t->s;
        switch (t->kind) {
        case TAG_START:
            s->start_pending = 0;
            grpc_byte_buffer_destroy(s->req);
            s->req = NULL;
            break;
        case TAG_MSG:
            s->msg_pending = 0;
            if (ev.success && s->recv != NULL) {
                Tally__V1__SubscribeResponse *m = NULL;
                grpc_byte_buffer_reader r;

                if (grpc_byte_buffer_reader_init(&r, s->recv)) {
                    grpc_slice all = grpc_byte_buffer_reader_readall(&r);

                    grpc_byte_buffer_reader_destroy(&r);
                    m = tally__v1__subscribe_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                              GRPC_SLICE_START_PTR(all));
                    grpc_slice_unref(all);
                }
                grpc_byte_buffer_destroy(s->recv);
                s->recv = NULL;
                if (m == NULL) {
                    s->bad_messages++;
                } else {
                    int was_live = s->caught_up > 0;

                    sub_process(s, m);
                    tally__v1__subscribe_response__free_unpacked(m, NULL);
                    if (!was_live && s->caught_up > 0)
                        ss->live++;
                }
                if (arm_recv(s) != 0)
                    s->bad_messages++;
            }
            break;
        case TAG_STATUS:
            s->status_pending = 0;
            snprintf(s->detail, sizeof(s->detail), "%.*s", (int)GRPC_SLICE_LENGTH(s->details),
                     (const char *)GRPC_SLICE_START_PTR(s->details));
            break;
        }
        sub_release(ss, s);
        if (++handled % 64 == 0 && gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), until) > 0)
            return; /* a busy queue never times out */
    }
}

static int subs_start(struct subs *ss, const char *addr, int n, int n_ch)
{
    Tally__V1__SubscribeRequest req = TALLY__V1__SUBSCRIBE_REQUEST__INIT;
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_arg args[2];
    grpc_channel_args cargs = {2, args};
    uint8_t buf[64];
    grpc_slice sl;
    grpc_byte_buffer *bb;
    size_t len;
    int rc = 0;

    memset(ss, 0, sizeof(*ss));
    ss->cq = grpc_completion_queue_create_for_next(NULL);
    ss->s = calloc((size_t)n, sizeof(*ss->s));
    if (ss->s == NULL)
        return -1;
    /* A local subchannel pool: each channel has a connection of its own (a
     * global pool would share one between channels with the same target). */
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[0].value.integer = 1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = -1;
    ss->n_ch = n_ch;
    for (int i = 0; i < n_ch; i++)
        ss->ch[i] = grpc_channel_create(addr, creds, &cargs);
    grpc_channel_credentials_release(creds);
    req.start = TALLY__V1__SUBSCRIBE_REQUEST__START__START_BEGINNING;
    len = tally__v1__subscribe_request__pack(&req, buf);
    sl = grpc_slice_from_copied_buffer((const char *)buf, len);
    bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    ss->n = n;
    for (int i = 0; i < n; i++) {
        ss->s[i].hash = FNV_OFFSET;
        if (sub_start(ss, &ss->s[i], ss->ch[i % n_ch], bb) != 0) {
            fprintf(stderr, "test_subscribers: cannot start subscriber %d\n", i);
            rc = -1;
            ss->n = i + 1; /* its batches may be partly started: pumped and freed */
            grpc_call_cancel(ss->s[i].call, NULL);
            break;
        }
    }
    grpc_byte_buffer_destroy(bb);
    return rc;
}

/* Cancels every stream, waits (up to END_MS) until every call came back,
 * frees. Returns the number of calls that had not come back (leaked on
 * purpose: freeing them would be a use after free). */
static int subs_end(struct subs *ss)
{
    int64_t until = loadutil_ms() + END_MS;
    int left;

    ss->ending = 1;
    for (int i = 0; i < ss->n; i++)
        if (!ss->s[i].freed && ss->s[i].call != NULL)
            grpc_call_cancel(ss->s[i].call, NULL);
    while (ss->ended < ss->n && loadutil_ms() < until)
        subs_pump(ss, 200);
    left = ss->n - ss->ended;
    if (left == 0) {
        for (int i = 0; i < ss->n_ch; i++)
            grpc_channel_destroy(ss->ch[i]);
        grpc_completion_queue_shutdown(ss->cq);
        while (grpc_completion_queue_next(ss->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(ss->cq);
        free(ss->s);
    }
    return left;
}

/* ---- memory ---- */

struct mem_track {
    struct loadutil_mem base, live, max, after_load, end;
};

static void mem_sample(pid_t pid, struct loadutil_mem *m, struct mem_track *t)
{
    loadutil_mem(pid, m);
    if (m->rss_kb > t->max.rss_kb)
        t->max = *m;
}

static void mem_print(const char *name, const struct mem_track *t)
{
    printf("    load: %s VmRSS kB: %ld before, %ld with the subscribers, max %ld during the"
           " load, %ld after it, %ld after the streams ended; VmHWM %ld kB; growth %ld kB\n",
           name, t->base.rss_kb, t->live.rss_kb, t->max.rss_kb, t->after_load.rss_kb, t->end.rss_kb,
           t->end.hwm_kb, t->end.hwm_kb - t->base.rss_kb);
}

/* ---- the test ---- */

static void test_load_subscribers_get_every_event_memory_bounded(void)
{
    int n = env_int("TALLY_LOAD_SUBSCRIBERS", SUBSCRIBERS, 1, 20000);
    int n_ch = env_int("TALLY_LOAD_CHANNELS", CHANNELS, 1, 64);
    int seconds = env_int("TALLY_LOAD_SECONDS", LOAD_SECONDS, 1, 600);
    int rate = env_int("TALLY_LOAD_RATE", LOAD_RATE, 1, 100000);
    struct writer w[WRITERS];
    struct mem_track pm, cm;
    struct subs ss;
    int64_t t0, t_live, t_load, t_drain, expected = -1, sampled = 0;
    uint64_t hash = 0;
    int complete = 0, exact = 0, ordered = 0, clean = 0, acked = 0, failed = 0, fell = 0;
    int64_t min_events = INT64_MAX, max_events = 0;

    memset(&pm, 0, sizeof(pm));
    memset(&cm, 0, sizeof(cm));
    memset(w, 0, sizeof(w));
    printf("\n    load: %d subscribers on %d connections, %d deposits/s for %d s, "
           "RLIMIT_NOFILE %ld\n",
           n, n_ch, rate, seconds, fx.nofile);
    /* The accounts, and a warm-up of both daemons: the baseline is a daemon
     * that has served (pools, connections, caches made). */
    for (int i = 0; i < WRITERS; i++)
        CU_ASSERT_FATAL(open_account(w[i].acc) == 0);
    {
        struct subs warm;

        CU_ASSERT_FATAL(subs_start(&warm, fx.proj.addr, 1, 1) == 0);
        for (int64_t until = loadutil_ms() + LIVE_MS; warm.live < 1 && loadutil_ms() < until;)
            subs_pump(&warm, 200);
        CU_ASSERT_FATAL(warm.live == 1);
        CU_ASSERT_FATAL(subs_end(&warm) == 0);
    }
    loadutil_mem(fx.proj.pid, &pm.base);
    loadutil_mem(fx.cmd.pid, &cm.base);
    pm.max = pm.base;
    cm.max = cm.base;

    /* 1. every subscriber live */
    t0 = loadutil_ms();
    CU_ASSERT_FATAL(subs_start(&ss, fx.proj.addr, n, n_ch) == 0);
    ss.s[0].record = 1; /* its first message cannot have come yet: not pumped */
    while (ss.live < n && ss.ended == 0 && loadutil_ms() < t0 + LIVE_MS)
        subs_pump(&ss, 200);
    t_live = loadutil_ms() - t0;
    printf("    load: %d of %d subscribers live after %" PRId64 " ms\n", ss.live, n, t_live);
    CU_ASSERT(ss.live == n);
    CU_ASSERT(ss.ended == 0);
    loadutil_mem(fx.proj.pid, &pm.live);
    loadutil_mem(fx.cmd.pid, &cm.live);
    if (ss.live != n || ss.ended != 0) {
        CU_ASSERT(subs_end(&ss) == 0);
        return;
    }

    /* 2. the Deposit load, subscribers served meanwhile */
    t0 = loadutil_ms();
    for (int i = 0; i < WRITERS; i++) {
        w[i].start_ms = t0 + i * (1000 / rate) / WRITERS;
        w[i].end_ms = t0 + seconds * 1000L;
        w[i].period_ms = 1000.0 * WRITERS / rate;
        CU_ASSERT_FATAL(pthread_create(&w[i].th, NULL, writer_main, &w[i]) == 0);
    }
    for (int running = WRITERS; running > 0;) {
        struct loadutil_mem m;

        subs_pump(&ss, SAMPLE_MS);
        mem_sample(fx.proj.pid, &m, &pm);
        mem_sample(fx.cmd.pid, &m, &cm);
        sampled++;
        running = 0;
        for (int i = 0; i < WRITERS; i++)
            running += !atomic_load(&w[i].done);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(w[i].th, NULL);
        acked += w[i].ok;
        failed += w[i].failed;
        if (w[i].failed > 0)
            fprintf(stderr, "test_subscribers: writer %d: %d deposits failed, first: %s: %s\n", i,
                    w[i].failed, trpc_status_code_name(w[i].first_error.code),
                    w[i].first_error.msg);
    }
    t_load = loadutil_ms() - t0;
    loadutil_mem(fx.proj.pid, &pm.after_load);
    loadutil_mem(fx.cmd.pid, &cm.after_load);
    CU_ASSERT(failed == 0);
    CU_ASSERT(acked > 0);

    /* 3. every subscriber gets every stored event */
    CU_ASSERT_FATAL(expected_events(&expected, &hash) == 0);
    CU_ASSERT(expected == WRITERS + acked); /* the accounts' openings, then the deposits */
    t0 = loadutil_ms();
    for (;;) {
        int behind = 0;

        for (int i = 0; i < n; i++)
            behind += ss.s[i].events < expected && !ss.s[i].ended;
        if (behind == 0 || loadutil_ms() > t0 + DRAIN_MS)
            break;
        subs_pump(&ss, 100);
        {
            struct loadutil_mem m;

            mem_sample(fx.proj.pid, &m, &pm);
        }
    }
    t_drain = loadutil_ms() - t0;
    subs_pump(&ss, 200); /* anything extra (a duplicate) that is still on its way */
    for (int i = 0; i < n; i++) {
        struct sub *s = &ss.s[i];

        complete += s->events >= expected;
        exact += s->events == expected && s->hash == hash;
        ordered += s->order_errors == 0;
        clean += s->bad_messages == 0 && !s->ended;
        fell += s->fell_behind > 0;
        if (s->events < min_events)
            min_events = s->events;
        if (s->events > max_events)
            max_events = s->events;
        if ((s->events != expected || s->hash != hash || s->order_errors != 0 ||
             s->bad_messages != 0 || s->ended) &&
            i - exact < 5)
            fprintf(stderr,
                    "test_subscribers: subscriber %d: %" PRId64 " of %" PRId64
                    " events, hash %s, %d order errors, %d bad messages, ended %d (%s: %.*s)\n",
                    i, s->events, expected, s->hash == hash ? "same" : "differs", s->order_errors,
                    s->bad_messages, s->ended, s->ended ? trpc_status_code_name(s->status) : "-",
                    s->ended ? (int)strlen(s->detail) : 0, s->detail);
    }
    printf("    load: %d deposits acknowledged in %" PRId64 " ms (%d failed); %" PRId64
           " events x %d subscribers delivered, the last %" PRId64
           " ms after the load; events per subscriber min %" PRId64 " max %" PRId64
           "; %d fell behind at least once; %d resubscribed after UNAVAILABLE\n",
           acked, t_load, failed, expected, n, t_drain, min_events, max_events, fell, ss.resumes);
    if (ss.s[0].events != expected || ss.s[0].hash != hash)
        pos_diff();
    CU_ASSERT(complete == n);
    CU_ASSERT(exact == n);
    CU_ASSERT(ordered == n);
    CU_ASSERT(clean == n);

    /* 4. the streams end; memory after */
    CU_ASSERT(subs_end(&ss) == 0);
    free(stored.v);
    free(received0.v);
    loadutil_mem(fx.proj.pid, &pm.end);
    loadutil_mem(fx.cmd.pid, &cm.end);
    mem_print("tally-projector", &pm);
    mem_print("tally-command", &cm);
    printf("    load: %" PRId64 " memory samples; bounds: projector growth < %ld kB, command "
           "growth < %ld kB\n",
           sampled, PROJ_BOUND_KB, CMD_BOUND_KB);
    CU_ASSERT(pm.base.rss_kb > 0 && pm.end.rss_kb > 0 && cm.base.rss_kb > 0 && cm.end.rss_kb > 0);
    CU_ASSERT(pm.max.rss_kb - pm.base.rss_kb < PROJ_BOUND_KB);
    CU_ASSERT(pm.end.rss_kb - pm.base.rss_kb < PROJ_BOUND_KB);
    CU_ASSERT(pm.end.hwm_kb - pm.base.rss_kb < PROJ_BOUND_KB);
    CU_ASSERT(cm.max.rss_kb - cm.base.rss_kb < CMD_BOUND_KB);
    CU_ASSERT(cm.end.rss_kb - cm.base.rss_kb < CMD_BOUND_KB);
    CU_ASSERT(cm.end.hwm_kb - cm.base.rss_kb < CMD_BOUND_KB);

    /* 5. both daemons still serve */
    {
        trpc_status st;

        CU_ASSERT(loadutil_alive(fx.proj.pid) && loadutil_alive(fx.cmd.pid));
        CU_ASSERT(deposit(w[0].acc, 1, &st) == 0);
        CU_ASSERT(subs_start(&ss, fx.proj.addr, 1, 1) == 0);
        for (int64_t until = loadutil_ms() + LIVE_MS; ss.live < 1 && loadutil_ms() < until;)
            subs_pump(&ss, 200);
        CU_ASSERT(ss.live == 1 && ss.s[0].events == expected + 1);
        CU_ASSERT(subs_end(&ss) == 0);
    }
}

static CU_TestInfo load_tests[] = {
    {"1,000 subscribers under a Deposit load: every event, bounded memory",
     test_load_subscribers_get_every_event_memory_bounded},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"load/subscribers", suite_init, suite_cleanup, NULL, NULL, load_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned int failed = 1;

    grpc_init();
    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    }
    CU_cleanup_registry();
    grpc_shutdown();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
