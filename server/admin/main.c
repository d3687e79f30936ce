/* tally-admin - the operator's tool: applies migrations, creates and lists
 * tenants, creates, lists and revokes API tokens, lists dead letters and
 * asks the projector to retry them.
 *
 * Output is for scripts: results on stdout (one record per line, fields
 * separated by tabs), errors as one line "tally-admin: ..." on stderr. Exit
 * status 0 on success, 1 on failure, 2 on a usage error. The library's log
 * is silent unless --verbose or --log-level asks for it. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "auth.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"
#include "uuid.h"

#ifndef TALLY_SOURCE_MIGRATIONS_DIR
#define TALLY_SOURCE_MIGRATIONS_DIR NULL
#endif

#define EXIT_USAGE 2

/* Above LOG_ERROR: nothing is logged (the tool reports errors itself). */
#define LOG_QUIET ((enum log_level)(LOG_ERROR + 1))

static const char *prog = "tally-admin";

/* Options every command accepts, before or after the command words. */
struct common {
    const char *db; /* NULL: not given (then TALLY_DATABASE_URL, then libpq defaults) */
};

enum { OPT_DB = 1000, OPT_LOG_LEVEL, OPT_VERBOSE };

#define COMMON_LONGOPTS                                                                            \
    {"db", required_argument, NULL, OPT_DB}, {"help", no_argument, NULL, 'h'},                     \
        {"verbose", no_argument, NULL, OPT_VERBOSE},                                               \
    {                                                                                              \
        "log-level", required_argument, NULL, OPT_LOG_LEVEL                                        \
    }

static const char usage_main[] =
    "usage: tally-admin [--db CONNINFO] [--verbose] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  migrate [--dir DIR]                      apply pending migrations\n"
    "  tenant create NAME                       create a tenant, print its id\n"
    "  tenant list                              list tenants\n"
    "  token create --tenant T [--name N] [--quiet]\n"
    "                                           create a token, print it once\n"
    "  token list --tenant T                    list a tenant's tokens (never the secret)\n"
    "  token revoke TOKEN_ID                    revoke a token\n"
    "  dead-letters list [--all] [--projection P]\n"
    "                                           list the projector's dead letters\n"
    "  dead-letters retry ID|--all [--projection P]\n"
    "                                           ask the projector to retry them\n"
    "\n"
    "options (accepted by every command):\n"
    "  --db CONNINFO      libpq conninfo or URL (env TALLY_DATABASE_URL;\n"
    "                     default: libpq's PGHOST, PGDATABASE, ...)\n"
    "  --verbose          log progress and database errors to stderr\n"
    "  --log-level LEVEL  debug|info|warn|error\n"
    "  --help             this text; COMMAND --help for a command's\n"
    "\n"
    "exit status: 0 success, 1 failure, 2 usage error\n";

static const char usage_migrate[] =
    "usage: tally-admin migrate [--dir DIR] [--db CONNINFO]\n"
    "\n"
    "Applies the pending migrations NNNN_name.sql of DIR in order, each in its\n"
    "own transaction, recorded in schema_migrations. Concurrent runs wait for\n"
    "each other. Refuses when an applied file was changed or is missing.\n"
    "\n"
    "  --dir DIR  the migrations directory (env TALLY_MIGRATIONS_DIR; default:\n"
    "             <prefix>/share/tally/migrations next to the executable, else\n"
    "             the source tree's migrations/)\n"
    "\n"
    "Prints \"applied N migration(s)\" or \"up to date\".\n";

static const char usage_tenant[] =
    "usage: tally-admin tenant create NAME\n"
    "       tally-admin tenant list\n"
    "\n"
    "create  creates a tenant (NAME: 1 to 128 characters) and\n"
    "        prints its id\n"
    "list    prints one line per tenant: ID<TAB>NAME<TAB>CREATED_AT\n";

static const char usage_tenant_create[] =
    "usage: tally-admin tenant create NAME [--db CONNINFO]\n"
    "\n"
    "Creates a tenant named NAME (1 to 128 characters) and prints its id.\n";

