/* options.h - tally-projector's own command-line flags, on top of the
 * daemons' common ones (config.h):
 *
 *   --rebuild                  replay the whole log into fresh query tables
 *                              (schema rm_rebuild), swap them in, exit
 *   --batch-size N             events per projection transaction, 1..1000 (500)
 *   --poll-interval-ms N       safety-net poll when no NOTIFY comes, 10..60000 (1000)
 *   --outbox-retention D       delete published outbox rows older than D:
 *                              seconds, or a number with s, m, h or d (7d)
 *   --max-attempts N           failed attempts before an event becomes a dead
 *                              letter, 1..100 (5)
 *   --retry-backoff-ms N       wait after the first failed attempt; doubles
 *                              up to 30 s, 1..60000 (200)
 *   --lock-retry-ms N          how often a standby tries the leader lock,
 *                              100..60000 (1000)
 *
 * Each takes "--flag value" or "--flag=value". */
#ifndef PROJECTOR_OPTIONS_H
#define PROJECTOR_OPTIONS_H

#include <stddef.h>

struct projector_options {
    int rebuild;
    int batch_size;
    int poll_ms;
    long outbox_retention_s;
    int max_attempts;
    int backoff_ms;
    int lock_retry_ms;
};

/* Sets the defaults. */
void projector_options_init(struct projector_options *o);

/* Takes the flags above out of argv (argv[0] kept), writing the remaining
 * arguments in order to rest (capacity argc + 1, NULL-terminated) and
 * their count to *rest_argc. Returns 0, or -1 after printing one line
 * "<prog>: <what> (<why>)" to stderr for a missing or bad value. */
int projector_options_parse(struct projector_options *o, int argc, char **argv, char **rest,
                            int *rest_argc);

/* Parses a duration ("90", "90s", "15m", "12h", "7d") into seconds
 * (1 .. 3650 days). Returns 0 or -1. */
int projector_options_duration(const char *s, long *seconds);

/* Prints the flags above (for --help). */
void projector_options_usage(void);

#endif /* PROJECTOR_OPTIONS_H */
