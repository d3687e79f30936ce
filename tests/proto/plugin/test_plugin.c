/* test_plugin.c - protoc-gen-trpc (proto/gen/).
 *
 * The stubs of data/my_pkg/v1/{base,common,sample}.proto and of tally.v1 are
 * generated at build time and compiled against protoc-c's output (so their
 * names already match protoc-c's). Here: the macros, service and method
 * descriptors, handler offsets and function types, the embedded
 * FileDescriptorProtos against the bytes of protoc --descriptor_set_out, the
 * generator run in-process on crafted (and broken) requests, and the plugin
 * executable on stdin/stdout.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "google/protobuf/compiler/plugin.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "my_pkg/v1/base.trpc.h"
#include "my_pkg/v1/common.trpc.h"
#include "my_pkg/v1/sample.trpc.h"
#include "tally/v1/command.trpc.h"
#include "tally/v1/events.trpc.h"
#include "tally/v1/query.trpc.h"
#include "tally/v1/subscription.trpc.h"
#include "tally/v1/types.trpc.h"

#include "gen_buf.h"
#include "gen_names.h"
#include "gen_trpc.h"

#define MAX_SET_FILES 64

/* ---- helpers ---- */

struct blob {
    uint8_t *data;
    size_t len;
};

static int read_file(const char *path, struct blob *b)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long size;

    b->data = NULL;
    b->len = 0;
    if (f == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    data = malloc((size_t)size + 1);
    if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size)
        goto fail;
    data[size] = 0; /* usable as a string */
    fclose(f);
    b->data = data;
    b->len = (size_t)size;
    return 0;
fail:
    free(data);
    fclose(f);
    return -1;
}

static int blob_equals(const struct blob *b, const char *s)
{
    return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

/* A FileDescriptorSet from protoc: unpacked, and the raw bytes protoc wrote
 * for each file, split off the wire format by hand (field 1, length
 * delimited) so that the comparison does not go through protobuf-c. */
struct desc_set {
    struct blob file;
    Google__Protobuf__FileDescriptorSet *set;
    size_t n;
    const uint8_t *raw[MAX_SET_FILES];
    size_t raw_len[MAX_SET_FILES];
};

static struct desc_set sample_set;
static struct desc_set tally_set;

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    int shift = 0;

    *v = 0;
    while (*p < end && shift < 64) {
        uint8_t c = *(*p)++;

        *v |= (uint64_t)(c & 0x7f) << shift;
        if ((c & 0x80) == 0)
            return 0;
        shift += 7;
    }
    return -1;
}

static void desc_set_free(struct desc_set *s)
{
    if (s->set != NULL)
        google__protobuf__file_descriptor_set__free_unpacked(s->set, NULL);
    free(s->file.data);
    memset(s, 0, sizeof(*s));
}

static int desc_set_load(struct desc_set *s, const char *path)
{
    const uint8_t *p;
    const uint8_t *end;
    size_t i;

    memset(s, 0, sizeof(*s));
    if (read_file(path, &s->file) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    s->set = google__protobuf__file_descriptor_set__unpack(NULL, s->file.len, s->file.data);
    if (s->set == NULL)
        goto fail;
    p = s->file.data;
    end = p + s->file.len;
    while (p < end) {
        uint64_t tag;
        uint64_t len;

        if (read_varint(&p, end, &tag) != 0 || tag != ((1 << 3) | 2) ||
            read_varint(&p, end, &len) != 0 || len > (uint64_t)(end - p) || s->n == MAX_SET_FILES)
            goto fail;
        s->raw[s->n] = p;
        s->raw_len[s->n] = (size_t)len;
        s->n++;
        p += len;
    }
    if (s->n != s->set->n_file)
        goto fail;
    /* the raw pieces are the unpacked files, in the same order */
    for (i = 0; i < s->n; i++) {
        Google__Protobuf__FileDescriptorProto *f =
            google__protobuf__file_descriptor_proto__unpack(NULL, s->raw_len[i], s->raw[i]);
        int same = f != NULL && f->name != NULL && s->set->file[i]->name != NULL &&
                   strcmp(f->name, s->set->file[i]->name) == 0 && f->source_code_info == NULL;

        if (f != NULL)
            google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
        if (!same)
            goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "%s: not a FileDescriptorSet as expected\n", path);
    desc_set_free(s);
    return -1;
}

static size_t desc_set_find(const struct desc_set *s, const char *name)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (strcmp(s->set->file[i]->name, name) == 0)
            return i;
    return (size_t)-1;
}

/* Marks the transitive imports of file i in mark[]. */
static void desc_set_mark_deps(const struct desc_set *s, size_t i, unsigned char *mark)
{
    const Google__Protobuf__FileDescriptorProto *f = s->set->file[i];
    size_t k;

    for (k = 0; k < f->n_dependency; k++) {
        size_t d = desc_set_find(s, f->dependency[k]);

        CU_ASSERT_FATAL(d != (size_t)-1);
        if (!mark[d]) {
            mark[d] = 1;
            desc_set_mark_deps(s, d, mark);
        }
    }
}

