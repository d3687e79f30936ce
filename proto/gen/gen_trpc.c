/* gen_trpc.c - emits x.trpc.h / x.trpc.c for protoc-gen-trpc.
 *
 * Every name, table and string made while generating is owned by a
 * `struct gen` and freed with it: the plugin must not leak, since an ASan
 * build of it runs inside protoc. Out of memory is sticky (gen_buf.failed,
 * gen.oom) and checked once per file, so the emitters need no error paths.
 */
#include "gen_trpc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"

#include "gen_buf.h"
#include "gen_names.h"

/* The values of trpc.h's trpc_method_kind, by name in the output. */
static const char *const kind_names[] = {
    "TRPC_UNARY",
    "TRPC_SERVER_STREAMING",
    "TRPC_CLIENT_STREAMING",
    "TRPC_BIDI_STREAMING",
};
enum { KIND_UNARY = 0, KIND_SERVER_STREAMING = 1, KIND_CLIENT_STREAMING = 2, KIND_BIDI = 3 };

#define NOT_FOUND ((size_t)-1)

/* A message type of the request: where protoc-c declares its C type. */
struct msg_type {
    const char *full_name; /* ".my_pkg.v1.Outer.Inner_msg" */
    size_t file;           /* index in req->proto_file */
};

struct method_info {
    const char *name;     /* "OpenAccount" */
    int kind;             /* KIND_* */
    const char *lower;    /* "open_account": protoc-c's CamelToLower */
    const char *upper;    /* "OPEN_ACCOUNT" */
    const char *in_c;     /* "Tally__V1__OpenAccountRequest" */
    const char *in_lower; /* "tally__v1__open_account_request" */
    const char *out_c;    /* ... */
    const char *out_lower;
};

struct service_info {
    const char *full;  /* "tally.v1.CommandService" */
    const char *c;     /* "Tally__V1__CommandService" */
    const char *lower; /* "tally__v1__command_service" */
    const char *upper; /* "TALLY__V1__COMMAND_SERVICE" */
    size_t n_methods;
    struct method_info *methods;
    size_t n_handlers; /* unary + server-streaming methods */
};

struct file_info {
    size_t index;       /* in req->proto_file */
    const char *name;   /* "a/b/x.proto" */
    const char *base;   /* "a/b/x" */
    const char *ident;  /* "a_b_x_proto" */
    unsigned char *dep; /* dep[i]: proto_file[i] is a transitive import */
    unsigned char *inc; /* inc[i]: the methods use types of proto_file[i] */
    size_t n_services;
    struct service_info *services;
};

struct gen {
    const Google__Protobuf__Compiler__CodeGeneratorRequest *req;
    struct msg_type *types;
    size_t n_types;
    size_t cap_types;
    void **owned; /* freed by gen_cleanup */
    size_t n_owned;
    size_t cap_owned;
    struct gen_buf err; /* the first error, for the response */
    int oom;
};

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static void gen_cleanup(struct gen *g)
{
    size_t i;

    for (i = 0; i < g->n_owned; i++)
        free(g->owned[i]);
    free(g->owned);
    free(g->types);
    gen_buf_cleanup(&g->err);
}

/* Records the first error (later ones are consequences). */
static void gen_fail(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gen_fail(struct gen *g, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];

    if (g->err.len != 0 || g->err.failed)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gen_buf_puts(&g->err, msg);
}

static int gen_failed(const struct gen *g)
{
    return g->oom || g->err.len != 0 || g->err.failed;
}

/* Makes p owned by g (freed by gen_cleanup); frees it on OOM. Returns p or
 * NULL. */
static void *gen_own(struct gen *g, void *p)
{
    if (p == NULL) {
        g->oom = 1;
        return NULL;
    }
    if (g->n_owned == g->cap_owned) {
        size_t cap = g->cap_owned != 0 ? g->cap_owned * 2 : 64;
        void **v = realloc(g->owned, cap * sizeof(*v));

        if (v == NULL) {
            free(p);
            g->oom = 1;
            return NULL;
        }
        g->owned = v;
        g->cap_owned = cap;
    }
    g->owned[g->n_owned++] = p;
    return p;
}

