/* uuid.h - UUIDs in canonical text form, and UUIDv7 generation (RFC 9562).
 *
 * Text form: 36 characters "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", hex digits
 * of either case on input, always lower case on output (as PostgreSQL prints
 * the uuid type). Names avoid libuuid's (uuid_parse, uuid_generate, ...). */
#ifndef SERVER_MODEL_UUID_H
#define SERVER_MODEL_UUID_H

#include <stdbool.h>
#include <stdint.h>

#include "tally_limits.h"
#include "trpc.h"

/* Bytes for the text form with its NUL */
#define UUID_STR_SIZE (TALLY_UUID_STR_LEN + 1)

/* True when s is a UUID in canonical text form (any version and variant,
 * either case). s may be NULL (false). */
bool uuid_is_valid(const char *s);

/* Parses the canonical text form into 16 bytes. Returns 0, or -1 (out
 * untouched) when s is not valid. */
int uuid_from_string(const char *s, uint8_t out[16]);

/* Writes the lower-case text form of 16 bytes into out (36 chars + NUL). */
void uuid_to_string(const uint8_t in[16], char out[UUID_STR_SIZE]);

/* Copies a valid UUID in lower case into out. Returns 0, or -1 (out set to
 * "") when in is not valid. in and out may be the same buffer. */
int uuid_normalize(const char *in, char out[UUID_STR_SIZE]);

/* Checks an id field of a request and writes its lower-case form to out.
 * Returns OK, or INVALID_ARGUMENT "<field> is required" (NULL or ""),
 * "<field> is not a valid uuid", "<field> must not be the nil uuid"; then out
 * is "". */
grpc_status_code uuid_check(const char *field, const char *s, char out[UUID_STR_SIZE],
                            trpc_status *st);

/* The version nibble (7 for UUIDv7) and whether the variant is RFC 9562's
 * (binary 10). */
int uuid_version(const uint8_t in[16]);
bool uuid_is_rfc_variant(const uint8_t in[16]);

/* The 48-bit Unix time in milliseconds of a UUIDv7 (meaningless for other
 * versions). */
uint64_t uuid_v7_unix_ms(const uint8_t in[16]);

/* A new UUIDv7: 48-bit Unix time in ms (CLOCK_REALTIME), then 74 random bits
 * from OpenSSL RAND_bytes, with version and variant set. Within a process
 * the ids are strictly increasing (byte-wise and as text), also when several
 * are made in the same millisecond or the clock steps back: the random part
 * is then incremented by a random amount (RFC 9562 6.2 method 2) and the
 * timestamp runs ahead of the clock if needed. Thread-safe (a mutex guards
 * the last id). Returns 0, or -1 when RAND_bytes fails (out untouched). */
int uuid_v7_new_bytes(uint8_t out[16]);

/* Same in text form (36 chars + NUL). Returns 0 or -1 (out set to ""). */
int uuid_v7_new(char out[UUID_STR_SIZE]);

/* Pure building block of uuid_v7_new_bytes, for tests and deterministic ids:
 * the UUIDv7 with this timestamp (low 48 bits used) and these 10 random
 * bytes (74 bits used: version and variant bits overwrite the rest). */
void uuid_v7_from_parts(uint64_t unix_ms, const uint8_t rand[10], uint8_t out[16]);

#endif /* SERVER_MODEL_UUID_H */
