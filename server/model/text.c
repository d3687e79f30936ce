/* text.c - strict UTF-8 validation and the limits of free-text fields. */
#include "text.h"

#include <stdint.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s[0..len), or 0 when it is not
 * one. Follows the table of well-formed byte sequences in Unicode 15 §3.9
 * (D92): the second byte's range excludes overlongs (E0, F0), surrogates
 * (ED) and code points above U+10FFFF (F4). */
static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* U+D800..U+DFFF are surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 (overlong ASCII), F5..FF */
    }
    if (len < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

bool text_is_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t n = utf8_seq_len(p + i, len - i);

        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

grpc_status_code text_check(const char *field, const char *s, size_t min_bytes, size_t max_bytes,
                            trpc_status *st)
{
    size_t len = s ? strlen(s) : 0;

    if (len < min_bytes) {
        if (min_bytes == 1)
            return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s is required", field);
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "%s is too short (%zu bytes, at least %zu)", field, len, min_bytes);
    }
    if (len > max_bytes)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "%s is too long (%zu bytes, at most %zu)", field, len, max_bytes);
    if (!text_is_utf8(s, len))
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s is not valid utf-8", field);
    return trpc_status_set(st, GRPC_STATUS_OK, "ok");
}

grpc_status_code text_check_optional(const char *field, const char *s, trpc_status *st)
{
    return text_check(field, s, 0, TALLY_MAX_TEXT_BYTES, st);
}

grpc_status_code text_check_required(const char *field, const char *s, trpc_status *st)
{
    return text_check(field, s, 1, TALLY_MAX_TEXT_BYTES, st);
}

bool text_copy(char *dst, size_t dst_size, const char *src)
{
    size_t len = src ? strlen(src) : 0;
    size_t n = len;

    if (dst_size == 0)
        return len == 0;
    if (n >= dst_size) {
        n = dst_size - 1;
        /* back up over continuation bytes so no character is cut in half */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return n == len;
}
