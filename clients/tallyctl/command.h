/* command.h - one tallyctl subcommand: its name, arguments, help and
 * options, and the function that runs it. Each cmd_*.c file exports a table
 * of them; main.c dispatches over all tables.
 *
 * Option groups: every command takes session_opts (session.h); commands
 * with COMMAND_WRITE also take command_write_opts (--idempotency-key,
 * --expected-version, --correlation-id), commands with COMMAND_READ take
 * command_read_opts (--min-position), commands with COMMAND_FILTER take
 * command_filter_opts (--type, --id, --prefix, --correlation). */
#ifndef CLIENTS_TALLYCTL_COMMAND_H
#define CLIENTS_TALLYCTL_COMMAND_H

#include <stdbool.h>

#include "google/protobuf/wrappers.pb-c.h"
#include "tally/v1/events.pb-c.h"
#include "tally/v1/types.pb-c.h"

#include "cli_args.h"
#include "session.h"
#include "uuid.h"

enum command_flags {
    COMMAND_WRITE = 1 << 0,  /* a CommandService RPC */
    COMMAND_READ = 1 << 1,   /* a QueryService RPC with min_position */
    COMMAND_FILTER = 1 << 2, /* takes command_filter_opts (log, watch) */
};

struct command {
    const char *name;           /* "deposit"; NULL ends a table */
    const char *args;           /* "ACCOUNT AMOUNT CURRENCY" */
    const char *summary;        /* one line for `tallyctl --help` */
    const char *description;    /* paragraphs for `tallyctl CMD --help`, or NULL */
    const struct cli_opt *opts; /* command-specific options (NULL-terminated), or NULL */
    unsigned flags;             /* enum command_flags */
    int min_args, max_args;     /* positional arguments accepted */
    /* Runs the command; returns the exit code (exitcode.h). Arguments are
     * counted already; values are not checked yet. */
    int (*run)(struct session *s, const struct cli_args *a);
};

extern const struct cli_opt command_write_opts[];
extern const struct cli_opt command_read_opts[];

/* The tables (cmd_write.c, cmd_read.c, cmd_log.c, cmd_watch.c). */
extern const struct command cmd_write_commands[];
extern const struct command cmd_read_commands[];
extern const struct command cmd_log_commands[];
extern const struct command cmd_watch_commands[];

/* Reads --idempotency-key and --expected-version into *key and *ver (ver
 * points to storage the caller provides, *ver_out to it or NULL when the
 * option is absent). Returns 0, or EXITCODE_USAGE after printing why. */
int command_write_common(const struct session *s, const struct cli_args *a, const char **key,
                         Google__Protobuf__Int64Value *ver, Google__Protobuf__Int64Value **ver_out);

/* Reads --min-position into *pos (storage from the caller); *pos_out is set
 * to pos or NULL when absent. Returns 0, or EXITCODE_USAGE after printing
 * why. */
int command_read_common(const struct session *s, const struct cli_args *a, Tally__V1__Position *pos,
                        Tally__V1__Position **pos_out);

/* Prints a message in --json form or returns false when not in JSON mode:
 * `if (command_json(s, msg, &rc)) return rc;`. *rc is 0, or EXITCODE_OTHER
 * after printing why the message could not be encoded. */
bool command_json(const struct session *s, const ProtobufCMessage *msg, int *rc);

/* ---- events (log, events, trace, watch) ---- */

/* --type, --id, --prefix, --correlation: the EventFilter of log and watch. */
extern const struct cli_opt command_filter_opts[];

#define COMMAND_FILTER_MAX 16
/* An EventFilter and the storage it points into. */
struct command_filter {
    Tally__V1__EventFilter filter;
    char *types[COMMAND_FILTER_MAX];
    char *prefixes[COMMAND_FILTER_MAX];
    char id[UUID_STR_SIZE];
};

/* Fills f from the filter options; f->filter borrows from a and f. Returns
 * 0, or EXITCODE_USAGE after printing why. */
int command_filter(const struct session *s, const struct cli_args *a, struct command_filter *f);

/* Prints one event: in --json mode its proto3 JSON on one line, otherwise
 * "POSITION  TIME  STREAM  vVERSION  EVENT  DETAILS". Returns 0, or
 * EXITCODE_OTHER after printing why it could not be encoded. */
int command_print_event_line(const struct session *s, const Tally__V1__Event *e);

#endif /* CLIENTS_TALLYCTL_COMMAND_H */
