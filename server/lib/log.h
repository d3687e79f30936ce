/* log.h - one line per event on stderr: time, level, source, message.
 * Levels are tested before the arguments are evaluated. Thread-safe (each
 * line is written with a single write). Never log tokens or conninfo. */
#ifndef SERVER_LOG_H
#define SERVER_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

extern enum log_level log_min_level;

/* Parses "debug", "info", "warn", "error"; returns 0, or -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out);

/* Prefix for every line (the program name); borrowed, static storage. */
void log_set_ident(const char *ident);

void log_write(enum log_level lvl, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_at(lvl, ...)                                                                           \
    do {                                                                                           \
        if ((lvl) >= log_min_level)                                                                \
            log_write((lvl), __FILE__, __LINE__, __VA_ARGS__);                                     \
    } while (0)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)

#endif /* SERVER_LOG_H */
