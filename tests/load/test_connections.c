/* test_connections.c - load: 10,000 connections attempted against
 * tally-command (issue 7, item 2): refused or served, never a crash.
 *
 * The connections are opened concurrently in batches as large as the file
 * descriptor limit permits (the soft RLIMIT_NOFILE is raised to the hard
 * limit first, and the daemon inherits it; a batch leaves room for the
 * daemon's own descriptors, at most BATCH_MAX). They rotate through five
 * kinds:
 *
 *   close    connect, then close at once (FIN)
 *   preface  the HTTP/2 client preface and an empty SETTINGS frame: the
 *            server must answer with its SETTINGS frame (served)
 *   garbage  an HTTP/1.1 request: the server must close the connection
 *   half     the first 10 bytes of the preface, then nothing (slowloris)
 *   idle     nothing at all
 *
 * and every one but `close` is closed with a reset (SO_LINGER 0) at the end
 * of its batch, while the rest are still open. Checked:
 *
 *   - every attempt either failed to connect (refused) or connected;
 *   - every connected preface got the server's SETTINGS and every connected
 *     garbage connection was closed by the server, within WAIT_MS;
 *   - while a batch is held open the daemon is alive and a normal RPC on an
 *     established channel succeeds; after every batch it is alive;
 *   - afterwards a new channel gets served (OpenAccount, Deposit), and the
 *     daemon's open descriptors come back (waited for, up to SETTLE_MS,
 *     after every batch) within FD_SLACK of the baseline and its VmRSS stays
 *     under the bounds CONN_KB and STEADY_KB (see there);
 *   - it shuts down cleanly (exit status 0; under ASan LeakSanitizer too).
 *
 * The figures are printed ("load:" lines) for the README. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "tally/v1/command.trpc.h"

#include "harness.h"
#include "loadutil.h"
#include "trpc.h"

#define ATTEMPTS    10000
#define BATCH_MAX   1250
#define RESERVE     256 /* descriptors left for everything else, on each side */
#define CALL_MS     30000
#define WAIT_MS     30000 /* connects, SETTINGS, closes of one batch */
#define SETTLE_MS   30000 /* descriptors and RSS back after the last batch */
#define STOP_MS     30000
#define FD_SLACK    16
#define STEADY_FROM 4 /* the batch after which VmRSS must stay steady */

/* RSS bounds, over the baseline (the daemon warmed up by a few calls).
 * Measured (debug build, batches of 1,250): VmRSS peaks about 40 MB over the
 * baseline while a batch is held (about 32 kB per connection: gRPC's
 * transport state and read buffers) and stays near that peak after the
 * batches are closed, from the second batch on: glibc keeps freed memory in
 * its per-thread arenas. What it keeps is bounded by the largest number of
 * connections open at once, not by how many came and went: 10,000 and
 * 25,000 attempts both end at +38 MB, flat within 0.5 MB from batch 2 to the
 * last. So two bounds:
 *   - total growth < CONN_KB per connection of one batch (48 kB: 1.5 times
 *     the measured 32 kB);
 *   - steady growth: from the end of batch STEADY_FROM on, at least one
 *     batch grows VmRSS by less than STEADY_KB (1 MB; measured < 0.5 MB).
 *     A leak of 1 kB per connection grows every batch of 1,250 by 1.25 MB;
 *     a one-off step (glibc mapping another arena: +16 MB once, seen in a
 *     fresh run) does not. Bounding the sum instead failed on that step.
 * Under AddressSanitizer the figures are not about tally: its allocator
 * adds redzones, keeps freed blocks in a quarantine (capped at 32 MB for
 * this test) and never gives memory back. Measured: +140 MB after the first
 * batch (about 110 kB per connection), +206 MB at the end, still creeping
 * (+30 to +60 MB from batch 4 to 8). So under ASan only the total is
 * bounded, loosely (256 kB per connection), and the steady check is left
 * out: the debug build's bounds are the real check, and LeakSanitizer at
 * the daemon's exit the leak check. */
#if defined(__SANITIZE_ADDRESS__)
#define CONN_KB   256
#define STEADY_KB 0L /* not checked */
#else
#define CONN_KB   48
#define STEADY_KB 1024L
#endif

#define OK GRPC_STATUS_OK

enum kind { K_CLOSE, K_PREFACE, K_GARBAGE, K_HALF, K_IDLE, K_KINDS };
static const char *const kind_names[K_KINDS] = {"close", "preface", "garbage", "half", "idle"};

