/* fuzz_json.c - libFuzzer target for the proto3 JSON codec (server/model/json.h).
 *
 * Input: one selector byte, then the payload. Bit 0 of the selector picks the
 * mode, the rest (mod the number of types) one message type among every type
 * reachable from tally's RPC requests and replies and the Event envelope,
 * sorted by full name (FUZZ_JSON_LIST_TYPES=1 prints the numbering; a new
 * type shifts the seeds after it, which only costs the fuzzer a little).
 *
 *   text mode (bit 0 = 0): the payload is JSON text. pbjson_decode() either
 *     fails with a non-empty printable-ASCII message, or the message it
 *     builds re-encodes (compact and pretty), the encoding decodes again to
 *     the same wire bytes, and re-encoding that gives the same text (the
 *     canonical form is a fixed point).
 *   wire mode (bit 0 = 1): the payload is protobuf wire bytes, unpacked by
 *     protobuf-c. If pbjson_encode() accepts the message (it may refuse
 *     invalid UTF-8 or an out-of-range Timestamp, with a message), its text
 *     must decode back to the same wire bytes (unknown fields dropped, NaNs
 *     canonical): whatever the encoder writes, the decoder reads.
 *
 * Never crashes, never leaks (LeakSanitizer runs at exit of every input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "tally/v1/command.trpc.h"
#include "tally/v1/events.pb-c.h"
#include "tally/v1/query.trpc.h"
#include "tally/v1/subscription.trpc.h"

#include "fuzz_common.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TYPES 256

static const ProtobufCMessageDescriptor *types[MAX_TYPES];
static size_t n_types;

static void init_types(void)
{
    const trpc_service_desc *svcs[] = {
        &tally__v1__command_service__trpc_service,
        &tally__v1__query_service__trpc_service,
        &tally__v1__subscription_service__trpc_service,
    };

    n_types = fuzz_collect_types(&tally__v1__event__descriptor, types, 0, MAX_TYPES);
    n_types =
        fuzz_collect_types(&google__protobuf__int64_value__descriptor, types, n_types, MAX_TYPES);
    for (size_t s = 0; s < sizeof(svcs) / sizeof(svcs[0]); s++)
        for (size_t m = 0; m < svcs[s]->n_methods; m++) {
            n_types = fuzz_collect_types(svcs[s]->methods[m].input, types, n_types, MAX_TYPES);
            n_types = fuzz_collect_types(svcs[s]->methods[m].output, types, n_types, MAX_TYPES);
        }
    qsort(types, n_types, sizeof(types[0]), fuzz_desc_cmp);
    if (getenv("FUZZ_JSON_LIST_TYPES")) /* for corpus/gen.sh: "index full.name" lines */
        for (size_t i = 0; i < n_types; i++)
            printf("%zu %s\n", i, types[i]->name);
}

static void free_msg(ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

/* t (from the encoder) must decode to a message with m's wire bytes; returns
 * that message. */
static ProtobufCMessage *decode_back(const ProtobufCMessage *m, const char *t, const char *what)
{
    char err[256];
    ProtobufCMessage *m2 = pbjson_decode(m->descriptor, t, strlen(t), err, sizeof(err));

    FUZZ_CHECK(m2 != NULL, "%s: %s: the decoder refused the encoder's text: %s\n%s", what,
               m->descriptor->name, err, t);
    fuzz_walk(m2, fuzz_canon_nan_one);
    fuzz_check_same_wire(m, m2, what);
    return m2;
}

static void text_mode(const ProtobufCMessageDescriptor *d, const char *text, size_t len)
{
    char err[256];
    ProtobufCMessage *m1 = NULL, *m2 = NULL, *m3 = NULL;
    char *t2 = NULL, *t3 = NULL, *pretty = NULL;

    err[0] = '\0';
    m1 = pbjson_decode(d, text, len, err, sizeof(err));
    if (m1 == NULL) {
        FUZZ_CHECK(fuzz_is_safe_message(err), "decode error message not client-safe: \"%s\"", err);
        return;
    }
    fuzz_walk(m1, fuzz_canon_nan_one);
    t2 = pbjson_encode_ex(m1, PBJSON_COMPACT, err, sizeof(err));
    FUZZ_CHECK(t2 != NULL, "%s: a decoded message does not encode: %s", d->name, err);
    m2 = decode_back(m1, t2, "text -> message -> text -> message");
    t3 = pbjson_encode(m2, PBJSON_COMPACT);
    FUZZ_CHECK(t3 != NULL && strcmp(t2, t3) == 0, "canonical text is not a fixed point:\n%s\n%s",
               t2, t3 ? t3 : "(null)");
    pretty = pbjson_encode(m1, PBJSON_PRETTY);
    FUZZ_CHECK(pretty != NULL, "%s: pretty encoding failed", d->name);
    m3 = decode_back(m1, pretty, "pretty text -> message");
    free(t2);
    free(t3);
    free(pretty);
    free_msg(m1);
    free_msg(m2);
    free_msg(m3);
}

static void wire_mode(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len)
{
    char err[256];
    ProtobufCMessage *m0 = protobuf_c_message_unpack(d, NULL, len, data), *m1;
    char *t;

    if (m0 == NULL)
        return;
    fuzz_walk(m0, fuzz_strip_unknown_one);
    fuzz_walk(m0, fuzz_canon_nan_one);
    err[0] = '\0';
    t = pbjson_encode_ex(m0, PBJSON_COMPACT, err, sizeof(err));
    if (t == NULL) {
        FUZZ_CHECK(fuzz_is_safe_message(err), "encode error message not client-safe: \"%s\"", err);
        free_msg(m0);
        return;
    }
    m1 = decode_back(m0, t, "wire -> message -> text -> message");
    free(t);
    free_msg(m0);
    free_msg(m1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ProtobufCMessageDescriptor *d;

    if (n_types == 0)
        init_types();
    if (size < 1)
        return 0;
    d = types[(data[0] >> 1) % n_types];
    if (data[0] & 1)
        wire_mode(d, data + 1, size - 1);
    else
        text_mode(d, (const char *)data + 1, size - 1);
    return 0;
}
