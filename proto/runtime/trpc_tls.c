/* trpc_tls.c - TLS credentials for servers and channels, from PEM files.
 *
 * gRPC takes PEM text, not paths, and copies it into the credentials, so a
 * file is read into memory, handed over and wiped (a private key should not
 * linger in freed heap memory). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "trpc_internal.h"

#define PEM_MAX_BYTES (4 << 20) /* a CA bundle is a few hundred KiB */

static void wipe(char *p, size_t n)
{
    volatile char *v = p; /* not optimized away: the stores go through volatile */

    while (n-- > 0)
        *v++ = 0;
}

void trpc_tls_pem_free(char *pem)
{
    if (pem == NULL)
        return;
    wipe(pem, strlen(pem));
    free(pem);
}

int trpc_tls_pem_read(const char *path, char **out, trpc_status *st)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    int rc = -1;

    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "empty TLS file name");
        return -1;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "cannot read %s: %s", path,
                        strerror(errno));
        return -1;
    }
    for (;;) {
        if (buf == NULL || len + 1 == cap) { /* full (the last byte is for the NUL) */
            size_t ncap = cap ? 2 * cap : 8192;
            char *p;

            if (cap >= PEM_MAX_BYTES + 1) {
                trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s: over %d bytes", path,
                                PEM_MAX_BYTES);
                goto out;
            }
            if (ncap > PEM_MAX_BYTES + 1)
                ncap = PEM_MAX_BYTES + 1;
            p = malloc(ncap);
            if (p == NULL) {
                trpc_status_set(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                goto out;
            }
            if (buf != NULL) {
                memcpy(p, buf, len);
                wipe(buf, len);
                free(buf);
            }
            buf = p;
            cap = ncap;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    if (ferror(f)) {
        trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "cannot read %s: %s", path,
                        strerror(errno));
        goto out;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL || strstr(buf, "-----BEGIN ") == NULL) {
        trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s: no PEM data", path);
        goto out;
    }
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    if (buf != NULL) {
        wipe(buf, len);
        free(buf);
    }
    fclose(f);
    return rc;
}

grpc_server_credentials *trpc_tls_server_credentials(const char *cert_pem, const char *key_pem,
                                                     const char *client_ca_pem)
{
    grpc_ssl_pem_key_cert_pair pair;

    pair.private_key = key_pem;
    pair.cert_chain = cert_pem;
    return grpc_ssl_server_credentials_create_ex(
        client_ca_pem, &pair, 1,
        client_ca_pem != NULL ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
}

grpc_channel_credentials *trpc_tls_channel_credentials(const trpc_tls_opts *tls, trpc_status *st)
{
    char *ca = NULL, *cert = NULL, *key = NULL;
    grpc_ssl_pem_key_cert_pair pair;
    grpc_channel_credentials *creds = NULL;

    if ((tls->cert_file == NULL) != (tls->key_file == NULL)) {
        trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                        "a client certificate needs its key and the reverse");
        return NULL;
    }
    if (tls->ca_file != NULL && trpc_tls_pem_read(tls->ca_file, &ca, st) != 0)
        goto out;
    if (tls->cert_file != NULL && (trpc_tls_pem_read(tls->cert_file, &cert, st) != 0 ||
                                   trpc_tls_pem_read(tls->key_file, &key, st) != 0))
        goto out;
    pair.private_key = key;
    pair.cert_chain = cert;
    creds = grpc_ssl_credentials_create_ex(ca, cert != NULL ? &pair : NULL, NULL, NULL);
    if (creds == NULL)
        trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "gRPC refused the TLS settings");
out:
    trpc_tls_pem_free(ca);
    trpc_tls_pem_free(cert);
    trpc_tls_pem_free(key);
    return creds;
}
