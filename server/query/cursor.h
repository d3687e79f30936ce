/* cursor.h - opaque page tokens for ListAccounts and ListEntries.
 *
 * A token is base64url of a small JSON object: the kind of list, the
 * paging key of the last row returned, and a fingerprint (SHA-256, first
 * 16 bytes) of the tenant and every request parameter that shapes the list
 * (filters, direction, time range). Decoding checks all of it: a token that
 * is not ours, was made for another request or tenant, or carries a key of
 * the wrong type is INVALID_ARGUMENT ("invalid page_token"); its key values
 * then reach SQL only as typed parameters, and every query is scoped to the
 * caller's tenant, so a forged token can neither break a query nor reach
 * another tenant's rows. */
#ifndef SERVER_QUERY_CURSOR_H
#define SERVER_QUERY_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "trpc.h"

#define CURSOR_FP_LEN   16
#define CURSOR_MAX_KEYS 4
#define CURSOR_KEY_SIZE 64

/* The fingerprint of a list request: SHA-256 over kind, tenant and the
 * n parameter strings (NULL counts as absent, distinct from ""). */
void cursor_fingerprint(const char *kind, const char *tenant_id, const char *const *params,
                        size_t n, uint8_t fp[CURSOR_FP_LEN]);

/* A token for keys[0..n) (n <= CURSOR_MAX_KEYS, each < CURSOR_KEY_SIZE
 * bytes), in the call's arena. */
char *cursor_encode(trpc_call *call, const char *kind, const uint8_t fp[CURSOR_FP_LEN],
                    const char *const *keys, size_t n);

/* Decodes token into keys (n expected). OK, or INVALID_ARGUMENT "invalid
 * page_token" for anything else. */
grpc_status_code cursor_decode(const char *token, const char *kind, const uint8_t fp[CURSOR_FP_LEN],
                               char keys[][CURSOR_KEY_SIZE], size_t n, trpc_status *st);

#endif /* SERVER_QUERY_CURSOR_H */
