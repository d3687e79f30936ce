/* money.c - the ISO 4217 table, checked arithmetic and decimal text. */
#include "money.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Active ISO 4217 currencies (List One), sorted by code for bsearch. Source:
 * Debian iso-codes 4.15 (the ISO 4217 maintenance agency's list) minus HRK
 * (withdrawn 2023-01-01) and the codes without a minor unit (precious metals
 * XAU/XAG/XPD/XPT, XBA..XBD, XDR, XSU, XUA, testing XTS, none XXX), plus the
 * 2024 additions XCG (Caribbean guilder) and ZWG (Zimbabwe gold). Currencies
 * in transition (ANG, SLL, ZWL, CUC) stay valid so old accounts keep
 * working. Minor-unit digits are ISO's: 0 for BIF CLP DJF GNF ISK JPY KMF
 * KRW PYG RWF UGX UYI VND VUV XAF XOF XPF, 3 for BHD IQD JOD KWD LYD OMR TND,
 * 4 for CLF UYW, 2 for the rest. */
static const struct money_currency currencies[] = {
    {"AED", 784, 2}, {"AFN", 971, 2}, {"ALL", 8, 2},   {"AMD", 51, 2},  {"ANG", 532, 2},
    {"AOA", 973, 2}, {"ARS", 32, 2},  {"AUD", 36, 2},  {"AWG", 533, 2}, {"AZN", 944, 2},
    {"BAM", 977, 2}, {"BBD", 52, 2},  {"BDT", 50, 2},  {"BGN", 975, 2}, {"BHD", 48, 3},
    {"BIF", 108, 0}, {"BMD", 60, 2},  {"BND", 96, 2},  {"BOB", 68, 2},  {"BOV", 984, 2},
    {"BRL", 986, 2}, {"BSD", 44, 2},  {"BTN", 64, 2},  {"BWP", 72, 2},  {"BYN", 933, 2},
    {"BZD", 84, 2},  {"CAD", 124, 2}, {"CDF", 976, 2}, {"CHE", 947, 2}, {"CHF", 756, 2},
    {"CHW", 948, 2}, {"CLF", 990, 4}, {"CLP", 152, 0}, {"CNY", 156, 2}, {"COP", 170, 2},
    {"COU", 970, 2}, {"CRC", 188, 2}, {"CUC", 931, 2}, {"CUP", 192, 2}, {"CVE", 132, 2},
    {"CZK", 203, 2}, {"DJF", 262, 0}, {"DKK", 208, 2}, {"DOP", 214, 2}, {"DZD", 12, 2},
    {"EGP", 818, 2}, {"ERN", 232, 2}, {"ETB", 230, 2}, {"EUR", 978, 2}, {"FJD", 242, 2},
    {"FKP", 238, 2}, {"GBP", 826, 2}, {"GEL", 981, 2}, {"GHS", 936, 2}, {"GIP", 292, 2},
    {"GMD", 270, 2}, {"GNF", 324, 0}, {"GTQ", 320, 2}, {"GYD", 328, 2}, {"HKD", 344, 2},
    {"HNL", 340, 2}, {"HTG", 332, 2}, {"HUF", 348, 2}, {"IDR", 360, 2}, {"ILS", 376, 2},
    {"INR", 356, 2}, {"IQD", 368, 3}, {"IRR", 364, 2}, {"ISK", 352, 0}, {"JMD", 388, 2},
    {"JOD", 400, 3}, {"JPY", 392, 0}, {"KES", 404, 2}, {"KGS", 417, 2}, {"KHR", 116, 2},
    {"KMF", 174, 0}, {"KPW", 408, 2}, {"KRW", 410, 0}, {"KWD", 414, 3}, {"KYD", 136, 2},
    {"KZT", 398, 2}, {"LAK", 418, 2}, {"LBP", 422, 2}, {"LKR", 144, 2}, {"LRD", 430, 2},
    {"LSL", 426, 2}, {"LYD", 434, 3}, {"MAD", 504, 2}, {"MDL", 498, 2}, {"MGA", 969, 2},
    {"MKD", 807, 2}, {"MMK", 104, 2}, {"MNT", 496, 2}, {"MOP", 446, 2}, {"MRU", 929, 2},
    {"MUR", 480, 2}, {"MVR", 462, 2}, {"MWK", 454, 2}, {"MXN", 484, 2}, {"MXV", 979, 2},
    {"MYR", 458, 2}, {"MZN", 943, 2}, {"NAD", 516, 2}, {"NGN", 566, 2}, {"NIO", 558, 2},
    {"NOK", 578, 2}, {"NPR", 524, 2}, {"NZD", 554, 2}, {"OMR", 512, 3}, {"PAB", 590, 2},
    {"PEN", 604, 2}, {"PGK", 598, 2}, {"PHP", 608, 2}, {"PKR", 586, 2}, {"PLN", 985, 2},
    {"PYG", 600, 0}, {"QAR", 634, 2}, {"RON", 946, 2}, {"RSD", 941, 2}, {"RUB", 643, 2},
    {"RWF", 646, 0}, {"SAR", 682, 2}, {"SBD", 90, 2},  {"SCR", 690, 2}, {"SDG", 938, 2},
    {"SEK", 752, 2}, {"SGD", 702, 2}, {"SHP", 654, 2}, {"SLE", 925, 2}, {"SLL", 694, 2},
    {"SOS", 706, 2}, {"SRD", 968, 2}, {"SSP", 728, 2}, {"STN", 930, 2}, {"SVC", 222, 2},
    {"SYP", 760, 2}, {"SZL", 748, 2}, {"THB", 764, 2}, {"TJS", 972, 2}, {"TMT", 934, 2},
    {"TND", 788, 3}, {"TOP", 776, 2}, {"TRY", 949, 2}, {"TTD", 780, 2}, {"TWD", 901, 2},
    {"TZS", 834, 2}, {"UAH", 980, 2}, {"UGX", 800, 0}, {"USD", 840, 2}, {"USN", 997, 2},
    {"UYI", 940, 0}, {"UYU", 858, 2}, {"UYW", 927, 4}, {"UZS", 860, 2}, {"VED", 926, 2},
    {"VES", 928, 2}, {"VND", 704, 0}, {"VUV", 548, 0}, {"WST", 882, 2}, {"XAF", 950, 0},
    {"XCD", 951, 2}, {"XCG", 532, 2}, {"XOF", 952, 0}, {"XPF", 953, 0}, {"YER", 886, 2},
    {"ZAR", 710, 2}, {"ZMW", 967, 2}, {"ZWG", 924, 2}, {"ZWL", 932, 2},
};

#define N_CURRENCIES (sizeof(currencies) / sizeof(currencies[0]))

static int compare_code(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const struct money_currency *)elem)->code);
}

