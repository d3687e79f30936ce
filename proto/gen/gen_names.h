/* gen_names.h - C identifiers for protobuf names, exactly as protoc-c 1.4
 * spells them (protobuf-c's protoc-c/c_helpers.cc), so that the stubs can
 * name protoc-c's types and descriptors. Every function appends to b.
 *
 * Examples (package my_pkg.v1, message Outer.Inner_msg, service Sample_Service):
 *   gen_names_full_to_c     "my_pkg.v1.Outer.Inner_msg" -> MyPkg__V1__Outer__InnerMsg
 *   gen_names_full_to_lower "my_pkg.v1.Outer.Inner_msg" -> my_pkg__v1__outer__inner_msg
 *   gen_names_full_to_upper "my_pkg.v1.Sample_Service"  -> MY_PKG__V1__SAMPLE__SERVICE
 *   gen_names_camel_to_lower "OpenAccount"              -> open_account
 * Only ASCII letters count as letters (protoc-c runs in the "C" locale).
 */
#ifndef PROTO_GEN_GEN_NAMES_H
#define PROTO_GEN_GEN_NAMES_H

#include "gen_buf.h"

/* protoc-c ToCamel: drops '_' and upper-cases the letter after it and the
 * first letter; the rest is kept. "inner_msg" -> "InnerMsg". */
void gen_names_to_camel(struct gen_buf *b, const char *name);

/* protoc-c CamelToLower: an upper-case letter after a non-upper-case char
 * gets a '_' before it; upper case becomes lower case. "HTTPGet" -> "httpget",
 * "OpenAccount" -> "open_account", "Sample_Service" -> "sample__service". */
void gen_names_camel_to_lower(struct gen_buf *b, const char *name);

/* protoc-c CamelToUpper: the same split, everything upper case. */
void gen_names_camel_to_upper(struct gen_buf *b, const char *name);

/* protoc-c FullNameToC / FullNameToLower / FullNameToUpper: the dotted name is
 * split at '.', empty pieces (a leading '.') are skipped, each piece goes
 * through ToCamel / CamelToLower / CamelToUpper, and pieces are joined by
 * "__". */
void gen_names_full_to_c(struct gen_buf *b, const char *full_name);
void gen_names_full_to_lower(struct gen_buf *b, const char *full_name);
void gen_names_full_to_upper(struct gen_buf *b, const char *full_name);

/* The file's path with every character outside [A-Za-z0-9] turned into '_':
 * "tally/v1/command.proto" -> "tally_v1_command_proto". */
void gen_names_path_ident(struct gen_buf *b, const char *path);

/* protoc-c StripProto: path without a trailing ".protodevel" or ".proto". */
void gen_names_strip_proto(struct gen_buf *b, const char *path);

#endif /* PROTO_GEN_GEN_NAMES_H */
