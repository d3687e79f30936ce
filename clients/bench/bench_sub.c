/* bench_sub.c - tally-bench's subscribe-latency workload (see bench.h): how
 * long a committed command takes to reach a Subscribe stream.
 *
 * Setup opens the accounts and waits until the read model (--query-addr)
 * has them. Then one Subscribe stream from the end (start END, aggregate
 * type "account") on tally-projector (--subscribe-addr); the threads send Deposits of 1
 * cent to random accounts at --rate per second in total (default 200).
 * Each reply carries the command's position; each event on the stream
 * carries its own: the two are matched by global position, whichever comes
 * first. Two latencies per command sent after the warm-up:
 *
 *   reply_to_event   the reply's arrival (the commit is acknowledged) to the
 *                    event's arrival on the stream: the headline figure
 *   send_to_event    the command's scheduled send to the event's arrival
 *
 * (an event that arrives before its reply counts 0 for reply_to_event).
 * When the run ends, events still due get up to 30 s; any that never came
 * are reported as missing (must be 0: Subscribe loses nothing). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/v1/command.trpc.h"
#include "tally/v1/subscription.trpc.h"

#include "bench.h"

#define BUCKETS   65536 /* hash buckets of the positions in flight */
#define DRAIN_NS  30000000000ull
#define READY_NS  60000000000ull
#define HALF_LIFE 10000000000ull /* an event unclaimed this long is not ours */

/* One position seen on one side only: a reply (t_send, t_reply) waiting for
 * its event, or an event (t_event) waiting for its reply. */
struct pending {
    int64_t pos;
    uint64_t t_send, t_reply, t_event;
    int measured; /* sent in the measured period */
    struct pending *next;
};

struct bench_sub {
    struct shared *sh;
    trpc_client_stream *stream;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int ready; /* caught_up came */
    int ended; /* the stream ended */
    trpc_status end_status;
    struct pending *buckets[BUCKETS];
    uint64_t due;         /* measured replies still waiting for their event */
    uint64_t events;      /* events received */
    uint64_t matched;     /* measured commands matched */
    uint64_t early;       /* events before their reply */
    uint64_t fell_behind; /* fell_behind messages */
    uint64_t unmatched;   /* events no reply claimed (dropped after HALF_LIFE) */
    struct hist reply_to_event, send_to_event;
};

int bench_sub_opts(struct opts *o)
{
    if (o->accounts < 0)
        o->accounts = 100;
    if (o->rate == 0)
        o->rate = 200;
    return 0;
}

static struct pending **slot(struct bench_sub *s, int64_t pos)
{
    struct pending **p = &s->buckets[(uint64_t)pos * 0x9E3779B97F4A7C15ull >> 48];

    while (*p && (*p)->pos != pos)
        p = &(*p)->next;
    return p;
}

/* Both sides known: record (mu held). */
static void record(struct bench_sub *s, const struct pending *reply, uint64_t t_event)
{
    if (!reply->measured)
        return;
    hist_record(&s->reply_to_event,
                t_event > reply->t_reply ? (t_event - reply->t_reply) / 1000 : 0);
    hist_record(&s->send_to_event, (t_event - reply->t_send) / 1000);
    s->matched++;
}

