/* ring.h - the Subscribe live buffer: the most recent events of the whole log
 * (every tenant), in log order, as ready-to-send bytes.
 *
 * The ring holds a contiguous slice of the log: every event with a position
 * in (lo, hi], where hi is the last event read by the tail (or its start
 * position) and lo the position of the last event evicted (or the start).
 * Because the tail reads behind the commit fence (DESIGN §5), no event that
 * commits later can sort at or below hi: a subscriber whose position p
 * satisfies lo <= p finds in the ring every event after p up to hi.
 *
 * An entry keeps the event serialized once (the bytes of SubscribeResponse
 * field 1, so sending it to N subscribers costs N copies, not N encodings,
 * and memory is one block per event), plus the fields the in-memory filter
 * needs. Entries are numbered by a sequence that only grows; an entry is
 * valid from ring_push until it is evicted.
 *
 * Threads: one writer (the tail thread) calls ring_start, ring_push and may
 * read ring_first_seq/ring_end_seq/ring_at without a lock (no one else
 * changes them). Any thread may call ring_window, ring_join and
 * ring_wait_ready (they lock). */
#ifndef PROJECTOR_RING_H
#define PROJECTOR_RING_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "tally/v1/events.pb-c.h"
#include "tally/v1/subscription.pb-c.h"

#include "store.h"

#define RING_MIN_CAPACITY 16
#define RING_MAX_CAPACITY 10000000
#define RING_UUID_LEN     36

/* One event. All strings are NUL-terminated and live in the same block. */
struct ring_entry {
    struct store_position pos;
    char tenant_id[RING_UUID_LEN + 1];
    const char *aggregate_type;
    const char *aggregate_id; /* canonical lower-case text */
    const char *event_type;
    const char *correlation_id; /* "" when none */
    /* SubscribeResponse.event, without its tag: the length varint followed
     * by the serialized Event (the value of a LENGTH_PREFIXED unknown field in
     * protobuf-c's representation) */
    size_t wire_len;
    uint8_t *wire;
};

/* The serialized form of ev for the ring. NULL on OOM or an event without a
 * position. The caller keeps ev. Free with ring_entry_free. */
struct ring_entry *ring_entry_new(const Tally__V1__Event *ev);

/* NULL is a no-op. */
void ring_entry_free(struct ring_entry *e);

/* A SubscribeResponse carrying e as its `event`, without decoding it: the
 * entry's bytes become the message's only unknown field, which protobuf-c
 * serializes verbatim (field 1, length-delimited: byte for byte what the
 * typed message would give). *field is storage for that field; msg borrows
 * e and field. */
void ring_entry_response(const struct ring_entry *e, ProtobufCMessageUnknownField *field,
                         Tally__V1__SubscribeResponse *msg);

/* Compares positions in log order: <0, 0, >0. */
int ring_pos_cmp(struct store_position a, struct store_position b);

typedef struct ring ring;

/* An empty ring for capacity (RING_MIN_CAPACITY..RING_MAX_CAPACITY) events,
 * not yet started. NULL on bad capacity or OOM. */
ring *ring_new(size_t capacity);

/* Frees the ring and its entries. NULL is a no-op. No thread may use it. */
void ring_free(ring *r);

size_t ring_capacity(const ring *r);

/* Writer: the ring starts empty at `at` (lo = hi = at) and becomes ready. */
void ring_start(ring *r, struct store_position at);

/* Writer: appends e (taking ownership) as the newest entry, evicting the
 * oldest when full (lo moves to its position); hi = e->pos. e->pos must be
 * greater than hi (log order). */
void ring_push(ring *r, struct ring_entry *e);

/* Writer only (no lock): sequence of the oldest entry held and one past the
 * newest (equal when empty), and the entry seq (first <= seq < end). */
uint64_t ring_first_seq(const ring *r);
uint64_t ring_end_seq(const ring *r);
const struct ring_entry *ring_at(const ring *r, uint64_t seq);

/* Any thread: the window (lo, hi]. Returns 1, or 0 before ring_start (then
 * *lo and *hi are untouched). lo or hi may be NULL. */
int ring_window(ring *r, struct store_position *lo, struct store_position *hi);

/* Any thread: if the ring is started and lo <= pos, sets *seq to the first
 * entry after pos (ring_end_seq when there is none yet) and returns 1; else
 * returns 0. */
int ring_join(ring *r, struct store_position pos, uint64_t *seq);

/* Any thread: waits up to timeout_ms until the ring is started. Returns 1
 * when started. */
int ring_wait_ready(ring *r, int timeout_ms);

#endif /* PROJECTOR_RING_H */
