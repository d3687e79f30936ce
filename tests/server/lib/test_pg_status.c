/* test_pg_status.c - SQLSTATE -> gRPC status (server/lib/pg.c), pure: one or
 * more codes of every class in /usr/share/postgresql/15/errcodes.txt, the
 * exceptions STYLE.md §6 names, and the int64/xid8 parameter helpers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "pg.h"

struct mapping {
    const char *sqlstate;
    grpc_status_code want;
    const char *what;
};

static const struct mapping mappings[] = {
    /* 23: integrity constraint violations */
    {"23505", GRPC_STATUS_ALREADY_EXISTS, "unique_violation"},
    {"23502", GRPC_STATUS_INVALID_ARGUMENT, "not_null_violation"},
    {"23514", GRPC_STATUS_INVALID_ARGUMENT, "check_violation"},
    {"23503", GRPC_STATUS_FAILED_PRECONDITION, "foreign_key_violation"},
    {"23P01", GRPC_STATUS_FAILED_PRECONDITION, "exclusion_violation"},
    {"23001", GRPC_STATUS_FAILED_PRECONDITION, "restrict_violation"},
    {"23000", GRPC_STATUS_FAILED_PRECONDITION, "integrity_constraint_violation"},
    /* 22: data exceptions */
    {"22000", GRPC_STATUS_INVALID_ARGUMENT, "data_exception"},
    {"22003", GRPC_STATUS_INVALID_ARGUMENT, "numeric_value_out_of_range"},
    {"22P02", GRPC_STATUS_INVALID_ARGUMENT, "invalid_text_representation"},
    {"22021", GRPC_STATUS_INVALID_ARGUMENT, "character_not_in_repertoire"},
    {"22012", GRPC_STATUS_INVALID_ARGUMENT, "division_by_zero"},
    /* 40: transaction rollback */
    {"40001", GRPC_STATUS_ABORTED, "serialization_failure"},
    {"40P01", GRPC_STATUS_ABORTED, "deadlock_detected"},
    {"40000", GRPC_STATUS_INTERNAL, "transaction_rollback"},
    {"40002", GRPC_STATUS_INTERNAL, "transaction_integrity_constraint_violation"},
    /* 55: object not in prerequisite state */
    {"55P03", GRPC_STATUS_ABORTED, "lock_not_available"},
    {"55000", GRPC_STATUS_INTERNAL, "object_not_in_prerequisite_state (events immutable)"},
    {"55006", GRPC_STATUS_INTERNAL, "object_in_use"},
    /* 57: operator intervention */
    {"57014", GRPC_STATUS_DEADLINE_EXCEEDED, "query_canceled"},
    {"57P01", GRPC_STATUS_UNAVAILABLE, "admin_shutdown"},
    {"57P02", GRPC_STATUS_UNAVAILABLE, "crash_shutdown"},
    {"57P03", GRPC_STATUS_UNAVAILABLE, "cannot_connect_now"},
    {"57P04", GRPC_STATUS_UNAVAILABLE, "database_dropped"},
    {"57P05", GRPC_STATUS_UNAVAILABLE, "idle_session_timeout"},
    {"57000", GRPC_STATUS_INTERNAL, "operator_intervention"},
    /* 08: connection exceptions */
    {"08000", GRPC_STATUS_UNAVAILABLE, "connection_exception"},
    {"08003", GRPC_STATUS_UNAVAILABLE, "connection_does_not_exist"},
    {"08006", GRPC_STATUS_UNAVAILABLE, "connection_failure"},
    {"08P01", GRPC_STATUS_UNAVAILABLE, "protocol_violation"},
    /* 53: insufficient resources */
    {"53000", GRPC_STATUS_UNAVAILABLE, "insufficient_resources"},
    {"53100", GRPC_STATUS_UNAVAILABLE, "disk_full"},
    {"53200", GRPC_STATUS_UNAVAILABLE, "out_of_memory"},
    {"53300", GRPC_STATUS_UNAVAILABLE, "too_many_connections"},
    /* 42: syntax error or access rule violation: our bug, not the caller's */
    {"42601", GRPC_STATUS_INTERNAL, "syntax_error"},
    {"42P01", GRPC_STATUS_INTERNAL, "undefined_table"},
    {"42703", GRPC_STATUS_INTERNAL, "undefined_column"},
    {"42501", GRPC_STATUS_INTERNAL, "insufficient_privilege (our role, not the caller)"},
    /* every other class */
    {"00000", GRPC_STATUS_INTERNAL, "successful_completion"},
    {"01000", GRPC_STATUS_INTERNAL, "warning"},
    {"02000", GRPC_STATUS_INTERNAL, "no_data"},
    {"03000", GRPC_STATUS_INTERNAL, "sql_statement_not_yet_complete"},
    {"09000", GRPC_STATUS_INTERNAL, "triggered_action_exception"},
    {"0A000", GRPC_STATUS_INTERNAL, "feature_not_supported"},
    {"0B000", GRPC_STATUS_INTERNAL, "invalid_transaction_initiation"},
    {"0F000", GRPC_STATUS_INTERNAL, "locator_exception"},
    {"0L000", GRPC_STATUS_INTERNAL, "invalid_grantor"},
    {"0P000", GRPC_STATUS_INTERNAL, "invalid_role_specification"},
    {"0Z000", GRPC_STATUS_INTERNAL, "diagnostics_exception"},
    {"20000", GRPC_STATUS_INTERNAL, "case_not_found"},
    {"21000", GRPC_STATUS_INTERNAL, "cardinality_violation"},
    {"24000", GRPC_STATUS_INTERNAL, "invalid_cursor_state"},
    {"25001", GRPC_STATUS_INTERNAL, "active_sql_transaction"},
    {"25P02", GRPC_STATUS_INTERNAL, "in_failed_sql_transaction"},
    {"26000", GRPC_STATUS_INTERNAL, "invalid_sql_statement_name"},
    {"27000", GRPC_STATUS_INTERNAL, "triggered_data_change_violation"},
    {"28000", GRPC_STATUS_INTERNAL, "invalid_authorization_specification"},
    {"28P01", GRPC_STATUS_INTERNAL, "invalid_password"},
    {"2B000", GRPC_STATUS_INTERNAL, "dependent_privilege_descriptors_still_exist"},
    {"2D000", GRPC_STATUS_INTERNAL, "invalid_transaction_termination"},
    {"2F000", GRPC_STATUS_INTERNAL, "sql_routine_exception"},
    {"34000", GRPC_STATUS_INTERNAL, "invalid_cursor_name"},
    {"38000", GRPC_STATUS_INTERNAL, "external_routine_exception"},
    {"39000", GRPC_STATUS_INTERNAL, "external_routine_invocation_exception"},
    {"3B000", GRPC_STATUS_INTERNAL, "savepoint_exception"},
    {"3D000", GRPC_STATUS_INTERNAL, "invalid_catalog_name"},
    {"3F000", GRPC_STATUS_INTERNAL, "invalid_schema_name"},
    {"44000", GRPC_STATUS_INTERNAL, "with_check_option_violation"},
    {"54000", GRPC_STATUS_INTERNAL, "program_limit_exceeded"},
    {"54001", GRPC_STATUS_INTERNAL, "statement_too_complex"},
    {"58000", GRPC_STATUS_INTERNAL, "system_error"},
    {"58030", GRPC_STATUS_INTERNAL, "io_error"},
    {"72000", GRPC_STATUS_INTERNAL, "snapshot_too_old"},
    {"F0000", GRPC_STATUS_INTERNAL, "config_file_error"},
    {"HV000", GRPC_STATUS_INTERNAL, "fdw_error"},
    {"P0001", GRPC_STATUS_INTERNAL, "raise_exception"},
    {"P0004", GRPC_STATUS_INTERNAL, "assert_failure"},
    {"XX000", GRPC_STATUS_INTERNAL, "internal_error"},
    {"XX001", GRPC_STATUS_INTERNAL, "data_corrupted"},
};

