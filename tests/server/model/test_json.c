/* test_json.c - tests of server/model/json.c, the proto3 JSON codec.
 *
 * Round trips compare wire bytes: build (or randomly fill) a message, encode, decode, then
 * protobuf-c-pack both and compare. Every tally.v1 message type is filled generically from its
 * descriptor with many seeds; a hand-written descriptor (pbjson.test.Scalars) covers the field
 * types and shapes tally.v1 does not use (float, bytes, sint/fixed, repeated scalars, proto3
 * optional, a oneof of scalars, a map, every wrapper type), and pbjson.test.Node nests without
 * limit for the depth checks. Every rejection checks the error text and that the heap is back
 * where it was (mallinfo2 here; LeakSanitizer in the asan build).
 */
#include <malloc.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "tally/v1/command.pb-c.h"
#include "tally/v1/events.pb-c.h"
#include "tally/v1/query.pb-c.h"
#include "tally/v1/subscription.pb-c.h"
#include "tally/v1/types.pb-c.h"

#include "json.h"

/* ---- hand-written descriptors ---- */

typedef struct {
    ProtobufCMessage base;
    char *key;
    char *value;
} TestLabelsEntry;

typedef struct {
    ProtobufCMessage base;
    int64_t seconds;
    int32_t nanos;
} TestDuration;

typedef struct TestNode TestNode;
struct TestNode {
    ProtobufCMessage base;
    TestNode *child;
    int32_t value;
};

typedef struct {
    ProtobufCMessage base;
    int32_t i32;
    int64_t i64;
    uint32_t u32;
    uint64_t u64;
    int32_t s32;
    int64_t s64;
    uint32_t f32;
    uint64_t f64;
    int32_t sf32;
    int64_t sf64;
    float fl;
    double db;
    protobuf_c_boolean b;
    char *str;
    ProtobufCBinaryData by;
    int e;
    size_t n_r_i32;
    int32_t *r_i32;
    size_t n_r_u64;
    uint64_t *r_u64;
    size_t n_r_fl;
    float *r_fl;
    size_t n_r_db;
    double *r_db;
    size_t n_r_b;
    protobuf_c_boolean *r_b;
    size_t n_r_str;
    char **r_str;
    size_t n_r_by;
    ProtobufCBinaryData *r_by;
    size_t n_r_e;
    int *r_e;
    protobuf_c_boolean has_opt_i32;
    int32_t opt_i32;
    uint32_t choice_case;
    union {
        char *c_str;
        ProtobufCBinaryData c_by;
        int32_t c_i32;
        Tally__V1__Money *c_msg;
    };
    size_t n_labels;
    TestLabelsEntry **labels;
    Google__Protobuf__UInt64Value *w_u64;
    Google__Protobuf__Int32Value *w_i32;
    Google__Protobuf__UInt32Value *w_u32;
    Google__Protobuf__BoolValue *w_b;
    Google__Protobuf__StringValue *w_s;
    Google__Protobuf__BytesValue *w_by;
    Google__Protobuf__DoubleValue *w_d;
    Google__Protobuf__FloatValue *w_f;
    Google__Protobuf__Int64Value *w_i64;
    Google__Protobuf__Timestamp *ts;
    size_t n_r_ts;
    Google__Protobuf__Timestamp **r_ts;
    TestDuration *dur;
    size_t n_r_node;
    TestNode **r_node;
} TestScalars;

#define FIELD(name, id, label, type, qoff, off, desc, def, flags)                                  \
    {                                                                                              \
        name, id, label, type, qoff, off, desc, def, flags, 0, NULL, NULL                          \
    }
#define ONE(T, name, id, type, member, desc, def)                                                  \
    FIELD(name, id, PROTOBUF_C_LABEL_NONE, type, 0, offsetof(T, member), desc, def, 0)
