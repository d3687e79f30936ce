/* exitcode.h - tallyctl's exit codes: one per class of gRPC status a script
 * may want to act on, plus local usage errors and interruption.
 *
 *    0  OK
 *    1  any other failure (UNKNOWN, INTERNAL, CANCELLED, DATA_LOSS, a reply
 *       tallyctl cannot print, ...)
 *    2  usage error: bad arguments, detected before any call is made
 *    3  INVALID_ARGUMENT, OUT_OF_RANGE: the server refused the input
 *    4  NOT_FOUND
 *    5  ALREADY_EXISTS
 *    6  FAILED_PRECONDITION: insufficient funds, frozen or closed account,
 *       currency mismatch, idempotency key reused for another request
 *    7  ABORTED: expected-version conflict (retry after reading)
 *    8  UNAUTHENTICATED, PERMISSION_DENIED: missing or bad token
 *    9  UNAVAILABLE, RESOURCE_EXHAUSTED: server down, unreachable or busy
 *       (safe to retry a command with the same --idempotency-key)
 *   10  DEADLINE_EXCEEDED: --timeout passed (a `transfer --wait` keeps
 *       running on the server)
 *   11  UNIMPLEMENTED: the server does not offer this RPC (yet)
 *   12  the call succeeded but the operation FAILED (`transfer --wait` saw
 *       the transfer fail; the reason is printed)
 *  130  `watch` stopped by SIGINT (Ctrl-C), 143 by SIGTERM (128 + signal, as
 *       shells report it); the last position is printed to stderr so the
 *       watch can resume with --from
 */
#ifndef CLIENTS_TALLYCTL_EXITCODE_H
#define CLIENTS_TALLYCTL_EXITCODE_H

#include <grpc/status.h>

enum exitcode {
    EXITCODE_OK = 0,
    EXITCODE_OTHER = 1,
    EXITCODE_USAGE = 2,
    EXITCODE_INVALID_ARGUMENT = 3,
    EXITCODE_NOT_FOUND = 4,
    EXITCODE_ALREADY_EXISTS = 5,
    EXITCODE_FAILED_PRECONDITION = 6,
    EXITCODE_ABORTED = 7,
    EXITCODE_AUTH = 8,
    EXITCODE_UNAVAILABLE = 9,
    EXITCODE_DEADLINE_EXCEEDED = 10,
    EXITCODE_UNIMPLEMENTED = 11,
    EXITCODE_OPERATION_FAILED = 12,
    EXITCODE_SIGNAL_BASE = 128, /* + signal number */
};

/* The exit code for a final gRPC status (OK is 0). */
int exitcode_for_status(grpc_status_code code);

/* The exit-code table as printed by `tallyctl --help` (static text). */
const char *exitcode_help(void);

#endif /* CLIENTS_TALLYCTL_EXITCODE_H */