/* The stream's side: an event at position pos arrived at t. */
static void on_event(struct bench_sub *s, int64_t pos, uint64_t t)
{
    struct pending **p, *e;

    pthread_mutex_lock(&s->mu);
    s->events++;
    p = slot(s, pos);
    if (*p) { /* its reply came first */
        e = *p;
        *p = e->next;
        record(s, e, t);
        if (e->measured && --s->due == 0)
            pthread_cond_broadcast(&s->cond);
        free(e);
    } else if ((e = calloc(1, sizeof(*e))) != NULL) {
        e->pos = pos;
        e->t_event = t;
        e->next = NULL;
        *p = e;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Drops events that waited for a reply longer than HALF_LIFE: not ours, or
 * their command failed on the client's side (mu held). */
static void sweep(struct bench_sub *s, uint64_t now)
{
    for (int b = 0; b < BUCKETS; b++)
        for (struct pending **p = &s->buckets[b]; *p;) {
            struct pending *e = *p;

            if (e->t_reply == 0 && now - e->t_event > HALF_LIFE) {
                *p = e->next;
                s->unmatched++;
                free(e);
            } else {
                p = &e->next;
            }
        }
}

static void *stream_main(void *arg)
{
    struct bench_sub *s = arg;
    Tally__V1__SubscribeResponse *msg;
    uint64_t last_sweep = bench_now_ns();
    trpc_status st = {0};

    while (trpc_client_stream_next(s->stream, (ProtobufCMessage **)&msg, &st)) {
        uint64_t t = bench_now_ns();

        switch (msg->message_case) {
        case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_EVENT:
            if (msg->event->position)
                on_event(s, msg->event->position->global_position, t);
            break;
        case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_CAUGHT_UP:
            pthread_mutex_lock(&s->mu);
            s->ready = 1;
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->mu);
            break;
        case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_FELL_BEHIND:
            pthread_mutex_lock(&s->mu);
            s->fell_behind++;
            pthread_mutex_unlock(&s->mu);
            break;
        default:
            break;
        }
        tally__v1__subscribe_response__free_unpacked(msg, NULL);
        if (t - last_sweep > HALF_LIFE) {
            pthread_mutex_lock(&s->mu);
            sweep(s, t);
            pthread_mutex_unlock(&s->mu);
            last_sweep = t;
        }
    }
    pthread_mutex_lock(&s->mu);
    s->ended = 1;
    s->end_status = st;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Waits on cond for at most 100 ms (mu held). */
static void nap(struct bench_sub *s)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&s->cond, &s->mu, &ts);
}

int bench_sub_setup(struct shared *sh, struct worker *workers)
{
    const struct opts *o = sh->o;
    struct bench_sub *s = calloc(1, sizeof(*s));
    Tally__V1__SubscribeRequest req = TALLY__V1__SUBSCRIBE_REQUEST__INIT;
    Tally__V1__EventFilter filter = TALLY__V1__EVENT_FILTER__INIT;
    char *types[] = {(char *)"account"};
    trpc_call_opts co = bench_call_opts(sh);
    trpc_status st;
    int ok;

    if (s == NULL)
        return -1;
    s->sh = sh;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    hist_init(&s->reply_to_event);
    hist_init(&s->send_to_event);
    sh->sub = s;
    /* the accounts; and the projector idle (the read model has them), so
     * a backlog of an earlier run does not count */
    if (bench_pool_setup(sh, workers, 1) != 0)
        return -1;
    req.start = TALLY__V1__SUBSCRIBE_REQUEST__START__START_END;
    filter.n_aggregate_types = 1;
    filter.aggregate_types = types;
    req.filter = &filter;
    co.timeout_ms = 0; /* the stream lives as long as the run */
    s->stream = tally__v1__subscription_service__trpc_subscribe(sh->schannel, &req, &co, &st);
    if (s->stream == NULL) {
        fprintf(stderr, "tally-bench: Subscribe: %s %s\n", trpc_status_code_name(st.code), st.msg);
        return -1;
    }
    if (pthread_create(&s->thread, NULL, stream_main, s) != 0)
        return -1;
    s->thread_started = 1;
    pthread_mutex_lock(&s->mu);
    for (uint64_t deadline = bench_now_ns() + READY_NS;
         !s->ready && !s->ended && bench_now_ns() < deadline;)
        nap(s);
    ok = s->ready;
    if (!ok)
        fprintf(stderr, "tally-bench: Subscribe on %s: no caught_up (%s %s)\n", o->subscribe_addr,
                s->ended ? trpc_status_code_name(s->end_status.code) : "timeout",
                s->ended ? s->end_status.msg : "");
    pthread_mutex_unlock(&s->mu);
    if (ok)
        fprintf(stderr, "tally-bench: subscribed on %s; %d deposits/s\n", o->subscribe_addr,
                o->rate);
    return ok ? 0 : -1;
}