#define REP(T, name, id, type, member, desc)                                                       \
    FIELD(name, id, PROTOBUF_C_LABEL_REPEATED, type, offsetof(T, n_##member), offsetof(T, member), \
          desc, NULL, 0)
#define MSG_DESC(full, short, T, fields, init)                                                     \
    {                                                                                              \
        PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, full, short, short, "", sizeof(T),                   \
            sizeof(fields) / sizeof(fields[0]), fields, NULL, 0, NULL, (ProtobufCMessageInit)init, \
            NULL, NULL, NULL                                                                       \
    }

static const ProtobufCMessageDescriptor labels_entry_desc, duration_desc, node_desc, scalars_desc;
#define EMPTY_STR (&protobuf_c_empty_string)

static void labels_entry_init(TestLabelsEntry *m)
{
    memset(m, 0, sizeof(*m));
    m->base.descriptor = &labels_entry_desc;
    m->key = m->value = (char *)protobuf_c_empty_string;
}

static void duration_init(TestDuration *m)
{
    memset(m, 0, sizeof(*m));
    m->base.descriptor = &duration_desc;
}

static void node_init(TestNode *m)
{
    memset(m, 0, sizeof(*m));
    m->base.descriptor = &node_desc;
}

static void scalars_init(TestScalars *m)
{
    memset(m, 0, sizeof(*m));
    m->base.descriptor = &scalars_desc;
    m->str = (char *)protobuf_c_empty_string;
}

static const ProtobufCFieldDescriptor labels_entry_fields[] = {
    ONE(TestLabelsEntry, "key", 1, PROTOBUF_C_TYPE_STRING, key, NULL, EMPTY_STR),
    ONE(TestLabelsEntry, "value", 2, PROTOBUF_C_TYPE_STRING, value, NULL, EMPTY_STR),
};
static const ProtobufCMessageDescriptor labels_entry_desc =
    MSG_DESC("pbjson.test.Scalars.LabelsEntry", "LabelsEntry", TestLabelsEntry, labels_entry_fields,
             labels_entry_init);

/* Stands in for the real google.protobuf.Duration, which the codec refuses. */
static const ProtobufCFieldDescriptor duration_fields[] = {
    ONE(TestDuration, "seconds", 1, PROTOBUF_C_TYPE_INT64, seconds, NULL, NULL),
    ONE(TestDuration, "nanos", 2, PROTOBUF_C_TYPE_INT32, nanos, NULL, NULL),
};
static const ProtobufCMessageDescriptor duration_desc =
    MSG_DESC("google.protobuf.Duration", "Duration", TestDuration, duration_fields, duration_init);

static const ProtobufCFieldDescriptor node_fields[] = {
    ONE(TestNode, "child", 1, PROTOBUF_C_TYPE_MESSAGE, child, &node_desc, NULL),
    ONE(TestNode, "value", 2, PROTOBUF_C_TYPE_INT32, value, NULL, NULL),
};
static const ProtobufCMessageDescriptor node_desc =
    MSG_DESC("pbjson.test.Node", "Node", TestNode, node_fields, node_init);

#define S(name, id, type, member, desc, def) ONE(TestScalars, name, id, type, member, desc, def)
#define R(name, id, type, member, desc)      REP(TestScalars, name, id, type, member, desc)
#define C(name, id, type, member, desc)                                                            \
    FIELD(name, id, PROTOBUF_C_LABEL_NONE, type, offsetof(TestScalars, choice_case),               \
          offsetof(TestScalars, member), desc, NULL, PROTOBUF_C_FIELD_FLAG_ONEOF)
static const ProtobufCFieldDescriptor scalars_fields[] = {
    S("i32", 1, PROTOBUF_C_TYPE_INT32, i32, NULL, NULL),
    S("i64", 2, PROTOBUF_C_TYPE_INT64, i64, NULL, NULL),
    S("u32", 3, PROTOBUF_C_TYPE_UINT32, u32, NULL, NULL),
    S("u64", 4, PROTOBUF_C_TYPE_UINT64, u64, NULL, NULL),
    S("s32", 5, PROTOBUF_C_TYPE_SINT32, s32, NULL, NULL),
    S("s64", 6, PROTOBUF_C_TYPE_SINT64, s64, NULL, NULL),
    S("f32", 7, PROTOBUF_C_TYPE_FIXED32, f32, NULL, NULL),
    S("f64", 8, PROTOBUF_C_TYPE_FIXED64, f64, NULL, NULL),
    S("sf32", 9, PROTOBUF_C_TYPE_SFIXED32, sf32, NULL, NULL),
    S("sf64", 10, PROTOBUF_C_TYPE_SFIXED64, sf64, NULL, NULL),
    S("fl", 11, PROTOBUF_C_TYPE_FLOAT, fl, NULL, NULL),
    S("db", 12, PROTOBUF_C_TYPE_DOUBLE, db, NULL, NULL),
    S("b", 13, PROTOBUF_C_TYPE_BOOL, b, NULL, NULL),
    S("str", 14, PROTOBUF_C_TYPE_STRING, str, NULL, EMPTY_STR),
    S("by", 15, PROTOBUF_C_TYPE_BYTES, by, NULL, NULL),
    S("e", 16, PROTOBUF_C_TYPE_ENUM, e, &tally__v1__account_status__descriptor, NULL),
    R("r_i32", 17, PROTOBUF_C_TYPE_INT32, r_i32, NULL),
    R("r_u64", 18, PROTOBUF_C_TYPE_UINT64, r_u64, NULL),
    R("r_fl", 19, PROTOBUF_C_TYPE_FLOAT, r_fl, NULL),
    R("r_db", 20, PROTOBUF_C_TYPE_DOUBLE, r_db, NULL),
    R("r_b", 21, PROTOBUF_C_TYPE_BOOL, r_b, NULL),
    R("r_str", 22, PROTOBUF_C_TYPE_STRING, r_str, NULL),
    R("r_by", 23, PROTOBUF_C_TYPE_BYTES, r_by, NULL),
    R("r_e", 24, PROTOBUF_C_TYPE_ENUM, r_e, &tally__v1__account_status__descriptor),
    FIELD("opt_i32", 25, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_INT32,
          offsetof(TestScalars, has_opt_i32), offsetof(TestScalars, opt_i32), NULL, NULL, 0),
    C("c_str", 26, PROTOBUF_C_TYPE_STRING, c_str, NULL),
    C("c_by", 27, PROTOBUF_C_TYPE_BYTES, c_by, NULL),
    C("c_i32", 28, PROTOBUF_C_TYPE_INT32, c_i32, NULL),
    C("c_msg", 29, PROTOBUF_C_TYPE_MESSAGE, c_msg, &tally__v1__money__descriptor),
    R("labels", 30, PROTOBUF_C_TYPE_MESSAGE, labels, &labels_entry_desc),
    S("w_u64", 31, PROTOBUF_C_TYPE_MESSAGE, w_u64, &google__protobuf__uint64_value__descriptor,
      NULL),
    S("w_i32", 32, PROTOBUF_C_TYPE_MESSAGE, w_i32, &google__protobuf__int32_value__descriptor,
      NULL),
    S("w_u32", 33, PROTOBUF_C_TYPE_MESSAGE, w_u32, &google__protobuf__uint32_value__descriptor,
      NULL),
    S("w_b", 34, PROTOBUF_C_TYPE_MESSAGE, w_b, &google__protobuf__bool_value__descriptor, NULL),
    S("w_s", 35, PROTOBUF_C_TYPE_MESSAGE, w_s, &google__protobuf__string_value__descriptor, NULL),
    S("w_by", 36, PROTOBUF_C_TYPE_MESSAGE, w_by, &google__protobuf__bytes_value__descriptor, NULL),
    S("w_d", 37, PROTOBUF_C_TYPE_MESSAGE, w_d, &google__protobuf__double_value__descriptor, NULL),
    S("w_f", 38, PROTOBUF_C_TYPE_MESSAGE, w_f, &google__protobuf__float_value__descriptor, NULL),
    S("w_i64", 39, PROTOBUF_C_TYPE_MESSAGE, w_i64, &google__protobuf__int64_value__descriptor,
      NULL),
    S("ts", 40, PROTOBUF_C_TYPE_MESSAGE, ts, &google__protobuf__timestamp__descriptor, NULL),
    R("r_ts", 41, PROTOBUF_C_TYPE_MESSAGE, r_ts, &google__protobuf__timestamp__descriptor),
    S("dur", 42, PROTOBUF_C_TYPE_MESSAGE, dur, &duration_desc, NULL),
    R("r_node", 43, PROTOBUF_C_TYPE_MESSAGE, r_node, &node_desc),
};
static const ProtobufCMessageDescriptor scalars_desc =
    MSG_DESC("pbjson.test.Scalars", "Scalars", TestScalars, scalars_fields, scalars_init);

/* ---- helpers ---- */

/* Bytes malloc'd and not freed (tcache off: see main). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

static bool same_wire(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t na = protobuf_c_message_get_packed_size(a);
    size_t nb = protobuf_c_message_get_packed_size(b);
    uint8_t *pa, *pb;
    bool same;

    if (na != nb)
        return false;
    pa = malloc(na + 1);
    pb = malloc(nb + 1);
    CU_ASSERT_FATAL(pa != NULL && pb != NULL);
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    same = memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return same;
}

static void check_encodes(const ProtobufCMessage *m, int flags, const char *want)
{
    char err[256] = "";
    char *got = pbjson_encode_ex(m, flags, err, sizeof(err));

    if (got == NULL || strcmp(got, want) != 0)
        fprintf(stderr, "\n  encode: want %s\n          got  %s (%s)\n", want, got ? got : "NULL",
                err);
    CU_ASSERT(got != NULL && strcmp(got, want) == 0);
    free(got);
}

/* Encode (compact and pretty), decode, compare wire bytes; re-encode gives the same text; the
 * jansson-tree path agrees; nothing is left on the heap. */
static void check_roundtrip(const ProtobufCMessage *m)
{
    size_t before = heap_in_use();
    char err[256];
    int pretty;
    json_t *j;

    for (pretty = 0; pretty < 2; pretty++) {
        int flags = pretty ? PBJSON_PRETTY : PBJSON_COMPACT;
        char *text = pbjson_encode_ex(m, flags, err, sizeof(err));
        ProtobufCMessage *back;
        char *again;

        if (text == NULL)
            fprintf(stderr, "\n  encode %s failed: %s\n", m->descriptor->name, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        back = pbjson_decode(m->descriptor, text, strlen(text), err, sizeof(err));
        if (back == NULL)
            fprintf(stderr, "\n  decode %s failed: %s\n  text: %s\n", m->descriptor->name, err,
                    text);
        CU_ASSERT_PTR_NOT_NULL(back);
        if (back != NULL) {
            bool same = same_wire(m, back);
            if (!same)
                fprintf(stderr, "\n  %s round trip differs on the wire: %s\n", m->descriptor->name,
                        text);
            CU_ASSERT(same);
            again = pbjson_encode(back, flags);
            CU_ASSERT(again != NULL && strcmp(again, text) == 0);
            free(again);
            protobuf_c_message_free_unpacked(back, NULL);
        }
        free(text);
    }
    j = pbjson_to_json(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    {
        ProtobufCMessage *back = pbjson_from_json(m->descriptor, j, err, sizeof(err));
        CU_ASSERT(back != NULL && same_wire(m, back));
        protobuf_c_message_free_unpacked(back, NULL);
    }
    json_decref(j);
    CU_ASSERT_EQUAL(heap_in_use(), before);
}

static ProtobufCMessage *decode_ok(const ProtobufCMessageDescriptor *d, const char *text)
{
    char err[256] = "";
    ProtobufCMessage *m = pbjson_decode(d, text, strlen(text), err, sizeof(err));

    if (m == NULL)
        fprintf(stderr, "\n  decode of %s as %s failed: %s\n", text, d->name, err);
    CU_ASSERT_PTR_NOT_NULL(m);
    return m;
}

/* Decoding must fail with an error containing `want`, and leave the heap as it was. */
static void check_rejects_n(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
                            const char *want)
{
    char err[256] = "x";
    size_t before = heap_in_use();
    ProtobufCMessage *m = pbjson_decode(d, text, len, err, sizeof(err));
    size_t after = heap_in_use();

    if (m != NULL || strstr(err, want) == NULL)
        fprintf(stderr, "\n  decode of %.*s as %s: want error containing \"%s\", got %s \"%s\"\n",
                (int)(len > 200 ? 200 : len), text, d->name, want, m ? "success" : "error", err);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    CU_ASSERT_EQUAL(after, before);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void check_rejects(const ProtobufCMessageDescriptor *d, const char *text, const char *want)
{
    check_rejects_n(d, text, strlen(text), want);
}

/* pbjson_from_json must fail with `want` (j is consumed). */
static void check_tree_rejects(const ProtobufCMessageDescriptor *d, json_t *j, const char *want)
{
    char err[256] = "x";
    size_t before = heap_in_use();
    ProtobufCMessage *m;

    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    m = pbjson_from_json(d, j, err, sizeof(err));
    CU_ASSERT_EQUAL(heap_in_use(), before);
    if (m != NULL || strstr(err, want) == NULL)
        fprintf(stderr, "\n  from_json as %s: want error containing \"%s\", got \"%s\"\n", d->name,
                want, err);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    protobuf_c_message_free_unpacked(m, NULL);
    json_decref(j);
}

/* Encoding must fail with `want`, from both entry points, leaving the heap as it was. */
static void check_encode_fails(const ProtobufCMessage *m, const char *want)
{
    char err[256] = "x";
    size_t before = heap_in_use();
    char *text = pbjson_encode_ex(m, 0, err, sizeof(err));
    json_t *j = pbjson_to_json(m);

    CU_ASSERT_EQUAL(heap_in_use(), before);
    if (text != NULL || strstr(err, want) == NULL)
        fprintf(stderr, "\n  encode: want error containing \"%s\", got \"%s\"\n", want, err);
    CU_ASSERT_PTR_NULL(text);
    CU_ASSERT_PTR_NULL(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    free(text);
    json_decref(j);
}

/* ---- random messages from descriptors ---- */

#define FILL_MAX_DEPTH 4

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    default:
        return 4; /* int32 family, float, bool (protobuf_c_boolean), enum */
    }
}

/* A mix of zero, small and full-range values. */
static uint64_t rnd_bits(uint64_t *s)
{
    uint64_t r = rnd(s);

    switch (r % 4) {
    case 0:
        return 0;
    case 1:
        return rnd(s) % 1000;
    case 2:
        return (uint64_t)0 - rnd(s) % 1000;
    default:
        return rnd(s);
    }
}

static char *rnd_string(uint64_t *s)
{
    static const char *const pieces[] = {
        "a",    "Z", "0", " ", "\"",       "\\",           "/", "\n", "\t", "\x01",
        "\x1f", "é", "€", "😀", "\xc2\xa0", "\xe2\x80\xa8", "_", "-",
    };
    size_t n = rnd(s) % 7, i;
    char *out = malloc(n * 4 + 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    out[0] = '\0';
    for (i = 0; i < n; i++)
        strcat(out, pieces[rnd(s) % (sizeof(pieces) / sizeof(pieces[0]))]);
    return out;
}

static ProtobufCMessage *rnd_message(uint64_t *s, const ProtobufCMessageDescriptor *d, int depth);

static void rnd_value(uint64_t *s, const ProtobufCFieldDescriptor *f, void *p, int depth)
{
    uint64_t bits = rnd_bits(s);

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v = (uint32_t)bits;
        memcpy(p, &v, 4);
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        memcpy(p, &bits, 8);
        break;
    case PROTOBUF_C_TYPE_FLOAT: {
        uint32_t v = (uint32_t)rnd(s);
        float x;
        memcpy(&x, &v, 4);
        if (bits % 5 == 0)
            x = (float)(bits % 1000) / 10.0f;
        if (isnan(x))
            x = NAN; /* canonical NaN: "NaN" cannot carry a payload */
        *(float *)p = x;
        break;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        uint64_t v = rnd(s);
        double x;
        memcpy(&x, &v, 8);
        if (bits % 5 == 0)
            x = (double)(bits % 1000) / 10.0;
        if (isnan(x))
            x = NAN;
        *(double *)p = x;
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)p = (protobuf_c_boolean)(bits & 1);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        *(int *)p = rnd(s) % 8 == 0 ? (int)(bits % 100000) - 50000
                                    : ed->values[rnd(s) % ed->n_values].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        *(char **)p = rnd_string(s);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = p;
        size_t i;
        b->len = rnd(s) % 9;
        b->data = b->len ? malloc(b->len) : NULL;
        for (i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)rnd(s);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)p = rnd_message(s, f->descriptor, depth + 1);
        break;
    }
}

static bool fillable(const ProtobufCFieldDescriptor *f, int depth)
{
    const ProtobufCMessageDescriptor *md = f->descriptor;

    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        return true;
    /* maps and google.protobuf.Duration are refused by the codec (tested on their own) */
    return depth < FILL_MAX_DEPTH && md != &labels_entry_desc && md != &duration_desc;
}

static void rnd_fields(uint64_t *s, ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    unsigned i, k;

    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *base = (char *)m;

        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* at the first member of a oneof, pick one member (or none) for the whole oneof */
            unsigned first = i, n = 0, pick;
            for (k = 0; k < d->n_fields; k++)
                if ((d->fields[k].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    d->fields[k].quantifier_offset == f->quantifier_offset && n++ == 0)
                    first = k;
            if (first != i)
                continue;
            pick = (unsigned)(rnd(s) % (n + 1));
            for (k = 0; k < d->n_fields && pick < n; k++) {
                const ProtobufCFieldDescriptor *o = &d->fields[k];
                if (!(o->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
                    o->quantifier_offset != f->quantifier_offset || pick-- != 0)
                    continue;
                if (fillable(o, depth)) {
                    *(uint32_t *)(base + o->quantifier_offset) = o->id;
                    rnd_value(s, o, base + o->offset, depth);
                }
                break;
            }
            continue;
        }
        if (!fillable(f, depth))
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = rnd(s) % 4, j, es = type_size(f->type);
            char *arr = n ? calloc(n, es) : NULL;
            for (j = 0; j < n; j++)
                rnd_value(s, f, arr + j * es, depth);
            *(size_t *)(base + f->quantifier_offset) = n;
            *(char **)(base + f->offset) = arr;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
            if (rnd(s) % 2) {
                *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
                rnd_value(s, f, base + f->offset, depth);
            }
        } else if (rnd(s) % 4 != 0) {
            rnd_value(s, f, base + f->offset, depth);
        }
    }
}

static ProtobufCMessage *rnd_message(uint64_t *s, const ProtobufCMessageDescriptor *d, int depth)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    protobuf_c_message_init(d, m);
    if (d == &google__protobuf__timestamp__descriptor) {
        Google__Protobuf__Timestamp *ts = (Google__Protobuf__Timestamp *)m;
        static const int32_t units[] = {1000000000, 1000000, 1000, 1};
        int32_t unit = units[rnd(s) % 4];
        ts->seconds = -62135596800LL + (int64_t)(rnd(s) % (253402300799ULL + 62135596801ULL));
        ts->nanos = (int32_t)(rnd(s) % 1000000000) / unit * unit;
        return m;
    }
    rnd_fields(s, m, depth);
    return m;
}

