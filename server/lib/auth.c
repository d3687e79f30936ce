/* auth.c - see auth.h.
 *
 * The cache is direct-mapped: the key is already a SHA-256, so its first
 * bytes pick the slot and a collision simply replaces the older entry (a
 * cache miss costs one indexed lookup). Entries hold the hash, never the
 * token; the full hash is compared with CRYPTO_memcmp. */
#include "auth.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "pg.h"
#include "text.h"
#include "uuid.h"

#define BEARER_MAX 512 /* longest token auth_parse_bearer accepts */

struct cache_entry {
    unsigned char hash[32];
    int used;
    int positive;
    uint64_t expires_ms; /* CLOCK_MONOTONIC */
    struct auth_identity id;
};

struct auth_cache {
    pthread_mutex_t mu;
    int ttl_ms;
    int negative_ttl_ms;
    size_t slots;
    struct cache_entry *entries;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

auth_cache *auth_cache_new(int ttl_ms, int negative_ttl_ms, size_t slots)
{
    auth_cache *c;

    if (ttl_ms <= 0 || negative_ttl_ms < 0 || slots == 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->entries = calloc(slots, sizeof(c->entries[0]));
    if (c->entries == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->entries);
        free(c);
        return NULL;
    }
    c->ttl_ms = ttl_ms;
    c->negative_ttl_ms = negative_ttl_ms;
    c->slots = slots;
    return c;
}

void auth_cache_free(auth_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->entries);
    free(c);
}

void auth_cache_clear(auth_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    memset(c->entries, 0, c->slots * sizeof(c->entries[0]));
    pthread_mutex_unlock(&c->mu);
}

static struct cache_entry *slot_of(auth_cache *c, const unsigned char hash[32])
{
    uint64_t k = 0;

    for (int i = 0; i < 8; i++)
        k = (k << 8) | hash[i];
    return &c->entries[k % c->slots];
}

