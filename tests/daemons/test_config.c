/* test_config.c - server/lib/config.c: defaults, environment, flags, their
 * precedence, every rejection with its one-line message, the ready file. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "config.h"

#define PROG "tally-test"
#define PORT 50051

static const char *const env_vars[] = {"TALLY_DATABASE_URL", "TALLY_LOG_LEVEL", "TALLY_WORKERS",
                                       "TALLY_POOL_SIZE"};

static struct config cfg;
static char err_text[4096];
static char out_text[8192];
static char *argv_copy[32];
static int argc_copy;

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
}

static void free_args(void)
{
    for (int i = 0; i < argc_copy; i++)
        free(argv_copy[i]);
    argc_copy = 0;
}

/* Reads what was written to fd since it was redirected into tmp. */
static void slurp(FILE *tmp, char *buf, size_t size)
{
    size_t n;

    fflush(tmp);
    rewind(tmp);
    n = fread(buf, 1, size - 1, tmp);
    buf[n] = '\0';
}

/* config_load with argv = PROG + args (NULL-terminated); stdout and stderr
 * captured into out_text and err_text. */
static int load(const char *const *args)
{
    FILE *ferr = tmpfile(), *fout = tmpfile();
    int saved_err, saved_out, rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ferr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fout);
    free_args();
    argv_copy[argc_copy++] = strdup(PROG);
    for (size_t i = 0; args != NULL && args[i] != NULL; i++)
        argv_copy[argc_copy++] = strdup(args[i]);
    argv_copy[argc_copy] = NULL;

    fflush(stdout);
    fflush(stderr);
    saved_err = dup(STDERR_FILENO);
    saved_out = dup(STDOUT_FILENO);
    dup2(fileno(ferr), STDERR_FILENO);
    dup2(fileno(fout), STDOUT_FILENO);
    rc = config_load(&cfg, PROG, PORT, argc_copy, argv_copy);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_err, STDERR_FILENO);
    dup2(saved_out, STDOUT_FILENO);
    close(saved_err);
    close(saved_out);
    slurp(ferr, err_text, sizeof(err_text));
    slurp(fout, out_text, sizeof(out_text));
    fclose(ferr);
    fclose(fout);
    return rc;
}

static int expected_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static void test_config_no_flags_no_env_gives_defaults(void)
{
    CU_ASSERT_EQUAL_FATAL(load(NULL), CONFIG_OK);
    CU_ASSERT_STRING_EQUAL(err_text, "");
    CU_ASSERT_STRING_EQUAL(cfg.prog, PROG);
    CU_ASSERT_STRING_EQUAL(cfg.listen_addr, "127.0.0.1:50051");
    CU_ASSERT_EQUAL(cfg.listen_port, 50051);
    CU_ASSERT_STRING_EQUAL(cfg.db, "");
    CU_ASSERT_EQUAL(cfg.log_level, LOG_INFO);
    CU_ASSERT_EQUAL(cfg.workers, expected_workers());
    CU_ASSERT_EQUAL(cfg.pool_size, 8);
    CU_ASSERT_EQUAL(cfg.max_message_bytes, 4194304);
    CU_ASSERT_PTR_NULL(cfg.ready_file);
}

static void test_config_default_port_is_the_callers(void)
{
    char prog[] = "x";
    char *av[] = {prog, NULL};

    CU_ASSERT_EQUAL_FATAL(config_load(&cfg, "x", 50053, 1, av), CONFIG_OK);
    CU_ASSERT_STRING_EQUAL(cfg.listen_addr, "127.0.0.1:50053");
    CU_ASSERT_EQUAL(cfg.listen_port, 50053);
}

static void test_config_env_sets_values(void)
{
    setenv("TALLY_DATABASE_URL", "host=/tmp dbname=env", 1);
    setenv("TALLY_LOG_LEVEL", "debug", 1);
    setenv("TALLY_WORKERS", "3", 1);
    setenv("TALLY_POOL_SIZE", "5", 1);
    CU_ASSERT_EQUAL_FATAL(load(NULL), CONFIG_OK);
    CU_ASSERT_STRING_EQUAL(cfg.db, "host=/tmp dbname=env");
    CU_ASSERT_EQUAL(cfg.log_level, LOG_DEBUG);
    CU_ASSERT_EQUAL(cfg.workers, 3);
    CU_ASSERT_EQUAL(cfg.pool_size, 5);
    clear_env();
}

