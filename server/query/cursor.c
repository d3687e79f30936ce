/* cursor.c - see cursor.h. */
#include "cursor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define MAX_TOKEN 512

void cursor_fingerprint(const char *kind, const char *tenant_id, const char *const *params,
                        size_t n, uint8_t fp[CURSOR_FP_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    memset(fp, 0, CURSOR_FP_LEN);
    if (ctx == NULL)
        return;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, kind, strlen(kind) + 1);
    EVP_DigestUpdate(ctx, tenant_id, strlen(tenant_id) + 1);
    for (size_t i = 0; i < n; i++) {
        /* a tag byte keeps NULL, "" and concatenations apart */
        uint8_t tag = params[i] ? 1 : 0;

        EVP_DigestUpdate(ctx, &tag, 1);
        if (params[i])
            EVP_DigestUpdate(ctx, params[i], strlen(params[i]) + 1);
    }
    if (EVP_DigestFinal_ex(ctx, md, &len) && len >= CURSOR_FP_LEN)
        memcpy(fp, md, CURSOR_FP_LEN);
    EVP_MD_CTX_free(ctx);
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

char *cursor_encode(trpc_call *call, const char *kind, const uint8_t fp[CURSOR_FP_LEN],
                    const char *const *keys, size_t n)
{
    char fphex[2 * CURSOR_FP_LEN + 1];
    json_t *o = json_object(), *k = json_array();
    char *text = NULL, *out = NULL;
    unsigned char b64[MAX_TOKEN * 2];
    int len;

    hex(fp, CURSOR_FP_LEN, fphex);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(k, json_string(keys[i]));
    json_object_set_new(o, "c", json_string(kind));
    json_object_set_new(o, "f", json_string(fphex));
    json_object_set_new(o, "k", k);
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL || strlen(text) > MAX_TOKEN)
        goto out;
    len = EVP_EncodeBlock(b64, (const unsigned char *)text, (int)strlen(text));
    while (len > 0 && b64[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++) /* base64url */
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    b64[len] = '\0';
    out = trpc_call_strdup(call, (const char *)b64);
out:
    free(text);
    return out;
}

grpc_status_code cursor_decode(const char *token, const char *kind, const uint8_t fp[CURSOR_FP_LEN],
                               char keys[][CURSOR_KEY_SIZE], size_t n, trpc_status *st)
{
    size_t len = strlen(token);
    unsigned char in[MAX_TOKEN * 2 + 4], text[MAX_TOKEN * 2];
    char fphex[2 * CURSOR_FP_LEN + 1];
    json_t *o = NULL, *k;
    const char *c, *f;
    int dec, pad;

    if (len == 0 || len > MAX_TOKEN * 2)
        goto bad;
    for (size_t i = 0; i < len; i++) {
        char ch = token[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            goto bad;
        in[i] = ch == '-' ? '+' : ch == '_' ? '/' : (unsigned char)ch;
    }
    pad = (int)((4 - len % 4) % 4);
    if (pad == 3)
        goto bad;
    for (int i = 0; i < pad; i++)
        in[len + (size_t)i] = '=';
    dec = EVP_DecodeBlock(text, in, (int)len + pad);
    if (dec < 0)
        goto bad;
    dec -= pad; /* EVP_DecodeBlock counts the padding as zero bytes */
    o = json_loadb((const char *)text, (size_t)dec, JSON_REJECT_DUPLICATES, NULL);
    c = json_string_value(json_object_get(o, "c"));
    f = json_string_value(json_object_get(o, "f"));
    k = json_object_get(o, "k");
    if (!json_is_object(o) || json_object_size(o) != 3 || c == NULL || f == NULL ||
        !json_is_array(k) || json_array_size(k) != n || strcmp(c, kind) != 0)
        goto bad;
    hex(fp, CURSOR_FP_LEN, fphex);
    if (strlen(f) != 2 * CURSOR_FP_LEN || CRYPTO_memcmp(f, fphex, 2 * CURSOR_FP_LEN) != 0)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(k, i));

        if (s == NULL || strlen(s) >= CURSOR_KEY_SIZE)
            goto bad;
        snprintf(keys[i], CURSOR_KEY_SIZE, "%s", s);
    }
    json_decref(o);
    return GRPC_STATUS_OK;
bad:
    json_decref(o);
    return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                           "invalid page_token (it must come from the same request)");
}