/* Zeroed memory owned by g; NULL on OOM (n == 0 gives a valid pointer). */
static void *gen_calloc(struct gen *g, size_t n, size_t size)
{
    return gen_own(g, calloc(n != 0 ? n : 1, size));
}

/* The buffer's contents as a string owned by g; "" on OOM (g->oom set). */
static const char *gen_keep(struct gen *g, struct gen_buf *b)
{
    const char *s = gen_own(g, gen_buf_steal(b));

    return s != NULL ? s : "";
}

static const char *gen_strf(struct gen *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *gen_strf(struct gen *g, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && (s = malloc((size_t)n + 1)) != NULL) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    s = gen_own(g, s);
    return s != NULL ? s : "";
}

/* rule(name) as a string owned by g. */
static const char *gen_name(struct gen *g, void (*rule)(struct gen_buf *, const char *),
                            const char *name)
{
    struct gen_buf b;

    gen_buf_init(&b);
    rule(&b, name);
    return gen_keep(g, &b);
}

/* ---- the request's files and message types ---- */

static size_t find_file(const struct gen *g, const char *name)
{
    size_t i;

    for (i = 0; i < g->req->n_proto_file; i++)
        if (strcmp(str_or_empty(g->req->proto_file[i]->name), name) == 0)
            return i;
    return NOT_FOUND;
}

static void add_types(struct gen *g, size_t file, const char *prefix, size_t n,
                      Google__Protobuf__DescriptorProto *const *msgs)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const char *full = gen_strf(g, "%s.%s", prefix, str_or_empty(msgs[i]->name));

        if (g->n_types == g->cap_types) {
            size_t cap = g->cap_types != 0 ? g->cap_types * 2 : 64;
            struct msg_type *v = realloc(g->types, cap * sizeof(*v));

            if (v == NULL) {
                g->oom = 1;
                return;
            }
            g->types = v;
            g->cap_types = cap;
        }
        g->types[g->n_types].full_name = full;
        g->types[g->n_types].file = file;
        g->n_types++;
        add_types(g, file, full, msgs[i]->n_nested_type, msgs[i]->nested_type);
    }
}

/* Indexes every message type of every file of the request. */
static void index_types(struct gen *g)
{
    size_t i;

    for (i = 0; i < g->req->n_proto_file; i++) {
        const Google__Protobuf__FileDescriptorProto *f = g->req->proto_file[i];
        const char *pkg = str_or_empty(f->package);
        const char *prefix = *pkg != '\0' ? gen_strf(g, ".%s", pkg) : "";

        add_types(g, i, prefix, f->n_message_type, f->message_type);
    }
}

static const struct msg_type *find_type(const struct gen *g, const char *full_name)
{
    size_t i;

    for (i = 0; i < g->n_types; i++)
        if (strcmp(g->types[i].full_name, full_name) == 0)
            return &g->types[i];
    return NULL;
}

/* Marks every transitive import of proto_file[fi] in dep[]. 0, or -1 (error
 * recorded) when an import is missing from the request. */
static int mark_deps(struct gen *g, size_t fi, unsigned char *dep)
{
    const Google__Protobuf__FileDescriptorProto *f = g->req->proto_file[fi];
    size_t i;

    for (i = 0; i < f->n_dependency; i++) {
        size_t d = find_file(g, str_or_empty(f->dependency[i]));

        if (d == NOT_FOUND) {
            gen_fail(g, "%s imports %s, which is not in the request", str_or_empty(f->name),
                     str_or_empty(f->dependency[i]));
            return -1;
        }
        if (!dep[d]) {
            dep[d] = 1;
            if (mark_deps(g, d, dep) != 0)
                return -1;
        }
    }
    return 0;
}