static void test_config_flags_override_env(void)
{
    const char *const args[] = {"--db", "postgresql:///flag", "--log-level", "warn", "--workers",
                                "2",    "--pool-size",        "7",           NULL};

    setenv("TALLY_DATABASE_URL", "host=/tmp dbname=env", 1);
    setenv("TALLY_LOG_LEVEL", "error", 1);
    setenv("TALLY_WORKERS", "3", 1);
    setenv("TALLY_POOL_SIZE", "5", 1);
    CU_ASSERT_EQUAL_FATAL(load(args), CONFIG_OK);
    CU_ASSERT_STRING_EQUAL(cfg.db, "postgresql:///flag");
    CU_ASSERT_EQUAL(cfg.log_level, LOG_WARN);
    CU_ASSERT_EQUAL(cfg.workers, 2);
    CU_ASSERT_EQUAL(cfg.pool_size, 7);
    clear_env();
}

static void test_config_bad_env_under_a_flag_is_not_read(void)
{
    const char *const args[] = {"--pool-size", "4", "--workers=2", "--log-level=debug", NULL};

    setenv("TALLY_POOL_SIZE", "x", 1);
    setenv("TALLY_WORKERS", "0", 1);
    setenv("TALLY_LOG_LEVEL", "loud", 1);
    CU_ASSERT_EQUAL(load(args), CONFIG_OK);
    CU_ASSERT_STRING_EQUAL(err_text, "");
    CU_ASSERT_EQUAL(cfg.pool_size, 4);
    CU_ASSERT_EQUAL(cfg.workers, 2);
    CU_ASSERT_EQUAL(cfg.log_level, LOG_DEBUG);
    clear_env();
}

static void test_config_empty_env_counts_as_unset(void)
{
    setenv("TALLY_POOL_SIZE", "", 1);
    setenv("TALLY_LOG_LEVEL", "", 1);
    CU_ASSERT_EQUAL(load(NULL), CONFIG_OK);
    CU_ASSERT_EQUAL(cfg.pool_size, 8);
    CU_ASSERT_EQUAL(cfg.log_level, LOG_INFO);
    clear_env();
}

static void test_config_all_flags_are_stored(void)
{
    const char *const args[] = {"--listen",
                                "localhost:0",
                                "--max-message-bytes",
                                "1024",
                                "--ready-file",
                                "/tmp/r",
                                "--pool-size",
                                "256",
                                "--workers",
                                "64",
                                NULL};

    CU_ASSERT_EQUAL_FATAL(load(args), CONFIG_OK);
    CU_ASSERT_STRING_EQUAL(cfg.listen_addr, "localhost:0");
    CU_ASSERT_EQUAL(cfg.listen_port, 0);
    CU_ASSERT_EQUAL(cfg.max_message_bytes, 1024);
    CU_ASSERT_STRING_EQUAL(cfg.ready_file, "/tmp/r");
    CU_ASSERT_EQUAL(cfg.pool_size, 256);
    CU_ASSERT_EQUAL(cfg.workers, 64);
}

static void test_config_later_flag_wins(void)
{
    const char *const args[] = {"--pool-size", "x", "--pool-size", "3", NULL};

    /* only the last value is parsed: a test harness appends overrides */
    CU_ASSERT_EQUAL(load(args), CONFIG_OK);
    CU_ASSERT_EQUAL(cfg.pool_size, 3);
}

static void test_config_good_listen_addresses_accepted(void)
{
    static const char *const good[] = {"127.0.0.1:0", "0.0.0.0:65535", "[::1]:8080",
                                       "localhost:50051", "my-host.example_1:1"};

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const char *const args[] = {"--listen", good[i], NULL};

        CU_ASSERT_EQUAL(load(args), CONFIG_OK);
        CU_ASSERT_STRING_EQUAL(cfg.listen_addr, good[i]);
        CU_ASSERT_STRING_EQUAL(err_text, "");
    }
}

struct bad_case {
    const char *args[4];
    const char *env; /* "NAME=VALUE" or NULL */
    const char *message;
};

