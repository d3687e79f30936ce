/* aggcache.h - an in-process cache of aggregate states for the write side.
 *
 * Commands decide on the cached state and append with the next version; the
 * unique (stream, version) constraint catches a stale entry (another process
 * or thread wrote first), and the caller then drops the entry and reloads.
 * So the cache can be wrong but never causes a wrong write. Bounded (LRU per
 * shard), thread-safe. Values are fixed-size blobs copied in and out. */
#ifndef SERVER_AGGCACHE_H
#define SERVER_AGGCACHE_H

#include <stddef.h>

typedef struct aggcache aggcache;

/* A cache of at most `capacity` entries (>= 64) of `value_size` bytes each.
 * NULL on OOM. */
aggcache *aggcache_new(size_t capacity, size_t value_size);

/* NULL is a no-op. */
void aggcache_free(aggcache *c);

/* Copies the value for key into out; returns 1 if found, else 0. */
int aggcache_get(aggcache *c, const char *key, void *out);

/* Stores a copy of value under key (replacing), evicting the least recently
 * used entry of the shard when full. Silently does nothing on OOM. */
void aggcache_put(aggcache *c, const char *key, const void *value);

/* Drops key if present. */
void aggcache_remove(aggcache *c, const char *key);

/* Number of entries (for tests and stats). */
size_t aggcache_size(aggcache *c);

#endif /* SERVER_AGGCACHE_H */
