/* subscribe_live.c - the live half of Subscribe, run by the tail thread from
 * its tick: every live subscriber has a cursor into the ring and gets, with
 * non-blocking sends, the entries of its tenant that pass its filter. A full
 * stream queue parks the cursor until on_writable; an evicted cursor means
 * fell_behind and back to catch-up. Nothing here waits. */
#include <string.h>

#include "log.h"
#include "subscribe_int.h"

int sub_live_match(const struct sub *s, const struct ring_entry *e)
{
    const Tally__V1__EventFilter *f = s->req->filter;
    size_t i;

    if (f == NULL)
        return 1;
    if (f->n_aggregate_types > 0) {
        for (i = 0; i < f->n_aggregate_types; i++)
            if (strcmp(e->aggregate_type, f->aggregate_types[i]) == 0)
                break;
        if (i == f->n_aggregate_types)
            return 0;
    }
    if (s->aggregate_id[0] && strcmp(e->aggregate_id, s->aggregate_id) != 0)
        return 0;
    if (f->n_event_type_prefixes > 0) {
        for (i = 0; i < f->n_event_type_prefixes; i++) {
            const char *p = f->event_type_prefixes[i];

            if (strncmp(e->event_type, p, strlen(p)) == 0)
                break;
        }
        if (i == f->n_event_type_prefixes)
            return 0;
    }
    if (f->correlation_id != NULL && f->correlation_id[0] &&
        strcmp(e->correlation_id, f->correlation_id) != 0)
        return 0;
    return 1;
}

void sub_ready_locked(struct sub *s)
{
    if (s->in_ready)
        return;
    s->rprev = NULL;
    s->rnext = sub_hub.ready;
    if (sub_hub.ready != NULL)
        sub_hub.ready->rprev = s;
    sub_hub.ready = s;
    s->in_ready = 1;
}

static void ready_remove_locked(struct sub *s)
{
    if (!s->in_ready)
        return;
    if (s->rprev != NULL)
        s->rprev->rnext = s->rnext;
    else
        sub_hub.ready = s->rnext;
    if (s->rnext != NULL)
        s->rnext->rprev = s->rprev;
    s->rprev = s->rnext = NULL;
    s->in_ready = 0;
}

static void live_link(struct sub *s)
{
    s->lprev = NULL;
    s->lnext = sub_hub.live;
    if (sub_hub.live != NULL)
        sub_hub.live->lprev = s;
    sub_hub.live = s;
    atomic_fetch_add(&sub_hub.n_live, 1);
}

/* Takes s off the live list and the ready list: it is no longer the
 * tail's. */
static void live_unlink(struct sub *s)
{
    if (s->lprev != NULL)
        s->lprev->lnext = s->lnext;
    else
        sub_hub.live = s->lnext;
    if (s->lnext != NULL)
        s->lnext->lprev = s->lprev;
    s->lprev = s->lnext = NULL;
    atomic_fetch_sub(&sub_hub.n_live, 1);
    pthread_mutex_lock(&sub_hub.mu);
    ready_remove_locked(s);
    pthread_mutex_unlock(&sub_hub.mu);
}

/* The ring overtook s: back to catch-up from the table, fell_behind first.
 * s->pos is the last position it scanned, so nothing is skipped. */
static void live_fell_behind(struct sub *s)
{
    live_unlink(s);
    log_debug("subscribe: tenant %s fell behind at %llu/%lld", s->tenant_id,
              (unsigned long long)s->pos.tx_id, (long long)s->pos.global_position);
    /* fell_behind only after a caught_up: one still reading the ring's
     * backlog just goes on from the table */
    s->fell_behind_due = !s->caught_up_due;
    s->caught_up_due = 0;
    s->ckpt_due = 0; /* fell_behind or the next page carries the position */
    s->blocked = 0;
    pthread_mutex_lock(&sub_hub.mu);
    sub_queue_locked(s); /* a closed one is ended by the worker */
    pthread_mutex_unlock(&sub_hub.mu);
}