grpc_status_code bench_sub_call(struct worker *w, trpc_status *st)
{
    struct shared *sh = w->sh;
    struct bench_sub *s = sh->sub;
    Tally__V1__Position pos = TALLY__V1__POSITION__INIT;
    grpc_status_code code;
    uint64_t t;
    struct pending **p, *e;

    code = bench_deposit(sh->channels[w->index % sh->o->channels], sh, bench_pool_account(w), 1,
                         &pos, st);
    t = bench_now_ns();
    if (code != GRPC_STATUS_OK)
        return code;
    pthread_mutex_lock(&s->mu);
    p = slot(s, pos.global_position);
    if (*p) { /* its event came first */
        struct pending reply = {.t_send = w->t_start,
                                .t_reply = t,
                                .measured =
                                    w->t_start >= sh->measure_ns && w->t_start < sh->end_ns};

        e = *p;
        *p = e->next;
        record(s, &reply, e->t_event);
        if (reply.measured)
            s->early++;
        free(e);
    } else if ((e = calloc(1, sizeof(*e))) != NULL) {
        e->pos = pos.global_position;
        e->t_send = w->t_start;
        e->t_reply = t;
        e->measured = w->t_start >= sh->measure_ns && w->t_start < sh->end_ns;
        *p = e;
        s->due += e->measured;
    }
    pthread_mutex_unlock(&s->mu);
    return code;
}

void bench_sub_stop(struct shared *sh, struct bench_extra *x)
{
    struct bench_sub *s = sh->sub;
    uint64_t missing = 0;

    if (s == NULL)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        if (s->due > 0)
            fprintf(stderr, "tally-bench: waiting for %" PRIu64 " events\n", s->due);
        for (uint64_t deadline = bench_now_ns() + DRAIN_NS;
             s->due > 0 && !s->ended && bench_now_ns() < deadline;)
            nap(s);
        pthread_mutex_unlock(&s->mu);
        trpc_client_stream_cancel(s->stream);
        pthread_join(s->thread, NULL);
        s->thread_started = 0;
    }
    missing = s->due;
    if (x) {
        const char *why = s->ended && s->end_status.code != GRPC_STATUS_CANCELLED
                              ? trpc_status_code_name(s->end_status.code)
                              : "";

        x->hist = &s->reply_to_event;
        x->hist_name = "reply_to_event";
        snprintf(x->json, sizeof(x->json),
                 ",\"rate\":%d,\"events\":%" PRIu64 ",\"matched\":%" PRIu64 ",\"missing\":%" PRIu64
                 ",\"event_before_reply\":%" PRIu64 ",\"fell_behind\":%" PRIu64
                 ",\"stream_error\":\"%s\"",
                 sh->o->rate, s->events, s->matched, missing, s->early, s->fell_behind, why);
        snprintf(x->text, sizeof(x->text),
                 " rate=%d events=%" PRIu64 " matched=%" PRIu64 " missing=%" PRIu64
                 " event_before_reply=%" PRIu64 " fell_behind=%" PRIu64 "%s%s",
                 sh->o->rate, s->events, s->matched, missing, s->early, s->fell_behind,
                 why[0] ? " stream_error=" : "", why);
        bench_extra_hist(x, "send_to_event_", &s->send_to_event);
        return; /* main calls again with x == NULL to free, after printing */
    }
    trpc_client_stream_free(s->stream);
    for (int b = 0; b < BUCKETS; b++)
        while (s->buckets[b]) {
            struct pending *e = s->buckets[b];

            s->buckets[b] = e->next;
            free(e);
        }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
    sh->sub = NULL;
}
