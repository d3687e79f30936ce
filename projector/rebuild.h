/* rebuild.h - `tally-projector --rebuild`: replays the whole event log into
 * fresh query tables and swaps them in, while commands keep flowing and a
 * live projector keeps running.
 *
 *   1. takes the rebuild lock (one rebuild at a time; the live projector's
 *      lock is not needed);
 *   2. creates schema rm_rebuild with rm_create_tables (migration 0002), and
 *      resets checkpoint "rm_rebuild" and its dead letters;
 *   3. replays the log into it in batches (the same projection code and
 *      dead-letter rules as the live consumer, checkpoint "rm_rebuild")
 *      until it is at the fence, without its secondary indexes (the ones
 *      that back no constraint): they are created again, each in one pass,
 *      once the replay is at the fence, before the swap;
 *   4. swaps, in ONE transaction: locks the live checkpoint row "rm" (the
 *      live consumer's next commit waits), catches rm_rebuild up to the
 *      fence again (so the new tables are at or past the live checkpoint:
 *      read-your-writes never goes backwards), renames rm -> rm_old and
 *      rm_rebuild -> rm, drops rm_old, sets checkpoint "rm" to the rebuilt
 *      position (bumping its epoch), marks the outbox rows of the events it
 *      applied past the live checkpoint published, and moves the rebuild's
 *      dead letters to projection "rm";
 *   5. the live consumer's blocked commit then fails its compare-and-set (or
 *      finds the same position) and simply continues from the new
 *      checkpoint: it catches up.
 *
 * The result equals the incremental read model: the tables are a pure
 * function of the log (0002). */
#ifndef PROJECTOR_REBUILD_H
#define PROJECTOR_REBUILD_H

#include "options.h"
#include "pg.h"

/* Runs the rebuild with the connection options o and the projector options
 * po (batch size, attempts, backoff). Logs progress. Returns 0 on success,
 * 1 on failure (logged; the live read model is untouched unless the swap
 * committed). */
int rebuild_run(const struct pg_opts *o, const struct projector_options *po);

#endif /* PROJECTOR_REBUILD_H */
