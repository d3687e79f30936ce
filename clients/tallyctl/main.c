/* main.c - tallyctl: the command-line client of tally.
 *
 *   tallyctl [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]
 *
 * Reads the global options up to the subcommand, then the subcommand's
 * arguments and options (global options may follow the subcommand too),
 * answers --help, checks the number of arguments, and runs the subcommand
 * from the tables of cmd_write.c, cmd_read.c, cmd_log.c and cmd_watch.c.
 * The exit codes are listed in exitcode.h and printed by --help. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/log.h>

#include "cli_args.h"
#include "command.h"
#include "exitcode.h"
#include "session.h"

#define TALLYCTL_VERSION "0.1.0"

static const struct {
    const struct command *table;
    const char *title;
} groups[] = {
    {cmd_write_commands, "Commands (CommandService at --addr)"},
    {cmd_read_commands, "Queries (QueryService at --query-addr)"},
    {cmd_log_commands, "Event log (QueryService at --query-addr)"},
    {cmd_watch_commands, "Subscriptions (SubscriptionService at --subscribe-addr)"},
};
#define N_GROUPS (sizeof(groups) / sizeof(groups[0]))

/* Options only valid before the subcommand (`at` has its own --version). */
static const struct cli_opt main_opts[] = {
    {"version", CLI_FLAG, NULL, "print tallyctl's version"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static const struct command *find_command(const char *name)
{
    size_t g;
    const struct command *c;

    for (g = 0; g < N_GROUPS; g++) {
        for (c = groups[g].table; c->name != NULL; c++) {
            if (strcmp(c->name, name) == 0)
                return c;
        }
    }
    return NULL;
}

#define HELP_WIDTH 100 /* columns of --help text */
#define OPT_COLUMN 29  /* where an option's description starts */

/* Prints text from column col, wrapped at spaces to HELP_WIDTH; continuation
 * lines start at column indent. */
static void print_wrapped(FILE *f, const char *text, int col, int indent)
{
    const char *p = text;

    while (*p != '\0') {
        int room = HELP_WIDTH - col, n = (int)strlen(p);

        if (n > room) {
            n = room;
            while (n > 0 && p[n] != ' ')
                n--;
            if (n == 0) /* one long word: let it overflow */
                n = (int)strcspn(p, " ");
        }
        fprintf(f, "%.*s\n", n, p);
        p += n;
        while (*p == ' ')
            p++;
        if (*p != '\0')
            fprintf(f, "%*s", indent, "");
        col = indent;
    }
}

static void print_opts(FILE *f, const struct cli_opt *opts)
{
    const struct cli_opt *o;
    char left[64];

    for (o = opts; o != NULL && o->name != NULL; o++) {
        if (o->kind == CLI_FLAG)
            snprintf(left, sizeof(left), "--%s", o->name);
        else
            snprintf(left, sizeof(left), "--%s %s", o->name, o->metavar);
        if ((int)strlen(left) + 3 > OPT_COLUMN)
            fprintf(f, "  %s\n%*s", left, OPT_COLUMN, "");
        else
            fprintf(f, "  %-*s ", OPT_COLUMN - 3, left);
        print_wrapped(f, o->help, OPT_COLUMN, OPT_COLUMN);
    }
}

static void print_general_help(FILE *f)
{
    const struct command *c;
    char left[64];
    size_t g;

    fputs("tallyctl - the command-line client of tally, the event-sourced ledger\n"
          "\n"
          "usage: tallyctl [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]\n"
          "       tallyctl COMMAND --help\n",
          f);
    for (g = 0; g < N_GROUPS; g++) {
        fprintf(f, "\n%s:\n", groups[g].title);
        for (c = groups[g].table; c->name != NULL; c++) {
            snprintf(left, sizeof(left), "%s %s", c->name, c->args);
            fprintf(f, "  %-46s %s\n", left, c->summary);
        }
    }
    fputs("\nGlobal options (before or after COMMAND):\n", f);
    print_opts(f, session_opts);
    fputs("  --version                  print tallyctl's version\n"
          "  -h, --help                 show help (after COMMAND: the command's)\n"
          "\n"
          "Environment: TALLY_ADDR, TALLY_QUERY_ADDR, TALLY_SUBSCRIBE_ADDR, TALLY_TOKEN,\n"
          "TALLY_TLS_CA, TALLY_TLS_CERT, TALLY_TLS_KEY, TALLY_TLS_SERVER_NAME (the flags\n"
          "win). TLS: any --tls-* file turns it on for all three servers; a server\n"
          "whose certificate does not verify fails the call with UNAVAILABLE (9).\n"
          "\n"
          "Amounts are decimals in the currency's units: 12.34 EUR is 1234 cents, JPY has\n"
          "no decimals, KWD three; more decimals than the currency has are refused, never\n"
          "rounded. Ids are UUIDs. Positions are TX:POS, as commands print them: pass one\n"
          "as --min-position to read your own write, or as watch --from to resume.\n"
          "\n"
          "Output: text by default (tables for lists, key: value for one object);\n"
          "--json prints proto3 JSON (one Event per line for events, log, trace, watch).\n"
          "Errors: one line on stderr, \"tallyctl: COMMAND: STATUS: message\".\n"
          "\n",
          f);
    fputs(exitcode_help(), f);
}

static void print_command_help(const struct command *c, FILE *f)
{
    fprintf(f, "usage: tallyctl %s%s%s [OPTIONS]\n\n", c->name, c->args[0] != '\0' ? " " : "",
            c->args);
    /* the summary as a sentence */
    fprintf(f, "%c%s.\n", toupper((unsigned char)c->summary[0]), c->summary + 1);
    if (c->description != NULL)
        fprintf(f, "\n%s", c->description);
    fputs("\nOptions:\n", f);
    print_opts(f, c->opts);
    if (c->flags & COMMAND_FILTER)
        print_opts(f, command_filter_opts);
    if (c->flags & COMMAND_WRITE)
        print_opts(f, command_write_opts);
    if (c->flags & COMMAND_READ)
        print_opts(f, command_read_opts);
    fputs("\nGlobal options:\n", f);
    print_opts(f, session_opts);
    fputs("  -h, --help                 show this help\n"
          "\n"
          "Exit: 0 OK, 2 usage error, 3 INVALID_ARGUMENT, 4 NOT_FOUND, 5 ALREADY_EXISTS,\n"
          "6 FAILED_PRECONDITION, 7 ABORTED, 8 UNAUTHENTICATED, 9 UNAVAILABLE,\n"
          "10 DEADLINE_EXCEEDED, 11 UNIMPLEMENTED, 12 operation FAILED, 1 other\n"
          "(see 'tallyctl --help').\n",
          f);
}

/* Writes what is buffered; a failed write (a full disk, a closed pipe) must
 * not pass for success. */
static int finish_output(const char *cmd, int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "tallyctl: %s: cannot write the output\n", cmd);
        if (rc == EXITCODE_OK)
            rc = EXITCODE_OTHER;
    }
    return rc;
}

