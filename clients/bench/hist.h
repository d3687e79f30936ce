/* hist.h - a latency histogram with HDR-style log-linear buckets: each power
 * of two is split into 64 linear sub-buckets, so every recorded value is
 * kept within 1/64 (1.6%) of its true value, from 1 us to about 1 hour,
 * in a fixed 2.3 KiB. Recording is O(1) and allocation-free; histograms
 * of several threads merge by adding counts. Not thread-safe: one per
 * thread, merged at the end. */
#ifndef CLIENTS_BENCH_HIST_H
#define CLIENTS_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6  /* 64 sub-buckets per power of two */
#define HIST_POWERS   32 /* up to 2^32 us */
#define HIST_BUCKETS  (HIST_POWERS << HIST_SUB_BITS)

struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max_us;
    uint64_t sum_us;
};

void hist_init(struct hist *h);

/* Records one value in microseconds (values beyond the range land in the
 * last bucket; max_us keeps the true maximum). */
void hist_record(struct hist *h, uint64_t us);

/* into += from */
void hist_merge(struct hist *into, const struct hist *from);

/* The value at quantile q (0..1): the upper bound of the bucket holding it,
 * never above max_us. 0 for an empty histogram. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif /* CLIENTS_BENCH_HIST_H */
