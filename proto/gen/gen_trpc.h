/* gen_trpc.h - the code generator behind protoc-gen-trpc.
 *
 * For every file_to_generate "a/b/x.proto" of a CodeGeneratorRequest it emits
 * "a/b/x.trpc.h" and "a/b/x.trpc.c": the file descriptor with its transitive
 * imports, and per service the path macros, the typed handler table, the
 * trpc_service_desc, the register function and the typed blocking clients.
 * proto/runtime/trpc.h (header comment) describes the generated interface;
 * names follow protoc-c 1.4 (gen_names.h).
 */
#ifndef PROTO_GEN_GEN_TRPC_H
#define PROTO_GEN_GEN_TRPC_H

#include "google/protobuf/compiler/plugin.pb-c.h"

/* Runs the generator on req (borrowed, not modified). Returns a malloc'd
 * response with supported_features = FEATURE_PROTO3_OPTIONAL holding either
 * the generated files or, when the request cannot be served (unknown file or
 * type, unsupported parameter), only `error` and no files. Free it with
 * google__protobuf__compiler__code_generator_response__free_unpacked(resp,
 * NULL). NULL when out of memory. */
Google__Protobuf__Compiler__CodeGeneratorResponse *
gen_trpc_run(const Google__Protobuf__Compiler__CodeGeneratorRequest *req);

/* A response holding only `error` = msg (copied), freed as above. NULL when
 * out of memory. */
Google__Protobuf__Compiler__CodeGeneratorResponse *gen_trpc_error_response(const char *msg);

#endif /* PROTO_GEN_GEN_TRPC_H */
