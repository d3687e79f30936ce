/* dbtest.c - see dbtest.h. */
#include "dbtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pg.h"

int dbtest_new_db(char conninfo[HARNESS_CONNINFO_MAX])
{
    if (harness_db_create(conninfo) != 0) {
        fprintf(stderr, "dbtest: no test database\n");
        return -1;
    }
    return 0;
}

int dbtest_new_schema(char conninfo[HARNESS_CONNINFO_MAX], char schema[64])
{
    static unsigned seq;
    char base[HARNESS_CONNINFO_MAX], blankdb[HARNESS_CONNINFO_MAX], db[64], sql[160];
    PGconn *conn = NULL;
    int rc = -1;

    /* A database of its own, not the migrated one: migrations also create
     * objects outside search_path (schema rm, roles), which already exist in
     * a migrated database. */
    if (dbtest_new_db(base) != 0)
        return -1;
    snprintf(schema, 64, "blank_%u", ++seq);
    snprintf(db, sizeof(db), "tally_blank_%ld_%u", (long)getpid(), seq);
    conn = dbtest_connect(base);
    if (conn == NULL)
        goto out;
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db); /* our own identifier */
    if (dbtest_exec(conn, sql) != 0)
        goto out;
    PQfinish(conn);
    if (snprintf(blankdb, sizeof(blankdb), "%s dbname=%s", base, db) >= (int)sizeof(blankdb)) {
        fprintf(stderr, "dbtest: conninfo too long\n");
        conn = NULL;
        goto out;
    }
    conn = dbtest_connect(blankdb);
    if (conn == NULL)
        goto out;
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
    if (dbtest_exec(conn, sql) != 0)
        goto out;
    if (snprintf(conninfo, HARNESS_CONNINFO_MAX, "%s options='-csearch_path=%s'", blankdb,
                 schema) >= HARNESS_CONNINFO_MAX) {
        fprintf(stderr, "dbtest: conninfo too long\n");
        goto out;
    }
    rc = 0;
out:
    PQfinish(conn);
    return rc;
}

PGconn *dbtest_connect(const char *conninfo)
{
    struct pg_opts o;
    trpc_status st;
    PGconn *conn;

    pg_opts_init(&o);
    o.conninfo = conninfo;
    o.application_name = "tally-test";
    o.connect_attempts = 2;
    conn = pg_connect(&o, &st);
    if (conn == NULL)
        fprintf(stderr, "dbtest: cannot connect: %s\n", pg_last_connect_error());
    return conn;
}

char *dbtest_value(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(res);
    char *v = NULL;

    if (s == PGRES_COMMAND_OK) {
        v = strdup("");
    } else if (s == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0 &&
               !PQgetisnull(res, 0, 0)) {
        v = strdup(PQgetvalue(res, 0, 0));
    } else {
        fprintf(stderr, "dbtest: %s: %s\n", sql,
                s == PGRES_TUPLES_OK ? "no value" : PQresultErrorMessage(res));
    }
    PQclear(res);
    return v;
}

int dbtest_exec(PGconn *conn, const char *sql)
{
    char *v = dbtest_value(conn, sql, 0, NULL);
    int rc = v != NULL ? 0 : -1;

    free(v);
    return rc;
}

int dbtest_write_file(const char *dir, const char *name, const char *content)
{
    char path[1024];
    FILE *f;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "dbtest: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fputs(content, f) == EOF)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int dbtest_new_dir(char *out, size_t cap)
{
    static unsigned seq;
    const char *root = harness_tmpdir();

    if (root == NULL)
        return -1;
    snprintf(out, cap, "%s/dir-%u", root, ++seq);
    if (mkdir(out, 0700) != 0) {
        fprintf(stderr, "dbtest: mkdir %s: %s\n", out, strerror(errno));
        return -1;
    }
    return 0;
}

void dbtest_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