/* A file name that goes into #include "..." and comments as is. */
static int file_name_ok(const char *name)
{
    const char *p;

    if (*name == '\0')
        return 0;
    for (p = name; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;

        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '?' ||
            (c == '*' && p[1] == '/') || (c == '/' && p[1] == '*'))
            return 0;
    }
    return 1;
}

/* ---- gathering names ---- */

/* Resolves a method's type: its C type and lower-case name, and marks the
 * file that declares it in inc[]. */
static void resolve_type(struct gen *g, struct file_info *fi, const char *method_path,
                         const char *type, const char **c, const char **lower)
{
    const struct msg_type *t = find_type(g, type);

    *c = "";
    *lower = "";
    if (t == NULL) {
        gen_fail(g, "%s: type %s of %s is not in the request", fi->name, type, method_path);
        return;
    }
    if (!file_name_ok(str_or_empty(g->req->proto_file[t->file]->name))) {
        gen_fail(g, "%s: unsupported file name for type %s", fi->name, type);
        return;
    }
    fi->inc[t->file] = 1;
    *c = gen_name(g, gen_names_full_to_c, type);
    *lower = gen_name(g, gen_names_full_to_lower, type);
}

static void gather_service(struct gen *g, struct file_info *fi, const char *pkg,
                           const Google__Protobuf__ServiceDescriptorProto *s,
                           struct service_info *si)
{
    size_t i;

    si->full = *pkg != '\0' ? gen_strf(g, "%s.%s", pkg, str_or_empty(s->name))
                            : gen_strf(g, "%s", str_or_empty(s->name));
    si->c = gen_name(g, gen_names_full_to_c, si->full);
    si->lower = gen_name(g, gen_names_full_to_lower, si->full);
    si->upper = gen_name(g, gen_names_full_to_upper, si->full);
    si->n_methods = s->n_method;
    si->methods = gen_calloc(g, s->n_method, sizeof(*si->methods));
    if (si->methods == NULL) {
        si->n_methods = 0;
        return;
    }
    for (i = 0; i < s->n_method; i++) {
        const Google__Protobuf__MethodDescriptorProto *m = s->method[i];
        struct method_info *mi = &si->methods[i];
        int cs = m->has_client_streaming && m->client_streaming;
        int ss = m->has_server_streaming && m->server_streaming;
        const char *path;

        mi->name = str_or_empty(m->name);
        path = gen_strf(g, "%s/%s", si->full, mi->name);
        mi->kind = cs ? (ss ? KIND_BIDI : KIND_CLIENT_STREAMING)
                      : (ss ? KIND_SERVER_STREAMING : KIND_UNARY);
        if (mi->kind == KIND_UNARY || mi->kind == KIND_SERVER_STREAMING)
            si->n_handlers++;
        mi->lower = gen_name(g, gen_names_camel_to_lower, mi->name);
        mi->upper = gen_name(g, gen_names_camel_to_upper, mi->name);
        /* Our client functions are <svc>__trpc_<method>: a protoc-c method
         * stub <svc>__trpc_... would collide with them. */
        if (strncmp(mi->lower, "trpc_", 5) == 0)
            gen_fail(g, "%s: method %s: names starting with Trpc clash with the generated stubs",
                     fi->name, path);
        resolve_type(g, fi, path, str_or_empty(m->input_type), &mi->in_c, &mi->in_lower);
        resolve_type(g, fi, path, str_or_empty(m->output_type), &mi->out_c, &mi->out_lower);
    }
}

