/* sublat.c - latency probe for bench-sublat.sh (a measurement tool, not a
 * test): how long a committed command takes to become visible.
 *
 *   sublat subscribe --cmd ADDR --proj ADDR --token T [--rate 500]
 *          [--duration 10] [--senders 8]
 *     Commit-to-Subscribe: a live Subscribe stream (START_END, the token's
 *     tenant) on tally-projector, and Deposits paced at --rate per second
 *     from --senders threads (one account each, so they never conflict).
 *     For every Deposit: from its reply (the commit is done) to the arrival
 *     of its event on the stream. Prints p50/p90/p99/max.
 *
 *   sublat ryw --cmd ADDR --query ADDR --token T [--count 200]
 *     Read-your-writes: --count times, one after the other, a Deposit and
 *     then GetAccount with min_position = the Deposit's position. Prints the
 *     GetAccount latency (the wait for the projection) p50/p90/p99/max.
 *
 * Exit 0 when every measured call succeeded and every event arrived, 1
 * otherwise, 2 on bad usage. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/v1/command.trpc.h"
#include "tally/v1/query.trpc.h"
#include "tally/v1/subscription.trpc.h"

#include "trpc.h"

#define CALL_MS   10000
#define MAX_SEND  64
#define DRAIN_MS  10000
#define STREAM_MS 600000

struct opts {
    const char *mode, *cmd, *proj, *query, *token;
    int rate, duration, senders, count;
};

struct pos {
    uint64_t tx;
    int64_t gp;
};

struct sample {
    struct pos p;
    double t_ms; /* reply (senders) or arrival (reader), monotonic */
};

