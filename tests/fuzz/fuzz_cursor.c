/* fuzz_cursor.c - libFuzzer target for the page tokens of ListAccounts and
 * ListEntries (server/query/cursor.c, compiled into this target).
 *
 * Input: byte 0 picks the mode and the list (bit 0: decode / round trip;
 * bit 1: "accounts" with 2 keys / "entries" with 1), the rest is the data.
 *   decode: the data is a page_token from a client. cursor_decode answers OK
 *     or INVALID_ARGUMENT with a client-safe message; on OK every key is
 *     shorter than CURSOR_KEY_SIZE, and the keys re-encode to a token that
 *     decodes to the same keys.
 *   round trip: the data, split at '\n', gives the keys. A token of valid
 *     UTF-8 keys (what the server makes them from: ids, integers) exists
 *     unless its JSON would pass 512 bytes, uses only the base64url
 *     alphabet without padding, decodes to exactly the keys, and is refused
 *     for another list, another request (fingerprint) or another key count.
 *
 * cursor_encode allocates in the call's arena: the trpc_call_strdup below
 * stands in for the runtime's (a list freed after each input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cursor.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the arena stand-in ---- */

#define ARENA_MAX 16

static char *arena[ARENA_MAX];
static size_t n_arena;

char *trpc_call_strdup(trpc_call *call, const char *s)
{
    char *copy = strdup(s);

    (void)call;
    FUZZ_CHECK(copy != NULL && n_arena < ARENA_MAX, "arena");
    arena[n_arena++] = copy;
    return copy;
}

static void arena_free(void)
{
    while (n_arena > 0)
        free(arena[--n_arena]);
}

/* ---- checks ---- */

static const char *const params_a[3] = {"OPEN", "owner", NULL};
static const char *const params_b[3] = {"OPEN", "owner", "EUR"};
#define TENANT "0190a0b0-c0d0-7000-8000-0000000000aa"

static int utf8_ok(const char *s)
{
    /* jansson's own rule decides what a token can hold */
    json_t *j = json_string(s);
    int ok = j != NULL;

    json_decref(j);
    return ok;
}

static void check_refused(const char *token, const char *kind, const uint8_t *fp, size_t n,
                          const char *why)
{
    char keys[CURSOR_MAX_KEYS + 1][CURSOR_KEY_SIZE];
    trpc_status st;
    grpc_status_code code = cursor_decode(token, kind, fp, keys, n, &st);

    FUZZ_CHECK(code == GRPC_STATUS_INVALID_ARGUMENT, "token accepted for %s: %s", why, token);
    FUZZ_CHECK(fuzz_is_safe_message(st.msg), "message \"%s\"", st.msg);
}

static void round_trip(const char *kind, const uint8_t *fp, const char *const *keys, size_t n)
{
    char back[CURSOR_MAX_KEYS][CURSOR_KEY_SIZE];
    uint8_t other_fp[CURSOR_FP_LEN];
    trpc_status st;
    size_t json_bound = 40 + 2 * CURSOR_FP_LEN;
    int all_utf8 = 1;
    char *token;

    for (size_t i = 0; i < n; i++) {
        json_bound += 6 * strlen(keys[i]) + 3;
        all_utf8 = all_utf8 && utf8_ok(keys[i]);
    }
    token = cursor_encode(NULL, kind, fp, keys, n);
    if (!all_utf8)
        return; /* the server's keys are always ASCII; no crash is all we ask */
    if (token == NULL) {
        FUZZ_CHECK(json_bound > 512, "no token for %zu short keys", n);
        return;
    }
    for (const char *p = token; *p; p++)
        FUZZ_CHECK((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                       (*p >= '0' && *p <= '9') || *p == '-' || *p == '_',
                   "token character 0x%02x: %s", (unsigned char)*p, token);
    FUZZ_CHECK(cursor_decode(token, kind, fp, back, n, &st) == GRPC_STATUS_OK,
               "our own token is refused: %s (%s)", token, st.msg);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(strcmp(back[i], keys[i]) == 0, "key %zu \"%s\" came back as \"%s\"", i, keys[i],
                   back[i]);
    check_refused(token, strcmp(kind, "accounts") == 0 ? "entries" : "accounts", fp, n,
                  "another list");
    memcpy(other_fp, fp, CURSOR_FP_LEN);
    other_fp[CURSOR_FP_LEN - 1] ^= 1;
    check_refused(token, kind, other_fp, n, "another request");
    check_refused(token, kind, fp, n + 1, "more keys");
    if (n > 1)
        check_refused(token, kind, fp, n - 1, "fewer keys");
}

static void decode_mode(const char *kind, const uint8_t *fp, size_t n, const char *token)
{
    char keys[CURSOR_MAX_KEYS][CURSOR_KEY_SIZE];
    const char *ptrs[CURSOR_MAX_KEYS];
    trpc_status st;
    grpc_status_code code = cursor_decode(token, kind, fp, keys, n, &st);

    if (code != GRPC_STATUS_OK) {
        FUZZ_CHECK(code == GRPC_STATUS_INVALID_ARGUMENT, "decode answered %d", (int)code);
        FUZZ_CHECK(fuzz_is_safe_message(st.msg), "message \"%s\"", st.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(strlen(keys[i]) < CURSOR_KEY_SIZE, "key %zu too long", i);
        ptrs[i] = keys[i];
    }
    round_trip(kind, fp, ptrs, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t fp[CURSOR_FP_LEN];
    const char *kind;
    size_t n;
    char *text;

    if (size < 1 || memchr(data + 1, '\0', size - 1) != NULL)
        return 0;
    kind = data[0] & 2 ? "entries" : "accounts";
    n = data[0] & 2 ? 1 : 2;
    cursor_fingerprint(kind, TENANT, data[0] & 4 ? params_b : params_a, 3, fp);
    text = malloc(size);
    FUZZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] & 1) {
        const char *keys[CURSOR_MAX_KEYS];
        size_t k = 0;
        char *p = text;

        /* n keys, each cut to CURSOR_KEY_SIZE - 1 bytes (the contract) */
        while (k < n) {
            char *nl = strchr(p, '\n');

            if (nl)
                *nl = '\0';
            if (strlen(p) >= CURSOR_KEY_SIZE)
                p[CURSOR_KEY_SIZE - 1] = '\0';
            keys[k++] = p;
            if (nl == NULL)
                break;
            p = nl + 1;
        }
        while (k < n)
            keys[k++] = "";
        round_trip(kind, fp, keys, n);
    } else {
        decode_mode(kind, fp, n, text);
    }
    free(text);
    arena_free();
    return 0;
}
