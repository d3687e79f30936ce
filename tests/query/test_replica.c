/* test_replica.c - read-your-writes when tally-query reads from a streaming
 * replica (DESIGN §9, issue 5).
 *
 * The primary is the harness's private server (ctest runs this test with
 * TALLY_TEST_DATABASE_URL unset; with it set the test fails, it never
 * skips): a fresh migrated database there, tally-command and
 * tally-projector on it. The standby is made here: pg_basebackup -R of the
 * primary into this process's temporary folder, then postgres on it (as the
 * `postgres` user when run as root), listening on a socket in its own
 * folder, streaming from the primary. tally-query runs with --db pointing at
 * the standby only.
 *
 * Tests:
 *   the setup         the standby is in recovery and streaming; tally-query's
 *                     sessions are on the standby, none on the primary
 *   read your writes  300 commands on the primary from 3 client threads,
 *                     each on its own account (deposits; every 25th a
 *                     transfer saga, waited for), each followed at once by a
 *                     GetAccount on the standby with the command's position
 *                     as min_position (every 5th also ListEntries and
 *                     GetOperation; after a transfer, GetTransfer): every
 *                     read shows the write
 *   replay paused     with the standby's WAL replay paused, a read at a new
 *                     position ends in DEADLINE_EXCEEDED, one without
 *                     min_position shows the standby's older state (it really
 *                     reads the standby), and a read waiting when replay
 *                     resumes completes with the write
 *   every RPC         every QueryService RPC answers on the standby (none
 *                     needs to write)
 *   shutdown          the daemons exit 0 with clean logs; the standby stops
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "qcheck.h"

#define THREADS        3
#define PER_THREAD     100 /* 300 command+read pairs in all */
#define PG_BINDIR      TALLY_PG_BINDIR_DEFAULT
#define BASEBACKUP_MS  120000
#define STANDBY_UP_MS  60000
#define CATCH_UP_MS    30000
#define PAUSED_READ_MS 1500

static struct {
    char dir[HARNESS_PATH_MAX];      /* socket folder (owned by postgres when root) */
    char data[HARNESS_PATH_MAX + 8]; /* its data folder */
    char log[HARNESS_PATH_MAX];
    char conninfo[HARNESS_CONNINFO_MAX]; /* the test database on the standby */
    pid_t pid;
    PGconn *pg;
    int as_postgres;
    uid_t uid;
    gid_t gid;
} S;

static struct qtenant T;
static struct qres a1, a2, b[THREADS - 1]; /* a1, b[]: one per client thread */
static int64_t balance1;                   /* a1's expected balance */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("test_replica: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *bindir(void)
{
    const char *d = getenv("TALLY_PG_BINDIR");

    return d && d[0] ? d : PG_BINDIR;
}

static void print_log(const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];

    fprintf(stderr, "---- %s (%s) ----\n", what, path);
    while (f && fgets(line, sizeof(line), f))
        fputs(line, stderr);
    if (f)
        fclose(f);
    fprintf(stderr, "---- end of %s ----\n", what);
}

/* Starts argv (output to log_path) as the postgres user when we are root;
 * the child dies with this process (PR_SET_PDEATHSIG death_sig). */
