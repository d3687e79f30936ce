/* json.c - the proto3 JSON mapping, generic over protobuf-c descriptors.
 *
 * Encoding builds a jansson tree from a message by walking its descriptor; pbjson_encode() then
 * prints the tree with a small printer of its own, because jansson prints reals with 17
 * significant digits (0.1 -> 0.10000000000000001) and the canonical form is the shortest one.
 * Decoding walks a jansson tree against the descriptor and fills a malloc'd message in place,
 * keeping it valid for protobuf_c_message_free_unpacked() at every step, so any error path is
 * just "free the message".
 *
 * Field access follows protobuf-c 1.4.1's conventions exactly (see protobuf-c.c): a singular
 * proto3 field (PROTOBUF_C_LABEL_NONE) is present when not "zeroish"; a oneof member when the
 * case member (uint32_t at quantifier_offset) equals its number; an optional field by its
 * has_ flag (protobuf_c_boolean at quantifier_offset), strings and messages by pointer; a
 * repeated field is a size_t count at quantifier_offset and an array at offset. Mirroring the
 * binary rules keeps JSON and wire encodings of one message equivalent.
 */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* Timestamp range of the mapping: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define TS_MIN_SECONDS (-62135596800LL)
#define TS_MAX_SECONDS 253402300799LL

/* Base64 is converted in chunks so that OpenSSL's int lengths never overflow. */
#define B64_CHUNK_IN  (3 * 16384) /* raw bytes per EVP_EncodeBlock call */
#define B64_CHUNK_TXT (4 * 16384) /* characters per EVP_DecodeBlock call */

struct ctx {
    char *err;
    size_t errlen;
    bool failed;
    bool ints_as_reals; /* the text was parsed with JSON_DECODE_INT_AS_REAL (see pbjson_decode) */
    int depth;
    size_t path_len;
    char path[192]; /* "events[3].deposited.amount.minorUnits", for error messages */
};

enum wkt {
    WKT_NONE,
    WKT_TIMESTAMP,
    WKT_WRAPPER,
    WKT_UNSUPPORTED,
};

static void ctx_init(struct ctx *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->err = err;
    c->errlen = err ? errlen : 0;
    if (c->errlen > 0)
        c->err[0] = '\0';
}

/* Records the first error, prefixed by the current field path. Always returns -1. */
static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct ctx *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (c->failed)
        return -1;
    c->failed = true;
    if (c->errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->path_len > 0)
        snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
    else
        snprintf(c->err, c->errlen, "%s", msg);
    return -1;
}

static int fail_oom(struct ctx *c)
{
    return fail(c, "out of memory");
}

