/* cli_value.h - the typed values tallyctl reads from its command line:
 * amounts, currencies, ids, positions, versions, durations, times and dates.
 *
 * Every parser takes the text and writes the value, or returns -1 with a
 * one-line reason in err (errlen bytes, always NUL-terminated), quoting the
 * offending text (cut short). Nothing uses floating point; amounts go through
 * money_parse (server/model/money.h), so the CLI accepts exactly what the
 * currency allows: "12.34" EUR is 1234 minor units, "12.345" EUR is refused
 * (never rounded), "500" JPY is 500, "0.001" KWD is 1. Pure and thread-safe. */
#ifndef CLIENTS_TALLYCTL_CLI_VALUE_H
#define CLIENTS_TALLYCTL_CLI_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "money.h"
#include "uuid.h"

/* Reads a currency code: three ASCII letters of either case ("eur" is EUR)
 * naming an active ISO 4217 currency. Writes the upper-case code. */
int cli_value_currency(const char *text, char out[MONEY_CODE_SIZE], char *err, size_t errlen);

/* Reads a decimal amount in currency (an upper-case valid code, e.g. from
 * cli_value_currency) into minor units. The amount must be > 0, or >= 0 when
 * allow_zero (overdraft limits). Reasons: `invalid amount "1,5": ...`,
 * `invalid amount "12.345": too many decimals for EUR (at most 2)`,
 * `invalid amount "...": amount out of range`, `invalid amount "-5": must be
 * greater than zero` (or "must not be negative"). */
int cli_value_amount(const char *text, const char *currency, bool allow_zero, int64_t *out,
                     char *err, size_t errlen);

/* Reads a UUID (canonical text form, either case) into its lower-case form.
 * what names the value in the reason ("ACCOUNT"). */
int cli_value_uuid(const char *what, const char *text, char out[UUID_STR_SIZE], char *err,
                   size_t errlen);

/* Reads a log position "TX:POS" (as printed by tallyctl: the transaction id
 * and the global position, both decimal, POS >= 0). */
int cli_value_position(const char *text, uint64_t *tx_id, int64_t *global_position, char *err,
                       size_t errlen);

/* Reads a decimal integer in [min, max]. what names it ("--limit"). */
int cli_value_int64(const char *what, const char *text, int64_t min, int64_t max, int64_t *out,
                    char *err, size_t errlen);

/* Reads a duration: a positive integer with an optional unit "ms", "s", "m"
 * or "h" (no unit: seconds), e.g. "500ms", "30s", "2m". At most 24 h. */
int cli_value_duration_ms(const char *text, int64_t *ms, char *err, size_t errlen);

/* Reads an RFC 3339 time ("2024-05-01T12:00:00Z", "2024-05-01T14:00:00.5+02:00")
 * into seconds and nanoseconds since the Unix epoch (UTC). */
int cli_value_time(const char *text, int64_t *seconds, int32_t *nanos, char *err, size_t errlen);

/* Checks a calendar date "YYYY-MM-DD" (a real day of the Gregorian
 * calendar). */
int cli_value_date(const char *text, char *err, size_t errlen);

#endif /* CLIENTS_TALLYCTL_CLI_VALUE_H */
