/* migrate.h - applies migrations/NNNN_name.sql in version order.
 *
 * Each file runs in its own transaction together with its row in
 * schema_migrations(version, name, checksum, applied_at); checksum is the
 * SHA-256 (hex) of the file's bytes. A session advisory lock serializes
 * runners: a second runner waits for the first, then finds nothing to do.
 * Before applying anything the runner refuses (FAILED_PRECONDITION, a clear
 * message, nothing applied) when an applied file's checksum or name changed,
 * an applied version is missing from the directory, or a new file has a
 * version below the newest applied one. Files in the directory that do not
 * end in ".sql" are ignored; a ".sql" file not named NNNN_name.sql (digits,
 * '_', then [A-Za-z0-9_-]) is an error, as are two files with one version.
 * A file must not contain its own COMMIT/ROLLBACK (detected and refused).
 *
 * Not thread-safe per connection (one PGconn per thread, as always). */
#ifndef SERVER_MIGRATE_H
#define SERVER_MIGRATE_H

#include <stddef.h>

#include <libpq-fe.h>

#include "trpc.h"

/* The key of the session advisory lock held while migrating. */
#define MIGRATE_LOCK_KEY 0x74616c6c796d6967LL /* "tallymig" in ASCII */

struct migrate_opts {
    const char *dir;  /* the migrations directory (borrowed) */
    int lock_wait_ms; /* how long to wait for another runner; 0 = forever. Default 600000 */
};

/* Sets dir = NULL, lock_wait_ms = 600000. */
void migrate_opts_init(struct migrate_opts *o);

/* Brings the database to the newest migration in o->dir. conn must be idle
 * (no open transaction); it is left idle and without the lock. Statement
 * timeouts are the session's (tally-admin disables statement_timeout).
 * *applied (may be NULL) receives the number of files applied. Logs each
 * file applied at info level. Returns OK, or a code with st set:
 * FAILED_PRECONDITION (directory and history disagree, bad file names),
 * NOT_FOUND (directory unreadable), ABORTED (lock wait timed out), or the
 * database's code for a failed file (its transaction rolled back; earlier
 * files stay applied). The message names the file. */
grpc_status_code migrate_run(PGconn *conn, const struct migrate_opts *o, int *applied,
                             trpc_status *st);

/* Picks the migrations directory: `flag` when non-NULL and non-empty, else
 * $TALLY_MIGRATIONS_DIR when set and non-empty (both used as given, even if
 * missing, so a typo is reported, not papered over), else the first of these
 * that is a directory: <directory of the executable>/../share/tally/migrations
 * (an install), `fallback` (e.g. the source tree's migrations/, passed in by
 * the build; may be NULL). Writes the path into out (cap bytes). Returns 0,
 * or -1 when nothing was found (out then holds ""). Reads the environment:
 * call at startup. */
int migrate_find_dir(const char *flag, const char *fallback, char *out, size_t cap);

/* SHA-256 of len bytes as 64 lower-case hex digits plus NUL. */
void migrate_checksum(const void *data, size_t len, char out[65]);

#endif /* SERVER_MIGRATE_H */
