/* trpc_pack.c - protobuf-c messages to and from gRPC byte buffers, and the
 * deadline arithmetic the rest of the runtime shares. */
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "trpc_internal.h"

grpc_byte_buffer *trpc_pack(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(len);
    grpc_byte_buffer *bb;

    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    bb = grpc_raw_byte_buffer_create(&s, 1); /* takes its own reference */
    grpc_slice_unref(s);
    return bb;
}

grpc_byte_buffer *trpc_pack_raw(const void *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer(data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);

    grpc_slice_unref(s);
    return bb;
}

/* The contents of bb as one slice we own (gRPC may hand us several, and
 * compressed ones; protobuf-c wants contiguous bytes). */
static int read_slice(grpc_byte_buffer *bb, grpc_slice *out)
{
    grpc_byte_buffer_reader r;

    if (bb == NULL || !grpc_byte_buffer_reader_init(&r, bb))
        return -1;
    *out = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return 0;
}

ProtobufCMessage *trpc_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb)
{
    grpc_slice all;
    ProtobufCMessage *m;

    if (read_slice(bb, &all) != 0)
        return NULL;
    m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    return m;
}

/* Reads a varint at *p (< end); 0, or -1 when truncated or too long. */
static int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;

        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* 1 when a string field of message d (wire bytes p..end), or of a message
 * inside it, holds a NUL byte. protobuf-c would cut such a string at the NUL
 * and a handler would act on the prefix ("<uuid>\0junk" as <uuid>). Unknown
 * fields and malformed input are left to protobuf-c (0). */
static int wire_has_nul(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                        int depth)
{
    while (p < end) {
        uint64_t key, len;
        const ProtobufCFieldDescriptor *f;

        if (wire_varint(&p, end, &key) != 0)
            return 0;
        switch (key & 7) {
        case 0:
            if (wire_varint(&p, end, &len) != 0)
                return 0;
            continue;
        case 1:
            p += 8;
            continue;
        case 5:
            p += 4;
            continue;
        case 2:
            break;
        default:
            return 0;
        }
        if (wire_varint(&p, end, &len) != 0 || len > (uint64_t)(end - p))
            return 0;
        f = key >> 3 <= UINT32_MAX
                ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
                : NULL;
        if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, (size_t)len))
            return 1;
        if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < 64 &&
            wire_has_nul(f->descriptor, p, p + len, depth + 1))
            return 1;
        p += len;
    }
    return 0;
}

ProtobufCMessage *trpc_unpack_request(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb,
                                      const char **why)
{
    grpc_slice all;
    ProtobufCMessage *m = NULL;
    const uint8_t *p;

    *why = "invalid request message";
    if (read_slice(bb, &all) != 0)
        return NULL;
    p = GRPC_SLICE_START_PTR(all);
    if (wire_has_nul(d, p, p + GRPC_SLICE_LENGTH(all), 0))
        *why = "string fields must not contain NUL bytes";
    else
        m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), p);
    grpc_slice_unref(all);
    return m;
}

int trpc_read_all(grpc_byte_buffer *bb, void **data, size_t *len)
{
    grpc_slice all;
    size_t n;

    if (read_slice(bb, &all) != 0)
        return -1;
    n = GRPC_SLICE_LENGTH(all);
    *data = malloc(n > 0 ? n : 1);
    if (*data == NULL) {
        grpc_slice_unref(all);
        return -1;
    }
    if (n > 0)
        memcpy(*data, GRPC_SLICE_START_PTR(all), n);
    *len = n;
    grpc_slice_unref(all);
    return 0;
}

gpr_timespec trpc_deadline_ms(int64_t ms)
{
    if (ms <= 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

int64_t trpc_ms_until(gpr_timespec t)
{
    gpr_timespec now;

    if (gpr_time_cmp(t, gpr_inf_future(t.clock_type)) == 0)
        return INT64_MAX;
    if (gpr_time_cmp(t, gpr_inf_past(t.clock_type)) == 0)
        return INT64_MIN;
    t = gpr_convert_clock_type(t, GPR_CLOCK_MONOTONIC);
    now = gpr_now(GPR_CLOCK_MONOTONIC);
    t = gpr_time_sub(t, now); /* gpr_time_to_millis is only 32 bits wide */
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

grpc_arg trpc_int_arg(const char *key, int value)
{
    grpc_arg a;

    memset(&a, 0, sizeof(a));
    a.type = GRPC_ARG_INTEGER;
    a.key = (char *)key; /* not written to */
    a.value.integer = value;
    return a;
}
