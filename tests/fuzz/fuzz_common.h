/* fuzz_common.h - helpers shared by tally's libFuzzer targets.
 *
 * FUZZ_CHECK(cond, ...) aborts with a message when an invariant fails, so
 * libFuzzer records the input as a crash. The message walkers treat a
 * protobuf-c message generically through its descriptor (as protobuf-c's own
 * pack/free do): strip the unknown fields unpack kept (JSON cannot carry
 * them), canonicalise NaNs (their payload bits are not part of the JSON
 * form), and compare two messages by their packed bytes.
 *
 * Everything here is for single-threaded fuzz targets only. */
#ifndef TESTS_FUZZ_COMMON_H
#define TESTS_FUZZ_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A field's storage inside message m. */
static inline void *fuzz_member(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->offset;
}

/* True when field f of m is set as the current member of its oneof, or is
 * not a oneof member at all. */
static inline int fuzz_oneof_active(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return 1;
    return *(const uint32_t *)((const char *)m + f->quantifier_offset) == f->id;
}

/* Calls fn on m and, depth first, on every sub-message it holds. */
static inline void fuzz_walk(ProtobufCMessage *m, void (*fn)(ProtobufCMessage *m))
{
    const ProtobufCMessageDescriptor *d;

    if (m == NULL)
        return;
    fn(m);
    d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];

        if (f->type != PROTOBUF_C_TYPE_MESSAGE || !fuzz_oneof_active(m, f))
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(size_t *)((char *)m + f->quantifier_offset);
            ProtobufCMessage **v = *(ProtobufCMessage ***)fuzz_member(m, f);

            for (size_t j = 0; j < n; j++)
                fuzz_walk(v[j], fn);
        } else {
            fuzz_walk(*(ProtobufCMessage **)fuzz_member(m, f), fn);
        }
    }
}

/* Frees the unknown fields of one message (unpacked with the default
 * allocator, i.e. malloc). */
static inline void fuzz_strip_unknown_one(ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        free(m->unknown_fields[i].data);
    free(m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
}

/* Turns every NaN double/float of one message into the canonical quiet
 * NaN. */
static inline void fuzz_canon_nan_one(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t n = 1;
        char *p;

        if ((f->type != PROTOBUF_C_TYPE_DOUBLE && f->type != PROTOBUF_C_TYPE_FLOAT) ||
            !fuzz_oneof_active(m, f))
            continue;
        p = fuzz_member(m, f);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(size_t *)((char *)m + f->quantifier_offset);
            p = *(char **)p;
        }
        for (size_t j = 0; j < n; j++) {
            if (f->type == PROTOBUF_C_TYPE_DOUBLE) {
                double *x = (double *)(void *)p + j;

                if (isnan(*x))
                    *x = NAN;
            } else {
                float *x = (float *)(void *)p + j;

                if (isnan(*x))
                    *x = NAN;
            }
        }
    }
}

/* m packed into a malloc'd buffer (free()); *len set. */
static inline uint8_t *fuzz_pack(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);

    FUZZ_CHECK(buf != NULL, "out of memory");
    *len = protobuf_c_message_pack(m, buf);
    FUZZ_CHECK(*len == n, "pack wrote %zu bytes, get_packed_size said %zu", *len, n);
    return buf;
}

/* Aborts unless a and b pack to the same bytes. what names the check. */
static inline void fuzz_check_same_wire(const ProtobufCMessage *a, const ProtobufCMessage *b,
                                        const char *what)
{
    size_t la, lb;
    uint8_t *pa = fuzz_pack(a, &la), *pb = fuzz_pack(b, &lb);
    int same = la == lb && memcmp(pa, pb, la) == 0;

    if (!same) {
        fprintf(stderr, "%s: %s: wire bytes differ (%zu vs %zu bytes)\n", what, a->descriptor->name,
                la, lb);
        for (size_t i = 0; i < la; i++)
            fprintf(stderr, "%02x", pa[i]);
        fputc('\n', stderr);
        for (size_t i = 0; i < lb; i++)
            fprintf(stderr, "%02x", pb[i]);
        fputc('\n', stderr);
    }
    free(pa);
    free(pb);
    FUZZ_CHECK(same, "%s", what);
}

/* True when s (NUL-terminated) is a non-empty client-safe message: printable
 * ASCII only. */
static inline int fuzz_is_safe_message(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* Adds d and every message type reachable from it to set (no duplicates).
 * Returns the new count; aborts when cap is too small. */
static inline size_t fuzz_collect_types(const ProtobufCMessageDescriptor *d,
                                        const ProtobufCMessageDescriptor **set, size_t n,
                                        size_t cap)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == d)
            return n;
    FUZZ_CHECK(n < cap, "more than %zu message types", cap);
    set[n++] = d;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            n = fuzz_collect_types(d->fields[i].descriptor, set, n, cap);
    return n;
}

static inline int fuzz_desc_cmp(const void *a, const void *b)
{
    const ProtobufCMessageDescriptor *const *x = a, *const *y = b;

    return strcmp((*x)->name, (*y)->name);
}

#endif /* TESTS_FUZZ_COMMON_H */
