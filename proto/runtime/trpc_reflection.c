/* trpc_reflection.c - gRPC server reflection (grpc.reflection.v1alpha and
 * v1: the messages are wire-identical, so both use the v1alpha types).
 *
 * At start the serialized FileDescriptorProtos of every served file (and
 * their imports) are indexed by file name, by symbol (messages, enums,
 * services, methods, extensions, nested ones too) and by extension. Each
 * ServerReflectionInfo call is a bidi loop on its CQ thread: receive a
 * request, send the answer, receive the next, until the client half-closes
 * (status OK). Lookups are in memory and never block. */
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

#include "trpc_internal.h"

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest refl_request;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse refl_response;

enum sym_kind { SYM_MESSAGE, SYM_OTHER };

struct refl_file {
    const char *name; /* borrowed from the trpc_file_desc (static) */
    const uint8_t *data;
    size_t len;
    char **deps; /* direct imports, by name */
    size_t n_deps;
};

struct refl_symbol {
    char *name; /* fully qualified, no leading dot */
    size_t file;
    enum sym_kind kind;
};

struct refl_ext {
    char *extendee; /* no leading dot */
    int32_t number;
    size_t file;
};

struct trpc_reflection {
    struct refl_file *files;
    size_t n_files, cap_files;
    struct refl_symbol *syms;
    size_t n_syms, cap_syms;
    struct refl_ext *exts;
    size_t n_exts, cap_exts;
    char **services; /* full names, in order of addition */
    size_t n_services;
};

/* ---- the index ---- */

static int grow(void **p, size_t *cap, size_t n, size_t elem)
{
    void *q;
    size_t ncap;

    if (n < *cap)
        return 0;
    ncap = *cap ? 2 * *cap : 16;
    q = realloc(*p, ncap * elem);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = ncap;
    return 0;
}

static char *join(const char *scope, const char *name)
{
    size_t a = scope != NULL ? strlen(scope) : 0, b = strlen(name);
    char *s = malloc(a + b + 2);

    if (s == NULL)
        return NULL;
    if (a > 0) {
        memcpy(s, scope, a);
        s[a++] = '.';
    }
    memcpy(s + a, name, b + 1);
    return s;
}

static int add_symbol(trpc_reflection *r, char *name, size_t file, enum sym_kind kind)
{
    if (name == NULL || grow((void **)&r->syms, &r->cap_syms, r->n_syms, sizeof(*r->syms)) != 0) {
        free(name);
        return -1;
    }
    r->syms[r->n_syms++] = (struct refl_symbol){name, file, kind};
    return 0;
}

static int add_ext(trpc_reflection *r, const Google__Protobuf__FieldDescriptorProto *f, size_t file)
{
    const char *e = f->extendee != NULL ? f->extendee : "";
    char *copy;

    if (e[0] == '.')
        e++;
    copy = strdup(e);
    if (copy == NULL || grow((void **)&r->exts, &r->cap_exts, r->n_exts, sizeof(*r->exts)) != 0) {
        free(copy);
        return -1;
    }
    r->exts[r->n_exts++] = (struct refl_ext){copy, f->number, file};
    return 0;
}

static int index_fields(trpc_reflection *r, const char *scope, size_t n,
                        Google__Protobuf__FieldDescriptorProto *const *ext, size_t file)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (add_symbol(r, join(scope, ext[i]->name), file, SYM_OTHER) != 0 ||
            add_ext(r, ext[i], file) != 0)
            return -1;
    }
    return 0;
}

static int index_enums(trpc_reflection *r, const char *scope, size_t n,
                       Google__Protobuf__EnumDescriptorProto *const *en, size_t file)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (add_symbol(r, join(scope, en[i]->name), file, SYM_OTHER) != 0)
            return -1;
    return 0;
}

static int index_messages(trpc_reflection *r, const char *scope, size_t n,
                          Google__Protobuf__DescriptorProto *const *msgs, size_t file)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const Google__Protobuf__DescriptorProto *m = msgs[i];
        char *name = join(scope, m->name);

        if (add_symbol(r, name, file, SYM_MESSAGE) != 0)
            return -1;
        /* name now belongs to the index and lives as long as it */
        if (index_messages(r, name, m->n_nested_type, m->nested_type, file) != 0 ||
            index_enums(r, name, m->n_enum_type, m->enum_type, file) != 0 ||
            index_fields(r, name, m->n_extension, m->extension, file) != 0)
            return -1;
    }
    return 0;
}

