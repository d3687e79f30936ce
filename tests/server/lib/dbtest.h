/* dbtest.h - small helpers shared by the database tests of server/lib, on
 * top of the shared harness (tests/harness): a fresh migrated database, a
 * fresh empty schema inside it, connections, one-value queries. Each helper
 * reports its failure on stderr; the caller asserts (a database test that
 * cannot get its database fails, never skips). Main thread only, except
 * dbtest_connect and dbtest_value, which any thread may call. */
#ifndef TESTS_SERVER_LIB_DBTEST_H
#define TESTS_SERVER_LIB_DBTEST_H

#include <stddef.h>

#include <libpq-fe.h>

#include "harness.h"

/* A new database with every migration applied (harness_db_create). Returns
 * 0 or -1. */
int dbtest_new_db(char conninfo[HARNESS_CONNINFO_MAX]);

/* A new empty database with a new empty schema, and a conninfo whose
 * search_path is that schema only, so unqualified names (schema_migrations,
 * the tables of migrations) land there: a blank slate for the migration
 * runner. Returns 0 or -1. */
int dbtest_new_schema(char conninfo[HARNESS_CONNINFO_MAX], char schema[64]);

/* pg_connect with tally's defaults (2 attempts). NULL on failure. */
PGconn *dbtest_connect(const char *conninfo);

/* Runs sql with text params; returns the first column of the first row as a
 * malloc'd string ("" for a command without rows), or NULL on error or SQL
 * NULL (printed). */
char *dbtest_value(PGconn *conn, const char *sql, int nparams, const char *const *params);

/* dbtest_value for a command: 0 on success, -1 on error. */
int dbtest_exec(PGconn *conn, const char *sql);

/* Writes a file (creating or truncating it). Returns 0 or -1. */
int dbtest_write_file(const char *dir, const char *name, const char *content);

/* A new empty directory under the harness's temporary folder; path written
 * to out (cap bytes). Returns 0 or -1. */
int dbtest_new_dir(char *out, size_t cap);

/* Sleeps ms milliseconds. */
void dbtest_sleep_ms(int ms);

#endif /* TESTS_SERVER_LIB_DBTEST_H */
