/* ring.c - see ring.h. */
#include "ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ring {
    pthread_mutex_t mu;
    pthread_cond_t ready_cv; /* CLOCK_MONOTONIC */
    struct ring_entry **slots;
    size_t cap;
    uint64_t first, end; /* sequences: entries [first, end) are in slots[seq % cap] */
    struct store_position lo, hi;
    int ready;
};

int ring_pos_cmp(struct store_position a, struct store_position b)
{
    if (a.tx_id != b.tx_id)
        return a.tx_id < b.tx_id ? -1 : 1;
    if (a.global_position != b.global_position)
        return a.global_position < b.global_position ? -1 : 1;
    return 0;
}

static size_t varint_size(size_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varint_put(uint8_t *out, size_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

struct ring_entry *ring_entry_new(const Tally__V1__Event *ev)
{
    const char *corr = ev->metadata ? str_or_empty(ev->metadata->correlation_id) : "";
    const char *agg_type = str_or_empty(ev->aggregate_type);
    const char *agg_id = str_or_empty(ev->aggregate_id);
    const char *type = str_or_empty(ev->event_type);
    size_t body = protobuf_c_message_get_packed_size(&ev->base);
    size_t wire_len = varint_size(body) + body;
    size_t l_type = strlen(agg_type) + 1, l_id = strlen(agg_id) + 1, l_ev = strlen(type) + 1;
    size_t l_corr = strlen(corr) + 1;
    struct ring_entry *e;
    char *p;

    if (ev->position == NULL)
        return NULL;
    e = malloc(sizeof(*e) + wire_len + l_type + l_id + l_ev + l_corr);
    if (e == NULL)
        return NULL;
    e->pos.tx_id = ev->position->tx_id;
    e->pos.global_position = ev->position->global_position;
    snprintf(e->tenant_id, sizeof(e->tenant_id), "%s", str_or_empty(ev->tenant_id));
    e->wire = (uint8_t *)(e + 1);
    e->wire_len = wire_len;
    protobuf_c_message_pack(&ev->base, e->wire + varint_put(e->wire, body));
    p = (char *)e->wire + wire_len;
    e->aggregate_type = memcpy(p, agg_type, l_type);
    p += l_type;
    e->aggregate_id = memcpy(p, agg_id, l_id);
    p += l_id;
    e->event_type = memcpy(p, type, l_ev);
    p += l_ev;
    e->correlation_id = memcpy(p, corr, l_corr);
    return e;
}

void ring_entry_free(struct ring_entry *e)
{
    free(e);
}

void ring_entry_response(const struct ring_entry *e, ProtobufCMessageUnknownField *field,
                         Tally__V1__SubscribeResponse *msg)
{
    tally__v1__subscribe_response__init(msg); /* no oneof member set */
    field->tag = 1;                           /* SubscribeResponse.event */
    field->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    field->len = e->wire_len;
    field->data = e->wire; /* only read by pack */
    msg->base.n_unknown_fields = 1;
    msg->base.unknown_fields = field;
}

ring *ring_new(size_t capacity)
{
    ring *r;
    pthread_condattr_t ca;

    if (capacity < RING_MIN_CAPACITY || capacity > RING_MAX_CAPACITY)
        return NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->slots = calloc(capacity, sizeof(*r->slots));
    if (r->slots == NULL) {
        free(r);
        return NULL;
    }
    r->cap = capacity;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->ready_cv, &ca);
    pthread_condattr_destroy(&ca);
    return r;
}

void ring_free(ring *r)
{
    if (r == NULL)
        return;
    for (uint64_t s = r->first; s < r->end; s++)
        ring_entry_free(r->slots[s % r->cap]);
    free(r->slots);
    pthread_cond_destroy(&r->ready_cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

size_t ring_capacity(const ring *r)
{
    return r->cap;
}

void ring_start(ring *r, struct store_position at)
{
    pthread_mutex_lock(&r->mu);
    r->lo = r->hi = at;
    r->ready = 1;
    pthread_cond_broadcast(&r->ready_cv);
    pthread_mutex_unlock(&r->mu);
}

void ring_push(ring *r, struct ring_entry *e)
{
    struct ring_entry *old = NULL;

    pthread_mutex_lock(&r->mu);
    if (r->end - r->first == r->cap) {
        old = r->slots[r->first % r->cap];
        r->lo = old->pos;
        r->first++;
    }
    r->slots[r->end % r->cap] = e;
    r->end++;
    r->hi = e->pos;
    pthread_mutex_unlock(&r->mu);
    ring_entry_free(old);
}

uint64_t ring_first_seq(const ring *r)
{
    return r->first;
}

uint64_t ring_end_seq(const ring *r)
{
    return r->end;
}

const struct ring_entry *ring_at(const ring *r, uint64_t seq)
{
    return r->slots[seq % r->cap];
}

int ring_window(ring *r, struct store_position *lo, struct store_position *hi)
{
    int ready;

    pthread_mutex_lock(&r->mu);
    ready = r->ready;
    if (ready && lo != NULL)
        *lo = r->lo;
    if (ready && hi != NULL)
        *hi = r->hi;
    pthread_mutex_unlock(&r->mu);
    return ready;
}

int ring_join(ring *r, struct store_position pos, uint64_t *seq)
{
    int ok;

    pthread_mutex_lock(&r->mu);
    ok = r->ready && ring_pos_cmp(r->lo, pos) <= 0;
    if (ok) {
        /* the first entry whose position is greater than pos */
        uint64_t a = r->first, b = r->end;

        while (a < b) {
            uint64_t mid = a + (b - a) / 2;

            if (ring_pos_cmp(r->slots[mid % r->cap]->pos, pos) <= 0)
                a = mid + 1;
            else
                b = mid;
        }
        *seq = a;
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

int ring_wait_ready(ring *r, int timeout_ms)
{
    struct timespec until;
    int ready;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->ready)
        if (pthread_cond_timedwait(&r->ready_cv, &r->mu, &until) == ETIMEDOUT)
            break;
    ready = r->ready;
    pthread_mutex_unlock(&r->mu);
    return ready;
}
