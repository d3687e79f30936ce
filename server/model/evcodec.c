/* evcodec.c - see evcodec.h. */
#include "evcodec.h"

#include <string.h>

#include "json.h"

/* The oneof member of Tally__V1__Event for case pc (field number == case). */
static const ProtobufCFieldDescriptor *payload_field(Tally__V1__Event__PayloadCase pc)
{
    const ProtobufCFieldDescriptor *f;

    if (pc == TALLY__V1__EVENT__PAYLOAD__NOT_SET)
        return NULL;
    f = protobuf_c_message_descriptor_get_field(&tally__v1__event__descriptor, (unsigned)pc);
    if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE ||
        !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return NULL;
    return f;
}

Tally__V1__Event__PayloadCase evcodec_case_of(const char *event_type)
{
    const ProtobufCMessageDescriptor *d = &tally__v1__event__descriptor;

    if (event_type == NULL)
        return TALLY__V1__EVENT__PAYLOAD__NOT_SET;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];

        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->type == PROTOBUF_C_TYPE_MESSAGE &&
            strcmp(((const ProtobufCMessageDescriptor *)f->descriptor)->short_name, event_type) ==
                0)
            return (Tally__V1__Event__PayloadCase)f->id;
    }
    return TALLY__V1__EVENT__PAYLOAD__NOT_SET;
}

const char *evcodec_type_of(Tally__V1__Event__PayloadCase pc)
{
    const ProtobufCFieldDescriptor *f = payload_field(pc);

    return f ? ((const ProtobufCMessageDescriptor *)f->descriptor)->short_name : NULL;
}

const ProtobufCMessage *evcodec_payload(const Tally__V1__Event *env)
{
    const ProtobufCFieldDescriptor *f = payload_field(env->payload_case);

    if (f == NULL)
        return NULL;
    return *(ProtobufCMessage *const *)((const char *)env + f->offset);
}

json_t *evcodec_payload_to_json(const Tally__V1__Event *env, trpc_status *st)
{
    const ProtobufCMessage *m = evcodec_payload(env);
    char err[128];
    json_t *j;

    if (m == NULL) {
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "event has no payload");
        return NULL;
    }
    j = pbjson_to_json_ex(m, err, sizeof(err));
    if (j == NULL)
        trpc_status_set(st, GRPC_STATUS_INTERNAL, "cannot encode %s: %s", m->descriptor->short_name,
                        err);
    return j;
}

grpc_status_code evcodec_payload_from_json(Tally__V1__Event *env, const char *event_type,
                                           const char *json, size_t len, trpc_status *st)
{
    Tally__V1__Event__PayloadCase pc = evcodec_case_of(event_type);
    const ProtobufCFieldDescriptor *f = payload_field(pc);
    ProtobufCMessage *m;
    char err[160];

    if (f == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "malformed stored event: unknown type %s",
                               event_type ? event_type : "(null)");
    m = pbjson_decode(f->descriptor, json, len, err, sizeof(err));
    if (m == NULL)
        return trpc_status_set(st, GRPC_STATUS_INTERNAL, "malformed stored event %s: %s",
                               event_type, err);
    evcodec_payload_clear(env);
    *(ProtobufCMessage **)((char *)env + f->offset) = m;
    env->payload_case = pc;
    if (st) {
        st->code = GRPC_STATUS_OK;
        st->msg[0] = '\0';
    }
    return GRPC_STATUS_OK;
}

void evcodec_payload_clear(Tally__V1__Event *env)
{
    const ProtobufCFieldDescriptor *f = payload_field(env->payload_case);

    if (f) {
        ProtobufCMessage **slot = (ProtobufCMessage **)((char *)env + f->offset);

        protobuf_c_message_free_unpacked(*slot, NULL);
        *slot = NULL;
    }
    env->payload_case = TALLY__V1__EVENT__PAYLOAD__NOT_SET;
}
