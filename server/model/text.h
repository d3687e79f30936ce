/* text.h - validation of the free-text fields of requests and events (owner,
 * reference, reason, merchant reference, ...): strict UTF-8 and byte limits.
 * Pure and thread-safe. */
#ifndef SERVER_MODEL_TEXT_H
#define SERVER_MODEL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "tally_limits.h"
#include "trpc.h"

/* Bytes for a limited text field with its NUL */
#define TEXT_FIELD_SIZE (TALLY_MAX_TEXT_BYTES + 1)

/* True when the len bytes at s are well-formed UTF-8 (RFC 3629): no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequence, no stray continuation byte. NUL bytes count as valid (C strings
 * cannot hold them anyway). s may be NULL only when len is 0. */
bool text_is_utf8(const char *s, size_t len);

/* Checks a text field: NULL counts as "". Returns OK, or INVALID_ARGUMENT
 * with "<field> is required" (shorter than min_bytes when min_bytes is 1),
 * "<field> is too short (N bytes, at least M)", "<field> is too long (N bytes,
 * at most M)", "<field> is not valid utf-8". The message never quotes s. */
grpc_status_code text_check(const char *field, const char *s, size_t min_bytes, size_t max_bytes,
                            trpc_status *st);

/* text_check with 0..TALLY_MAX_TEXT_BYTES (optional reference or reason). */
grpc_status_code text_check_optional(const char *field, const char *s, trpc_status *st);

/* text_check with 1..TALLY_MAX_TEXT_BYTES (owner, merchant reference). */
grpc_status_code text_check_required(const char *field, const char *s, trpc_status *st);

/* Copies src (NULL = "") into dst of dst_size > 0 bytes, always
 * NUL-terminated. If src does not fit it is cut at a UTF-8 character
 * boundary. Returns true when all of src fitted. */
bool text_copy(char *dst, size_t dst_size, const char *src);

#endif /* SERVER_MODEL_TEXT_H */