static char ascii_upper(char ch)
{
    return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

/* protoc's ToJsonName: drop '_' and upper-case the letter after it ("minor_units" ->
 * "minorUnits"). Writes at most size-1 characters plus NUL; the result is never longer than
 * name, so size = strlen(name) + 1 always suffices. */
static void to_json_name(const char *name, char *out, size_t size)
{
    size_t o = 0;
    bool up = false;

    for (; *name != '\0' && o + 1 < size; name++) {
        if (*name == '_') {
            up = true;
            continue;
        }
        out[o++] = up ? ascii_upper(*name) : *name;
        up = false;
    }
    out[o] = '\0';
}

static bool json_name_eq(const char *name, const char *key, size_t key_len)
{
    size_t k = 0;
    bool up = false;

    for (; *name != '\0'; name++) {
        if (*name == '_') {
            up = true;
            continue;
        }
        if (k >= key_len || key[k] != (up ? ascii_upper(*name) : *name))
            return false;
        k++;
        up = false;
    }
    return k == key_len;
}

static size_t path_push_field(struct ctx *c, const char *field_name)
{
    size_t old = c->path_len;
    size_t room = sizeof(c->path) - old;

    if (room > 2) {
        char *p = c->path + old;
        if (old > 0) {
            *p++ = '.';
            room--;
        }
        to_json_name(field_name, p, room);
        c->path_len = (size_t)(p - c->path) + strlen(p);
    }
    return old;
}

static size_t path_push_index(struct ctx *c, size_t i)
{
    size_t old = c->path_len;
    int n = snprintf(c->path + old, sizeof(c->path) - old, "[%zu]", i);

    if (n > 0 && (size_t)n < sizeof(c->path) - old)
        c->path_len += (size_t)n;
    else
        c->path[old] = '\0';
    return old;
}

static void path_pop(struct ctx *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

/* A short, printable excerpt of untrusted text for error messages. */
static const char *excerpt(char *buf, size_t size, const char *s, size_t n)
{
    size_t i, o = 0;

    for (i = 0; i < n && o + 4 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (i < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static const char *json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "value";
}

static const char *pb_type_name(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
        return "int32";
    case PROTOBUF_C_TYPE_SINT32:
        return "sint32";
    case PROTOBUF_C_TYPE_SFIXED32:
        return "sfixed32";
    case PROTOBUF_C_TYPE_INT64:
        return "int64";
    case PROTOBUF_C_TYPE_SINT64:
        return "sint64";
    case PROTOBUF_C_TYPE_SFIXED64:
        return "sfixed64";
    case PROTOBUF_C_TYPE_UINT32:
        return "uint32";
    case PROTOBUF_C_TYPE_FIXED32:
        return "fixed32";
    case PROTOBUF_C_TYPE_UINT64:
        return "uint64";
    case PROTOBUF_C_TYPE_FIXED64:
        return "fixed64";
    case PROTOBUF_C_TYPE_FLOAT:
        return "float";
    case PROTOBUF_C_TYPE_DOUBLE:
        return "double";
    case PROTOBUF_C_TYPE_BOOL:
        return "bool";
    case PROTOBUF_C_TYPE_ENUM:
        return "enum";
    case PROTOBUF_C_TYPE_STRING:
        return "string";
    case PROTOBUF_C_TYPE_BYTES:
        return "bytes";
    case PROTOBUF_C_TYPE_MESSAGE:
        return "message";
    }
    return "value";
}

static bool utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned ch = s[i];
        size_t len, k;
        uint32_t cp, min;

        if (ch < 0x80) {
            i++;
            continue;
        }
        if ((ch & 0xE0) == 0xC0) {
            len = 2, cp = ch & 0x1F, min = 0x80;
        } else if ((ch & 0xF0) == 0xE0) {
            len = 3, cp = ch & 0x0F, min = 0x800;
        } else if ((ch & 0xF8) == 0xF0) {
            len = 4, cp = ch & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false; /* overlong, beyond Unicode, or a surrogate */
        i += len;
    }
    return true;
}

/* ---- descriptors ---- */

static bool is_message_descriptor(const ProtobufCMessageDescriptor *d)
{
    return d != NULL && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
}

static enum wkt wkt_kind(const ProtobufCMessageDescriptor *d)
{
    static const char *const wrappers[] = {
        "Int64Value",  "UInt64Value", "Int32Value",  "UInt32Value", "BoolValue",
        "StringValue", "BytesValue",  "DoubleValue", "FloatValue",
    };
    static const char *const unsupported[] = {
        "Any", "Duration", "Struct", "Value", "ListValue", "FieldMask",
    };
    const char *n;
    size_t i;

    if (d->name == NULL || strncmp(d->name, "google.protobuf.", 16) != 0)
        return WKT_NONE;
    n = d->name + 16;
    if (strcmp(n, "Timestamp") == 0)
        return WKT_TIMESTAMP;
    for (i = 0; i < sizeof(wrappers) / sizeof(wrappers[0]); i++)
        if (strcmp(n, wrappers[i]) == 0)
            return WKT_WRAPPER;
    for (i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
        if (strcmp(n, unsupported[i]) == 0)
            return WKT_UNSUPPORTED;
    return WKT_NONE; /* Empty, descriptor.proto, ...: ordinary messages */
}

/* The field `name` of d, if it is singular and of type t. Looked up linearly: descriptors are
 * small, and a hand-made descriptor need not have fields_sorted_by_name. */
static const ProtobufCFieldDescriptor *field_of_type(const ProtobufCMessageDescriptor *d,
                                                     const char *name, ProtobufCType t)
{
    unsigned i;

    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (strcmp(f->name, name) == 0)
            return f->type == t && f->label != PROTOBUF_C_LABEL_REPEATED ? f : NULL;
    }
    return NULL;
}

/* The `value` field of a wrapper type (field 1 of a scalar type). */
static const ProtobufCFieldDescriptor *wrapper_field(const ProtobufCMessageDescriptor *d)
{
    const ProtobufCFieldDescriptor *f = d->n_fields == 1 ? &d->fields[0] : NULL;

    if (f == NULL || strcmp(f->name, "value") != 0 || f->label == PROTOBUF_C_LABEL_REPEATED ||
        f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_ENUM)
        return NULL;
    return f;
}

/* protoc's MapEntryName: "labels" -> "LabelsEntry", "by_kind" -> "ByKindEntry". */
static bool map_entry_name_eq(const char *field_name, const char *entry_name)
{
    bool up = true;
    const char *e = entry_name;

    for (; *field_name != '\0'; field_name++) {
        if (*field_name == '_') {
            up = true;
            continue;
        }
        if (*e++ != (up ? ascii_upper(*field_name) : *field_name))
            return false;
        up = false;
    }
    return strcmp(e, "Entry") == 0;
}

/* protobuf-c has no map-entry flag: a map field is a repeated message field whose type is the
 * nested <Field>Entry message with exactly `key = 1` and `value = 2`, as protoc generates it. */
static bool is_map_field(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *e = f->descriptor;
    size_t plen;

    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE || e == NULL ||
        e->n_fields != 2 || d->name == NULL || e->name == NULL)
        return false;
    if (e->fields[0].id != 1 || strcmp(e->fields[0].name, "key") != 0 || e->fields[1].id != 2 ||
        strcmp(e->fields[1].name, "value") != 0)
        return false;
    plen = strlen(d->name);
    if (strncmp(e->name, d->name, plen) != 0 || e->name[plen] != '.')
        return false;
    return map_entry_name_eq(f->name, e->name + plen + 1);
}

static void *member_ptr(const ProtobufCMessage *m, unsigned offset)
{
    return (char *)m + offset;
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return sizeof(uint32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int); /* protoc-c forces every enum to int size */
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* protobuf-c 1.4.1's field_is_zeroish(): what an unlabeled proto3 field leaves off the wire. */
static bool is_zeroish(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)p == 0;
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0; /* -0.0 too, as on the wire */
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    }
    return true;
}

static bool is_pointer_type(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE;
}

/* Whether a singular field is written; the same rules as protobuf-c's packer. */
static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const void *p = member_ptr(m, f->offset);
    const void *ptr = is_pointer_type(f->type) ? *(void *const *)p : NULL;

    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)member_ptr(m, f->quantifier_offset) != f->id)
            return false;
        return !is_pointer_type(f->type) || (ptr != NULL && ptr != f->default_value);
    }
    switch (f->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
        return !is_pointer_type(f->type) || ptr != NULL;
    case PROTOBUF_C_LABEL_OPTIONAL:
        if (is_pointer_type(f->type))
            return ptr != NULL && ptr != f->default_value;
        return *(const protobuf_c_boolean *)member_ptr(m, f->quantifier_offset) != 0;
    case PROTOBUF_C_LABEL_NONE:
        return !is_zeroish(f, p);
    case PROTOBUF_C_LABEL_REPEATED:
        break;
    }
    return false;
}