/* what became of one connection */
enum state {
    S_CONNECTING = 0,
    S_REFUSED,   /* connect failed */
    S_OPEN,      /* connected, nothing expected from the server */
    S_WAITING,   /* connected, an answer expected */
    S_SERVED,    /* preface: got the server's SETTINGS */
    S_CLOSED,    /* the server closed it (EOF or reset) */
    S_ANSWERED,  /* garbage: got bytes (then waits for the close) */
    S_UNEXPECTED /* an answer that is neither */
};

struct conn {
    int fd;
    enum kind kind;
    enum state state;
    unsigned char head[9]; /* preface: the first frame header received */
    size_t head_len;
};

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const unsigned char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0}; /* empty SETTINGS */
static const char http1[] = "GET / HTTP/1.1\r\nHost: tally\r\n\r\n";

static struct {
    char db[HARNESS_CONNINFO_MAX];
    char token[HARNESS_TOKEN_MAX];
    char bearer[HARNESS_TOKEN_MAX + 16];
    trpc_metadata md[1];
    trpc_call_opts opts;
    struct harness_daemon cmd;
    int cmd_up;
    long nofile;
    struct sockaddr_in addr;
} fx;

static int suite_init(void)
{
    char asan_env[1024], tenant_id[HARNESS_ID_MAX];
    const char *asan = getenv("ASAN_OPTIONS");
    const char *env[] = {asan_env, NULL};
    const char *colon;

    memset(&fx, 0, sizeof(fx));
    if (loadutil_raise_nofile(&fx.nofile) != 0)
        return -1;
    /* as in test_subscribers.c: a capped quarantine keeps the RSS bound
     * meaningful under ASan; a no-op in other builds */
    snprintf(asan_env, sizeof(asan_env), "ASAN_OPTIONS=%s%squarantine_size_mb=32",
             asan != NULL ? asan : "", asan != NULL && *asan != '\0' ? ":" : "");
    if (harness_db_create(fx.db) != 0)
        return -1;
    if (harness_tenant_token(fx.db, "flood", tenant_id, fx.token) != 0)
        return -1;
    snprintf(fx.bearer, sizeof(fx.bearer), "Bearer %s", fx.token);
    fx.md[0].key = "authorization";
    fx.md[0].value = fx.bearer;
    fx.opts.timeout_ms = CALL_MS;
    fx.opts.metadata = fx.md;
    fx.opts.n_metadata = 1;
    if (harness_daemon_start(&fx.cmd, HARNESS_COMMAND, fx.db, NULL, env) != 0)
        return -1;
    fx.cmd_up = 1;
    colon = strrchr(fx.cmd.addr, ':');
    if (colon == NULL)
        return -1;
    fx.addr.sin_family = AF_INET;
    fx.addr.sin_port = htons((uint16_t)atoi(colon + 1));
    fx.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return 0;
}

static int suite_cleanup(void)
{
    if (fx.cmd_up && harness_daemon_stop(&fx.cmd, STOP_MS) != 0)
        return -1;
    return 0;
}

/* ---- a normal client ---- */

/* OpenAccount, then a Deposit into it, on ch. */
static int serve_check(trpc_channel *ch, const char *what)
{
    Tally__V1__OpenAccountRequest oreq = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__OpenAccountResponse *oresp = NULL;
    Tally__V1__DepositRequest dreq = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__Money money = TALLY__V1__MONEY__INIT;
    Tally__V1__CommandResponse *dresp = NULL;
    trpc_status st;
    int rc = -1;

    oreq.owner = (char *)"flood";
    oreq.currency = (char *)"EUR";
    if (tally__v1__command_service__trpc_open_account(ch, &oreq, &oresp, &fx.opts, &st) != OK) {
        fprintf(stderr, "test_connections: %s: open account: %s: %s\n", what,
                trpc_status_code_name(st.code), st.msg);
        goto out;
    }
    money.minor_units = 100;
    money.currency = (char *)"EUR";
    dreq.account_id = oresp->account_id;
    dreq.amount = &money;
    if (tally__v1__command_service__trpc_deposit(ch, &dreq, &dresp, &fx.opts, &st) != OK) {
        fprintf(stderr, "test_connections: %s: deposit: %s: %s\n", what,
                trpc_status_code_name(st.code), st.msg);
        goto out;
    }
    rc = 0;
out:
    if (oresp != NULL)
        tally__v1__open_account_response__free_unpacked(oresp, NULL);
    if (dresp != NULL)
        tally__v1__command_response__free_unpacked(dresp, NULL);
    return rc;
}

