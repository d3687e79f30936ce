/* secfx.h - fixtures shared by the security tests: certificates made by
 * `openssl` at test time, channels (plaintext, TLS, mutual TLS), and the few
 * RPCs the tests make (health, OpenAccount, Deposit, Transfer, GetAccount,
 * GetProjectionStatus, the first message of Subscribe). Each helper prints
 * why it failed on stderr; the caller asserts. Main thread only. */
#ifndef TESTS_SECURITY_SECFX_H
#define TESTS_SECURITY_SECFX_H

#include <stdint.h>

#include "harness.h"
#include "trpc.h"

#define SECFX_CALL_MS 10000 /* deadline of each call */

/* PEM files in one folder of the harness's temporary folder. */
struct secfx_certs {
    char ca[HARNESS_PATH_MAX];          /* the CA the daemons trust */
    char server_cert[HARNESS_PATH_MAX]; /* CN localhost, SAN DNS:localhost, IP:127.0.0.1 */
    char server_key[HARNESS_PATH_MAX];
    char client_cert[HARNESS_PATH_MAX]; /* signed by ca, clientAuth */
    char client_key[HARNESS_PATH_MAX];
    char rogue_ca[HARNESS_PATH_MAX];          /* a CA nobody trusts */
    char rogue_server_cert[HARNESS_PATH_MAX]; /* same names as server_cert, signed by rogue_ca */
    char rogue_server_key[HARNESS_PATH_MAX];
    char rogue_client_cert[HARNESS_PATH_MAX]; /* signed by rogue_ca */
    char rogue_client_key[HARNESS_PATH_MAX];
};

/* Makes every file of c with openssl (EC P-256, valid 2 days). 0 or -1. */
int secfx_certs_make(struct secfx_certs *c);

/* A channel to addr: plaintext when ca is NULL, else TLS trusting ca, with a
 * client certificate when cert and key are not NULL, checking server_name
 * (NULL: the host of addr) against the server's certificate. NULL on error
 * (printed). */
trpc_channel *secfx_channel(const char *addr, const char *ca, const char *cert, const char *key,
                            const char *server_name);

/* grpc.health.v1.Health/Check of the whole server; OK only when SERVING. */
grpc_status_code secfx_health(trpc_channel *ch, trpc_status *st);

/* Call options with `authorization: Bearer token` (token NULL: none). The
 * strings must outlive the options' use. */
struct secfx_auth {
    char bearer[HARNESS_TOKEN_MAX + 16];
    trpc_metadata md;
    trpc_call_opts opts;
};
const trpc_call_opts *secfx_auth(struct secfx_auth *a, const char *token);

/* CommandService. account_id (>= 64 bytes) receives the new account's id;
 * pos (may be NULL) the command's position. */
grpc_status_code secfx_open_account(trpc_channel *ch, const char *token, char *account_id,
                                    uint64_t pos[2], trpc_status *st);
grpc_status_code secfx_deposit(trpc_channel *ch, const char *token, const char *account_id,
                               int64_t minor_units, uint64_t pos[2], trpc_status *st);
/* Transfer with wait=true; *succeeded = 1 when the saga finished SUCCEEDED. */
grpc_status_code secfx_transfer(trpc_channel *ch, const char *token, const char *from,
                                const char *to, int64_t minor_units, uint64_t pos[2],
                                int *succeeded, trpc_status *st);

/* QueryService. GetAccount after min_position pos (NULL: none). */
grpc_status_code secfx_get_balance(trpc_channel *ch, const char *token, const char *account_id,
                                   const uint64_t pos[2], int64_t *balance, trpc_status *st);
grpc_status_code secfx_projection_status(trpc_channel *ch, const char *token, trpc_status *st);

/* SubscriptionService: Subscribe from the beginning; OK once the first
 * message (an event, a checkpoint or caught_up) arrives, then cancels. */
grpc_status_code secfx_subscribe_first(trpc_channel *ch, const char *token, trpc_status *st);

/* One RPC of the daemon's own service that needs the token: OpenAccount
 * (command), GetProjectionStatus (query), Subscribe (projector). */
grpc_status_code secfx_service_call(enum harness_daemon_kind kind, trpc_channel *ch,
                                    const char *token, trpc_status *st);

/* 1 when the daemon's output so far contains needle. */
int secfx_log_contains(const struct harness_daemon *d, const char *needle);

#endif /* TESTS_SECURITY_SECFX_H */