static void gather_file(struct gen *g, struct file_info *fi)
{
    const Google__Protobuf__FileDescriptorProto *f = g->req->proto_file[fi->index];
    const char *pkg = str_or_empty(f->package);
    size_t n = g->req->n_proto_file;
    size_t i;

    fi->base = gen_name(g, gen_names_strip_proto, fi->name);
    fi->ident = gen_name(g, gen_names_path_ident, fi->name);
    if (!file_name_ok(fi->name) || (fi->name[0] >= '0' && fi->name[0] <= '9')) {
        gen_fail(g, "%s: unsupported file name (it must make a C identifier)", fi->name);
        return;
    }
    fi->dep = gen_calloc(g, n, 1);
    fi->inc = gen_calloc(g, n, 1);
    fi->services = gen_calloc(g, f->n_service, sizeof(*fi->services));
    if (fi->dep == NULL || fi->inc == NULL || fi->services == NULL)
        return;
    if (mark_deps(g, fi->index, fi->dep) != 0)
        return;
    for (i = 0; i < n; i++)
        if (fi->dep[i] && !file_name_ok(str_or_empty(g->req->proto_file[i]->name)))
            gen_fail(g, "%s: unsupported file name of import %s", fi->name,
                     str_or_empty(g->req->proto_file[i]->name));
    fi->n_services = f->n_service;
    for (i = 0; i < f->n_service; i++)
        gather_service(g, fi, pkg, f->service[i], &fi->services[i]);
}

/* ---- output ---- */

static void put_upper(struct gen_buf *o, const char *s)
{
    for (; *s != '\0'; s++)
        gen_buf_putc(o, *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s);
}

/* A C string literal for s (file names are checked by file_name_ok, service
 * and method names are identifiers: escaping is defensive). */
static void put_literal(struct gen_buf *o, const char *s)
{
    gen_buf_putc(o, '"');
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\' || c == '?')
            gen_buf_printf(o, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            gen_buf_printf(o, "\\%03o", c);
        else
            gen_buf_putc(o, (char)c);
    }
    gen_buf_putc(o, '"');
}

static void put_bytes(struct gen_buf *o, const uint8_t *data, size_t len)
{
    size_t i;

    gen_buf_puts(o, "{");
    for (i = 0; i < len; i++)
        gen_buf_printf(o, "%s0x%02x,", i % 12 == 0 ? "\n    " : " ", data[i]);
    gen_buf_puts(o, "\n};\n");
}

/* proto_file[i] serialized without source_code_info: the bytes protoc
 * --descriptor_set_out writes for it (protobuf-c packs the fields in number
 * order and unknown fields last, like protoc; every extension of
 * descriptor.proto's options is >= 1000, past the known fields). */
static void put_file_blob(struct gen *g, struct gen_buf *o, size_t i, const char *var)
{
    Google__Protobuf__FileDescriptorProto copy = *g->req->proto_file[i];
    size_t len;
    uint8_t *data;

    copy.source_code_info = NULL; /* shallow copy: the request stays intact */
    len = google__protobuf__file_descriptor_proto__get_packed_size(&copy);
    data = malloc(len != 0 ? len : 1);
    if (data == NULL) {
        g->oom = 1;
        return;
    }
    if (google__protobuf__file_descriptor_proto__pack(&copy, data) != len) {
        gen_fail(g, "%s: could not serialize", str_or_empty(copy.name));
    } else {
        gen_buf_printf(o, "static const uint8_t %s[%zu] = ", var, len);
        put_bytes(o, data, len);
    }
    free(data);
}

static void put_handler_member(struct gen_buf *o, const struct method_info *m)
{
    if (m->kind == KIND_UNARY) {
        gen_buf_printf(o,
                       "    /* unary %s */\n"
                       "    grpc_status_code (*%s)(trpc_call *call, const %s *req, %s *resp);\n",
                       m->name, m->lower, m->in_c, m->out_c);
    } else if (m->kind == KIND_SERVER_STREAMING) {
        gen_buf_printf(o,
                       "    /* server streaming %s */\n"
                       "    grpc_status_code (*%s)(trpc_call *call, const %s *req, "
                       "trpc_stream *out);\n",
                       m->name, m->lower, m->in_c);
    }
}

