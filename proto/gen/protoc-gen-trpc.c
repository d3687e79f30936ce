/* protoc-gen-trpc.c - protoc plugin: gRPC stubs for protobuf-c messages.
 *
 * Reads a CodeGeneratorRequest on stdin and writes a CodeGeneratorResponse on
 * stdout (gen_trpc.h does the work). Bad input is reported in the response's
 * `error` (protoc prints it and fails); the exit status is non-zero only when
 * no response can be written at all (out of memory, I/O error).
 *
 *   protoc --plugin=protoc-gen-trpc=path/to/protoc-gen-trpc --trpc_out=DIR ...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gen_trpc.h"

/* Reads all of f into a malloc'd buffer. 0, or -1 on read error / OOM. */
static int read_all(FILE *f, uint8_t **data, size_t *len)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    size_t n = 0;

    for (;;) {
        size_t got;

        if (n == cap) {
            size_t ncap = cap != 0 ? cap * 2 : 65536;
            uint8_t *p = ncap > cap ? realloc(buf, ncap) : NULL;

            if (p == NULL)
                goto fail;
            buf = p;
            cap = ncap;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                goto fail;
            break;
        }
    }
    *data = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    return -1;
}

int main(void)
{
    Google__Protobuf__Compiler__CodeGeneratorRequest *req = NULL;
    Google__Protobuf__Compiler__CodeGeneratorResponse *resp = NULL;
    uint8_t *in = NULL;
    uint8_t *out = NULL;
    size_t in_len = 0;
    size_t out_len;
    int rc = EXIT_FAILURE;

    if (read_all(stdin, &in, &in_len) != 0) {
        fprintf(stderr, "protoc-gen-trpc: cannot read the request from stdin\n");
        goto out;
    }
    req = google__protobuf__compiler__code_generator_request__unpack(NULL, in_len, in);
    if (req == NULL)
        resp =
            gen_trpc_error_response("protoc-gen-trpc: stdin holds no valid CodeGeneratorRequest");
    else
        resp = gen_trpc_run(req);
    if (resp == NULL) {
        fprintf(stderr, "protoc-gen-trpc: out of memory\n");
        goto out;
    }
    out_len = google__protobuf__compiler__code_generator_response__get_packed_size(resp);
    out = malloc(out_len != 0 ? out_len : 1);
    if (out == NULL) {
        fprintf(stderr, "protoc-gen-trpc: out of memory\n");
        goto out;
    }
    google__protobuf__compiler__code_generator_response__pack(resp, out);
    if (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout) != 0) {
        fprintf(stderr, "protoc-gen-trpc: cannot write the response to stdout\n");
        goto out;
    }
    rc = EXIT_SUCCESS;
out:
    free(out);
    if (resp != NULL)
        google__protobuf__compiler__code_generator_response__free_unpacked(resp, NULL);
    if (req != NULL)
        google__protobuf__compiler__code_generator_request__free_unpacked(req, NULL);
    free(in);
    return rc;
}