/* fd's bytes are protoc's for the file of that name. */
static void check_blob(const struct desc_set *s, const trpc_file_desc *fd)
{
    size_t i = desc_set_find(s, fd->name);

    CU_ASSERT_FATAL(i != (size_t)-1);
    CU_ASSERT_EQUAL(fd->len, s->raw_len[i]);
    CU_ASSERT(fd->len == s->raw_len[i] && memcmp(fd->data, s->raw[i], fd->len) == 0);
}

/* fd: right bytes, and its deps are exactly the file's transitive imports,
 * each with right bytes and no deps of its own, imports before importers. */
static void check_file_desc(const struct desc_set *s, const trpc_file_desc *fd, const char *name)
{
    unsigned char want[MAX_SET_FILES] = {0};
    unsigned char seen[MAX_SET_FILES] = {0};
    size_t n_want = 0;
    size_t i;
    size_t k;
    size_t idx;

    CU_ASSERT_STRING_EQUAL_FATAL(fd->name, name);
    check_blob(s, fd);
    idx = desc_set_find(s, name);
    CU_ASSERT_FATAL(idx != (size_t)-1);
    desc_set_mark_deps(s, idx, want);
    for (i = 0; i < s->n; i++)
        n_want += want[i];
    CU_ASSERT_EQUAL_FATAL(fd->n_deps, n_want);
    CU_ASSERT_FATAL(n_want == 0 ? fd->deps == NULL : fd->deps != NULL);
    for (i = 0; i < fd->n_deps; i++) {
        const trpc_file_desc *d = fd->deps[i];
        const Google__Protobuf__FileDescriptorProto *dp;

        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        idx = desc_set_find(s, d->name);
        CU_ASSERT_FATAL(idx != (size_t)-1);
        CU_ASSERT(want[idx]);
        CU_ASSERT(!seen[idx]);
        seen[idx] = 1;
        CU_ASSERT_EQUAL(d->n_deps, 0);
        CU_ASSERT_PTR_NULL(d->deps);
        check_blob(s, d);
        /* its own imports came earlier */
        dp = s->set->file[idx];
        for (k = 0; k < dp->n_dependency; k++)
            CU_ASSERT(seen[desc_set_find(s, dp->dependency[k])]);
    }
}

