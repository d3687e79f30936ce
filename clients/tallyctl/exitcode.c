/* exitcode.c - see exitcode.h. */
#include "exitcode.h"

int exitcode_for_status(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_OK:
        return EXITCODE_OK;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE:
        return EXITCODE_INVALID_ARGUMENT;
    case GRPC_STATUS_NOT_FOUND:
        return EXITCODE_NOT_FOUND;
    case GRPC_STATUS_ALREADY_EXISTS:
        return EXITCODE_ALREADY_EXISTS;
    case GRPC_STATUS_FAILED_PRECONDITION:
        return EXITCODE_FAILED_PRECONDITION;
    case GRPC_STATUS_ABORTED:
        return EXITCODE_ABORTED;
    case GRPC_STATUS_UNAUTHENTICATED:
    case GRPC_STATUS_PERMISSION_DENIED:
        return EXITCODE_AUTH;
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return EXITCODE_UNAVAILABLE;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return EXITCODE_DEADLINE_EXCEEDED;
    case GRPC_STATUS_UNIMPLEMENTED:
        return EXITCODE_UNIMPLEMENTED;
    default:
        return EXITCODE_OTHER;
    }
}

const char *exitcode_help(void)
{
    return "Exit codes:\n"
           "    0  OK\n"
           "    1  any other failure (UNKNOWN, INTERNAL, CANCELLED, ...)\n"
           "    2  usage error (bad arguments; nothing was sent)\n"
           "    3  INVALID_ARGUMENT, OUT_OF_RANGE\n"
           "    4  NOT_FOUND\n"
           "    5  ALREADY_EXISTS\n"
           "    6  FAILED_PRECONDITION (insufficient funds, frozen or closed account,\n"
           "       currency mismatch, idempotency key reused)\n"
           "    7  ABORTED (--expected-version conflict)\n"
           "    8  UNAUTHENTICATED, PERMISSION_DENIED\n"
           "    9  UNAVAILABLE, RESOURCE_EXHAUSTED (retry; commands with the same\n"
           "       --idempotency-key)\n"
           "   10  DEADLINE_EXCEEDED (--timeout passed)\n"
           "   11  UNIMPLEMENTED\n"
           "   12  the operation FAILED (transfer --wait)\n"
           "  130  watch stopped by SIGINT (143: SIGTERM)\n";
}