static const char usage_tenant_list[] =
    "usage: tally-admin tenant list [--db CONNINFO]\n"
    "\n"
    "Prints one line per tenant, by name: ID<TAB>NAME<TAB>CREATED_AT (UTC).\n";

static const char usage_token[] =
    "usage: tally-admin token create --tenant NAME_OR_ID [--name N] [--quiet]\n"
    "       tally-admin token list --tenant NAME_OR_ID\n"
    "       tally-admin token revoke TOKEN_ID\n"
    "\n"
    "create  prints the new token alone on the first line of stdout (it is\n"
    "        shown only this once) and its id on stderr\n"
    "list    ID<TAB>NAME<TAB>CREATED_AT<TAB>active|revoked (never the secret)\n"
    "revoke  revokes a token; servers stop accepting it within seconds\n";

static const char usage_token_create[] =
    "usage: tally-admin token create --tenant NAME_OR_ID [--name N] [--quiet] [--db CONNINFO]\n"
    "\n"
    "Creates an API token for the tenant and prints it alone on one line of\n"
    "stdout: it is stored only as a SHA-256 and cannot be shown again. The\n"
    "token id goes to stderr (for `token revoke`), unless --quiet.\n"
    "\n"
    "  --tenant T  tenant name or id (required)\n"
    "  --name N    a label for the token (default \"default\")\n"
    "  --quiet     print the token only\n";

static const char usage_token_list[] =
    "usage: tally-admin token list --tenant NAME_OR_ID [--db CONNINFO]\n"
    "\n"
    "Prints the tenant's tokens, oldest first:\n"
    "ID<TAB>NAME<TAB>CREATED_AT<TAB>active|revoked REVOKED_AT (UTC).\n"
    "Tokens and their hashes are never shown.\n";

static const char usage_token_revoke[] =
    "usage: tally-admin token revoke TOKEN_ID [--db CONNINFO]\n"
    "\n"
    "Revokes the token (revoking twice is fine). Prints \"revoked TOKEN_ID\".\n";

static const char usage_dead_letters[] =
    "usage: tally-admin dead-letters list [--all] [--projection P]\n"
    "       tally-admin dead-letters retry ID|--all [--projection P]\n"
    "\n"
    "An event a projection kept failing on is parked as a dead letter, and the\n"
    "later events of its aggregate wait behind it (sequenced), while the other\n"
    "aggregates go on. Projections: rm (the read model), saga (the transfer\n"
    "saga; its aggregate is the transfer).\n"
    "\n"
    "list   one line per dead letter, oldest first: ID<TAB>PROJECTION<TAB>\n"
    "       TX_ID/POSITION<TAB>TENANT<TAB>AGGREGATE_TYPE/ID<TAB>EVENT_TYPE<TAB>\n"
    "       ATTEMPTS<TAB>STATE<TAB>ERROR, STATE being failed, queued:ID (waits\n"
    "       behind dead letter ID), retrying or resolved (with --all only)\n"
    "retry  asks the projector to apply again, in log order, every unresolved\n"
    "       dead letter of the aggregate of ID (or of all aggregates with\n"
    "       --all); a letter that fails again stays, with one more attempt\n";

static const char usage_dead_letters_list[] =
    "usage: tally-admin dead-letters list [--all] [--projection P] [--db CONNINFO]\n"
    "\n"
    "Prints the unresolved dead letters (--all: the resolved ones too), oldest\n"
    "first: ID<TAB>PROJECTION<TAB>TX_ID/POSITION<TAB>TENANT<TAB>\n"
    "AGGREGATE_TYPE/ID<TAB>EVENT_TYPE<TAB>ATTEMPTS<TAB>STATE<TAB>ERROR\n"
    "STATE: failed | queued:ID | retrying | resolved.\n"
    "\n"
    "  --projection P  only projection P (rm, saga)\n";

