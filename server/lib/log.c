/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum log_level log_min_level = LOG_INFO;
static const char *ident = "tally";

int log_level_parse(const char *s, enum log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};

    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_set_ident(const char *s)
{
    ident = s;
}

void log_write(enum log_level lvl, const char *file, int line, const char *fmt, ...)
{
    static const char *const tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char buf[2048];
    struct timeval tv;
    struct tm tm;
    const char *base = strrchr(file, '/');
    size_t n;
    va_list ap;
    int r;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(buf + n, sizeof(buf) - n, ".%03dZ %s %s %s:%d: ", (int)(tv.tv_usec / 1000), ident,
                 tags[lvl], base ? base + 1 : file, line);
    if (r > 0)
        n += (size_t)r < sizeof(buf) - n ? (size_t)r : sizeof(buf) - n - 1;
    va_start(ap, fmt);
    r = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
    va_end(ap);
    if (r > 0)
        n += (size_t)r < sizeof(buf) - n ? (size_t)r : sizeof(buf) - n - 1;
    /* strip trailing newlines (libpq messages end in one), then add ours */
    while (n > 0 && buf[n - 1] == '\n')
        n--;
    buf[n++] = '\n';
    (void)!write(STDERR_FILENO, buf, n);
}
