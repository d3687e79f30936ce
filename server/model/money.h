/* money.h - amounts of money: the ISO 4217 currency table, overflow-checked
 * arithmetic on minor units, and decimal text <-> minor units for the CLI.
 *
 * An amount is an int64_t count of the currency's minor unit (12.34 EUR is
 * 1234, 500 JPY is 500, 0.001 KWD is 1). Nothing here uses floating point.
 * Every function is pure and thread-safe (the table is constant). */
#ifndef SERVER_MODEL_MONEY_H
#define SERVER_MODEL_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trpc.h"

/* A currency code with its NUL: "EUR" */
#define MONEY_CODE_SIZE 4
/* Enough for any money_format() output: sign, 19 digits, '.', NUL */
#define MONEY_FORMAT_SIZE 32

/* An amount in a currency (plain data, copyable). currency is the upper-case
 * ISO 4217 code or "" when unset. */
struct money {
    int64_t minor_units;
    char currency[MONEY_CODE_SIZE];
};

/* One row of the ISO 4217 table (static storage). */
struct money_currency {
    const char *code; /* "EUR" */
    int numeric;      /* 978 */
    int digits;       /* minor-unit digits: 0 (JPY), 2 (EUR), 3 (KWD), 4 (CLF) */
};

/* The active ISO 4217 currency with this code (exactly three upper-case
 * letters, e.g. "EUR"; "eur" is not found), or NULL. Codes without a minor
 * unit in ISO 4217 (XAU, XDR, XTS, XXX, ...) are not money here and are not
 * found. code may be NULL (then NULL). */
const struct money_currency *money_currency_find(const char *code);

/* True when code is an active ISO 4217 currency (see money_currency_find). */
bool money_currency_is_valid(const char *code);

/* Minor-unit digits of the currency, or -1 when it is not valid. */
int money_currency_digits(const char *code);

/* The whole table in code order, and its length (for listing). */
const struct money_currency *money_currency_table(size_t *count);

/* Checks a currency field of a request: OK, or INVALID_ARGUMENT with
 * "<field> is required" / "<field> is not a valid iso 4217 currency code". */
grpc_status_code money_check_currency(const char *field, const char *code, trpc_status *st);

/* *out = a + b / a - b. Return true, or false on int64 overflow (then *out is
 * untouched). Never wraps. */
bool money_add(int64_t a, int64_t b, int64_t *out);
bool money_sub(int64_t a, int64_t b, int64_t *out);

/* Parses decimal text in the currency's units into minor units:
 * "12.34" EUR -> 1234, "12.3" EUR -> 1230, "500" JPY -> 500, "0.001" KWD -> 1,
 * "-5.00" EUR -> -500. Grammar: an optional '-' or '+', one or more digits,
 * optionally '.' followed by 1..digits(currency) digits (no '.' at all for a
 * 0-digit currency). No spaces, exponents, separators or leading '.'.
 * Returns OK and sets *out, or INVALID_ARGUMENT ("invalid amount ...",
 * "too many decimals for <code> (at most N)", "amount out of range",
 * "unknown currency ...") leaving *out untouched. Values from INT64_MIN to
 * INT64_MAX minor units are accepted. */
grpc_status_code money_parse(const char *text, const char *currency, int64_t *out, trpc_status *st);

/* Formats minor units in the currency's units with exactly digits(currency)
 * decimals: 1234 EUR -> "12.34", 500 JPY -> "500", -1 KWD -> "-0.001",
 * INT64_MIN EUR -> "-92233720368547758.08". Writes at most size bytes
 * (NUL-terminated when size > 0) and returns the length of the full text (as
 * snprintf), or -1 when the currency is not valid (buf then holds "" if
 * size > 0). MONEY_FORMAT_SIZE is always enough. */
int money_format(int64_t minor_units, const char *currency, char *buf, size_t size);

#endif /* SERVER_MODEL_MONEY_H */