static const struct bad_case bad_cases[] = {
    {{"--pool-size", "x"}, NULL, PROG ": invalid --pool-size \"x\" (expected 1..256)\n"},
    {{"--pool-size", "0"}, NULL, PROG ": invalid --pool-size \"0\" (expected 1..256)\n"},
    {{"--pool-size", "257"}, NULL, PROG ": invalid --pool-size \"257\" (expected 1..256)\n"},
    {{"--pool-size", "-1"}, NULL, PROG ": invalid --pool-size \"-1\" (expected 1..256)\n"},
    {{"--pool-size", "5x"}, NULL, PROG ": invalid --pool-size \"5x\" (expected 1..256)\n"},
    {{"--pool-size", " 5"}, NULL, PROG ": invalid --pool-size \" 5\" (expected 1..256)\n"},
    {{"--pool-size", ""}, NULL, PROG ": invalid --pool-size \"\" (expected 1..256)\n"},
    {{"--pool-size", "99999999999999999999"},
     NULL,
     PROG ": invalid --pool-size \"99999999999999999999\" (expected 1..256)\n"},
    {{"--workers", "0"}, NULL, PROG ": invalid --workers \"0\" (expected 1..64)\n"},
    {{"--workers", "65"}, NULL, PROG ": invalid --workers \"65\" (expected 1..64)\n"},
    {{"--max-message-bytes", "1023"},
     NULL,
     PROG ": invalid --max-message-bytes \"1023\" (expected 1024..1073741824)\n"},
    {{"--max-message-bytes", "1073741825"},
     NULL,
     PROG ": invalid --max-message-bytes \"1073741825\" (expected 1024..1073741824)\n"},
    {{"--log-level", "loud"},
     NULL,
     PROG ": invalid --log-level \"loud\" (expected debug|info|warn|error)\n"},
    {{"--listen", "nonsense"},
     NULL,
     PROG ": invalid --listen \"nonsense\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", "127.0.0.1:65536"},
     NULL,
     PROG ": invalid --listen \"127.0.0.1:65536\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", "127.0.0.1:"},
     NULL,
     PROG ": invalid --listen \"127.0.0.1:\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", ":50051"},
     NULL,
     PROG ": invalid --listen \":50051\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", "127.0.0.1:-1"},
     NULL,
     PROG ": invalid --listen \"127.0.0.1:-1\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", "127.0.0.1:+1"},
     NULL,
     PROG ": invalid --listen \"127.0.0.1:+1\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", "300.1.1.1:80"},
     NULL,
     PROG ": invalid --listen \"300.1.1.1:80\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", "[::1:80"},
     NULL,
     PROG ": invalid --listen \"[::1:80\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", "[zz]:80"},
     NULL,
     PROG ": invalid --listen \"[zz]:80\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", "a b:80"},
     NULL,
     PROG ": invalid --listen \"a b:80\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--listen", "::1:80"},
     NULL,
     PROG ": invalid --listen \"::1:80\" (expected HOST:PORT with PORT 0..65535)\n"},
    {{"--ready-file", ""}, NULL, PROG ": invalid --ready-file \"\" (expected a file path)\n"},
    {{"--db", "host='unterminated"},
     NULL,
     PROG ": invalid --db (expected a libpq conninfo or postgresql:// URL)\n"},
    {{NULL},
     "TALLY_DATABASE_URL=password=secret nonsense",
     PROG ": invalid TALLY_DATABASE_URL (expected a libpq conninfo or postgresql:// URL)\n"},
    {{NULL}, "TALLY_POOL_SIZE=x", PROG ": invalid TALLY_POOL_SIZE \"x\" (expected 1..256)\n"},
    {{NULL}, "TALLY_POOL_SIZE=0", PROG ": invalid TALLY_POOL_SIZE \"0\" (expected 1..256)\n"},
    {{NULL}, "TALLY_WORKERS=65", PROG ": invalid TALLY_WORKERS \"65\" (expected 1..64)\n"},
    {{NULL},
     "TALLY_LOG_LEVEL=INFO",
     PROG ": invalid TALLY_LOG_LEVEL \"INFO\" (expected debug|info|warn|error)\n"},
    {{"--bogus"}, NULL, PROG ": unknown option \"--bogus\" (see --help)\n"},
    {{"--bogus=1"}, NULL, PROG ": unknown option \"--bogus=1\" (see --help)\n"},
    {{"-x"}, NULL, PROG ": unknown option \"-x\" (see --help)\n"},
    {{"--help=yes"}, NULL, PROG ": unknown option \"--help=yes\" (see --help)\n"},
    {{"--version=2"}, NULL, PROG ": unknown option \"--version=2\" (see --help)\n"},
    {{"--pool-size"}, NULL, PROG ": option --pool-size needs a value (see --help)\n"},
    {{"--listen", "127.0.0.1:0", "extra"},
     NULL,
     PROG ": unexpected argument \"extra\" (see --help)\n"},
};

