/* gen_buf.h - a growable text/byte buffer for protoc-gen-trpc.
 *
 * Errors are sticky: once an allocation fails, every later append is a no-op
 * and `failed` stays set, so callers append freely and check once at the end.
 * Not thread-safe (the generator is single-threaded).
 */
#ifndef PROTO_GEN_GEN_BUF_H
#define PROTO_GEN_GEN_BUF_H

#include <stddef.h>

struct gen_buf {
    char *data; /* NUL-terminated when non-NULL; owned */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
    int failed; /* an allocation failed (sticky) */
};

/* Empty buffer; allocates nothing. */
void gen_buf_init(struct gen_buf *b);

/* Frees the data and empties the buffer (failed is cleared too). */
void gen_buf_cleanup(struct gen_buf *b);

/* Empties the buffer but keeps its memory and its failed flag. */
void gen_buf_reset(struct gen_buf *b);

void gen_buf_putc(struct gen_buf *b, char c);
void gen_buf_put(struct gen_buf *b, const char *s, size_t n);
void gen_buf_puts(struct gen_buf *b, const char *s);
void gen_buf_printf(struct gen_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The contents ("" when empty, never NULL): valid until the next append,
 * reset or cleanup. Meaningless after a failure. */
const char *gen_buf_str(const struct gen_buf *b);

/* Hands the malloc'd NUL-terminated contents to the caller (free() it) and
 * empties the buffer. NULL if an allocation failed (the buffer is then
 * cleaned up). */
char *gen_buf_steal(struct gen_buf *b);

#endif /* PROTO_GEN_GEN_BUF_H */