/* ---- calendar (proleptic Gregorian, H. Hinnant's algorithms) ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Writes "YYYY-MM-DDTHH:MM:SS[.fff[fff[fff]]]Z"; false if out of range. */
static bool format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t size)
{
    int64_t days, sod, y;
    unsigned mo, d;
    int n;

    if (seconds < TS_MIN_SECONDS || seconds > TS_MAX_SECONDS || nanos < 0 || nanos > 999999999)
        return false;
    days = seconds / 86400;
    sod = seconds % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    civil_from_days(days, &y, &mo, &d);
    n = snprintf(buf, size, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d", y, mo, d, (int)(sod / 3600),
                 (int)(sod / 60 % 60), (int)(sod % 60));
    if (n < 0 || (size_t)n >= size)
        return false;
    if (nanos == 0)
        n += snprintf(buf + n, size - (size_t)n, "Z");
    else if (nanos % 1000000 == 0)
        n += snprintf(buf + n, size - (size_t)n, ".%03dZ", nanos / 1000000);
    else if (nanos % 1000 == 0)
        n += snprintf(buf + n, size - (size_t)n, ".%06dZ", nanos / 1000);
    else
        n += snprintf(buf + n, size - (size_t)n, ".%09dZ", nanos);
    return (size_t)n < size;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)". 0 on success, -1 malformed,
 * -2 out of the mapping's range. */
static int parse_timestamp(const char *s, size_t n, int64_t *seconds, int32_t *nanos)
{
    unsigned y, mo, d, h, mi, se, oh = 0, om = 0, ns = 0, nd = 0;
    int64_t t, off = 0;
    size_t i = 19;

    if (n < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return -1;
    if (s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, nd++)
            if (nd < 9)
                ns = ns * 10 + (unsigned)(s[i] - '0');
        if (nd == 0 || nd > 9)
            return -1;
        for (; nd < 9; nd++)
            ns *= 10;
    }
    if (i < n && s[i] == 'Z') {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        if (n - i < 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off = (int64_t)oh * 3600 + om * 60;
        if (s[i] == '-')
            off = -off;
        i += 6;
    } else {
        return -1;
    }
    if (i != n || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59)
        return -1; /* no leap seconds: the mapping smears them away */
    if (y == 0)
        return -2;
    if (d > days_in_month(y, mo))
        return -1;
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    if (t < TS_MIN_SECONDS || t > TS_MAX_SECONDS)
        return -2;
    *seconds = t;
    *nanos = (int32_t)ns;
    return 0;
}

/* ---- numbers ---- */

/* Strict JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s, size_t n)
{
    size_t i = 0, k;

    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0') {
        i++;
    } else {
        for (k = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == k)
            return false;
    }
    if (i < n && s[i] == '.') {
        for (k = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == k)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (k = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == k)
            return false;
    }
    return i == n;
}

/* An integer as sign and magnitude, so that every int64 and uint64 fits. */
struct num {
    bool neg;
    uint64_t mag;
};

/* Every double of magnitude >= 2^52 is an integer; below that the int64 cast is exact.
 * (No libm: tally_model does not link it.) */
static bool is_integral(double d)
{
    return isfinite(d) && (fabs(d) >= 0x1p52 || (double)(int64_t)d == d);
}

static int real_to_num(struct ctx *c, double d, ProtobufCType t, struct num *out)
{
    if (!is_integral(d))
        return fail(c, "%s value is not an integer", pb_type_name(t));
    if (d >= 0x1p64 || d < -0x1p63)
        return fail(c, "value out of range for %s", pb_type_name(t));
    out->neg = d < 0;
    out->mag = out->neg ? (uint64_t)(-d) : (uint64_t)d;
    return 0;
}

/* A JSON integer, integral real, or string holding either, as sign and magnitude. */
static int get_num(struct ctx *c, json_t *v, ProtobufCType t, struct num *out)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        out->neg = x < 0;
        out->mag = out->neg ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* an integer literal read as a double is exact only below 2^53 (2^53 + 1 reads as 2^53) */
        if (c->ints_as_reals && fabs(d) >= 0x1p53)
            return fail(c,
                        "%s value too large to read exactly from this document (write 64-bit "
                        "integers as strings)",
                        pb_type_name(t));
        return real_to_num(c, d, t, out);
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), i = 0;
        char buf[40];

        out->neg = n > 0 && s[0] == '-';
        i = out->neg ? 1 : 0;
        if (i < n && strspn(s + i, "0123456789") == n - i) {
            out->mag = 0;
            for (; i < n; i++) {
                unsigned dgt = (unsigned)(s[i] - '0');
                if (out->mag > (UINT64_MAX - dgt) / 10)
                    return fail(c, "value out of range for %s", pb_type_name(t));
                out->mag = out->mag * 10 + dgt;
            }
            return 0;
        }
        if (is_json_number(s, n)) {
            double d;
            errno = 0;
            d = strtod(s, NULL); /* s is NUL-terminated right after the number */
            if (errno == ERANGE && isinf(d))
                return fail(c, "value out of range for %s", pb_type_name(t));
            return real_to_num(c, d, t, out);
        }
        return fail(c, "invalid %s value \"%s\"", pb_type_name(t), excerpt(buf, sizeof(buf), s, n));
    }
    return fail(c, "expected %s as a number or string, got %s", pb_type_name(t), json_type_name(v));
}

static int get_signed(struct ctx *c, json_t *v, ProtobufCType t, int64_t min, int64_t max,
                      int64_t *out)
{
    struct num n = {0};

    if (get_num(c, v, t, &n) != 0)
        return -1;
    if (n.neg) {
        if (n.mag > (uint64_t)(-(min + 1)) + 1)
            return fail(c, "value out of range for %s", pb_type_name(t));
        *out = n.mag == 0 ? 0 : -(int64_t)(n.mag - 1) - 1;
    } else {
        if (n.mag > (uint64_t)max)
            return fail(c, "value out of range for %s", pb_type_name(t));
        *out = (int64_t)n.mag;
    }
    return 0;
}

