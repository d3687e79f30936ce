/* migrate.c - see migrate.h.
 *
 * The order of work: read and check every file first (so a bad directory
 * changes nothing), take the advisory lock, read the history, refuse on any
 * disagreement, then apply what is pending, one transaction per file. The
 * lock is a session lock taken inside a short transaction whose local
 * lock_timeout bounds the wait without touching the session's settings
 * (session advisory locks survive the end of the transaction that took them). */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "pg.h"

struct mfile {
    long long version;
    char *filename; /* "0001_event_store.sql" */
    char *name;     /* "event_store" */
    char *sql;      /* the file's bytes, NUL-terminated */
    size_t len;
    char checksum[65];
    int applied;
};

struct mset {
    struct mfile *v;
    size_t n, cap;
};

void migrate_opts_init(struct migrate_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->lock_wait_ms = 600000;
}

void migrate_checksum(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        /* cannot happen with a working libcrypto; an impossible checksum then
         * refuses every applied file instead of passing silently */
        memset(out, 'x', 64);
        out[64] = '\0';
        return;
    }
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static void mset_free(struct mset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].filename);
        free(s->v[i].name);
        free(s->v[i].sql);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* "0001_event_store.sql" -> 1, "event_store". Returns 0 or -1. */
static int parse_filename(const char *fn, long long *version, const char **name, size_t *name_len)
{
    const char *p = fn;
    size_t len = strlen(fn);
    long long v = 0;
    int digits = 0;

    while (*p >= '0' && *p <= '9') {
        if (++digits > 15)
            return -1;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (digits == 0 || *p != '_' || len < 5 || strcmp(fn + len - 4, ".sql") != 0)
        return -1;
    p++;
    *name = p;
    *name_len = (size_t)(fn + len - 4 - p);
    if (*name_len == 0)
        return -1;
    for (size_t i = 0; i < *name_len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return -1;
    }
    *version = v;
    return 0;
}

static grpc_status_code read_file(const char *path, char **out, size_t *out_len, trpc_status *st)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    grpc_status_code code = GRPC_STATUS_OK;

    f = fopen(path, "rb");
    if (f == NULL) {
        code =
            trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (nb == NULL) {
                code = trpc_status_set(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                goto out;
            }
            buf = nb;
            cap += 65536;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        code = trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "cannot read %s", path);
        goto out;
    }
    buf[len] = '\0';
    /* the simple-query protocol stops at a NUL: the rest would be skipped */
    if (memchr(buf, '\0', len) != NULL) {
        code = trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "%s contains a NUL byte", path);
        goto out;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return code;
}

static int cmp_version(const void *a, const void *b)
{
    const struct mfile *x = a, *y = b;

    return (x->version > y->version) - (x->version < y->version);
}

static grpc_status_code scan_dir(const char *dir, struct mset *set, trpc_status *st)
{
    DIR *d = NULL;
    struct dirent *e;
    char path[PATH_MAX];
    grpc_status_code code = GRPC_STATUS_OK;

    d = opendir(dir);
    if (d == NULL)
        return trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "cannot open migrations directory %s: %s",
                               dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t flen = strlen(e->d_name);
        struct mfile *m;
        const char *name;
        size_t name_len;
        long long version;

        if (e->d_name[0] == '.' || flen < 4 || strcmp(e->d_name + flen - 4, ".sql") != 0)
            continue;
        if (parse_filename(e->d_name, &version, &name, &name_len) != 0) {
            code =
                trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                                "bad migration file name %s (expected NNNN_name.sql)", e->d_name);
            goto out;
        }
        if (set->n == set->cap) {
            size_t ncap = set->cap ? set->cap * 2 : 16;
            struct mfile *nv = realloc(set->v, ncap * sizeof(*nv));
            if (nv == NULL) {
                code = trpc_status_set(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                goto out;
            }
            set->v = nv;
            set->cap = ncap;
        }
        m = &set->v[set->n];
        memset(m, 0, sizeof(*m));
        set->n++;
        m->version = version;
        m->filename = strdup(e->d_name);
        m->name = strndup(name, name_len);
        if (m->filename == NULL || m->name == NULL) {
            code = trpc_status_set(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            goto out;
        }
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path)) {
            code = trpc_status_set(st, GRPC_STATUS_NOT_FOUND, "path too long: %s", dir);
            goto out;
        }
        code = read_file(path, &m->sql, &m->len, st);
        if (code != GRPC_STATUS_OK)
            goto out;
        migrate_checksum(m->sql, m->len, m->checksum);
    }
    if (set->n > 0)
        qsort(set->v, set->n, sizeof(set->v[0]), cmp_version);
    for (size_t i = 1; i < set->n; i++) {
        if (set->v[i].version == set->v[i - 1].version) {
            code = trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                                   "two migrations with version %lld: %s and %s", set->v[i].version,
                                   set->v[i - 1].filename, set->v[i].filename);
            goto out;
        }
    }