static void test_config_bad_values_exit_2_with_one_line(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        char name[64];
        int rc;

        if (c->env != NULL) {
            const char *eq = strchr(c->env, '=');

            snprintf(name, sizeof(name), "%.*s", (int)(eq - c->env), c->env);
            setenv(name, eq + 1, 1);
        }
        rc = load(c->args);
        if (rc != CONFIG_BAD || strcmp(err_text, c->message) != 0)
            fprintf(stderr, "\ncase %zu: rc %d, stderr \"%s\", expected \"%s\"\n", i, rc, err_text,
                    c->message);
        CU_ASSERT_EQUAL(rc, CONFIG_BAD);
        CU_ASSERT_EQUAL(rc, 2); /* the value is the exit code */
        CU_ASSERT_STRING_EQUAL(err_text, c->message);
        CU_ASSERT_STRING_EQUAL(out_text, "");
        clear_env();
    }
}

static void test_config_db_errors_never_echo_the_value(void)
{
    const char *const args[] = {"--db", "password=hunter2 host='x", NULL};

    CU_ASSERT_EQUAL(load(args), CONFIG_BAD);
    CU_ASSERT_PTR_NULL(strstr(err_text, "hunter2"));
}

static void test_config_help_prints_usage_to_stdout(void)
{
    const char *const args[] = {"--listen", "nonsense", "--help", NULL};
    const char *const short_args[] = {"-h", NULL};

    /* --help wins even over a bad value given before it */
    CU_ASSERT_EQUAL(load(args), CONFIG_HELP);
    CU_ASSERT_STRING_EQUAL(err_text, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "usage: " PROG " [options]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "127.0.0.1:50051"));
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(out_text, env_vars[i]));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "--max-message-bytes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "--ready-file"));
    CU_ASSERT_EQUAL(load(short_args), CONFIG_HELP);
}

static void test_config_version_is_reported(void)
{
    const char *const args[] = {"--version", NULL};

    CU_ASSERT_EQUAL(load(args), CONFIG_VERSION);
    CU_ASSERT_STRING_EQUAL(err_text, "");
}

static void test_config_server_opts_map_the_config(void)
{
    const char *const args[] = {"--workers",           "3",     "--pool-size", "9",
                                "--max-message-bytes", "65536", NULL};
    trpc_server_opts opts;

    CU_ASSERT_EQUAL_FATAL(load(args), CONFIG_OK);
    memset(&opts, 0xff, sizeof(opts));
    config_server_opts(&cfg, &opts);
    CU_ASSERT_PTR_EQUAL(opts.listen_addr, cfg.listen_addr);
    CU_ASSERT_EQUAL(opts.cq_threads, 3);
    CU_ASSERT_EQUAL(opts.pool_threads, 9);
    CU_ASSERT_EQUAL(opts.max_message_bytes, 65536);
    CU_ASSERT_EQUAL(opts.pool_queue, 0);
    CU_ASSERT_EQUAL(opts.shutdown_grace_ms, 0);
    CU_ASSERT_PTR_NULL(opts.worker_init);
    CU_ASSERT_PTR_NULL(opts.worker_fini);
    CU_ASSERT_PTR_NULL(opts.worker_arg);
}

