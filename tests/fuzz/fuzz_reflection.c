/* fuzz_reflection.c - libFuzzer target for the reflection handler: the
 * function that turns one serialized ServerReflectionRequest into the
 * serialized ServerReflectionResponse (trpc_reflection_answer, exposed in
 * trpc_internal.h), over the same index a tally daemon builds: its service,
 * health and both reflection services, with every import.
 *
 * Input: the request's wire bytes.
 *
 * Invariants: the answer is -1 exactly when protobuf-c cannot unpack the
 * request; otherwise the response unpacks, echoes the host and the request
 * (same wire bytes after unknown fields are dropped), and answers the
 * request's kind: list_services -> every service; file_by_filename /
 * file_containing_symbol / file_containing_extension -> either an error
 * NOT_FOUND with a message, or FileDescriptorProtos that all unpack, each
 * file once, the first one being the file asked for (by name) or holding
 * the symbol; all_extension_numbers_of_type -> the base type echoed, or
 * NOT_FOUND; nothing set -> INVALID_ARGUMENT. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/health/v1/health.trpc.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "tally/v1/command.trpc.h"
#include "tally/v1/query.trpc.h"
#include "tally/v1/subscription.trpc.h"

#include "fuzz_common.h"
#include "trpc_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest refl_request;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse refl_response;

static const trpc_service_desc *services[] = {
    &tally__v1__command_service__trpc_service,
    &tally__v1__query_service__trpc_service,
    &tally__v1__subscription_service__trpc_service,
    &grpc__health__v1__health__trpc_service,
    &grpc__reflection__v1alpha__server_reflection__trpc_service,
    &grpc__reflection__v1__server_reflection__trpc_service,
};
#define N_SERVICES (sizeof(services) / sizeof(services[0]))

static trpc_reflection *index_;

/* True when fd declares name (fully qualified, optional leading dot) as a
 * message, enum, service, method, extension, or nested one of those. */
static int declares_in_messages(const char *scope, size_t n,
                                Google__Protobuf__DescriptorProto *const *msgs, const char *name);

static int scoped_is(const char *scope, const char *child, const char *name)
{
    size_t a = strlen(scope);

    if (a == 0)
        return strcmp(child, name) == 0;
    return strncmp(name, scope, a) == 0 && name[a] == '.' && strcmp(name + a + 1, child) == 0;
}

static int declares_in_messages(const char *scope, size_t n,
                                Google__Protobuf__DescriptorProto *const *msgs, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__DescriptorProto *m = msgs[i];
        char sub[512];

        if (scoped_is(scope, m->name, name))
            return 1;
        snprintf(sub, sizeof(sub), "%s%s%s", scope, scope[0] ? "." : "", m->name);
        for (size_t j = 0; j < m->n_enum_type; j++)
            if (scoped_is(sub, m->enum_type[j]->name, name))
                return 1;
        for (size_t j = 0; j < m->n_extension; j++)
            if (scoped_is(sub, m->extension[j]->name, name))
                return 1;
        if (declares_in_messages(sub, m->n_nested_type, m->nested_type, name))
            return 1;
    }
    return 0;
}

static int declares(const Google__Protobuf__FileDescriptorProto *fd, const char *name)
{
    const char *pkg = fd->package ? fd->package : "";

    if (name[0] == '.')
        name++;
    if (declares_in_messages(pkg, fd->n_message_type, fd->message_type, name))
        return 1;
    for (size_t i = 0; i < fd->n_enum_type; i++)
        if (scoped_is(pkg, fd->enum_type[i]->name, name))
            return 1;
    for (size_t i = 0; i < fd->n_extension; i++)
        if (scoped_is(pkg, fd->extension[i]->name, name))
            return 1;
    for (size_t i = 0; i < fd->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
        char sub[512];

        if (scoped_is(pkg, s->name, name))
            return 1;
        snprintf(sub, sizeof(sub), "%s%s%s", pkg, pkg[0] ? "." : "", s->name);
        for (size_t j = 0; j < s->n_method; j++)
            if (scoped_is(sub, s->method[j]->name, name))
                return 1;
    }
    return 0;
}

static void check_error(const refl_response *rs, grpc_status_code code)
{
    FUZZ_CHECK(
        rs->message_response_case ==
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE,
        "expected an error response, got case %d", (int)rs->message_response_case);
    FUZZ_CHECK(rs->error_response->error_code == (int32_t)code, "error code %d, expected %d",
               rs->error_response->error_code, (int)code);
    FUZZ_CHECK(fuzz_is_safe_message(rs->error_response->error_message), "error message \"%s\"",
               rs->error_response->error_message);
}

