/* cli_args.c - see cli_args.h. Hand-written rather than getopt_long because
 * the option set depends on the subcommand, which is only known after the
 * global options are read, and because getopt would take "-5" for an
 * option. */
#include "cli_args.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const struct cli_opt *find_opt(const struct cli_opt *const *tables, const char *name,
                                      size_t len)
{
    size_t t;
    const struct cli_opt *o;

    for (t = 0; tables != NULL && tables[t] != NULL; t++) {
        for (o = tables[t]; o->name != NULL; o++) {
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                return o;
        }
    }
    return NULL;
}

static bool is_option(const char *tok)
{
    if (tok[0] != '-' || tok[1] == '\0')
        return false; /* "" and "-" are positional */
    if (isdigit((unsigned char)tok[1]))
        return false; /* a negative number */
    return true;
}

static int add_opt(struct cli_args *a, const struct cli_opt *o, const char *value)
{
    if (a->n_opts == CLI_ARGS_MAX_OPTS) {
        snprintf(a->err, sizeof(a->err), "too many options");
        return -1;
    }
    a->opts[a->n_opts].opt = o;
    a->opts[a->n_opts].value = value;
    a->n_opts++;
    return 0;
}

int cli_args_parse(struct cli_args *a, int argc, char **argv, const struct cli_opt *const *tables,
                   bool stop_at_positional)
{
    int i;
    bool only_pos = false;

    memset(a, 0, sizeof(*a));
    for (i = 0; i < argc; i++) {
        const char *tok = argv[i];
        const char *name, *eq, *value = NULL;
        const struct cli_opt *o;
        size_t len;

        if (only_pos || !is_option(tok)) {
            if (stop_at_positional)
                return i;
            if (a->n_pos == CLI_ARGS_MAX_POS) {
                snprintf(a->err, sizeof(a->err), "too many arguments");
                return -1;
            }
            a->pos[a->n_pos++] = tok;
            continue;
        }
        if (strcmp(tok, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(tok, "-h") == 0 || strcmp(tok, "--help") == 0) {
            a->help = true;
            continue;
        }
        if (tok[1] != '-') {
            snprintf(a->err, sizeof(a->err), "unknown option %.64s", tok);
            return -1;
        }
        name = tok + 2;
        eq = strchr(name, '=');
        len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        o = find_opt(tables, name, len);
        if (o == NULL) {
            snprintf(a->err, sizeof(a->err), "unknown option --%.*s", (int)(len > 64 ? 64 : len),
                     name);
            return -1;
        }
        if (o->kind == CLI_FLAG) {
            if (eq != NULL) {
                snprintf(a->err, sizeof(a->err), "option --%s takes no value", o->name);
                return -1;
            }
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(a->err, sizeof(a->err), "option --%s needs a value (%s)", o->name,
                     o->metavar != NULL ? o->metavar : "VALUE");
            return -1;
        }
        if (add_opt(a, o, value) != 0)
            return -1;
    }
    return argc;
}

int cli_args_merge(struct cli_args *a, const struct cli_args *b)
{
    size_t i;

    if (a->n_pos + b->n_pos > CLI_ARGS_MAX_POS) {
        snprintf(a->err, sizeof(a->err), "too many arguments");
        return -1;
    }
    for (i = 0; i < b->n_pos; i++)
        a->pos[a->n_pos++] = b->pos[i];
    for (i = 0; i < b->n_opts; i++) {
        if (add_opt(a, b->opts[i].opt, b->opts[i].value) != 0)
            return -1;
    }
    a->help = a->help || b->help;
    return 0;
}

const char *cli_args_get(const struct cli_args *a, const char *name)
{
    size_t i;
    const char *v = NULL;

    for (i = 0; i < a->n_opts; i++) {
        if (strcmp(a->opts[i].opt->name, name) == 0)
            v = a->opts[i].value;
    }
    return v;
}

bool cli_args_has(const struct cli_args *a, const char *name)
{
    size_t i;

    for (i = 0; i < a->n_opts; i++) {
        if (strcmp(a->opts[i].opt->name, name) == 0)
            return true;
    }
    return false;
}

size_t cli_args_list(const struct cli_args *a, const char *name, const char **out, size_t max)
{
    size_t i, n = 0;

    for (i = 0; i < a->n_opts; i++) {
        if (strcmp(a->opts[i].opt->name, name) != 0)
            continue;
        if (n < max)
            out[n] = a->opts[i].value;
        n++;
    }
    return n;
}