static void put_service_decls(struct gen_buf *o, const struct service_info *s)
{
    size_t i;

    gen_buf_printf(o, "\n/* ---- service %s ---- */\n\n", s->full);
    gen_buf_printf(o, "#define %s__NAME \"%s\"\n", s->upper, s->full);
    for (i = 0; i < s->n_methods; i++)
        gen_buf_printf(o, "#define %s__%s__PATH \"/%s/%s\"\n", s->upper, s->methods[i].upper,
                       s->full, s->methods[i].name);

    gen_buf_printf(o,
                   "\n/* Server handlers, one per unary or server-streaming method; a NULL\n"
                   " * member answers UNIMPLEMENTED, as do client-streaming and bidi methods\n"
                   " * (which have no member). */\n"
                   "typedef struct %s_TrpcHandlers {\n",
                   s->c);
    for (i = 0; i < s->n_methods; i++)
        put_handler_member(o, &s->methods[i]);
    if (s->n_handlers == 0)
        gen_buf_puts(o, "    int trpc_no_handlers_; /* C forbids an empty struct */\n");
    gen_buf_printf(o, "} %s_TrpcHandlers;\n", s->c);

    gen_buf_printf(o,
                   "\n/* The service's methods (paths, kinds, message descriptors, handler\n"
                   " * offsets) for the runtime. */\n"
                   "extern const trpc_service_desc %s__trpc_service;\n",
                   s->lower);
    gen_buf_printf(o,
                   "\n/* trpc_server_add_service(srv, &%s__trpc_service, h, service_data):\n"
                   " * before trpc_server_start; h is borrowed and must outlive srv.\n"
                   " * Returns 0, or -1 after start / on OOM. */\n"
                   "int %s__trpc_register(trpc_server *srv, const %s_TrpcHandlers *h,\n"
                   "    void *service_data);\n",
                   s->lower, s->lower, s->c);

    for (i = 0; i < s->n_methods; i++) {
        const struct method_info *m = &s->methods[i];

        if (m->kind == KIND_UNARY) {
            gen_buf_printf(o,
                           "\n/* Blocking unary call of %s (see trpc_unary). On OK *resp is\n"
                           " * to be freed with %s__free_unpacked(*resp, NULL); otherwise\n"
                           " * *resp is NULL and st (may be NULL) holds the status. */\n"
                           "grpc_status_code %s__trpc_%s(trpc_channel *ch, const %s *req,\n"
                           "    %s **resp, const trpc_call_opts *opts, trpc_status *st);\n",
                           m->name, m->out_lower, s->lower, m->lower, m->in_c, m->out_c);
        } else if (m->kind == KIND_SERVER_STREAMING) {
            gen_buf_printf(o,
                           "\n/* Starts a server-streaming call of %s (see\n"
                           " * trpc_client_stream_start); read it with %s__trpc_%s_next,\n"
                           " * free it with trpc_client_stream_free. NULL (st set) on failure. */\n"
                           "trpc_client_stream *%s__trpc_%s(trpc_channel *ch, const %s *req,\n"
                           "    const trpc_call_opts *opts, trpc_status *st);\n",
                           m->name, s->lower, m->lower, s->lower, m->lower, m->in_c);
            gen_buf_printf(o,
                           "\n/* Next message of a %s stream: 1 with *msg set (free it with\n"
                           " * %s__free_unpacked(*msg, NULL)), or 0 at the end\n"
                           " * with st holding the final status (see trpc_client_stream_next). */\n"
                           "static inline int %s__trpc_%s_next(trpc_client_stream *s,\n"
                           "    %s **msg, trpc_status *st)\n"
                           "{\n"
                           "    ProtobufCMessage *m = NULL;\n"
                           "    int more = trpc_client_stream_next(s, &m, st);\n"
                           "\n"
                           "    *msg = (%s *)m;\n"
                           "    return more;\n"
                           "}\n",
                           m->name, m->out_lower, s->lower, m->lower, m->out_c, m->out_c);
        }
    }
}

