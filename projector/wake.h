/* wake.h - the projector's wake-ups (DESIGN §6): one thread with a dedicated
 * connection that LISTENs on the outbox channel, and a generation counter
 * that every waiter watches.
 *
 * The generation moves on every notification, after every (re)connect of
 * the LISTEN connection (notifications sent while it was down are lost, so
 * a reconnect means "read from the checkpoint") and on wake_poke. NOTIFY is
 * only a wake-up: waiters also poll on a timer (wake_wait's timeout), so a
 * lost notification delays, never loses, an event.
 *
 * Every projector instance runs one, active or standby (a Subscribe server
 * can wait on it too). Thread-safe. */
#ifndef PROJECTOR_WAKE_H
#define PROJECTOR_WAKE_H

#include <stdint.h>

#include "pg.h"

typedef struct wake wake;

/* Starts the LISTEN thread on channel (a plain SQL identifier, copied) with
 * o (copied; conninfo must outlive the object). It connects with backoff,
 * forever, until wake_free. NULL on OOM or thread failure. */
wake *wake_new(const struct pg_opts *o, const char *channel);

/* Stops the thread, closes the connection, frees. NULL is a no-op. */
void wake_free(wake *w);

/* The current generation. */
uint64_t wake_generation(wake *w);

/* Waits until the generation differs from *seen, timeout_ms passes or
 * wake_shutdown is called; then sets *seen to the current generation.
 * Returns 1 when the generation moved, 0 on timeout or shutdown. Read
 * *seen = wake_generation() BEFORE looking at the database, then wait:
 * a notification in between is not missed. */
int wake_wait(wake *w, uint64_t *seen, int timeout_ms);

/* Sleeps ms (not cut short by notifications), returning early (1) once
 * wake_shutdown was called; 0 after the full sleep. */
int wake_sleep(wake *w, int ms);

/* Moves the generation (an in-process wake-up). */
void wake_poke(wake *w);

/* Makes every current and future wait return at once (process shutdown). */
void wake_shutdown(wake *w);

/* 1 after wake_shutdown. */
int wake_is_shutdown(wake *w);

/* Notifications received so far and reconnects made (for tests and logs). */
uint64_t wake_notifications(wake *w);

#endif /* PROJECTOR_WAKE_H */
