/* test_trpc_builtin.c - the services every trpc server has: grpc.health.v1
 * (Check, Watch) and server reflection v1alpha and v1, the latter driven by
 * a raw bidi call on the C core API, as a stranger's client would. */
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/health/v1/health.trpc.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

#include "test_support.h"

#define TEST_SERVICE "trpctest.v1.TestService"
#define SERVING      GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define UNKNOWN_SVC  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

/* ---- health ---- */

static grpc_status_code check(ts_server *t, const char *service, int *status)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *resp = NULL;
    trpc_call_opts opts = {3000, NULL, 0};
    trpc_status st;
    grpc_status_code code;

    req.service = (char *)service;
    code = grpc__health__v1__health__trpc_check(t->ch, &req, &resp, &opts, &st);
    *status = resp != NULL ? (int)resp->status : -1;
    if (resp != NULL)
        grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    return code;
}

static void test_health_check_serving_and_not_found(void)
{
    ts_server t;
    int status;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    CU_ASSERT_EQUAL(check(&t, "", &status), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(status, SERVING);
    CU_ASSERT_EQUAL(check(&t, TEST_SERVICE, &status), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(status, SERVING);
    CU_ASSERT_EQUAL(check(&t, "no.such.Service", &status), GRPC_STATUS_NOT_FOUND);
    trpc_server_set_serving(t.srv, TEST_SERVICE, 0);
    CU_ASSERT_EQUAL(check(&t, TEST_SERVICE, &status), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(status, NOT_SERVING);
    CU_ASSERT_EQUAL(check(&t, "", &status), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(status, SERVING);
    ts_stop(&t);
}

static int next_status(trpc_client_stream *s)
{
    Grpc__Health__V1__HealthCheckResponse *m = NULL;
    trpc_status st;
    int v;

    if (!grpc__health__v1__health__trpc_watch_next(s, &m, &st))
        return -1;
    v = (int)m->status;
    grpc__health__v1__health_check_response__free_unpacked(m, NULL);
    return v;
}

static trpc_client_stream *watch(ts_server *t, const char *service)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    trpc_call_opts opts = {10000, NULL, 0};
    trpc_status st;

    req.service = (char *)service;
    return grpc__health__v1__health__trpc_watch(t->ch, &req, &opts, &st);
}

static void test_health_watch_sees_changes(void)
{
    ts_server t;
    trpc_client_stream *a, *b;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    a = watch(&t, TEST_SERVICE);
    b = watch(&t, "later.Service");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(next_status(a), SERVING);
    CU_ASSERT_EQUAL(next_status(b), UNKNOWN_SVC);
    trpc_server_set_serving(t.srv, TEST_SERVICE, 0);
    CU_ASSERT_EQUAL(next_status(a), NOT_SERVING);
    trpc_server_set_serving(t.srv, TEST_SERVICE, 0); /* no change: nothing sent */
    trpc_server_set_serving(t.srv, TEST_SERVICE, 1);
    CU_ASSERT_EQUAL(next_status(a), SERVING);
    trpc_server_set_serving(t.srv, "later.Service", 1);
    CU_ASSERT_EQUAL(next_status(b), SERVING);
    trpc_client_stream_free(a); /* cancels: the server drops the watcher */
    trpc_client_stream_free(b);
    ts_stop(&t);
}

/* ---- reflection over a raw bidi call ---- */

typedef struct bidi {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata_array initial_md;
    int got_md;
} bidi;

static int run(bidi *b, grpc_op *ops, size_t n)
{
    grpc_event ev;
    int tag = 0;

    if (grpc_call_start_batch(b->call, ops, n, &tag, NULL) != GRPC_CALL_OK)
        return -1;
    ev = grpc_completion_queue_pluck(b->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.success ? 0 : -1;
}

static int bidi_open(bidi *b, const char *target, const char *path)
{
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_slice method = grpc_slice_from_static_string(path);
    grpc_op op;

    memset(b, 0, sizeof(*b));
    grpc_init();
    b->ch = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    b->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_metadata_array_init(&b->initial_md);
    b->call = grpc_channel_create_call(
        b->ch, NULL, GRPC_PROPAGATE_DEFAULTS, b->cq, method, NULL,
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(10, GPR_TIMESPAN)), NULL);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    return run(b, &op, 1);
}

/* Sends one request, returns the response bytes as a message of d. */
static ProtobufCMessage *bidi_ask(bidi *b, const ProtobufCMessage *req,
                                  const ProtobufCMessageDescriptor *d)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len + 1);
    grpc_slice s;
    grpc_byte_buffer *out, *in = NULL;
    grpc_byte_buffer_reader r;
    ProtobufCMessage *m = NULL;
    grpc_op ops[2];
    size_t n = 0;

    protobuf_c_message_pack(req, buf);
    s = grpc_slice_from_copied_buffer((const char *)buf, len);
    out = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    free(buf);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_MESSAGE;
    ops[0].data.send_message.send_message = out;
    if (run(b, ops, 1) != 0)
        goto out;
    memset(ops, 0, sizeof(ops));
    if (!b->got_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &b->initial_md;
        b->got_md = 1;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &in;
    if (run(b, ops, n) != 0 || in == NULL)
        goto out;
    if (grpc_byte_buffer_reader_init(&r, in)) {
        grpc_slice all = grpc_byte_buffer_reader_readall(&r);

        m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        grpc_slice_unref(all);
        grpc_byte_buffer_reader_destroy(&r);
    }
out:
    grpc_byte_buffer_destroy(out);
    if (in != NULL)
        grpc_byte_buffer_destroy(in);
    return m;
}

/* Half-closes and returns the final status. */
static grpc_status_code bidi_close(bidi *b)
{
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_metadata_array trailing;
    grpc_op ops[2];

    grpc_metadata_array_init(&trailing);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[1].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[1].data.recv_status_on_client.status = &code;
    ops[1].data.recv_status_on_client.status_details = &details;
    run(b, ops, 2);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&trailing);
    grpc_metadata_array_destroy(&b->initial_md);
    grpc_call_unref(b->call);
    grpc_completion_queue_shutdown(b->cq);
    grpc_completion_queue_destroy(b->cq);
    grpc_channel_destroy(b->ch);
    grpc_shutdown();
    return code;
}

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest refl_req;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse refl_resp;
#define RESP_CASE(x) GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x
#define REQ_CASE(x)  GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x

static refl_resp *ask(bidi *b, refl_req *req)
{
    return (refl_resp *)bidi_ask(
        b, &req->base, &grpc__reflection__v1alpha__server_reflection_response__descriptor);
}

static int has_service(const refl_resp *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->list_services_response->n_service; i++)
        if (strcmp(r->list_services_response->service[i]->name, name) == 0)
            return 1;
    return 0;
}