static void put_header(struct gen *g, struct gen_buf *o, const struct file_info *fi)
{
    struct gen_buf guard;
    size_t i;

    gen_buf_init(&guard);
    gen_buf_puts(&guard, "TRPC_GEN_");
    put_upper(&guard, fi->ident);
    gen_buf_puts(&guard, "__TRPC_H");
    if (guard.failed)
        g->oom = 1;

    gen_buf_printf(o,
                   "/* Generated by protoc-gen-trpc from %s. Do not edit.\n"
                   " * The interface is described in proto/runtime/trpc.h. */\n"
                   "#ifndef %s\n"
                   "#define %s\n"
                   "\n"
                   "#include <trpc.h>\n"
                   "\n"
                   "#include \"%s.pb-c.h\"\n"
                   "\n"
                   "/* %s: its serialized FileDescriptorProto and those of all its\n"
                   " * transitive imports, for reflection. */\n"
                   "extern const trpc_file_desc %s__trpc_file;\n",
                   fi->name, gen_buf_str(&guard), gen_buf_str(&guard), fi->base, fi->name,
                   fi->ident);
    for (i = 0; i < fi->n_services; i++)
        put_service_decls(o, &fi->services[i]);
    gen_buf_printf(o, "\n#endif /* %s */\n", gen_buf_str(&guard));
    gen_buf_cleanup(&guard);
}

static void put_service_defs(struct gen_buf *o, const struct file_info *fi,
                             const struct service_info *s)
{
    size_t i;

    gen_buf_printf(o, "\n/* ---- service %s ---- */\n\n", s->full);
    if (s->n_methods != 0) {
        gen_buf_printf(o, "static const trpc_method_desc %s__trpc_methods[%zu] = {\n", s->lower,
                       s->n_methods);
        for (i = 0; i < s->n_methods; i++) {
            const struct method_info *m = &s->methods[i];

            gen_buf_printf(o, "    {\"%s\", %s__%s__PATH, %s, &%s__descriptor, &%s__descriptor,\n",
                           m->name, s->upper, m->upper, kind_names[m->kind], m->in_lower,
                           m->out_lower);
            if (m->kind == KIND_UNARY || m->kind == KIND_SERVER_STREAMING)
                gen_buf_printf(o, "     offsetof(%s_TrpcHandlers, %s)},\n", s->c, m->lower);
            else
                gen_buf_puts(o, "     TRPC_NO_HANDLER},\n");
        }
        gen_buf_puts(o, "};\n\n");
    }
    gen_buf_printf(o,
                   "const trpc_service_desc %s__trpc_service = {\n"
                   "    %s__NAME,\n"
                   "    %zu,\n"
                   "    %s%s,\n"
                   "    &%s__trpc_file,\n"
                   "};\n",
                   s->lower, s->upper, s->n_methods, s->n_methods != 0 ? s->lower : "NULL",
                   s->n_methods != 0 ? "__trpc_methods" : "", fi->ident);
    gen_buf_printf(o,
                   "\nint %s__trpc_register(trpc_server *srv, const %s_TrpcHandlers *h,\n"
                   "    void *service_data)\n"
                   "{\n"
                   "    return trpc_server_add_service(srv, &%s__trpc_service, h, service_data);\n"
                   "}\n",
                   s->lower, s->c, s->lower);

    for (i = 0; i < s->n_methods; i++) {
        const struct method_info *m = &s->methods[i];

        if (m->kind == KIND_UNARY) {
            gen_buf_printf(o,
                           "\ngrpc_status_code %s__trpc_%s(trpc_channel *ch, const %s *req,\n"
                           "    %s **resp, const trpc_call_opts *opts, trpc_status *st)\n"
                           "{\n"
                           "    ProtobufCMessage *m = NULL;\n"
                           "    grpc_status_code code = trpc_unary(ch, &%s__trpc_methods[%zu],\n"
                           "        (const ProtobufCMessage *)req, &m, opts, st);\n"
                           "\n"
                           "    *resp = (%s *)m;\n"
                           "    return code;\n"
                           "}\n",
                           s->lower, m->lower, m->in_c, m->out_c, s->lower, i, m->out_c);
        } else if (m->kind == KIND_SERVER_STREAMING) {
            gen_buf_printf(o,
                           "\ntrpc_client_stream *%s__trpc_%s(trpc_channel *ch, const %s *req,\n"
                           "    const trpc_call_opts *opts, trpc_status *st)\n"
                           "{\n"
                           "    return trpc_client_stream_start(ch, &%s__trpc_methods[%zu],\n"
                           "        (const ProtobufCMessage *)req, opts, st);\n"
                           "}\n",
                           s->lower, m->lower, m->in_c, s->lower, i);
        }
    }
}