out:
    closedir(d);
    return code;
}

static struct mfile *find_version(struct mset *set, long long version)
{
    struct mfile key;

    if (set->n == 0)
        return NULL;
    key.version = version;
    return bsearch(&key, set->v, set->n, sizeof(set->v[0]), cmp_version);
}

static grpc_status_code take_lock(PGconn *conn, int wait_ms, trpc_status *st)
{
    static const char sql[] = "SELECT set_config('lock_timeout', $1, true), "
                              "set_config('statement_timeout', '0', true), "
                              "pg_advisory_lock($2)";
    char wait[PG_INT_BUF], key[PG_INT_BUF];
    const char *params[2] = {pg_int64_param(wait, wait_ms > 0 ? wait_ms : 0),
                             pg_int64_param(key, MIGRATE_LOCK_KEY)};
    PGresult *res = NULL;
    grpc_status_code code;

    code = pg_command(conn, "BEGIN", st, "could not start migrating");
    if (code != GRPC_STATUS_OK)
        return code;
    res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *s = pg_sqlstate(res);
        if (s != NULL && strcmp(s, "55P03") == 0) {
            log_error("migrate: gave up waiting %d ms for the migration lock", wait_ms);
            code = trpc_status_set(st, GRPC_STATUS_ABORTED,
                                   "timed out waiting for another migration runner");
        } else {
            code = pg_fail(res, st, "could not take the migration lock", "migrate: lock");
        }
        PQclear(res);
        pg_rollback_quietly(conn);
        return code;
    }
    PQclear(res);
    /* the lock outlives this commit: it is a session lock */
    return pg_command(conn, "COMMIT", st, "could not take the migration lock");
}

static void release_lock(PGconn *conn)
{
    char key[PG_INT_BUF];
    const char *params[1] = {pg_int64_param(key, MIGRATE_LOCK_KEY)};
    PGresult *res;

    if (PQstatus(conn) != CONNECTION_OK)
        return; /* a lost session released it */
    pg_rollback_quietly(conn);
    res = PQexecParams(conn, "SELECT pg_advisory_unlock($1)", 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warn("migrate: releasing the migration lock failed: %s", PQresultErrorMessage(res));
    PQclear(res);
}

/* Marks set entries applied; refuses any disagreement with the history. */
static grpc_status_code check_history(PGconn *conn, struct mset *set, const char *dir,
                                      long long *newest, trpc_status *st)
{
    static const char create[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                 " version bigint PRIMARY KEY CHECK (version >= 0),"
                                 " name text NOT NULL,"
                                 " checksum text NOT NULL CHECK (length(checksum) = 64),"
                                 " applied_at timestamptz NOT NULL DEFAULT now())";
    PGresult *res = NULL;
    grpc_status_code code;

    *newest = -1;
    res = PQexecParams(conn, create, 0, NULL, NULL, NULL, NULL, 0);
    code = pg_check(res, PGRES_COMMAND_OK, -1, st, "could not create schema_migrations",
                    "migrate: create schema_migrations");
    PQclear(res);
    res = NULL;
    if (code != GRPC_STATUS_OK)
        return code;

    res =
        PQexecParams(conn, "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
                     0, NULL, NULL, NULL, NULL, 0);
    code = pg_check(res, PGRES_TUPLES_OK, 3, st, "could not read schema_migrations",
                    "migrate: read schema_migrations");
    if (code != GRPC_STATUS_OK)
        goto out;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t version = 0;
        const char *name = PQgetvalue(res, i, 1);
        const char *sum = PQgetvalue(res, i, 2);
        struct mfile *m;

        if (pg_get_int64(res, i, 0, &version) != 0) {
            code = trpc_status_set(st, GRPC_STATUS_INTERNAL, "bad row in schema_migrations");
            goto out;
        }
        m = find_version(set, (long long)version);
        if (m == NULL) {
            code = trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                                   "applied migration %04lld_%s.sql is missing from %s",
                                   (long long)version, name, dir);
            goto out;
        }
        if (strcmp(m->name, name) != 0) {
            code = trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                                   "applied migration %lld was named %s, the file is %s",
                                   (long long)version, name, m->filename);
            goto out;
        }
        if (strcmp(m->checksum, sum) != 0) {
            code = trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                                   "applied migration %s was changed (checksum differs); "
                                   "never edit a landed migration, add a new one",
                                   m->filename);
            goto out;
        }
        m->applied = 1;
        *newest = (long long)version;
    }
    for (size_t i = 0; i < set->n; i++) {
        if (!set->v[i].applied && set->v[i].version < *newest) {
            code = trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                                   "migration %s is older than the newest applied version %lld; "
                                   "renumber it",
                                   set->v[i].filename, *newest);
            goto out;
        }
    }