static void test_pg_status_each_sqlstate_maps_as_documented(void)
{
    for (size_t i = 0; i < sizeof(mappings) / sizeof(mappings[0]); i++) {
        grpc_status_code got = pg_sqlstate_to_grpc_status(mappings[i].sqlstate);
        if (got != mappings[i].want)
            fprintf(stderr, "\n  %s (%s): got %s, want %s", mappings[i].sqlstate, mappings[i].what,
                    trpc_status_code_name(got), trpc_status_code_name(mappings[i].want));
        CU_ASSERT_EQUAL(got, mappings[i].want);
    }
}

/* The table above has a row for every class PostgreSQL 15 defines. */
static void test_pg_status_table_covers_every_class(void)
{
    FILE *f = fopen("/usr/share/postgresql/15/errcodes.txt", "r");
    char line[512];
    int classes = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        int found = 0;

        if (strncmp(line, "Section: Class ", 15) != 0)
            continue;
        classes++;
        for (size_t i = 0; i < sizeof(mappings) / sizeof(mappings[0]); i++)
            if (strncmp(mappings[i].sqlstate, line + 15, 2) == 0)
                found = 1;
        if (!found)
            fprintf(stderr, "\n  no mapping row for %.*s", (int)strcspn(line, "\n"), line);
        CU_ASSERT(found);
    }
    fclose(f);
    CU_ASSERT(classes >= 40);
}