static void put_source(struct gen *g, struct gen_buf *o, const struct file_info *fi)
{
    size_t n = g->req->n_proto_file;
    size_t n_deps = 0;
    size_t i;
    int any_inc = 0;

    gen_buf_printf(o,
                   "/* Generated by protoc-gen-trpc from %s. Do not edit. */\n"
                   "#include \"%s.trpc.h\"\n"
                   "\n"
                   "#include <stddef.h>\n"
                   "#include <stdint.h>\n",
                   fi->name, fi->base);
    for (i = 0; i < n; i++) {
        if (!fi->inc[i])
            continue;
        if (!any_inc)
            gen_buf_putc(o, '\n');
        any_inc = 1;
        gen_buf_puts(o, "#include \"");
        gen_names_strip_proto(o, str_or_empty(g->req->proto_file[i]->name));
        gen_buf_puts(o, ".pb-c.h\"\n");
    }

    gen_buf_printf(o, "\n/* %s without source_code_info */\n", fi->name);
    put_file_blob(g, o, fi->index, gen_strf(g, "%s__trpc_data", fi->ident));

    /* imports in the request's order: protoc lists a file after its imports */
    for (i = 0; i < n; i++) {
        const char *name;

        if (!fi->dep[i])
            continue;
        name = str_or_empty(g->req->proto_file[i]->name);
        gen_buf_printf(o, "\n/* import %s */\n", name);
        put_file_blob(g, o, i, gen_strf(g, "%s__trpc_dep%zu_data", fi->ident, n_deps));
        gen_buf_printf(o, "static const trpc_file_desc %s__trpc_dep%zu = {\n    ", fi->ident,
                       n_deps);
        put_literal(o, name);
        gen_buf_printf(o,
                       ",\n    %s__trpc_dep%zu_data,\n    sizeof(%s__trpc_dep%zu_data),\n"
                       "    0,\n    NULL,\n};\n",
                       fi->ident, n_deps, fi->ident, n_deps);
        n_deps++;
    }
    if (n_deps != 0) {
        gen_buf_printf(o, "\nstatic const trpc_file_desc *const %s__trpc_deps[%zu] = {\n",
                       fi->ident, n_deps);
        for (i = 0; i < n_deps; i++)
            gen_buf_printf(o, "    &%s__trpc_dep%zu,\n", fi->ident, i);
        gen_buf_puts(o, "};\n");
    }

    gen_buf_printf(o, "\nconst trpc_file_desc %s__trpc_file = {\n    ", fi->ident);
    put_literal(o, fi->name);
    gen_buf_printf(o, ",\n    %s__trpc_data,\n    sizeof(%s__trpc_data),\n    %zu,\n", fi->ident,
                   fi->ident, n_deps);
    if (n_deps != 0)
        gen_buf_printf(o, "    %s__trpc_deps,\n};\n", fi->ident);
    else
        gen_buf_puts(o, "    NULL,\n};\n");

    for (i = 0; i < fi->n_services; i++)
        put_service_defs(o, fi, &fi->services[i]);
}

/* ---- the response ---- */

static Google__Protobuf__Compiler__CodeGeneratorResponse *new_response(void)
{
    Google__Protobuf__Compiler__CodeGeneratorResponse *r = malloc(sizeof(*r));

    if (r == NULL)
        return NULL;
    google__protobuf__compiler__code_generator_response__init(r);
    r->has_supported_features = 1;
    r->supported_features =
        GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FEATURE__FEATURE_PROTO3_OPTIONAL;
    return r;
}

static void free_response(Google__Protobuf__Compiler__CodeGeneratorResponse *r)
{
    if (r != NULL)
        google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
}