static const char usage_dead_letters_retry[] =
    "usage: tally-admin dead-letters retry ID|--all [--projection P] [--db CONNINFO]\n"
    "\n"
    "Asks the projector to retry the unresolved dead letters of the aggregate\n"
    "of dead letter ID (all of them, in log order: the later ones wait behind\n"
    "the first), or of every aggregate with --all (of projection P only, with\n"
    "--projection), and wakes it. Prints \"retry requested for N dead\n"
    "letter(s)\". Watch the outcome with `dead-letters list`.\n";

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s%s%s: ", prog, cmd[0] ? " " : "", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see %s%s%s --help)\n", prog, cmd[0] ? " " : "", cmd);
    return EXIT_USAGE;
}

static int failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int failure(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAILURE;
}

/* A library status as the one error line. */
static int status_failure(const trpc_status *st)
{
    int hidden = log_min_level > LOG_ERROR &&
                 (st->code == GRPC_STATUS_INTERNAL || st->code == GRPC_STATUS_UNAVAILABLE);

    return failure("%s%s", st->msg, hidden ? " (--verbose for details)" : "");
}

/* Handles an option shared by all commands. Returns 0 when handled, -2 after
 * printing the help (exit 0), or an exit status (bad value, not an option of
 * this command). */
static int common_opt(int opt, struct common *c, const char *cmd, const char *usage)
{
    switch (opt) {
    case OPT_DB:
        c->db = optarg;
        return 0;
    case OPT_VERBOSE:
        log_min_level = LOG_INFO;
        return 0;
    case OPT_LOG_LEVEL:
        if (log_level_parse(optarg, &log_min_level) != 0)
            return usage_error(cmd, "unknown log level \"%s\" (expected debug|info|warn|error)",
                               optarg);
        return 0;
    case 'h':
        fputs(usage, stdout);
        return -2; /* help: exit 0 */
    default:
        return usage_error(cmd, "unexpected option");
    }
}

/* getopt_long over argv (argv[0] = the command word), opterr off, our own
 * messages. The top level stops at the command word ("+"); commands let
 * options and arguments mix (GNU permutation: arguments end up at optind).
 * Returns the next option, -1 at the end, or '?' after printing a usage
 * error. */
static int next_opt(int argc, char **argv, const struct option *longopts, const char *cmd, int top)
{
    int opt = getopt_long(argc, argv, top ? "+:h" : ":h", longopts, NULL);

    /* optopt names a short option; for a long one it is 0 and the word is
     * the last one getopt consumed */
    if (opt == '?' && optopt != 0) {
        usage_error(cmd, "unknown option -%c", optopt);
        return '?';
    }
    if (opt == '?') {
        usage_error(cmd, "unknown option %s", argv[optind - 1]);
        return '?';
    }
    if (opt == ':') {
        usage_error(cmd, "option %s needs a value", argv[optind - 1]);
        return '?';
    }
    return opt;
}

/* Starts option parsing of a command (argv[0] = its last word). */
static void opts_reset(void)
{
    optind = 0; /* glibc: full re-initialization */
    opterr = 0;
}

/* Parses the options of a command whose only options are the common ones.
 * Positional arguments: at most maxpos, into pos, count in *npos. Returns 0
 * to go on, -2 after --help (exit 0), or an exit status. */
