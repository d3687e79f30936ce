/* fuzz_scalars.c - libFuzzer target for the small parsers every request
 * goes through: money (server/model/money.h), uuids (uuid.h) and UTF-8
 * text (text.h), each against an independent reference written here.
 *
 * Input: byte 0 picks the mode (mod 6), byte 1 a currency (mod the ISO 4217
 * table) where one is needed, the rest is the data.
 *   0 money_parse(data, currency) == the reference grammar's value (128-bit
 *     arithmetic), and then money_format of it parses back to the same value
 *   1 money_format(int64 from data) for every buffer size: snprintf
 *     semantics, exactly digits(currency) decimals, parses back
 *   2 money_add / money_sub against 128-bit arithmetic
 *   3 uuid text: uuid_is_valid == the reference; from_string/to_string give
 *     the lower-cased text; uuid_normalize and uuid_check agree
 *   4 uuid bytes: to_string/from_string round trip, version and variant,
 *     uuid_v7_from_parts keeps time and sets version 7 and the RFC variant
 *   5 text_is_utf8 == a reference decoder (and jansson's own check);
 *     text_check's verdict follows from length and validity; text_copy
 *     never cuts a character and reports truncation
 * Error messages are non-empty printable ASCII (they never quote input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "money.h"
#include "text.h"
#include "uuid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__extension__ typedef __int128 i128;

#define OK GRPC_STATUS_OK

/* A NUL-terminated copy of data (free()); NULL when data holds a NUL. */
static char *cstr(const uint8_t *data, size_t size)
{
    char *s;

    if (memchr(data, '\0', size) != NULL)
        return NULL;
    s = malloc(size + 1);
    FUZZ_CHECK(s != NULL, "out of memory");
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static void check_error(grpc_status_code code, const trpc_status *st)
{
    FUZZ_CHECK(code == GRPC_STATUS_INVALID_ARGUMENT, "status %d: %s", (int)code, st->msg);
    FUZZ_CHECK(fuzz_is_safe_message(st->msg), "message \"%s\"", st->msg);
}

/* ---- money ---- */

/* The grammar of money.h: [+-]digits[.1..d digits] (no '.' when d == 0).
 * Returns 1 and *out, or 0. */
static int ref_parse(const char *s, int digits, int64_t *out)
{
    int neg = 0, frac = 0;
    i128 v = 0;
    const i128 cap = (i128)1 << 70; /* stop growing long before overflow */

    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!(*s >= '0' && *s <= '9'))
        return 0;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((v = v * 10 + (*s - '0')) > cap)
            v = cap;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        for (; *s >= '0' && *s <= '9'; s++, frac++)
            if ((v = v * 10 + (*s - '0')) > cap)
                v = cap;
    }
    if (*s != '\0' || frac > digits)
        return 0;
    for (; frac < digits; frac++)
        if ((v = v * 10) > cap)
            v = cap;
    if (neg)
        v = -v;
    if (v < INT64_MIN || v > INT64_MAX)
        return 0;
    *out = (int64_t)v;
    return 1;
}

static void check_format(int64_t v, const char *cur)
{
    char full[MONEY_FORMAT_SIZE], small[MONEY_FORMAT_SIZE];
    int digits = money_currency_digits(cur), n = money_format(v, cur, full, sizeof(full));
    const char *dot = strchr(full, '.');
    int64_t back = 0;
    trpc_status st;

    FUZZ_CHECK(n >= 0 && (size_t)n == strlen(full) && n < MONEY_FORMAT_SIZE, "format length %d", n);
    if (digits == 0)
        FUZZ_CHECK(dot == NULL, "%s has no minor unit: %s", cur, full);
    else
        FUZZ_CHECK(dot != NULL && (int)strlen(dot + 1) == digits, "%s: %s", cur, full);
    FUZZ_CHECK(money_parse(full, cur, &back, &st) == OK && back == v,
               "format %lld %s = %s parses as %lld (%s)", (long long)v, cur, full, (long long)back,
               st.msg);
    for (size_t size = 0; size <= (size_t)n + 1; size++) {
        memset(small, 'x', sizeof(small));
        FUZZ_CHECK(money_format(v, cur, small, size) == n, "size %zu changed the length", size);
        if (size > 0)
            FUZZ_CHECK(strlen(small) == (size > (size_t)n ? (size_t)n : size - 1) &&
                           strncmp(small, full, strlen(small)) == 0,
                       "size %zu wrote %s of %s", size, small, full);
        else
            FUZZ_CHECK(small[0] == 'x', "size 0 wrote");
    }
}