/* Appends a file; takes name and content (malloc'd; freed on failure).
 * 0 or -1 on OOM. */
static int add_file(Google__Protobuf__Compiler__CodeGeneratorResponse *r, char *name, char *content)
{
    Google__Protobuf__Compiler__CodeGeneratorResponse__File *f = NULL;
    Google__Protobuf__Compiler__CodeGeneratorResponse__File **v;

    if (name == NULL || content == NULL)
        goto fail;
    f = malloc(sizeof(*f));
    if (f == NULL)
        goto fail;
    v = realloc(r->file, (r->n_file + 1) * sizeof(*v));
    if (v == NULL)
        goto fail;
    r->file = v;
    google__protobuf__compiler__code_generator_response__file__init(f);
    f->name = name;
    f->content = content;
    r->file[r->n_file++] = f;
    return 0;
fail:
    free(f);
    free(name);
    free(content);
    return -1;
}

Google__Protobuf__Compiler__CodeGeneratorResponse *gen_trpc_error_response(const char *msg)
{
    Google__Protobuf__Compiler__CodeGeneratorResponse *r = new_response();

    if (r == NULL)
        return NULL;
    r->error = strdup(msg);
    if (r->error == NULL) {
        free_response(r);
        return NULL;
    }
    return r;
}

/* Generates the pair for one file_to_generate into r. 0, or -1 with the error
 * in g (or g->oom). */
static int generate_file(struct gen *g, const char *name,
                         Google__Protobuf__Compiler__CodeGeneratorResponse *r)
{
    struct file_info fi;
    struct gen_buf h;
    struct gen_buf c;
    int rc = -1;

    memset(&fi, 0, sizeof(fi));
    gen_buf_init(&h);
    gen_buf_init(&c);
    fi.name = name;
    fi.index = find_file(g, name);
    if (fi.index == NOT_FOUND) {
        gen_fail(g, "file to generate %s is not in the request", name);
        goto out;
    }
    gather_file(g, &fi);
    if (gen_failed(g))
        goto out;
    put_header(g, &h, &fi);
    put_source(g, &c, &fi);
    if (h.failed || c.failed)
        g->oom = 1;
    if (gen_failed(g))
        goto out;
    if (add_file(r, strdup(gen_strf(g, "%s.trpc.h", fi.base)), gen_buf_steal(&h)) != 0 ||
        add_file(r, strdup(gen_strf(g, "%s.trpc.c", fi.base)), gen_buf_steal(&c)) != 0) {
        g->oom = 1;
        goto out;
    }
    rc = 0;
out:
    gen_buf_cleanup(&h);
    gen_buf_cleanup(&c);
    return rc;
}

Google__Protobuf__Compiler__CodeGeneratorResponse *
gen_trpc_run(const Google__Protobuf__Compiler__CodeGeneratorRequest *req)
{
    Google__Protobuf__Compiler__CodeGeneratorResponse *r = NULL;
    Google__Protobuf__Compiler__CodeGeneratorResponse *result = NULL;
    struct gen g;
    size_t i;

    memset(&g, 0, sizeof(g));
    gen_buf_init(&g.err);
    g.req = req;
    if (req->parameter != NULL && req->parameter[0] != '\0') {
        gen_fail(&g, "unknown parameter \"%s\" (protoc-gen-trpc takes none)", req->parameter);
        goto out;
    }
    r = new_response();
    if (r == NULL) {
        g.oom = 1;
        goto out;
    }
    index_types(&g);
    for (i = 0; i < req->n_file_to_generate && !gen_failed(&g); i++)
        generate_file(&g, str_or_empty(req->file_to_generate[i]), r);
    if (!gen_failed(&g)) {
        result = r;
        r = NULL;
    }
out:
    free_response(r);
    if (result == NULL && !g.oom && !g.err.failed)
        result = gen_trpc_error_response(gen_buf_str(&g.err));
    gen_cleanup(&g);
    return result;
}