static int index_file(trpc_reflection *r, size_t fi)
{
    struct refl_file *f = &r->files[fi];
    Google__Protobuf__FileDescriptorProto *fd;
    const char *pkg;
    size_t i, j;
    int rc = -1;

    fd = google__protobuf__file_descriptor_proto__unpack(NULL, f->len, f->data);
    if (fd == NULL) {
        TRPC_LOG_ERROR("trpc: reflection: %s does not parse", f->name);
        return 0; /* served by name only */
    }
    pkg = fd->package != NULL && fd->package[0] != '\0' ? fd->package : NULL;
    f->deps = calloc(fd->n_dependency > 0 ? fd->n_dependency : 1, sizeof(char *));
    if (f->deps == NULL)
        goto out;
    for (i = 0; i < fd->n_dependency; i++) {
        f->deps[i] = strdup(fd->dependency[i]);
        if (f->deps[i] == NULL)
            goto out;
        f->n_deps++;
    }
    if (index_messages(r, pkg, fd->n_message_type, fd->message_type, fi) != 0 ||
        index_enums(r, pkg, fd->n_enum_type, fd->enum_type, fi) != 0 ||
        index_fields(r, pkg, fd->n_extension, fd->extension, fi) != 0)
        goto out;
    for (i = 0; i < fd->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
        char *sname = join(pkg, s->name);

        if (add_symbol(r, sname, fi, SYM_OTHER) != 0)
            goto out;
        for (j = 0; j < s->n_method; j++)
            if (add_symbol(r, join(sname, s->method[j]->name), fi, SYM_OTHER) != 0)
                goto out;
    }
    rc = 0;
out:
    google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
    return rc;
}

static long find_file(const trpc_reflection *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->n_files; i++)
        if (strcmp(r->files[i].name, name) == 0)
            return (long)i;
    return -1;
}

static int add_file(trpc_reflection *r, const trpc_file_desc *fd)
{
    if (fd == NULL || find_file(r, fd->name) >= 0)
        return 0;
    if (grow((void **)&r->files, &r->cap_files, r->n_files, sizeof(*r->files)) != 0)
        return -1;
    r->files[r->n_files++] = (struct refl_file){fd->name, fd->data, fd->len, NULL, 0};
    return 0;
}

static int sym_cmp(const void *a, const void *b)
{
    return strcmp(((const struct refl_symbol *)a)->name, ((const struct refl_symbol *)b)->name);
}

trpc_reflection *trpc_reflection_new(const trpc_service_desc *const *svcs, size_t n)
{
    trpc_reflection *r = calloc(1, sizeof(*r));
    size_t i, j;

    if (r == NULL)
        return NULL;
    r->services = calloc(n > 0 ? n : 1, sizeof(char *));
    if (r->services == NULL)
        goto fail;
    for (i = 0; i < n; i++) {
        const trpc_file_desc *f = svcs[i]->file;

        r->services[i] = strdup(svcs[i]->full_name);
        if (r->services[i] == NULL)
            goto fail;
        r->n_services++;
        if (add_file(r, f) != 0)
            goto fail;
        for (j = 0; f != NULL && j < f->n_deps; j++)
            if (add_file(r, f->deps[j]) != 0)
                goto fail;
    }
    for (i = 0; i < r->n_files; i++)
        if (index_file(r, i) != 0)
            goto fail;
    qsort(r->syms, r->n_syms, sizeof(*r->syms), sym_cmp);
    return r;
fail:
    trpc_reflection_free(r);
    return NULL;
}

void trpc_reflection_free(trpc_reflection *r)
{
    size_t i, j;

    if (r == NULL)
        return;
    for (i = 0; i < r->n_files; i++) {
        for (j = 0; j < r->files[i].n_deps; j++)
            free(r->files[i].deps[j]);
        free(r->files[i].deps);
    }
    for (i = 0; i < r->n_syms; i++)
        free(r->syms[i].name);
    for (i = 0; i < r->n_exts; i++)
        free(r->exts[i].extendee);
    for (i = 0; i < r->n_services; i++)
        free(r->services[i]);
    free(r->files);
    free(r->syms);
    free(r->exts);
    free(r->services);
    free(r);
}

static const struct refl_symbol *find_symbol(const trpc_reflection *r, const char *name)
{
    struct refl_symbol key;

    if (name[0] == '.')
        name++;
    key.name = (char *)name;
    return bsearch(&key, r->syms, r->n_syms, sizeof(*r->syms), sym_cmp);
}