static int parse_common_only(int argc, char **argv, struct common *c, const char *cmd,
                             const char *usage, char **pos, int maxpos, int *npos)
{
    static const struct option longopts[] = {COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int opt, r;

    *npos = 0;
    opts_reset();
    while ((opt = next_opt(argc, argv, longopts, cmd, 0)) != -1) {
        if (opt == '?')
            return EXIT_USAGE;
        r = common_opt(opt, c, cmd, usage);
        if (r != 0)
            return r;
    }
    if (argc - optind > maxpos)
        return usage_error(cmd, "unexpected argument \"%s\"", argv[optind + maxpos]);
    *npos = argc - optind;
    for (int i = 0; i < *npos; i++)
        pos[i] = argv[optind + i];
    return 0;
}

static const char *database_url(const struct common *c)
{
    const char *env;

    if (c->db != NULL)
        return c->db;
    env = getenv("TALLY_DATABASE_URL");
    return env != NULL ? env : "";
}

static PGconn *connect_db(const struct common *c, int for_migrate)
{
    struct pg_opts o;
    trpc_status st;
    PGconn *conn;

    pg_opts_init(&o);
    o.conninfo = database_url(c);
    o.application_name = "tally-admin";
    o.connect_attempts = 3;
    o.backoff_ms = 200;
    if (for_migrate)
        o.statement_timeout_ms = 0; /* a migration may take long; lock_timeout still bounds waits */
    conn = pg_connect(&o, &st);
    if (conn == NULL)
        failure("cannot connect to the database: %s", pg_last_connect_error());
    return conn;
}

/* Control characters in stored names would break the one-line records. */
static void print_field(const char *s)
{
    for (; *s != '\0'; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static int cmd_migrate(int argc, char **argv, struct common *c)
{
    static const struct option longopts[] = {
        COMMON_LONGOPTS, {"dir", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0}};
    const char *dir_flag = NULL;
    char dir[4096];
    struct migrate_opts mo;
    trpc_status st;
    PGconn *conn = NULL;
    int opt, r, applied = 0, rc = EXIT_FAILURE;

    opts_reset();
    while ((opt = next_opt(argc, argv, longopts, "migrate", 0)) != -1) {
        if (opt == '?')
            return EXIT_USAGE;
        if (opt == 'd') {
            dir_flag = optarg;
            continue;
        }
        r = common_opt(opt, c, "migrate", usage_migrate);
        if (r != 0)
            return r == -2 ? EXIT_SUCCESS : r;
    }
    if (optind < argc)
        return usage_error("migrate", "unexpected argument \"%s\"", argv[optind]);
    if (migrate_find_dir(dir_flag, TALLY_SOURCE_MIGRATIONS_DIR, dir, sizeof(dir)) != 0)
        return failure("no migrations directory found (use --dir or TALLY_MIGRATIONS_DIR)");

    conn = connect_db(c, 1);
    if (conn == NULL)
        return EXIT_FAILURE;
    migrate_opts_init(&mo);
    mo.dir = dir;
    if (migrate_run(conn, &mo, &applied, &st) != GRPC_STATUS_OK) {
        rc = failure("migrate: %s", st.msg);
        goto out;
    }
    if (applied == 0)
        printf("up to date\n");
    else
        printf("applied %d migration%s\n", applied, applied == 1 ? "" : "s");
    rc = EXIT_SUCCESS;
out:
    PQfinish(conn);
    return rc;
}

/* Finds a tenant by id (a uuid) or else by name; writes its id. */
static grpc_status_code tenant_resolve(PGconn *conn, const char *arg, char out[UUID_STR_SIZE],
                                       trpc_status *st)
{
    static const char by_id[] = "SELECT tenant_id FROM tenants WHERE tenant_id = $1";
    static const char by_name[] = "SELECT tenant_id FROM tenants WHERE name = $1";
    const char *params[1] = {arg};
    PGresult *res = NULL;
    grpc_status_code code;

    if (uuid_is_valid(arg)) {
        res = PQexecParams(conn, by_id, 1, NULL, params, NULL, NULL, 0);
        code = pg_check(res, PGRES_TUPLES_OK, 1, st, "could not look up the tenant",
                        "admin: tenant by id");
        if (code != GRPC_STATUS_OK || PQntuples(res) == 1)
            goto out;
        PQclear(res);
    }
    res = PQexecParams(conn, by_name, 1, NULL, params, NULL, NULL, 0);
    code = pg_check(res, PGRES_TUPLES_OK, 1, st, "could not look up the tenant",
                    "admin: tenant by name");
    if (code == GRPC_STATUS_OK && PQntuples(res) == 0)
        code = trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "tenant \"%.128s\" not found", arg);
out:
    if (code == GRPC_STATUS_OK)
        snprintf(out, UUID_STR_SIZE, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return code;
}

static int cmd_tenant_create(int argc, char **argv, struct common *c)
{
    static const char sql[] =
        "INSERT INTO tenants (tenant_id, name) VALUES (gen_random_uuid(), $1) RETURNING tenant_id";
    char *pos[1];
    const char *params[1];
    trpc_status st;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int npos, r, rc = EXIT_FAILURE;

    r = parse_common_only(argc, argv, c, "tenant create", usage_tenant_create, pos, 1, &npos);
    if (r != 0)
        return r == -2 ? EXIT_SUCCESS : r;
    if (npos != 1)
        return usage_error("tenant create", "missing NAME");
    if (!auth_name_is_valid(pos[0]))
        return usage_error("tenant create",
                           "invalid tenant name (1 to %d characters, no control characters)",
                           AUTH_NAME_CHARS);
    conn = connect_db(c, 0);
    if (conn == NULL)
        return EXIT_FAILURE;
    params[0] = pos[0];
    res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 1, &st, "could not create the tenant",
                 "admin: create tenant") != GRPC_STATUS_OK) {
        if (st.code == GRPC_STATUS_ALREADY_EXISTS)
            rc = failure("tenant \"%s\" already exists", pos[0]);
        else
            rc = status_failure(&st);
        goto out;
    }
    printf("%s\n", PQgetvalue(res, 0, 0));
    rc = EXIT_SUCCESS;
out:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static int cmd_tenant_list(int argc, char **argv, struct common *c)
{
    static const char sql[] = "SELECT tenant_id, name, to_char(created_at AT TIME ZONE 'UTC', "
                              "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM tenants ORDER BY name";
    char *pos[1];
    trpc_status st;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int npos, r, rc = EXIT_FAILURE;

    r = parse_common_only(argc, argv, c, "tenant list", usage_tenant_list, pos, 0, &npos);
    if (r != 0)
        return r == -2 ? EXIT_SUCCESS : r;
    conn = connect_db(c, 0);
    if (conn == NULL)
        return EXIT_FAILURE;
    res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 3, &st, "could not list tenants", "admin: list tenants") !=
        GRPC_STATUS_OK) {
        rc = status_failure(&st);
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        printf("%s\t", PQgetvalue(res, i, 0));
        print_field(PQgetvalue(res, i, 1));
        printf("\t%s\n", PQgetvalue(res, i, 2));
    }
    rc = EXIT_SUCCESS;
out:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static int cmd_token_create(int argc, char **argv, struct common *c)
{
    static const struct option longopts[] = {COMMON_LONGOPTS,
                                             {"tenant", required_argument, NULL, 't'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {NULL, 0, NULL, 0}};
    const char *tenant = NULL, *name = "default";
    char tenant_id[UUID_STR_SIZE], token[AUTH_TOKEN_LEN + 1], token_id[AUTH_UUID_LEN + 1];
    trpc_status st;
    PGconn *conn = NULL;
    int opt, r, quiet = 0, rc = EXIT_FAILURE;

    opts_reset();
    while ((opt = next_opt(argc, argv, longopts, "token create", 0)) != -1) {
        if (opt == '?')
            return EXIT_USAGE;
        if (opt == 't' || opt == 'n' || opt == 'q') {
            if (opt == 't')
                tenant = optarg;
            else if (opt == 'n')
                name = optarg;
            else
                quiet = 1;
            continue;
        }
        r = common_opt(opt, c, "token create", usage_token_create);
        if (r != 0)
            return r == -2 ? EXIT_SUCCESS : r;
    }
    if (optind < argc)
        return usage_error("token create", "unexpected argument \"%s\"", argv[optind]);
    if (tenant == NULL)
        return usage_error("token create", "--tenant is required");
    if (!auth_name_is_valid(name))
        return usage_error("token create",
                           "invalid token name (1 to %d characters, no control characters)",
                           AUTH_NAME_CHARS);
    conn = connect_db(c, 0);
    if (conn == NULL)
        return EXIT_FAILURE;
    if (tenant_resolve(conn, tenant, tenant_id, &st) != GRPC_STATUS_OK ||
        auth_token_create(conn, tenant_id, name, token, token_id, &st) != GRPC_STATUS_OK) {
        rc = status_failure(&st);
        goto out;
    }
    printf("%s\n", token);
    fflush(stdout);
    if (!quiet)
        fprintf(stderr, "token id %s (tenant %s); the token above is shown only once\n", token_id,
                tenant_id);
    rc = EXIT_SUCCESS;
out:
    memset(token, 0, sizeof(token));
    PQfinish(conn);
    return rc;
}

static int cmd_token_list(int argc, char **argv, struct common *c)
{
    static const struct option longopts[] = {
        COMMON_LONGOPTS, {"tenant", required_argument, NULL, 't'}, {NULL, 0, NULL, 0}};
    /* no token_hash here, ever */
    static const char sql[] =
        "SELECT token_id, name, to_char(created_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), CASE WHEN revoked_at IS NULL THEN 'active' "
        "ELSE 'revoked ' || to_char(revoked_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END "
        "FROM api_tokens WHERE tenant_id = $1 ORDER BY created_at, token_id";
    const char *tenant = NULL;
    char tenant_id[UUID_STR_SIZE];
    const char *params[1] = {tenant_id};
    trpc_status st;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int opt, r, rc = EXIT_FAILURE;

    opts_reset();
    while ((opt = next_opt(argc, argv, longopts, "token list", 0)) != -1) {
        if (opt == '?')
            return EXIT_USAGE;
        if (opt == 't') {
            tenant = optarg;
            continue;
        }
        r = common_opt(opt, c, "token list", usage_token_list);
        if (r != 0)
            return r == -2 ? EXIT_SUCCESS : r;
    }
    if (optind < argc)
        return usage_error("token list", "unexpected argument \"%s\"", argv[optind]);
    if (tenant == NULL)
        return usage_error("token list", "--tenant is required");
    conn = connect_db(c, 0);
    if (conn == NULL)
        return EXIT_FAILURE;
    if (tenant_resolve(conn, tenant, tenant_id, &st) != GRPC_STATUS_OK) {
        rc = status_failure(&st);
        goto out;
    }
    res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 4, &st, "could not list tokens", "admin: list tokens") !=
        GRPC_STATUS_OK) {
        rc = status_failure(&st);
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        printf("%s\t", PQgetvalue(res, i, 0));
        print_field(PQgetvalue(res, i, 1));
        printf("\t%s\t%s\n", PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
    }
    rc = EXIT_SUCCESS;
out:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static int cmd_token_revoke(int argc, char **argv, struct common *c)
{
    char *pos[1];
    trpc_status st;
    PGconn *conn = NULL;
    int npos, r, rc = EXIT_FAILURE;

    r = parse_common_only(argc, argv, c, "token revoke", usage_token_revoke, pos, 1, &npos);
    if (r != 0)
        return r == -2 ? EXIT_SUCCESS : r;
    if (npos != 1)
        return usage_error("token revoke", "missing TOKEN_ID");
    if (!uuid_is_valid(pos[0]))
        return usage_error("token revoke", "\"%.64s\" is not a token id (a uuid)", pos[0]);
    conn = connect_db(c, 0);
    if (conn == NULL)
        return EXIT_FAILURE;
    if (auth_token_revoke(conn, pos[0], &st) != GRPC_STATUS_OK) {
        rc = status_failure(&st);
        goto out;
    }
    printf("revoked %s\n", pos[0]);
    rc = EXIT_SUCCESS;
out:
    PQfinish(conn);
    return rc;
}

/* ---- dead letters ---- */

static int parse_dead_letter_opts(int argc, char **argv, struct common *c, const char *cmd,
                                  const char *usage, int *all, const char **projection, char **pos,
                                  int maxpos, int *npos)
{
    static const struct option longopts[] = {COMMON_LONGOPTS,
                                             {"all", no_argument, NULL, 'a'},
                                             {"projection", required_argument, NULL, 'p'},
                                             {NULL, 0, NULL, 0}};
    int opt, r;

    opts_reset();
    while ((opt = next_opt(argc, argv, longopts, cmd, 0)) != -1) {
        if (opt == '?')
            return EXIT_USAGE;
        if (opt == 'a') {
            *all = 1;
            continue;
        }
        if (opt == 'p') {
            *projection = optarg;
            continue;
        }
        r = common_opt(opt, c, cmd, usage);
        if (r != 0)
            return r;
    }
    if (argc - optind > maxpos)
        return usage_error(cmd, "unexpected argument \"%s\"", argv[optind + maxpos]);
    *npos = argc - optind;
    for (int i = 0; i < *npos; i++)
        pos[i] = argv[optind + i];
    return 0;
}

static int cmd_dead_letters_list(int argc, char **argv, struct common *c)
{
    static const char sql[] =
        "SELECT id, projection, tx_id::text || '/' || global_position, tenant_id,"
        "       aggregate_type || '/' || aggregate_id, COALESCE(event_type, ''), attempts,"
        "       CASE WHEN resolved_at IS NOT NULL THEN 'resolved'"
        "            WHEN retry_requested_at IS NOT NULL THEN 'retrying'"
        "            WHEN queued_behind IS NOT NULL THEN 'queued:' || queued_behind"
        "            ELSE 'failed' END, error"
        "  FROM dead_letters"
        " WHERE ($1::boolean OR resolved_at IS NULL) AND ($2::text IS NULL OR projection = $2)"
        " ORDER BY projection, tx_id, global_position";
    const char *projection = NULL;
    const char *params[2];
    char *pos[1];
    trpc_status st;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int all = 0, npos, r, rc = EXIT_FAILURE;

    r = parse_dead_letter_opts(argc, argv, c, "dead-letters list", usage_dead_letters_list, &all,
                               &projection, pos, 0, &npos);
    if (r != 0)
        return r == -2 ? EXIT_SUCCESS : r;
    conn = connect_db(c, 0);
    if (conn == NULL)
        return EXIT_FAILURE;
    params[0] = all ? "true" : "false";
    params[1] = projection;
    res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 9, &st, "could not list dead letters",
                 "admin: list dead letters") != GRPC_STATUS_OK) {
        rc = status_failure(&st);
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        for (int f = 0; f < 8; f++)
            printf("%s\t", PQgetvalue(res, i, f));
        print_field(PQgetvalue(res, i, 8));
        putchar('\n');
    }
    rc = EXIT_SUCCESS;
out:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static int cmd_dead_letters_retry(int argc, char **argv, struct common *c)
{
    /* every unresolved row of the aggregate of $1 (or of all aggregates):
       a chain is retried as a whole, in log order */
    static const char by_id[] =
        "WITH target AS ("
        "  SELECT projection, tenant_id, aggregate_type, aggregate_id, resolved_at"
        "    FROM dead_letters WHERE id = $1::bigint"
        "), upd AS ("
        "  UPDATE dead_letters d SET retry_requested_at = now()"
        "    FROM target t"
        "   WHERE d.resolved_at IS NULL AND d.projection = t.projection"
        "     AND d.tenant_id = t.tenant_id AND d.aggregate_type = t.aggregate_type"
        "     AND d.aggregate_id = t.aggregate_id"
        "  RETURNING d.id"
        ") SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM target"
        "          WHERE resolved_at IS NOT NULL), (SELECT count(*) FROM upd)";
    static const char all_sql[] =
        "WITH upd AS ("
        "  UPDATE dead_letters SET retry_requested_at = now()"
        "   WHERE resolved_at IS NULL AND ($1::text IS NULL OR projection = $1)"
        "  RETURNING id"
        ") SELECT 1, 0, count(*) FROM upd";
    const char *projection = NULL;
    const char *params[1];
    char *pos[1];
    char *end = NULL;
    trpc_status st;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int all = 0, npos, r, rc = EXIT_FAILURE;

    r = parse_dead_letter_opts(argc, argv, c, "dead-letters retry", usage_dead_letters_retry, &all,
                               &projection, pos, 1, &npos);
    if (r != 0)
        return r == -2 ? EXIT_SUCCESS : r;
    if (all == (npos == 1))
        return usage_error("dead-letters retry", "give either ID or --all");
    if (npos == 1 && (strtoll(pos[0], &end, 10) <= 0 || *end != '\0'))
        return usage_error("dead-letters retry", "\"%.64s\" is not a dead letter id", pos[0]);
    conn = connect_db(c, 0);
    if (conn == NULL)
        return EXIT_FAILURE;
    params[0] = all ? projection : pos[0];
    res = PQexecParams(conn, all ? all_sql : by_id, 1, NULL, params, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, 3, &st, "could not request the retry",
                 "admin: retry dead letters") != GRPC_STATUS_OK) {
        rc = status_failure(&st);
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
        rc = failure("dead letter %s not found", pos[0]);
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "0") != 0) {
        rc = failure("dead letter %s is resolved already", pos[0]);
        goto out;
    }
    printf("retry requested for %s dead letter%s\n", PQgetvalue(res, 0, 2),
           strcmp(PQgetvalue(res, 0, 2), "1") == 0 ? "" : "s");
    PQclear(res);
    /* a wake-up for the projector (it also looks every second) */
    res = PQexecParams(conn, "SELECT pg_notify('tally_outbox', '')", 0, NULL, NULL, NULL, NULL, 0);
    rc = EXIT_SUCCESS;
out:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

struct action {
    const char *name;
    int (*run)(int argc, char **argv, struct common *c);
};

/* "tenant ACTION ..." / "token ACTION ...": argv[0] is the group word. */
static int run_group(int argc, char **argv, struct common *c, const char *group, const char *usage,
                     const struct action *actions)
{
    if (argc < 2)
        return usage_error(group, "missing action");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return EXIT_SUCCESS;
    }
    for (const struct action *a = actions; a->name != NULL; a++)
        if (strcmp(argv[1], a->name) == 0)
            return a->run(argc - 1, argv + 1, c);
    return usage_error(group, "unknown action \"%s\"", argv[1]);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    static const struct action tenant_actions[] = {
        {"create", cmd_tenant_create}, {"list", cmd_tenant_list}, {NULL, NULL}};
    static const struct action token_actions[] = {{"create", cmd_token_create},
                                                  {"list", cmd_token_list},
                                                  {"revoke", cmd_token_revoke},
                                                  {NULL, NULL}};
    static const struct action dead_letter_actions[] = {
        {"list", cmd_dead_letters_list}, {"retry", cmd_dead_letters_retry}, {NULL, NULL}};
    struct common c = {NULL};
    const char *cmd;
    int opt, r;

    log_set_ident(prog);
    log_min_level = LOG_QUIET;
    opterr = 0;
    /* options before the command; "+" stops at the command word */
    while ((opt = next_opt(argc, argv, longopts, "", 1)) != -1) {
        if (opt == '?')
            return EXIT_USAGE;
        r = common_opt(opt, &c, "", usage_main);
        if (r != 0)
            return r == -2 ? EXIT_SUCCESS : r;
    }
    if (optind >= argc)
        return usage_error("", "missing command");
    cmd = argv[optind];
    argc -= optind;
    argv += optind;
    if (strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(argc, argv, &c);
    if (strcmp(cmd, "tenant") == 0)
        return run_group(argc, argv, &c, "tenant", usage_tenant, tenant_actions);
    if (strcmp(cmd, "token") == 0)
        return run_group(argc, argv, &c, "token", usage_token, token_actions);
    if (strcmp(cmd, "dead-letters") == 0)
        return run_group(argc, argv, &c, "dead-letters", usage_dead_letters, dead_letter_actions);
    return usage_error("", "unknown command \"%s\"", cmd);
}