/* gRPC core's own log lines (e.g. "Handshake failed" for a TLS peer that
 * does not verify) would break the one-line error on stderr; the failed
 * call's status says the same. GRPC_VERBOSITY set: gRPC logs as usual. */
static void drop_grpc_log(gpr_log_func_args *args)
{
    (void)args;
}

int main(int argc, char **argv)
{
    const struct cli_opt *global_tables[] = {session_opts, main_opts, NULL};
    const struct cli_opt *cmd_tables[5];
    struct cli_args global, rest;
    const struct command *c;
    struct session s;
    const char *name;
    size_t n = 0;
    int i, rc;

    if (getenv("GRPC_VERBOSITY") == NULL)
        gpr_set_log_function(drop_grpc_log);
    i = cli_args_parse(&global, argc - 1, argv + 1, global_tables, true);
    if (i < 0) {
        fprintf(stderr, "tallyctl: %s (see 'tallyctl --help')\n", global.err);
        return EXITCODE_USAGE;
    }
    if (cli_args_has(&global, "version")) {
        printf("tallyctl %s\n", TALLYCTL_VERSION);
        return finish_output("version", EXITCODE_OK);
    }
    if (i == argc - 1) {
        if (global.help) {
            print_general_help(stdout);
            return finish_output("help", EXITCODE_OK);
        }
        fprintf(stderr, "tallyctl: missing command (see 'tallyctl --help')\n");
        return EXITCODE_USAGE;
    }
    name = argv[1 + i];
    if (strcmp(name, "help") == 0) {
        c = i + 2 < argc ? find_command(argv[2 + i]) : NULL;
        if (c != NULL)
            print_command_help(c, stdout);
        else
            print_general_help(stdout);
        return finish_output("help", EXITCODE_OK);
    }
    c = find_command(name);
    if (c == NULL) {
        fprintf(stderr, "tallyctl: unknown command \"%.40s\" (see 'tallyctl --help')\n", name);
        return EXITCODE_USAGE;
    }
    cmd_tables[n++] = session_opts;
    if (c->opts != NULL)
        cmd_tables[n++] = c->opts;
    if (c->flags & COMMAND_FILTER)
        cmd_tables[n++] = command_filter_opts;
    if (c->flags & COMMAND_WRITE)
        cmd_tables[n++] = command_write_opts;
    if (c->flags & COMMAND_READ)
        cmd_tables[n++] = command_read_opts;
    cmd_tables[n] = NULL;
    if (cli_args_parse(&rest, argc - 2 - i, argv + 2 + i, cmd_tables, false) < 0) {
        fprintf(stderr, "tallyctl: %s: %s (see 'tallyctl %s --help')\n", c->name, rest.err,
                c->name);
        return EXITCODE_USAGE;
    }
    /* the global options first, so that the same flag after the command wins */
    if (cli_args_merge(&global, &rest) != 0) {
        fprintf(stderr, "tallyctl: %s: %s\n", c->name, global.err);
        return EXITCODE_USAGE;
    }
    if (global.help) {
        print_command_help(c, stdout);
        return finish_output(c->name, EXITCODE_OK);
    }
    if ((int)global.n_pos < c->min_args || (int)global.n_pos > c->max_args) {
        fprintf(stderr, "tallyctl: %s: expected %s%s (see 'tallyctl %s --help')\n", c->name,
                c->args[0] != '\0' ? c->args : "no arguments",
                (int)global.n_pos < c->min_args ? "" : ", got more", c->name);
        return EXITCODE_USAGE;
    }
    rc = session_init(&s, c->name, &global);
    if (rc == EXITCODE_OK)
        rc = c->run(&s, &global);
    session_cleanup(&s);
    return finish_output(c->name, rc);
}