static void money_parse_mode(const char *cur, const uint8_t *data, size_t size)
{
    char *text = cstr(data, size);
    int64_t got = 0x5a5a, want = 0;
    trpc_status st;
    grpc_status_code code;
    int ok;

    if (text == NULL)
        return;
    code = money_parse(text, cur, &got, &st);
    ok = ref_parse(text, money_currency_digits(cur), &want);
    FUZZ_CHECK((code == OK) == ok, "\"%s\" %s: money_parse %s, reference %s", text, cur,
               trpc_status_code_name(code), ok ? "ok" : "refuses");
    if (code == OK) {
        FUZZ_CHECK(got == want, "\"%s\" %s: %lld, reference %lld", text, cur, (long long)got,
                   (long long)want);
        check_format(got, cur);
    } else {
        check_error(code, &st);
        FUZZ_CHECK(got == 0x5a5a, "a refused parse wrote its output");
    }
    free(text);
}

static int64_t int64_of(const uint8_t *data, size_t size)
{
    uint64_t u = 0;

    for (size_t i = 0; i < size && i < 8; i++)
        u = u << 8 | data[i];
    return (int64_t)u;
}

static void money_format_mode(const char *cur, const uint8_t *data, size_t size)
{
    char buf[MONEY_FORMAT_SIZE];

    check_format(int64_of(data, size), cur);
    FUZZ_CHECK(money_format(1, "XXX", buf, sizeof(buf)) == -1 && buf[0] == '\0',
               "an invalid currency formats");
}

static void money_arith_mode(const uint8_t *data, size_t size)
{
    int64_t a, b, r = 7;
    i128 sum, diff;

    if (size < 16)
        return;
    a = int64_of(data, 8);
    b = int64_of(data + 8, 8);
    sum = (i128)a + b;
    diff = (i128)a - b;
    if (sum < INT64_MIN || sum > INT64_MAX)
        FUZZ_CHECK(!money_add(a, b, &r) && r == 7, "add overflow not caught");
    else
        FUZZ_CHECK(money_add(a, b, &r) && r == (int64_t)sum, "add");
    r = 7;
    if (diff < INT64_MIN || diff > INT64_MAX)
        FUZZ_CHECK(!money_sub(a, b, &r) && r == 7, "sub overflow not caught");
    else
        FUZZ_CHECK(money_sub(a, b, &r) && r == (int64_t)diff, "sub");
}

/* ---- uuid ---- */

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int ref_uuid_valid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++)
        if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : !is_hex(s[i]))
            return 0;
    return 1;
}