static void test_pg_status_no_sqlstate_is_unavailable(void)
{
    CU_ASSERT_EQUAL(pg_sqlstate_to_grpc_status(NULL), GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_EQUAL(pg_to_grpc_status(NULL), GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_PTR_NULL(pg_sqlstate(NULL));
    CU_ASSERT_FALSE(pg_is_retryable(NULL));
}

/* A result made without a server has no SQLSTATE: treated as connection trouble. */
static void test_pg_status_result_without_sqlstate_is_unavailable(void)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);

    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    CU_ASSERT_EQUAL(pg_to_grpc_status(res), GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_FALSE(pg_is_retryable(res));
    PQclear(res);
}

static void test_pg_check_null_result_fails_unavailable_with_client_message(void)
{
    trpc_status st = {GRPC_STATUS_OK, ""};

    CU_ASSERT_EQUAL(pg_check(NULL, PGRES_TUPLES_OK, 1, &st, "could not do it", "ctx %d", 1),
                    GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_STRING_EQUAL(st.msg, "could not do it");
}

static void test_pg_check_wrong_status_or_shape_is_internal(void)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK);
    trpc_status st = {GRPC_STATUS_OK, ""};

    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    CU_ASSERT_EQUAL(pg_check(res, PGRES_TUPLES_OK, -1, &st, "m1", "ctx"), GRPC_STATUS_INTERNAL);
    CU_ASSERT_STRING_EQUAL(st.msg, "m1");
    st.code = GRPC_STATUS_OK;
    CU_ASSERT_EQUAL(pg_check(res, PGRES_COMMAND_OK, -1, &st, "m2", "ctx"), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_OK); /* untouched on success */
    PQclear(res);

    res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK); /* 0 columns */
    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    CU_ASSERT_EQUAL(pg_check(res, PGRES_TUPLES_OK, 2, &st, "m3", "ctx"), GRPC_STATUS_INTERNAL);
    CU_ASSERT_STRING_EQUAL(st.msg, "m3");
    CU_ASSERT_EQUAL(pg_check(res, PGRES_TUPLES_OK, 0, &st, "m4", "ctx"), GRPC_STATUS_OK);
    PQclear(res);
}

