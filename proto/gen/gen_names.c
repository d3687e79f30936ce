/* gen_names.c - protoc-c 1.4's naming rules (c_helpers.cc), in C. */
#include "gen_names.h"

#include <string.h>

static int is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static int is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char to_upper(char c)
{
    return is_lower(c) ? (char)(c - 'a' + 'A') : c;
}

static char to_lower(char c)
{
    return is_upper(c) ? (char)(c - 'A' + 'a') : c;
}

/* The piece name[0..n) through one of the three rules. */
enum piece_rule { RULE_CAMEL, RULE_LOWER, RULE_UPPER };

static void put_piece(struct gen_buf *b, const char *name, size_t n, enum piece_rule rule)
{
    size_t i;

    if (rule == RULE_CAMEL) {
        int next_upper = 1;

        for (i = 0; i < n; i++) {
            if (name[i] == '_') {
                next_upper = 1;
            } else if (next_upper) {
                gen_buf_putc(b, to_upper(name[i]));
                next_upper = 0;
            } else {
                gen_buf_putc(b, name[i]);
            }
        }
        return;
    }

    /* CamelToLower / CamelToUpper: was_upper starts true so that a leading
     * capital gets no '_' */
    int was_upper = 1;

    for (i = 0; i < n; i++) {
        int up = is_upper(name[i]);

        if (up && !was_upper)
            gen_buf_putc(b, '_');
        gen_buf_putc(b, rule == RULE_LOWER ? to_lower(name[i]) : to_upper(name[i]));
        was_upper = up;
    }
}

static void put_full(struct gen_buf *b, const char *full_name, enum piece_rule rule)
{
    const char *p = full_name;
    int first = 1;

    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);

        if (n != 0) {
            if (!first)
                gen_buf_puts(b, "__");
            put_piece(b, p, n, rule);
            first = 0;
        }
        p += n;
        if (*p == '.')
            p++;
    }
}

void gen_names_to_camel(struct gen_buf *b, const char *name)
{
    put_piece(b, name, strlen(name), RULE_CAMEL);
}

void gen_names_camel_to_lower(struct gen_buf *b, const char *name)
{
    put_piece(b, name, strlen(name), RULE_LOWER);
}

void gen_names_camel_to_upper(struct gen_buf *b, const char *name)
{
    put_piece(b, name, strlen(name), RULE_UPPER);
}

void gen_names_full_to_c(struct gen_buf *b, const char *full_name)
{
    put_full(b, full_name, RULE_CAMEL);
}

void gen_names_full_to_lower(struct gen_buf *b, const char *full_name)
{
    put_full(b, full_name, RULE_LOWER);
}

void gen_names_full_to_upper(struct gen_buf *b, const char *full_name)
{
    put_full(b, full_name, RULE_UPPER);
}

void gen_names_path_ident(struct gen_buf *b, const char *path)
{
    for (; *path != '\0'; path++) {
        char c = *path;

        gen_buf_putc(b, is_upper(c) || is_lower(c) || is_digit(c) ? c : '_');
    }
}

static int has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

void gen_names_strip_proto(struct gen_buf *b, const char *path)
{
    size_t n = strlen(path);

    if (has_suffix(path, n, ".protodevel"))
        n -= strlen(".protodevel");
    else if (has_suffix(path, n, ".proto"))
        n -= strlen(".proto");
    gen_buf_put(b, path, n);
}
