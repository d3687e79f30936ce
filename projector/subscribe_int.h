/* subscribe_int.h - what subscribe.c (handler, catch-up, workers) and
 * subscribe_live.c (the tail thread's live service) share. Not for other
 * modules.
 *
 * Ownership of a subscriber follows its state: exactly one party runs it
 * (sends, reads its cursor fields) at a time, and only that party finishes
 * the stream. The runtime callbacks (on_close, on_writable) never send or
 * finish: under hub.mu they set flags and hand a parked or live subscriber
 * to its next owner. Lock order: the runtime's callback lock, then hub.mu;
 * nothing that takes the callback lock (trpc_stream_finish, the callback
 * setters) is called with hub.mu held. */
#ifndef PROJECTOR_SUBSCRIBE_INT_H
#define PROJECTOR_SUBSCRIBE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tally/v1/subscription.pb-c.h"

#include "auth.h"
#include "pg.h"
#include "ring.h"
#include "store.h"
#include "tail.h"
#include "trpc.h"

#define SUB_QUEUE_CAP 16 /* the runtime's per-stream queue (trpc.h) */

enum sub_state {
    SUB_HANDLER, /* the Subscribe handler runs it (pool thread) */
    SUB_QUEUED,  /* waits in the catch-up queue */
    SUB_CATCHUP, /* a catch-up worker runs it */
    SUB_PARKED,  /* catch-up waits for room in the stream (on_writable) */
    SUB_LIVE,    /* the tail thread runs it from the ring */
};

struct sub {
    /* fixed once the handler set the callbacks */
    trpc_stream *stream;
    const Tally__V1__SubscribeRequest *req; /* borrowed: lives until the finish */
    char tenant_id[AUTH_UUID_LEN + 1];
    char aggregate_id[AUTH_UUID_LEN + 1]; /* filter.aggregate_id normalized; "" = any */
    uint32_t ckpt_events;
    int64_t ckpt_ms, heartbeat_ms;

    /* guarded by hub.mu */
    enum sub_state state;
    int closed;                /* on_close fired */
    int writable;              /* on_writable fired while not parked */
    struct sub *qnext;         /* catch-up queue, or the pending joins */
    struct sub *rprev, *rnext; /* ready list (live: closed or writable) */
    int in_ready;

    /* the owner's */
    struct store_position pos; /* everything up to here scanned */
    int fell_behind_due;       /* send fell_behind(pos) first */
    int caught_up_due;         /* live: send caught_up on reaching the ring's newest */
    int ckpt_due;              /* send checkpoint(pos) first */
    uint32_t scanned;          /* own-tenant events scanned since the last message */
    int64_t scan_since_ms;     /* when scanned became > 0 */
    int64_t last_msg_ms;       /* when the last message was queued */
    /* live only (tail thread) */
    uint64_t next_seq; /* the next ring entry to look at */
    int blocked;       /* a send found the queue full: wait for on_writable */
    struct sub *lprev, *lnext;
};

struct hub {
    pthread_mutex_t mu;
    pthread_cond_t work; /* the catch-up queue has work, or stopping */
    struct sub *q_head, *q_tail;
    struct sub *joins; /* handed to the tail, not adopted yet */
    struct sub *ready; /* live subscribers with news (closed or writable) */
    int stopping;
    atomic_long n_subs; /* open subscriptions */
    atomic_long n_live; /* of which adopted by the tail */

    struct sub *live; /* the tail thread's */

    struct pg_opts pg;
    auth_cache *auth;
    ring *ring;
    tail *tail;
    pthread_t *workers;
    int n_workers, n_started;
    int live_ok; /* mu, cond initialized */
};

extern struct hub sub_hub;

/* ---- subscribe.c ---- */

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t sub_now_ms(void);

/* Queues a message: waits up to wait_ms for room (0: not at all). Returns a
 * TRPC_STREAM_* code. */
int sub_send(struct sub *s, const ProtobufCMessage *m, int wait_ms);

/* What a position message says. */
enum sub_mark { SUB_CHECKPOINT, SUB_CAUGHT_UP, SUB_FELL_BEHIND, SUB_HEARTBEAT };

/* Queues a checkpoint / caught_up / fell_behind / heartbeat at s->pos;
 * on OK records the time and resets the scan count. */
int sub_send_mark(struct sub *s, enum sub_mark what, int wait_ms);

/* hub.mu held: appends s to the catch-up queue (state SUB_QUEUED). */
void sub_queue_locked(struct sub *s);

/* Ends the stream with code/msg and frees s. Never with hub.mu held; s must
 * be in no list. */
void sub_end(struct sub *s, grpc_status_code code, const char *msg);

/* ---- subscribe_live.c ---- */

/* True when ring entry e passes s's filter (tenant checked by the caller):
 * the same rules as logread_all's SQL. */
int sub_live_match(const struct sub *s, const struct ring_entry *e);

/* hub.mu held: puts a live s on the ready list (once). */
void sub_ready_locked(struct sub *s);

/* The tail's tick (tail.h): adopts joins, ends closed subscribers, serves
 * writable ones, and on `fresh` every live subscriber (new events, the
 * checkpoint and heartbeat timers, fallen-behind detection). */
void sub_live_tick(void *arg, int fresh);

#endif /* PROJECTOR_SUBSCRIBE_INT_H */