static void test_pg_int_params_round_trip_extremes(void)
{
    char buf[PG_INT_BUF];

    CU_ASSERT_STRING_EQUAL(pg_int64_param(buf, INT64_MIN), "-9223372036854775808");
    CU_ASSERT_STRING_EQUAL(pg_int64_param(buf, INT64_MAX), "9223372036854775807");
    CU_ASSERT_STRING_EQUAL(pg_int64_param(buf, 0), "0");
    CU_ASSERT_STRING_EQUAL(pg_uint64_param(buf, UINT64_MAX), "18446744073709551615");
}

static void test_pg_get_columns_parse_and_reject(void)
{
    char vname[] = "v";
    PGresAttDesc attrs[1] = {{vname, 0, 0, 0, 20, 8, -1}};
    static const char *const vals[] = {"42",
                                       "-7",
                                       "18446744073709551615",
                                       "-1",
                                       "12x",
                                       "9223372036854775808",
                                       "",
                                       "99999999999999999999"};
    const size_t n = sizeof(vals) / sizeof(vals[0]);
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    int64_t i64 = 5;
    uint64_t u64 = 5;

    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    CU_ASSERT_FATAL(PQsetResultAttrs(res, 1, attrs) != 0);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_FATAL(PQsetvalue(res, (int)i, 0, (char *)vals[i], (int)strlen(vals[i])) != 0);
    CU_ASSERT_FATAL(PQsetvalue(res, (int)n, 0, NULL, -1) != 0); /* SQL NULL */

    CU_ASSERT_EQUAL(pg_get_int64(res, 0, 0, &i64), 0);
    CU_ASSERT_EQUAL(i64, 42);
    CU_ASSERT_EQUAL(pg_get_int64(res, 1, 0, &i64), 0);
    CU_ASSERT_EQUAL(i64, -7);
    CU_ASSERT_EQUAL(pg_get_uint64(res, 2, 0, &u64), 0);
    CU_ASSERT_EQUAL(u64, UINT64_MAX);
    CU_ASSERT_EQUAL(pg_get_uint64(res, 3, 0, &u64), -1);         /* a sign is never an xid8 */
    CU_ASSERT_EQUAL(pg_get_int64(res, 4, 0, &i64), -1);          /* trailing junk */
    CU_ASSERT_EQUAL(pg_get_int64(res, 5, 0, &i64), -1);          /* out of range */
    CU_ASSERT_EQUAL(pg_get_int64(res, 6, 0, &i64), -1);          /* empty */
    CU_ASSERT_EQUAL(pg_get_uint64(res, 7, 0, &u64), -1);         /* out of range */
    CU_ASSERT_EQUAL(pg_get_int64(res, (int)n, 0, &i64), -1);     /* NULL */
    CU_ASSERT_EQUAL(pg_get_int64(res, (int)n + 1, 0, &i64), -1); /* no such row */
    CU_ASSERT_EQUAL(pg_get_int64(res, 0, 1, &i64), -1);          /* no such column */
    CU_ASSERT_EQUAL(i64, -7);                                    /* untouched by failures */
    CU_ASSERT_EQUAL(u64, UINT64_MAX);
    PQclear(res);
}

static CU_TestInfo status_tests[] = {
    {"every SQLSTATE class maps as documented", test_pg_status_each_sqlstate_maps_as_documented},
    {"the table covers every class of errcodes.txt", test_pg_status_table_covers_every_class},
    {"no SQLSTATE -> UNAVAILABLE", test_pg_status_no_sqlstate_is_unavailable},
    {"result without SQLSTATE -> UNAVAILABLE",
     test_pg_status_result_without_sqlstate_is_unavailable},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo check_tests[] = {
    {"NULL result -> UNAVAILABLE, client message",
     test_pg_check_null_result_fails_unavailable_with_client_message},
    {"wrong status or shape -> INTERNAL", test_pg_check_wrong_status_or_shape_is_internal},
    {"int64/xid8 params", test_pg_int_params_round_trip_extremes},
    {"int64/xid8 columns parse and reject", test_pg_get_columns_parse_and_reject},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"pg_status", NULL, NULL, NULL, NULL, status_tests},
    {"pg_check", NULL, NULL, NULL, NULL, check_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned int failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
