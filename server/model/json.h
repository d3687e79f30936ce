/* json.h - the canonical proto3 JSON mapping for any protobuf-c message.
 *
 * One generic codec driven by protobuf-c descriptors (no per-message code), built on jansson.
 * It is how events are stored (events.data jsonb), how tallyctl --json prints, and what the
 * fuzzers hit. The mapping is https://protobuf.dev/programming-guides/proto3/#json:
 *
 *   field names     encode: lowerCamelCase json_name, derived from the field name with protoc's
 *                   ToJsonName rule (protobuf-c 1.4 descriptors carry no json_name);
 *                   decode: the json_name or the original field name
 *   presence        proto3 implicit presence: a field at its default (0, "", false, empty
 *                   bytes/list, enum 0) is omitted; a set sub-message, a set oneof member and
 *                   a set proto3 `optional` field are written even when at their default
 *   int32, uint32,  JSON numbers; decode also accepts a decimal string, or an integral number in
 *   (s)fixed32      exponent/fraction form ("1e3", 5.0)
 *   int64, uint64,  JSON strings ("1234"); decode accepts a string or a number (integral, in
 *   (s)fixed64      range). A bare JSON number beyond int64 cannot be read exactly (jansson
 *                   holds integers as long long): send such uint64 values as strings
 *   float, double   numbers in their shortest round-trip form; "NaN", "Infinity", "-Infinity".
 *                   PostgreSQL's jsonb gives large doubles back as long integer literals
 *                   (1e+300 as 1 and 300 zeros); a document holding an integer literal beyond
 *                   int64 is therefore read with every number as a double, and then an
 *                   integer field given as a number of magnitude 2^53 or more is refused
 *                   (never rounded)
 *   bool, string    JSON true/false, JSON string (valid UTF-8, no U+0000)
 *   bytes           standard base64 with padding; decode accepts standard or URL-safe, padded or
 *                   not (OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock do the work)
 *   enum            value name; a value with no name as its number; decode: name or number
 *   repeated        JSON array (a null element is an error)
 *   google.protobuf.Timestamp
 *                   RFC 3339 string in UTC, "Z", 0, 3, 6 or 9 fraction digits
 *                   ("2024-05-01T12:00:00.250Z"); decode accepts 0-9 fraction digits and a
 *                   numeric offset ("+02:00"); range 0001-01-01T00:00:00Z to
 *                   9999-12-31T23:59:59.999999999Z
 *   google.protobuf.{Int64,UInt64,Int32,UInt32,Bool,String,Bytes,Double,Float}Value
 *                   the plain wrapped value (64-bit ones as strings); absent = unset
 *   null            decode: a field whose value is null is left at its default (unset)
 *
 * Not supported, deliberately (tally uses none of them): map fields (protobuf-c models a map
 * as a repeated FooEntry message; such a field is recognised by its entry type and refused
 * rather than written in the non-canonical array form), and google.protobuf.Any, Duration,
 * Struct, Value, ListValue and FieldMask. Encoding fails only if such a field is actually set;
 * decoding fails if the JSON gives it a non-null value. Unknown fields kept by protobuf-c's
 * unpack are not written (JSON cannot carry them).
 *
 * Decoding rejects, with a short message that names the field path (e.g.
 * "deposited.amount.minorUnits: value out of range for int64"): invalid JSON, unknown fields,
 * wrong JSON types, out-of-range or fractional integers, unknown enum names, invalid base64,
 * invalid or out-of-range timestamps, invalid UTF-8 or U+0000 in strings, a field given twice
 * (also as name and json_name), two members of one oneof, a missing proto2 required field,
 * and JSON nested deeper than PBJSON_MAX_DEPTH. Messages are lower case, carry no trailing
 * period, and quote at most a short, sanitised (printable ASCII) excerpt of the input.
 *
 * Depth: pbjson_decode() counts '[' and '{' outside strings before it lets jansson parse, so
 * neither jansson's recursive-descent parser (its own hard limit is 2048 levels) nor the
 * decoder ever recurses deeper than PBJSON_MAX_DEPTH on untrusted text; pbjson_from_json()
 * checks the depth of the tree it walks as well. Encoding walks the message as built by the
 * caller (or by protobuf-c's unpack) and has no depth limit of its own.
 *
 * All functions are reentrant and thread-safe (no global state); they assume the C locale for
 * LC_NUMERIC (tally never calls setlocale()).
 */
