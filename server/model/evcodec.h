/* evcodec.h - event payloads between their stored form and the envelope.
 *
 * An event is stored as (event_type, data): event_type is the name of the
 * payload message ("Deposited") and data its proto3 JSON. Both directions
 * are generic over the Tally__V1__Event oneof: the payload case of an event
 * type is the oneof member whose message is named event_type. */
#ifndef SERVER_MODEL_EVCODEC_H
#define SERVER_MODEL_EVCODEC_H

#include <stddef.h>

#include <jansson.h>

#include "tally/v1/events.pb-c.h"

#include "trpc.h"

/* The payload case for an event type name, or PAYLOAD__NOT_SET. */
Tally__V1__Event__PayloadCase evcodec_case_of(const char *event_type);

/* The event type name of a payload case (static storage), or NULL. */
const char *evcodec_type_of(Tally__V1__Event__PayloadCase pc);

/* The payload message of env (NULL when not set). Borrowed. */
const ProtobufCMessage *evcodec_payload(const Tally__V1__Event *env);

/* The payload of env as proto3 JSON (new reference), or NULL (then st is
 * INTERNAL). */
json_t *evcodec_payload_to_json(const Tally__V1__Event *env, trpc_status *st);

/* Decodes a stored payload (len bytes of JSON) of event_type into env: sets
 * env->payload_case and the member, a new message that env now owns (free it
 * with evcodec_payload_clear; any payload env had is freed first). Other
 * envelope fields are left alone. Returns OK or INTERNAL "malformed stored
 * event ...". */
grpc_status_code evcodec_payload_from_json(Tally__V1__Event *env, const char *event_type,
                                           const char *json, size_t len, trpc_status *st);

/* Frees a payload set by evcodec_payload_from_json and unsets it. */
void evcodec_payload_clear(Tally__V1__Event *env);

#endif /* SERVER_MODEL_EVCODEC_H */
