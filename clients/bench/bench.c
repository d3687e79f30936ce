/* bench.c - tally-bench: a closed-loop load generator for tally over gRPC.
 *
 *   tally-bench [--workload deposit|query|transfer|mixed|subscribe-latency]
 *               [--addr HOST:PORT] [--query-addr HOST:PORT]
 *               [--subscribe-addr HOST:PORT] [--token T]
 *               [--tls-ca FILE [--tls-cert FILE --tls-key FILE]
 *                [--tls-server-name NAME]]
 *               [--query get-account|list-entries|account-at] [--history N]
 *               [--writers N] [--wait] [--rate N] [--concurrency N]
 *               [--duration S] [--warmup S] [--accounts N] [--channels N]
 *               [--json]
 *
 * Workloads: deposit (here), query (bench_query.c: GetAccount, ListEntries
 * pages of 100 or GetAccountAt, with deposits flowing meanwhile), transfer
 * (bench_pool.c), mixed (bench_mixed.c: every command and the common
 * queries in a documented mix), subscribe-latency (bench_sub.c: commit to
 * Subscribe delivery at a fixed rate).
 * N threads each keep one call in flight for warm-up + duration seconds;
 * only calls that start after the warm-up are measured. With --rate the
 * threads send at that total rate instead (a call starts at its slot, or
 * at once when the threads fall behind), and latency counts from the slot,
 * so a stalled server is not hidden (no coordinated omission). Latencies go into
 * per-thread HDR-style histograms (hist.h), merged at the end. A progress
 * line goes to stderr every second; the result to stdout (one line, or one
 * JSON object with --json). Loopback only: point it at your own daemons.
 * Exit 0 when the run completed (errors are counted, not fatal), 2 on bad
 * usage, 1 when the setup failed. */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tally/v1/command.trpc.h"

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_until(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

uint64_t bench_rng(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

trpc_call_opts bench_call_opts(const struct shared *sh)
{
    trpc_call_opts co = {.timeout_ms = 10000, .metadata = sh->md, .n_metadata = 1};

    return co;
}

grpc_status_code bench_open_account(trpc_channel *ch, const struct shared *sh, int i, char *id,
                                    trpc_status *st)
{
    Tally__V1__OpenAccountRequest req = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__OpenAccountResponse *resp = NULL;
    trpc_call_opts co = bench_call_opts(sh);
    char owner[32];
    grpc_status_code code;

    snprintf(owner, sizeof(owner), "bench-%d", i);
    req.owner = owner;
    req.currency = (char *)"EUR";
    code = tally__v1__command_service__trpc_open_account(ch, &req, &resp, &co, st);
    if (code == GRPC_STATUS_OK)
        snprintf(id, 40, "%s", resp->account_id);
    if (resp)
        tally__v1__open_account_response__free_unpacked(resp, NULL);
    return code;
}

grpc_status_code bench_deposit(trpc_channel *ch, const struct shared *sh, const char *id,
                               int64_t minor_units, Tally__V1__Position *pos, trpc_status *st)
{
    Tally__V1__DepositRequest req = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    trpc_call_opts co = bench_call_opts(sh);
    grpc_status_code code;

    amount.minor_units = minor_units;
    amount.currency = (char *)"EUR";
    req.account_id = (char *)id;
    req.amount = &amount;
    code = tally__v1__command_service__trpc_deposit(ch, &req, &resp, &co, st);
    if (code == GRPC_STATUS_OK && pos && resp->position)
        *pos = *resp->position;
    if (resp)
        tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

trpc_channel *bench_channel(const struct opts *o, const char *addr)
{
    trpc_tls_opts tls = {.ca_file = o->tls_ca,
                         .cert_file = o->tls_cert,
                         .key_file = o->tls_key,
                         .server_name = o->tls_server_name};
    trpc_status st = {0};
    trpc_channel *ch;

    if (o->tls_ca == NULL && o->tls_cert == NULL && o->tls_key == NULL)
        ch = trpc_channel_new(addr);
    else
        ch = trpc_channel_new_tls(addr, &tls, &st);
    if (ch == NULL)
        fprintf(stderr, "tally-bench: cannot create a channel to %s%s%s\n", addr,
                st.msg[0] ? ": " : "", st.msg);
    return ch;
}

void bench_extra_hist(struct bench_extra *x, const char *prefix, const struct hist *h)
{
    size_t jn = strlen(x->json), tn = strlen(x->text);
    double q[5] = {(double)hist_quantile(h, 0.50) / 1000, (double)hist_quantile(h, 0.90) / 1000,
                   (double)hist_quantile(h, 0.99) / 1000, (double)hist_quantile(h, 0.999) / 1000,
                   (double)h->max_us / 1000};

    snprintf(x->json + jn, sizeof(x->json) - jn,
             ",\"%sp50_ms\":%.3f,\"%sp90_ms\":%.3f,\"%sp99_ms\":%.3f,\"%sp999_ms\":%.3f,"
             "\"%smax_ms\":%.3f",
             prefix, q[0], prefix, q[1], prefix, q[2], prefix, q[3], prefix, q[4]);
    snprintf(x->text + tn, sizeof(x->text) - tn,
             " %sp50=%.2fms %sp90=%.2fms %sp99=%.2fms %sp99.9=%.2fms %smax=%.2fms", prefix, q[0],
             prefix, q[1], prefix, q[2], prefix, q[3], prefix, q[4]);
}

/* Setup: open the accounts, shared out among the threads. */
static void *setup_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    trpc_channel *ch = sh->channels[w->index % sh->o->channels];

    for (;;) {
        int i = atomic_fetch_add(&sh->setup_next, 1);
        trpc_status st;

        if (i >= sh->o->accounts || atomic_load(&sh->setup_failed))
            break;
        if (bench_open_account(ch, sh, i, sh->accounts[i], &st) != GRPC_STATUS_OK) {
            fprintf(stderr, "tally-bench: open account: %s %s\n", trpc_status_code_name(st.code),
                    st.msg);
            atomic_store(&sh->setup_failed, 1);
            break;
        }
    }
    return NULL;
}

/* One Deposit of 1 cent to a random account. */
static grpc_status_code op_deposit(struct worker *w, trpc_status *st)
{
    struct shared *sh = w->sh;

    return bench_deposit(sh->channels[w->index % sh->o->channels], sh,
                         sh->accounts[bench_rng(&w->rng) % (uint64_t)sh->o->accounts], 1, NULL, st);
}

static grpc_status_code op_transfer(struct worker *w, trpc_status *st)
{
    return bench_pool_transfer(w, w->sh->o->wait, NULL, NULL, st);
}

static int deposit_opts(struct opts *o)
{
    if (o->accounts < 0)
        o->accounts = 10000;
    return 0;
}

static int transfer_opts(struct opts *o)
{
    if (o->accounts < 0)
        o->accounts = 1000;
    if (o->accounts < 2) {
        fprintf(stderr, "tally-bench: --workload transfer needs --accounts >= 2\n");
        return 2;
    }
    return 0;
}

static int deposit_setup(struct shared *sh, struct worker *w);

/* With --wait, the setup waits for the read model: a saga backlog of an
 * earlier run must not count in this one's latency. */
static int transfer_setup(struct shared *sh, struct worker *w)
{
    return bench_pool_setup(sh, w, sh->o->wait);
}

/* A workload: how main prepares, drives and ends it. */
struct workload {
    const char *name;
    int uses_query, uses_subscribe; /* channels to --query-addr, --subscribe-addr */
    int (*opts)(struct opts *o);    /* defaults, checks: 0 or 2 */
    int (*setup)(struct shared *sh, struct worker *w); /* 0 or -1 */
    grpc_status_code (*call)(struct worker *w, trpc_status *st);
};

static const struct workload workloads[] = {
    {"deposit", 0, 0, deposit_opts, deposit_setup, op_deposit},
    {"query", 1, 0, bench_query_opts, bench_query_setup, bench_query_call},
    {"transfer", 1, 0, transfer_opts, transfer_setup, op_transfer},
    {"mixed", 1, 0, bench_mixed_opts, bench_mixed_setup, bench_mixed_call},
    {"subscribe-latency", 1, 1, bench_sub_opts, bench_sub_setup, bench_sub_call},
};

static const struct workload *find_workload(const char *name)
{
    for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
        if (strcmp(workloads[i].name, name) == 0)
            return &workloads[i];
    return NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    const struct workload *wl = find_workload(sh->o->workload);
    uint64_t interval = sh->o->rate > 0 ? 1000000000u / (uint64_t)sh->o->rate : 0;

    for (;;) {
        uint64_t t0 = bench_now_ns(), t1;
        trpc_status st;
        grpc_status_code code;

        if (interval) { /* the next slot of the whole run */
            uint64_t slot = sh->start_ns + atomic_fetch_add(&sh->next_slot, 1) * interval;

            if (slot >= sh->end_ns)
                break;
            if (slot > t0)
                bench_sleep_until(slot);
            t0 = slot;
        }
        if (t0 >= sh->end_ns)
            break;
        w->t_start = t0;
        w->op = 0;
        code = wl->call(w, &st);
        t1 = bench_now_ns();
        if (t0 < sh->measure_ns)
            continue; /* warm-up */
        if (code == GRPC_STATUS_OK) {
            w->ok++;
            hist_record(&w->hist, (t1 - t0) / 1000);
            atomic_fetch_add(&sh->done, 1);
        } else {
            w->failed++;
            w->codes[(unsigned)code < 17 ? code : 2]++;
            atomic_fetch_add(&sh->errors, 1);
        }
        if (w->ops) {
            struct op_stat *os = &w->ops[w->op];

            if (code == GRPC_STATUS_OK) {
                os->ok++;
                hist_record(&os->hist, (t1 - t0) / 1000);
            } else {
                os->failed++;
            }
        }
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tally-bench [--workload deposit|query|transfer|mixed|subscribe-latency]\n"
               "                   [--addr HOST:PORT] [--query-addr HOST:PORT]\n"
               "                   [--subscribe-addr HOST:PORT] [--token T]\n"
               "                   [--tls-ca FILE [--tls-cert FILE --tls-key FILE]\n"
               "                    [--tls-server-name NAME]]\n"
               "                   [--query get-account|list-entries|account-at] [--history N]\n"
               "                   [--writers N] [--wait] [--rate N] [--concurrency N]\n"
               "                   [--duration S] [--warmup S] [--accounts N] [--channels N]\n"
               "                   [--json]\n"
               "  --workload     deposit (default): Deposit of 1 cent to a random account;\n"
               "                 query: QueryService calls (--query), deposits meanwhile;\n"
               "                 transfer: Transfer of 1 cent between random accounts;\n"
               "                 mixed: every command and the common queries, in the mix\n"
               "                 of clients/bench/bench_mixed.c (60%% writes, 40%% reads);\n"
               "                 subscribe-latency: Deposits at --rate, each matched with\n"
               "                 its event on one Subscribe stream from the end: latency\n"
               "                 from the reply to the event's arrival\n"
               "  --addr         CommandService address (env TALLY_ADDR, default 127.0.0.1:50051)\n"
               "  --query-addr   QueryService address (env TALLY_QUERY_ADDR, 127.0.0.1:50052)\n"
               "                 (query, mixed, transfer --wait and subscribe-latency\n"
               "                 use --query-addr: their setup waits for the read model)\n"
               "  --subscribe-addr  SubscriptionService address, tally-projector\n"
               "                 (env TALLY_SUBSCRIBE_ADDR, 127.0.0.1:50053)\n"
               "  --token        bearer token (env TALLY_TOKEN)\n"
               "  --tls-ca       TLS: the CA file the servers' certificates must chain to\n"
               "                 (env TALLY_TLS_CA); any --tls-* turns TLS on\n"
               "  --tls-cert, --tls-key  client certificate and key for mutual TLS\n"
               "                 (env TALLY_TLS_CERT, TALLY_TLS_KEY)\n"
               "  --tls-server-name  the name the servers' certificates must carry instead\n"
               "                 of the address's host (env TALLY_TLS_SERVER_NAME)\n"
               "  --query        get-account (default): GetAccount of a random account;\n"
               "                 list-entries: ListEntries, first page of 100 (forwards);\n"
               "                 account-at: GetAccountAt at a random version of --history\n"
               "  --history      events per queried account, 1..1000000 (get-account 2,\n"
               "                 list-entries 150, account-at 100)\n"
               "  --writers      query: threads depositing during the run, 0..256 (0)\n"
               "  --wait         transfer: wait for each transfer's outcome (the saga in\n"
               "                 tally-projector); a FAILED one counts as an error\n"
               "  --rate         calls per second over all threads, 0..1000000 (0 = each\n"
               "                 thread calls again at once; subscribe-latency: 200)\n"
               "  --concurrency  threads, each with one call in flight, 1..1024 (16)\n"
               "  --duration     measured seconds, 1..3600 (10)\n"
               "  --warmup       seconds before measuring, 0..600 (2)\n"
               "  --accounts     accounts for the run, 1..1000000 (deposit 10000; transfer,\n"
               "                 mixed 1000; subscribe-latency 100; get-account 1000,\n"
               "                 list-entries 64, account-at 1)\n"
               "  --channels     gRPC connections shared by the threads, 1..64 (4)\n"
               "  --json         print the result as one JSON object\n");
}

static int parse_int(const char *name, const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "tally-bench: invalid --%s \"%s\" (expected %d..%d)\n", name, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* The environment variable name when set and not empty, else def. */
static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v && *v ? v : def;
}

/* 0 when path is NULL or a readable file, else -1 (printed why). */
static int check_file(const char *flag, const char *path)
{
    FILE *f;

    if (path == NULL)
        return 0;
    if ((f = fopen(path, "r")) == NULL) {
        fprintf(stderr, "tally-bench: %s %s: %s\n", flag, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"addr", required_argument, NULL, 'a'},
        {"token", required_argument, NULL, 't'},
        {"workload", required_argument, NULL, 'w'},
        {"query", required_argument, NULL, 'q'},
        {"query-addr", required_argument, NULL, 'Q'},
        {"subscribe-addr", required_argument, NULL, 'S'},
        {"tls-ca", required_argument, NULL, 'A'},
        {"tls-cert", required_argument, NULL, 'E'},
        {"tls-key", required_argument, NULL, 'K'},
        {"tls-server-name", required_argument, NULL, 'N'},
        {"history", required_argument, NULL, 'H'},
        {"writers", required_argument, NULL, 'r'},
        {"wait", no_argument, NULL, 'x'},
        {"rate", required_argument, NULL, 'R'},
        {"concurrency", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'W'},
        {"accounts", required_argument, NULL, 'n'},
        {"channels", required_argument, NULL, 'C'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct workload *wl;
    int c;

    memset(o, 0, sizeof(*o));
    o->addr = env_or("TALLY_ADDR", "127.0.0.1:50051");
    o->query_addr = env_or("TALLY_QUERY_ADDR", "127.0.0.1:50052");
    o->subscribe_addr = env_or("TALLY_SUBSCRIBE_ADDR", "127.0.0.1:50053");
    o->token = getenv("TALLY_TOKEN");
    o->tls_ca = env_or("TALLY_TLS_CA", NULL);
    o->tls_cert = env_or("TALLY_TLS_CERT", NULL);
    o->tls_key = env_or("TALLY_TLS_KEY", NULL);
    o->tls_server_name = env_or("TALLY_TLS_SERVER_NAME", NULL);
    o->workload = "deposit";
    o->query = "get-account";
    o->history = -1;
    o->writers = 0;
    o->concurrency = 16;
    o->duration_s = 10;
    o->warmup_s = 2;
    o->accounts = -1;
    o->channels = 4;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            o->addr = optarg;
            break;
        case 't':
            o->token = optarg;
            break;
        case 'w':
            o->workload = optarg;
            break;
        case 'q':
            o->query = optarg;
            break;
        case 'Q':
            o->query_addr = optarg;
            break;
        case 'S':
            o->subscribe_addr = optarg;
            break;
        case 'A':
            o->tls_ca = optarg;
            break;
        case 'E':
            o->tls_cert = optarg;
            break;
        case 'K':
            o->tls_key = optarg;
            break;
        case 'N':
            o->tls_server_name = optarg;
            break;
        case 'H':
            if (parse_int("history", optarg, 1, 1000000, &o->history))
                return 2;
            break;
        case 'r':
            if (parse_int("writers", optarg, 0, 256, &o->writers))
                return 2;
            break;
        case 'x':
            o->wait = 1;
            break;
        case 'R':
            if (parse_int("rate", optarg, 0, 1000000, &o->rate))
                return 2;
            break;
        case 'c':
            if (parse_int("concurrency", optarg, 1, 1024, &o->concurrency))
                return 2;
            break;
        case 'd':
            if (parse_int("duration", optarg, 1, 3600, &o->duration_s))
                return 2;
            break;
        case 'W':
            if (parse_int("warmup", optarg, 0, 600, &o->warmup_s))
                return 2;
            break;
        case 'n':
            if (parse_int("accounts", optarg, 1, 1000000, &o->accounts))
                return 2;
            break;
        case 'C':
            if (parse_int("channels", optarg, 1, 64, &o->channels))
                return 2;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tally-bench: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if ((wl = find_workload(o->workload)) == NULL) {
        fprintf(stderr,
                "tally-bench: unknown --workload \"%s\" (expected deposit, query, transfer, "
                "mixed or subscribe-latency)\n",
                o->workload);
        return 2;
    }
    if (wl->opts(o) != 0)
        return 2;
    if (o->wait && strcmp(o->workload, "transfer") != 0) {
        fprintf(stderr, "tally-bench: --wait is for --workload transfer\n");
        return 2;
    }
    if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
        fprintf(stderr, "tally-bench: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (check_file("--tls-ca", o->tls_ca) || check_file("--tls-cert", o->tls_cert) ||
        check_file("--tls-key", o->tls_key))
        return 2;
    if (o->token == NULL || o->token[0] == '\0') {
        fprintf(stderr, "tally-bench: a token is required (--token or TALLY_TOKEN)\n");
        return 2;
    }
    return 0;
}

/* The result: x's histogram (else the calls') as the headline latency. */
static void print_result(const struct opts *o, const struct hist *calls, uint64_t ok,
                         uint64_t failed, double seconds, const struct bench_extra *x)
{
    const struct hist *h = x->hist ? x->hist : calls;
    double rate = seconds > 0 ? (double)ok / seconds : 0;
    char name[64], latency[64] = "";
    double q[5] = {(double)hist_quantile(h, 0.50) / 1000, (double)hist_quantile(h, 0.90) / 1000,
                   (double)hist_quantile(h, 0.99) / 1000, (double)hist_quantile(h, 0.999) / 1000,
                   (double)h->max_us / 1000};
    struct bench_extra cmd;

    memset(&cmd, 0, sizeof(cmd));
    if (x->hist) /* the calls' latency too */
        bench_extra_hist(&cmd, "command_", calls);
    if (strcmp(o->workload, "query") == 0)
        snprintf(name, sizeof(name), "query:%s", o->query);
    else if (strcmp(o->workload, "transfer") == 0 && o->wait)
        snprintf(name, sizeof(name), "transfer:wait");
    else
        snprintf(name, sizeof(name), "%s", o->workload);
    if (o->json) {
        if (x->hist)
            snprintf(latency, sizeof(latency), ",\"latency\":\"%s\"", x->hist_name);
        printf("{\"workload\":\"%s\",\"concurrency\":%d,\"seconds\":%.3f,\"ok\":%" PRIu64
               ",\"errors\":%" PRIu64 ",\"ops_per_sec\":%.1f%s,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f%s%s}\n",
               name, o->concurrency, seconds, ok, failed, rate, latency, q[0], q[1], q[2], q[3],
               q[4], cmd.json, x->json);
    } else {
        if (x->hist)
            snprintf(latency, sizeof(latency), " latency=%s", x->hist_name);
        printf("workload=%s concurrency=%d seconds=%.1f ok=%" PRIu64 " errors=%" PRIu64
               " ops/s=%.0f%s p50=%.2fms p90=%.2fms p99=%.2fms p99.9=%.2fms max=%.2fms%s%s\n",
               name, o->concurrency, seconds, ok, failed, rate, latency, q[0], q[1], q[2], q[3],
               q[4], cmd.text, x->text);
    }
}

static int deposit_setup(struct shared *sh, struct worker *w)
{
    fprintf(stderr, "tally-bench: opening %d accounts on %s\n", sh->o->accounts, sh->o->addr);
    for (int i = 0; i < sh->o->concurrency; i++)
        pthread_create(&w[i].thread, NULL, setup_main, &w[i]);
    for (int i = 0; i < sh->o->concurrency; i++)
        pthread_join(w[i].thread, NULL);
    return atomic_load(&sh->setup_failed) ? -1 : 0;
}

/* Ends the workload's own threads and fills x (NULL: just frees). */
static void stop_workload(struct shared *sh, struct worker *w, struct bench_extra *x)
{
    uint64_t writes = 0, write_errors = 0;

    if (sh->q) {
        bench_query_stop(sh, &writes, &write_errors);
        if (write_errors)
            fprintf(stderr, "tally-bench: %" PRIu64 " deposits of the writers failed\n",
                    write_errors);
        if (x) {
            const struct opts *o = sh->o;
            double per_s = (double)writes / o->duration_s;

            snprintf(x->json, sizeof(x->json),
                     ",\"history\":%d,\"writers\":%d,\"writes_per_sec\":%.1f", o->history,
                     o->writers, per_s);
            snprintf(x->text, sizeof(x->text), " history=%d writers=%d writes/s=%.0f", o->history,
                     o->writers, per_s);
        }
    }
    bench_mixed_stop(sh, w, x);
    bench_sub_stop(sh, x); /* with x it keeps what x points to: called again without */
}

int main(int argc, char **argv)
{
    struct opts o;
    struct shared sh;
    struct worker *w = NULL;
    struct hist total;
    struct bench_extra extra;
    const struct workload *wl;
    uint64_t ok = 0, failed = 0, codes[17] = {0};
    int rc = parse_args(argc, argv, &o), status = 1;

    if (rc)
        return rc == 1 ? 0 : 2;
    wl = find_workload(o.workload);
    memset(&sh, 0, sizeof(sh));
    memset(&extra, 0, sizeof(extra));
    sh.o = &o;
    snprintf(sh.auth, sizeof(sh.auth), "Bearer %s", o.token);
    sh.md[0].key = "authorization";
    sh.md[0].value = sh.auth;
    sh.channels = calloc((size_t)o.channels, sizeof(*sh.channels));
    sh.qchannels = calloc((size_t)o.channels, sizeof(*sh.qchannels));
    sh.accounts = calloc((size_t)o.accounts, sizeof(*sh.accounts));
    w = calloc((size_t)o.concurrency, sizeof(*w));
    if (sh.channels == NULL || sh.qchannels == NULL || sh.accounts == NULL || w == NULL) {
        fprintf(stderr, "tally-bench: out of memory\n");
        goto out;
    }
    for (int i = 0; i < o.channels; i++)
        if ((sh.channels[i] = bench_channel(&o, o.addr)) == NULL)
            goto out;
    for (int i = 0; wl->uses_query && i < o.channels; i++)
        if ((sh.qchannels[i] = bench_channel(&o, o.query_addr)) == NULL)
            goto out;
    if (wl->uses_subscribe && (sh.schannel = bench_channel(&o, o.subscribe_addr)) == NULL)
        goto out;
    for (int i = 0; i < o.concurrency; i++) {
        w[i].sh = &sh;
        w[i].index = i;
        w[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1) ^ bench_now_ns();
        hist_init(&w[i].hist);
    }
    if (wl->setup(&sh, w) != 0)
        goto out;

    sh.start_ns = bench_now_ns();
    sh.measure_ns = sh.start_ns + (uint64_t)o.warmup_s * 1000000000u;
    sh.end_ns = sh.measure_ns + (uint64_t)o.duration_s * 1000000000u;
    if (sh.q && bench_query_start(&sh) != 0) {
        fprintf(stderr, "tally-bench: cannot start the writers\n");
        goto out;
    }
    for (int i = 0; i < o.concurrency; i++)
        pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
    for (uint64_t last = 0;;) {
        uint64_t t = bench_now_ns(), d;

        if (t >= sh.end_ns)
            break;
        sleep(1);
        d = atomic_load(&sh.done);
        if (t >= sh.measure_ns)
            fprintf(stderr,
                    "tally-bench: %4.0fs  %8" PRIu64 " ok  %6" PRIu64 " errors  %8" PRIu64
                    " ops/s\n",
                    (double)(bench_now_ns() - sh.measure_ns) / 1e9, d, atomic_load(&sh.errors),
                    d - last);
        else
            fprintf(stderr, "tally-bench: warming up\n");
        last = d;
    }
    hist_init(&total);
    for (int i = 0; i < o.concurrency; i++) {
        pthread_join(w[i].thread, NULL);
        hist_merge(&total, &w[i].hist);
        ok += w[i].ok;
        failed += w[i].failed;
        for (int c = 0; c < 17; c++)
            codes[c] += w[i].codes[c];
    }
    for (int c = 0; c < 17; c++)
        if (codes[c])
            fprintf(stderr, "tally-bench: %" PRIu64 " x %s\n", codes[c],
                    trpc_status_code_name((grpc_status_code)c));
    stop_workload(&sh, w, &extra);
    print_result(&o, &total, ok, failed, (double)o.duration_s, &extra);
    status = 0;
out:
    stop_workload(&sh, w, NULL);
    if (sh.schannel)
        trpc_channel_free(sh.schannel);
    for (int i = 0; i < o.channels; i++) {
        if (sh.channels)
            trpc_channel_free(sh.channels[i]);
        if (sh.qchannels)
            trpc_channel_free(sh.qchannels[i]);
    }
    free(sh.channels);
    free(sh.qchannels);
    free(sh.accounts);
    free(w);
    return status;
}
