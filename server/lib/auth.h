/* auth.h - bearer-token authentication.
 *
 * A token is "tly_" followed by the unpadded base64url form of 32 random
 * bytes (OpenSSL RAND_bytes): 47 characters. Only its SHA-256 is stored
 * (api_tokens.token_hash); the token itself is shown once, at creation, and
 * never logged. A token resolves to its tenant: the tenant of every call is
 * the token's, never one the caller names.
 *
 * Verification goes through an in-process cache (shared by all threads):
 * valid tokens are remembered for ttl_ms, unknown and revoked ones for
 * negative_ttl_ms, so a revocation takes effect everywhere within ttl_ms. */
#ifndef SERVER_AUTH_H
#define SERVER_AUTH_H

#include <stddef.h>

#include <libpq-fe.h>

#include "trpc.h"

#define AUTH_TOKEN_PREFIX "tly_"
#define AUTH_TOKEN_LEN    47 /* "tly_" + 43 base64url characters */
#define AUTH_UUID_LEN     36
#define AUTH_NAME_CHARS   128 /* api_tokens.name: 1..128 characters */
#define AUTH_NAME_MAX     512 /* ... of UTF-8: at most this many bytes */

/* Who a verified token is. Plain data, copied out (no ownership). */
struct auth_identity {
    char tenant_id[AUTH_UUID_LEN + 1];
    char token_id[AUTH_UUID_LEN + 1];
    char token_name[AUTH_NAME_MAX + 1];
};

typedef struct auth_cache auth_cache;

/* A cache for auth_verify. ttl_ms (> 0) bounds how long a revoked token keeps
 * working; negative_ttl_ms (>= 0, 0 = not cached) how long an unknown token
 * stays rejected without a database lookup (a token is only ever created
 * fresh, so this delays nothing legitimate). slots (> 0): capacity; a full
 * cache overwrites. NULL on bad arguments or OOM. Thread-safe. */
auth_cache *auth_cache_new(int ttl_ms, int negative_ttl_ms, size_t slots);

/* NULL is a no-op. No thread may be using the cache. */
void auth_cache_free(auth_cache *cache);

/* Forgets every entry (e.g. after revoking in this process). Thread-safe. */
void auth_cache_clear(auth_cache *cache);

/* Defaults used by the daemons: 5 s, 2 s, 1024 slots (about 600 KiB). */
#define AUTH_CACHE_TTL_MS          5000
#define AUTH_CACHE_NEGATIVE_TTL_MS 2000
#define AUTH_CACHE_SLOTS           1024

/* Extracts the token from an `authorization` metadata value ("Bearer <token>",
 * scheme case-insensitive, one or more spaces; value not NUL-terminated,
 * len bytes). On OK *token points into value (*token_len bytes). Otherwise
 * UNAUTHENTICATED with st set: "missing bearer token" (value NULL, empty,
 * another scheme, nothing after the scheme) or "malformed bearer token"
 * (characters outside RFC 6750's b64token, trailing junk, > 512 bytes). */
grpc_status_code auth_parse_bearer(const char *value, size_t len, const char **token,
                                   size_t *token_len, trpc_status *st);

/* True (1) when name is a valid token or tenant name: 1..AUTH_NAME_CHARS
 * characters of well-formed UTF-8 without control characters. NULL: false.
 * Pure. */
int auth_name_is_valid(const char *name);

/* True (1) when token (len bytes) has the shape of a tally token. Pure. */
int auth_token_is_well_formed(const char *token, size_t len);

/* Resolves a token to its identity: the cache first (cache may be NULL: no
 * caching), then api_tokens (not revoked) through conn. Returns OK with *id
 * filled; UNAUTHENTICATED "invalid or revoked token" (malformed, unknown or
 * revoked); UNAVAILABLE/INTERNAL "could not verify token" when the database
 * fails (logged, not cached). Never logs the token. Thread-safe with one conn
 * per thread. */
grpc_status_code auth_verify(auth_cache *cache, PGconn *conn, const char *token, size_t len,
                             struct auth_identity *id, trpc_status *st);

/* auth_parse_bearer, then auth_verify: the whole check for one call, given
 * the `authorization` metadata value (NULL when absent). An UNAUTHENTICATED
 * result is logged at warn level with its reason (and, for a well-formed
 * token, the first 4 bytes of its SHA-256), never with the token. */
grpc_status_code auth_authenticate(auth_cache *cache, PGconn *conn, const char *value, size_t len,
                                   struct auth_identity *id, trpc_status *st);

/* Creates a token for tenant_id (a uuid) named name (auth_name_is_valid):
 * writes the token (NUL-terminated) into out_token, to be shown once, and its
 * id into out_token_id (may be NULL). Returns OK; NOT_FOUND "tenant not
 * found"; INVALID_ARGUMENT for a malformed tenant id or name; INTERNAL when
 * no randomness is available; a database code otherwise. */
grpc_status_code auth_token_create(PGconn *conn, const char *tenant_id, const char *name,
                                   char out_token[AUTH_TOKEN_LEN + 1],
                                   char out_token_id[AUTH_UUID_LEN + 1], trpc_status *st);

/* Revokes a token by id (idempotent: revoking a revoked token is OK and keeps
 * the first revocation time). Other processes stop accepting it within their
 * cache TTL. Returns OK; NOT_FOUND "token not found"; INVALID_ARGUMENT for a
 * malformed id; a database code otherwise. */
grpc_status_code auth_token_revoke(PGconn *conn, const char *token_id, trpc_status *st);

/* SHA-256 of a token (what api_tokens.token_hash stores). Returns 0, or -1
 * when libcrypto fails (out is then unusable). */
int auth_token_hash(const char *token, size_t len, unsigned char out[32]);

#endif /* SERVER_AUTH_H */