static int get_unsigned(struct ctx *c, json_t *v, ProtobufCType t, uint64_t max, uint64_t *out)
{
    struct num n;

    if (get_num(c, v, t, &n) != 0)
        return -1;
    if ((n.neg && n.mag != 0) || n.mag > max)
        return fail(c, "value out of range for %s", pb_type_name(t));
    *out = n.mag;
    return 0;
}

static int get_double(struct ctx *c, json_t *v, ProtobufCType t, double *out)
{
    double d;

    if (json_is_integer(v)) {
        d = (double)json_integer_value(v);
    } else if (json_is_real(v)) {
        d = json_real_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        char buf[40];

        if (strcmp(s, "NaN") == 0 && n == 3) {
            d = NAN;
        } else if (strcmp(s, "Infinity") == 0 && n == 8) {
            d = INFINITY;
        } else if (strcmp(s, "-Infinity") == 0 && n == 9) {
            d = -INFINITY;
        } else if (is_json_number(s, n)) {
            errno = 0;
            d = strtod(s, NULL);
            if (errno == ERANGE && isinf(d))
                return fail(c, "value out of range for %s", pb_type_name(t));
        } else {
            return fail(c, "invalid %s value \"%s\"", pb_type_name(t),
                        excerpt(buf, sizeof(buf), s, n));
        }
    } else {
        return fail(c, "expected %s as a number or string, got %s", pb_type_name(t),
                    json_type_name(v));
    }
    /* Doubles below 2^128 - 2^103 (0x1.ffffffp127) round to a finite float; converting a
     * larger one is undefined behaviour in C, so refuse it here. */
    if (t == PROTOBUF_C_TYPE_FLOAT && isfinite(d) && fabs(d) >= 0x1.ffffffp127)
        return fail(c, "value out of range for float");
    *out = d;
    return 0;
}

/* ---- base64 (OpenSSL) ---- */

static json_t *base64_json(const ProtobufCBinaryData *b)
{
    size_t done = 0, o = 0, outlen;
    char *out;
    json_t *j;

    if (b->len > (SIZE_MAX / 4 - 1) * 3)
        return NULL;
    outlen = (b->len + 2) / 3 * 4;
    out = malloc(outlen + 1);
    if (out == NULL)
        return NULL;
    out[0] = '\0';
    while (done < b->len) {
        size_t n = b->len - done < B64_CHUNK_IN ? b->len - done : B64_CHUNK_IN;
        int w = EVP_EncodeBlock((unsigned char *)out + o, b->data + done, (int)n);
        if (w < 0) {
            free(out);
            return NULL;
        }
        o += (size_t)w;
        done += n;
    }
    j = json_stringn_nocheck(out, o);
    free(out);
    return j;
}

static bool b64_char(char ch, bool *std, bool *url)
{
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
        return true;
    if (ch == '+' || ch == '/')
        return *std = true;
    if (ch == '-' || ch == '_')
        return *url = true;
    return false;
}

/* Standard or URL-safe alphabet (not mixed), padding optional but complete if present. The
 * text is validated here and normalised to padded standard base64 for EVP_DecodeBlock, which
 * would otherwise skip whitespace and mis-handle a missing pad. 0, -1 invalid, -2 OOM. */
static int base64_decode(const char *s, size_t n, ProtobufCBinaryData *out)
{
    size_t pad = 0, i, n4, nout, done;
    bool std = false, url = false;
    char *txt = NULL;
    uint8_t *data = NULL;
    int rc = -1;

    out->len = 0;
    out->data = NULL;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0))
        return -1;
    for (i = 0; i < n; i++)
        if (!b64_char(s[i], &std, &url))
            return -1;
    if (std && url)
        return -1;
    if (n == 0)
        return 0;
    n4 = (n + 3) / 4 * 4;
    nout = n4 / 4 * 3;
    txt = malloc(n4);
    data = malloc(nout);
    if (txt == NULL || data == NULL) {
        rc = -2;
        goto out;
    }
    for (i = 0; i < n; i++)
        txt[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    for (; i < n4; i++)
        txt[i] = '=';
    for (done = 0; done < n4;) {
        size_t chunk = n4 - done < B64_CHUNK_TXT ? n4 - done : B64_CHUNK_TXT;
        int got =
            EVP_DecodeBlock(data + done / 4 * 3, (const unsigned char *)txt + done, (int)chunk);
        if (got < 0 || (size_t)got != chunk / 4 * 3)
            goto out;
        done += chunk;
    }
    out->len = nout - (n4 - n); /* each missing character was one padding byte */
    out->data = data;
    data = NULL;
    rc = 0;
out:
    free(txt);
    free(data);
    return rc;
}

/* ---- encoding ---- */

static json_t *enc_message(struct ctx *c, const ProtobufCMessage *m);

static json_t *float_json(double d, bool is_float)
{
    char buf[40];
    int p;

    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    if (!is_float)
        return json_real(d);
    /* The shortest decimal that reads back as the same float, stored as the double nearest
     * to it, so the printer (shortest double) writes 1.1 for 1.1f, not 1.100000023841858. */
    for (p = 1; p < 9; p++) {
        snprintf(buf, sizeof(buf), "%.*g", p, d);
        if (strtof(buf, NULL) == (float)d)
            break;
    }
    snprintf(buf, sizeof(buf), "%.*g", p, d);
    return json_real(strtod(buf, NULL));
}

