/* cli_value.c - see cli_value.h. */
#include "cli_value.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/timestamp.pb-c.h"

#include "json.h"

/* Longest excerpt of the user's text quoted in a reason. */
#define QUOTE_MAX 40

int cli_value_currency(const char *text, char out[MONEY_CODE_SIZE], char *err, size_t errlen)
{
    size_t i;

    if (text == NULL || strlen(text) != 3)
        goto bad;
    for (i = 0; i < 3; i++) {
        if (!isalpha((unsigned char)text[i]) || (unsigned char)text[i] > 127)
            goto bad;
        out[i] = (char)toupper((unsigned char)text[i]);
    }
    out[3] = '\0';
    if (money_currency_is_valid(out))
        return 0;
bad:
    snprintf(err, errlen, "unknown currency \"%.*s\" (expected an ISO 4217 code such as EUR)",
             QUOTE_MAX, text != NULL ? text : "");
    out[0] = '\0';
    return -1;
}

int cli_value_amount(const char *text, const char *currency, bool allow_zero, int64_t *out,
                     char *err, size_t errlen)
{
    trpc_status st;
    int64_t v = 0;

    if (money_parse(text, currency, &v, &st) != GRPC_STATUS_OK) {
        snprintf(err, errlen, "invalid amount \"%.*s\": %s", QUOTE_MAX, text != NULL ? text : "",
                 st.msg);
        return -1;
    }
    if (v < 0 || (v == 0 && !allow_zero)) {
        snprintf(err, errlen, "invalid amount \"%.*s\": %s", QUOTE_MAX, text,
                 allow_zero ? "must not be negative" : "must be greater than zero");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_value_uuid(const char *what, const char *text, char out[UUID_STR_SIZE], char *err,
                   size_t errlen)
{
    if (text != NULL && uuid_normalize(text, out) == 0)
        return 0;
    snprintf(err, errlen, "%s \"%.*s\" is not a valid uuid", what, QUOTE_MAX,
             text != NULL ? text : "");
    return -1;
}

/* strtoull/strtoll accept spaces and signs; tallyctl's numbers are plain
 * digit strings, so check that first. */
static bool all_digits(const char *s, size_t n)
{
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

int cli_value_position(const char *text, uint64_t *tx_id, int64_t *global_position, char *err,
                       size_t errlen)
{
    const char *colon = text != NULL ? strchr(text, ':') : NULL;
    unsigned long long tx;
    long long pos;

    if (colon == NULL || !all_digits(text, (size_t)(colon - text)) ||
        !all_digits(colon + 1, strlen(colon + 1)))
        goto bad;
    errno = 0;
    tx = strtoull(text, NULL, 10);
    if (errno != 0)
        goto bad;
    pos = strtoll(colon + 1, NULL, 10);
    if (errno != 0)
        goto bad;
    *tx_id = (uint64_t)tx;
    *global_position = (int64_t)pos;
    return 0;
bad:
    snprintf(err, errlen, "invalid position \"%.*s\" (expected TX:POS as printed, e.g. 1234:56)",
             QUOTE_MAX, text != NULL ? text : "");
    return -1;
}

int cli_value_int64(const char *what, const char *text, int64_t min, int64_t max, int64_t *out,
                    char *err, size_t errlen)
{
    const char *digits = text;
    long long v;

    if (digits != NULL && *digits == '-')
        digits++;
    if (text == NULL || !all_digits(digits, strlen(digits)))
        goto bad;
    errno = 0;
    v = strtoll(text, NULL, 10);
    if (errno != 0 || v < min || v > max)
        goto bad;
    *out = (int64_t)v;
    return 0;
bad:
    snprintf(err, errlen,
             "invalid %s \"%.*s\" (expected an integer from %" PRId64 " to %" PRId64 ")", what,
             QUOTE_MAX, text != NULL ? text : "", min, max);
    return -1;
}

int cli_value_duration_ms(const char *text, int64_t *ms, char *err, size_t errlen)
{
    const char *p = text;
    int64_t v = 0, unit;

    if (p == NULL || !isdigit((unsigned char)*p))
        goto bad;
    for (; isdigit((unsigned char)*p); p++) {
        v = v * 10 + (*p - '0');
        if (v > 86400000)
            goto bad;
    }
    if (strcmp(p, "ms") == 0)
        unit = 1;
    else if (*p == '\0' || strcmp(p, "s") == 0)
        unit = 1000;
    else if (strcmp(p, "m") == 0)
        unit = 60000;
    else if (strcmp(p, "h") == 0)
        unit = 3600000;
    else
        goto bad;
    if (v == 0 || v > 86400000 / unit)
        goto bad;
    *ms = v * unit;
    return 0;
bad:
    snprintf(err, errlen,
             "invalid duration \"%.*s\" (expected e.g. 500ms, 30s, 2m or 1h, at most 24h)",
             QUOTE_MAX, text != NULL ? text : "");
    return -1;
}

int cli_value_time(const char *text, int64_t *seconds, int32_t *nanos, char *err, size_t errlen)
{
    char json[80], why[128];
    Google__Protobuf__Timestamp *ts = NULL;
    size_t i, n = text != NULL ? strlen(text) : 0;

    /* the JSON codec knows RFC 3339 (proto3's Timestamp mapping): hand it the
     * text as a JSON string, after making sure nothing in it is JSON syntax */
    if (n == 0 || n > 64)
        goto bad;
    for (i = 0; i < n; i++) {
        if (!isgraph((unsigned char)text[i]) || text[i] == '"' || text[i] == '\\')
            goto bad;
    }
    snprintf(json, sizeof(json), "\"%s\"", text);
    ts = (Google__Protobuf__Timestamp *)pbjson_decode(&google__protobuf__timestamp__descriptor,
                                                      json, strlen(json), why, sizeof(why));
    if (ts == NULL)
        goto bad;
    *seconds = ts->seconds;
    *nanos = ts->nanos;
    google__protobuf__timestamp__free_unpacked(ts, NULL);
    return 0;
bad:
    snprintf(err, errlen,
             "invalid time \"%.*s\" (expected RFC 3339, e.g. 2024-05-01T12:00:00Z or "
             "2024-05-01T14:00:00+02:00)",
             QUOTE_MAX, text != NULL ? text : "");
    return -1;
}

/* The value of n decimal digits (checked by all_digits). */
static int digits_value(const char *s, size_t n)
{
    int v = 0;
    size_t i;

    for (i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int cli_value_date(const char *text, char *err, size_t errlen)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;

    if (text == NULL || strlen(text) != 10 || text[4] != '-' || text[7] != '-' ||
        !all_digits(text, 4) || !all_digits(text + 5, 2) || !all_digits(text + 8, 2))
        goto bad;
    y = digits_value(text, 4);
    m = digits_value(text + 5, 2);
    d = digits_value(text + 8, 2);
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && is_leap(y)))
        goto bad;
    return 0;
bad:
    snprintf(err, errlen, "invalid date \"%.*s\" (expected YYYY-MM-DD)", QUOTE_MAX,
             text != NULL ? text : "");
    return -1;
}
