/* loadutil.h - small helpers shared by the load tests (tests/load): a
 * monotonic clock, a daemon's memory and descriptor counts from /proc, and
 * the file-descriptor limit.
 *
 * Not thread-safe where noted; everything else may be called from any
 * thread. */
#ifndef TESTS_LOAD_LOADUTIL_H
#define TESTS_LOAD_LOADUTIL_H

#include <stdint.h>
#include <sys/types.h>

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t loadutil_ms(void);

/* Sleeps ms milliseconds (restarted after a signal). */
void loadutil_sleep_ms(long ms);

/* A process's memory, in kB, from /proc/<pid>/status. */
struct loadutil_mem {
    long rss_kb; /* VmRSS: resident now */
    long hwm_kb; /* VmHWM: the peak resident size so far */
};

/* Fills *m for pid. Returns 0, or -1 (both fields -1) if the process is gone
 * or its status unreadable. */
int loadutil_mem(pid_t pid, struct loadutil_mem *m);

/* Number of open file descriptors of pid (entries of /proc/<pid>/fd), or -1
 * if unreadable. */
int loadutil_fd_count(pid_t pid);

/* True if pid is a running process (exists and is not a zombie). */
int loadutil_alive(pid_t pid);

/* Raises this process's soft RLIMIT_NOFILE to its hard limit (children
 * started afterwards, e.g. the daemons, inherit it). Writes the resulting
 * soft limit to *soft (may be NULL). Returns 0, or -1 after printing why.
 * Call from the main thread before starting children. */
int loadutil_raise_nofile(long *soft);

#endif /* TESTS_LOAD_LOADUTIL_H */