static json_t *enc_value(struct ctx *c, const ProtobufCFieldDescriptor *f, const void *p)
{
    char buf[32];
    json_t *j = NULL;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        j = json_integer(*(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        j = json_integer(*(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, sizeof(buf), "%" PRId64, *(const int64_t *)p);
        j = json_string(buf);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, sizeof(buf), "%" PRIu64, *(const uint64_t *)p);
        j = json_string(buf);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        j = float_json(*(const float *)p, true);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        j = float_json(*(const double *)p, false);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        j = json_boolean(*(const protobuf_c_boolean *)p);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        j = ev != NULL ? json_string(ev->name) : json_integer(v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        size_t n = s != NULL ? strlen(s) : 0;
        if (!utf8_valid(s, n)) {
            fail(c, "invalid UTF-8 in string");
            return NULL;
        }
        j = json_stringn_nocheck(n > 0 ? s : "", n);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        if (b->len > 0 && b->data == NULL) {
            fail(c, "bytes field with a length but no data");
            return NULL;
        }
        j = base64_json(b);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub == NULL) {
            fail(c, "NULL element in a repeated message field");
            return NULL;
        }
        return enc_message(c, sub);
    }
    }
    if (j == NULL)
        fail_oom(c);
    return j;
}

static json_t *enc_timestamp(struct ctx *c, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const ProtobufCFieldDescriptor *fs = field_of_type(d, "seconds", PROTOBUF_C_TYPE_INT64);
    const ProtobufCFieldDescriptor *fn = field_of_type(d, "nanos", PROTOBUF_C_TYPE_INT32);
    char buf[40];
    json_t *j;

    if (fs == NULL || fn == NULL) {
        fail(c, "%s has an unexpected shape", d->name);
        return NULL;
    }
    if (!format_timestamp(*(const int64_t *)member_ptr(m, fs->offset),
                          *(const int32_t *)member_ptr(m, fn->offset), buf, sizeof(buf))) {
        fail(c, "timestamp out of range (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, "
                "nanos 0 to 999999999)");
        return NULL;
    }
    j = json_string(buf);
    if (j == NULL)
        fail_oom(c);
    return j;
}

static json_t *enc_repeated(struct ctx *c, const ProtobufCMessage *m,
                            const ProtobufCFieldDescriptor *f, size_t n)
{
    const char *arr = *(char *const *)member_ptr(m, f->offset);
    size_t es = elem_size(f->type), i;
    json_t *a = json_array();

    if (a == NULL) {
        fail_oom(c);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        size_t old = path_push_index(c, i);
        json_t *v = enc_value(c, f, arr + i * es);
        path_pop(c, old);
        if (v == NULL)
            goto err;
        if (json_array_append_new(a, v) != 0) {
            fail_oom(c);
            goto err;
        }
    }
    return a;
err:
    json_decref(a);
    return NULL;
}

static json_t *enc_message(struct ctx *c, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *obj = NULL;
    unsigned i;

    if (!is_message_descriptor(d)) {
        fail(c, "not a protobuf-c message");
        return NULL;
    }
    switch (wkt_kind(d)) {
    case WKT_TIMESTAMP:
        return enc_timestamp(c, m);
    case WKT_WRAPPER: {
        const ProtobufCFieldDescriptor *f = wrapper_field(d);
        if (f == NULL) {
            fail(c, "%s has an unexpected shape", d->name);
            return NULL;
        }
        return enc_value(c, f, member_ptr(m, f->offset));
    }
    case WKT_UNSUPPORTED:
        fail(c, "%s is not supported", d->name);
        return NULL;
    case WKT_NONE:
        break;
    }
    obj = json_object();
    if (obj == NULL) {
        fail_oom(c);
        return NULL;
    }
    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t old, nlen = strlen(f->name);
        char stackname[64], *name = stackname;
        json_t *v;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)member_ptr(m, f->quantifier_offset);
            if (n == 0)
                continue;
            old = path_push_field(c, f->name);
            if (is_map_field(d, f)) {
                fail(c, "map fields are not supported");
                v = NULL;
            } else {
                v = enc_repeated(c, m, f, n);
            }
        } else {
            if (!field_present(m, f))
                continue;
            old = path_push_field(c, f->name);
            v = enc_value(c, f, member_ptr(m, f->offset));
        }
        path_pop(c, old);
        if (v == NULL)
            goto err;
        if (nlen >= sizeof(stackname) && (name = malloc(nlen + 1)) == NULL) {
            json_decref(v);
            fail_oom(c);
            goto err;
        }
        to_json_name(f->name, name, nlen + 1);
        if (json_object_set_new(obj, name, v) != 0) /* takes v even when it fails */
            fail_oom(c);
        if (name != stackname)
            free(name);
        if (c->failed)
            goto err;
    }
    return obj;
err:
    json_decref(obj);
    return NULL;
}

json_t *pbjson_to_json_ex(const ProtobufCMessage *msg, char *err, size_t errlen)
{
    struct ctx c;

    ctx_init(&c, err, errlen);
    if (msg == NULL) {
        fail(&c, "no message");
        return NULL;
    }
    return enc_message(&c, msg);
}

json_t *pbjson_to_json(const ProtobufCMessage *msg)
{
    return pbjson_to_json_ex(msg, NULL, 0);
}

/* ---- printing ---- */

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n >= b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (n >= cap - b->len) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void print_string(struct buf *b, const char *s, size_t n)
{
    size_t i, run = 0;

    buf_add(b, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];

        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        buf_add(b, s + run, i - run);
        run = i + 1;
        switch (ch) {
        case '"':
            buf_add(b, "\\\"", 2);
            break;
        case '\\':
            buf_add(b, "\\\\", 2);
            break;
        case '\n':
            buf_add(b, "\\n", 2);
            break;
        case '\r':
            buf_add(b, "\\r", 2);
            break;
        case '\t':
            buf_add(b, "\\t", 2);
            break;
        case '\b':
            buf_add(b, "\\b", 2);
            break;
        case '\f':
            buf_add(b, "\\f", 2);
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", ch);
            buf_add(b, esc, 6);
            break;
        }
    }
    buf_add(b, s + run, n - run);
    buf_add(b, "\"", 1);
}