static void test_config_bound_addr_keeps_host_replaces_port(void)
{
    const char *const v4[] = {"--listen", "127.0.0.1:0", NULL};
    const char *const v6[] = {"--listen", "[::1]:0", NULL};
    char buf[64];

    CU_ASSERT_EQUAL_FATAL(load(v4), CONFIG_OK);
    CU_ASSERT_EQUAL(config_bound_addr(&cfg, 43125, buf, sizeof(buf)), 0);
    CU_ASSERT_STRING_EQUAL(buf, "127.0.0.1:43125");
    CU_ASSERT_EQUAL(config_bound_addr(&cfg, 43125, buf, 15), -1); /* no room for the NUL */
    CU_ASSERT_EQUAL(config_bound_addr(&cfg, 43125, buf, 16), 0);
    CU_ASSERT_EQUAL_FATAL(load(v6), CONFIG_OK);
    CU_ASSERT_EQUAL(config_bound_addr(&cfg, 8080, buf, sizeof(buf)), 0);
    CU_ASSERT_STRING_EQUAL(buf, "[::1]:8080");
}

static void test_config_ready_file_written_atomically(void)
{
    char dir[] = "/tmp/tally-config-test-XXXXXX", path[PATH_MAX], text[64] = "";
    const char *args[] = {"--listen", "127.0.0.1:0", "--ready-file", path, NULL};
    FILE *f;
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ready", dir);
    CU_ASSERT_EQUAL_FATAL(load(args), CONFIG_OK);
    CU_ASSERT_EQUAL(config_write_ready_file(&cfg, 40001), 0);
    f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    CU_ASSERT_STRING_EQUAL(text, "127.0.0.1:40001\n");
    /* the temporary file was renamed, not left behind: the folder is empty
     * once the ready file is gone */
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

static void test_config_ready_file_error_returns_minus_1(void)
{
    const char *const args[] = {"--ready-file", "/nonexistent-dir/x/ready", NULL};
    const char *const none[] = {NULL};
    FILE *ferr = tmpfile();
    int saved;

    CU_ASSERT_EQUAL_FATAL(load(args), CONFIG_OK);
    /* the error is logged; keep it out of the test output */
    saved = dup(STDERR_FILENO);
    dup2(fileno(ferr), STDERR_FILENO);
    CU_ASSERT_EQUAL(config_write_ready_file(&cfg, 1), -1);
    dup2(saved, STDERR_FILENO);
    close(saved);
    slurp(ferr, err_text, sizeof(err_text));
    fclose(ferr);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "cannot create /nonexistent-dir/x/ready.tmp."));
    CU_ASSERT_EQUAL_FATAL(load(none), CONFIG_OK);
    CU_ASSERT_EQUAL(config_write_ready_file(&cfg, 1), 0); /* no --ready-file: nothing to do */
}

static CU_TestInfo config_tests[] = {
    {"no flags, no env -> defaults", test_config_no_flags_no_env_gives_defaults},
    {"default port is the caller's", test_config_default_port_is_the_callers},
    {"env sets values", test_config_env_sets_values},
    {"flags override env", test_config_flags_override_env},
    {"bad env under a flag is not read", test_config_bad_env_under_a_flag_is_not_read},
    {"empty env counts as unset", test_config_empty_env_counts_as_unset},
    {"all flags are stored", test_config_all_flags_are_stored},
    {"later flag wins", test_config_later_flag_wins},
    {"good listen addresses accepted", test_config_good_listen_addresses_accepted},
    {"bad values -> CONFIG_BAD with one line", test_config_bad_values_exit_2_with_one_line},
    {"db errors never echo the value", test_config_db_errors_never_echo_the_value},
    {"--help prints usage to stdout", test_config_help_prints_usage_to_stdout},
    {"--version is reported", test_config_version_is_reported},
    {"server opts map the config", test_config_server_opts_map_the_config},
    {"bound addr keeps host, replaces port", test_config_bound_addr_keeps_host_replaces_port},
    {"ready file written atomically", test_config_ready_file_written_atomically},
    {"ready file error -> -1", test_config_ready_file_error_returns_minus_1},
    CU_TEST_INFO_NULL,
};

static int suite_init(void)
{
    clear_env();
    return 0;
}

static int suite_cleanup(void)
{
    free_args();
    return 0;
}

static CU_SuiteInfo suites[] = {
    {"config", suite_init, suite_cleanup, NULL, NULL, config_tests},
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
