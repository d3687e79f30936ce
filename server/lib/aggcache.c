/* aggcache.c - see aggcache.h. 32 shards, each a chained hash table with an
 * LRU list, under its own mutex. */
#include "aggcache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS  32
#define BUCKETS 256 /* per shard; chains stay short at the default capacity */

struct entry {
    struct entry *next_in_bucket;
    struct entry *lru_prev, *lru_next; /* head = most recently used */
    uint64_t hash;
    char *key;
    unsigned char value[]; /* value_size bytes */
};

struct shard {
    pthread_mutex_t mu;
    struct entry *buckets[BUCKETS];
    struct entry *lru_head, *lru_tail;
    size_t count;
};

struct aggcache {
    size_t value_size;
    size_t per_shard;
    struct shard shards[SHARDS];
};

/* FNV-1a, 64-bit */
static uint64_t hash_key(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

aggcache *aggcache_new(size_t capacity, size_t value_size)
{
    aggcache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->value_size = value_size;
    c->per_shard = (capacity < 64 ? 64 : capacity) / SHARDS;
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&c->shards[i].mu, NULL);
    return c;
}

void aggcache_free(aggcache *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < SHARDS; i++) {
        struct entry *e = c->shards[i].lru_head;

        while (e) {
            struct entry *next = e->lru_next;

            free(e->key);
            free(e);
            e = next;
        }
        pthread_mutex_destroy(&c->shards[i].mu);
    }
    free(c);
}

static void lru_unlink(struct shard *s, struct entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        s->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        s->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct shard *s, struct entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = s->lru_head;
    if (s->lru_head)
        s->lru_head->lru_prev = e;
    s->lru_head = e;
    if (s->lru_tail == NULL)
        s->lru_tail = e;
}

/* Finds the entry; *link is set to the pointer that points at it. */
static struct entry *find(struct shard *s, uint64_t h, const char *key, struct entry ***link)
{
    struct entry **p = &s->buckets[h % BUCKETS];

    for (; *p; p = &(*p)->next_in_bucket) {
        if ((*p)->hash == h && strcmp((*p)->key, key) == 0) {
            *link = p;
            return *p;
        }
    }
    *link = p;
    return NULL;
}

static void drop(struct shard *s, struct entry **link)
{
    struct entry *e = *link;

    *link = e->next_in_bucket;
    lru_unlink(s, e);
    s->count--;
    free(e->key);
    free(e);
}

int aggcache_get(aggcache *c, const char *key, void *out)
{
    uint64_t h = hash_key(key);
    struct shard *s = &c->shards[h % SHARDS];
    struct entry **link, *e;
    int found = 0;

    pthread_mutex_lock(&s->mu);
    e = find(s, h, key, &link);
    if (e) {
        memcpy(out, e->value, c->value_size);
        lru_unlink(s, e);
        lru_push_front(s, e);
        found = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

void aggcache_put(aggcache *c, const char *key, const void *value)
{
    uint64_t h = hash_key(key);
    struct shard *s = &c->shards[h % SHARDS];
    struct entry **link, *e;

    pthread_mutex_lock(&s->mu);
    e = find(s, h, key, &link);
    if (e) {
        memcpy(e->value, value, c->value_size);
        lru_unlink(s, e);
        lru_push_front(s, e);
        goto out;
    }
    if (s->count >= c->per_shard && s->lru_tail) {
        struct entry *victim = s->lru_tail, **vlink;

        find(s, victim->hash, victim->key, &vlink);
        drop(s, vlink);
        find(s, h, key, &link); /* the bucket chain may have changed */
    }
    e = malloc(sizeof(*e) + c->value_size);
    if (e == NULL)
        goto out;
    e->key = strdup(key);
    if (e->key == NULL) {
        free(e);
        goto out;
    }
    e->hash = h;
    memcpy(e->value, value, c->value_size);
    e->next_in_bucket = NULL;
    *link = e;
    lru_push_front(s, e);
    s->count++;
out:
    pthread_mutex_unlock(&s->mu);
}

void aggcache_remove(aggcache *c, const char *key)
{
    uint64_t h = hash_key(key);
    struct shard *s = &c->shards[h % SHARDS];
    struct entry **link;

    pthread_mutex_lock(&s->mu);
    if (find(s, h, key, &link))
        drop(s, link);
    pthread_mutex_unlock(&s->mu);
}

size_t aggcache_size(aggcache *c)
{
    size_t n = 0;

    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mu);
        n += c->shards[i].count;
        pthread_mutex_unlock(&c->shards[i].mu);
    }
    return n;
}