/* ---- answers ---- */

/* Appends file fi and, depth first, everything it imports (each once). */
static void closure(const trpc_reflection *r, size_t fi, unsigned char *seen, size_t *order,
                    size_t *n)
{
    size_t i;
    long d;

    if (seen[fi])
        return;
    seen[fi] = 1;
    order[(*n)++] = fi;
    for (i = 0; i < r->files[fi].n_deps; i++) {
        d = find_file(r, r->files[fi].deps[i]);
        if (d >= 0)
            closure(r, (size_t)d, seen, order, n);
    }
}

/* Fills fdr with file fi and its transitive imports; arrays malloc'd into
 * *blobs (caller frees). */
static int file_answer(const trpc_reflection *r, size_t fi,
                       Grpc__Reflection__V1alpha__FileDescriptorResponse *fdr,
                       ProtobufCBinaryData **blobs)
{
    unsigned char *seen = calloc(r->n_files, 1);
    size_t *order = calloc(r->n_files, sizeof(size_t));
    size_t n = 0, i;
    int rc = -1;

    *blobs = calloc(r->n_files, sizeof(**blobs));
    if (seen == NULL || order == NULL || *blobs == NULL)
        goto out;
    closure(r, fi, seen, order, &n);
    for (i = 0; i < n; i++) {
        (*blobs)[i].data = (uint8_t *)r->files[order[i]].data;
        (*blobs)[i].len = r->files[order[i]].len;
    }
    fdr->n_file_descriptor_proto = n;
    fdr->file_descriptor_proto = *blobs;
    rc = 0;
out:
    free(seen);
    free(order);
    return rc;
}

/* Frees the unknown fields protobuf-c kept in m and in the messages inside
 * it. Echoed back as original_request they would be re-packed, and an
 * overlong tag of field number 0 would come out as a bare 0x00 that no
 * client can parse. */