/* ---- raw connections ---- */

static void send_all(struct conn *c, const void *buf, size_t len)
{
    /* a few dozen bytes into an empty socket buffer: one send */
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

    if (n != (ssize_t)len)
        c->state = S_CLOSED; /* reset already (or refused late) */
}

/* The connection is up: does its kind's part. */
static void on_connected(struct conn *c)
{
    switch (c->kind) {
    case K_CLOSE:
        close(c->fd); /* FIN: graceful */
        c->fd = -1;
        c->state = S_OPEN;
        break;
    case K_PREFACE:
        c->state = S_WAITING;
        send_all(c, preface, sizeof(preface) - 1);
        if (c->state == S_WAITING)
            send_all(c, settings, sizeof(settings));
        break;
    case K_GARBAGE:
        c->state = S_WAITING;
        send_all(c, http1, sizeof(http1) - 1);
        break;
    case K_HALF:
        c->state = S_OPEN;
        send_all(c, preface, 10);
        break;
    case K_IDLE:
    case K_KINDS:
        c->state = S_OPEN;
        break;
    }
}

/* Reads what the server sent on a waiting connection. */
static void on_readable(struct conn *c)
{
    unsigned char buf[4096];
    ssize_t n;

    for (;;) {
        n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) { /* EOF, or a reset */
            if (c->state != S_SERVED)
                c->state = S_CLOSED;
            return;
        }
        if (c->kind == K_PREFACE) {
            size_t take = sizeof(c->head) - c->head_len;

            if (take > (size_t)n)
                take = (size_t)n;
            memcpy(c->head + c->head_len, buf, take);
            c->head_len += take;
            if (c->head_len == sizeof(c->head) && c->state == S_WAITING)
                c->state = c->head[3] == 4 && c->head[4] == 0 ? S_SERVED : S_UNEXPECTED;
            if (c->state == S_SERVED)
                return; /* the rest (SETTINGS ack, WINDOW_UPDATE) does not matter */
        } else if (c->state == S_WAITING) {
            c->state = S_ANSWERED; /* an HTTP/1 error page is fine: then the close */
        }
    }
}

static int still_pending(const struct conn *c)
{
    if (c->fd < 0)
        return 0;
    return c->state == S_CONNECTING || c->state == S_WAITING ||
           (c->kind == K_GARBAGE && c->state == S_ANSWERED);
}

struct totals {
    int attempted, refused, connected;
    int kinds[K_KINDS][8]; /* [kind][state] */
    int alive_during, rpc_during, alive_after;
    long peak_rss_kb;
    int peak_fds;
    int settled;       /* batches after which the descriptors came back */
    long first_rss_kb; /* VmRSS once batch STEADY_FROM was closed */
    long last_rss_kb;  /* ... the last one */
    long min_step_kb;  /* smallest growth of one batch after STEADY_FROM ... */
    int steps;         /* ... over this many batches */
};

/* Waits (up to SETTLE_MS) until the daemon holds at most base_fds +
 * FD_SLACK descriptors: the closed connections are gone. Returns the count
 * (-1 if unreadable). */
static int wait_fds_back(int base_fds)
{
    int64_t until = loadutil_ms() + SETTLE_MS;
    int fds;

    for (;;) {
        fds = loadutil_fd_count(fx.cmd.pid);
        if ((fds >= 0 && fds <= base_fds + FD_SLACK) || loadutil_ms() > until)
            return fds;
        loadutil_sleep_ms(50);
    }
}

/* One batch of n connections starting at index first; all closed at the
 * end. ch is an established channel for the RPC made while it is held. */