static void uuid_text_mode(const uint8_t *data, size_t size)
{
    char *s = cstr(data, size), lower[UUID_STR_SIZE], out[UUID_STR_SIZE], norm[UUID_STR_SIZE];
    uint8_t bytes[16], zero[16] = {0};
    int valid;
    trpc_status st;
    grpc_status_code code;

    if (s == NULL)
        return;
    valid = ref_uuid_valid(s);
    FUZZ_CHECK(uuid_is_valid(s) == valid, "uuid_is_valid(\"%s\") = %d", s, !valid);
    memset(bytes, 0xa5, sizeof(bytes));
    FUZZ_CHECK((uuid_from_string(s, bytes) == 0) == valid, "uuid_from_string(\"%s\")", s);
    code = uuid_check("id", s, out, &st);
    if (!valid) {
        for (size_t i = 0; i < 16; i++)
            FUZZ_CHECK(bytes[i] == 0xa5, "a refused parse wrote its output");
        FUZZ_CHECK(uuid_normalize(s, norm) == -1 && norm[0] == '\0', "normalize of invalid");
        check_error(code, &st);
        FUZZ_CHECK(out[0] == '\0', "uuid_check left output");
        free(s);
        return;
    }
    for (int i = 0; i < 37; i++)
        lower[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
    uuid_to_string(bytes, out);
    FUZZ_CHECK(strcmp(out, lower) == 0, "%s -> %s", s, out);
    FUZZ_CHECK(uuid_normalize(s, norm) == 0 && strcmp(norm, lower) == 0, "normalize %s", s);
    code = uuid_check("id", s, out, &st);
    if (memcmp(bytes, zero, 16) == 0) {
        check_error(code, &st);
    } else {
        FUZZ_CHECK(code == OK && strcmp(out, lower) == 0, "uuid_check %s: %s", s, st.msg);
    }
    free(s);
}

static void uuid_bytes_mode(const uint8_t *data, size_t size)
{
    uint8_t in[16] = {0}, back[16], v7[16], rnd[10] = {0};
    char text[UUID_STR_SIZE];
    uint64_t ms;

    memcpy(in, data, size < 16 ? size : 16);
    uuid_to_string(in, text);
    FUZZ_CHECK(ref_uuid_valid(text) && uuid_is_valid(text), "to_string gave %s", text);
    for (int i = 0; i < 36; i++)
        FUZZ_CHECK(!(text[i] >= 'A' && text[i] <= 'F'), "upper case in %s", text);
    FUZZ_CHECK(uuid_from_string(text, back) == 0 && memcmp(in, back, 16) == 0, "round trip %s",
               text);
    FUZZ_CHECK(uuid_version(in) == in[6] >> 4, "version of %s", text);
    FUZZ_CHECK(uuid_is_rfc_variant(in) == ((in[8] & 0xc0) == 0x80), "variant of %s", text);

    ms = (uint64_t)int64_of(data, size);
    if (size > 8)
        memcpy(rnd, data + 8, size - 8 < 10 ? size - 8 : 10);
    uuid_v7_from_parts(ms, rnd, v7);
    FUZZ_CHECK(uuid_version(v7) == 7 && uuid_is_rfc_variant(v7), "v7 version/variant");
    FUZZ_CHECK(uuid_v7_unix_ms(v7) == (ms & 0xffffffffffffULL), "v7 time");
}

/* ---- UTF-8 ---- */

/* Decodes one code point the classic way (lead byte pattern, continuation
 * bytes, then range checks); returns its length or 0. */
static size_t ref_utf8_seq(const unsigned char *s, size_t len)
{
    size_t n;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
        return 0; /* overlong */
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

static int ref_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = ref_utf8_seq(s + i, len - i);

        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

static void utf8_mode(const uint8_t *data, size_t size)
{
    int valid = ref_utf8(data, size);
    json_t *j;
    char *s, dst[64];
    trpc_status st;
    size_t len;

    FUZZ_CHECK(text_is_utf8((const char *)data, size) == valid, "text_is_utf8 says %d", !valid);
    j = json_stringn((const char *)data, size);
    FUZZ_CHECK((j != NULL) == valid, "jansson says %s", j ? "valid" : "invalid");
    json_decref(j);

    if ((s = cstr(data, size)) == NULL)
        return;
    len = strlen(s);
    for (size_t max = 0; max <= 8 && max <= len + 1; max += 4) {
        grpc_status_code code = text_check("text", s, 1, max, &st);
        int want = len >= 1 && len <= max && valid;

        FUZZ_CHECK((code == OK) == want, "text_check(len %zu, max %zu, utf8 %d) = %s", len, max,
                   valid, trpc_status_code_name(code));
        if (code != OK)
            check_error(code, &st);
    }
    for (size_t cap = 1; cap <= sizeof(dst); cap += 7) {
        bool all = text_copy(dst, cap, s);
        size_t n = strlen(dst);

        FUZZ_CHECK(all == (len < cap), "text_copy(%zu) of %zu bytes says %d", cap, len, all);
        FUZZ_CHECK(n < cap && strncmp(dst, s, n) == 0, "text_copy is not a prefix");
        if (valid) {
            FUZZ_CHECK(text_is_utf8(dst, n), "text_copy cut a character");
            FUZZ_CHECK(all || n + 4 > cap - 1, "text_copy dropped more than a character");
        }
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n_cur;
    const struct money_currency *table = money_currency_table(&n_cur);
    const char *cur;

    if (size < 2)
        return 0;
    cur = table[data[1] % n_cur].code;
    switch (data[0] % 6) {
    case 0:
        money_parse_mode(cur, data + 2, size - 2);
        break;
    case 1:
        money_format_mode(cur, data + 2, size - 2);
        break;
    case 2:
        money_arith_mode(data + 2, size - 2);
        break;
    case 3:
        uuid_text_mode(data + 2, size - 2);
        break;
    case 4:
        uuid_bytes_mode(data + 2, size - 2);
        break;
    default:
        utf8_mode(data + 2, size - 2);
        break;
    }
    return 0;
}