static pid_t spawn(const char *const *argv, const char *log_path, int death_sig)
{
    pid_t parent = getpid(), pid = fork();

    if (pid < 0) {
        say("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int null = open("/dev/null", O_RDONLY);

        if (out < 0 || null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(126);
        close_range(3, ~0U, 0);
        setpgid(0, 0);
        if (S.as_postgres && (setgroups(0, NULL) != 0 || setgid(S.gid) != 0 || setuid(S.uid) != 0))
            _exit(124);
        /* after setuid, which clears it */
        if (prctl(PR_SET_PDEATHSIG, death_sig) != 0 || getppid() != parent)
            _exit(125);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits up to ms for pid; its status (0..255, 128 + signal), or -1 after
 * killing it when it did not finish. */
static int wait_for(pid_t pid, long ms)
{
    int64_t end = qfix_mono_ms() + ms;
    int ws;

    for (;;) {
        pid_t r = waitpid(pid, &ws, WNOHANG);

        if (r == pid)
            return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        if (r < 0 && errno != EINTR)
            return -1;
        if (qfix_mono_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &ws, 0);
            return -1;
        }
        qfix_sleep_ms(20);
    }
}

static void standby_stop(void)
{
    int st;

    PQfinish(S.pg);
    S.pg = NULL;
    if (S.pid <= 0)
        return;
    kill(S.pid, SIGINT); /* fast shutdown */
    st = wait_for(S.pid, 30000);
    if (st != 0) {
        say("standby postgres: exit status %d", st);
        print_log("standby log", S.log);
    }
    S.pid = 0;
}

/* One value of a query on conn ("" on failure, reported). */
static char *sql_str(PGconn *conn, char *buf, size_t len, const char *sql, const char *param)
{
    PGresult *res = PQexecParams(conn, sql, param ? 1 : 0, NULL, &param, NULL, NULL, 0);

    buf[0] = '\0';
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        say("%s: %s", sql, PQresultErrorMessage(res));
    else if (PQntuples(res) > 0)
        snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return buf;
}

/* Waits until the standby has replayed everything the primary has written
 * so far. 0, or -1 after reporting. */
static int standby_catch_up(void)
{
    char lsn[64], done[8];
    int64_t end = qfix_mono_ms() + CATCH_UP_MS;

    sql_str(Q.pg, lsn, sizeof(lsn), "SELECT pg_current_wal_lsn()::text", NULL);
    if (!lsn[0])
        return -1;
    while (strcmp(sql_str(S.pg, done, sizeof(done), "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn",
                          lsn),
                  "t") != 0) {
        if (qfix_mono_ms() > end) {
            say("the standby did not replay up to %s in %d ms", lsn, CATCH_UP_MS);
            print_log("standby log", S.log);
            return -1;
        }
        qfix_sleep_ms(20);
    }
    return 0;
}

/* pg_basebackup -R of the primary into S.data, then postgres on it. */
static int standby_start(void)
{
    PQconninfoOption *opts = PQconninfoParse(Q.db, NULL), *o;
    const char *host = NULL, *port = NULL, *dbname = NULL, *user = NULL;
    char tool[HARNESS_PATH_MAX], postgres[HARNESS_PATH_MAX], primary[HARNESS_CONNINFO_MAX];
    char bb_log[HARNESS_PATH_MAX], maxconn[64], maxconn_opt[80], wal_level[32], v[8];
    int rc = -1, st;
    int64_t end, t0 = qfix_mono_ms();

    if (opts == NULL) {
        say("cannot parse the primary's conninfo");
        return -1;
    }
    for (o = opts; o->keyword; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    if (!host || host[0] != '/' || !port || !dbname) {
        say("the primary is not the harness's private server on a Unix socket");
        goto out;
    }
    if (!user)
        user = "postgres";
    sql_str(Q.pg, wal_level, sizeof(wal_level), "SHOW wal_level", NULL);
    sql_str(Q.pg, maxconn, sizeof(maxconn), "SHOW max_connections", NULL);
    if (strcmp(wal_level, "replica") != 0 && strcmp(wal_level, "logical") != 0) {
        say("the primary has wal_level=%s: it cannot feed a standby", wal_level);
        goto out;
    }
    snprintf(S.dir, sizeof(S.dir), "%s/standby", harness_tmpdir());
    snprintf(S.data, sizeof(S.data), "%s/data", S.dir);
    snprintf(S.log, sizeof(S.log), "%s/standby.log", harness_tmpdir());
    snprintf(bb_log, sizeof(bb_log), "%s/pg_basebackup.log", harness_tmpdir());
    if (mkdir(S.dir, 0700) != 0) {
        say("mkdir %s: %s", S.dir, strerror(errno));
        goto out;
    }
    if (geteuid() == 0) { /* postgres refuses to run as root */
        struct passwd *pw = getpwnam("postgres");

        if (pw == NULL) {
            say("running as root, but there is no `postgres` user");
            goto out;
        }
        S.as_postgres = 1;
        S.uid = pw->pw_uid;
        S.gid = pw->pw_gid;
        if (chown(S.dir, S.uid, S.gid) != 0) {
            say("chown %s: %s", S.dir, strerror(errno));
            goto out;
        }
    }
    snprintf(tool, sizeof(tool), "%s/pg_basebackup", bindir());
    snprintf(primary, sizeof(primary), "host=%s port=%s user=%s", host, port, user);
    {
        const char *argv[] = {tool, "-D",   S.data,      "-R", "-X",    "stream",
                              "-c", "fast", "--no-sync", "-d", primary, NULL};
        pid_t pid = spawn(argv, bb_log, SIGKILL);

        if (pid < 0)
            goto out;
        st = wait_for(pid, BASEBACKUP_MS);
        if (st != 0) {
            say("pg_basebackup failed (status %d)", st);
            print_log("pg_basebackup output", bb_log);
            goto out;
        }
    }
    fprintf(stderr, "test_replica: pg_basebackup %.1f s\n", (double)(qfix_mono_ms() - t0) / 1000.0);
    /* the same socket name as the primary's, in another folder */
    snprintf(postgres, sizeof(postgres), "%s/postgres", bindir());
    snprintf(maxconn_opt, sizeof(maxconn_opt), "max_connections=%s", maxconn);
    {
        const char *argv[] = {postgres,
                              "-D",
                              S.data,
                              "-k",
                              S.dir,
                              "-p",
                              port,
                              "-c",
                              "listen_addresses=",
                              "-c",
                              maxconn_opt,
                              "-c",
                              "hot_standby=on",
                              "-c",
                              "fsync=off",
                              NULL};

        S.pid = spawn(argv, S.log, SIGQUIT);
        if (S.pid < 0) {
            S.pid = 0;
            goto out;
        }
    }
    snprintf(S.conninfo, sizeof(S.conninfo), "host=%s port=%s user=%s dbname=%s", S.dir, port, user,
             dbname);
    end = qfix_mono_ms() + STANDBY_UP_MS;
    while (PQping(S.conninfo) != PQPING_OK) {
        int ws;

        if (waitpid(S.pid, &ws, WNOHANG) == S.pid) {
            say("the standby exited during startup");
            S.pid = 0;
            print_log("standby log", S.log);
            goto out;
        }
        if (qfix_mono_ms() > end) {
            say("the standby did not accept connections in %d ms", STANDBY_UP_MS);
            print_log("standby log", S.log);
            goto out;
        }
        qfix_sleep_ms(50);
    }
    S.pg = PQconnectdb(S.conninfo);
    if (PQstatus(S.pg) != CONNECTION_OK) {
        say("cannot connect to the standby: %s", PQerrorMessage(S.pg));
        goto out;
    }
    while (strcmp(sql_str(S.pg, v, sizeof(v),
                          "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
                          NULL),
                  "1") != 0) {
        if (qfix_mono_ms() > end) {
            say("the standby is not streaming after %d ms", STANDBY_UP_MS);
            print_log("standby log", S.log);
            goto out;
        }
        qfix_sleep_ms(50);
    }
    rc = 0;
out:
    PQconninfoFree(opts);
    return rc;
}

static void at_exit(void)
{
    standby_stop();
}

static int suite_init(void)
{
    trpc_status st;
    int64_t t0, t1, t2;

    memset(&Q, 0, sizeof(Q));
    if (!harness_pg_is_private()) {
        say("this test needs the harness's private server as its primary: run it with "
            "TALLY_TEST_DATABASE_URL unset (ctest does)");
        return -1;
    }
    t0 = qfix_mono_ms();
    if (harness_db_create(Q.db) != 0)
        return -1;
    t1 = qfix_mono_ms();
    Q.pg = PQconnectdb(Q.db);
    if (PQstatus(Q.pg) != CONNECTION_OK) {
        say("cannot connect: %s", PQerrorMessage(Q.pg));
        return -1;
    }
    atexit(at_exit); /* runs before the harness removes its folder */
    if (standby_start() != 0)
        return -1;
    t2 = qfix_mono_ms();
    if (harness_daemon_start(&Q.cmd, HARNESS_COMMAND, Q.db, NULL, NULL) != 0)
        return -1;
    Q.cmd_up = 1;
    if (qfix_projector_start() != 0)
        return -1;
    /* the read side on the standby only */
    if (harness_daemon_start(&Q.qry, HARNESS_QUERY, S.conninfo, NULL, NULL) != 0)
        return -1;
    Q.qry_up = 1;
    Q.cch = trpc_channel_new(Q.cmd.addr);
    Q.qch = trpc_channel_new(Q.qry.addr);
    if (!Q.cch || !Q.qch || qfix_tenant(&T, "replica") != 0 ||
        qc_open(&T, "rep", "EUR", 0, NULL, &a1, &st) != OK ||
        qc_open(&T, "rep2", "EUR", 0, NULL, &a2, &st) != OK ||
        qc_open(&T, "rep3", "EUR", 0, NULL, &b[0], &st) != OK ||
        qc_open(&T, "rep4", "EUR", 0, NULL, &b[1], &st) != OK) {
        say("setup failed");
        return -1;
    }
    /* the token is on the standby before the first call (a token the
     * standby does not know yet is UNAUTHENTICATED) */
    if (standby_catch_up() != 0)
        return -1;
    fprintf(
        stderr,
        "test_replica: primary and database %.1f s, standby %.1f s, daemons and tenant %.1f s\n",
        (double)(t1 - t0) / 1000.0, (double)(t2 - t1) / 1000.0,
        (double)(qfix_mono_ms() - t2) / 1000.0);
    return 0;
}

static int suite_cleanup(void)
{
    return 0; /* the shutdown test stops everything; at_exit is the safety net */
}

/* ---- the setup ---- */

static void test_the_query_server_reads_the_standby(void)
{
    char v[32];
    Tally__V1__Account *a = NULL;
    trpc_status st;
    int64_t end = qfix_mono_ms() + CATCH_UP_MS;

    CU_ASSERT_STRING_EQUAL(sql_str(S.pg, v, sizeof(v), "SELECT pg_is_in_recovery()", NULL), "t");
    CU_ASSERT_STRING_EQUAL(sql_str(Q.pg, v, sizeof(v), "SELECT pg_is_in_recovery()", NULL), "f");
    /* a call makes tally-query connect (its pool connects on first use) */
    if (CHECK_OK(qget_account(&T, a1.id, &a1, QFIX_CALL_MS, &a, &st), &st))
        CU_ASSERT_EQUAL(a->version, 1);
    FREE_MSG(a);
    while (strcmp(sql_str(S.pg, v, sizeof(v),
                          "SELECT count(*) > 0 FROM pg_stat_activity"
                          " WHERE application_name = 'tally-query'",
                          NULL),
                  "t") != 0 &&
           qfix_mono_ms() < end)
        qfix_sleep_ms(20);
    CU_ASSERT_STRING_EQUAL(v, "t");
    CU_ASSERT_STRING_EQUAL(sql_str(Q.pg, v, sizeof(v),
                                   "SELECT count(*) FROM pg_stat_activity"
                                   " WHERE application_name = 'tally-query'",
                                   NULL),
                           "0");
}

/* ---- read your writes ---- */

/* One client thread: its own account, PER_THREAD command+read pairs. No
 * CUnit calls here (main thread only): failures are counted and the first
 * one described. */
struct rywt {
    pthread_t thread;
    struct qres acct;
    int64_t balance; /* expected */
    int done, transfers, failed;
    char first_failure[400];
    int64_t read_ms, max_ms;
};

static void fail(struct rywt *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct rywt *t, const char *fmt, ...)
{
    va_list ap;

    if (t->failed++ == 0) {
        va_start(ap, fmt);
        vsnprintf(t->first_failure, sizeof(t->first_failure), fmt, ap);
        va_end(ap);
    }
}

static grpc_status_code last_entry(const char *id, const struct qres *r,
                                   Tally__V1__ListEntriesResponse **out, trpc_status *st)
{
    Tally__V1__ListEntriesRequest req = TALLY__V1__LIST_ENTRIES_REQUEST__INIT;
    Tally__V1__Position p;

    req.account_id = (char *)id;
    req.direction = TALLY__V1__READ_DIRECTION__READ_DIRECTION_BACKWARDS;
    req.page_size = 1;
    req.min_position = qres_pos(r, &p);
    *out = NULL;
    return tally__v1__query_service__trpc_list_entries(Q.qch, &req, out, &T.opts, st);
}

static grpc_status_code get_operation(const struct qres *r, Tally__V1__Operation **out,
                                      trpc_status *st)
{
    Tally__V1__GetOperationRequest req = TALLY__V1__GET_OPERATION_REQUEST__INIT;
    Tally__V1__Position p;

    req.operation_id = (char *)r->op;
    req.min_position = qres_pos(r, &p);
    *out = NULL;
    return tally__v1__query_service__trpc_get_operation(Q.qch, &req, out, &T.opts, st);
}

static grpc_status_code get_transfer(const struct qres *r, Tally__V1__Transfer **out,
                                     trpc_status *st)
{
    Tally__V1__GetTransferRequest req = TALLY__V1__GET_TRANSFER_REQUEST__INIT;
    Tally__V1__Position p;

    req.transfer_id = (char *)r->id;
    req.min_position = qres_pos(r, &p);
    *out = NULL;
    return tally__v1__query_service__trpc_get_transfer(Q.qch, &req, out, &T.opts, st);
}

static void *ryw_main(void *arg)
{
    struct rywt *t = arg;
    const char *id = t->acct.id;

    for (int i = 1; i <= PER_THREAD && t->failed < 5; i++) {
        struct qres r;
        trpc_status st = {0};
        Tally__V1__Account *a = NULL;
        Tally__V1__ListEntriesResponse *le = NULL;
        Tally__V1__Operation *op = NULL;
        Tally__V1__Transfer *x = NULL;
        grpc_status_code code;
        int64_t amount = i % 97 + 1, r0;

        if (i % 25 == 0) { /* a transfer saga, read at its outcome's position */
            code = qc_transfer(&T, id, a2.id, 1, "EUR", 1, NULL, &r, &st);
            if (code != OK) {
                fail(t, "%d: Transfer: %s %s", i, trpc_status_code_name(code), st.msg);
                continue;
            }
            if (r.status != TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED) {
                fail(t, "%d: transfer status %d (%s)", i, r.status, r.reason);
                continue;
            }
            t->balance -= 1;
            t->transfers++;
            code = get_transfer(&r, &x, &st);
            if (code != OK)
                fail(t, "%d: GetTransfer: %s %s", i, trpc_status_code_name(code), st.msg);
            else if (x->state != TALLY__V1__TRANSFER_STATE__TRANSFER_STATE_COMPLETED)
                fail(t, "%d: GetTransfer at the outcome: state %d", i, (int)x->state);
            FREE_MSG(x);
        } else {
            code = qc_deposit(&T, id, amount, "EUR", "rep", NULL, &r, &st);
            if (code != OK) {
                fail(t, "%d: Deposit: %s %s", i, trpc_status_code_name(code), st.msg);
                continue;
            }
            t->balance += amount;
        }
        r0 = qfix_mono_ms();
        code = qget_account(&T, id, &r, QFIX_CALL_MS, &a, &st);
        r0 = qfix_mono_ms() - r0;
        t->read_ms += r0;
        if (r0 > t->max_ms)
            t->max_ms = r0;
        if (code != OK)
            fail(t, "%d: GetAccount: %s %s", i, trpc_status_code_name(code), st.msg);
        else if (a->balance->minor_units != t->balance || a->version < r.version)
            fail(t,
                 "%d: GetAccount at %" PRIu64 "/%" PRId64 " shows version %" PRId64
                 " balance %" PRId64 ", want version %" PRId64 " balance %" PRId64,
                 i, r.tx_id, r.gp, a->version, a->balance->minor_units, r.version, t->balance);
        FREE_MSG(a);
        t->done++;
        if (i % 25 == 0 || i % 5 != 0)
            continue;
        /* every 5th: the ledger line and the operation of that very command */
        code = last_entry(id, &r, &le, &st);
        if (code != OK)
            fail(t, "%d: ListEntries: %s %s", i, trpc_status_code_name(code), st.msg);
        else if (le->n_entries != 1 || le->entries[0]->version != r.version)
            fail(t, "%d: ListEntries lacks version %" PRId64, i, r.version);
        FREE_MSG(le);
        code = get_operation(&r, &op, &st);
        if (code != OK)
            fail(t, "%d: GetOperation: %s %s", i, trpc_status_code_name(code), st.msg);
        else if (op->status != TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_SUCCEEDED)
            fail(t, "%d: operation %s is %d", i, r.op, (int)op->status);
        FREE_MSG(op);
    }
    return NULL;
}

static void test_read_your_writes_on_the_standby(void)
{
    static struct rywt t[THREADS];
    int64_t t0 = qfix_mono_ms(), read_ms = 0, max_ms = 0;
    int done = 0;

    for (int i = 0; i < THREADS; i++) {
        t[i].acct = i == 0 ? a1 : b[i - 1];
        t[i].balance = i == 0 ? balance1 : 0;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i].thread, NULL, ryw_main, &t[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i].thread, NULL);
        CU_ASSERT_EQUAL(t[i].failed, 0);
        if (t[i].failed)
            say("thread %d: %d failures, the first: %s", i, t[i].failed, t[i].first_failure);
        CU_ASSERT_EQUAL(t[i].done, PER_THREAD);
        CU_ASSERT_EQUAL(t[i].transfers, PER_THREAD / 25);
        done += t[i].done;
        read_ms += t[i].read_ms;
        if (t[i].max_ms > max_ms)
            max_ms = t[i].max_ms;
    }
    balance1 = t[0].balance;
    fprintf(stderr,
            "(%d commands read back on the standby in %" PRId64 " ms; GetAccount at the command's"
            " position: mean %" PRId64 " ms, slowest %" PRId64 " ms) ",
            done, qfix_mono_ms() - t0, done ? read_ms / done : 0, max_ms);
}

/* ---- replay paused ---- */

struct waiter {
    pthread_t thread;
    struct qres r;
    grpc_status_code code;
    trpc_status st;
    int64_t version, balance, ms;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    Tally__V1__Account *a = NULL;
    int64_t t0 = qfix_mono_ms();

    w->code = qget_account(&T, a1.id, &w->r, 30000, &a, &w->st);
    w->ms = qfix_mono_ms() - t0;
    if (w->code == OK) {
        w->version = a->version;
        w->balance = a->balance->minor_units;
    }
    FREE_MSG(a);
    return NULL;
}

static int replay_paused(void)
{
    char v[32];

    return strcmp(sql_str(S.pg, v, sizeof(v), "SELECT pg_get_wal_replay_pause_state()", NULL),
                  "paused") == 0;
}

static void test_paused_replay_holds_the_read_back(void)
{
    struct qres before, r;
    struct waiter w;
    trpc_status st = {0};
    Tally__V1__Account *a = NULL;
    char v[32], tx[32], gp[32];
    int64_t end;
    grpc_status_code code;

    /* a1's state on the standby now */
    CU_ASSERT_EQUAL_FATAL(qc_deposit(&T, a1.id, 5, "EUR", "before", NULL, &before, &st), OK);
    balance1 += 5;
    if (CHECK_OK(qget_account(&T, a1.id, &before, QFIX_CALL_MS, &a, &st), &st))
        CU_ASSERT_EQUAL(a->version, before.version);
    FREE_MSG(a);
    sql_str(S.pg, v, sizeof(v), "SELECT pg_wal_replay_pause()::text", NULL);
    end = qfix_mono_ms() + CATCH_UP_MS;
    while (!replay_paused() && qfix_mono_ms() < end)
        qfix_sleep_ms(20);
    CU_ASSERT_FATAL(replay_paused());
    CU_ASSERT_EQUAL(qc_deposit(&T, a1.id, 7, "EUR", "while paused", NULL, &r, &st), OK);
    balance1 += 7;
    /* projected on the primary (its checkpoint passed r), not on the standby */
    snprintf(tx, sizeof(tx), "%" PRIu64, r.tx_id);
    snprintf(gp, sizeof(gp), "%" PRId64, r.gp);
    end = qfix_mono_ms() + CATCH_UP_MS;
    while (qsql_int("SELECT count(*) FROM projector_checkpoints WHERE name = 'rm'"
                    " AND (tx_id::text::bigint, global_position) >= ($1::bigint, $2::bigint)",
                    tx, gp, NULL) != 1 &&
           qfix_mono_ms() < end)
        qfix_sleep_ms(20);
    {
        int64_t t0 = qfix_mono_ms(), ms;

        code = qget_account(&T, a1.id, &r, PAUSED_READ_MS, &a, &st);
        ms = qfix_mono_ms() - t0;
        qcheck_error(__LINE__, "GetAccount(min_position) with replay paused", code, &st,
                     GRPC_STATUS_DEADLINE_EXCEEDED);
        CU_ASSERT(ms >= PAUSED_READ_MS - 100 && ms < PAUSED_READ_MS + 5000);
        FREE_MSG(a);
    }
    /* without min_position: the standby's state, one write behind */
    if (CHECK_OK(qget_account(&T, a1.id, NULL, QFIX_CALL_MS, &a, &st), &st))
        CU_ASSERT_EQUAL(a->version, before.version);
    FREE_MSG(a);
    /* a read waiting when replay resumes completes, with the write */
    memset(&w, 0, sizeof(w));
    w.r = r;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&w.thread, NULL, waiter_main, &w), 0);
    qfix_sleep_ms(500);
    sql_str(S.pg, v, sizeof(v), "SELECT pg_wal_replay_resume()::text", NULL);
    pthread_join(w.thread, NULL);
    CU_ASSERT_FALSE(replay_paused());
    if (!CHECK_OK(w.code, &w.st))
        qreport(__LINE__, "waiting GetAccount", w.code, &w.st);
    CU_ASSERT_EQUAL(w.version, r.version);
    CU_ASSERT_EQUAL(w.balance, balance1);
    CU_ASSERT(w.ms >= 450 && w.ms < 25000);
}