static void print_real(struct buf *b, double d)
{
    char s[40];
    int p;

    if (d == 0) { /* keep the sign of -0: "-0" would read back as the integer 0 */
        buf_str(b, signbit(d) ? "-0.0" : "0");
        return;
    }
    for (p = 1; p < 17; p++) {
        snprintf(s, sizeof(s), "%.*g", p, d);
        if (strtod(s, NULL) == d)
            break;
    }
    snprintf(s, sizeof(s), "%.*g", p, d);
    buf_str(b, s);
}

static void print_newline(struct buf *b, bool pretty, unsigned level)
{
    static const char spaces[] = "                                ";
    size_t n = (size_t)level * 2;

    if (!pretty)
        return;
    buf_add(b, "\n", 1);
    for (; n > sizeof(spaces) - 1; n -= sizeof(spaces) - 1)
        buf_add(b, spaces, sizeof(spaces) - 1);
    buf_add(b, spaces, n);
}

static void print_value(struct buf *b, json_t *j, bool pretty, unsigned level)
{
    char num[32];

    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        size_t key_len;
        json_t *v;
        bool first = true;

        if (json_object_size(j) == 0) {
            buf_add(b, "{}", 2);
            break;
        }
        buf_add(b, "{", 1);
        json_object_keylen_foreach(j, key, key_len, v)
        {
            if (!first)
                buf_add(b, ",", 1);
            first = false;
            print_newline(b, pretty, level + 1);
            print_string(b, key, key_len);
            buf_add(b, ": ", pretty ? 2 : 1);
            print_value(b, v, pretty, level + 1);
        }
        print_newline(b, pretty, level);
        buf_add(b, "}", 1);
        break;
    }
    case JSON_ARRAY: {
        size_t i, n = json_array_size(j);

        if (n == 0) {
            buf_add(b, "[]", 2);
            break;
        }
        buf_add(b, "[", 1);
        for (i = 0; i < n; i++) {
            if (i > 0)
                buf_add(b, ",", 1);
            print_newline(b, pretty, level + 1);
            print_value(b, json_array_get(j, i), pretty, level + 1);
        }
        print_newline(b, pretty, level);
        buf_add(b, "]", 1);
        break;
    }
    case JSON_STRING:
        print_string(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        buf_str(b, num);
        break;
    case JSON_REAL:
        print_real(b, json_real_value(j));
        break;
    case JSON_TRUE:
        buf_str(b, "true");
        break;
    case JSON_FALSE:
        buf_str(b, "false");
        break;
    case JSON_NULL:
        buf_str(b, "null");
        break;
    }
}

char *pbjson_encode_ex(const ProtobufCMessage *msg, int flags, char *err, size_t errlen)
{
    struct buf b = {NULL, 0, 0, false};
    json_t *j = pbjson_to_json_ex(msg, err, errlen);

    if (j == NULL)
        return NULL;
    print_value(&b, j, (flags & PBJSON_PRETTY) != 0, 0);
    json_decref(j);
    if (b.oom) {
        free(b.p);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return b.p;
}

char *pbjson_encode(const ProtobufCMessage *msg, int flags)
{
    return pbjson_encode_ex(msg, flags, NULL, 0);
}

/* ---- decoding ---- */

static int dec_into(struct ctx *c, const ProtobufCMessageDescriptor *d, json_t *j,
                    ProtobufCMessage *m);

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);

    if (m != NULL)
        protobuf_c_message_init(d, m);
    return m;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key, size_t key_len)
{
    unsigned i;

    for (i = 0; i < d->n_fields; i++) {
        const char *name = d->fields[i].name;
        if ((strlen(name) == key_len && memcmp(name, key, key_len) == 0) ||
            json_name_eq(name, key, key_len))
            return &d->fields[i];
    }
    return NULL;
}

static const ProtobufCFieldDescriptor *field_by_id(const ProtobufCMessageDescriptor *d, uint32_t id)
{
    unsigned i;

    for (i = 0; i < d->n_fields; i++)
        if (d->fields[i].id == id)
            return &d->fields[i];
    return NULL;
}

static int dec_enum(struct ctx *c, const ProtobufCFieldDescriptor *f, json_t *v, int *out)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    char buf[48];

    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        const ProtobufCEnumValue *ev =
            strlen(s) == n ? protobuf_c_enum_descriptor_get_value_by_name(ed, s) : NULL;
        if (ev == NULL)
            return fail(c, "unknown value \"%s\" for enum %s", excerpt(buf, sizeof(buf), s, n),
                        ed->name);
        *out = ev->value;
        return 0;
    }
    if (json_is_number(v)) {
        int64_t x = 0;
        if (get_signed(c, v, PROTOBUF_C_TYPE_INT32, INT32_MIN, INT32_MAX, &x) != 0)
            return -1;
        *out = (int)x;
        return 0;
    }
    return fail(c, "expected an enum value name or number (%s), got %s", ed->name,
                json_type_name(v));
}

static int dec_string(struct ctx *c, json_t *v, char **out)
{
    const char *s;
    size_t n;
    char *dup;

    if (!json_is_string(v))
        return fail(c, "expected a string, got %s", json_type_name(v));
    s = json_string_value(v);
    n = json_string_length(v);
    if (!utf8_valid(s, n))
        return fail(c, "invalid UTF-8 in string");
    if (memchr(s, '\0', n) != NULL)
        return fail(c, "string contains U+0000, which is not allowed");
    dup = malloc(n + 1);
    if (dup == NULL)
        return fail_oom(c);
    memcpy(dup, s, n + 1);
    *out = dup;
    return 0;
}

