/* uuid.c - canonical UUID text and monotonic UUIDv7 generation. */
#include "uuid.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

/* The 16 bytes as text: hyphens after bytes 4, 6, 8 and 10. */
static const int hyphen_at[] = {8, 13, 18, 23};

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_hyphen_pos(int i)
{
    return i == hyphen_at[0] || i == hyphen_at[1] || i == hyphen_at[2] || i == hyphen_at[3];
}

bool uuid_is_valid(const char *s)
{
    int i;

    if (s == NULL)
        return false;
    for (i = 0; i < TALLY_UUID_STR_LEN; i++) {
        if (s[i] == '\0')
            return false;
        if (is_hyphen_pos(i) ? s[i] != '-' : hex_value(s[i]) < 0)
            return false;
    }
    return s[TALLY_UUID_STR_LEN] == '\0';
}

int uuid_from_string(const char *s, uint8_t out[16])
{
    uint8_t tmp[16];
    int i, n = 0;

    if (!uuid_is_valid(s))
        return -1;
    for (i = 0; i < TALLY_UUID_STR_LEN; i++) {
        if (is_hyphen_pos(i))
            continue;
        tmp[n / 2] = (uint8_t)((n % 2 == 0) ? hex_value(s[i]) << 4 : tmp[n / 2] | hex_value(s[i]));
        n++;
    }
    memcpy(out, tmp, 16);
    return 0;
}

void uuid_to_string(const uint8_t in[16], char out[UUID_STR_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    int i, o = 0;

    for (i = 0; i < 16; i++) {
        if (is_hyphen_pos(o))
            out[o++] = '-';
        out[o++] = hex[in[i] >> 4];
        out[o++] = hex[in[i] & 0x0f];
    }
    out[o] = '\0';
}

int uuid_normalize(const char *in, char out[UUID_STR_SIZE])
{
    uint8_t b[16];

    if (uuid_from_string(in, b) != 0) {
        out[0] = '\0';
        return -1;
    }
    uuid_to_string(b, out);
    return 0;
}

grpc_status_code uuid_check(const char *field, const char *s, char out[UUID_STR_SIZE],
                            trpc_status *st)
{
    static const uint8_t nil[16] = {0};
    uint8_t b[16];

    out[0] = '\0';
    if (s == NULL || s[0] == '\0')
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s is required", field);
    if (uuid_from_string(s, b) != 0)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s is not a valid uuid", field);
    if (memcmp(b, nil, 16) == 0)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s must not be the nil uuid",
                               field);
    uuid_to_string(b, out);
    return trpc_status_set(st, GRPC_STATUS_OK, "ok");
}

int uuid_version(const uint8_t in[16])
{
    return in[6] >> 4;
}

bool uuid_is_rfc_variant(const uint8_t in[16])
{
    return (in[8] & 0xC0) == 0x80;
}

uint64_t uuid_v7_unix_ms(const uint8_t in[16])
{
    uint64_t ms = 0;
    int i;

    for (i = 0; i < 6; i++)
        ms = (ms << 8) | in[i];
    return ms;
}

/* Layout (RFC 9562 5.7): unix_ts_ms (48) | ver (4) | rand_a (12) |
 * var (2) | rand_b (62). */
void uuid_v7_from_parts(uint64_t unix_ms, const uint8_t rand[10], uint8_t out[16])
{
    int i;

    for (i = 0; i < 6; i++)
        out[i] = (uint8_t)(unix_ms >> (40 - 8 * i));
    memcpy(out + 6, rand, 10);
    out[6] = (uint8_t)(0x70 | (out[6] & 0x0f));
    out[8] = (uint8_t)(0x80 | (out[8] & 0x3f));
}

/* The 74 random bits as one 74-bit number in two words: a = rand_a (the
 * high 12 bits), b = rand_b (the low 62 bits). Incrementing it keeps the
 * byte order of the UUIDs, since a precedes b in the layout. */
struct v7_rand {
    uint64_t a; /* 12 bits */
    uint64_t b; /* 62 bits */
};

static void v7_rand_from_bytes(const uint8_t r[10], struct v7_rand *v)
{
    int i;

    v->a = ((uint64_t)(r[0] & 0x0f) << 8) | r[1];
    v->b = (uint64_t)(r[2] & 0x3f);
    for (i = 3; i < 10; i++)
        v->b = (v->b << 8) | r[i];
}

static void v7_rand_to_bytes(const struct v7_rand *v, uint8_t r[10])
{
    int i;

    r[0] = (uint8_t)(v->a >> 8);
    r[1] = (uint8_t)v->a;
    r[2] = (uint8_t)(v->b >> 56);
    for (i = 3; i < 10; i++)
        r[i] = (uint8_t)(v->b >> (8 * (9 - i)));
}

#define RAND_B_MASK ((UINT64_C(1) << 62) - 1)
#define RAND_A_MASK UINT64_C(0xfff)

/* v += inc (inc < 2^62); returns false when the 74-bit value overflows. */
static bool v7_rand_add(struct v7_rand *v, uint64_t inc)
{
    uint64_t b = v->b + inc; /* < 2^63: no uint64 wrap */

    v->b = b & RAND_B_MASK;
    if (b >> 62) {
        if (v->a == RAND_A_MASK)
            return false;
        v->a++;
    }
    return true;
}

static pthread_mutex_t v7_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t v7_last_ms;
static struct v7_rand v7_last_rand;

static uint64_t now_unix_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int uuid_v7_new_bytes(uint8_t out[16])
{
    uint8_t r[10], step[4];
    uint64_t ms = now_unix_ms() & ((UINT64_C(1) << 48) - 1);
    struct v7_rand v;

    if (RAND_bytes(r, sizeof(r)) != 1 || RAND_bytes(step, sizeof(step)) != 1)
        return -1;
    v7_rand_from_bytes(r, &v);
    /* Leave headroom for increments within one millisecond: the top bit of
     * rand_a starts at 0, so at least 2^73 of room remains. */
    v.a &= RAND_A_MASK >> 1;

    pthread_mutex_lock(&v7_lock);
    if (ms <= v7_last_ms) {
        /* same millisecond, or the clock stepped back: continue from the last
         * id, incremented by a random 1..2^32 so ids stay hard to guess */
        uint64_t inc = 1 + (((uint64_t)step[0] << 24) | ((uint64_t)step[1] << 16) |
                            ((uint64_t)step[2] << 8) | step[3]);

        ms = v7_last_ms;
        v = v7_last_rand;
        if (!v7_rand_add(&v, inc)) {
            /* 74 bits used up in one millisecond: run the clock ahead */
            ms++;
            v7_rand_from_bytes(r, &v);
            v.a &= RAND_A_MASK >> 1;
        }
    }
    v7_last_ms = ms;
    v7_last_rand = v;
    pthread_mutex_unlock(&v7_lock);

    v7_rand_to_bytes(&v, r);
    uuid_v7_from_parts(ms, r, out);
    return 0;
}

int uuid_v7_new(char out[UUID_STR_SIZE])
{
    uint8_t b[16];

    if (uuid_v7_new_bytes(b) != 0) {
        out[0] = '\0';
        return -1;
    }
    uuid_to_string(b, out);
    return 0;
}