static struct opts o = {NULL, NULL, NULL, NULL, NULL, 500, 10, 8, 200};
static trpc_metadata md[1];
static char bearer[512];
static trpc_call_opts copts = {CALL_MS, md, 1};

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_until_ms(double t)
{
    struct timespec ts;
    double s = t / 1e3;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int cmp_sample(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;

    if (x->p.tx != y->p.tx)
        return x->p.tx < y->p.tx ? -1 : 1;
    return x->p.gp < y->p.gp ? -1 : x->p.gp > y->p.gp;
}

static void report(const char *what, double *v, size_t n)
{
    if (n == 0) {
        printf("%s: no samples\n", what);
        return;
    }
    qsort(v, n, sizeof(v[0]), cmp_double);
    printf("%s over %zu: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", what, n,
           v[(n - 1) / 2], v[(n * 90 - 1) / 100], v[(n * 99 - 1) / 100], v[n - 1]);
}

static int open_account(trpc_channel *ch, char *id, size_t cap)
{
    Tally__V1__OpenAccountRequest req = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__OpenAccountResponse *resp = NULL;
    trpc_status st;

    req.owner = (char *)"sublat";
    req.currency = (char *)"EUR";
    if (tally__v1__command_service__trpc_open_account(ch, &req, &resp, &copts, &st) !=
        GRPC_STATUS_OK) {
        fprintf(stderr, "sublat: OpenAccount: %d %s\n", st.code, st.msg);
        return -1;
    }
    snprintf(id, cap, "%s", resp->account_id);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

static int deposit(trpc_channel *ch, const char *acc, struct pos *p)
{
    Tally__V1__DepositRequest req = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__Money m = TALLY__V1__MONEY__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    trpc_status st;

    m.minor_units = 1;
    m.currency = (char *)"EUR";
    req.account_id = (char *)acc;
    req.amount = &m;
    if (tally__v1__command_service__trpc_deposit(ch, &req, &resp, &copts, &st) != GRPC_STATUS_OK) {
        fprintf(stderr, "sublat: Deposit: %d %s\n", st.code, st.msg);
        return -1;
    }
    p->tx = resp->position ? resp->position->tx_id : 0;
    p->gp = resp->position ? resp->position->global_position : 0;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

/* ---- subscribe ---- */

static struct {
    trpc_channel *cmd, *proj;
    trpc_client_stream *stream;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int caught_up, ended;
    struct sample *got; /* events on the stream */
    size_t ngot, capgot;
    struct sample *sent; /* replies */
    size_t total;        /* deposits to send */
    atomic_size_t next;  /* the next deposit's index */
    atomic_int failed;
    double t0;
} s;

static void *reader(void *arg)
{
    trpc_status st;
    Tally__V1__SubscribeResponse *m;

    (void)arg;
    while (tally__v1__subscription_service__trpc_subscribe_next(s.stream, &m, &st) == 1) {
        double now = mono_ms();

        pthread_mutex_lock(&s.mu);
        if (m->message_case == TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_CAUGHT_UP) {
            s.caught_up = 1;
        } else if (m->message_case == TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_EVENT &&
                   m->event->position && s.ngot < s.capgot) {
            s.got[s.ngot].p.tx = m->event->position->tx_id;
            s.got[s.ngot].p.gp = m->event->position->global_position;
            s.got[s.ngot].t_ms = now;
            s.ngot++;
        }
        pthread_cond_broadcast(&s.cv);
        pthread_mutex_unlock(&s.mu);
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    pthread_mutex_lock(&s.mu);
    s.ended = 1;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    return NULL;
}

static void *sender(void *arg)
{
    const char *acc = arg;

    for (;;) {
        size_t i = atomic_fetch_add(&s.next, 1);
        struct pos p;

        if (i >= s.total)
            break;
        sleep_until_ms(s.t0 + (double)i * 1000.0 / o.rate);
        if (deposit(s.cmd, acc, &p) != 0) {
            atomic_store(&s.failed, 1);
            s.sent[i].p.tx = 0;
            continue;
        }
        s.sent[i].t_ms = mono_ms();
        s.sent[i].p = p;
    }
    return NULL;
}

/* Waits until pred holds or ms pass; returns pred. */
static int wait_for(int (*pred)(void), double ms)
{
    struct timespec until;
    int ok;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    pthread_mutex_lock(&s.mu);
    while (!(ok = pred()) && !s.ended)
        if (pthread_cond_timedwait(&s.cv, &s.mu, &until) != 0)
            break;
    ok = pred();
    pthread_mutex_unlock(&s.mu);
    return ok;
}

static int is_caught_up(void)
{
    return s.caught_up;
}

static int has_all(void)
{
    return s.ngot >= s.total;
}

static int run_subscribe(void)
{
    Tally__V1__SubscribeRequest req = TALLY__V1__SUBSCRIBE_REQUEST__INIT;
    trpc_call_opts sopts = {STREAM_MS, md, 1};
    pthread_t rd, th[MAX_SEND];
    char acc[MAX_SEND][64];
    double *lat;
    size_t n = 0, missing = 0;
    trpc_status st;
    int rc = 0;

    s.cmd = trpc_channel_new(o.cmd);
    s.proj = trpc_channel_new(o.proj);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    s.total = (size_t)o.rate * (size_t)o.duration;
    s.capgot = s.total + 1024;
    s.got = calloc(s.capgot, sizeof(*s.got));
    s.sent = calloc(s.total, sizeof(*s.sent));
    lat = calloc(s.total, sizeof(*lat));
    if (!s.cmd || !s.proj || !s.got || !s.sent || !lat)
        return 1;
    for (int i = 0; i < o.senders; i++)
        if (open_account(s.cmd, acc[i], sizeof(acc[i])) != 0)
            return 1;
    req.start = TALLY__V1__SUBSCRIBE_REQUEST__START__START_END;
    s.stream = tally__v1__subscription_service__trpc_subscribe(s.proj, &req, &sopts, &st);
    if (s.stream == NULL) {
        fprintf(stderr, "sublat: Subscribe: %d %s\n", st.code, st.msg);
        return 1;
    }
    pthread_create(&rd, NULL, reader, NULL);
    if (!wait_for(is_caught_up, DRAIN_MS)) {
        fprintf(stderr, "sublat: no caught_up\n");
        return 1;
    }
    s.t0 = mono_ms() + 50;
    for (int i = 0; i < o.senders; i++)
        pthread_create(&th[i], NULL, sender, acc[i]);
    for (int i = 0; i < o.senders; i++)
        pthread_join(th[i], NULL);
    printf("sent %zu deposits in %.2f s (%.0f/s), %d sender threads\n", s.total,
           (mono_ms() - s.t0) / 1e3, (double)s.total * 1e3 / (mono_ms() - s.t0), o.senders);
    wait_for(has_all, DRAIN_MS);
    trpc_client_stream_cancel(s.stream);
    pthread_join(rd, NULL);
    trpc_client_stream_free(s.stream);

    qsort(s.sent, s.total, sizeof(*s.sent), cmp_sample);
    qsort(s.got, s.ngot, sizeof(*s.got), cmp_sample);
    for (size_t i = 0, j = 0; i < s.total; i++) {
        if (s.sent[i].p.tx == 0)
            continue;
        while (j < s.ngot && cmp_sample(&s.got[j], &s.sent[i]) < 0)
            j++;
        if (j < s.ngot && cmp_sample(&s.got[j], &s.sent[i]) == 0) {
            double d = s.got[j].t_ms - s.sent[i].t_ms;

            lat[n++] = d > 0 ? d : 0;
        } else {
            missing++;
        }
    }
    report("commit-to-Subscribe (Deposit reply -> event on the stream)", lat, n);
    if (missing || atomic_load(&s.failed)) {
        fprintf(stderr, "sublat: %zu events missing, failures: %d\n", missing,
                atomic_load(&s.failed));
        rc = 1;
    }
    free(lat);
    free(s.got);
    free(s.sent);
    trpc_channel_free(s.cmd);
    trpc_channel_free(s.proj);
    return rc;
}

/* ---- ryw ---- */

static int run_ryw(void)
{
    trpc_channel *cmd = trpc_channel_new(o.cmd), *q = trpc_channel_new(o.query);
    double *get = calloc((size_t)o.count, sizeof(double));
    double *dep = calloc((size_t)o.count, sizeof(double));
    char acc[64];
    int rc = 0, n = 0;

    if (!cmd || !q || !get || !dep || open_account(cmd, acc, sizeof(acc)) != 0)
        return 1;
    for (int i = 0; i < o.count; i++) {
        Tally__V1__GetAccountRequest req = TALLY__V1__GET_ACCOUNT_REQUEST__INIT;
        Tally__V1__Position mp = TALLY__V1__POSITION__INIT;
        Tally__V1__Account *a = NULL;
        struct pos p;
        trpc_status st;
        double t0 = mono_ms(), t1;

        if (deposit(cmd, acc, &p) != 0) {
            rc = 1;
            continue;
        }
        t1 = mono_ms();
        mp.tx_id = p.tx;
        mp.global_position = p.gp;
        req.account_id = acc;
        req.min_position = &mp;
        if (tally__v1__query_service__trpc_get_account(q, &req, &a, &copts, &st) !=
            GRPC_STATUS_OK) {
            fprintf(stderr, "sublat: GetAccount: %d %s\n", st.code, st.msg);
            rc = 1;
            continue;
        }
        protobuf_c_message_free_unpacked(&a->base, NULL);
        get[n] = mono_ms() - t1;
        dep[n] = t1 - t0;
        n++;
    }
    report("Deposit", dep, (size_t)n);
    report("GetAccount(min_position) after it", get, (size_t)n);
    free(get);
    free(dep);
    trpc_channel_free(cmd);
    trpc_channel_free(q);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: sublat subscribe|ryw --cmd ADDR (--proj ADDR | --query ADDR)"
                    " --token T [--rate N] [--duration S] [--senders N] [--count N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    o.mode = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];

        if (strcmp(k, "--cmd") == 0)
            o.cmd = v;
        else if (strcmp(k, "--proj") == 0)
            o.proj = v;
        else if (strcmp(k, "--query") == 0)
            o.query = v;
        else if (strcmp(k, "--token") == 0)
            o.token = v;
        else if (strcmp(k, "--rate") == 0)
            o.rate = atoi(v);
        else if (strcmp(k, "--duration") == 0)
            o.duration = atoi(v);
        else if (strcmp(k, "--senders") == 0)
            o.senders = atoi(v);
        else if (strcmp(k, "--count") == 0)
            o.count = atoi(v);
        else
            return usage();
    }
    if (!o.cmd || !o.token || o.rate < 1 || o.duration < 1 || o.senders < 1 ||
        o.senders > MAX_SEND || o.count < 1)
        return usage();
    snprintf(bearer, sizeof(bearer), "Bearer %s", o.token);
    md[0].key = "authorization";
    md[0].value = bearer;
    if (strcmp(o.mode, "subscribe") == 0 && o.proj)
        return run_subscribe();
    if (strcmp(o.mode, "ryw") == 0 && o.query)
        return run_ryw();
    return usage();
}