static void drop_unknown_fields(ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        free(m->unknown_fields[i].data);
    free(m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
    for (unsigned i = 0; i < d->n_fields && depth < 16; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        ProtobufCMessage *sub;

        if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
            continue;
        sub = *(ProtobufCMessage **)((char *)m + f->offset);
        if (sub)
            drop_unknown_fields(sub, depth + 1);
    }
}

int trpc_reflection_answer(const trpc_reflection *r, const uint8_t *req, size_t req_len,
                           uint8_t **resp, size_t *resp_len)
{
    refl_request *rq =
        grpc__reflection__v1alpha__server_reflection_request__unpack(NULL, req_len, req);
    refl_response rs = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__FileDescriptorResponse fdr =
        GRPC__REFLECTION__V1ALPHA__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ListServiceResponse lsr =
        GRPC__REFLECTION__V1ALPHA__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ExtensionNumberResponse enr =
        GRPC__REFLECTION__V1ALPHA__EXTENSION_NUMBER_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ErrorResponse err = GRPC__REFLECTION__V1ALPHA__ERROR_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ServiceResponse *svc = NULL, **svcp = NULL;
    ProtobufCBinaryData *blobs = NULL;
    int32_t *numbers = NULL;
    const struct refl_symbol *sym;
    const char *errmsg = "not found";
    long fi = -1;
    size_t i, n;
    int rc = -1;

    if (rq == NULL)
        return -1;
    drop_unknown_fields(&rq->base, 0);
    rs.valid_host = rq->host;
    rs.original_request = rq;
    err.error_code = GRPC_STATUS_NOT_FOUND;
    switch (rq->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        fi = find_file(r, rq->file_by_filename);
        errmsg = "file not found";
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        sym = find_symbol(r, rq->file_containing_symbol);
        fi = sym != NULL ? (long)sym->file : -1;
        errmsg = "symbol not found";
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION: {
        const Grpc__Reflection__V1alpha__ExtensionRequest *er = rq->file_containing_extension;
        const char *type = er != NULL ? er->containing_type : "";

        if (type[0] == '.')
            type++;
        for (i = 0; er != NULL && i < r->n_exts; i++)
            if (r->exts[i].number == er->extension_number && strcmp(r->exts[i].extendee, type) == 0)
                fi = (long)r->exts[i].file;
        errmsg = "extension not found";
        break;
    }
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE: {
        const char *type = rq->all_extension_numbers_of_type;

        sym = find_symbol(r, type);
        if (sym == NULL || sym->kind != SYM_MESSAGE) {
            errmsg = "type not found";
            break;
        }
        if (type[0] == '.')
            type++;
        numbers = calloc(r->n_exts > 0 ? r->n_exts : 1, sizeof(*numbers));
        if (numbers == NULL)
            goto out;
        for (i = 0, n = 0; i < r->n_exts; i++)
            if (strcmp(r->exts[i].extendee, type) == 0)
                numbers[n++] = r->exts[i].number;
        enr.base_type_name = (char *)type;
        enr.n_extension_number = n;
        enr.extension_number = numbers;
        rs.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
        rs.all_extension_numbers_response = &enr;
        break;
    }
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        svc = calloc(r->n_services > 0 ? r->n_services : 1, sizeof(*svc));
        svcp = calloc(r->n_services > 0 ? r->n_services : 1, sizeof(*svcp));
        if (svc == NULL || svcp == NULL)
            goto out;
        for (i = 0; i < r->n_services; i++) {
            grpc__reflection__v1alpha__service_response__init(&svc[i]);
            svc[i].name = r->services[i];
            svcp[i] = &svc[i];
        }
        lsr.n_service = r->n_services;
        lsr.service = svcp;
        rs.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        rs.list_services_response = &lsr;
        break;
    default:
        err.error_code = GRPC_STATUS_INVALID_ARGUMENT;
        errmsg = "empty reflection request";
        break;
    }
    if (fi >= 0) {
        if (file_answer(r, (size_t)fi, &fdr, &blobs) != 0)
            goto out;
        rs.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        rs.file_descriptor_response = &fdr;
    }
    if (rs.message_response_case ==
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET) {
        rs.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        err.error_message = (char *)errmsg; /* only read by pack */
        rs.error_response = &err;
    }
    n = grpc__reflection__v1alpha__server_reflection_response__get_packed_size(&rs);
    *resp = malloc(n > 0 ? n : 1);
    if (*resp == NULL)
        goto out;
    *resp_len = grpc__reflection__v1alpha__server_reflection_response__pack(&rs, *resp);
    rc = 0;
out:
    free(blobs);
    free(numbers);
    free(svc);
    free(svcp);
    grpc__reflection__v1alpha__server_reflection_request__free_unpacked(rq, NULL);
    return rc;
}

/* ---- the bidi call: one operation in flight at a time, each holding a
 * reference, so the chain keeps the call alive until it ends ---- */

static void post_recv(trpc_call *c);

static void on_status(trpc_call *c, int success)
{
    (void)success;
    trpc_call_unref(c);
}

static void send_status(trpc_call *c, grpc_status_code code, const char *msg)
{
    grpc_slice details = grpc_slice_from_static_string(msg);
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (!c->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->md_sent = 1;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &details;
    trpc_call_start(c, ops, n, &c->t_aux, on_status);
}

static void on_sent(trpc_call *c, int success)
{
    grpc_byte_buffer_destroy(c->out);
    c->out = NULL;
    if (success)
        post_recv(c);
    trpc_call_unref(c);
}

static void on_recv(trpc_call *c, int success)
{
    const trpc_reflection *r = c->m->service_data;
    void *in = NULL;
    size_t in_len = 0, out_len = 0;
    uint8_t *out = NULL;
    grpc_op op;

    if (!success) /* the call is over */
        goto done;
    if (c->payload == NULL) { /* the client half-closed */
        send_status(c, GRPC_STATUS_OK, "");
        goto done;
    }
    if (trpc_read_all(c->payload, &in, &in_len) != 0 ||
        trpc_reflection_answer(r, in, in_len, &out, &out_len) != 0) {
        send_status(c, GRPC_STATUS_INVALID_ARGUMENT, "invalid reflection request");
        goto done;
    }
    c->out = trpc_pack_raw(out, out_len);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = c->out;
    trpc_call_start(c, &op, 1, &c->t_aux, on_sent);
done:
    if (c->payload != NULL) {
        grpc_byte_buffer_destroy(c->payload);
        c->payload = NULL;
    }
    free(in);
    free(out);
    trpc_call_unref(c);
}

static void post_recv(trpc_call *c)
{
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (!c->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->md_sent = 1;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &c->payload;
    trpc_call_start(c, ops, n, &c->t_done, on_recv);
}

void trpc_reflection_serve(trpc_call *c)
{
    trpc_server_track(c->srv, c);
    post_recv(c);
    trpc_call_unref(c); /* the owner's reference: the chain holds its own */
}
