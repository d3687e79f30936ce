/* qsuites.h - the suites of test_query, one file each (see test_query.c for
 * what the binary covers and how it runs). */
#ifndef TESTS_QUERY_QSUITES_H
#define TESTS_QUERY_QSUITES_H

#include <CUnit/CUnit.h>

/* test_query.c: every RPC's happy path and filters on a known history
 * (tenant R; fills RD). */
extern CU_TestInfo rm_tests[];
int rm_init(void);

/* tq_errors.c: every error of every RPC; forged and mismatched page tokens;
 * tenant isolation for every RPC. */
extern CU_TestInfo error_tests[];
int error_init(void);
extern CU_TestInfo isolation_tests[];
int isolation_init(void);

/* tq_paging.c: paging ListAccounts and ListEntries while rows arrive. */
extern CU_TestInfo paging_tests[];
int paging_init(void);

/* tq_history.c: GetAccountAt against a hand-computed history across
 * snapshots, by version and by time. */
extern CU_TestInfo history_tests[];
int history_init(void);

/* tq_chain.c: ListEventsByCorrelation shows each transfer saga's chain. */
extern CU_TestInfo chain_tests[];
int chain_init(void);

/* tq_ryw.c: read-your-writes (1,000 iterations) and DEADLINE_EXCEEDED while
 * the projector is down. */
extern CU_TestInfo ryw_tests[];
int ryw_init(void);

/* tq_status.c: GetProjectionStatus: lag and backlog while the projector is
 * stopped, an old open transaction named, dead letters counted. */
extern CU_TestInfo status_tests[];
int status_init(void);

#endif /* TESTS_QUERY_QSUITES_H */
