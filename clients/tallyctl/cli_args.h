/* cli_args.h - tallyctl's command-line parser: long options from several
 * option tables, positional arguments, and the subcommand name.
 *
 * Grammar: `--name`, `--name VALUE`, `--name=VALUE`, `-h`; `--` ends the
 * options. A token that starts with '-' followed by a digit ("-5.00") is a
 * positional argument, so negative numbers reach the value checks (which
 * explain what is wrong with them) instead of being reported as unknown
 * options. Options may come before or after positional arguments. Nothing
 * here allocates: values point into argv. */
#ifndef CLIENTS_TALLYCTL_CLI_ARGS_H
#define CLIENTS_TALLYCTL_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_ARGS_MAX_POS  16
#define CLI_ARGS_MAX_OPTS 64
#define CLI_ARGS_ERR_SIZE 256

enum cli_opt_kind {
    CLI_FLAG = 0, /* no value; given or not */
    CLI_VALUE,    /* one value; given twice, the last one wins */
    CLI_LIST,     /* repeatable; every value is kept */
};

/* One option of a table. Tables end with an entry whose name is NULL. */
struct cli_opt {
    const char *name; /* without the dashes: "idempotency-key" */
    enum cli_opt_kind kind;
    const char *metavar; /* "KEY" (NULL for flags) */
    const char *help;    /* one line for --help */
};

/* The result of a parse. Plain data; cli_args_parse fills it. */
struct cli_args {
    const char *pos[CLI_ARGS_MAX_POS]; /* positional arguments, in order */
    size_t n_pos;
    struct {
        const struct cli_opt *opt; /* the table entry (borrowed) */
        const char *value;         /* NULL for flags; points into argv */
    } opts[CLI_ARGS_MAX_OPTS];
    size_t n_opts;
    bool help; /* -h or --help was given */
    char err[CLI_ARGS_ERR_SIZE];
};

/* Parses argv[0..argc-1] (no program name) against the NULL-terminated list
 * of option tables `tables` (searched in order; the first table holding a
 * name wins). If stop_at_positional is true, parsing stops at the first
 * positional argument and returns its index in argv (the caller parses the
 * rest later: this is how the global options before the subcommand are
 * read); otherwise every token is consumed and the return value is argc.
 * -h and --help set a->help. Returns -1 with a one-line reason in a->err
 * ("unknown option --foo", "option --timeout needs a value", "too many
 * arguments") on error. a is reset first. */
int cli_args_parse(struct cli_args *a, int argc, char **argv, const struct cli_opt *const *tables,
                   bool stop_at_positional);

/* Appends the results of another parse (b) to a (the global options before
 * the subcommand and the rest). Returns 0, or -1 when a would overflow (then
 * a->err is set). */
int cli_args_merge(struct cli_args *a, const struct cli_args *b);

/* The value of option `name` (the last one given), or NULL when absent (and
 * for flags). */
const char *cli_args_get(const struct cli_args *a, const char *name);

/* True when option `name` was given (any kind). */
bool cli_args_has(const struct cli_args *a, const char *name);

/* Copies up to max values of a CLI_LIST option `name` into out, in the order
 * given; returns how many were given (which may exceed max). */
size_t cli_args_list(const struct cli_args *a, const char *name, const char **out, size_t max);

#endif /* CLIENTS_TALLYCTL_CLI_ARGS_H */