static int dec_bytes(struct ctx *c, json_t *v, ProtobufCBinaryData *out)
{
    int rc;

    if (!json_is_string(v))
        return fail(c, "expected a base64 string, got %s", json_type_name(v));
    rc = base64_decode(json_string_value(v), json_string_length(v), out);
    if (rc == -2)
        return fail_oom(c);
    if (rc != 0)
        return fail(c, "invalid base64 (expected standard or URL-safe base64)");
    return 0;
}

/* Decodes one value of field f's type into *p (a singular member or an array element). */
static int dec_value(struct ctx *c, const ProtobufCFieldDescriptor *f, json_t *v, void *p)
{
    ProtobufCType t = f->type;
    int64_t s = 0; /* -O3 cannot see that every failure path returns first */
    uint64_t u = 0;
    double d = 0;

    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (get_signed(c, v, t, INT32_MIN, INT32_MAX, &s) != 0)
            return -1;
        *(int32_t *)p = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (get_signed(c, v, t, INT64_MIN, INT64_MAX, &s) != 0)
            return -1;
        *(int64_t *)p = s;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (get_unsigned(c, v, t, UINT32_MAX, &u) != 0)
            return -1;
        *(uint32_t *)p = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (get_unsigned(c, v, t, UINT64_MAX, &u) != 0)
            return -1;
        *(uint64_t *)p = u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (get_double(c, v, t, &d) != 0)
            return -1;
        *(float *)p = (float)d;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (get_double(c, v, t, &d) != 0)
            return -1;
        *(double *)p = d;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return fail(c, "expected a boolean, got %s", json_type_name(v));
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return dec_enum(c, f, v, p);
    case PROTOBUF_C_TYPE_STRING:
        return dec_string(c, v, p);
    case PROTOBUF_C_TYPE_BYTES:
        return dec_bytes(c, v, p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        ProtobufCMessage *sub = new_message(sd);
        if (sub == NULL)
            return fail_oom(c);
        *(ProtobufCMessage **)p = sub; /* owned by the parent from here on */
        return dec_into(c, sd, v, sub);
    }
    }
    return fail(c, "unsupported field type");
}

static int dec_repeated(struct ctx *c, const ProtobufCMessageDescriptor *d,
                        const ProtobufCFieldDescriptor *f, json_t *v, ProtobufCMessage *m)
{
    size_t *count = member_ptr(m, f->quantifier_offset);
    size_t n, es = elem_size(f->type), i;
    char *arr;
    int rc = 0;

    if (is_map_field(d, f))
        return fail(c, "map fields are not supported");
    if (!json_is_array(v))
        return fail(c, "expected an array, got %s", json_type_name(v));
    n = json_array_size(v);
    if (n == 0)
        return 0;
    if (++c->depth > PBJSON_MAX_DEPTH) {
        c->depth--;
        return fail(c, "JSON nested deeper than %d levels", PBJSON_MAX_DEPTH);
    }
    arr = calloc(n, es); /* zeroed: NULL strings/messages, empty bytes are safe to free */
    if (arr == NULL) {
        c->depth--;
        return fail_oom(c);
    }
    *(char **)member_ptr(m, f->offset) = arr;
    for (i = 0; i < n && rc == 0; i++) {
        json_t *e = json_array_get(v, i);
        size_t old = path_push_index(c, i);

        *count = i + 1; /* before decoding, so a half-built element is freed with m */
        if (json_is_null(e))
            rc = fail(c, "null is not allowed in a repeated field");
        else
            rc = dec_value(c, f, e, arr + i * es);
        path_pop(c, old);
    }
    c->depth--;
    return rc;
}

static int dec_timestamp(struct ctx *c, const ProtobufCMessageDescriptor *d, json_t *j,
                         ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *fs = field_of_type(d, "seconds", PROTOBUF_C_TYPE_INT64);
    const ProtobufCFieldDescriptor *fn = field_of_type(d, "nanos", PROTOBUF_C_TYPE_INT32);
    const char *s;
    size_t n;
    char buf[48];
    int64_t secs;
    int32_t nanos;
    int rc;

    if (fs == NULL || fn == NULL)
        return fail(c, "%s has an unexpected shape", d->name);
    if (!json_is_string(j))
        return fail(c, "expected an RFC 3339 timestamp string, got %s", json_type_name(j));
    s = json_string_value(j);
    n = json_string_length(j);
    rc = parse_timestamp(s, n, &secs, &nanos);
    if (rc == -2)
        return fail(c,
                    "timestamp \"%s\" out of range (0001-01-01T00:00:00Z to "
                    "9999-12-31T23:59:59.999999999Z)",
                    excerpt(buf, sizeof(buf), s, n));
    if (rc != 0)
        return fail(c, "invalid timestamp \"%s\" (expected RFC 3339 like 2024-05-01T12:00:00Z)",
                    excerpt(buf, sizeof(buf), s, n));
    *(int64_t *)member_ptr(m, fs->offset) = secs;
    *(int32_t *)member_ptr(m, fn->offset) = nanos;
    return 0;
}

