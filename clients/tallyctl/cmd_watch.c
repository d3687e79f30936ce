/* cmd_watch.c - `tallyctl watch`: SubscriptionService.Subscribe, printing
 * each event as it arrives (one line, or one JSON object per line).
 *
 * Stopping: SIGINT (Ctrl-C) or SIGTERM cancels the stream; watch then
 * flushes what it printed, writes the last position it received to stderr
 * ("resume with --from TX:POS") and exits 128 + the signal (130 for SIGINT,
 * 143 for SIGTERM), the status shells give an interrupted command. A second
 * signal exits at once. --count N ends the watch after N events (exit 0).
 * A stream the server ends (UNAVAILABLE at its shutdown, DEADLINE_EXCEEDED
 * for --timeout) exits with that status's code, again with the resume
 * position.
 *
 * How: SIGINT, SIGTERM and SIGUSR1 are blocked before the channel exists,
 * so gRPC's threads inherit the mask, and a signal thread sigwaits for them:
 * the first SIGINT/SIGTERM cancels the stream (trpc_client_stream_cancel is
 * thread-safe), SIGUSR1 is the main thread telling it to end. The main
 * thread joins it before freeing the stream. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tally/v1/subscription.trpc.h"

#include "cli_value.h"
#include "command.h"
#include "exitcode.h"
#include "output.h"
#include "render.h"

#define ERR_SIZE 256

struct watcher {
    pthread_mutex_t lock;
    trpc_client_stream *stream;
    int done;   /* the main thread is finishing: do not cancel */
    int signal; /* the signal that stopped the watch, 0 if none */
    sigset_t set;
};

static void *signal_thread(void *arg)
{
    struct watcher *w = arg;
    int sig = 0;

    for (;;) {
        if (sigwait(&w->set, &sig) != 0)
            continue;
        if (sig == SIGUSR1)
            return NULL;
        pthread_mutex_lock(&w->lock);
        if (w->signal != 0) {
            /* a second Ctrl-C: the user does not want to wait */
            pthread_mutex_unlock(&w->lock);
            _exit(EXITCODE_SIGNAL_BASE + sig);
        }
        w->signal = sig;
        if (!w->done)
            trpc_client_stream_cancel(w->stream);
        pthread_mutex_unlock(&w->lock);
    }
}

