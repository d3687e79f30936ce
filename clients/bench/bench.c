/* bench.c - tally-bench: a closed-loop load generator for tally over gRPC.
 *
 *   tally-bench [--addr HOST:PORT] [--token T] [--workload deposit|query]
 *               [--query get-account|list-entries|account-at]
 *               [--query-addr HOST:PORT] [--history N] [--writers N]
 *               [--concurrency N] [--duration S] [--warmup S] [--accounts N]
 *               [--channels N] [--json]
 *
 * Workloads: deposit (here), query (bench_query.c: GetAccount, ListEntries
 * pages of 100 or GetAccountAt, with deposits flowing meanwhile).
 * N threads each keep one call in flight for warm-up + duration seconds;
 * only calls that start after the warm-up are measured. Latencies go into
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
static grpc_status_code op_deposit(struct worker *w, trpc_channel *ch, trpc_status *st)
{
    struct shared *sh = w->sh;
    Tally__V1__DepositRequest req = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    trpc_call_opts co = bench_call_opts(sh);
    grpc_status_code code;

    amount.minor_units = 1;
    amount.currency = (char *)"EUR";
    req.account_id = sh->accounts[bench_rng(&w->rng) % (uint64_t)sh->o->accounts];
    req.amount = &amount;
    code = tally__v1__command_service__trpc_deposit(ch, &req, &resp, &co, st);
    tally__v1__command_response__free_unpacked(resp, NULL);
    return code;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    trpc_channel *ch = sh->channels[w->index % sh->o->channels];
    int query = sh->q != NULL;

    for (;;) {
        uint64_t t0 = bench_now_ns(), t1;
        trpc_status st;
        grpc_status_code code;

        if (t0 >= sh->end_ns)
            break;
        code = query ? bench_query_call(w, &st) : op_deposit(w, ch, &st);
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
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tally-bench [--addr HOST:PORT] [--token T] [--workload deposit|query]\n"
               "                   [--query get-account|list-entries|account-at]\n"
               "                   [--query-addr HOST:PORT] [--history N] [--writers N]\n"
               "                   [--concurrency N] [--duration S] [--warmup S]\n"
               "                   [--accounts N] [--channels N] [--json]\n"
               "  --addr         CommandService address (env TALLY_ADDR, default 127.0.0.1:50051)\n"
               "  --token        bearer token (env TALLY_TOKEN)\n"
               "  --workload     deposit (default): Deposit calls; query: QueryService calls\n"
               "  --query        get-account (default): GetAccount of a random account;\n"
               "                 list-entries: ListEntries, first page of 100 (forwards);\n"
               "                 account-at: GetAccountAt at a random version of --history\n"
               "  --query-addr   QueryService address (env TALLY_QUERY_ADDR, 127.0.0.1:50052)\n"
               "  --history      events per queried account, 1..1000000 (get-account 2,\n"
               "                 list-entries 150, account-at 100)\n"
               "  --writers      query: threads depositing during the run, 0..256 (0)\n"
               "  --concurrency  calls in flight, 1..1024 (16)\n"
               "  --duration     measured seconds, 1..3600 (10)\n"
               "  --warmup       seconds before measuring, 0..600 (2)\n"
               "  --accounts     accounts for the run, 1..1000000 (deposit 10000; get-account\n"
               "                 1000, list-entries 64, account-at 1)\n"
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

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"addr", required_argument, NULL, 'a'},
        {"token", required_argument, NULL, 't'},
        {"workload", required_argument, NULL, 'w'},
        {"query", required_argument, NULL, 'q'},
        {"query-addr", required_argument, NULL, 'Q'},
        {"history", required_argument, NULL, 'H'},
        {"writers", required_argument, NULL, 'r'},
        {"concurrency", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'W'},
        {"accounts", required_argument, NULL, 'n'},
        {"channels", required_argument, NULL, 'C'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    o->addr =
        getenv("TALLY_ADDR") && *getenv("TALLY_ADDR") ? getenv("TALLY_ADDR") : "127.0.0.1:50051";
    o->query_addr = getenv("TALLY_QUERY_ADDR") && *getenv("TALLY_QUERY_ADDR")
                        ? getenv("TALLY_QUERY_ADDR")
                        : "127.0.0.1:50052";
    o->token = getenv("TALLY_TOKEN");
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
        case 'H':
            if (parse_int("history", optarg, 1, 1000000, &o->history))
                return 2;
            break;
        case 'r':
            if (parse_int("writers", optarg, 0, 256, &o->writers))
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
    if (strcmp(o->workload, "query") == 0) {
        if (bench_query_opts(o) != 0)
            return 2;
    } else if (strcmp(o->workload, "deposit") != 0) {
        fprintf(stderr, "tally-bench: unknown --workload \"%s\" (expected deposit or query)\n",
                o->workload);
        return 2;
    } else if (o->accounts < 0) {
        o->accounts = 10000;
    }
    if (o->token == NULL || o->token[0] == '\0') {
        fprintf(stderr, "tally-bench: a token is required (--token or TALLY_TOKEN)\n");
        return 2;
    }
    return 0;
}

/* writes >= 0: the query workload's deposits meanwhile (per second). */
static void print_result(const struct opts *o, const struct hist *h, uint64_t ok, uint64_t failed,
                         double seconds, double writes)
{
    double rate = seconds > 0 ? (double)ok / seconds : 0;
    char name[64], extra[96] = "";
    double q[5] = {(double)hist_quantile(h, 0.50) / 1000, (double)hist_quantile(h, 0.90) / 1000,
                   (double)hist_quantile(h, 0.99) / 1000, (double)hist_quantile(h, 0.999) / 1000,
                   (double)h->max_us / 1000};

    if (strcmp(o->workload, "query") == 0)
        snprintf(name, sizeof(name), "query:%s", o->query);
    else
        snprintf(name, sizeof(name), "%s", o->workload);
    if (o->json) {
        if (writes >= 0)
            snprintf(extra, sizeof(extra), ",\"history\":%d,\"writers\":%d,\"writes_per_sec\":%.1f",
                     o->history, o->writers, writes);
        printf("{\"workload\":\"%s\",\"concurrency\":%d,\"seconds\":%.3f,\"ok\":%" PRIu64
               ",\"errors\":%" PRIu64 ",\"ops_per_sec\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f%s}\n",
               name, o->concurrency, seconds, ok, failed, rate, q[0], q[1], q[2], q[3], q[4],
               extra);
    } else {
        if (writes >= 0)
            snprintf(extra, sizeof(extra), " history=%d writers=%d writes/s=%.0f", o->history,
                     o->writers, writes);
        printf("workload=%s concurrency=%d seconds=%.1f ok=%" PRIu64 " errors=%" PRIu64
               " ops/s=%.0f p50=%.2fms p90=%.2fms p99=%.2fms p99.9=%.2fms max=%.2fms%s\n",
               name, o->concurrency, seconds, ok, failed, rate, q[0], q[1], q[2], q[3], q[4],
               extra);
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    struct shared sh;
    struct worker *w = NULL;
    struct hist total;
    uint64_t ok = 0, failed = 0, codes[17] = {0}, writes = 0, write_errors = 0;
    int rc = parse_args(argc, argv, &o), status = 1, query;

    if (rc)
        return rc == 1 ? 0 : 2;
    query = strcmp(o.workload, "query") == 0;
    memset(&sh, 0, sizeof(sh));
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
        if ((sh.channels[i] = trpc_channel_new(o.addr)) == NULL) {
            fprintf(stderr, "tally-bench: cannot create a channel to %s\n", o.addr);
            goto out;
        }
    for (int i = 0; query && i < o.channels; i++)
        if ((sh.qchannels[i] = trpc_channel_new(o.query_addr)) == NULL) {
            fprintf(stderr, "tally-bench: cannot create a channel to %s\n", o.query_addr);
            goto out;
        }
    for (int i = 0; i < o.concurrency; i++) {
        w[i].sh = &sh;
        w[i].index = i;
        w[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1) ^ bench_now_ns();
        hist_init(&w[i].hist);
    }
    if (query) {
        if (bench_query_setup(&sh, w) != 0)
            goto out;
    } else {
        fprintf(stderr, "tally-bench: opening %d accounts on %s\n", o.accounts, o.addr);
        for (int i = 0; i < o.concurrency; i++)
            pthread_create(&w[i].thread, NULL, setup_main, &w[i]);
        for (int i = 0; i < o.concurrency; i++)
            pthread_join(w[i].thread, NULL);
        if (atomic_load(&sh.setup_failed))
            goto out;
    }

    sh.start_ns = bench_now_ns();
    sh.measure_ns = sh.start_ns + (uint64_t)o.warmup_s * 1000000000u;
    sh.end_ns = sh.measure_ns + (uint64_t)o.duration_s * 1000000000u;
    if (query && bench_query_start(&sh) != 0) {
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
    bench_query_stop(&sh, &writes, &write_errors);
    if (write_errors)
        fprintf(stderr, "tally-bench: %" PRIu64 " deposits of the writers failed\n", write_errors);
    print_result(&o, &total, ok, failed, (double)o.duration_s,
                 query ? (double)writes / o.duration_s : -1);
    status = 0;
out:
    bench_query_stop(&sh, NULL, NULL);
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