const struct money_currency *money_currency_find(const char *code)
{
    if (code == NULL || strlen(code) != 3)
        return NULL;
    return bsearch(code, currencies, N_CURRENCIES, sizeof(currencies[0]), compare_code);
}

bool money_currency_is_valid(const char *code)
{
    return money_currency_find(code) != NULL;
}

int money_currency_digits(const char *code)
{
    const struct money_currency *c = money_currency_find(code);

    return c ? c->digits : -1;
}

const struct money_currency *money_currency_table(size_t *count)
{
    if (count)
        *count = N_CURRENCIES;
    return currencies;
}

grpc_status_code money_check_currency(const char *field, const char *code, trpc_status *st)
{
    if (code == NULL || code[0] == '\0')
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s is required", field);
    if (!money_currency_is_valid(code))
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "%s is not a valid iso 4217 currency code", field);
    return trpc_status_set(st, GRPC_STATUS_OK, "ok");
}

bool money_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

bool money_sub(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;

    if (__builtin_sub_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

/* mag = mag * 10 + d, unless that exceeds limit. */
static bool push_digit(uint64_t *mag, unsigned d, uint64_t limit)
{
    if (*mag > (limit - d) / 10)
        return false;
    *mag = *mag * 10 + d;
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

grpc_status_code money_parse(const char *text, const char *currency, int64_t *out, trpc_status *st)
{
    const struct money_currency *cur = money_currency_find(currency);
    const char *p = text;
    bool neg = false;
    uint64_t mag = 0, limit;
    int decimals = 0, i;

    if (cur == NULL)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "unknown currency (expected an iso 4217 code such as EUR)");
    if (p == NULL || *p == '\0')
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "amount is required");
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    /* |INT64_MIN| = INT64_MAX + 1 is reachable for negative amounts only */
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (!is_digit(*p))
        goto invalid;
    for (; is_digit(*p); p++)
        if (!push_digit(&mag, (unsigned)(*p - '0'), limit))
            goto range;
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            goto invalid;
        for (; is_digit(*p); p++) {
            if (++decimals > cur->digits)
                return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                                       "too many decimals for %s (at most %d)", cur->code,
                                       cur->digits);
            if (!push_digit(&mag, (unsigned)(*p - '0'), limit))
                goto range;
        }
    }
    if (*p != '\0')
        goto invalid;
    for (i = decimals; i < cur->digits; i++)
        if (!push_digit(&mag, 0, limit))
            goto range;
    if (neg)
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    else
        *out = (int64_t)mag;
    return trpc_status_set(st, GRPC_STATUS_OK, "ok");

invalid:
    return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                           "invalid amount (expected a decimal number such as 12.34)");
range:
    return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "amount out of range");
}

int money_format(int64_t minor_units, const char *currency, char *buf, size_t size)
{
    const struct money_currency *cur = money_currency_find(currency);
    uint64_t mag, scale = 1;
    int i;

    if (cur == NULL) {
        if (size > 0)
            buf[0] = '\0';
        return -1;
    }
    /* negate in unsigned arithmetic: -INT64_MIN does not fit in int64 */
    mag = minor_units < 0 ? 0 - (uint64_t)minor_units : (uint64_t)minor_units;
    if (cur->digits == 0)
        return snprintf(buf, size, "%s%" PRIu64, minor_units < 0 ? "-" : "", mag);
    for (i = 0; i < cur->digits; i++)
        scale *= 10;
    return snprintf(buf, size, "%s%" PRIu64 ".%0*" PRIu64, minor_units < 0 ? "-" : "", mag / scale,
                    cur->digits, mag % scale);
}