static const ProtobufCMessageDescriptor *const tally_messages[] = {
    &tally__v1__money__descriptor,
    &tally__v1__position__descriptor,
    &tally__v1__event_metadata__descriptor,
    &tally__v1__event_filter__descriptor,
    &tally__v1__account_opened__descriptor,
    &tally__v1__deposited__descriptor,
    &tally__v1__withdrawn__descriptor,
    &tally__v1__transfer_debited__descriptor,
    &tally__v1__transfer_credited__descriptor,
    &tally__v1__transfer_debit_reversed__descriptor,
    &tally__v1__payment_made__descriptor,
    &tally__v1__payment_refunded__descriptor,
    &tally__v1__account_frozen__descriptor,
    &tally__v1__account_unfrozen__descriptor,
    &tally__v1__account_closed__descriptor,
    &tally__v1__transfer_requested__descriptor,
    &tally__v1__transfer_completed__descriptor,
    &tally__v1__transfer_failed__descriptor,
    &tally__v1__event__descriptor,
    &tally__v1__command_response__descriptor,
    &tally__v1__open_account_request__descriptor,
    &tally__v1__open_account_response__descriptor,
    &tally__v1__deposit_request__descriptor,
    &tally__v1__withdraw_request__descriptor,
    &tally__v1__transfer_request__descriptor,
    &tally__v1__transfer_response__descriptor,
    &tally__v1__pay_request__descriptor,
    &tally__v1__pay_response__descriptor,
    &tally__v1__refund_request__descriptor,
    &tally__v1__freeze_account_request__descriptor,
    &tally__v1__unfreeze_account_request__descriptor,
    &tally__v1__close_account_request__descriptor,
    &tally__v1__account__descriptor,
    &tally__v1__get_account_request__descriptor,
    &tally__v1__list_accounts_request__descriptor,
    &tally__v1__list_accounts_response__descriptor,
    &tally__v1__entry__descriptor,
    &tally__v1__list_entries_request__descriptor,
    &tally__v1__list_entries_response__descriptor,
    &tally__v1__get_operation_request__descriptor,
    &tally__v1__operation__descriptor,
    &tally__v1__get_transfer_request__descriptor,
    &tally__v1__transfer__descriptor,
    &tally__v1__get_account_at_request__descriptor,
    &tally__v1__read_stream_request__descriptor,
    &tally__v1__read_stream_response__descriptor,
    &tally__v1__read_all_request__descriptor,
    &tally__v1__read_all_response__descriptor,
    &tally__v1__list_events_by_correlation_request__descriptor,
    &tally__v1__list_events_by_correlation_response__descriptor,
    &tally__v1__get_tenant_usage_request__descriptor,
    &tally__v1__usage_row__descriptor,
    &tally__v1__get_tenant_usage_response__descriptor,
    &tally__v1__get_projection_status_request__descriptor,
    &tally__v1__projection_status__descriptor,
    &tally__v1__subscribe_request__descriptor,
    &tally__v1__subscribe_response__descriptor,
    &tally__v1__checkpoint__descriptor,
    &tally__v1__caught_up__descriptor,
    &tally__v1__fell_behind__descriptor,
    &tally__v1__heartbeat__descriptor,
};

/* ---- encoding: canonical strings ---- */

static void test_json_money_encodes_canonical(void)
{
    Tally__V1__Money m = TALLY__V1__MONEY__INIT;

    m.minor_units = 1234;
    m.currency = (char *)"EUR";
    check_encodes(&m.base, 0, "{\"minorUnits\":\"1234\",\"currency\":\"EUR\"}");
    check_encodes(&m.base, PBJSON_PRETTY,
                  "{\n  \"minorUnits\": \"1234\",\n  \"currency\": \"EUR\"\n}");
    m.minor_units = INT64_MIN;
    check_encodes(&m.base, 0, "{\"minorUnits\":\"-9223372036854775808\",\"currency\":\"EUR\"}");
}

static void test_json_defaults_are_omitted(void)
{
    Tally__V1__Money zero = TALLY__V1__MONEY__INIT;
    Tally__V1__Deposited dep = TALLY__V1__DEPOSITED__INIT;
    Tally__V1__TransferFailed tf = TALLY__V1__TRANSFER_FAILED__INIT;
    Tally__V1__Account acc = TALLY__V1__ACCOUNT__INIT;
    Tally__V1__EventFilter ef = TALLY__V1__EVENT_FILTER__INIT;

    check_encodes(&zero.base, 0, "{}");
    zero.currency = (char *)""; /* an empty string is the default, wherever it points */
    check_encodes(&zero.base, 0, "{}");
    dep.amount = &zero; /* a set sub-message is written even when empty */
    check_encodes(&dep.base, 0, "{\"amount\":{}}");
    check_encodes(&tf.base, 0, "{}");
    tf.compensated = 1;
    check_encodes(&tf.base, 0, "{\"compensated\":true}");
    check_encodes(&acc.base, 0, "{}"); /* enum 0, timestamps unset */
    acc.status = TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_FROZEN;
    check_encodes(&acc.base, 0, "{\"status\":\"ACCOUNT_STATUS_FROZEN\"}");
    acc.status = 42; /* no name: the number */
    check_encodes(&acc.base, 0, "{\"status\":42}");
    check_encodes(&ef.base, 0, "{}"); /* empty repeated */
}

static void test_json_event_envelope_encodes_canonical(void)
{
    Tally__V1__Money amt = TALLY__V1__MONEY__INIT;
    Tally__V1__Deposited dep = TALLY__V1__DEPOSITED__INIT;
    Tally__V1__AccountFrozen frozen = TALLY__V1__ACCOUNT_FROZEN__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Tally__V1__Position pos = TALLY__V1__POSITION__INIT;
    Tally__V1__EventMetadata md = TALLY__V1__EVENT_METADATA__INIT;
    Tally__V1__Event ev = TALLY__V1__EVENT__INIT;

    amt.minor_units = 1234;
    amt.currency = (char *)"EUR";
    dep.amount = &amt;
    dep.reference = (char *)"inv-7";
    ts.seconds = 1714564800;
    ts.nanos = 250000000;
    pos.tx_id = UINT64_MAX;
    pos.global_position = 42;
    md.correlation_id = (char *)"c-1";
    ev.event_id = (char *)"0190b2a4-7c1e-7000-8000-000000000001";
    ev.tenant_id = (char *)"t1";
    ev.aggregate_type = (char *)"account";
    ev.aggregate_id = (char *)"acc-1";
    ev.version = 3;
    ev.event_type = (char *)"Deposited";
    ev.event_version = 1;
    ev.position = &pos;
    ev.recorded_at = &ts;
    ev.metadata = &md;
    ev.operation_id = (char *)"op-1";
    ev.payload_case = TALLY__V1__EVENT__PAYLOAD_DEPOSITED;
    ev.deposited = &dep;
    check_encodes(&ev.base, 0,
                  "{\"eventId\":\"0190b2a4-7c1e-7000-8000-000000000001\",\"tenantId\":\"t1\","
                  "\"aggregateType\":\"account\",\"aggregateId\":\"acc-1\",\"version\":\"3\","
                  "\"eventType\":\"Deposited\",\"eventVersion\":1,"
                  "\"position\":{\"txId\":\"18446744073709551615\",\"globalPosition\":\"42\"},"
                  "\"recordedAt\":\"2024-05-01T12:00:00.250Z\","
                  "\"metadata\":{\"correlationId\":\"c-1\"},\"operationId\":\"op-1\","
                  "\"deposited\":{\"amount\":{\"minorUnits\":\"1234\",\"currency\":\"EUR\"},"
                  "\"reference\":\"inv-7\"}}");
    check_roundtrip(&ev.base);

    /* a oneof member is written even when it is all defaults */
    memcpy(&ev, &(Tally__V1__Event)TALLY__V1__EVENT__INIT, sizeof(ev));
    ev.payload_case = TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN;
    ev.account_frozen = &frozen;
    check_encodes(&ev.base, 0, "{\"accountFrozen\":{}}");
    check_roundtrip(&ev.base);
}

