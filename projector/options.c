/* options.c - see options.h. */
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "tally-projector"

void projector_options_init(struct projector_options *o)
{
    memset(o, 0, sizeof(*o));
    o->batch_size = 500;
    o->poll_ms = 1000;
    o->outbox_retention_s = 7L * 24 * 3600;
    o->max_attempts = 5;
    o->backoff_ms = 200;
    o->lock_retry_ms = 1000;
}

void projector_options_usage(void)
{
    printf("\nprojector options:\n"
           "  --rebuild                replay the log into fresh query tables, swap them in, "
           "exit\n"
           "  --batch-size N           events per projection transaction, 1..1000 (500)\n"
           "  --poll-interval-ms N     safety-net poll without NOTIFY, 10..60000 (1000)\n"
           "  --outbox-retention D     delete published outbox rows older than D: seconds,\n"
           "                           or a number with s, m, h or d (7d)\n"
           "  --max-attempts N         failed attempts before a dead letter, 1..100 (5)\n"
           "  --retry-backoff-ms N     first retry delay, doubling up to 30 s, 1..60000 (200)\n"
           "  --lock-retry-ms N        standby's leader-lock attempts, 100..60000 (1000)\n");
}

int projector_options_duration(const char *s, long *seconds)
{
    char *end = NULL;
    long v, mult = 1;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    if (*end) {
        if (end[1] != '\0')
            return -1;
        switch (*end) {
        case 's':
            mult = 1;
            break;
        case 'm':
            mult = 60;
            break;
        case 'h':
            mult = 3600;
            break;
        case 'd':
            mult = 86400;
            break;
        default:
            return -1;
        }
    }
    if (v < 1 || v > 3650L * 86400 / mult)
        return -1;
    *seconds = v * mult;
    return 0;
}

static int parse_int(const char *s, long min, long max, int *out)
{
    char *end = NULL;
    long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int bad(const char *flag, const char *value, const char *expected)
{
    fprintf(stderr, "%s: invalid %s \"%s\" (expected %s)\n", PROG, flag, value ? value : "",
            expected);
    return -1;
}

int projector_options_parse(struct projector_options *o, int argc, char **argv, char **rest,
                            int *rest_argc)
{
    static const struct {
        const char *name;
        long min, max;
        size_t offset; /* of the int field; 0 for the special ones */
        const char *expected;
    } flags[] = {
        {"--batch-size", 1, 1000, offsetof(struct projector_options, batch_size), "1..1000"},
        {"--poll-interval-ms", 10, 60000, offsetof(struct projector_options, poll_ms), "10..60000"},
        {"--max-attempts", 1, 100, offsetof(struct projector_options, max_attempts), "1..100"},
        {"--retry-backoff-ms", 1, 60000, offsetof(struct projector_options, backoff_ms),
         "1..60000"},
        {"--lock-retry-ms", 100, 60000, offsetof(struct projector_options, lock_retry_ms),
         "100..60000"},
    };
    int n = 0;

    rest[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        size_t len;
        int matched = 0;

        if (strcmp(arg, "--") == 0) { /* the rest is not ours */
            while (i < argc)
                rest[n++] = argv[i++];
            break;
        }
        if (strcmp(arg, "--rebuild") == 0) {
            o->rebuild = 1;
            continue;
        }
        len = strcspn(arg, "=");
        if (strncmp(arg, "--outbox-retention", len) == 0 && len == strlen("--outbox-retention")) {
            value = arg[len] == '=' ? arg + len + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (value == NULL || projector_options_duration(value, &o->outbox_retention_s) != 0)
                return bad("--outbox-retention", value, "seconds, or N with s, m, h or d");
            continue;
        }
        for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
            if (strlen(flags[f].name) != len || strncmp(arg, flags[f].name, len) != 0)
                continue;
            value = arg[len] == '=' ? arg + len + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (parse_int(value, flags[f].min, flags[f].max,
                          (int *)(void *)((char *)o + flags[f].offset)) != 0)
                return bad(flags[f].name, value, flags[f].expected);
            matched = 1;
            break;
        }
        if (!matched)
            rest[n++] = argv[i];
    }
    rest[n] = NULL;
    *rest_argc = n;
    return 0;
}
