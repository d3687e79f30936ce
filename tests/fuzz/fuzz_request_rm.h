/* fuzz_request_rm.h - the static request checks of server/query/rm_rpcs.c,
 * reached from fuzz_request (the file is included in fuzz_request_rm.c: its
 * static names clash with log_rpcs.c's, so it gets a translation unit of its
 * own). */
#ifndef TESTS_FUZZ_REQUEST_RM_H
#define TESTS_FUZZ_REQUEST_RM_H

#include <stdint.h>

#include "tally/v1/query.pb-c.h"

#include "cursor.h"
#include "trpc.h"

/* rm_rpcs.c parse_day: a "YYYY-MM-DD" day (1970..9999) to days since the epoch. */
grpc_status_code fuzz_rm_parse_day(const char *field, const char *s, long *days, trpc_status *st);

/* rm_rpcs.c int64_key: a page-token key that must be a decimal int64. */
grpc_status_code fuzz_rm_int64_key(const char *s, int64_t *out, trpc_status *st);

/* rm_rpcs.c status_filter: the read model's status text, NULL for none. */
const char *fuzz_rm_status_filter(Tally__V1__AccountStatus s);

/* rm_rpcs.c account_cursor_key: the checks of a ListAccounts token's keys. */
grpc_status_code fuzz_rm_account_cursor_key(char keys[][CURSOR_KEY_SIZE], int64_t *us,
                                            trpc_status *st);

#endif /* TESTS_FUZZ_REQUEST_RM_H */