static void test_json_oneof_scalar_at_default_is_written(void)
{
    Tally__V1__GetAccountAtRequest r = TALLY__V1__GET_ACCOUNT_AT_REQUEST__INIT;

    r.account_id = (char *)"a";
    r.at_case = TALLY__V1__GET_ACCOUNT_AT_REQUEST__AT_VERSION;
    r.version = 0;
    check_encodes(&r.base, 0, "{\"accountId\":\"a\",\"version\":\"0\"}");
    check_roundtrip(&r.base);
}

static void test_json_wrapper_is_plain_value(void)
{
    Google__Protobuf__Int64Value ev = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
    Tally__V1__Money amt = TALLY__V1__MONEY__INIT;
    Tally__V1__WithdrawRequest w = TALLY__V1__WITHDRAW_REQUEST__INIT;

    amt.minor_units = 5;
    amt.currency = (char *)"USD";
    w.account_id = (char *)"acc";
    w.amount = &amt;
    w.expected_version = &ev; /* zero, but set: written */
    check_encodes(&w.base, 0,
                  "{\"accountId\":\"acc\",\"amount\":{\"minorUnits\":\"5\",\"currency\":\"USD\"},"
                  "\"expectedVersion\":\"0\"}");
    check_roundtrip(&w.base);
    ev.value = 17;
    w.idempotency_key = (char *)"k-1";
    check_encodes(&w.base, 0,
                  "{\"accountId\":\"acc\",\"amount\":{\"minorUnits\":\"5\",\"currency\":\"USD\"},"
                  "\"idempotencyKey\":\"k-1\",\"expectedVersion\":\"17\"}");
    check_roundtrip(&w.base);
}