/* ---- every RPC ---- */

static void test_every_rpc_answers_on_the_standby(void)
{
    const trpc_service_desc *svc = &tally__v1__query_service__trpc_service;
    struct qres r;
    trpc_status st = {0};
    int n = 0;

    CU_ASSERT_EQUAL_FATAL(qc_deposit(&T, a1.id, 1, "EUR", "rpc", NULL, &r, &st), OK);
    balance1 += 1;
    for (size_t i = 0; i < svc->n_methods; i++) {
        const trpc_method_desc *m = &svc->methods[i];
        Tally__V1__Position p, buf;
        ProtobufCMessage *req = qany_request(m, a1.id, r.corr, qres_pos(&r, &p), &buf);
        trpc_status s2 = {0};
        grpc_status_code code = qcall(m, req, &T.opts, &s2);

        /* GetOperation and GetTransfer get an account id: NOT_FOUND */
        if (strcmp(m->name, "GetOperation") == 0 || strcmp(m->name, "GetTransfer") == 0)
            qcheck_error(__LINE__, m->name, code, &s2, GRPC_STATUS_NOT_FOUND);
        else
            qcheck_ok(__LINE__, m->name, code, &s2);
        n++;
        free(req);
    }
    CU_ASSERT_EQUAL(n, 11);
    /* the projection status read on the standby includes the write */
    {
        Tally__V1__ProjectionStatus *ps = NULL;
        Tally__V1__Position p;

        if (CHECK_OK(qstatus(&T, &ps, &st), &st))
            CU_ASSERT(qpos_cmp(ps->checkpoint, qres_pos(&r, &p)) >= 0);
        FREE_MSG(ps);
    }
}

/* ---- shutdown ---- */

static void test_shutdown(void)
{
    CU_ASSERT_EQUAL(qfix_stop(), 0);
    standby_stop();
}

static CU_TestInfo tests[] = {
    {"tally-query reads the standby only", test_the_query_server_reads_the_standby},
    {"read your writes on the standby: 300 commands, 3 threads",
     test_read_your_writes_on_the_standby},
    {"replay paused: DEADLINE_EXCEEDED, stale without min_position, the wait completes",
     test_paused_replay_holds_the_read_back},
    {"every QueryService RPC answers on the standby", test_every_rpc_answers_on_the_standby},
    {"shutdown: daemons exit 0, clean logs", test_shutdown},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"replica", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned failures;
    int64_t t0 = qfix_mono_ms();

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    /* a suite whose setup failed counts as a failure, never a skip */
    failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed() +
               CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    if (Q.qry_up || Q.proj_up || Q.cmd_up)
        qfix_stop();
    standby_stop();
    fprintf(stderr, "test_replica: %.1f s\n", (double)(qfix_mono_ms() - t0) / 1000.0);
    return failures ? 1 : 0;
}
