/* output.c - see output.h. */
#include "output.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define COL_GAP "  "

struct output_table {
    size_t ncols;
    const char *const *headers;
    char **cells; /* rows * ncols, row-major, owned */
    size_t rows, cap;
};

char *output_escape(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");

    for (; *p != '\0'; p++) {
        char tmp[8];
        size_t n;

        if (*p == '\n')
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\n");
        else if (*p == '\t')
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
        else {
            tmp[0] = (char)*p;
            n = 1;
        }
        if (o + n >= size)
            break;
        memcpy(buf + o, tmp, n);
        o += n;
    }
    /* never end inside a UTF-8 sequence: drop a cut lead byte's tail */
    if (*p != '\0') {
        size_t k = o;

        while (k > 0 && ((unsigned char)buf[k - 1] & 0xc0) == 0x80)
            k--;
        if (k > 0 && ((unsigned char)buf[k - 1] & 0x80) != 0) {
            unsigned char lead = (unsigned char)buf[k - 1];
            size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;

            if (o - (k - 1) < need)
                o = k - 1;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* Display width: UTF-8 characters (continuation bytes do not count). */
static size_t width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    }
    return w;
}

output_table *output_table_new(const char *const *headers, size_t ncols)
{
    output_table *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    t->headers = headers;
    return t;
}

int output_table_add(output_table *t, const char *const *cells)
{
    size_t i;

    if (t->rows == t->cap) {
        size_t cap = t->cap == 0 ? 16 : t->cap * 2;
        char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));

        if (c == NULL)
            return -1;
        t->cells = c;
        t->cap = cap;
    }
    for (i = 0; i < t->ncols; i++) {
        const char *v = cells[i] != NULL && cells[i][0] != '\0' ? cells[i] : "-";
        size_t size = strlen(v) * 4 + 1; /* every byte may become \xNN */
        char *copy = malloc(size);

        if (copy == NULL) {
            while (i-- > 0)
                free(t->cells[t->rows * t->ncols + i]);
            return -1;
        }
        t->cells[t->rows * t->ncols + i] = output_escape(v, copy, size);
    }
    t->rows++;
    return 0;
}

size_t output_table_rows(const output_table *t)
{
    return t->rows;
}

static void print_cell(FILE *f, const char *s, size_t w, bool right, bool last)
{
    size_t pad = w - width(s);

    if (right)
        fprintf(f, "%*s%s", (int)pad, "", s);
    else if (last)
        fputs(s, f);
    else
        fprintf(f, "%s%*s", s, (int)pad, "");
}

void output_table_print(const output_table *t, FILE *f)
{
    size_t *w = calloc(t->ncols, sizeof(*w));
    size_t r, c;

    if (w == NULL)
        return;
    for (c = 0; c < t->ncols; c++) {
        const char *h = t->headers[c];

        w[c] = width(h[0] == '>' ? h + 1 : h);
        for (r = 0; r < t->rows; r++) {
            size_t cw = width(t->cells[r * t->ncols + c]);

            if (cw > w[c])
                w[c] = cw;
        }
    }
    for (c = 0; c < t->ncols; c++) {
        const char *h = t->headers[c];
        bool right = h[0] == '>';

        print_cell(f, right ? h + 1 : h, w[c], right, c + 1 == t->ncols);
        fputs(c + 1 == t->ncols ? "\n" : COL_GAP, f);
    }
    for (r = 0; r < t->rows; r++) {
        for (c = 0; c < t->ncols; c++) {
            print_cell(f, t->cells[r * t->ncols + c], w[c], t->headers[c][0] == '>',
                       c + 1 == t->ncols);
            fputs(c + 1 == t->ncols ? "\n" : COL_GAP, f);
        }
    }
    free(w);
}

void output_table_free(output_table *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

void output_kv_add(struct output_kv *kv, const char *key, const char *fmt, ...)
{
    char raw[OUTPUT_KV_VALUE];
    va_list ap;

    assert(kv->n < OUTPUT_KV_MAX);
    if (kv->n >= OUTPUT_KV_MAX)
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    kv->rows[kv->n].key = key;
    output_escape(raw, kv->rows[kv->n].value, sizeof(kv->rows[kv->n].value));
    kv->n++;
}

void output_kv_print(const struct output_kv *kv, FILE *f)
{
    size_t i, w = 0;

    for (i = 0; i < kv->n; i++) {
        if (strlen(kv->rows[i].key) > w)
            w = strlen(kv->rows[i].key);
    }
    for (i = 0; i < kv->n; i++) {
        const char *v = kv->rows[i].value[0] != '\0' ? kv->rows[i].value : "-";

        fprintf(f, "%s:%*s %s\n", kv->rows[i].key, (int)(w - strlen(kv->rows[i].key)), "", v);
    }
}

int output_json(const ProtobufCMessage *msg, FILE *f, char *err, size_t errlen)
{
    char *text = pbjson_encode_ex(msg, PBJSON_COMPACT, err, errlen);

    if (text == NULL)
        return -1;
    fputs(text, f);
    fputc('\n', f);
    free(text);
    return 0;
}
