/* gen_buf.c - growable buffer with a sticky allocation error. */
#include "gen_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gen_buf_init(struct gen_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}

void gen_buf_cleanup(struct gen_buf *b)
{
    free(b->data);
    gen_buf_init(b);
}

void gen_buf_reset(struct gen_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* Makes room for n more bytes plus the NUL; 0 on success. */
static int reserve(struct gen_buf *b, size_t n)
{
    size_t need;
    size_t cap;
    char *p;

    if (b->failed)
        return -1;
    if (n > (size_t)-1 - b->len - 1)
        goto fail;
    need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap != 0 ? b->cap : 256;
    while (cap < need)
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        goto fail;
    b->data = p;
    b->cap = cap;
    return 0;
fail:
    b->failed = 1;
    return -1;
}

void gen_buf_put(struct gen_buf *b, const char *s, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    if (n != 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void gen_buf_putc(struct gen_buf *b, char c)
{
    gen_buf_put(b, &c, 1);
}

void gen_buf_puts(struct gen_buf *b, const char *s)
{
    gen_buf_put(b, s, strlen(s));
}

void gen_buf_printf(struct gen_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *gen_buf_str(const struct gen_buf *b)
{
    return b->data != NULL ? b->data : "";
}

char *gen_buf_steal(struct gen_buf *b)
{
    char *s;

    if (!b->failed && b->data == NULL)
        reserve(b, 0);
    if (b->failed) {
        gen_buf_cleanup(b);
        return NULL;
    }
    b->data[b->len] = '\0';
    s = b->data;
    gen_buf_init(b);
    return s;
}
