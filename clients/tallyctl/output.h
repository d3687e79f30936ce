/* output.h - how tallyctl prints: aligned tables for lists, "key: value"
 * blocks for single objects, and proto3 JSON (one compact object per line).
 *
 * Text from the server (owners, references, reasons) is printed on one line
 * whatever it holds: control characters are escaped (\n, \t, \xNN) so a
 * table row or a watch line can never be split or forged by data. Widths
 * count UTF-8 characters, not bytes. Not thread-safe (one writer). */
#ifndef CLIENTS_TALLYCTL_OUTPUT_H
#define CLIENTS_TALLYCTL_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

/* Copies s (NULL = "") into buf (size > 0 bytes, always NUL-terminated) with
 * control characters escaped; cut short (at a character boundary) if it
 * does not fit. Returns buf. */
char *output_escape(const char *s, char *buf, size_t size);

/* ---- tables ---- */

typedef struct output_table output_table;

/* A table with ncols columns and these headers (borrowed, static). A header
 * that starts with '>' is printed without it and its column is
 * right-aligned (numbers, amounts). NULL on OOM. */
output_table *output_table_new(const char *const *headers, size_t ncols);

/* Appends a row of ncols cells (copied, escaped; NULL or "" prints as "-").
 * Returns 0, or -1 on OOM. */
int output_table_add(output_table *t, const char *const *cells);

/* Rows added so far. */
size_t output_table_rows(const output_table *t);

/* Prints the header and every row, columns separated by two spaces, the last
 * column not padded. */
void output_table_print(const output_table *t, FILE *f);

/* NULL is a no-op. */
void output_table_free(output_table *t);

/* ---- key: value blocks ---- */

#define OUTPUT_KV_MAX 24

/* Plain data: fill with output_kv_add, print with output_kv_print. Values are
 * copied (escaped) into the struct; a value longer than OUTPUT_KV_VALUE
 * bytes is cut. */
#define OUTPUT_KV_VALUE 768
struct output_kv {
    size_t n;
    struct {
        const char *key; /* borrowed (static) */
        char value[OUTPUT_KV_VALUE];
    } rows[OUTPUT_KV_MAX];
};

/* Adds "key: value" (printf-style value). Rows beyond OUTPUT_KV_MAX are
 * dropped (a programming error; asserted in debug builds). */
void output_kv_add(struct output_kv *kv, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints the rows with the values aligned after the longest key. */
void output_kv_print(const struct output_kv *kv, FILE *f);

/* ---- JSON ---- */

/* Prints msg as canonical compact proto3 JSON and a newline. Returns 0, or
 * -1 (nothing printed; the reason in err) when the message cannot be
 * represented. */
int output_json(const ProtobufCMessage *msg, FILE *f, char *err, size_t errlen);

#endif /* CLIENTS_TALLYCTL_OUTPUT_H */
