/* fuzz_request_rm.c - see fuzz_request_rm.h. */
#include "fuzz_request_rm.h"

#include "rm_rpcs.c"

grpc_status_code fuzz_rm_parse_day(const char *field, const char *s, long *days, trpc_status *st)
{
    return parse_day(field, s, days, st);
}

grpc_status_code fuzz_rm_int64_key(const char *s, int64_t *out, trpc_status *st)
{
    return int64_key(s, out, st);
}

const char *fuzz_rm_status_filter(Tally__V1__AccountStatus s)
{
    return status_filter(s);
}

grpc_status_code fuzz_rm_account_cursor_key(char keys[][CURSOR_KEY_SIZE], int64_t *us,
                                            trpc_status *st)
{
    return account_cursor_key(keys, us, st);
}
