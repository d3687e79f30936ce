/* fold.h - the witness: the read model computed from scratch by a fold of
 * the whole event log in the test process (the domain's account_evolve for
 * balances and statuses, plain C for the rest), compared row by row with
 * the tables the projector wrote.
 *
 * Both sides become canonical text lines, one per row (A| accounts, E|
 * entries, T| transfers, U| usage_daily; timestamps as epoch microseconds,
 * NULL as empty), sorted and compared; the first differences are printed. */
#ifndef TESTS_PROJECTOR_FOLD_H
#define TESTS_PROJECTOR_FOLD_H

#include <stddef.h>

#include <libpq-fe.h>

/* Folds every event of conn's database and compares with the tables of
 * schema (e.g. "rm"). *rows (may be NULL) gets the number of lines
 * compared. Returns 0 when equal, -1 when not (or on an error; printed). */
int fold_compare(PGconn *conn, const char *schema, size_t *rows);

#endif /* TESTS_PROJECTOR_FOLD_H */