static void test_json_top_level_well_known_types(void)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__BytesValue bv = GOOGLE__PROTOBUF__BYTES_VALUE__INIT;
    Google__Protobuf__FloatValue fv = GOOGLE__PROTOBUF__FLOAT_VALUE__INIT;
    Google__Protobuf__DoubleValue dv = GOOGLE__PROTOBUF__DOUBLE_VALUE__INIT;
    Google__Protobuf__UInt64Value uv = GOOGLE__PROTOBUF__UINT64_VALUE__INIT;
    Google__Protobuf__UInt32Value u32 = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    Google__Protobuf__BoolValue b = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
    Google__Protobuf__StringValue sv = GOOGLE__PROTOBUF__STRING_VALUE__INIT;

    check_encodes(&ts.base, 0, "\"1970-01-01T00:00:00Z\"");
    bv.value.data = (uint8_t *)"hi?";
    bv.value.len = 3;
    check_encodes(&bv.base, 0, "\"aGk/\"");
    fv.value = 1.1f;
    check_encodes(&fv.base, 0, "1.1");
    dv.value = 0.1;
    check_encodes(&dv.base, 0, "0.1");
    dv.value = -0.0;
    check_encodes(&dv.base, 0, "-0.0");
    check_roundtrip(&dv.base);
    dv.value = 1e300;
    check_encodes(&dv.base, 0, "1e+300");
    dv.value = NAN;
    check_encodes(&dv.base, 0, "\"NaN\"");
    dv.value = -INFINITY;
    check_encodes(&dv.base, 0, "\"-Infinity\"");
    uv.value = UINT64_MAX;
    check_encodes(&uv.base, 0, "\"18446744073709551615\"");
    u32.value = UINT32_MAX;
    check_encodes(&u32.base, 0, "4294967295");
    check_encodes(&b.base, 0, "false");
    sv.value = (char *)"x";
    check_encodes(&sv.base, 0, "\"x\"");

    {
        ProtobufCMessage *m =
            decode_ok(&google__protobuf__timestamp__descriptor, "\"2024-02-29T12:00:00.5+01:00\"");
        Google__Protobuf__Timestamp *t = (Google__Protobuf__Timestamp *)m;
        CU_ASSERT(t != NULL && t->seconds == 1709204400 && t->nanos == 500000000);
        protobuf_c_message_free_unpacked(m, NULL);
        m = decode_ok(&google__protobuf__uint64_value__descriptor, "\"18446744073709551615\"");
        CU_ASSERT(m != NULL && ((Google__Protobuf__UInt64Value *)m)->value == UINT64_MAX);
        protobuf_c_message_free_unpacked(m, NULL);
        m = decode_ok(&google__protobuf__bool_value__descriptor, "true");
        CU_ASSERT(m != NULL && ((Google__Protobuf__BoolValue *)m)->value == 1);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

static void test_json_timestamps_use_0_3_6_or_9_digits(void)
{
    static const struct {
        int64_t s;
        int32_t n;
        const char *want;
    } cases[] = {
        {0, 0, "\"1970-01-01T00:00:00Z\""},
        {0, 10000000, "\"1970-01-01T00:00:00.010Z\""},
        {0, 123456000, "\"1970-01-01T00:00:00.123456Z\""},
        {0, 1, "\"1970-01-01T00:00:00.000000001Z\""},
        {-1, 999999999, "\"1969-12-31T23:59:59.999999999Z\""},
        {-14182940, 0, "\"1969-07-20T20:17:40Z\""},
        {1709204400, 0, "\"2024-02-29T11:00:00Z\""},
        {-62135596800LL, 0, "\"0001-01-01T00:00:00Z\""},
        {253402300799LL, 999999999, "\"9999-12-31T23:59:59.999999999Z\""},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = cases[i].s;
        ts.nanos = cases[i].n;
        check_encodes(&ts.base, 0, cases[i].want);
        check_roundtrip(&ts.base);
    }
}

static void test_json_strings_are_escaped(void)
{
    Tally__V1__AccountClosed m = TALLY__V1__ACCOUNT_CLOSED__INIT;

    m.reason = (char *)"q\" b\\ n\n t\t c\x01 s/ €😀";
    check_encodes(&m.base, 0, "{\"reason\":\"q\\\" b\\\\ n\\n t\\t c\\u0001 s/ €😀\"}");
    check_roundtrip(&m.base);
}

static void test_json_pretty_nests(void)
{
    Tally__V1__Position p1 = TALLY__V1__POSITION__INIT;
    Tally__V1__UsageRow row = TALLY__V1__USAGE_ROW__INIT;
    Tally__V1__Money v = TALLY__V1__MONEY__INIT;
    Tally__V1__Money *vols[1] = {&v};
    Tally__V1__ReadAllResponse r = TALLY__V1__READ_ALL_RESPONSE__INIT;

    p1.tx_id = 1;
    r.next_position = &p1;
    r.end_of_log = 1;
    check_encodes(&r.base, PBJSON_PRETTY,
                  "{\n  \"nextPosition\": {\n    \"txId\": \"1\"\n  },\n  \"endOfLog\": true\n}");
    row.date = (char *)"2024-05-01";
    row.n_volume = 1;
    row.volume = vols;
    check_encodes(&row.base, PBJSON_PRETTY,
                  "{\n  \"date\": \"2024-05-01\",\n  \"volume\": [\n    {}\n  ]\n}");
}

/* ---- round trips ---- */

static void test_json_roundtrip_query_responses(void)
{
    Tally__V1__Money bal = TALLY__V1__MONEY__INIT, amt = TALLY__V1__MONEY__INIT;
    Google__Protobuf__Timestamp t1 = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Tally__V1__Account a1 = TALLY__V1__ACCOUNT__INIT, a2 = TALLY__V1__ACCOUNT__INIT;
    Tally__V1__Account *accs[2] = {&a1, &a2};
    Tally__V1__ListAccountsResponse la = TALLY__V1__LIST_ACCOUNTS_RESPONSE__INIT;
    Tally__V1__Entry e1 = TALLY__V1__ENTRY__INIT;
    Tally__V1__Entry *ents[1] = {&e1};
    Tally__V1__ListEntriesResponse le = TALLY__V1__LIST_ENTRIES_RESPONSE__INIT;
    Tally__V1__ProjectionStatus ps = TALLY__V1__PROJECTION_STATUS__INIT;

    bal.minor_units = -250;
    bal.currency = (char *)"JPY";
    t1.seconds = 1714564800;
    t1.nanos = 1000;
    a1.account_id = (char *)"acc-1";
    a1.owner = (char *)"Zoë";
    a1.currency = (char *)"JPY";
    a1.status = TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_OPEN;
    a1.balance = &bal;
    a1.overdraft_limit = 1000;
    a1.version = 7;
    a1.opened_at = &t1;
    a2.account_id = (char *)"acc-2";
    a2.status = TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_CLOSED;
    la.n_accounts = 2;
    la.accounts = accs;
    la.next_page_token = (char *)"tok";
    check_roundtrip(&la.base);

    amt.minor_units = -99;
    amt.currency = (char *)"JPY";
    e1.account_id = (char *)"acc-1";
    e1.version = 2;
    e1.kind = TALLY__V1__ENTRY_KIND__ENTRY_KIND_TRANSFER_OUT;
    e1.amount = &amt;
    e1.balance_after = &bal;
    e1.recorded_at = &t1;
    le.n_entries = 1;
    le.entries = ents;
    check_roundtrip(&le.base);

    ps.lag_events = 3;
    ps.lag_seconds = 0.25;
    ps.notification_queue_usage = 1e-7;
    ps.blocked_reason = (char *)"old transaction";
    check_encodes(&ps.base, 0,
                  "{\"lagEvents\":\"3\",\"lagSeconds\":0.25,\"notificationQueueUsage\":1e-07,"
                  "\"blockedReason\":\"old transaction\"}");
    check_roundtrip(&ps.base);
}

static void test_json_roundtrip_every_tally_message_randomly_filled(void)
{
    size_t i;
    uint64_t seed;

    for (i = 0; i < sizeof(tally_messages) / sizeof(tally_messages[0]); i++) {
        for (seed = 1; seed <= 40; seed++) {
            uint64_t s = seed * 0x9E3779B97F4A7C15ULL + i;
            ProtobufCMessage *m = rnd_message(&s, tally_messages[i], 0);
            check_roundtrip(m);
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
}

static void test_json_roundtrip_all_field_types_randomly_filled(void)
{
    uint64_t seed;

    for (seed = 1; seed <= 500; seed++) {
        uint64_t s = seed * 0x2545F4914F6CDD1DULL;
        ProtobufCMessage *m = rnd_message(&s, &scalars_desc, 0);
        check_roundtrip(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

static void test_json_scalar_types_encode_canonical(void)
{
    TestScalars m;
    uint8_t raw[] = {0xfb, 0xff, 0x00};
    int32_t ri[] = {1, -2};
    float rf[] = {-0.0f, 3.4028235e38f};
    protobuf_c_boolean rb[] = {1, 0};
    ProtobufCBinaryData rby[] = {{0, NULL}, {1, raw}};

    scalars_init(&m);
    m.s32 = -1;
    m.s64 = -2;
    m.f32 = 3;
    m.f64 = 4;
    m.sf32 = -5;
    m.sf64 = -6;
    m.fl = 0.1f;
    m.by.len = 3;
    m.by.data = raw;
    m.n_r_i32 = 2;
    m.r_i32 = ri;
    m.n_r_fl = 2;
    m.r_fl = rf;
    m.n_r_b = 2;
    m.r_b = rb;
    m.n_r_by = 2;
    m.r_by = rby;
    m.has_opt_i32 = 1; /* proto3 optional: written at zero */
    m.choice_case = 27;
    m.c_by.len = 0; /* a set oneof member: written even when empty */
    check_encodes(&m.base, 0,
                  "{\"s32\":-1,\"s64\":\"-2\",\"f32\":3,\"f64\":\"4\",\"sf32\":-5,\"sf64\":\"-6\","
                  "\"fl\":0.1,\"by\":\"+/8A\",\"rI32\":[1,-2],\"rFl\":[-0.0,3.4028235e+38],"
                  "\"rB\":[true,false],\"rBy\":[\"\",\"+w==\"],\"optI32\":0,\"cBy\":\"\"}");
    check_roundtrip(&m.base);
}

static void test_json_decode_accepts_alternative_forms(void)
{
    Tally__V1__Money want = TALLY__V1__MONEY__INIT;
    static const char *const forms[] = {
        "{\"minorUnits\":\"1234\",\"currency\":\"EUR\"}",
        "{\"minor_units\":1234,\"currency\":\"EUR\"}",
        "{ \"currency\" : \"EUR\" , \"minorUnits\" : 1234.0 }",
        "{\"minorUnits\":1.234e3,\"currency\":\"EUR\"}",
        "{\"minorUnits\":\"1.234e3\",\"currency\":\"EUR\"}",
        "{\"minorUnits\":\"01234\",\"currency\":\"EUR\"}",
        "{\"minorUnits\":\"1234\",\"currency\":\"EUR\",\"minor_units\":null}",
    };
    size_t i;

    want.minor_units = 1234;
    want.currency = (char *)"EUR";
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        ProtobufCMessage *m = decode_ok(&tally__v1__money__descriptor, forms[i]);
        CU_ASSERT(m != NULL && same_wire(&want.base, m));
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

static void test_json_decode_null_means_default(void)
{
    Tally__V1__Money empty = TALLY__V1__MONEY__INIT;
    Tally__V1__Event ev_empty = TALLY__V1__EVENT__INIT;
    ProtobufCMessage *m;

    m = decode_ok(&tally__v1__money__descriptor, "{\"minorUnits\":null,\"currency\":null}");
    CU_ASSERT(m != NULL && same_wire(&empty.base, m));
    protobuf_c_message_free_unpacked(m, NULL);
    /* a null oneof member does not count as set */
    m = decode_ok(&tally__v1__event__descriptor,
                  "{\"deposited\":null,\"withdrawn\":{},\"recordedAt\":null,\"position\":null}");
    CU_ASSERT(m != NULL &&
              ((Tally__V1__Event *)m)->payload_case == TALLY__V1__EVENT__PAYLOAD_WITHDRAWN);
    protobuf_c_message_free_unpacked(m, NULL);
    m = decode_ok(&tally__v1__event__descriptor, "{}");
    CU_ASSERT(m != NULL && same_wire(&ev_empty.base, m));
    protobuf_c_message_free_unpacked(m, NULL);
    m = decode_ok(&tally__v1__deposit_request__descriptor,
                  "{\"expectedVersion\":null,\"amount\":null}");
    CU_ASSERT(m != NULL && ((Tally__V1__DepositRequest *)m)->expected_version == NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    m = decode_ok(&tally__v1__event_filter__descriptor, "{\"aggregateTypes\":null}");
    CU_ASSERT(m != NULL && ((Tally__V1__EventFilter *)m)->n_aggregate_types == 0);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_json_decode_enums_by_name_or_number(void)
{
    ProtobufCMessage *m;

    m = decode_ok(&tally__v1__account__descriptor, "{\"status\":\"ACCOUNT_STATUS_FROZEN\"}");
    CU_ASSERT(m != NULL && ((Tally__V1__Account *)m)->status ==
                               TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_FROZEN);
    protobuf_c_message_free_unpacked(m, NULL);
    m = decode_ok(&tally__v1__account__descriptor, "{\"status\":3}");
    CU_ASSERT(m != NULL && ((Tally__V1__Account *)m)->status ==
                               TALLY__V1__ACCOUNT_STATUS__ACCOUNT_STATUS_CLOSED);
    protobuf_c_message_free_unpacked(m, NULL);
    m = decode_ok(&tally__v1__account__descriptor, "{\"status\":-7}"); /* open enum: kept */
    CU_ASSERT(m != NULL && (int)((Tally__V1__Account *)m)->status == -7);
    protobuf_c_message_free_unpacked(m, NULL);
    m = decode_ok(&tally__v1__subscribe_request__descriptor, "{\"start\":\"START_AFTER\"}");
    CU_ASSERT(m != NULL && ((Tally__V1__SubscribeRequest *)m)->start ==
                               TALLY__V1__SUBSCRIBE_REQUEST__START__START_AFTER);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_json_decode_base64_variants(void)
{
    static const struct {
        const char *in;
        const char *out;
        size_t len;
    } cases[] = {
        {"\"\"", "", 0},
        {"\"QQ==\"", "A", 1},
        {"\"QQ\"", "A", 1},
        {"\"QUI=\"", "AB", 2},
        {"\"QUI\"", "AB", 2},
        {"\"QUJD\"", "ABC", 3},
        {"\"-_8=\"", "\xfb\xff", 2},
        {"\"+/8\"", "\xfb\xff", 2},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ProtobufCMessage *m = decode_ok(&google__protobuf__bytes_value__descriptor, cases[i].in);
        Google__Protobuf__BytesValue *b = (Google__Protobuf__BytesValue *)m;
        CU_ASSERT(b != NULL && b->value.len == cases[i].len &&
                  (cases[i].len == 0 || memcmp(b->value.data, cases[i].out, cases[i].len) == 0));
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

/* PostgreSQL's jsonb writes 1e+300 as "1" and 300 zeros; jansson refuses such an integer
 * literal, so the document is read with every number as a double. */
static void test_json_decode_jsonb_long_number_literals(void)
{
    char text[1024], zeros[301];
    ProtobufCMessage *m;
    Tally__V1__ProjectionStatus *ps;

    memset(zeros, '0', 300);
    zeros[300] = '\0';
    snprintf(text, sizeof(text),
             "{\"lagSeconds\": 1%s, \"lagEvents\": 12345, \"deadLetters\": "
             "\"9007199254740993\", \"notificationQueueUsage\": 0.0000001}",
             zeros);
    m = decode_ok(&tally__v1__projection_status__descriptor, text);
    ps = (Tally__V1__ProjectionStatus *)m;
    CU_ASSERT(ps != NULL && ps->lag_seconds == 1e300 && ps->lag_events == 12345 &&
              ps->dead_letters == 9007199254740993LL && ps->notification_queue_usage == 1e-7);
    protobuf_c_message_free_unpacked(m, NULL);
    /* beyond 2^53, an integer literal in such a document would be rounded: refused */
    snprintf(text, sizeof(text), "{\"lagSeconds\": 1%s, \"lagEvents\": 9007199254740993}", zeros);
    check_rejects(&tally__v1__projection_status__descriptor, text,
                  "lagEvents: int64 value too large to read exactly");
    check_rejects(&tally__v1__event__descriptor, "{\"position\":{\"txId\":18446744073709551615}}",
                  "position.txId: uint64 value too large to read exactly");
    /* a real overflow stays an error of the JSON itself */
    snprintf(text, sizeof(text), "{\"lagSeconds\": 1%s%s}", zeros, zeros);
    check_rejects(&tally__v1__projection_status__descriptor, text, "invalid JSON");
}

static void test_json_decode_large_bytes_roundtrip(void)
{
    Google__Protobuf__BytesValue bv = GOOGLE__PROTOBUF__BYTES_VALUE__INIT;
    size_t n = 200001, i; /* several EVP chunks, and a partial last group */
    uint8_t *data = malloc(n);

    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    for (i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 8));
    bv.value.len = n;
    bv.value.data = data;
    check_roundtrip(&bv.base);
    free(data);
}

static void test_json_decode_postgres_jsonb_form_of_stored_event(void)
{
    /* tests/data/json: an event as PostgreSQL's jsonb hands it back (keys re-ordered by length,
     * ", " and ": " separators) and the canonical text it must re-encode to. */
    char path[1024], *text[2] = {NULL, NULL};
    const char *names[2] = {"event_deposited.jsonb.json", "event_deposited.canonical.json"};
    const char *slash = strrchr(__FILE__, '/');
    int k;

    for (k = 0; k < 2; k++) {
        FILE *f;
        long n;
        snprintf(path, sizeof(path), "%.*s/../../data/json/%s", (int)(slash ? slash - __FILE__ : 1),
                 slash ? __FILE__ : ".", names[k]);
        f = fopen(path, "rb");
        if (f == NULL)
            fprintf(stderr, "\n  cannot open %s\n", path);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        text[k] = calloc((size_t)n + 1, 1);
        CU_ASSERT_FATAL(text[k] != NULL && fread(text[k], 1, (size_t)n, f) == (size_t)n);
        fclose(f);
        text[k][strcspn(text[k], "\n")] = '\0'; /* one line each, trailing newline */
    }
    {
        ProtobufCMessage *m = decode_ok(&tally__v1__event__descriptor, text[0]);
        char *canon = m ? pbjson_encode(m, 0) : NULL;
        if (canon == NULL || strcmp(canon, text[1]) != 0)
            fprintf(stderr, "\n  want %s\n  got  %s\n", text[1], canon ? canon : "NULL");
        CU_ASSERT(canon != NULL && strcmp(canon, text[1]) == 0);
        free(canon);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    free(text[0]);
    free(text[1]);
}

/* ---- rejections ---- */

static void test_json_rejects_invalid_json(void)
{
    const ProtobufCMessageDescriptor *money = &tally__v1__money__descriptor;

    check_rejects(money, "", "invalid JSON");
    check_rejects(money, "{", "invalid JSON at line 1");
    check_rejects(money, "{\"currency\":\"EUR\"} x", "invalid JSON");
    check_rejects(money, "5", "invalid JSON"); /* JSON_DECODE_ANY is off for messages */
    check_rejects(money, "[1]", "expected an object (tally.v1.Money), got array");
    check_rejects(money, "{\"currency\":\"a\",\"currency\":\"b\"}", "duplicate object key");
    check_rejects(money, "{\"minorUnits\":99999999999999999999}",
                  "minorUnits: int64 value too large to read exactly from this document");
    check_rejects(money, "{'currency':'EUR'}", "invalid JSON");
    check_rejects_n(money, "{\"currency\":\"EUR\"}\0", 19, "invalid JSON");
    check_rejects(money, "{\"currency\":\"EU\xff\"}", "invalid JSON");
    check_rejects(&google__protobuf__timestamp__descriptor, "\"2024", "invalid JSON");
    {
        char err[64] = "x";
        CU_ASSERT_PTR_NULL(pbjson_decode(money, NULL, 0, err, sizeof(err)));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "no JSON text"));
        CU_ASSERT_PTR_NULL(pbjson_decode(NULL, "{}", 2, err, sizeof(err)));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "descriptor"));
        CU_ASSERT_PTR_NULL(pbjson_decode(money, "{", 1, NULL, 0)); /* err is optional */
        CU_ASSERT_PTR_NULL(pbjson_decode(money, "{\"x\":1}", 7, err, 1));
        CU_ASSERT_EQUAL(err[0], '\0'); /* truncated, still terminated */
    }
}

static void test_json_rejects_unknown_fields(void)
{
    check_rejects(&tally__v1__money__descriptor, "{\"minorUnits\":\"1\",\"bogus\":1}",
                  "unknown field \"bogus\" in tally.v1.Money");
    check_rejects(&tally__v1__event__descriptor,
                  "{\"deposited\":{\"amount\":{\"Currency\":\"x\"}}}",
                  "deposited.amount: unknown field \"Currency\" in tally.v1.Money");
    check_rejects(&tally__v1__money__descriptor, "{\"minorunits\":1}", "unknown field");
    check_rejects(&tally__v1__money__descriptor, "{\"bogus\":null}", "unknown field");
    check_rejects(&tally__v1__read_all_response__descriptor, "{\"events\":[{},{\"x\":[[[[1]]]]}]}",
                  "events[1]: unknown field \"x\"");
}

static void test_json_rejects_wrong_json_types(void)
{
    check_rejects(&tally__v1__money__descriptor, "{\"currency\":5}",
                  "currency: expected a string, got number");
    check_rejects(&tally__v1__money__descriptor, "{\"minorUnits\":true}",
                  "minorUnits: expected int64 as a number or string, got boolean");
    check_rejects(&tally__v1__money__descriptor, "{\"minorUnits\":[1]}", "got array");
    check_rejects(&tally__v1__deposited__descriptor, "{\"amount\":\"5 EUR\"}",
                  "amount: expected an object (tally.v1.Money), got string");
    check_rejects(&tally__v1__transfer_failed__descriptor, "{\"compensated\":\"true\"}",
                  "compensated: expected a boolean, got string");
    check_rejects(&tally__v1__transfer_failed__descriptor, "{\"compensated\":1}",
                  "expected a boolean");
    check_rejects(&tally__v1__event_filter__descriptor, "{\"aggregateTypes\":\"account\"}",
                  "aggregateTypes: expected an array, got string");
    check_rejects(&tally__v1__event_filter__descriptor, "{\"aggregateTypes\":[\"a\",null]}",
                  "aggregateTypes[1]: null is not allowed in a repeated field");
    check_rejects(&tally__v1__event_filter__descriptor, "{\"aggregateTypes\":[\"a\",7]}",
                  "aggregateTypes[1]: expected a string, got number");
    check_rejects(&tally__v1__account__descriptor, "{\"status\":true}",
                  "status: expected an enum value name or number (tally.v1.AccountStatus)");
    check_rejects(&tally__v1__account__descriptor, "{\"openedAt\":1714564800}",
                  "openedAt: expected an RFC 3339 timestamp string, got number");
    check_rejects(&tally__v1__deposit_request__descriptor, "{\"expectedVersion\":{\"value\":1}}",
                  "expectedVersion: expected int64 as a number or string, got object");
    check_rejects(&tally__v1__projection_status__descriptor, "{\"lagSeconds\":\"fast\"}",
                  "lagSeconds: invalid double value \"fast\"");
    check_rejects(&tally__v1__projection_status__descriptor, "{\"lagSeconds\":\"nan\"}",
                  "invalid double value");
    check_rejects(&tally__v1__projection_status__descriptor, "{\"lagSeconds\":\" 1\"}",
                  "invalid double value");
    check_rejects(&scalars_desc, "{\"by\":5}", "by: expected a base64 string, got number");
    check_rejects(&google__protobuf__int64_value__descriptor, "\"x1\"",
                  "invalid int64 value \"x1\"");
    check_rejects(&google__protobuf__int64_value__descriptor, "\"+1\"", "invalid int64 value");
    check_rejects(&google__protobuf__int64_value__descriptor, "\" 1\"", "invalid int64 value");
    check_rejects(&google__protobuf__int64_value__descriptor, "\"\"", "invalid int64 value");
    check_rejects(&google__protobuf__int64_value__descriptor, "null", "got null");
}

static void test_json_rejects_out_of_range_numbers(void)
{
    const ProtobufCMessageDescriptor *ev = &tally__v1__event__descriptor;
    const ProtobufCMessageDescriptor *sub = &tally__v1__subscribe_request__descriptor;
    ProtobufCMessage *m;

    check_rejects(ev, "{\"eventVersion\":2147483648}",
                  "eventVersion: value out of range for int32");
    check_rejects(ev, "{\"eventVersion\":-2147483649}", "value out of range for int32");
    check_rejects(ev, "{\"eventVersion\":\"2147483648\"}", "value out of range for int32");
    check_rejects(ev, "{\"eventVersion\":3e9}", "value out of range for int32");
    check_rejects(sub, "{\"heartbeatIntervalSeconds\":-1}", "value out of range for uint32");
    check_rejects(sub, "{\"heartbeatIntervalSeconds\":4294967296}",
                  "value out of range for uint32");
    check_rejects(ev, "{\"version\":\"9223372036854775808\"}", "value out of range for int64");
    check_rejects(ev, "{\"version\":\"-9223372036854775809\"}", "value out of range for int64");
    check_rejects(ev, "{\"version\":1e19}", "value out of range for int64");
    check_rejects(ev, "{\"version\":\"99999999999999999999999\"}", "out of range for int64");
    check_rejects(ev, "{\"version\":\"1e400\"}", "value out of range for int64");
    check_rejects(ev, "{\"position\":{\"txId\":\"18446744073709551616\"}}",
                  "position.txId: value out of range for uint64");
    check_rejects(ev, "{\"position\":{\"txId\":\"-1\"}}", "value out of range for uint64");
    check_rejects(ev, "{\"position\":{\"txId\":-1}}", "value out of range for uint64");
    check_rejects(&tally__v1__account__descriptor, "{\"status\":3000000000}",
                  "value out of range for int32");
    check_rejects(&scalars_desc, "{\"fl\":1e39}", "fl: value out of range for float");
    check_rejects(&scalars_desc, "{\"fl\":\"-3.5e38\"}", "value out of range for float");
    check_rejects(&scalars_desc, "{\"db\":\"1e999\"}", "value out of range for double");
    check_rejects(&scalars_desc, "{\"rFl\":[1,1e300]}", "rFl[1]: value out of range for float");
    check_rejects(&tally__v1__money__descriptor, "{\"minorUnits\":1e999}", "invalid JSON");

    /* the edges themselves are fine */
    m = decode_ok(ev, "{\"version\":\"-9223372036854775808\",\"eventVersion\":-2147483648,"
                      "\"position\":{\"txId\":\"18446744073709551615\"}}");
    CU_ASSERT(m != NULL && ((Tally__V1__Event *)m)->version == INT64_MIN &&
              ((Tally__V1__Event *)m)->event_version == INT32_MIN &&
              ((Tally__V1__Event *)m)->position->tx_id == UINT64_MAX);
    protobuf_c_message_free_unpacked(m, NULL);
    m = decode_ok(ev, "{\"version\":9223372036854775807,\"eventVersion\":\"2147483647\"}");
    CU_ASSERT(m != NULL && ((Tally__V1__Event *)m)->version == INT64_MAX &&
              ((Tally__V1__Event *)m)->event_version == INT32_MAX);
    protobuf_c_message_free_unpacked(m, NULL);
    m = decode_ok(&scalars_desc, "{\"fl\":3.4028235e38,\"u64\":\"1.8446744073709550e19\","
                                 "\"db\":\"-Infinity\",\"rDb\":[\"NaN\",\"Infinity\",5e-324]}");
    CU_ASSERT(m != NULL && ((TestScalars *)m)->fl == 3.4028235e38f &&
              ((TestScalars *)m)->u64 == 18446744073709549568ULL && isinf(((TestScalars *)m)->db) &&
              isnan(((TestScalars *)m)->r_db[0]));
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_json_rejects_fractional_integers(void)
{
    check_rejects(&tally__v1__money__descriptor, "{\"minorUnits\":1.5}",
                  "minorUnits: int64 value is not an integer");
    check_rejects(&tally__v1__money__descriptor, "{\"minorUnits\":\"1.5\"}", "not an integer");
    check_rejects(&tally__v1__money__descriptor, "{\"minorUnits\":1e-1}", "not an integer");
    check_rejects(&tally__v1__event__descriptor, "{\"eventVersion\":0.5}",
                  "eventVersion: int32 value is not an integer");
    check_rejects(&tally__v1__account__descriptor, "{\"status\":1.5}", "not an integer");
}

static void test_json_rejects_unknown_enum_names(void)
{
    check_rejects(&tally__v1__account__descriptor, "{\"status\":\"OPEN\"}",
                  "status: unknown value \"OPEN\" for enum tally.v1.AccountStatus");
    check_rejects(&tally__v1__account__descriptor, "{\"status\":\"1\"}", "unknown value \"1\"");
    check_rejects(&tally__v1__account__descriptor, "{\"status\":\"ACCOUNT_STATUS_OPEN\\u0000x\"}",
                  "unknown value");
}

static void test_json_rejects_invalid_base64(void)
{
    static const char *const bad[] = {
        "\"@@@@\"", "\"QQ=\"",  "\"Q\"",     "\"QQ==QQ==\"", "\"+-AA\"",  "\"QQ===\"",
        "\"====\"", "\"QQ =\"", "\"QQ\\n\"", "\"Q===\"",     "\"QUJD=\"",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_rejects(&google__protobuf__bytes_value__descriptor, bad[i], "invalid base64");
    check_rejects(&scalars_desc, "{\"rBy\":[\"QQ==\",\"*\"]}", "rBy[1]: invalid base64");
}

static void test_json_rejects_invalid_timestamps(void)
{
    static const char *const bad[] = {
        "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-01-01 00:00:00Z",
        "2024-01-01t00:00:00Z",
        "2024-01-01T00:00:00",
        "2024-01-01T00:00:00z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:60Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00.1234567890Z",
        "2024-1-01T00:00:00Z",
        "2024-01-01T00:00:00+1:00",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+01:60",
        "2024-01-01T00:00:00+0100",
        "10000-01-01T00:00:00Z",
        "",
        "2024-01-01T00:00:00Zjunk",
        "-001-01-01T00:00:00Z",
        "2024-01-01T00:00:00.5",
    };
    static const char *const out_of_range[] = {
        "0000-12-31T23:59:59Z",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01",
    };
    char json[128];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "{\"recordedAt\":\"%s\"}", bad[i]);
        check_rejects(&tally__v1__event__descriptor, json, "recordedAt: invalid timestamp");
    }
    for (i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++) {
        snprintf(json, sizeof(json), "{\"recordedAt\":\"%s\"}", out_of_range[i]);
        check_rejects(&tally__v1__event__descriptor, json, "out of range");
    }
    /* the edges are fine */
    {
        ProtobufCMessage *m = decode_ok(&tally__v1__list_entries_request__descriptor,
                                        "{\"fromTime\":\"0001-01-01T00:00:00Z\","
                                        "\"toTime\":\"9999-12-31T23:59:59.999999999Z\"}");
        Tally__V1__ListEntriesRequest *r = (Tally__V1__ListEntriesRequest *)m;
        CU_ASSERT(r != NULL && r->from_time->seconds == -62135596800LL &&
                  r->to_time->seconds == 253402300799LL && r->to_time->nanos == 999999999);
        protobuf_c_message_free_unpacked(m, NULL);
        m = decode_ok(&tally__v1__list_entries_request__descriptor,
                      "{\"fromTime\":\"2000-01-01T00:00:00.000001-01:30\"}");
        r = (Tally__V1__ListEntriesRequest *)m;
        CU_ASSERT(r != NULL && r->from_time->seconds == 946684800 + 5400 &&
                  r->from_time->nanos == 1000);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

static void test_json_rejects_invalid_utf8_and_nul(void)
{
    static const char *const bad[] = {
        "\xc3\x28",         "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xff",     "\x80",         "ok\xe2\x82",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_pack("{s:o}", "owner", json_stringn_nocheck(bad[i], strlen(bad[i])));
        check_tree_rejects(&tally__v1__account__descriptor, j, "owner: invalid UTF-8 in string");
        j = json_pack("{s:[s,o]}", "aggregateTypes", "ok",
                      json_stringn_nocheck(bad[i], strlen(bad[i])));
        check_tree_rejects(&tally__v1__event_filter__descriptor, j,
                           "aggregateTypes[1]: invalid UTF-8");
    }
    check_rejects(&tally__v1__account__descriptor, "{\"owner\":\"a\\u0000b\"}",
                  "owner: string contains U+0000");
    check_rejects(&tally__v1__account__descriptor, "{\"owner\":\"\\ud800\"}", "invalid JSON");
    check_rejects(&tally__v1__account__descriptor, "{\"owner\":\"\xed\xa0\x80\"}", "invalid JSON");
}

static void test_json_rejects_field_set_twice(void)
{
    check_rejects(&tally__v1__money__descriptor, "{\"minorUnits\":\"1\",\"minor_units\":\"2\"}",
                  "field \"minorUnits\" given twice");
    check_rejects(&tally__v1__event__descriptor,
                  "{\"deposited\":{\"amount\":{\"currency\":\"EUR\"}},"
                  "\"event_id\":\"a\",\"eventId\":\"b\"}",
                  "given twice");
    check_rejects(&tally__v1__event_filter__descriptor,
                  "{\"aggregateTypes\":[\"a\"],\"aggregate_types\":[\"b\"]}", "given twice");
    check_rejects(&tally__v1__deposit_request__descriptor,
                  "{\"expectedVersion\":\"1\",\"expected_version\":2}", "given twice");
}

static void test_json_rejects_two_members_of_one_oneof(void)
{
    check_rejects(&tally__v1__event__descriptor,
                  "{\"deposited\":{\"amount\":{\"currency\":\"EUR\"}},\"withdrawn\":{}}",
                  "fields \"deposited\" and \"withdrawn\" belong to the same oneof");
    check_rejects(&tally__v1__get_account_at_request__descriptor,
                  "{\"version\":\"1\",\"time\":\"2024-01-01T00:00:00Z\"}", "same oneof");
    check_rejects(&tally__v1__subscribe_response__descriptor,
                  "{\"caughtUp\":{},\"heartbeat\":{\"position\":{}}}", "same oneof");
    check_rejects(&scalars_desc, "{\"cStr\":\"abc\",\"cBy\":\"QQ==\"}", "same oneof");
    check_rejects(&scalars_desc, "{\"cMsg\":{\"currency\":\"x\"},\"c_i32\":1}", "same oneof");
}

/* {"child":{"child":...{"value":7}...}} with `levels` objects, between prefix and suffix */
static char *nested_nodes(const char *prefix, size_t levels, const char *suffix)
{
    size_t i, o;
    char *t = malloc(strlen(prefix) + levels * 10 + 16 + strlen(suffix));

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    o = (size_t)sprintf(t, "%s", prefix);
    for (i = 1; i < levels; i++)
        o += (size_t)sprintf(t + o, "{\"child\":");
    o += (size_t)sprintf(t + o, "{\"value\":7}");
    for (i = 1; i < levels; i++)
        t[o++] = '}';
    sprintf(t + o, "%s", suffix);
    return t;
}

static void test_json_rejects_deep_nesting(void)
{
    size_t n = 100000, i;
    char *deep = malloc(n + 1), *text;
    json_t *root;
    json_error_t jerr;
    ProtobufCMessage *m;
    TestNode *t;
    char err[256];

    CU_ASSERT_PTR_NOT_NULL_FATAL(deep);
    /* raw brackets, far beyond jansson's own 2048-level limit: refused before parsing */
    memset(deep, '[', n);
    check_rejects_n(&tally__v1__money__descriptor, deep, n, "JSON nested deeper than 64 levels");
    memset(deep, '{', n);
    check_rejects_n(&tally__v1__money__descriptor, deep, n, "nested deeper than 64");
    /* brackets inside strings do not count, nor do escaped quotes end a string */
    memset(deep, '[', 200);
    deep[200] = '\0';
    text = malloc(300);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    snprintf(text, 300, "{\"currency\":\"%s\\\"{{\"}", deep);
    m = decode_ok(&tally__v1__money__descriptor, text);
    CU_ASSERT(m != NULL && strlen(((Tally__V1__Money *)m)->currency) == 203);
    protobuf_c_message_free_unpacked(m, NULL);
    free(text);
    free(deep);

    /* a recursive message: 64 levels decode, 65 do not */
    text = nested_nodes("", 64, "");
    m = decode_ok(&node_desc, text);
    for (t = (TestNode *)m, i = 1; t != NULL && t->child != NULL; t = t->child)
        i++;
    CU_ASSERT(t != NULL && t->value == 7 && i == 64);
    check_roundtrip(m);
    protobuf_c_message_free_unpacked(m, NULL);
    free(text);
    text = nested_nodes("", 65, "");
    check_rejects(&node_desc, text, "JSON nested deeper than 64 levels");
    /* the tree walk checks as well (jansson parses 65 levels without complaint) */
    root = json_loads(text, 0, &jerr);
    check_tree_rejects(&node_desc, root, "child.child.child: JSON nested deeper than 64 levels");
    free(text);

    /* arrays are levels too: Scalars (1) > rNode array (2) > 62 nodes = 64 */
    text = nested_nodes("{\"rNode\":[", 62, "]}");
    m = decode_ok(&scalars_desc, text);
    protobuf_c_message_free_unpacked(m, NULL);
    root = json_loads(text, 0, &jerr);
    m = pbjson_from_json(&scalars_desc, root, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(m);
    protobuf_c_message_free_unpacked(m, NULL);
    json_decref(root);
    free(text);
    text = nested_nodes("{\"rNode\":[", 63, "]}");
    check_rejects(&scalars_desc, text, "nested deeper than 64");
    check_tree_rejects(&scalars_desc, json_loads(text, 0, &jerr), "rNode[0].child.child");
    free(text);
}

static void test_json_rejects_maps_and_unsupported_well_known_types(void)
{
    TestScalars m;
    TestLabelsEntry e;
    TestLabelsEntry *es[1] = {&e};
    TestDuration dur;
    ProtobufCMessage *ok;

    check_rejects(&scalars_desc, "{\"labels\":{\"a\":\"b\"}}",
                  "labels: map fields are not supported");
    check_rejects(&scalars_desc, "{\"labels\":[{\"key\":\"a\",\"value\":\"b\"}]}",
                  "map fields are not supported");
    check_rejects(&scalars_desc, "{\"dur\":\"1.5s\"}",
                  "dur: google.protobuf.Duration is not supported");
    check_rejects(&duration_desc, "{}", "google.protobuf.Duration is not supported");
    ok = decode_ok(&scalars_desc, "{\"labels\":null,\"dur\":null}");
    protobuf_c_message_free_unpacked(ok, NULL);

    scalars_init(&m);
    check_encodes(&m.base, 0, "{}"); /* an empty map is simply absent */
    labels_entry_init(&e);
    e.key = (char *)"a";
    e.value = (char *)"b";
    m.n_labels = 1;
    m.labels = es;
    check_encode_fails(&m.base, "labels: map fields are not supported");
    scalars_init(&m);
    duration_init(&dur);
    m.dur = &dur;
    check_encode_fails(&m.base, "dur: google.protobuf.Duration is not supported");
}

static void test_json_encode_refuses_unrepresentable_values(void)
{
    Tally__V1__Account acc = TALLY__V1__ACCOUNT__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Tally__V1__ListAccountsResponse la = TALLY__V1__LIST_ACCOUNTS_RESPONSE__INIT;
    Tally__V1__Account *accs[2] = {&acc, NULL};
    Tally__V1__EventFilter ef = TALLY__V1__EVENT_FILTER__INIT;
    char *types[2] = {(char *)"account", (char *)"bad\xff"};
    char err[64];

    acc.owner = (char *)"\xc3\x28";
    check_encode_fails(&acc.base, "owner: invalid UTF-8 in string");
    acc.owner = (char *)"ok";
    acc.opened_at = &ts;
    ts.seconds = 253402300800LL; /* 10000-01-01 */
    check_encode_fails(&acc.base, "openedAt: timestamp out of range");
    ts.seconds = -62135596801LL;
    check_encode_fails(&acc.base, "openedAt: timestamp out of range");
    ts.seconds = 0;
    ts.nanos = 1000000000;
    check_encode_fails(&acc.base, "out of range");
    ts.nanos = -1;
    check_encode_fails(&acc.base, "out of range");
    ts.nanos = 0;
    la.n_accounts = 2;
    la.accounts = accs;
    check_encode_fails(&la.base, "accounts[1]: NULL element");
    ef.n_aggregate_types = 2;
    ef.aggregate_types = types;
    check_encode_fails(&ef.base, "aggregateTypes[1]: invalid UTF-8");
    CU_ASSERT_PTR_NULL(pbjson_encode_ex(NULL, 0, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no message"));
    CU_ASSERT_PTR_NULL(pbjson_to_json(NULL));
}

static void test_json_decoded_message_is_owned_by_free_unpacked(void)
{
    /* every kind of allocation the decoder makes, freed by free_unpacked alone (leaks show in
     * the asan build and in the heap check) */
    size_t before = heap_in_use();
    ProtobufCMessage *m = decode_ok(
        &scalars_desc,
        "{\"str\":\"s\",\"by\":\"QUJD\",\"rStr\":[\"a\",\"\"],\"rBy\":[\"QQ\",\"\"],"
        "\"rI32\":[1,2,3],\"cMsg\":{\"currency\":\"EUR\"},\"wS\":\"w\",\"wBy\":\"QQ==\","
        "\"wU64\":\"5\",\"ts\":\"2024-01-01T00:00:00Z\",\"rTs\":[\"2024-01-01T00:00:00Z\"],"
        "\"rNode\":[{\"child\":{\"value\":1}}],\"optI32\":0,\"e\":\"ACCOUNT_STATUS_OPEN\"}");
    TestScalars *s = (TestScalars *)m;

    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_STRING_EQUAL(s->str, "s");
    CU_ASSERT(s->by.len == 3 && memcmp(s->by.data, "ABC", 3) == 0);
    CU_ASSERT(s->n_r_str == 2 && strcmp(s->r_str[1], "") == 0);
    CU_ASSERT(s->choice_case == 29 && strcmp(s->c_msg->currency, "EUR") == 0);
    CU_ASSERT(s->has_opt_i32 && s->opt_i32 == 0);
    CU_ASSERT(s->w_u64->value == 5 && strcmp(s->w_s->value, "w") == 0);
    CU_ASSERT(s->n_r_node == 1 && s->r_node[0]->child->value == 1);
    protobuf_c_message_free_unpacked(m, NULL);
    CU_ASSERT_EQUAL(heap_in_use(), before);
}

static void test_json_error_stops_midway_without_leaks(void)
{
    /* errors deep inside repeated and nested messages, after allocations were made */
    check_rejects(
        &tally__v1__read_all_response__descriptor,
        "{\"events\":[{\"eventId\":\"a\",\"deposited\":{\"amount\":{\"currency\":\"x\"}}},"
        "{\"eventId\":\"b\",\"withdrawn\":{\"amount\":{\"minorUnits\":0.5}}}]}",
        "events[1].withdrawn.amount.minorUnits: int64 value is not an integer");
    check_rejects(&scalars_desc, "{\"str\":\"x\",\"rStr\":[\"a\",\"b\",5],\"wS\":\"y\"}",
                  "rStr[2]: expected a string");
    check_rejects(&scalars_desc, "{\"cStr\":\"x\",\"rNode\":[{\"child\":{\"child\":{\"v\":1}}}]}",
                  "rNode[0].child.child: unknown field \"v\" in pbjson.test.Node");
    check_rejects(&scalars_desc, "{\"rTs\":[\"2024-01-01T00:00:00Z\",\"2024\"]}",
                  "rTs[1]: invalid timestamp \"2024\"");
    check_rejects(&scalars_desc, "{\"cMsg\":{\"currency\":\"x\",\"minorUnits\":true}}",
                  "cMsg.minorUnits: expected int64 as a number or string, got boolean");
}

static void test_json_error_quotes_are_sanitised_and_short(void)
{
    char err[256];
    const char *text =
        "{\"\\u0001\\u001b[31mverylongfieldname-verylongfieldname-verylongfield\":1}";
    ProtobufCMessage *m =
        pbjson_decode(&tally__v1__money__descriptor, text, strlen(text), err, sizeof(err));
    size_t i;

    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown field \"??[31mverylongfield"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "...\""));
    for (i = 0; err[i] != '\0'; i++)
        CU_ASSERT(err[i] >= 0x20 && err[i] < 0x7f);
}

static int suite_init(void)
{
    /* warm up lazily-allocated libc and jansson state before heap accounting */
    char *s;
    Tally__V1__ProjectionStatus ps = TALLY__V1__PROJECTION_STATUS__INIT;
    ProtobufCMessage *m;

    ps.lag_seconds = 0.5;
    s = pbjson_encode(&ps.base, PBJSON_PRETTY);
    m = s ? pbjson_decode(ps.base.descriptor, s, strlen(s), NULL, 0) : NULL;
    protobuf_c_message_free_unpacked(m, NULL);
    free(s);
    return 0;
}

static CU_TestInfo encode_tests[] = {
    {"money encodes canonical", test_json_money_encodes_canonical},
    {"defaults are omitted", test_json_defaults_are_omitted},
    {"event envelope encodes canonical", test_json_event_envelope_encodes_canonical},
    {"oneof scalar at default is written", test_json_oneof_scalar_at_default_is_written},
    {"wrapper is plain value", test_json_wrapper_is_plain_value},
    {"top-level well-known types", test_json_top_level_well_known_types},
    {"timestamps use 0/3/6/9 digits", test_json_timestamps_use_0_3_6_or_9_digits},
    {"strings are escaped", test_json_strings_are_escaped},
    {"pretty nests", test_json_pretty_nests},
    {"scalar types encode canonical", test_json_scalar_types_encode_canonical},
    {"encode refuses unrepresentable values", test_json_encode_refuses_unrepresentable_values},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo roundtrip_tests[] = {
    {"query responses", test_json_roundtrip_query_responses},
    {"every tally message, randomly filled",
     test_json_roundtrip_every_tally_message_randomly_filled},
    {"all field types, randomly filled", test_json_roundtrip_all_field_types_randomly_filled},
    {"large bytes", test_json_decode_large_bytes_roundtrip},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo decode_tests[] = {
    {"accepts alternative forms", test_json_decode_accepts_alternative_forms},
    {"null means default", test_json_decode_null_means_default},
    {"enums by name or number", test_json_decode_enums_by_name_or_number},
    {"base64 variants", test_json_decode_base64_variants},
    {"jsonb long number literals", test_json_decode_jsonb_long_number_literals},
    {"postgres jsonb form of a stored event", test_json_decode_postgres_jsonb_form_of_stored_event},
    {"decoded message is owned by free_unpacked",
     test_json_decoded_message_is_owned_by_free_unpacked},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo reject_tests[] = {
    {"invalid JSON", test_json_rejects_invalid_json},
    {"unknown fields", test_json_rejects_unknown_fields},
    {"wrong JSON types", test_json_rejects_wrong_json_types},
    {"out-of-range numbers", test_json_rejects_out_of_range_numbers},
    {"fractional integers", test_json_rejects_fractional_integers},
    {"unknown enum names", test_json_rejects_unknown_enum_names},
    {"invalid base64", test_json_rejects_invalid_base64},
    {"invalid timestamps", test_json_rejects_invalid_timestamps},
    {"invalid UTF-8 and NUL", test_json_rejects_invalid_utf8_and_nul},
    {"field set twice", test_json_rejects_field_set_twice},
    {"two members of one oneof", test_json_rejects_two_members_of_one_oneof},
    {"deep nesting", test_json_rejects_deep_nesting},
    {"maps and unsupported well-known types",
     test_json_rejects_maps_and_unsupported_well_known_types},
    {"error midway frees everything", test_json_error_stops_midway_without_leaks},
    {"error quotes are sanitised and short", test_json_error_quotes_are_sanitised_and_short},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"json encode", suite_init, NULL, NULL, NULL, encode_tests},
    {"json round trip", suite_init, NULL, NULL, NULL, roundtrip_tests},
    {"json decode", suite_init, NULL, NULL, NULL, decode_tests},
    {"json reject", suite_init, NULL, NULL, NULL, reject_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    unsigned int failed = 1;

    /* glibc's tcache keeps freed chunks counted as in use by mallinfo2(); run once more with
     * it off so that heap_in_use() sees every free (the asan build has its own allocator and
     * LeakSanitizer instead) */
    if (argc > 0 && getenv("GLIBC_TUNABLES") == NULL) {
        setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
        execv("/proc/self/exe", argv);
        perror("execv /proc/self/exe"); /* carry on: the heap checks may then fail */
    }

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