static int dec_object(struct ctx *c, const ProtobufCMessageDescriptor *d, json_t *j,
                      ProtobufCMessage *m)
{
    unsigned char *seen = NULL;
    const char *key;
    size_t key_len;
    json_t *v;
    unsigned i;
    int rc = -1;

    if (!json_is_object(j))
        return fail(c, "expected an object (%s), got %s", d->name, json_type_name(j));
    if (++c->depth > PBJSON_MAX_DEPTH) {
        c->depth--;
        return fail(c, "JSON nested deeper than %d levels", PBJSON_MAX_DEPTH);
    }
    seen = calloc(d->n_fields > 0 ? d->n_fields : 1, 1);
    if (seen == NULL) {
        fail_oom(c);
        goto out;
    }
    json_object_keylen_foreach(j, key, key_len, v)
    {
        const ProtobufCFieldDescriptor *f = find_field(d, key, key_len);
        char buf[48], other[64];
        size_t idx, old;
        int frc;

        if (f == NULL) {
            fail(c, "unknown field \"%s\" in %s", excerpt(buf, sizeof(buf), key, key_len), d->name);
            goto out;
        }
        if (json_is_null(v))
            continue; /* null = default: the field stays unset */
        idx = (size_t)(f - d->fields);
        to_json_name(f->name, buf, sizeof(buf));
        if (seen[idx]) {
            fail(c, "field \"%s\" given twice (as \"%s\" and \"%s\")", buf, f->name, buf);
            goto out;
        }
        seen[idx] = 1;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = member_ptr(m, f->quantifier_offset);
            if (*which != 0) {
                const ProtobufCFieldDescriptor *o = field_by_id(d, *which);
                to_json_name(o != NULL ? o->name : "?", other, sizeof(other));
                fail(c, "fields \"%s\" and \"%s\" belong to the same oneof: set at most one", other,
                     buf);
                goto out;
            }
            /* Set before decoding: the union member is still zero (NULL), and a half-built
             * sub-message must be reachable for free_unpacked. */
            *which = f->id;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && !is_pointer_type(f->type)) {
            *(protobuf_c_boolean *)member_ptr(m, f->quantifier_offset) = 1;
        }
        old = path_push_field(c, f->name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            frc = dec_repeated(c, d, f, v, m);
        else
            frc = dec_value(c, f, v, member_ptr(m, f->offset));
        path_pop(c, old);
        if (frc != 0)
            goto out;
    }
    for (i = 0; i < d->n_fields; i++) {
        if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !seen[i]) {
            char buf[64];
            to_json_name(d->fields[i].name, buf, sizeof(buf));
            fail(c, "missing required field \"%s\" in %s", buf, d->name);
            goto out;
        }
    }
    rc = 0;
out:
    c->depth--;
    free(seen);
    return rc;
}

static int dec_into(struct ctx *c, const ProtobufCMessageDescriptor *d, json_t *j,
                    ProtobufCMessage *m)
{
    switch (wkt_kind(d)) {
    case WKT_TIMESTAMP:
        return dec_timestamp(c, d, j, m);
    case WKT_WRAPPER: {
        const ProtobufCFieldDescriptor *f = wrapper_field(d);
        if (f == NULL)
            return fail(c, "%s has an unexpected shape", d->name);
        return dec_value(c, f, j, member_ptr(m, f->offset));
    }
    case WKT_UNSUPPORTED:
        return fail(c, "%s is not supported", d->name);
    case WKT_NONE:
        break;
    }
    return dec_object(c, d, j, m);
}

static ProtobufCMessage *from_json(struct ctx *c, const ProtobufCMessageDescriptor *d, json_t *j)
{
    ProtobufCMessage *m;

    if (j == NULL) {
        fail(c, "no JSON value");
        return NULL;
    }
    m = new_message(d);
    if (m == NULL) {
        fail_oom(c);
        return NULL;
    }
    if (dec_into(c, d, j, m) != 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return NULL;
    }
    return m;
}

ProtobufCMessage *pbjson_from_json(const ProtobufCMessageDescriptor *d, json_t *j, char *err,
                                   size_t errlen)
{
    struct ctx c;

    ctx_init(&c, err, errlen);
    if (!is_message_descriptor(d)) {
        fail(&c, "not a protobuf-c message descriptor");
        return NULL;
    }
    return from_json(&c, d, j);
}

/* Whether '[' and '{' outside strings nest deeper than max. Runs before jansson's
 * recursive-descent parser, so that untrusted text never drives its recursion (or ours)
 * deeper than max; malformed text is left for the parser to report. */
static bool nested_too_deep(const char *s, size_t n, int max)
{
    bool in_string = false;
    int depth = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max)
                return true;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return false;
}

ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
                                char *err, size_t errlen)
{
    struct ctx c;
    json_error_t jerr;
    size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL; /* U+0000 gets our own message */
    enum wkt kind;
    ProtobufCMessage *m;
    json_t *j;

    ctx_init(&c, err, errlen);
    if (!is_message_descriptor(d)) {
        fail(&c, "not a protobuf-c message descriptor");
        return NULL;
    }
    if (text == NULL) {
        fail(&c, "no JSON text");
        return NULL;
    }
    if (nested_too_deep(text, len, PBJSON_MAX_DEPTH)) {
        fail(&c, "JSON nested deeper than %d levels", PBJSON_MAX_DEPTH);
        return NULL;
    }
    /* A message is a JSON object; only the well-known types whose JSON form is a scalar may
     * be anything else at the top level. */
    kind = wkt_kind(d);
    if (kind == WKT_TIMESTAMP || kind == WKT_WRAPPER)
        flags |= JSON_DECODE_ANY;
    j = json_loadb(text, len, flags, &jerr);
    if (j == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        /* PostgreSQL's jsonb writes numbers in full: a double stored as 1e+300 comes back as 1
         * and 300 zeros, which jansson's integer parser refuses. Read such a document with
         * every number as a double; get_num() then refuses integers it cannot hold exactly. */
        json_error_t jerr2;
        j = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, &jerr2);
        c.ints_as_reals = true;
    }
    if (j == NULL) {
        char msg[sizeof(jerr.text)];
        excerpt(msg, sizeof(msg), jerr.text, strnlen(jerr.text, sizeof(jerr.text) - 1));
        fail(&c, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, msg);
        return NULL;
    }
    m = from_json(&c, d, j);
    json_decref(j);
    return m;
}