/* The file names in a file_descriptor_response, joined by spaces. */
static void file_names(const refl_resp *r, char *out, size_t cap)
{
    const Grpc__Reflection__V1alpha__FileDescriptorResponse *f = r->file_descriptor_response;
    size_t i;

    out[0] = '\0';
    for (i = 0; i < f->n_file_descriptor_proto; i++) {
        Google__Protobuf__FileDescriptorProto *fd = google__protobuf__file_descriptor_proto__unpack(
            NULL, f->file_descriptor_proto[i].len, f->file_descriptor_proto[i].data);

        if (i > 0)
            strncat(out, " ", cap - strlen(out) - 1);
        strncat(out, fd != NULL ? fd->name : "(unparsable)", cap - strlen(out) - 1);
        google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
    }
}

static void check_reflection(const char *path)
{
    ts_server t;
    bidi b;
    refl_req req = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    refl_resp *resp;
    char names[512];

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    CU_ASSERT_FATAL(bidi_open(&b, t.target, path) == 0);
    req.host = (char *)"reflection-host";

    req.message_request_case = REQ_CASE(LIST_SERVICES);
    req.list_services = (char *)"*";
    resp = ask(&b, &req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL_FATAL(resp->message_response_case, RESP_CASE(LIST_SERVICES_RESPONSE));
    CU_ASSERT_EQUAL(resp->list_services_response->n_service, 4);
    CU_ASSERT(has_service(resp, TEST_SERVICE));
    CU_ASSERT(has_service(resp, "grpc.health.v1.Health"));
    CU_ASSERT(has_service(resp, "grpc.reflection.v1alpha.ServerReflection"));
    CU_ASSERT(has_service(resp, "grpc.reflection.v1.ServerReflection"));
    CU_ASSERT_STRING_EQUAL(resp->valid_host, "reflection-host");
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp->original_request);
    CU_ASSERT_EQUAL(resp->original_request->message_request_case, REQ_CASE(LIST_SERVICES));
    CU_ASSERT_STRING_EQUAL(resp->original_request->list_services, "*");
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);

    /* a method of the test service: its file first, then every import */
    req.message_request_case = REQ_CASE(FILE_CONTAINING_SYMBOL);
    req.file_containing_symbol = (char *)TEST_SERVICE ".Echo";
    resp = ask(&b, &req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL_FATAL(resp->message_response_case, RESP_CASE(FILE_DESCRIPTOR_RESPONSE));
    file_names(resp, names, sizeof(names));
    CU_ASSERT_STRING_EQUAL(names, "trpctest/v1/test.proto google/protobuf/timestamp.proto "
                                  "trpctest/v1/common.proto");
    CU_ASSERT_STRING_EQUAL(resp->original_request->file_containing_symbol, TEST_SERVICE ".Echo");
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);

    /* a message and an enum of an imported file, a nested-free lookup */
    req.file_containing_symbol = (char *)"trpctest.v1.Mode";
    resp = ask(&b, &req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL_FATAL(resp->message_response_case, RESP_CASE(FILE_DESCRIPTOR_RESPONSE));
    file_names(resp, names, sizeof(names));
    CU_ASSERT_STRING_EQUAL(names, "trpctest/v1/common.proto");
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);

    req.file_containing_symbol = (char *)"no.such.Symbol";
    resp = ask(&b, &req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL_FATAL(resp->message_response_case, RESP_CASE(ERROR_RESPONSE));
    CU_ASSERT_EQUAL(resp->error_response->error_code, GRPC_STATUS_NOT_FOUND);
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);

    req.message_request_case = REQ_CASE(FILE_BY_FILENAME);
    req.file_by_filename = (char *)"grpc/health/v1/health.proto";
    resp = ask(&b, &req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL_FATAL(resp->message_response_case, RESP_CASE(FILE_DESCRIPTOR_RESPONSE));
    file_names(resp, names, sizeof(names));
    CU_ASSERT_STRING_EQUAL(names, "grpc/health/v1/health.proto");
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);

    req.file_by_filename = (char *)"no/such.proto";
    resp = ask(&b, &req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL_FATAL(resp->message_response_case, RESP_CASE(ERROR_RESPONSE));
    CU_ASSERT_EQUAL(resp->error_response->error_code, GRPC_STATUS_NOT_FOUND);
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);

    /* a known message type without extensions: an empty list */
    req.message_request_case = REQ_CASE(ALL_EXTENSION_NUMBERS_OF_TYPE);
    req.all_extension_numbers_of_type = (char *)"trpctest.v1.EchoRequest";
    resp = ask(&b, &req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL_FATAL(resp->message_response_case, RESP_CASE(ALL_EXTENSION_NUMBERS_RESPONSE));
    CU_ASSERT_STRING_EQUAL(resp->all_extension_numbers_response->base_type_name,
                           "trpctest.v1.EchoRequest");
    CU_ASSERT_EQUAL(resp->all_extension_numbers_response->n_extension_number, 0);
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);

    CU_ASSERT_EQUAL(bidi_close(&b), GRPC_STATUS_OK);
    ts_stop(&t);
}

