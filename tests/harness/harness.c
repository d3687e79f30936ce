/* harness.c - see harness.h.
 *
 * Children are started with fork + execve; everything the child needs (argv,
 * environment, paths) is prepared before fork, so the child only makes
 * async-signal-safe calls (the test process may already run gRPC threads). */
#define _GNU_SOURCE /* close_range, _Fork, setgroups */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

extern char **environ;

#ifndef HARNESS_PG_BINDIR
#define HARNESS_PG_BINDIR "/usr/lib/postgresql/15/bin"
#endif

#define MAX_DAEMONS      64
#define READY_TIMEOUT    20000
#define ADMIN_TIMEOUT    60000
#define INITDB_TIMEOUT   120000
#define PG_START_TIMEOUT 60000
#define PG_FAST_STOP_MS  5000
#define PG_STOP_TIMEOUT  30000
#define PG_PORT          "5432" /* only names the socket file in our own folder */

static struct {
    int initialized;
    char base[96];              /* where the folders go: $TMPDIR, else /tmp */
    char root[128];             /* per-process temporary folder: <base>/tally-test-XXXXXX */
    unsigned seq;               /* for unique file and database names */
    pid_t daemons[MAX_DAEMONS]; /* running daemons (0 = free slot) */
    /* PostgreSQL */
    int pg_ready;
    int pg_external; /* TALLY_TEST_DATABASE_URL */
    pid_t pg_pid;    /* private server's postmaster, or 0 */
    char pg_dir[160];
    char admin_conninfo[HARNESS_CONNINFO_MAX];
    int as_postgres; /* root: run initdb/postgres as the postgres user */
    uid_t pg_uid;
    gid_t pg_gid;
    char **dbs; /* databases to drop at exit (external server only) */
    size_t n_dbs;
    /* for the signal handler: rm -rf root, prepared in advance */
    char *rm_argv[4];
} h;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("harness: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int decode_status(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

/* Waits up to timeout_ms for pid; returns its exit status, or -2 on timeout. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    long nap = 1;
    int ws;

    for (;;) {
        pid_t r = waitpid(pid, &ws, WNOHANG);

        if (r == pid)
            return decode_status(ws);
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline)
            return -2;
        sleep_ms(nap);
        if (nap < 20)
            nap *= 2;
    }
}

/* Blocking wait; returns the exit status. */
static int wait_forever(pid_t pid)
{
    int ws;

    while (waitpid(pid, &ws, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return decode_status(ws);
}

static void track(pid_t pid)
{
    for (int i = 0; i < MAX_DAEMONS; i++) {
        if (h.daemons[i] == 0) {
            h.daemons[i] = pid;
            return;
        }
    }
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < MAX_DAEMONS; i++) {
        if (h.daemons[i] == pid)
            h.daemons[i] = 0;
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Fast shutdown (as pg_ctl stop -m fast) while it is cheap. Its checkpoint
 * fsyncs every file of every database made (about 0.7 s per database here),
 * data about to be deleted: after PG_FAST_STOP_MS, immediate shutdown. The
 * postmaster exits after its children; SIGKILL to its process group is the
 * last resort, so nothing writes in the folder once this returns. */
static void stop_postgres(void)
{
    if (h.pg_pid <= 0)
        return;
    kill(h.pg_pid, SIGINT);
    if (wait_exit(h.pg_pid, PG_FAST_STOP_MS) == -2) {
        kill(h.pg_pid, SIGQUIT);
        if (wait_exit(h.pg_pid, PG_STOP_TIMEOUT) == -2) {
            say("postgres did not stop in %d ms; SIGKILL", PG_FAST_STOP_MS + PG_STOP_TIMEOUT);
            kill(-h.pg_pid, SIGKILL);
            wait_forever(h.pg_pid);
        }
    }
    kill(-h.pg_pid, SIGKILL); /* children that outlived a killed postmaster */
    h.pg_pid = 0;
}

static void drop_databases(void)
{
    PGconn *c = NULL;

    if (h.n_dbs == 0)
        goto out;
    c = PQconnectdb(h.admin_conninfo);
    for (size_t i = 0; i < h.n_dbs; i++) {
        if (PQstatus(c) == CONNECTION_OK) {
            char *ident = PQescapeIdentifier(c, h.dbs[i], strlen(h.dbs[i]));
            char sql[300];

            if (ident != NULL) {
                snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
                PQclear(PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0));
                PQfreemem(ident);
            }
        }
        free(h.dbs[i]);
    }
out:
    PQfinish(c);
    free(h.dbs);
    h.dbs = NULL;
    h.n_dbs = 0;
}

static void cleanup_at_exit(void)
{
    const char *keep = getenv("TALLY_TEST_KEEP");

    for (int i = 0; i < MAX_DAEMONS; i++) {
        if (h.daemons[i] > 0) {
            kill(h.daemons[i], SIGKILL);
            wait_forever(h.daemons[i]);
            h.daemons[i] = 0;
        }
    }
    drop_databases();
    stop_postgres();
    if (keep != NULL && strcmp(keep, "1") == 0)
        say("kept %s", h.root);
    else
        nftw(h.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Fatal signal: children first (they would outlive us otherwise only until
 * their PDEATHSIG), then the folder, then die of the same signal. Only
 * async-signal-safe calls. */
static void on_fatal_signal(int sig)
{
    pid_t rm;

    for (int i = 0; i < MAX_DAEMONS; i++) {
        if (h.daemons[i] > 0) {
            kill(h.daemons[i], SIGKILL);
            waitpid(h.daemons[i], NULL, 0);
        }
    }
    if (h.pg_pid > 0) {
        kill(h.pg_pid, SIGQUIT); /* immediate shutdown; exits after its children */
        waitpid(h.pg_pid, NULL, 0);
    }
    rm = _Fork();
    if (rm == 0) {
        execve(h.rm_argv[0], h.rm_argv, environ);
        _exit(127);
    }
    if (rm > 0)
        waitpid(rm, NULL, 0);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The first number in path, or 0. */
static long read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

static int pid_alive(long pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* $TMPDIR when it is an absolute path short enough for the Unix sockets
 * PostgreSQL puts under it (108 bytes in all), else /tmp. make test gives
 * every run its own TMPDIR, so two runs on one machine never sweep each
 * other's folders. */
static void set_base(void)
{
    const char *t = getenv("TMPDIR");
    size_t n = t ? strlen(t) : 0;

    while (n > 1 && t[n - 1] == '/')
        n--;
    if (t == NULL || t[0] != '/' || n > 48)
        snprintf(h.base, sizeof(h.base), "/tmp");
    else
        snprintf(h.base, sizeof(h.base), "%.*s", (int)n, t);
}

/* Removes the folders of test processes that died without cleaning up (a
 * SIGKILL, a crash, a sanitizer's _exit): their owner is gone and so is
 * their postmaster. A folder without an owner file yet is left alone. */
static void sweep_stale_folders(void)
{
    DIR *dir = opendir(h.base);
    struct dirent *e;

    if (dir == NULL)
        return;
    while ((e = readdir(dir)) != NULL) {
        char path[400], file[448];
        long pid;

        if (strncmp(e->d_name, "tally-test-", 11) != 0 || strlen(e->d_name) > 64)
            continue;
        snprintf(path, sizeof(path), "%s/%s", h.base, e->d_name);
        if (strcmp(path, h.root) == 0)
            continue;
        snprintf(file, sizeof(file), "%s/owner", path);
        pid = read_pid(file);
        if (pid <= 0 || pid_alive(pid))
            continue;
        snprintf(file, sizeof(file), "%s/pg/data/postmaster.pid", path);
        pid = read_pid(file);
        if (pid > 0 && pid_alive(pid))
            continue;
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    closedir(dir);
}

static int init(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV, SIGBUS, SIGFPE};
    char owner[160];
    FILE *f;
    static char rm_path[] = "/bin/rm", rm_flags[] = "-rf";

    if (h.initialized)
        return 0;
    set_base();
    snprintf(h.root, sizeof(h.root), "%s/tally-test-XXXXXX", h.base);
    if (mkdtemp(h.root) == NULL) {
        say("cannot create a temporary folder: %s", strerror(errno));
        return -1;
    }
    /* postgres (another user when we are root) must reach its folder inside */
    if (chmod(h.root, 0711) != 0) {
        say("chmod %s: %s", h.root, strerror(errno));
        return -1;
    }
    snprintf(owner, sizeof(owner), "%s/owner", h.root);
    f = fopen(owner, "w");
    if (f == NULL || (fprintf(f, "%ld\n", (long)getpid()) < 0) + (fclose(f) != 0) != 0) {
        say("cannot write %s", owner);
        return -1;
    }
    sweep_stale_folders();
    h.rm_argv[0] = rm_path;
    h.rm_argv[1] = rm_flags;
    h.rm_argv[2] = h.root;
    h.rm_argv[3] = NULL;
    atexit(cleanup_at_exit);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction old, sa;

        /* leave alone a handler the test installed itself */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = on_fatal_signal;
            sigemptyset(&sa.sa_mask);
            sigaction(sigs[i], &sa, NULL);
        }
    }
    h.initialized = 1;
    return 0;
}

/* ---- spawning ---- */

struct spawn {
    const char *const *argv; /* argv[0] is the path */
    const char *const *env;  /* extra "NAME=VALUE", may be NULL */
    const char *out_path;    /* stdout (created/truncated) */
    const char *err_path;    /* stderr; NULL = same file as stdout */
    int as_postgres;         /* drop to h.pg_uid/h.pg_gid */
    int death_sig;           /* PR_SET_PDEATHSIG */
    const char *cwd;         /* NULL = inherit */
};

static size_t name_len(const char *kv)
{
    const char *eq = strchr(kv, '=');

    return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* environ with env's entries added or replacing; the array is malloc'd, the
 * strings borrowed. */
static char **merged_env(const char *const *env)
{
    size_t n = 0, k = 0, extra = 0;
    char **out;

    while (environ[n] != NULL)
        n++;
    while (env != NULL && env[extra] != NULL)
        extra++;
    out = calloc(n + extra + 1, sizeof(*out));
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int replaced = 0;

        for (size_t j = 0; j < extra; j++) {
            size_t l = name_len(env[j]);

            if (name_len(environ[i]) == l && strncmp(environ[i], env[j], l) == 0)
                replaced = 1;
        }
        if (!replaced)
            out[k++] = environ[i];
    }
    for (size_t j = 0; j < extra; j++)
        out[k++] = (char *)env[j];
    out[k] = NULL;
    return out;
}

static void child_fail(const char *what, const char *path)
{
    /* stderr is already the output file; only async-signal-safe calls */
    (void)!write(STDERR_FILENO, "harness child: ", 15);
    (void)!write(STDERR_FILENO, what, strlen(what));
    (void)!write(STDERR_FILENO, " ", 1);
    (void)!write(STDERR_FILENO, path, strlen(path));
    (void)!write(STDERR_FILENO, "\n", 1);
    _exit(127);
}

/* Starts the child; returns its pid, or -1 after printing why. */
static pid_t spawn(const struct spawn *sp)
{
    char **envp = merged_env(sp->env);
    pid_t parent = getpid(), pid;

    if (envp == NULL) {
        say("out of memory");
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        say("fork: %s", strerror(errno));
        free(envp);
        return -1;
    }
    if (pid == 0) {
        int out = open(sp->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        int err =
            sp->err_path ? open(sp->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644) : out;
        int null = open("/dev/null", O_RDONLY);

        if (out < 0 || err < 0 || null < 0 || dup2(null, STDIN_FILENO) < 0 ||
            dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
            _exit(126);
        close_range(3, ~0U, 0);
        /* its own process group: a terminal's ^C reaches only the test, which
         * cleans up, and kill(-pid) reaches the child's children too */
        setpgid(0, 0);
        if (sp->as_postgres &&
            (setgroups(0, NULL) != 0 || setgid(h.pg_gid) != 0 || setuid(h.pg_uid) != 0))
            child_fail("cannot become user postgres to run", sp->argv[0]);
        /* after setuid, which clears it: die with the test process */
        if (prctl(PR_SET_PDEATHSIG, sp->death_sig) != 0 || getppid() != parent)
            _exit(125);
        if (sp->cwd != NULL && chdir(sp->cwd) != 0)
            child_fail("cannot chdir to", sp->cwd);
        execve(sp->argv[0], (char *const *)sp->argv, envp);
        child_fail("cannot execute", sp->argv[0]);
    }
    free(envp);
    return pid;
}

/* malloc'd contents of path (NUL-terminated), or NULL. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (f == NULL)
        return NULL;
    do {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap + 65536);

            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap += 65536;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static void print_file(const char *title, const char *path)
{
    char *text = read_file(path);

    fprintf(stderr, "----- %s (%s) -----\n%s%s----- end of %s -----\n", title, path,
            text ? text : "(unreadable)\n",
            text && text[0] && text[strlen(text) - 1] != '\n' ? "\n" : "", title);
    free(text);
}

/* Strips trailing white space in place. */
static char *chomp(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
    return s;
}

int harness_run(const char *const *argv, const char *const *env, int timeout_ms, char **out,
                char **err)
{
    char out_path[HARNESS_PATH_MAX], err_path[HARNESS_PATH_MAX];
    struct spawn sp = {argv, env, out_path, err_path, 0, SIGKILL, NULL};
    unsigned n;
    pid_t pid;
    int st;

    if (out != NULL)
        *out = NULL;
    if (err != NULL)
        *err = NULL;
    if (init() != 0)
        return -1;
    n = ++h.seq;
    snprintf(out_path, sizeof(out_path), "%s/run-%u.out", h.root, n);
    snprintf(err_path, sizeof(err_path), "%s/run-%u.err", h.root, n);
    pid = spawn(&sp);
    if (pid < 0)
        return -1;
    st = wait_exit(pid, timeout_ms);
    if (st == -2) {
        say("%s did not finish in %d ms; killed", argv[0], timeout_ms);
        kill(pid, SIGKILL);
        wait_forever(pid);
        st = -1;
    }
    if (out != NULL)
        *out = read_file(out_path);
    if (err != NULL)
        *err = read_file(err_path);
    return st;
}

const char *harness_tmpdir(void)
{
    return init() == 0 ? h.root : NULL;
}

/* ---- PostgreSQL ---- */

const char *harness_admin_path(void)
{
#ifdef HARNESS_ADMIN_PATH
    return HARNESS_ADMIN_PATH;
#else
    return NULL;
#endif
}

static const char *pg_bindir(void)
{
    const char *d = getenv("TALLY_PG_BINDIR");

    return d != NULL && d[0] != '\0' ? d : HARNESS_PG_BINDIR;
}

/* Starts postgres on the private data folder (h.pg_dir/data, socket in
 * h.pg_dir), output to pg_log, and waits until it accepts connections. Sets
 * h.pg_pid and h.admin_conninfo. Returns 0, or -1 after printing why. */
static int pg_launch(const char *pg_log)
{
    char data[HARNESS_PATH_MAX], postgres[HARNESS_PATH_MAX];
    const char *pg_argv[] = {postgres,
                             "-D",
                             data,
                             "-k",
                             h.pg_dir,
                             "-p",
                             PG_PORT,
                             "-c",
                             "listen_addresses=",
                             "-c",
                             "max_connections=300",
                             NULL};
    /* immediate shutdown if the test process dies */
    struct spawn sp = {pg_argv, NULL, pg_log, NULL, h.as_postgres, SIGQUIT, h.pg_dir};
    long deadline;

    snprintf(data, sizeof(data), "%s/data", h.pg_dir);
    snprintf(postgres, sizeof(postgres), "%s/postgres", pg_bindir());
    h.pg_pid = spawn(&sp);
    if (h.pg_pid < 0) {
        h.pg_pid = 0;
        return -1;
    }
    snprintf(h.admin_conninfo, sizeof(h.admin_conninfo),
             "host=%s port=" PG_PORT " user=postgres dbname=postgres", h.pg_dir);
    deadline = now_ms() + PG_START_TIMEOUT;
    while (PQping(h.admin_conninfo) != PQPING_OK) {
        int ws;

        if (waitpid(h.pg_pid, &ws, WNOHANG) == h.pg_pid) {
            say("postgres exited during startup (status %d)", decode_status(ws));
            h.pg_pid = 0;
            print_file("postgres log", pg_log);
            return -1;
        }
        if (now_ms() > deadline) {
            say("postgres not ready after %d ms", PG_START_TIMEOUT);
            print_file("postgres log", pg_log);
            stop_postgres();
            return -1;
        }
        sleep_ms(20);
    }
    return 0;
}

static int pg_start_private(void)
{
    char data[HARNESS_PATH_MAX], initdb[HARNESS_PATH_MAX];
    char initdb_log[HARNESS_PATH_MAX], pg_log[HARNESS_PATH_MAX];
    const char *initdb_argv[] = {initdb,
                                 "-D",
                                 data,
                                 "-A",
                                 "trust",
                                 "-U",
                                 "postgres",
                                 "-E",
                                 "UTF8",
                                 "--no-locale",
                                 "--no-instructions",
                                 NULL};
    struct spawn sp = {initdb_argv, NULL, initdb_log, NULL, 0, SIGKILL, NULL};
    int st;

    snprintf(h.pg_dir, sizeof(h.pg_dir), "%s/pg", h.root);
    snprintf(data, sizeof(data), "%s/data", h.pg_dir);
    snprintf(initdb, sizeof(initdb), "%s/initdb", pg_bindir());
    snprintf(initdb_log, sizeof(initdb_log), "%s/initdb.log", h.root);
    snprintf(pg_log, sizeof(pg_log), "%s/postgres.log", h.root);

    if (mkdir(h.pg_dir, 0700) != 0) {
        say("mkdir %s: %s", h.pg_dir, strerror(errno));
        return -1;
    }
    if (geteuid() == 0) {
        /* initdb and postgres refuse to run as root */
        struct passwd *pw = getpwnam("postgres");

        if (pw == NULL) {
            say("running as root, but there is no `postgres` user to run PostgreSQL as");
            return -1;
        }
        h.as_postgres = 1;
        h.pg_uid = pw->pw_uid;
        h.pg_gid = pw->pw_gid;
        if (chown(h.pg_dir, h.pg_uid, h.pg_gid) != 0) {
            say("chown %s: %s", h.pg_dir, strerror(errno));
            return -1;
        }
    }
    sp.as_postgres = h.as_postgres;
    sp.cwd = h.pg_dir;
    if (access(initdb, X_OK) != 0) {
        say("no PostgreSQL at %s (set TALLY_PG_BINDIR or TALLY_TEST_DATABASE_URL)", initdb);
        return -1;
    }
    pid_t pid = spawn(&sp);
    if (pid < 0)
        return -1;
    st = wait_exit(pid, INITDB_TIMEOUT);
    if (st != 0) {
        if (st == -2) {
            kill(pid, SIGKILL);
            wait_forever(pid);
        }
        say("initdb failed (status %d)", st);
        print_file("initdb output", initdb_log);
        return -1;
    }

    return pg_launch(pg_log);
}

/* The admin connection works (starting the private server if needed). */
static int pg_ensure(void)
{
    const char *url = getenv("TALLY_TEST_DATABASE_URL");

    if (h.pg_ready)
        return 0;
    if (init() != 0)
        return -1;
    if (url != NULL && url[0] != '\0') {
        PGconn *c;

        if (strlen(url) >= sizeof(h.admin_conninfo)) {
            say("TALLY_TEST_DATABASE_URL is too long");
            return -1;
        }
        snprintf(h.admin_conninfo, sizeof(h.admin_conninfo), "%s", url);
        c = PQconnectdb(h.admin_conninfo);
        if (PQstatus(c) != CONNECTION_OK) {
            say("cannot connect to TALLY_TEST_DATABASE_URL: %s", PQerrorMessage(c));
            PQfinish(c);
            return -1;
        }
        PQfinish(c);
        h.pg_external = 1;
    } else if (pg_start_private() != 0) {
        say("no test database: could not start a private PostgreSQL");
        return -1;
    }
    h.pg_ready = 1;
    return 0;
}

int harness_pg_is_private(void)
{
    if (pg_ensure() != 0)
        return 0;
    return !h.pg_external;
}

int harness_pg_stop(void)
{
    if (pg_ensure() != 0)
        return -1;
    if (h.pg_external || h.pg_pid <= 0) {
        say("harness_pg_stop: no private PostgreSQL running (TALLY_TEST_DATABASE_URL is set, or "
            "it is stopped already)");
        return -1;
    }
    kill(h.pg_pid, SIGINT); /* fast shutdown */
    if (wait_exit(h.pg_pid, PG_STOP_TIMEOUT) == -2) {
        say("postgres did not finish a fast shutdown in %d ms", PG_STOP_TIMEOUT);
        stop_postgres();
        return -1;
    }
    kill(-h.pg_pid, SIGKILL); /* children that outlived the postmaster, if any */
    h.pg_pid = 0;
    return 0;
}

int harness_pg_start(void)
{
    static unsigned restarts;
    char pg_log[HARNESS_PATH_MAX];

    if (pg_ensure() != 0)
        return -1;
    if (h.pg_external || h.pg_pid > 0) {
        say("harness_pg_start: no stopped private PostgreSQL to start");
        return -1;
    }
    snprintf(pg_log, sizeof(pg_log), "%s/postgres-%u.log", h.root, ++restarts);
    return pg_launch(pg_log);
}

int harness_pg_restart(void)
{
    if (harness_pg_stop() != 0)
        return -1;
    return harness_pg_start();
}

/* Appends " key='value'" (libpq quoting) to buf; -1 if it does not fit. */
static int conninfo_append(char *buf, size_t size, const char *key, const char *val)
{
    size_t n = strlen(buf);

    if (n + strlen(key) + 4 >= size)
        return -1;
    n += (size_t)snprintf(buf + n, size - n, "%s%s='", n ? " " : "", key);
    for (const char *p = val; *p; p++) {
        if (n + 3 >= size)
            return -1;
        if (*p == '\'' || *p == '\\')
            buf[n++] = '\\';
        buf[n++] = *p;
    }
    if (n + 2 >= size)
        return -1;
    buf[n++] = '\'';
    buf[n] = '\0';
    return 0;
}

/* The admin conninfo with dbname replaced. */
static int conninfo_for_db(const char *dbname, char out[HARNESS_CONNINFO_MAX])
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(h.admin_conninfo, &err);
    int rc = 0;

    if (opts == NULL) {
        say("cannot parse the test server's conninfo: %s", err ? err : "out of memory");
        PQfreemem(err);
        return -1;
    }
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword != NULL && rc == 0; o++) {
        if (o->val != NULL && o->val[0] != '\0' && strcmp(o->keyword, "dbname") != 0)
            rc = conninfo_append(out, HARNESS_CONNINFO_MAX, o->keyword, o->val);
    }
    if (rc == 0)
        rc = conninfo_append(out, HARNESS_CONNINFO_MAX, "dbname", dbname);
    PQconninfoFree(opts);
    if (rc != 0)
        say("conninfo too long");
    return rc;
}

/* Runs tally-admin --db conninfo args...; returns its trimmed stdout
 * (malloc'd) on exit status 0, else NULL after printing its output. */
static char *admin(const char *conninfo, const char *const *args)
{
    const char *argv[16];
    char *out = NULL, *err = NULL;
    size_t n = 0;
    int st;

    if (harness_admin_path() == NULL) {
        say("tally-admin was not built (no CMake target tally-admin)");
        return NULL;
    }
    argv[n++] = harness_admin_path();
    argv[n++] = "--db";
    argv[n++] = conninfo;
    for (size_t i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    st = harness_run(argv, NULL, ADMIN_TIMEOUT, &out, &err);
    if (st != 0) {
        fprintf(stderr, "harness: tally-admin");
        for (size_t i = 3; i < n; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, " failed (status %d)\n----- stdout -----\n%s\n----- stderr -----\n%s\n", st,
                out ? out : "", err ? err : "");
        free(out);
        out = NULL;
    } else if (out != NULL) {
        chomp(out);
    }
    free(err);
    return out;
}

int harness_db_create(char conninfo[HARNESS_CONNINFO_MAX])
{
    static const char *const migrate[] = {"migrate", NULL};
    char name[64], sql[160];
    char *ident = NULL, *out = NULL;
    PGconn *c = NULL;
    PGresult *res = NULL;
    int rc = -1;

    conninfo[0] = '\0';
    if (pg_ensure() != 0)
        goto out;
    snprintf(name, sizeof(name), "tally_test_%ld_%u_%ld", (long)getpid(), ++h.seq,
             now_ms() % 100000);
    c = PQconnectdb(h.admin_conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        say("cannot connect to the test server: %s", PQerrorMessage(c));
        goto out;
    }
    ident = PQescapeIdentifier(c, name, strlen(name));
    if (ident == NULL) {
        say("cannot quote %s: %s", name, PQerrorMessage(c));
        goto out;
    }
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", ident);
    res = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        say("CREATE DATABASE %s: %s", name, PQresultErrorMessage(res));
        goto out;
    }
    if (h.pg_external) {
        char **dbs = realloc(h.dbs, (h.n_dbs + 1) * sizeof(*dbs));

        if (dbs == NULL || (dbs[h.n_dbs] = strdup(name)) == NULL) {
            if (dbs != NULL)
                h.dbs = dbs;
            say("out of memory");
            goto out;
        }
        h.dbs = dbs;
        h.n_dbs++;
    }
    if (conninfo_for_db(name, conninfo) != 0)
        goto out;
    out = admin(conninfo, migrate);
    if (out == NULL) {
        say("migrations failed on %s", name);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        conninfo[0] = '\0';
    free(out);
    PQclear(res);
    PQfreemem(ident);
    PQfinish(c);
    return rc;
}

int harness_tenant_token(const char *conninfo, const char *tenant_name,
                         char tenant_id[HARNESS_ID_MAX], char token[HARNESS_TOKEN_MAX])
{
    const char *const tenant_args[] = {"tenant", "create", tenant_name, NULL};
    const char *const token_args[] = {"token", "create", "--tenant", tenant_name, "--quiet", NULL};
    char *id = NULL, *tok = NULL;
    int rc = -1;

    token[0] = '\0';
    if ((id = admin(conninfo, tenant_args)) == NULL)
        goto out;
    if ((tok = admin(conninfo, token_args)) == NULL)
        goto out;
    if (id[0] == '\0' || strlen(id) >= HARNESS_ID_MAX || strchr(id, '\n') != NULL) {
        say("tally-admin tenant create printed \"%s\", not a tenant id", id);
        goto out;
    }
    if (tok[0] == '\0' || strlen(tok) >= HARNESS_TOKEN_MAX || strchr(tok, '\n') != NULL) {
        say("tally-admin token create --quiet printed more or less than a token");
        goto out;
    }
    if (tenant_id != NULL)
        memcpy(tenant_id, id, strlen(id) + 1);
    memcpy(token, tok, strlen(tok) + 1);
    rc = 0;
out:
    free(id);
    free(tok);
    return rc;
}

/* ---- daemons ---- */

const char *harness_daemon_name(enum harness_daemon_kind kind)
{
    switch (kind) {
    case HARNESS_COMMAND:
        return "tally-command";
    case HARNESS_QUERY:
        return "tally-query";
    case HARNESS_PROJECTOR:
        return "tally-projector";
    }
    return "?";
}

const char *harness_daemon_path(enum harness_daemon_kind kind)
{
    switch (kind) {
    case HARNESS_COMMAND:
#ifdef HARNESS_COMMAND_PATH
        return HARNESS_COMMAND_PATH;
#else
        return NULL;
#endif
    case HARNESS_QUERY:
#ifdef HARNESS_QUERY_PATH
        return HARNESS_QUERY_PATH;
#else
        return NULL;
#endif
    case HARNESS_PROJECTOR:
#ifdef HARNESS_PROJECTOR_PATH
        return HARNESS_PROJECTOR_PATH;
#else
        return NULL;
#endif
    }
    return NULL;
}

char *harness_daemon_log(const struct harness_daemon *d)
{
    return read_file(d->log_path);
}

void harness_daemon_print_log(const struct harness_daemon *d)
{
    print_file(d->name, d->log_path);
}

int harness_daemon_start(struct harness_daemon *d, enum harness_daemon_kind kind,
                         const char *conninfo, const char *const *args, const char *const *env)
{
    const char *argv[64];
    struct spawn sp = {argv, env, d->log_path, NULL, 0, SIGKILL, NULL};
    size_t n = 0;
    long deadline;
    unsigned seq;

    memset(d, 0, sizeof(*d));
    d->kind = kind;
    d->name = harness_daemon_name(kind);
    d->exit_status = -1;
    if (init() != 0)
        return -1;
    if (harness_daemon_path(kind) == NULL) {
        say("%s was not built (no CMake target)", d->name);
        return -1;
    }
    seq = ++h.seq;
    snprintf(d->log_path, sizeof(d->log_path), "%s/%s-%u.log", h.root, d->name, seq);
    snprintf(d->ready_path, sizeof(d->ready_path), "%s/%s-%u.ready", h.root, d->name, seq);
    argv[n++] = harness_daemon_path(kind);
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = d->ready_path;
    if (conninfo != NULL) {
        argv[n++] = "--db";
        argv[n++] = conninfo;
    }
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        if (n >= sizeof(argv) / sizeof(argv[0]) - 1) {
            say("too many arguments for %s", d->name);
            return -1;
        }
        argv[n++] = args[i];
    }
    argv[n] = NULL;

    d->pid = spawn(&sp);
    if (d->pid < 0) {
        d->pid = 0;
        return -1;
    }
    track(d->pid);
    deadline = now_ms() + READY_TIMEOUT;
    for (;;) {
        int ws;
        char *ready;

        if (waitpid(d->pid, &ws, WNOHANG) == d->pid) {
            untrack(d->pid);
            d->pid = 0;
            d->exit_status = decode_status(ws);
            say("%s exited with status %d before it was ready", d->name, d->exit_status);
            harness_daemon_print_log(d);
            return -1;
        }
        ready = read_file(d->ready_path);
        if (ready != NULL) {
            size_t len = strlen(ready);

            /* written with rename, so complete once it is there */
            if (len > 0 && ready[len - 1] == '\n' && len < sizeof(d->addr)) {
                memcpy(d->addr, ready, len + 1);
                chomp(d->addr);
                free(ready);
                return 0;
            }
            say("%s wrote a malformed ready file: \"%s\"", d->name, ready);
            free(ready);
            harness_daemon_kill9(d);
            harness_daemon_print_log(d);
            return -1;
        }
        if (now_ms() > deadline) {
            say("%s not ready after %d ms; killed", d->name, READY_TIMEOUT);
            harness_daemon_kill9(d);
            harness_daemon_print_log(d);
            return -1;
        }
        sleep_ms(5);
    }
}

int harness_daemon_signal_stop(struct harness_daemon *d, int sig, int timeout_ms)
{
    long t0 = now_ms();
    int st;

    if (d->pid <= 0)
        return d->exit_status;
    kill(d->pid, sig);
    st = wait_exit(d->pid, timeout_ms);
    if (st == -2) {
        say("%s did not exit within %d ms of signal %d; SIGKILL", d->name, timeout_ms, sig);
        kill(d->pid, SIGKILL);
        st = wait_forever(d->pid);
    }
    d->stop_ms = now_ms() - t0;
    untrack(d->pid);
    d->pid = 0;
    d->exit_status = st;
    if (st != 0) {
        say("%s exited with status %d", d->name, st);
        harness_daemon_print_log(d);
    }
    return st;
}

int harness_daemon_stop(struct harness_daemon *d, int timeout_ms)
{
    return harness_daemon_signal_stop(d, SIGTERM, timeout_ms);
}

int harness_daemon_kill9(struct harness_daemon *d)
{
    if (d->pid <= 0)
        return d->exit_status;
    kill(d->pid, SIGKILL);
    d->exit_status = wait_forever(d->pid);
    untrack(d->pid);
    d->pid = 0;
    return d->exit_status;
}

int harness_daemon_running(struct harness_daemon *d)
{
    int ws;
    pid_t r;

    if (d->pid <= 0)
        return 0;
    r = waitpid(d->pid, &ws, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
        return 1;
    say("%s (pid %ld) has exited", d->name, (long)d->pid);
    untrack(d->pid);
    d->pid = 0;
    d->exit_status = r > 0 ? decode_status(ws) : -1;
    harness_daemon_print_log(d);
    return 0;
}