#ifndef SERVER_MODEL_JSON_H
#define SERVER_MODEL_JSON_H

#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* Deepest JSON nesting (objects and arrays, the top-level object counting 1) accepted by the
 * decoder. tally's deepest message (ReadAllResponse.events[].<payload>.amount) needs 5. */
#define PBJSON_MAX_DEPTH 64

/* Flags of pbjson_encode(). */
enum pbjson_flags {
    PBJSON_COMPACT = 0,     /* default: no whitespace at all */
    PBJSON_PRETTY = 1 << 0, /* one member per line, indented by 2 spaces, ": " after keys */
};

/* Returns msg as a new jansson value (the caller owns the reference: json_decref()): an object,
 * or for a Timestamp or wrapper message a string, number or boolean. Members appear in field
 * number order. NULL when out of memory or when msg holds a value the mapping cannot represent
 * (invalid UTF-8 in a string, a Timestamp out of range, a set map or unsupported well-known
 * type field, a NULL element in a repeated message field); pbjson_to_json_ex() says why.
 * msg must be a valid protobuf-c message (NULL yields NULL); it is only read. */
json_t *pbjson_to_json(const ProtobufCMessage *msg);

/* As pbjson_to_json(), and on failure writes a short reason ("out of memory", or e.g.
 * "recordedAt: timestamp out of range") into err (always NUL-terminated, truncated to errlen;
 * err may be NULL when errlen is 0). */
json_t *pbjson_to_json_ex(const ProtobufCMessage *msg, char *err, size_t errlen);

/* Returns msg as malloc'd, NUL-terminated JSON text (free() it), compact unless flags has
 * PBJSON_PRETTY; no trailing newline. Reals are written in their shortest round-trip form
 * (jansson's own dumper writes 17 significant digits), so this is the canonical text, not
 * json_dumps(pbjson_to_json(msg)). NULL exactly when pbjson_to_json() would return NULL, or
 * out of memory. */
char *pbjson_encode(const ProtobufCMessage *msg, int flags);

/* As pbjson_encode(), with the reason for a NULL result in err (see pbjson_to_json_ex()). */
char *pbjson_encode_ex(const ProtobufCMessage *msg, int flags, char *err, size_t errlen);

/* Parses len bytes of JSON text (need not be NUL-terminated) as a message of type d. The text
 * must be a JSON object, except for a Timestamp or wrapper type, whose JSON form is a string,
 * number or boolean. Returns a new message, allocated with protobuf-c's default allocator
 * (malloc) throughout, so protobuf_c_message_free_unpacked(msg, NULL) (or the generated
 * x__free_unpacked(msg, NULL)) frees all of it. On any error returns NULL, frees everything it
 * allocated, and writes a short client-safe reason into err (always NUL-terminated when
 * errlen > 0; err may be NULL when errlen is 0). Duplicate keys are rejected. Never crashes
 * on any input; the whole text is parsed into a jansson tree first, so callers should bound
 * len (tally bounds it by the gRPC message or column size). */
ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
                                char *err, size_t errlen);

/* As pbjson_decode(), from a jansson value (e.g. one embedded in a larger document). j is only
 * read and stays owned by the caller. The returned message copies every string it needs. */
ProtobufCMessage *pbjson_from_json(const ProtobufCMessageDescriptor *d, json_t *j, char *err,
                                   size_t errlen);

#endif /* SERVER_MODEL_JSON_H */