/* A file answer or NOT_FOUND; the first file is checked by first_ok. */
static void check_files(const refl_response *rs, const char *what,
                        int (*first_ok)(const Google__Protobuf__FileDescriptorProto *fd,
                                        const refl_request *rq),
                        const refl_request *rq)
{
    const Grpc__Reflection__V1alpha__FileDescriptorResponse *f;

    if (rs->message_response_case ==
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE) {
        check_error(rs, GRPC_STATUS_NOT_FOUND);
        return;
    }
    FUZZ_CHECK(
        rs->message_response_case ==
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE,
        "%s: response case %d", what, (int)rs->message_response_case);
    f = rs->file_descriptor_response;
    FUZZ_CHECK(f->n_file_descriptor_proto >= 1, "%s: no file", what);
    {
        Google__Protobuf__FileDescriptorProto *fds[64];
        size_t n = f->n_file_descriptor_proto;

        FUZZ_CHECK(n <= 64, "%s: %zu files", what, n);
        for (size_t i = 0; i < n; i++) {
            fds[i] = google__protobuf__file_descriptor_proto__unpack(
                NULL, f->file_descriptor_proto[i].len, f->file_descriptor_proto[i].data);
            FUZZ_CHECK(fds[i] != NULL && fds[i]->name != NULL, "%s: file %zu does not unpack", what,
                       i);
            for (size_t j = 0; j < i; j++)
                FUZZ_CHECK(strcmp(fds[i]->name, fds[j]->name) != 0, "%s: %s sent twice", what,
                           fds[i]->name);
        }
        FUZZ_CHECK(first_ok(fds[0], rq), "%s: first file %s does not answer the request", what,
                   fds[0]->name);
        for (size_t i = 0; i < n; i++)
            google__protobuf__file_descriptor_proto__free_unpacked(fds[i], NULL);
    }
}

static int first_is_named(const Google__Protobuf__FileDescriptorProto *fd, const refl_request *rq)
{
    return strcmp(fd->name, rq->file_by_filename) == 0;
}

static int first_declares_symbol(const Google__Protobuf__FileDescriptorProto *fd,
                                 const refl_request *rq)
{
    return declares(fd, rq->file_containing_symbol);
}

static int first_any(const Google__Protobuf__FileDescriptorProto *fd, const refl_request *rq)
{
    (void)rq;
    return fd->n_extension > 0 || fd->n_message_type > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    refl_request *rq;
    refl_response *rs;
    int rc;

    if (index_ == NULL) {
        index_ = trpc_reflection_new(services, N_SERVICES);
        FUZZ_CHECK(index_ != NULL, "cannot build the reflection index");
    }
    rq = grpc__reflection__v1alpha__server_reflection_request__unpack(NULL, size, data);
    rc = trpc_reflection_answer(index_, data, size, &resp, &resp_len);
    FUZZ_CHECK((rc == -1) == (rq == NULL), "answer %d for a request that %s", rc,
               rq ? "unpacks" : "does not unpack");
    if (rq == NULL)
        return 0;
    rs = grpc__reflection__v1alpha__server_reflection_response__unpack(NULL, resp_len, resp);
    FUZZ_CHECK(rs != NULL, "the response does not unpack");
    FUZZ_CHECK(strcmp(rs->valid_host, rq->host) == 0, "host \"%s\" echoed as \"%s\"", rq->host,
               rs->valid_host);
    FUZZ_CHECK(rs->original_request != NULL, "original_request missing");
    fuzz_walk(&rq->base, fuzz_strip_unknown_one);
    fuzz_walk(&rs->original_request->base, fuzz_strip_unknown_one);
    fuzz_check_same_wire(&rq->base, &rs->original_request->base, "original_request");

    switch (rq->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
        const Grpc__Reflection__V1alpha__ListServiceResponse *l = rs->list_services_response;

        FUZZ_CHECK(
            rs->message_response_case ==
                GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE,
            "list_services answered with case %d", (int)rs->message_response_case);
        FUZZ_CHECK(l->n_service == N_SERVICES, "%zu services listed", l->n_service);
        for (size_t i = 0; i < N_SERVICES; i++)
            FUZZ_CHECK(strcmp(l->service[i]->name, services[i]->full_name) == 0,
                       "service %zu is %s", i, l->service[i]->name);
        break;
    }
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        check_files(rs, "file_by_filename", first_is_named, rq);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        check_files(rs, "file_containing_symbol", first_declares_symbol, rq);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        check_files(rs, "file_containing_extension", first_any, rq);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        if (rs->message_response_case ==
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE) {
            check_error(rs, GRPC_STATUS_NOT_FOUND);
        } else {
            const char *type = rq->all_extension_numbers_of_type;

            FUZZ_CHECK(
                rs->message_response_case ==
                    GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE,
                "all_extension_numbers_of_type answered with case %d",
                (int)rs->message_response_case);
            FUZZ_CHECK(strcmp(rs->all_extension_numbers_response->base_type_name,
                              type + (type[0] == '.')) == 0,
                       "base type %s for %s", rs->all_extension_numbers_response->base_type_name,
                       type);
        }
        break;
    default:
        check_error(rs, GRPC_STATUS_INVALID_ARGUMENT);
        break;
    }
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(rs, NULL);
    grpc__reflection__v1alpha__server_reflection_request__free_unpacked(rq, NULL);
    free(resp);
    return 0;
}