/* A send that did not queue: wait for on_writable (FULL) or on_close
 * (CLOSED) before trying again. */
static void live_blocked(struct sub *s)
{
    s->blocked = 1;
}

static void live_serve(struct sub *s, int64_t now)
{
    ring *r = sub_hub.ring;
    uint64_t end = ring_end_seq(r);

    if (s->next_seq < ring_first_seq(r)) {
        live_fell_behind(s);
        return;
    }
    if (s->blocked)
        return;
    if (s->ckpt_due) {
        if (sub_send_mark(s, SUB_CHECKPOINT, 0) != TRPC_STREAM_OK) {
            live_blocked(s);
            return;
        }
        s->ckpt_due = 0;
    }
    while (s->next_seq < end) {
        const struct ring_entry *e = ring_at(r, s->next_seq);

        if (ring_pos_cmp(e->pos, s->pos) <= 0) {
            /* The seam: s joined at a position the tail had not read up to
             * yet (its catch-up or START_END read was ahead); what the tail
             * reads up to there, s has already had. */
            s->next_seq++;
            continue;
        }
        if (memcmp(e->tenant_id, s->tenant_id, AUTH_UUID_LEN) == 0) {
            if (sub_live_match(s, e)) {
                Tally__V1__SubscribeResponse msg;
                ProtobufCMessageUnknownField field;

                ring_entry_response(e, &field, &msg);
                if (sub_send(s, &msg.base, 0) != TRPC_STREAM_OK) {
                    live_blocked(s);
                    return;
                }
                s->scanned = 0;
                s->last_msg_ms = now;
            } else if (s->scanned++ == 0) {
                s->scan_since_ms = now;
            }
        }
        s->pos = e->pos;
        s->next_seq++;
        if (s->scanned >= s->ckpt_events) {
            if (sub_send_mark(s, SUB_CHECKPOINT, 0) != TRPC_STREAM_OK) {
                s->ckpt_due = 1;
                live_blocked(s);
                return;
            }
        }
    }
    if (s->caught_up_due) { /* at the ring's newest entry: live from now on */
        if (sub_send_mark(s, SUB_CAUGHT_UP, 0) != TRPC_STREAM_OK) {
            live_blocked(s);
            return;
        }
        s->caught_up_due = 0;
    } else if (s->scanned > 0 && now - s->scan_since_ms >= s->ckpt_ms) {
        if (sub_send_mark(s, SUB_CHECKPOINT, 0) != TRPC_STREAM_OK)
            live_blocked(s);
    } else if (now - s->last_msg_ms >= s->heartbeat_ms) {
        if (sub_send_mark(s, SUB_HEARTBEAT, 0) != TRPC_STREAM_OK)
            live_blocked(s);
    }
}

void sub_live_tick(void *arg, int fresh)
{
    struct sub *joins, *s, *next;
    int64_t now = sub_now_ms();

    (void)arg;
    pthread_mutex_lock(&sub_hub.mu);
    joins = sub_hub.joins;
    sub_hub.joins = NULL;
    pthread_mutex_unlock(&sub_hub.mu);
    for (s = joins; s != NULL; s = next) {
        next = s->qnext;
        s->qnext = NULL;
        live_link(s);
        live_serve(s, now); /* its first events now, not at the next fresh tick */
    }

    /* news from the runtime: closed (end it) or writable (serve it) */
    for (;;) {
        int closed;

        pthread_mutex_lock(&sub_hub.mu);
        s = sub_hub.ready;
        if (s != NULL)
            ready_remove_locked(s);
        closed = s != NULL && s->closed;
        pthread_mutex_unlock(&sub_hub.mu);
        if (s == NULL)
            break;
        if (closed) {
            live_unlink(s);
            sub_end(s, GRPC_STATUS_CANCELLED, "cancelled");
            continue;
        }
        s->blocked = 0;
        live_serve(s, now);
    }

    if (!fresh)
        return;
    for (s = sub_hub.live; s != NULL; s = next) {
        next = s->lnext; /* s may leave the list */
        live_serve(s, now);
    }
}