/* 1 = hit (positive: *id filled), 0 = hit (negative), -1 = miss */
static int cache_get(auth_cache *c, const unsigned char hash[32], struct auth_identity *id)
{
    struct cache_entry *e;
    int r = -1;

    if (c == NULL)
        return -1;
    pthread_mutex_lock(&c->mu);
    e = slot_of(c, hash);
    if (e->used && now_ms() < e->expires_ms && CRYPTO_memcmp(e->hash, hash, 32) == 0) {
        r = e->positive;
        if (r)
            *id = e->id;
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

static void cache_put(auth_cache *c, const unsigned char hash[32], const struct auth_identity *id)
{
    struct cache_entry *e;
    int ttl;

    if (c == NULL)
        return;
    ttl = id ? c->ttl_ms : c->negative_ttl_ms;
    if (ttl <= 0)
        return;
    pthread_mutex_lock(&c->mu);
    e = slot_of(c, hash);
    memcpy(e->hash, hash, 32);
    e->used = 1;
    e->positive = id != NULL;
    e->expires_ms = now_ms() + (uint64_t)ttl;
    if (id != NULL)
        e->id = *id;
    else
        memset(&e->id, 0, sizeof(e->id));
    pthread_mutex_unlock(&c->mu);
}

int auth_token_hash(const char *token, size_t len, unsigned char out[32])
{
    unsigned int n = 0;

    return EVP_Digest(token, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : -1;
}

static int is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : 63;
}

int auth_token_is_well_formed(const char *token, size_t len)
{
    const size_t plen = sizeof(AUTH_TOKEN_PREFIX) - 1;

    if (token == NULL || len != AUTH_TOKEN_LEN || memcmp(token, AUTH_TOKEN_PREFIX, plen) != 0)
        return 0;
    for (size_t i = plen; i < len; i++)
        if (!is_b64url(token[i]))
            return 0;
    /* 43 characters carry 258 bits for 256: the last two must be zero */
    return (b64url_value(token[len - 1]) & 3) == 0;
}

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int is_b64token(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len && (is_b64url(s[i]) || s[i] == '.' || s[i] == '~' || s[i] == '+' || s[i] == '/'))
        i++;
    if (i == 0)
        return 0;
    while (i < len && s[i] == '=')
        i++;
    return i == len;
}

grpc_status_code auth_parse_bearer(const char *value, size_t len, const char **token,
                                   size_t *token_len, trpc_status *st)
{
    static const char scheme[] = "bearer";
    const size_t slen = sizeof(scheme) - 1;
    size_t i;

    if (value == NULL || len <= slen || value[slen] != ' ')
        return trpc_status_set(st, GRPC_STATUS_UNAUTHENTICATED, "missing bearer token");
    for (i = 0; i < slen; i++) {
        char c = value[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[i])
            return trpc_status_set(st, GRPC_STATUS_UNAUTHENTICATED, "missing bearer token");
    }
    while (i < len && value[i] == ' ')
        i++;
    /* HTTP field values carry no trailing whitespace; tolerate it, nothing else */
    while (len > i && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (i == len)
        return trpc_status_set(st, GRPC_STATUS_UNAUTHENTICATED, "missing bearer token");
    if (len - i > BEARER_MAX || !is_b64token(value + i, len - i))
        return trpc_status_set(st, GRPC_STATUS_UNAUTHENTICATED, "malformed bearer token");
    *token = value + i;
    *token_len = len - i;
    return GRPC_STATUS_OK;
}

grpc_status_code auth_verify(auth_cache *cache, PGconn *conn, const char *token, size_t len,
                             struct auth_identity *id, trpc_status *st)
{
    static const char sql[] = "SELECT token_id, tenant_id, name FROM api_tokens"
                              " WHERE token_hash = $1 AND revoked_at IS NULL";
    unsigned char hash[32];
    const char *params[1] = {(const char *)hash};
    const int lengths[1] = {32};
    const int formats[1] = {1};
    struct auth_identity found;
    PGresult *res = NULL;
    grpc_status_code code;
    int hit;

    if (!auth_token_is_well_formed(token, len))
        return trpc_status_set(st, GRPC_STATUS_UNAUTHENTICATED, "invalid or revoked token");
    if (auth_token_hash(token, len, hash) != 0) {
        log_error("auth: SHA-256 failed");
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "could not verify token");
    }
    hit = cache_get(cache, hash, id);
    if (hit == 1)
        return GRPC_STATUS_OK;
    if (hit == 0)
        return trpc_status_set(st, GRPC_STATUS_UNAUTHENTICATED, "invalid or revoked token");

    res = PQexecParams(conn, sql, 1, NULL, params, lengths, formats, 0);
    code = pg_check(res, PGRES_TUPLES_OK, 3, st, "could not verify token", "auth: verify token");
    if (code != GRPC_STATUS_OK)
        goto out; /* not cached: the next call asks again */
    if (PQntuples(res) == 0) {
        cache_put(cache, hash, NULL);
        code = trpc_status_set(st, GRPC_STATUS_UNAUTHENTICATED, "invalid or revoked token");
        goto out;
    }
    memset(&found, 0, sizeof(found));
    text_copy(found.token_id, sizeof(found.token_id), PQgetvalue(res, 0, 0));
    text_copy(found.tenant_id, sizeof(found.tenant_id), PQgetvalue(res, 0, 1));
    text_copy(found.token_name, sizeof(found.token_name), PQgetvalue(res, 0, 2));
    cache_put(cache, hash, &found);
    *id = found;
out:
    PQclear(res);
    return code;
}

/* A rejected call is logged with the reason and, for a token of the right
 * shape, the first 4 bytes of its SHA-256 (enough to find the row in
 * api_tokens.token_hash, useless for guessing the token); never the token. */
static void log_rejected(const char *token, size_t len, const trpc_status *st)
{
    unsigned char h[32];

    if (token != NULL && auth_token_is_well_formed(token, len) &&
        auth_token_hash(token, len, h) == 0)
        log_warn("auth: call rejected: %s (token sha256 %02x%02x%02x%02x...)", st->msg, h[0], h[1],
                 h[2], h[3]);
    else
        log_warn("auth: call rejected: %s", st->msg);
}

grpc_status_code auth_authenticate(auth_cache *cache, PGconn *conn, const char *value, size_t len,
                                   struct auth_identity *id, trpc_status *st)
{
    const char *token = NULL;
    size_t token_len = 0;
    grpc_status_code code = auth_parse_bearer(value, len, &token, &token_len, st);

    if (code == GRPC_STATUS_OK)
        code = auth_verify(cache, conn, token, token_len, id, st);
    if (code == GRPC_STATUS_UNAUTHENTICATED && log_min_level <= LOG_WARN)
        log_rejected(token, token_len, st);
    return code;
}

int auth_name_is_valid(const char *name)
{
    size_t len, chars = 0;

    if (name == NULL)
        return 0;
    len = strlen(name);
    if (len == 0 || len > AUTH_NAME_MAX || !text_is_utf8(name, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f) /* names are printed one per line */
            return 0;
        if ((c & 0xC0) != 0x80) /* count lead bytes: characters */
            chars++;
    }
    return chars <= AUTH_NAME_CHARS;
}

static int token_new(char out[AUTH_TOKEN_LEN + 1])
{
    unsigned char raw[32];
    char b64[48]; /* EVP_EncodeBlock: 44 characters + NUL for 32 bytes */
    const size_t plen = sizeof(AUTH_TOKEN_PREFIX) - 1;
    int n;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    n = EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    if (n != 44 || b64[43] != '=')
        return -1;
    memcpy(out, AUTH_TOKEN_PREFIX, plen);
    for (int i = 0; i < 43; i++) /* standard alphabet -> url-safe, padding dropped */
        out[plen + (size_t)i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    out[AUTH_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(b64, sizeof(b64));
    return 0;
}

grpc_status_code auth_token_create(PGconn *conn, const char *tenant_id, const char *name,
                                   char out_token[AUTH_TOKEN_LEN + 1],
                                   char out_token_id[AUTH_UUID_LEN + 1], trpc_status *st)
{
    static const char sql[] = "INSERT INTO api_tokens (token_id, tenant_id, name, token_hash)"
                              " SELECT gen_random_uuid(), tenant_id, $2, $3 FROM tenants"
                              " WHERE tenant_id = $1 RETURNING token_id";
    char token[AUTH_TOKEN_LEN + 1];
    unsigned char hash[32];
    const char *params[3] = {tenant_id, name, (const char *)hash};
    const int lengths[3] = {0, 0, 32};
    const int formats[3] = {0, 0, 1};
    PGresult *res = NULL;
    grpc_status_code code;

    out_token[0] = '\0';
    if (out_token_id != NULL)
        out_token_id[0] = '\0';
    if (!uuid_is_valid(tenant_id))
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "invalid tenant id");
    if (!auth_name_is_valid(name))
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "invalid token name (1 to %d characters of utf-8)", AUTH_NAME_CHARS);
    if (token_new(token) != 0 || auth_token_hash(token, AUTH_TOKEN_LEN, hash) != 0) {
        log_error("auth: RAND_bytes or SHA-256 failed");
        code = trpc_status_set(st, GRPC_STATUS_INTERNAL, "could not create token");
        goto out;
    }
    res = PQexecParams(conn, sql, 3, NULL, params, lengths, formats, 0);
    code = pg_check(res, PGRES_TUPLES_OK, 1, st, "could not create token",
                    "auth: create token for tenant %s", tenant_id);
    if (code != GRPC_STATUS_OK)
        goto out;
    if (PQntuples(res) != 1) {
        code = trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "tenant not found");
        goto out;
    }
    if (out_token_id != NULL)
        text_copy(out_token_id, AUTH_UUID_LEN + 1, PQgetvalue(res, 0, 0));
    memcpy(out_token, token, sizeof(token));
    log_info("auth: created token %s for tenant %s", PQgetvalue(res, 0, 0), tenant_id);
out:
    OPENSSL_cleanse(token, sizeof(token));
    PQclear(res);
    return code;
}

grpc_status_code auth_token_revoke(PGconn *conn, const char *token_id, trpc_status *st)
{
    static const char sql[] = "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())"
                              " WHERE token_id = $1";
    const char *params[1] = {token_id};
    PGresult *res = NULL;
    grpc_status_code code;

    if (!uuid_is_valid(token_id))
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "invalid token id");
    res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    code = pg_check(res, PGRES_COMMAND_OK, -1, st, "could not revoke token",
                    "auth: revoke token %s", token_id);
    if (code == GRPC_STATUS_OK && strcmp(PQcmdTuples(res), "0") == 0)
        code = trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "token not found");
    else if (code == GRPC_STATUS_OK)
        log_info("auth: revoked token %s", token_id);
    PQclear(res);
    return code;
}
