/* fuzz_filter_sql.c - libFuzzer target for the EventFilter -> SQL code of
 * server/lib/logread.c (included, so its static array_literal() is the one
 * under test): a ReadAll / Subscribe filter's aggregate types become a
 * PostgreSQL text[] literal, its event-type prefixes a text[] of LIKE
 * patterns, both passed as query parameters ($4, $6).
 *
 * Input: byte 0 picks the mode, the rest is the data.
 *   mode even: the data is split at '\n' into at most 32 values, used both
 *     as plain values and as prefixes (arbitrary bytes, beyond anything
 *     logread_filter_check lets through);
 *   mode odd: the data is an EventFilter's wire bytes (protobuf-c unpack),
 *     checked with logread_filter_check first, as the handlers do.
 *
 * Each literal is parsed back with PostgreSQL's array_in rules for a
 * one-dimensional text[] (a reference parser below, written from
 * src/backend/utils/adt/arrayfuncs.c: '{', elements separated by ',',
 * double-quoted elements in which '\' escapes the next byte, '}'), and must
 * give exactly the input values, in order: no quote the parser would end
 * an element on, no separator, brace or NULL outside quotes. Each pattern
 * is then read with LIKE's rules (escape '\', '%' any run, '_' one
 * character) and must be the value's bytes literally, then one '%': no
 * wildcard the caller did not mean, no trailing lone escape (an error in
 * PostgreSQL). When the filter passed logread_filter_check the literals are
 * also valid UTF-8 (else PostgreSQL would refuse the parameter). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "logread.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VALUES 32

/* The elements parsed back (malloc'd texts in a malloc'd array). */
struct elems {
    char **v;
    size_t n, cap;
};

static void elems_free(struct elems *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
    memset(e, 0, sizeof(*e));
}

/* Parses lit as PostgreSQL would for text[]; aborts on anything that is not
 * '{' "quoted" (',' "quoted")* '}' exactly (our writer never emits
 * whitespace, unquoted elements or NULLs). */
static void parse_array(const char *lit, struct elems *e)
{
    const char *p = lit;

    memset(e, 0, sizeof(*e));
    FUZZ_CHECK(*p == '{', "literal does not start with '{': %s", lit);
    p++;
    for (;;) {
        char *out;
        size_t k = 0;

        FUZZ_CHECK(*p == '"', "unquoted element at offset %zu: %s", (size_t)(p - lit), lit);
        p++;
        if (e->n == e->cap) {
            e->cap = e->cap ? 2 * e->cap : 8;
            e->v = realloc(e->v, e->cap * sizeof(*e->v));
            FUZZ_CHECK(e->v != NULL, "out of memory");
        }
        out = malloc(strlen(p) + 1);
        FUZZ_CHECK(out != NULL, "out of memory");
        while (*p != '"') {
            FUZZ_CHECK(*p != '\0', "unterminated quoted element: %s", lit);
            if (*p == '\\') {
                p++;
                FUZZ_CHECK(*p != '\0', "escape at the end: %s", lit);
            }
            out[k++] = *p++;
        }
        out[k] = '\0';
        e->v[e->n++] = out;
        p++; /* closing quote */
        if (*p == ',') {
            p++;
            continue;
        }
        FUZZ_CHECK(*p == '}', "element followed by 0x%02x at offset %zu: %s", (unsigned char)*p,
                   (size_t)(p - lit), lit);
        p++;
        break;
    }
    FUZZ_CHECK(*p == '\0', "bytes after '}': %s", lit);
}

/* Checks that pattern, read by LIKE with escape '\', matches exactly the
 * strings starting with value. */
static void check_like(const char *pattern, const char *value)
{
    const char *p = pattern, *v = value;

    for (;;) {
        if (*p == '\\') {
            p++;
            FUZZ_CHECK(*p != '\0', "pattern ends with a lone escape: %s", pattern);
            FUZZ_CHECK(*p == *v, "pattern %s does not spell %s", pattern, value);
            p++;
            v++;
            continue;
        }
        if (*p == '%' && p[1] == '\0') {
            FUZZ_CHECK(*v == '\0', "pattern %s is shorter than %s", pattern, value);
            return;
        }
        FUZZ_CHECK(*p != '%' && *p != '_', "unescaped wildcard in pattern %s of %s", pattern,
                   value);
        FUZZ_CHECK(*p != '\0', "pattern %s does not end with '%%'", pattern);
        FUZZ_CHECK(*p == *v, "pattern %s does not spell %s", pattern, value);
        p++;
        v++;
    }
}

static void check_values(char **v, size_t n, int checked_ok)
{
    int oom = 0;
    char *plain = array_literal(v, n, 0, &oom);
    char *like = array_literal(v, n, 1, &oom);
    struct elems e;

    FUZZ_CHECK(!oom, "out of memory");
    if (n == 0) {
        FUZZ_CHECK(plain == NULL && like == NULL, "a literal for no values");
        return;
    }
    FUZZ_CHECK(plain != NULL && like != NULL, "no literal for %zu values", n);

    parse_array(plain, &e);
    FUZZ_CHECK(e.n == n, "%zu values came back as %zu elements: %s", n, e.n, plain);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(strcmp(e.v[i], v[i]) == 0, "value %zu \"%s\" came back as \"%s\"", i, v[i],
                   e.v[i]);
    elems_free(&e);

    parse_array(like, &e);
    FUZZ_CHECK(e.n == n, "%zu prefixes came back as %zu patterns: %s", n, e.n, like);
    for (size_t i = 0; i < n; i++)
        check_like(e.v[i], v[i]);
    elems_free(&e);

    if (checked_ok) {
        FUZZ_CHECK(text_is_utf8(plain, strlen(plain)), "literal of checked values not utf-8");
        FUZZ_CHECK(text_is_utf8(like, strlen(like)), "pattern literal of checked values not utf-8");
    }
    free(plain);
    free(like);
}

static void split_mode(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *v[MAX_VALUES];
    size_t n = 0, start = 0;

    FUZZ_CHECK(buf != NULL, "out of memory");
    memcpy(buf, data, size);
    buf[size] = '\0';
    if (memchr(buf, '\0', size) != NULL) { /* C strings: NUL cannot be in a value */
        free(buf);
        return;
    }
    for (size_t i = 0; i <= size && n < MAX_VALUES; i++)
        if (i == size || buf[i] == '\n') {
            buf[i] = '\0';
            v[n++] = buf + start;
            start = i + 1;
        }
    check_values(v, n, 0);
    free(buf);
}

static void filter_mode(const uint8_t *data, size_t size)
{
    Tally__V1__EventFilter *f = tally__v1__event_filter__unpack(NULL, size, data);
    trpc_status st;
    grpc_status_code code;

    if (f == NULL)
        return;
    code = logread_filter_check(f, &st);
    FUZZ_CHECK(code == GRPC_STATUS_OK || code == GRPC_STATUS_INVALID_ARGUMENT,
               "filter check answered %d", (int)code);
    if (code != GRPC_STATUS_OK)
        FUZZ_CHECK(fuzz_is_safe_message(st.msg), "filter message \"%s\"", st.msg);
    /* the literals are built only for checked filters, but must be right for any */
    check_values(f->aggregate_types, f->n_aggregate_types, code == GRPC_STATUS_OK);
    check_values(f->event_type_prefixes, f->n_event_type_prefixes, code == GRPC_STATUS_OK);
    tally__v1__event_filter__free_unpacked(f, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        filter_mode(data + 1, size - 1);
    else
        split_mode(data + 1, size - 1);
    return 0;
}
