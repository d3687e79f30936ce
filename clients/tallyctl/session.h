/* session.h - what every tallyctl subcommand shares: the global options
 * (addresses, token, timeout, --json), the gRPC channels, the call options
 * (authorization and x-correlation-id metadata, deadline), and one-line
 * error reporting with the exit code that goes with it (exitcode.h).
 *
 * Configuration: flags win over the environment, which wins over defaults:
 *   --addr / TALLY_ADDR                 CommandService      127.0.0.1:50051
 *   --query-addr / TALLY_QUERY_ADDR     QueryService        127.0.0.1:50052
 *   --subscribe-addr / TALLY_SUBSCRIBE_ADDR  Subscribe      127.0.0.1:50053
 *   --token / TALLY_TOKEN               sent as `authorization: Bearer TOKEN`
 *   --timeout (alias --deadline)        per call; default 30s (watch: none)
 *   --tls-ca / TALLY_TLS_CA             TLS: the CA the servers' certificates
 *                                       must chain to (any --tls-* turns TLS on
 *                                       for all three; none: plaintext)
 *   --tls-cert / TALLY_TLS_CERT, --tls-key / TALLY_TLS_KEY
 *                                       client certificate for mutual TLS
 *   --tls-server-name / TALLY_TLS_SERVER_NAME
 *                                       name the certificates must carry instead
 *                                       of the address's host
 * One session per process; not thread-safe except where noted. */
#ifndef CLIENTS_TALLYCTL_SESSION_H
#define CLIENTS_TALLYCTL_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "cli_args.h"
#include "trpc.h"

#define SESSION_DEFAULT_ADDR           "127.0.0.1:50051"
#define SESSION_DEFAULT_QUERY_ADDR     "127.0.0.1:50052"
#define SESSION_DEFAULT_SUBSCRIBE_ADDR "127.0.0.1:50053"
#define SESSION_DEFAULT_TIMEOUT_MS     30000

/* The global options (valid before and after the subcommand). */
extern const struct cli_opt session_opts[];

enum session_service {
    SESSION_COMMAND = 0, /* tally-command */
    SESSION_QUERY,       /* tally-query */
    SESSION_SUBSCRIBE,   /* tally-projector */
    SESSION_N_SERVICES,
};

struct session {
    const char *cmd; /* the subcommand, for messages ("deposit") */
    const char *addr[SESSION_N_SERVICES];
    const char *token;          /* NULL: no authorization metadata */
    const char *correlation_id; /* NULL: none sent */
    bool json;                  /* --json */
    int64_t timeout_ms;         /* deadline of each call (0 = none) */
    bool timeout_given;         /* --timeout/--deadline was on the command line */
    trpc_tls_opts tls;          /* its files checked readable by session_init */
    bool use_tls;               /* any of --tls-ca, --tls-cert, --tls-key */
    char *bearer;               /* "Bearer TOKEN" (owned) */
    trpc_metadata md[2];
    trpc_call_opts opts;
    trpc_channel *ch[SESSION_N_SERVICES]; /* made on first use (owned) */
};

/* Fills s from the parsed global options and the environment. cmd is the
 * subcommand name (borrowed). Returns 0, or EXITCODE_USAGE after printing why
 * (a bad --timeout; a TLS file that cannot be read; --tls-cert without
 * --tls-key or the reverse). On either result session_cleanup must follow. */
int session_init(struct session *s, const char *cmd, const struct cli_args *a);

/* Frees the channels and the metadata. */
void session_cleanup(struct session *s);

/* The channel to svc's server, made on first use. NULL (after printing why,
 * exit with EXITCODE_OTHER) when it cannot be made. */
trpc_channel *session_channel(struct session *s, enum session_service svc);

/* Options for a call: deadline and metadata. Valid until session_cleanup. */
const trpc_call_opts *session_call_opts(struct session *s);

/* Prints "tallyctl: CMD: CODE: message" for a failed call to svc to stderr
 * (with the server address for UNAVAILABLE, the usual cause being a wrong
 * address or a server that is not running) and returns the exit code. */
int session_fail(const struct session *s, enum session_service svc, const trpc_status *st);

/* Prints "tallyctl: CMD: message (see 'tallyctl CMD --help')" and returns
 * EXITCODE_USAGE. */
int session_usage(const struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "tallyctl: CMD: message" and returns code. */
int session_error(const struct session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* CLIENTS_TALLYCTL_SESSION_H */
