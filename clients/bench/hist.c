/* hist.c - see hist.h. */
#include "hist.h"

#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

/* Values below 64 map one to one; above, the power of two picks the row
 * and the next 6 bits below the leading one the column. */
static unsigned bucket_of(uint64_t v)
{
    unsigned power;

    if (v < (1u << HIST_SUB_BITS))
        return (unsigned)v;
    power = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
    if (power - HIST_SUB_BITS + 1 >= HIST_POWERS)
        return HIST_BUCKETS - 1;
    return ((power - HIST_SUB_BITS + 1) << HIST_SUB_BITS) |
           (unsigned)((v >> (power - HIST_SUB_BITS)) & ((1u << HIST_SUB_BITS) - 1));
}

/* The largest value that maps to bucket b. */
static uint64_t bucket_upper(unsigned b)
{
    unsigned row = b >> HIST_SUB_BITS, col = b & ((1u << HIST_SUB_BITS) - 1);
    unsigned shift;

    if (row == 0)
        return col;
    shift = row - 1;
    return ((((uint64_t)1 << HIST_SUB_BITS) | col) << shift) + (((uint64_t)1 << shift) - 1);
}

void hist_record(struct hist *h, uint64_t us)
{
    h->counts[bucket_of(us)]++;
    h->total++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    into->sum_us += from->sum_us;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->total == 0)
        return 0;
    rank = (uint64_t)(q * (double)h->total);
    if (rank >= h->total)
        rank = h->total - 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen > rank) {
            uint64_t up = bucket_upper(i);

            return up < h->max_us ? up : h->max_us;
        }
    }
    return h->max_us;
}