static void run_batch(int first, int n, trpc_channel *ch, int base_fds, struct totals *t)
{
    struct loadutil_mem m;
    int fds;
    struct conn *c = calloc((size_t)n, sizeof(*c));
    struct pollfd *p = calloc((size_t)n, sizeof(*p));
    int *idx = calloc((size_t)n, sizeof(*idx));
    int64_t until;

    CU_ASSERT_FATAL(c != NULL && p != NULL && idx != NULL);
    for (int i = 0; i < n; i++) {
        c[i].kind = (enum kind)((first + i) % K_KINDS);
        c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        t->attempted++;
        if (c[i].fd < 0) {
            fprintf(stderr, "test_connections: socket: %s\n", strerror(errno));
            c[i].state = S_REFUSED;
            continue;
        }
        if (connect(c[i].fd, (const struct sockaddr *)&fx.addr, sizeof(fx.addr)) == 0)
            on_connected(&c[i]);
        else if (errno != EINPROGRESS)
            c[i].state = S_REFUSED;
    }
    /* connects complete, answers come */
    until = loadutil_ms() + WAIT_MS;
    for (;;) {
        int np = 0, r;

        for (int i = 0; i < n; i++) {
            if (!still_pending(&c[i]))
                continue;
            p[np].fd = c[i].fd;
            p[np].events = c[i].state == S_CONNECTING ? POLLOUT : POLLIN;
            p[np].revents = 0;
            idx[np++] = i;
        }
        if (np == 0 || loadutil_ms() > until)
            break;
        r = poll(p, (nfds_t)np, 200);
        for (int j = 0; r > 0 && j < np; j++) {
            struct conn *k = &c[idx[j]];

            if (p[j].revents == 0)
                continue;
            if (k->state == S_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof(err);

                getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0)
                    k->state = S_REFUSED;
                else
                    on_connected(k);
            } else {
                on_readable(k);
            }
        }
    }
    /* held open: the daemon lives and serves a normal client meanwhile */
    {
        int held = loadutil_fd_count(fx.cmd.pid);

        t->alive_during += loadutil_alive(fx.cmd.pid);
        t->rpc_during += serve_check(ch, "while a batch is held") == 0;
        if (loadutil_mem(fx.cmd.pid, &m) == 0 && m.rss_kb > t->peak_rss_kb)
            t->peak_rss_kb = m.rss_kb;
        if (held > t->peak_fds)
            t->peak_fds = held;
    }
    for (int i = 0; i < n; i++) {
        if (c[i].state == S_REFUSED)
            t->refused++;
        else
            t->connected++;
        t->kinds[c[i].kind][c[i].state]++;
        if (c[i].fd >= 0) {
            struct linger lg = {1, 0}; /* a reset: no TIME_WAIT on either side */

            setsockopt(c[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            close(c[i].fd);
        }
    }
    t->alive_after += loadutil_alive(fx.cmd.pid);
    fds = wait_fds_back(base_fds);
    t->settled += fds >= 0 && fds <= base_fds + FD_SLACK;
    if (loadutil_mem(fx.cmd.pid, &m) == 0) {
        if (first / n + 1 == STEADY_FROM)
            t->first_rss_kb = m.rss_kb;
        if (first / n + 1 > STEADY_FROM &&
            (t->steps++ == 0 || m.rss_kb - t->last_rss_kb < t->min_step_kb))
            t->min_step_kb = m.rss_kb - t->last_rss_kb;
        t->last_rss_kb = m.rss_kb;
    }
    printf("    load: batch %d: %d descriptors after it (%d before the flood), VmRSS %ld kB\n",
           first / n + 1, fds, base_fds, m.rss_kb);
    free(c);
    free(p);
    free(idx);
}

static void test_load_connections_refused_or_served(void)
{
    struct loadutil_mem base, end;
    int attempts = ATTEMPTS;
    const char *env_attempts = getenv("TALLY_LOAD_ATTEMPTS");
    int base_fds, fds = -1, batch, batches = 0;
    struct totals t;
    trpc_channel *ch = trpc_channel_new(fx.cmd.addr), *fresh;
    int64_t t0, t_flood;

    memset(&t, 0, sizeof(t));
    if (env_attempts != NULL && atoi(env_attempts) > 0) /* experiments only */
        attempts = atoi(env_attempts);
    CU_ASSERT_FATAL(ch != NULL);
    /* warm up (pool connections, caches), then the baseline */
    for (int i = 0; i < 3; i++)
        CU_ASSERT_FATAL(serve_check(ch, "warm-up") == 0);
    CU_ASSERT_FATAL(loadutil_mem(fx.cmd.pid, &base) == 0);
    base_fds = loadutil_fd_count(fx.cmd.pid);
    CU_ASSERT_FATAL(base_fds > 0);
    batch = (int)(fx.nofile - RESERVE - base_fds);
    if (batch > BATCH_MAX)
        batch = BATCH_MAX;
    CU_ASSERT_FATAL(batch >= 64); /* else the hard limit is too low to test anything */
    printf("\n    load: %d connections in batches of %d (RLIMIT_NOFILE %ld); tally-command "
           "VmRSS %ld kB, %d descriptors before\n",
           attempts, batch, fx.nofile, base.rss_kb, base_fds);

    t0 = loadutil_ms();
    for (int first = 0; first < attempts; first += batch) {
        run_batch(first, first + batch <= attempts ? batch : attempts - first, ch, base_fds, &t);
        batches++;
        if (!loadutil_alive(fx.cmd.pid))
            break;
    }
    t_flood = loadutil_ms() - t0;
    printf("    load: %d attempted in %d batches in %" PRId64 " ms: %d connected, %d refused; "
           "held: peak %d descriptors, peak VmRSS %ld kB\n",
           t.attempted, batches, t_flood, t.connected, t.refused, t.peak_fds, t.peak_rss_kb);
    for (int k = 0; k < K_KINDS; k++)
        printf("    load:   %-8s refused %d, open %d, served %d, closed by the server %d, "
               "answered %d, unexpected %d, no answer %d\n",
               kind_names[k], t.kinds[k][S_REFUSED], t.kinds[k][S_OPEN], t.kinds[k][S_SERVED],
               t.kinds[k][S_CLOSED], t.kinds[k][S_ANSWERED], t.kinds[k][S_UNEXPECTED],
               t.kinds[k][S_WAITING] + t.kinds[k][S_CONNECTING]);
    CU_ASSERT(t.attempted == attempts);
    CU_ASSERT(t.connected + t.refused == attempts);
    CU_ASSERT(t.connected > 0);
    CU_ASSERT(t.alive_during == batches && t.alive_after == batches);
    CU_ASSERT(t.rpc_during == batches);
    /* refused or served: nothing left unanswered, nothing unexpected */
    CU_ASSERT(t.kinds[K_PREFACE][S_WAITING] == 0 && t.kinds[K_PREFACE][S_CONNECTING] == 0);
    CU_ASSERT(t.kinds[K_PREFACE][S_UNEXPECTED] == 0);
    CU_ASSERT(t.kinds[K_PREFACE][S_SERVED] > 0);
    CU_ASSERT(t.kinds[K_GARBAGE][S_WAITING] == 0 && t.kinds[K_GARBAGE][S_ANSWERED] == 0 &&
              t.kinds[K_GARBAGE][S_CONNECTING] == 0);
    for (int k = 0; k < K_KINDS; k++)
        CU_ASSERT(t.kinds[k][S_CONNECTING] == 0);

    /* afterwards: alive, serving a new client, descriptors and RSS back */
    CU_ASSERT_FATAL(loadutil_alive(fx.cmd.pid));
    fresh = trpc_channel_new(fx.cmd.addr);
    CU_ASSERT(fresh != NULL && serve_check(fresh, "after the flood") == 0);
    trpc_channel_free(fresh);
    fds = wait_fds_back(base_fds);
    CU_ASSERT(serve_check(ch, "after the flood, old channel") == 0);
    loadutil_mem(fx.cmd.pid, &end);
    printf("    load: after the flood: %d descriptors (%d before); VmRSS %ld kB (%ld before; "
           "%ld after batch %d, %ld after the last: growth %ld kB; "
           "total growth %ld kB, bound %ld kB); VmHWM %ld kB\n",
           fds, base_fds, end.rss_kb, base.rss_kb, t.first_rss_kb, STEADY_FROM, t.last_rss_kb,
           t.last_rss_kb - t.first_rss_kb, end.rss_kb - base.rss_kb, (long)batch * CONN_KB,
           end.hwm_kb);
    CU_ASSERT(t.settled == batches);
    CU_ASSERT(fds >= 0 && fds <= base_fds + FD_SLACK);
    CU_ASSERT(t.first_rss_kb > 0 && t.last_rss_kb > 0);
    printf("    load: smallest growth of one batch after batch %d: %ld kB over %d batches "
           "(bound %ld kB)\n",
           STEADY_FROM, t.min_step_kb, t.steps, STEADY_KB);
    if (STEADY_KB > 0)
        CU_ASSERT(t.steps >= 2 && t.min_step_kb < STEADY_KB);
    CU_ASSERT(end.rss_kb > 0 && end.rss_kb - base.rss_kb < (long)batch * CONN_KB);
    CU_ASSERT(end.hwm_kb - base.rss_kb < (long)batch * CONN_KB + 8L * 1024); /* 8 MB slack */
    trpc_channel_free(ch);
}

static CU_TestInfo load_tests[] = {
    {"10,000 connections: refused or served, never a crash",
     test_load_connections_refused_or_served},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"load/connections", suite_init, suite_cleanup, NULL, NULL, load_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned int failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
