/* secfx.c - see secfx.h. */
#include "secfx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "grpc/health/v1/health.trpc.h"
#include "tally/v1/command.trpc.h"
#include "tally/v1/query.trpc.h"
#include "tally/v1/subscription.trpc.h"

#define OPENSSL_MS 30000

/* ---- certificates ---- */

static int path_in(char out[HARNESS_PATH_MAX], const char *dir, const char *name)
{
    int n = snprintf(out, HARNESS_PATH_MAX, "%s/%s", dir, name);

    if (n < 0 || n >= HARNESS_PATH_MAX) {
        fprintf(stderr, "secfx: path too long: %s/%s\n", dir, name);
        return -1;
    }
    return 0;
}

static int openssl(const char *const *argv)
{
    char *err = NULL;
    int rc = harness_run(argv, NULL, OPENSSL_MS, NULL, &err);

    if (rc != 0)
        fprintf(stderr, "secfx: %s %s exited %d: %s\n", argv[0], argv[1], rc, err ? err : "");
    free(err);
    return rc == 0 ? 0 : -1;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    int rc = -1;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    if (fputs(text, f) >= 0)
        rc = 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* A self-signed CA certificate and key. */
static int make_ca(const char *cert, const char *key, const char *cn)
{
    char subj[128];
    const char *argv[] = {"/usr/bin/openssl",
                          "req",
                          "-x509",
                          "-newkey",
                          "ec",
                          "-pkeyopt",
                          "ec_paramgen_curve:prime256v1",
                          "-nodes",
                          "-keyout",
                          key,
                          "-out",
                          cert,
                          "-days",
                          "2",
                          "-subj",
                          subj,
                          "-addext",
                          "basicConstraints=critical,CA:TRUE",
                          "-addext",
                          "keyUsage=critical,keyCertSign,cRLSign",
                          NULL};

    snprintf(subj, sizeof(subj), "/CN=%s", cn);
    return openssl(argv);
}

/* A leaf certificate for cn with the extensions in the file ext, signed by
 * ca/ca_key. */
static int make_leaf(const char *dir, const char *cert, const char *key, const char *cn,
                     const char *ca, const char *ca_key, const char *ext, const char *serial)
{
    char subj[128], csr[HARNESS_PATH_MAX];
    const char *req[] = {"/usr/bin/openssl",
                         "req",
                         "-new",
                         "-newkey",
                         "ec",
                         "-pkeyopt",
                         "ec_paramgen_curve:prime256v1",
                         "-nodes",
                         "-keyout",
                         key,
                         "-out",
                         csr,
                         "-subj",
                         subj,
                         NULL};
    const char *sign[] = {
        "/usr/bin/openssl", "x509", "-req",  "-in", csr,        "-CA", ca,     "-CAkey", ca_key,
        "-set_serial",      serial, "-days", "2",   "-extfile", ext,   "-out", cert,     NULL};

    snprintf(subj, sizeof(subj), "/CN=%s", cn);
    if (path_in(csr, dir, "leaf.csr") != 0)
        return -1;
    return openssl(req) == 0 && openssl(sign) == 0 ? 0 : -1;
}

int secfx_certs_make(struct secfx_certs *c)
{
    const char *tmp = harness_tmpdir();
    char dir[HARNESS_PATH_MAX], server_ext[HARNESS_PATH_MAX], client_ext[HARNESS_PATH_MAX];
    char ca_key[HARNESS_PATH_MAX], rogue_ca_key[HARNESS_PATH_MAX];

    memset(c, 0, sizeof(*c));
    if (tmp == NULL || path_in(dir, tmp, "certs") != 0)
        return -1;
    if (mkdir(dir, 0755) != 0) {
        perror(dir);
        return -1;
    }
    if (path_in(c->ca, dir, "ca.pem") || path_in(ca_key, dir, "ca.key") ||
        path_in(c->server_cert, dir, "server.pem") || path_in(c->server_key, dir, "server.key") ||
        path_in(c->client_cert, dir, "client.pem") || path_in(c->client_key, dir, "client.key") ||
        path_in(c->rogue_ca, dir, "rogue-ca.pem") || path_in(rogue_ca_key, dir, "rogue-ca.key") ||
        path_in(c->rogue_server_cert, dir, "rogue-server.pem") ||
        path_in(c->rogue_server_key, dir, "rogue-server.key") ||
        path_in(c->rogue_client_cert, dir, "rogue-client.pem") ||
        path_in(c->rogue_client_key, dir, "rogue-client.key") ||
        path_in(server_ext, dir, "server.ext") || path_in(client_ext, dir, "client.ext"))
        return -1;
    if (write_text(server_ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                               "extendedKeyUsage=serverAuth\n") != 0 ||
        write_text(client_ext, "extendedKeyUsage=clientAuth\n") != 0)
        return -1;
    if (make_ca(c->ca, ca_key, "tally test CA") != 0 ||
        make_ca(c->rogue_ca, rogue_ca_key, "rogue test CA") != 0 ||
        make_leaf(dir, c->server_cert, c->server_key, "localhost", c->ca, ca_key, server_ext,
                  "2") != 0 ||
        make_leaf(dir, c->client_cert, c->client_key, "tally-test-client", c->ca, ca_key,
                  client_ext, "3") != 0 ||
        make_leaf(dir, c->rogue_server_cert, c->rogue_server_key, "localhost", c->rogue_ca,
                  rogue_ca_key, server_ext, "4") != 0 ||
        make_leaf(dir, c->rogue_client_cert, c->rogue_client_key, "tally-test-client", c->rogue_ca,
                  rogue_ca_key, client_ext, "5") != 0)
        return -1;
    return 0;
}

/* ---- channels and calls ---- */

trpc_channel *secfx_channel(const char *addr, const char *ca, const char *cert, const char *key,
                            const char *server_name)
{
    trpc_tls_opts tls;
    trpc_status st = {0};
    trpc_channel *ch;

    if (ca == NULL)
        return trpc_channel_new(addr);
    memset(&tls, 0, sizeof(tls));
    tls.ca_file = ca;
    tls.cert_file = cert;
    tls.key_file = key;
    tls.server_name = server_name;
    ch = trpc_channel_new_tls(addr, &tls, &st);
    if (ch == NULL)
        fprintf(stderr, "secfx: channel to %s: %s\n", addr, st.msg);
    return ch;
}

grpc_status_code secfx_health(trpc_channel *ch, trpc_status *st)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *resp = NULL;
    trpc_call_opts opts = {.timeout_ms = SECFX_CALL_MS};
    grpc_status_code code;

    req.service = (char *)"";
    code = grpc__health__v1__health__trpc_check(ch, &req, &resp, &opts, st);
    if (code == GRPC_STATUS_OK &&
        resp->status != GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
        code = trpc_status_set(st, GRPC_STATUS_UNKNOWN, "not SERVING: %d", (int)resp->status);
    if (resp != NULL)
        grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    return code;
}

const trpc_call_opts *secfx_auth(struct secfx_auth *a, const char *token)
{
    memset(a, 0, sizeof(*a));
    a->opts.timeout_ms = SECFX_CALL_MS;
    if (token != NULL) {
        snprintf(a->bearer, sizeof(a->bearer), "Bearer %s", token);
        a->md.key = "authorization";
        a->md.value = a->bearer;
        a->opts.metadata = &a->md;
        a->opts.n_metadata = 1;
    }
    return &a->opts;
}

static void copy_pos(uint64_t pos[2], const Tally__V1__CommandResponse *r)
{
    if (pos == NULL)
        return;
    pos[0] = r != NULL && r->position != NULL ? r->position->tx_id : 0;
    pos[1] = r != NULL && r->position != NULL ? (uint64_t)r->position->global_position : 0;
}

grpc_status_code secfx_open_account(trpc_channel *ch, const char *token, char *account_id,
                                    uint64_t pos[2], trpc_status *st)
{
    Tally__V1__OpenAccountRequest req = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__OpenAccountResponse *resp = NULL;
    struct secfx_auth a;
    grpc_status_code code;

    req.owner = (char *)"security test";
    req.currency = (char *)"EUR";
    code =
        tally__v1__command_service__trpc_open_account(ch, &req, &resp, secfx_auth(&a, token), st);
    if (code == GRPC_STATUS_OK) {
        snprintf(account_id, 64, "%s", resp->account_id);
        copy_pos(pos, resp->result);
        tally__v1__open_account_response__free_unpacked(resp, NULL);
    }
    return code;
}

static void money(Tally__V1__Money *m, int64_t minor_units)
{
    tally__v1__money__init(m);
    m->minor_units = minor_units;
    m->currency = (char *)"EUR";
}

grpc_status_code secfx_deposit(trpc_channel *ch, const char *token, const char *account_id,
                               int64_t minor_units, uint64_t pos[2], trpc_status *st)
{
    Tally__V1__DepositRequest req = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Tally__V1__Money m;
    struct secfx_auth a;
    grpc_status_code code;

    money(&m, minor_units);
    req.account_id = (char *)account_id;
    req.amount = &m;
    code = tally__v1__command_service__trpc_deposit(ch, &req, &resp, secfx_auth(&a, token), st);
    if (code == GRPC_STATUS_OK) {
        copy_pos(pos, resp);
        tally__v1__command_response__free_unpacked(resp, NULL);
    }
    return code;
}

grpc_status_code secfx_transfer(trpc_channel *ch, const char *token, const char *from,
                                const char *to, int64_t minor_units, uint64_t pos[2],
                                int *succeeded, trpc_status *st)
{
    Tally__V1__TransferRequest req = TALLY__V1__TRANSFER_REQUEST__INIT;
    Tally__V1__TransferResponse *resp = NULL;
    Tally__V1__Money m;
    struct secfx_auth a;
    grpc_status_code code;

    money(&m, minor_units);
    req.source_account_id = (char *)from;
    req.destination_account_id = (char *)to;
    req.amount = &m;
    req.wait = 1;
    *succeeded = 0;
    code = tally__v1__command_service__trpc_transfer(ch, &req, &resp, secfx_auth(&a, token), st);
    if (code == GRPC_STATUS_OK) {
        *succeeded = resp->status == TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED;
        copy_pos(pos, resp->result);
        tally__v1__transfer_response__free_unpacked(resp, NULL);
    }
    return code;
}

grpc_status_code secfx_get_balance(trpc_channel *ch, const char *token, const char *account_id,
                                   const uint64_t pos[2], int64_t *balance, trpc_status *st)
{
    Tally__V1__GetAccountRequest req = TALLY__V1__GET_ACCOUNT_REQUEST__INIT;
    Tally__V1__Position p = TALLY__V1__POSITION__INIT;
    Tally__V1__Account *resp = NULL;
    struct secfx_auth a;
    grpc_status_code code;

    req.account_id = (char *)account_id;
    if (pos != NULL) {
        p.tx_id = pos[0];
        p.global_position = (int64_t)pos[1];
        req.min_position = &p;
    }
    *balance = -1;
    code = tally__v1__query_service__trpc_get_account(ch, &req, &resp, secfx_auth(&a, token), st);
    if (code == GRPC_STATUS_OK) {
        *balance = resp->balance != NULL ? resp->balance->minor_units : -1;
        tally__v1__account__free_unpacked(resp, NULL);
    }
    return code;
}

grpc_status_code secfx_projection_status(trpc_channel *ch, const char *token, trpc_status *st)
{
    Tally__V1__GetProjectionStatusRequest req = TALLY__V1__GET_PROJECTION_STATUS_REQUEST__INIT;
    Tally__V1__ProjectionStatus *resp = NULL;
    struct secfx_auth a;
    grpc_status_code code;

    code = tally__v1__query_service__trpc_get_projection_status(ch, &req, &resp,
                                                                secfx_auth(&a, token), st);
    if (resp != NULL)
        tally__v1__projection_status__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code secfx_subscribe_first(trpc_channel *ch, const char *token, trpc_status *st)
{
    Tally__V1__SubscribeRequest req = TALLY__V1__SUBSCRIBE_REQUEST__INIT;
    Tally__V1__SubscribeResponse *msg = NULL;
    struct secfx_auth a;
    trpc_client_stream *s;
    grpc_status_code code;

    req.start = TALLY__V1__SUBSCRIBE_REQUEST__START__START_BEGINNING;
    s = tally__v1__subscription_service__trpc_subscribe(ch, &req, secfx_auth(&a, token), st);
    if (s == NULL)
        return st->code;
    if (tally__v1__subscription_service__trpc_subscribe_next(s, &msg, st) == 1) {
        code = trpc_status_set(st, GRPC_STATUS_OK, "%s", "");
        tally__v1__subscribe_response__free_unpacked(msg, NULL);
    } else {
        code = st->code != GRPC_STATUS_OK
                   ? st->code
                   : trpc_status_set(st, GRPC_STATUS_UNKNOWN, "stream ended without a message");
    }
    trpc_client_stream_free(s);
    return code;
}

grpc_status_code secfx_service_call(enum harness_daemon_kind kind, trpc_channel *ch,
                                    const char *token, trpc_status *st)
{
    char account[64];

    switch (kind) {
    case HARNESS_COMMAND:
        return secfx_open_account(ch, token, account, NULL, st);
    case HARNESS_QUERY:
        return secfx_projection_status(ch, token, st);
    case HARNESS_PROJECTOR:
        return secfx_subscribe_first(ch, token, st);
    }
    return trpc_status_set(st, GRPC_STATUS_INTERNAL, "unknown daemon");
}

int secfx_log_contains(const struct harness_daemon *d, const char *needle)
{
    char *log = harness_daemon_log(d);
    int found = log != NULL && strstr(log, needle) != NULL;

    free(log);
    return found;
}