/* sd against the ServiceDescriptorProto of the same name in the set. */
static void check_service(const struct desc_set *s, const trpc_service_desc *sd,
                          const trpc_file_desc *file)
{
    const Google__Protobuf__ServiceDescriptorProto *sp = NULL;
    const Google__Protobuf__FileDescriptorProto *fp = NULL;
    char full[256];
    char path[512];
    size_t i;
    size_t k;

    CU_ASSERT_PTR_EQUAL(sd->file, file);
    for (i = 0; i < s->n && sp == NULL; i++) {
        fp = s->set->file[i];
        for (k = 0; k < fp->n_service; k++) {
            snprintf(full, sizeof(full), "%s.%s", fp->package, fp->service[k]->name);
            if (strcmp(full, sd->full_name) == 0) {
                sp = fp->service[k];
                break;
            }
        }
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
    CU_ASSERT_STRING_EQUAL(fp->name, file->name);
    CU_ASSERT_EQUAL_FATAL(sd->n_methods, sp->n_method);
    for (i = 0; i < sd->n_methods; i++) {
        const trpc_method_desc *m = &sd->methods[i];
        const Google__Protobuf__MethodDescriptorProto *mp = sp->method[i];
        int cs = mp->has_client_streaming && mp->client_streaming;
        int ss = mp->has_server_streaming && mp->server_streaming;
        trpc_method_kind kind = cs ? (ss ? TRPC_BIDI_STREAMING : TRPC_CLIENT_STREAMING)
                                   : (ss ? TRPC_SERVER_STREAMING : TRPC_UNARY);

        CU_ASSERT_STRING_EQUAL(m->name, mp->name);
        snprintf(path, sizeof(path), "/%s/%s", sd->full_name, mp->name);
        CU_ASSERT_STRING_EQUAL(m->path, path);
        CU_ASSERT_EQUAL(m->kind, kind);
        CU_ASSERT_FATAL(m->input != NULL && m->output != NULL);
        CU_ASSERT_EQUAL(m->input->magic, PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
        CU_ASSERT_EQUAL(m->output->magic, PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
        /* protoc-c's descriptor names are full names without the dot */
        CU_ASSERT_STRING_EQUAL(m->input->name, mp->input_type + 1);
        CU_ASSERT_STRING_EQUAL(m->output->name, mp->output_type + 1);
        /* a member (pointer-aligned) exactly for unary and server streaming */
        CU_ASSERT(cs ? m->handler_offset == TRPC_NO_HANDLER
                     : m->handler_offset != TRPC_NO_HANDLER &&
                           m->handler_offset % sizeof(void (*)(void)) == 0);
    }
}

/* ---- names (protoc-c 1.4's rules) ---- */

static int name_is(void (*rule)(struct gen_buf *, const char *), const char *in, const char *want)
{
    struct gen_buf b;
    int ok;

    gen_buf_init(&b);
    rule(&b, in);
    ok = !b.failed && strcmp(gen_buf_str(&b), want) == 0;
    if (!ok)
        fprintf(stderr, "\n  \"%s\" -> \"%s\", want \"%s\"\n", in, gen_buf_str(&b), want);
    gen_buf_cleanup(&b);
    return ok;
}

static void test_names_full_to_c_nested_package_and_message_camel_case(void)
{
    CU_ASSERT(
        name_is(gen_names_full_to_c, ".my_pkg.v1.Outer.Inner_msg", "MyPkg__V1__Outer__InnerMsg"));
    CU_ASSERT(name_is(gen_names_full_to_c, "tally.v1.CommandService", "Tally__V1__CommandService"));
    CU_ASSERT(name_is(gen_names_full_to_c, "my_pkg.v1.Sample_Service", "MyPkg__V1__SampleService"));
    CU_ASSERT(name_is(gen_names_full_to_c, ".Top", "Top"));
    CU_ASSERT(name_is(gen_names_full_to_c, "a__b.c", "AB__C"));
}

static void test_names_full_to_lower_splits_camel_case(void)
{
    CU_ASSERT(name_is(gen_names_full_to_lower, ".my_pkg.v1.Outer.Inner_msg",
                      "my_pkg__v1__outer__inner_msg"));
    CU_ASSERT(
        name_is(gen_names_full_to_lower, "tally.v1.CommandService", "tally__v1__command_service"));
    CU_ASSERT(name_is(gen_names_full_to_lower, "my_pkg.v1.Sample_Service",
                      "my_pkg__v1__sample__service"));
    CU_ASSERT(
        name_is(gen_names_full_to_lower, ".my_pkg.v1.HTTPRequest", "my_pkg__v1__httprequest"));
}

static void test_names_full_to_upper_splits_camel_case(void)
{
    CU_ASSERT(
        name_is(gen_names_full_to_upper, "tally.v1.CommandService", "TALLY__V1__COMMAND_SERVICE"));
    CU_ASSERT(name_is(gen_names_full_to_upper, "my_pkg.v1.Sample_Service",
                      "MY_PKG__V1__SAMPLE__SERVICE"));
}

static void test_names_camel_to_lower_and_upper_methods(void)
{
    CU_ASSERT(name_is(gen_names_camel_to_lower, "OpenAccount", "open_account"));
    CU_ASSERT(name_is(gen_names_camel_to_lower, "SendHTTPRequest", "send_httprequest"));
    CU_ASSERT(name_is(gen_names_camel_to_lower, "getX2Y", "get_x2_y"));
    CU_ASSERT(name_is(gen_names_camel_to_upper, "OpenAccount", "OPEN_ACCOUNT"));
    CU_ASSERT(name_is(gen_names_camel_to_upper, "SendHTTPRequest", "SEND_HTTPREQUEST"));
    CU_ASSERT(name_is(gen_names_to_camel, "inner_msg", "InnerMsg"));
}

static void test_names_path_ident_and_strip_proto(void)
{
    CU_ASSERT(name_is(gen_names_path_ident, "tally/v1/command.proto", "tally_v1_command_proto"));
    CU_ASSERT(name_is(gen_names_path_ident, "a-b/c.d.proto", "a_b_c_d_proto"));
    CU_ASSERT(name_is(gen_names_strip_proto, "a/b/x.proto", "a/b/x"));
    CU_ASSERT(name_is(gen_names_strip_proto, "a/b/x.protodevel", "a/b/x"));
    CU_ASSERT(name_is(gen_names_strip_proto, "a/b/x.txt", "a/b/x.txt"));
}

/* ---- the generated sample stubs ---- */

/* Handlers of the exact types the table declares (a mismatch would not
 * compile with -Werror). */
static grpc_status_code get_inner(trpc_call *call, const MyPkg__V1__Outer *req,
                                  MyPkg__V1__Outer__InnerMsg *resp)
{
    (void)call;
    (void)req;
    (void)resp;
    return GRPC_STATUS_OK;
}

static grpc_status_code ping_at(trpc_call *call, const MyPkg__V1__Ping *req,
                                Google__Protobuf__Timestamp *resp)
{
    (void)call;
    (void)req;
    (void)resp;
    return GRPC_STATUS_OK;
}

static grpc_status_code watch_pongs(trpc_call *call, const MyPkg__V1__Ping *req, trpc_stream *out)
{
    (void)call;
    (void)req;
    (void)out;
    return GRPC_STATUS_OK;
}

static grpc_status_code send_httprequest(trpc_call *call, const MyPkg__V1__HTTPRequest *req,
                                         MyPkg__V1__Pong *resp)
{
    (void)call;
    (void)req;
    (void)resp;
    return GRPC_STATUS_OK;
}

static void test_sample_macros_name_and_paths(void)
{
    CU_ASSERT_STRING_EQUAL(MY_PKG__V1__SAMPLE__SERVICE__NAME, "my_pkg.v1.Sample_Service");
    CU_ASSERT_STRING_EQUAL(MY_PKG__V1__SAMPLE__SERVICE__GET_INNER__PATH,
                           "/my_pkg.v1.Sample_Service/GetInner");
    CU_ASSERT_STRING_EQUAL(MY_PKG__V1__SAMPLE__SERVICE__PING_AT__PATH,
                           "/my_pkg.v1.Sample_Service/PingAt");
    CU_ASSERT_STRING_EQUAL(MY_PKG__V1__SAMPLE__SERVICE__WATCH_PONGS__PATH,
                           "/my_pkg.v1.Sample_Service/WatchPongs");
    CU_ASSERT_STRING_EQUAL(MY_PKG__V1__SAMPLE__SERVICE__UPLOAD_PINGS__PATH,
                           "/my_pkg.v1.Sample_Service/UploadPings");
    CU_ASSERT_STRING_EQUAL(MY_PKG__V1__SAMPLE__SERVICE__CHAT__PATH,
                           "/my_pkg.v1.Sample_Service/Chat");
    CU_ASSERT_STRING_EQUAL(MY_PKG__V1__SAMPLE__SERVICE__SEND_HTTPREQUEST__PATH,
                           "/my_pkg.v1.Sample_Service/SendHTTPRequest");
    CU_ASSERT_STRING_EQUAL(MY_PKG__V1__SINK__NAME, "my_pkg.v1.Sink");
    CU_ASSERT_STRING_EQUAL(MY_PKG__V1__SINK__PUSH__PATH, "/my_pkg.v1.Sink/Push");
    CU_ASSERT_STRING_EQUAL(MY_PKG__V1__SINK__BOTH__PATH, "/my_pkg.v1.Sink/Both");
}

static void expect_method(const trpc_method_desc *m, const char *name, const char *path,
                          trpc_method_kind kind, const ProtobufCMessageDescriptor *in,
                          const ProtobufCMessageDescriptor *out, size_t offset)
{
    CU_ASSERT_STRING_EQUAL(m->name, name);
    CU_ASSERT_STRING_EQUAL(m->path, path);
    CU_ASSERT_EQUAL(m->kind, kind);
    CU_ASSERT_PTR_EQUAL(m->input, in);
    CU_ASSERT_PTR_EQUAL(m->output, out);
    CU_ASSERT_EQUAL(m->handler_offset, offset);
}

static void test_sample_service_desc_methods_descriptors_offsets(void)
{
    const trpc_service_desc *sd = &my_pkg__v1__sample__service__trpc_service;
    const trpc_method_desc *m = sd->methods;

    CU_ASSERT_STRING_EQUAL(sd->full_name, MY_PKG__V1__SAMPLE__SERVICE__NAME);
    CU_ASSERT_PTR_EQUAL(sd->file, &my_pkg_v1_sample_proto__trpc_file);
    CU_ASSERT_EQUAL_FATAL(sd->n_methods, 6);
    expect_method(&m[0], "GetInner", MY_PKG__V1__SAMPLE__SERVICE__GET_INNER__PATH, TRPC_UNARY,
                  &my_pkg__v1__outer__descriptor, &my_pkg__v1__outer__inner_msg__descriptor,
                  offsetof(MyPkg__V1__SampleService_TrpcHandlers, get_inner));
    expect_method(&m[1], "PingAt", MY_PKG__V1__SAMPLE__SERVICE__PING_AT__PATH, TRPC_UNARY,
                  &my_pkg__v1__ping__descriptor, &google__protobuf__timestamp__descriptor,
                  offsetof(MyPkg__V1__SampleService_TrpcHandlers, ping_at));
    expect_method(&m[2], "WatchPongs", MY_PKG__V1__SAMPLE__SERVICE__WATCH_PONGS__PATH,
                  TRPC_SERVER_STREAMING, &my_pkg__v1__ping__descriptor,
                  &my_pkg__v1__pong__descriptor,
                  offsetof(MyPkg__V1__SampleService_TrpcHandlers, watch_pongs));
    expect_method(&m[3], "UploadPings", MY_PKG__V1__SAMPLE__SERVICE__UPLOAD_PINGS__PATH,
                  TRPC_CLIENT_STREAMING, &my_pkg__v1__ping__descriptor,
                  &my_pkg__v1__pong__descriptor, TRPC_NO_HANDLER);
    expect_method(&m[4], "Chat", MY_PKG__V1__SAMPLE__SERVICE__CHAT__PATH, TRPC_BIDI_STREAMING,
                  &my_pkg__v1__outer__inner_msg__descriptor,
                  &my_pkg__v1__outer__inner_msg__descriptor, TRPC_NO_HANDLER);
    expect_method(&m[5], "SendHTTPRequest", MY_PKG__V1__SAMPLE__SERVICE__SEND_HTTPREQUEST__PATH,
                  TRPC_UNARY, &my_pkg__v1__httprequest__descriptor, &my_pkg__v1__pong__descriptor,
                  offsetof(MyPkg__V1__SampleService_TrpcHandlers, send_httprequest));
    /* the same, generically, against protoc's descriptors */
    check_service(&sample_set, sd, &my_pkg_v1_sample_proto__trpc_file);
}

static void test_sample_service_without_handlers_has_placeholder_table(void)
{
    const trpc_service_desc *sd = &my_pkg__v1__sink__trpc_service;

    CU_ASSERT_STRING_EQUAL(sd->full_name, "my_pkg.v1.Sink");
    CU_ASSERT_EQUAL_FATAL(sd->n_methods, 2);
    expect_method(&sd->methods[0], "Push", MY_PKG__V1__SINK__PUSH__PATH, TRPC_CLIENT_STREAMING,
                  &my_pkg__v1__ping__descriptor, &my_pkg__v1__pong__descriptor, TRPC_NO_HANDLER);
    expect_method(&sd->methods[1], "Both", MY_PKG__V1__SINK__BOTH__PATH, TRPC_BIDI_STREAMING,
                  &my_pkg__v1__ping__descriptor, &my_pkg__v1__pong__descriptor, TRPC_NO_HANDLER);
    check_service(&sample_set, sd, &my_pkg_v1_sample_proto__trpc_file);
}

static void test_sample_handler_table_and_functions_have_the_declared_types(void)
{
    MyPkg__V1__SampleService_TrpcHandlers h = {
        .get_inner = get_inner,
        .ping_at = ping_at,
        .watch_pongs = watch_pongs,
        .send_httprequest = send_httprequest,
    };
    int (*reg)(trpc_server *, const MyPkg__V1__SampleService_TrpcHandlers *, void *) =
        my_pkg__v1__sample__service__trpc_register;
    int (*reg_sink)(trpc_server *, const MyPkg__V1__Sink_TrpcHandlers *, void *) =
        my_pkg__v1__sink__trpc_register;
    grpc_status_code (*c_get_inner)(trpc_channel *, const MyPkg__V1__Outer *,
                                    MyPkg__V1__Outer__InnerMsg **, const trpc_call_opts *,
                                    trpc_status *) = my_pkg__v1__sample__service__trpc_get_inner;
    grpc_status_code (*c_ping_at)(trpc_channel *, const MyPkg__V1__Ping *,
                                  Google__Protobuf__Timestamp **, const trpc_call_opts *,
                                  trpc_status *) = my_pkg__v1__sample__service__trpc_ping_at;
    grpc_status_code (*c_send)(trpc_channel *, const MyPkg__V1__HTTPRequest *, MyPkg__V1__Pong **,
                               const trpc_call_opts *, trpc_status *) =
        my_pkg__v1__sample__service__trpc_send_httprequest;
    trpc_client_stream *(*c_watch)(trpc_channel *, const MyPkg__V1__Ping *, const trpc_call_opts *,
                                   trpc_status *) = my_pkg__v1__sample__service__trpc_watch_pongs;
    int (*c_watch_next)(trpc_client_stream *, MyPkg__V1__Pong **, trpc_status *) =
        my_pkg__v1__sample__service__trpc_watch_pongs_next;

    CU_ASSERT(reg != NULL && reg_sink != NULL);
    CU_ASSERT(c_get_inner != NULL && c_ping_at != NULL && c_send != NULL);
    CU_ASSERT(c_watch != NULL && c_watch_next != NULL);
    /* four members, in method order, as the runtime finds them by offset */
    CU_ASSERT_EQUAL(sizeof(h), 4 * sizeof(h.get_inner));
    CU_ASSERT_PTR_EQUAL((const char *)&h +
                            my_pkg__v1__sample__service__trpc_service.methods[2].handler_offset,
                        (const char *)&h.watch_pongs);
}

static void test_sample_file_desc_matches_protoc_with_transitive_imports(void)
{
    const trpc_file_desc *fd = &my_pkg_v1_sample_proto__trpc_file;

    check_file_desc(&sample_set, fd, "my_pkg/v1/sample.proto");
    /* timestamp (direct), base (through common), common (direct) */
    CU_ASSERT_EQUAL_FATAL(fd->n_deps, 3);
    CU_ASSERT_STRING_EQUAL(fd->deps[0]->name, "google/protobuf/timestamp.proto");
    CU_ASSERT_STRING_EQUAL(fd->deps[1]->name, "my_pkg/v1/base.proto");
    CU_ASSERT_STRING_EQUAL(fd->deps[2]->name, "my_pkg/v1/common.proto");
}

static void test_files_without_services_have_file_desc(void)
{
    check_file_desc(&sample_set, &my_pkg_v1_common_proto__trpc_file, "my_pkg/v1/common.proto");
    CU_ASSERT_EQUAL(my_pkg_v1_common_proto__trpc_file.n_deps, 1);
    check_file_desc(&sample_set, &my_pkg_v1_base_proto__trpc_file, "my_pkg/v1/base.proto");
    CU_ASSERT_EQUAL(my_pkg_v1_base_proto__trpc_file.n_deps, 0);
}

/* ---- tally.v1 ---- */

static void test_tally_file_descs_match_protoc(void)
{
    check_file_desc(&tally_set, &tally_v1_types_proto__trpc_file, "tally/v1/types.proto");
    check_file_desc(&tally_set, &tally_v1_events_proto__trpc_file, "tally/v1/events.proto");
    check_file_desc(&tally_set, &tally_v1_command_proto__trpc_file, "tally/v1/command.proto");
    check_file_desc(&tally_set, &tally_v1_query_proto__trpc_file, "tally/v1/query.proto");
    check_file_desc(&tally_set, &tally_v1_subscription_proto__trpc_file,
                    "tally/v1/subscription.proto");
}

static void test_tally_service_descs_match_protoc(void)
{
    size_t i;
    size_t n_services = 0;

    for (i = 0; i < tally_set.n; i++)
        n_services += tally_set.set->file[i]->n_service;
    CU_ASSERT_EQUAL(n_services, 3);
    check_service(&tally_set, &tally__v1__command_service__trpc_service,
                  &tally_v1_command_proto__trpc_file);
    check_service(&tally_set, &tally__v1__query_service__trpc_service,
                  &tally_v1_query_proto__trpc_file);
    check_service(&tally_set, &tally__v1__subscription_service__trpc_service,
                  &tally_v1_subscription_proto__trpc_file);
    CU_ASSERT_STRING_EQUAL(TALLY__V1__COMMAND_SERVICE__OPEN_ACCOUNT__PATH,
                           "/tally.v1.CommandService/OpenAccount");
    CU_ASSERT_EQUAL(tally__v1__command_service__trpc_service.methods[0].handler_offset,
                    offsetof(Tally__V1__CommandService_TrpcHandlers, open_account));
}

/* ---- the generator in-process ---- */

static char sample_name[] = "my_pkg/v1/sample.proto";

/* A request for file_to_generate[0] = *name over files[0..n). */
static void make_request(Google__Protobuf__Compiler__CodeGeneratorRequest *req, char **name,
                         Google__Protobuf__FileDescriptorProto **files, size_t n)
{
    google__protobuf__compiler__code_generator_request__init(req);
    req->n_file_to_generate = 1;
    req->file_to_generate = name;
    req->n_proto_file = n;
    req->proto_file = files;
}

/* The response holds exactly the pair base.trpc.[ch], equal to the files
 * generated at build time. */
static void expect_files_as_built(const Google__Protobuf__Compiler__CodeGeneratorResponse *r,
                                  const char *base)
{
    char name[256];
    char path[512];
    struct blob disk;
    size_t i;

    CU_ASSERT_PTR_NULL(r->error);
    CU_ASSERT(r->has_supported_features && r->supported_features == 1);
    CU_ASSERT_EQUAL_FATAL(r->n_file, 2);
    for (i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "%s.trpc.%c", base, i == 0 ? 'h' : 'c');
        CU_ASSERT_STRING_EQUAL(r->file[i]->name, name);
        snprintf(path, sizeof(path), "%s/%s", PLUGIN_GEN_DIR, name);
        CU_ASSERT_FATAL(read_file(path, &disk) == 0);
        CU_ASSERT(blob_equals(&disk, r->file[i]->content));
        free(disk.data);
    }
}

static void test_gen_in_process_equals_build_output(void)
{
    Google__Protobuf__Compiler__CodeGeneratorRequest req;
    Google__Protobuf__Compiler__CodeGeneratorResponse *r;
    char *name = sample_name;
    char common_name[] = "my_pkg/v1/common.proto";
    char *name2 = common_name;

    make_request(&req, &name, sample_set.set->file, sample_set.set->n_file);
    r = gen_trpc_run(&req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    expect_files_as_built(r, "my_pkg/v1/sample");
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);

    make_request(&req, &name2, sample_set.set->file, sample_set.set->n_file);
    r = gen_trpc_run(&req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    expect_files_as_built(r, "my_pkg/v1/common");
    CU_ASSERT(r->n_file == 2 && strstr(r->file[0]->content, "TrpcHandlers") == NULL);
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
}

/* Runs the generator; expects an error response mentioning `needle`. */
static void expect_error(const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
                         const char *needle)
{
    Google__Protobuf__Compiler__CodeGeneratorResponse *r = gen_trpc_run(req);

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->error);
    if (strstr(r->error, needle) == NULL)
        fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", r->error, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->error, needle));
    CU_ASSERT_EQUAL(r->n_file, 0);
    CU_ASSERT(r->has_supported_features && r->supported_features == 1);
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
}

static void test_gen_unknown_file_to_generate_is_an_error(void)
{
    Google__Protobuf__Compiler__CodeGeneratorRequest req;
    char missing[] = "nope/missing.proto";
    char *name = missing;

    make_request(&req, &name, sample_set.set->file, sample_set.set->n_file);
    expect_error(&req, "nope/missing.proto");
}

static void test_gen_missing_import_is_an_error(void)
{
    Google__Protobuf__Compiler__CodeGeneratorRequest req;
    Google__Protobuf__FileDescriptorProto *files[MAX_SET_FILES];
    char *name = sample_name;
    size_t n = 0;
    size_t i;

    for (i = 0; i < sample_set.n; i++)
        if (strcmp(sample_set.set->file[i]->name, "my_pkg/v1/base.proto") != 0)
            files[n++] = sample_set.set->file[i];
    CU_ASSERT_EQUAL_FATAL(n, sample_set.n - 1);
    make_request(&req, &name, files, n);
    expect_error(&req, "my_pkg/v1/base.proto");
}

/* A shallow copy of sample.proto whose first method is changed by `edit`;
 * everything lives in *c (no allocation). */
struct sample_copy {
    Google__Protobuf__FileDescriptorProto file;
    Google__Protobuf__ServiceDescriptorProto svc;
    Google__Protobuf__ServiceDescriptorProto *svcs[8];
    Google__Protobuf__MethodDescriptorProto method;
    Google__Protobuf__MethodDescriptorProto *methods[16];
    Google__Protobuf__FileDescriptorProto *files[MAX_SET_FILES];
};

static void copy_sample(struct sample_copy *c)
{
    size_t i = desc_set_find(&sample_set, sample_name);
    const Google__Protobuf__FileDescriptorProto *orig;

    CU_ASSERT_FATAL(i != (size_t)-1);
    orig = sample_set.set->file[i];
    CU_ASSERT_FATAL(orig->n_service <= 8 && orig->service[0]->n_method <= 16);
    c->file = *orig;
    c->svc = *orig->service[0];
    c->method = *orig->service[0]->method[0];
    memcpy(c->svcs, orig->service, orig->n_service * sizeof(*c->svcs));
    memcpy(c->methods, orig->service[0]->method, c->svc.n_method * sizeof(*c->methods));
    c->methods[0] = &c->method;
    c->svc.method = c->methods;
    c->svcs[0] = &c->svc;
    c->file.service = c->svcs;
    memcpy(c->files, sample_set.set->file, sample_set.n * sizeof(*c->files));
    c->files[i] = &c->file;
}

static void test_gen_unknown_method_type_is_an_error(void)
{
    Google__Protobuf__Compiler__CodeGeneratorRequest req;
    struct sample_copy c;
    char type[] = ".my_pkg.v1.NoSuchMessage";
    char *name = sample_name;

    copy_sample(&c);
    c.method.input_type = type;
    make_request(&req, &name, c.files, sample_set.n);
    expect_error(&req, ".my_pkg.v1.NoSuchMessage");
}

static void test_gen_method_named_trpc_is_an_error(void)
{
    Google__Protobuf__Compiler__CodeGeneratorRequest req;
    struct sample_copy c;
    char method[] = "TrpcRegister";
    char *name = sample_name;

    copy_sample(&c);
    c.method.name = method;
    make_request(&req, &name, c.files, sample_set.n);
    expect_error(&req, "TrpcRegister");
}

static void test_gen_file_name_without_c_identifier_is_an_error(void)
{
    Google__Protobuf__Compiler__CodeGeneratorRequest req;
    struct sample_copy c;
    char bad[] = "9lives.proto";
    char *name = bad;

    copy_sample(&c);
    c.file.name = bad;
    make_request(&req, &name, c.files, sample_set.n);
    expect_error(&req, "9lives.proto");
}

static void test_gen_parameter_is_an_error(void)
{
    Google__Protobuf__Compiler__CodeGeneratorRequest req;
    char param[] = "lite";
    char *name = sample_name;

    make_request(&req, &name, sample_set.set->file, sample_set.set->n_file);
    req.parameter = param;
    expect_error(&req, "lite");
}

/* ---- the executable ---- */

/* Runs the plugin with `in` on stdin; its stdout goes to *out. Returns the
 * exit status, or -1 if it could not run. */
static int run_plugin(const uint8_t *in, size_t in_len, struct blob *out)
{
    char in_path[] = "/tmp/test_plugin_in.XXXXXX";
    char out_path[] = "/tmp/test_plugin_out.XXXXXX";
    int in_fd = mkstemp(in_path);
    int out_fd = mkstemp(out_path);
    int status = -1;
    pid_t pid;

    out->data = NULL;
    out->len = 0;
    if (in_fd < 0 || out_fd < 0)
        goto out;
    if (write(in_fd, in, in_len) != (ssize_t)in_len || lseek(in_fd, 0, SEEK_SET) != 0)
        goto out;
    pid = fork();
    if (pid == 0) {
        if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0)
            _exit(126);
        execl(PLUGIN_EXE, PLUGIN_EXE, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        goto out;
    status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (read_file(out_path, out) != 0)
        status = -1;
out:
    if (in_fd >= 0) {
        close(in_fd);
        unlink(in_path);
    }
    if (out_fd >= 0) {
        close(out_fd);
        unlink(out_path);
    }
    return status;
}

static void test_exe_garbage_stdin_gives_error_response(void)
{
    static const uint8_t garbage[] = {0x0a, 0x05, 'a', 'b'}; /* truncated field 1 */
    Google__Protobuf__Compiler__CodeGeneratorResponse *r;
    struct blob out;

    CU_ASSERT_EQUAL_FATAL(run_plugin(garbage, sizeof(garbage), &out), 0);
    r = google__protobuf__compiler__code_generator_response__unpack(NULL, out.len, out.data);
    free(out.data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL(r->error);
    CU_ASSERT_EQUAL(r->n_file, 0);
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
}

static void test_exe_request_on_stdin_gives_build_output(void)
{
    Google__Protobuf__Compiler__CodeGeneratorRequest req;
    Google__Protobuf__Compiler__CodeGeneratorResponse *r;
    char *name = sample_name;
    uint8_t *in;
    size_t len;
    struct blob out;
    int status;

    make_request(&req, &name, sample_set.set->file, sample_set.set->n_file);
    len = google__protobuf__compiler__code_generator_request__get_packed_size(&req);
    in = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    google__protobuf__compiler__code_generator_request__pack(&req, in);
    status = run_plugin(in, len, &out);
    free(in);
    CU_ASSERT_EQUAL_FATAL(status, 0);
    r = google__protobuf__compiler__code_generator_response__unpack(NULL, out.len, out.data);
    free(out.data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    expect_files_as_built(r, "my_pkg/v1/sample");
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
}

/* ---- main ---- */

static int suite_init(void)
{
    if (desc_set_load(&sample_set, SAMPLE_DESC) != 0)
        return -1;
    if (desc_set_load(&tally_set, TALLY_DESC) != 0) {
        desc_set_free(&sample_set);
        return -1;
    }
    return 0;
}

static int suite_cleanup(void)
{
    desc_set_free(&sample_set);
    desc_set_free(&tally_set);
    return 0;
}

static CU_TestInfo names_tests[] = {
    {"full_to_c: nested package and message",
     test_names_full_to_c_nested_package_and_message_camel_case},
    {"full_to_lower splits CamelCase", test_names_full_to_lower_splits_camel_case},
    {"full_to_upper splits CamelCase", test_names_full_to_upper_splits_camel_case},
    {"camel_to_lower/upper of methods", test_names_camel_to_lower_and_upper_methods},
    {"path ident and StripProto", test_names_path_ident_and_strip_proto},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo stubs_tests[] = {
    {"sample: name and path macros", test_sample_macros_name_and_paths},
    {"sample: service desc", test_sample_service_desc_methods_descriptors_offsets},
    {"sample: service without handlers",
     test_sample_service_without_handlers_has_placeholder_table},
    {"sample: function and handler types",
     test_sample_handler_table_and_functions_have_the_declared_types},
    {"sample: file desc == protoc, transitive deps",
     test_sample_file_desc_matches_protoc_with_transitive_imports},
    {"files without services", test_files_without_services_have_file_desc},
    {"tally.v1: file descs == protoc", test_tally_file_descs_match_protoc},
    {"tally.v1: service descs", test_tally_service_descs_match_protoc},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo gen_tests[] = {
    {"in-process output == build output", test_gen_in_process_equals_build_output},
    {"unknown file_to_generate", test_gen_unknown_file_to_generate_is_an_error},
    {"missing import", test_gen_missing_import_is_an_error},
    {"unknown method type", test_gen_unknown_method_type_is_an_error},
    {"method named Trpc*", test_gen_method_named_trpc_is_an_error},
    {"file name without C identifier", test_gen_file_name_without_c_identifier_is_an_error},
    {"parameter", test_gen_parameter_is_an_error},
    {"exe: garbage stdin", test_exe_garbage_stdin_gives_error_response},
    {"exe: request on stdin", test_exe_request_on_stdin_gives_build_output},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"names", NULL, NULL, NULL, NULL, names_tests},
    {"stubs", suite_init, suite_cleanup, NULL, NULL, stubs_tests},
    {"generator", suite_init, suite_cleanup, NULL, NULL, gen_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    unsigned int failed = 1;

    if (CU_initialize_registry() == CUE_SUCCESS && CU_register_suites(suites) == CUE_SUCCESS) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_failures();
        if (CU_get_number_of_suites_failed() != 0)
            failed++;
    }
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