static void test_reflection_v1alpha(void)
{
    check_reflection("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
}

static void test_reflection_v1(void)
{
    check_reflection("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
}

/* The v1 answer parses as v1 (not only as v1alpha). */
static void test_reflection_v1_types(void)
{
    ts_server t;
    bidi b;
    Grpc__Reflection__V1__ServerReflectionRequest req =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    Grpc__Reflection__V1__ServerReflectionResponse *resp;

    CU_ASSERT_FATAL(ts_start(&t, NULL) == 0);
    CU_ASSERT_FATAL(
        bidi_open(&b, t.target, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo") == 0);
    req.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    req.list_services = (char *)"";
    resp = (Grpc__Reflection__V1__ServerReflectionResponse *)bidi_ask(
        &b, &req.base, &grpc__reflection__v1__server_reflection_response__descriptor);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(
        resp->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
    CU_ASSERT_EQUAL(resp->list_services_response->n_service, 4);
    grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
    CU_ASSERT_EQUAL(bidi_close(&b), GRPC_STATUS_OK);
    ts_stop(&t);
}

static CU_TestInfo builtin_tests[] = {
    {"health Check: SERVING, NOT_FOUND, NOT_SERVING", test_health_check_serving_and_not_found},
    {"health Watch sees changes", test_health_watch_sees_changes},
    {"reflection v1alpha", test_reflection_v1alpha},
    {"reflection v1", test_reflection_v1},
    {"reflection v1 answers parse as v1", test_reflection_v1_types},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"trpc built-in services", NULL, NULL, NULL, NULL, builtin_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned int failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures();
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