out:
    PQclear(res);
    return code;
}

static grpc_status_code apply_one(PGconn *conn, const struct mfile *m, trpc_status *st)
{
    static const char record[] =
        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)";
    char version[PG_INT_BUF];
    const char *params[3] = {pg_int64_param(version, m->version), m->name, m->checksum};
    PGresult *res = NULL;
    ExecStatusType rs;
    grpc_status_code code;

    code = pg_command(conn, "BEGIN", st, "could not start a migration");
    if (code != GRPC_STATUS_OK)
        return code;
    /* A file holds many statements (and $$ bodies): only the simple-query
     * protocol runs it. It is trusted code from the release, with no values. */
    res = PQexec(conn, m->sql);
    rs = PQresultStatus(res);
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK && rs != PGRES_EMPTY_QUERY) {
        code = pg_fail(res, NULL, "", "migrate: %s failed", m->filename);
        trpc_status_set(st, code, "migration %s failed: %.150s", m->filename,
                        res && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                            ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                            : "connection lost");
        goto out;
    }
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        log_error("migrate: %s ended the runner's transaction", m->filename);
        code = trpc_status_set(st, GRPC_STATUS_FAILED_PRECONDITION,
                               "migration %s must not contain COMMIT or ROLLBACK", m->filename);
        goto out;
    }
    PQclear(res);
    res = PQexecParams(conn, record, 3, NULL, params, NULL, NULL, 0);
    code = pg_check(res, PGRES_COMMAND_OK, -1, st, "could not record a migration",
                    "migrate: record %s", m->filename);
    if (code != GRPC_STATUS_OK)
        goto out;
    code = pg_command(conn, "COMMIT", st, "could not commit a migration");
    if (code == GRPC_STATUS_OK)
        log_info("migrate: applied %s", m->filename);
out:
    PQclear(res);
    if (code != GRPC_STATUS_OK)
        pg_rollback_quietly(conn);
    return code;
}

grpc_status_code migrate_run(PGconn *conn, const struct migrate_opts *o, int *applied,
                             trpc_status *st)
{
    struct mset set = {0};
    long long newest = -1;
    int locked = 0, count = 0;
    grpc_status_code code;

    if (applied != NULL)
        *applied = 0;
    if (o->dir == NULL || o->dir[0] == '\0')
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "no migrations directory");
    if (PQstatus(conn) != CONNECTION_OK)
        return trpc_status_set(st, GRPC_STATUS_UNAVAILABLE, "database unavailable");
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "migrate needs an idle connection");

    code = scan_dir(o->dir, &set, st);
    if (code != GRPC_STATUS_OK)
        goto out;
    code = take_lock(conn, o->lock_wait_ms, st);
    if (code != GRPC_STATUS_OK)
        goto out;
    locked = 1;
    code = check_history(conn, &set, o->dir, &newest, st);
    if (code != GRPC_STATUS_OK)
        goto out;
    for (size_t i = 0; i < set.n; i++) {
        if (set.v[i].applied)
            continue;
        code = apply_one(conn, &set.v[i], st);
        if (code != GRPC_STATUS_OK)
            goto out;
        count++;
    }
    if (count == 0)
        log_info("migrate: up to date (version %lld)", newest);
out:
    if (locked)
        release_lock(conn);
    mset_free(&set);
    if (applied != NULL)
        *applied = count;
    return code;
}

static int is_dir(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int copy_out(const char *src, char *out, size_t cap)
{
    if (strlen(src) >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return -1;
    }
    memcpy(out, src, strlen(src) + 1);
    return 0;
}

int migrate_find_dir(const char *flag, const char *fallback, char *out, size_t cap)
{
    const char *env = getenv("TALLY_MIGRATIONS_DIR");
    char exe[PATH_MAX];
    char cand[PATH_MAX + 64];
    ssize_t n;

    if (flag != NULL && flag[0] != '\0')
        return copy_out(flag, out, cap);
    if (env != NULL && env[0] != '\0')
        return copy_out(env, out, cap);
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        char *slash;

        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(cand, sizeof(cand), "%s/../share/tally/migrations", exe);
            if (is_dir(cand))
                return copy_out(cand, out, cap);
        }
    }
    if (fallback != NULL && fallback[0] != '\0' && is_dir(fallback))
        return copy_out(fallback, out, cap);
    if (cap > 0)
        out[0] = '\0';
    return -1;
}