static const struct cli_opt watch_opts[] = {
    {"from", CLI_VALUE, "WHERE",
     "start, end (default: only new events) or TX:POS (events after that position)"},
    {"count", CLI_VALUE, "N", "stop after N events (exit 0)"},
    {"checkpoints", CLI_FLAG, NULL,
     "also print progress messages (checkpoint, caught up, fell behind, heartbeat)"},
    {"heartbeat", CLI_VALUE, "SECONDS", "ask for a heartbeat after this many idle seconds"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static int from_opt(const struct session *s, const char *v, Tally__V1__SubscribeRequest *req,
                    Tally__V1__Position *after)
{
    char err[ERR_SIZE];

    if (v == NULL || strcmp(v, "end") == 0) {
        req->start = TALLY__V1__SUBSCRIBE_REQUEST__START__START_END;
    } else if (strcmp(v, "start") == 0 || strcmp(v, "beginning") == 0) {
        req->start = TALLY__V1__SUBSCRIBE_REQUEST__START__START_BEGINNING;
    } else {
        if (cli_value_position(v, &after->tx_id, &after->global_position, err, sizeof(err)) != 0)
            return session_usage(s, "--from: expected start, end or TX:POS; %s", err);
        req->start = TALLY__V1__SUBSCRIBE_REQUEST__START__START_AFTER;
        req->after = after;
    }
    return EXITCODE_OK;
}

/* A progress message: remembered as the resume point, printed with
 * --checkpoints. */
static int progress(const struct session *s, const Tally__V1__SubscribeResponse *m,
                    const char *what, const Tally__V1__Position *p, bool show)
{
    char pos[RENDER_POSITION_SIZE];
    int rc = EXITCODE_OK;

    if (!show)
        return rc;
    if (!command_json(s, &m->base, &rc))
        printf("# %s %s\n", what, render_position(p, pos));
    return rc;
}

static int run_watch(struct session *s, const struct cli_args *a)
{
    Tally__V1__SubscribeRequest req = TALLY__V1__SUBSCRIBE_REQUEST__INIT;
    Tally__V1__SubscribeResponse *m = NULL;
    Tally__V1__Position after = TALLY__V1__POSITION__INIT;
    struct command_filter f;
    struct watcher w;
    trpc_call_opts opts;
    trpc_channel *ch;
    trpc_status st;
    pthread_t thread;
    sigset_t old;
    const char *count_text = cli_args_get(a, "count"), *hb = cli_args_get(a, "heartbeat");
    bool show = cli_args_has(a, "checkpoints"), thread_started = false;
    char err[ERR_SIZE], last[RENDER_POSITION_SIZE] = "";
    int64_t count = 0, seen = 0, hb_s = 0;
    int rc;

    if ((rc = from_opt(s, cli_args_get(a, "from"), &req, &after)) != 0 ||
        (rc = command_filter(s, a, &f)) != 0)
        return rc;
    if (count_text != NULL &&
        cli_value_int64("--count", count_text, 1, INT64_MAX, &count, err, sizeof(err)) != 0)
        return session_usage(s, "%s", err);
    if (hb != NULL && cli_value_int64("--heartbeat", hb, 1, 3600, &hb_s, err, sizeof(err)) != 0)
        return session_usage(s, "%s", err);
    req.filter = &f.filter;
    req.heartbeat_interval_seconds = (uint32_t)hb_s;
    if (req.after != NULL)
        snprintf(last, sizeof(last), "%s", cli_args_get(a, "from"));

    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.lock, NULL);
    sigemptyset(&w.set);
    sigaddset(&w.set, SIGINT);
    sigaddset(&w.set, SIGTERM);
    sigaddset(&w.set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &w.set, &old);
    /* each event line must reach a pipe as soon as it is printed */
    setvbuf(stdout, NULL, _IOLBF, 0);

    if ((ch = session_channel(s, SESSION_SUBSCRIBE)) == NULL) {
        rc = EXITCODE_OTHER;
        goto out;
    }
    opts = *session_call_opts(s);
    if (!s->timeout_given)
        opts.timeout_ms = 0; /* a watch runs until stopped */
    w.stream = tally__v1__subscription_service__trpc_subscribe(ch, &req, &opts, &st);
    if (w.stream == NULL) {
        rc = session_fail(s, SESSION_SUBSCRIBE, &st);
        goto out;
    }
    if (pthread_create(&thread, NULL, signal_thread, &w) != 0) {
        rc = session_error(s, EXITCODE_OTHER, "cannot start the signal thread");
        goto out;
    }
    thread_started = true;

    while (tally__v1__subscription_service__trpc_subscribe_next(w.stream, &m, &st)) {
        const Tally__V1__Position *p = NULL;

        switch (m->message_case) {
        case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_EVENT:
            p = m->event->position;
            rc = command_print_event_line(s, m->event);
            seen++;
            break;
        case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_CHECKPOINT:
            p = m->checkpoint->position;
            rc = progress(s, m, "checkpoint", p, show);
            break;
        case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_CAUGHT_UP:
            p = m->caught_up->position;
            rc = progress(s, m, "caught up at", p, show);
            break;
        case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_FELL_BEHIND:
            rc = progress(s, m, "fell behind; catching up from", m->fell_behind->position, show);
            break;
        case TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_HEARTBEAT:
            rc = progress(s, m, "heartbeat", m->heartbeat->position, show);
            break;
        default:
            break;
        }
        if (p != NULL)
            render_position(p, last);
        tally__v1__subscribe_response__free_unpacked(m, NULL);
        m = NULL;
        if (rc != EXITCODE_OK || (count > 0 && seen >= count))
            break;
    }
    fflush(stdout);

    pthread_mutex_lock(&w.lock);
    w.done = 1;
    pthread_mutex_unlock(&w.lock);
    if (rc != EXITCODE_OK) {
        /* a local failure (printing) already reported */
    } else if (w.signal != 0) {
        rc = EXITCODE_SIGNAL_BASE + w.signal;
        if (last[0] != '\0')
            fprintf(stderr, "tallyctl: watch: stopped by %s; resume with --from %s\n",
                    w.signal == SIGINT ? "SIGINT" : "SIGTERM", last);
        else
            fprintf(stderr, "tallyctl: watch: stopped by %s before any position arrived\n",
                    w.signal == SIGINT ? "SIGINT" : "SIGTERM");
    } else if (count > 0 && seen >= count) {
        rc = EXITCODE_OK;
    } else if (st.code != GRPC_STATUS_OK) {
        rc = session_fail(s, SESSION_SUBSCRIBE, &st);
        if (last[0] != '\0')
            fprintf(stderr, "tallyctl: watch: resume with --from %s\n", last);
    }
out:
    if (thread_started) {
        pthread_kill(thread, SIGUSR1);
        pthread_join(thread, NULL);
    }
    trpc_client_stream_free(w.stream);
    session_cleanup(s); /* the channel, while the signals are still blocked */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_destroy(&w.lock);
    return rc;
}

const struct command cmd_watch_commands[] = {
    {"watch", "", "print events as they are committed (Subscribe)",
     "Subscribes to the tenant's events and prints each one as it commits, in log\n"
     "order, never with a gap: first the stored events after --from, then live\n"
     "ones. --json prints one Event object per line (with --checkpoints, progress\n"
     "messages as SubscribeResponse objects).\n"
     "\n"
     "Ctrl-C (SIGINT) or SIGTERM stops the watch: it prints the last position it\n"
     "received to stderr and exits 130 (SIGINT) or 143 (SIGTERM). Run it again with\n"
     "--from that position to continue exactly where it stopped. No deadline\n"
     "unless --timeout is given.\n",
     watch_opts, COMMAND_FILTER, 0, 0, run_watch},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL},
};
