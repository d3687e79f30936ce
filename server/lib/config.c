/* config.c - see config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

enum {
    OPT_LISTEN = 256,
    OPT_DB,
    OPT_LOG_LEVEL,
    OPT_WORKERS,
    OPT_POOL_SIZE,
    OPT_MAX_MESSAGE,
    OPT_READY_FILE,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_CLIENT_CA,
    OPT_VERSION,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"db", required_argument, NULL, OPT_DB},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"pool-size", required_argument, NULL, OPT_POOL_SIZE},
    {"max-message-bytes", required_argument, NULL, OPT_MAX_MESSAGE},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

void config_usage(const char *prog, int default_port)
{
    printf("usage: %s [options]\n"
           "\n"
           "  --listen HOST:PORT       address to serve on (default 127.0.0.1:%d; port 0 = any)\n"
           "  --db CONNINFO            PostgreSQL conninfo or URL (env TALLY_DATABASE_URL;\n"
           "                           empty = libpq defaults: PGHOST, PGUSER, ...)\n"
           "  --log-level LEVEL        debug|info|warn|error (env TALLY_LOG_LEVEL; default info)\n"
           "  --workers N              gRPC completion-queue threads, 1..%d (env TALLY_WORKERS;\n"
           "                           default = number of CPUs)\n"
           "  --pool-size N            blocking pool threads = DB connections, 1..%d\n"
           "                           (env TALLY_POOL_SIZE; default %d)\n"
           "  --max-message-bytes N    largest gRPC message sent or received, %d..%d\n"
           "                           (default %d)\n"
           "  --ready-file PATH        once serving, write the bound address there\n"
           "  --tls-cert PATH          serve TLS with this PEM certificate chain (env\n"
           "                           TALLY_TLS_CERT; default: plaintext)\n"
           "  --tls-key PATH           its PEM private key, unencrypted (env TALLY_TLS_KEY)\n"
           "  --tls-client-ca PATH     mutual TLS: clients must present a certificate signed\n"
           "                           by a CA in this PEM file (env TALLY_TLS_CLIENT_CA)\n"
           "  --help                   print this help\n"
           "  --version                print the version\n"
           "\n"
           "Flags override the environment. Exit status: 0 after SIGTERM/SIGINT, 1 on a\n"
           "runtime failure, 2 on bad configuration.\n",
           prog, default_port, CONFIG_WORKERS_MAX, CONFIG_POOL_SIZE_MAX, CONFIG_POOL_SIZE_DEFAULT,
           CONFIG_MAX_MESSAGE_MIN, CONFIG_MAX_MESSAGE_MAX, CONFIG_MAX_MESSAGE_DEFAULT);
}

/* A decimal integer in [min, max], the whole string, no leading blanks. */
static int parse_int(const char *s, long min, long max, int *out)
{
    char *end = NULL;
    long v;

    if (s[0] == '\0' || !(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* HOST:PORT where HOST is a name ([A-Za-z0-9._-]), an IPv4 literal or a
 * bracketed IPv6 literal, and PORT is 0..65535. */
static int parse_listen(const char *s, struct config *cfg)
{
    const char *colon = strrchr(s, ':');
    size_t hostlen, i;
    int only_digits_dots = 1;
    char host[256];
    unsigned char addr[16];

    if (colon == NULL || strlen(s) >= sizeof(cfg->listen_addr))
        return -1;
    hostlen = (size_t)(colon - s);
    if (hostlen == 0 || hostlen >= sizeof(host))
        return -1;
    if (parse_int(colon + 1, 0, 65535, &cfg->listen_port) != 0 || colon[1] == '-' ||
        colon[1] == '+')
        return -1;
    if (s[0] == '[') {
        if (hostlen < 3 || s[hostlen - 1] != ']')
            return -1;
        memcpy(host, s + 1, hostlen - 2);
        host[hostlen - 2] = '\0';
        if (inet_pton(AF_INET6, host, addr) != 1)
            return -1;
    } else {
        memcpy(host, s, hostlen);
        host[hostlen] = '\0';
        for (i = 0; i < hostlen; i++) {
            char c = host[i];
            int digit = c >= '0' && c <= '9';

            if (!(digit || c == '.' || c == '-' || c == '_' || (c >= 'a' && c <= 'z') ||
                  (c >= 'A' && c <= 'Z')))
                return -1;
            if (!digit && c != '.')
                only_digits_dots = 0;
        }
        if (only_digits_dots && inet_pton(AF_INET, host, addr) != 1)
            return -1;
    }
    memcpy(cfg->listen_addr, s, strlen(s) + 1);
    return 0;
}

/* The flag's value if given, else the environment variable's if set and
 * non-empty, else NULL. *label names the source for messages. */
static const char *pick(const char *flag_val, const char *flag, const char *env, const char **label)
{
    const char *v;

    if (flag_val != NULL) {
        *label = flag;
        return flag_val;
    }
    v = env ? getenv(env) : NULL;
    if (v != NULL && v[0] != '\0') {
        *label = env;
        return v;
    }
    return NULL;
}

static int bad(const char *prog, const char *label, const char *value, const char *expected)
{
    fprintf(stderr, "%s: invalid %s \"%s\" (expected %s)\n", prog, label, value, expected);
    return CONFIG_BAD;
}

static int default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    return n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (int)n;
}

/* ---- TLS files ----
 * Read and parsed here, so a wrong path or a mismatched key is a
 * configuration error (exit 2, saying which file and why) rather than a
 * server that cannot bind or fails every handshake. */

/* OpenSSL's reason for the last failure (its queue cleared), or dflt. */
static const char *ssl_reason(const char *dflt)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r != NULL ? r : dflt;
}

/* An encrypted key is refused rather than prompted for. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static FILE *open_tls_file(const char *prog, const char *label, const char *path)
{
    FILE *f;

    if (path[0] == '\0') {
        fprintf(stderr, "%s: invalid %s \"\" (expected a file path)\n", prog, label);
        return NULL;
    }
    f = fopen(path, "r");
    if (f == NULL)
        fprintf(stderr, "%s: cannot read %s \"%s\" (%s)\n", prog, label, path, strerror(errno));
    return f;
}

/* The first of the certificates in the PEM file at path (all must parse),
 * or NULL after printing why. */
static X509 *read_certs(const char *prog, const char *label, const char *path)
{
    FILE *f = open_tls_file(prog, label, path);
    X509 *first = NULL, *x;
    unsigned long e;

    if (f == NULL)
        return NULL;
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (first == NULL)
            first = x;
        else
            X509_free(x);
    }
    /* the loop ends with an error: "no start line" at the end of the file,
     * anything else for a block that does not parse */
    e = ERR_peek_last_error();
    ERR_clear_error();
    if (ferror(f)) {
        fprintf(stderr, "%s: cannot read %s \"%s\" (%s)\n", prog, label, path, strerror(errno));
        X509_free(first);
        first = NULL;
    } else if (first == NULL || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        fprintf(stderr, "%s: invalid %s \"%s\" (expected PEM certificates)\n", prog, label, path);
        X509_free(first);
        first = NULL;
    }
    fclose(f);
    return first;
}

static int check_tls(const char *prog, const struct config *cfg, const char *cert_label,
                     const char *key_label, const char *ca_label)
{
    X509 *cert = NULL, *ca = NULL;
    EVP_PKEY *key = NULL;
    FILE *f = NULL;
    int rc = CONFIG_BAD;

    if (cfg->tls_cert == NULL && cfg->tls_key == NULL) {
        if (cfg->tls_client_ca == NULL)
            return CONFIG_OK;
        fprintf(stderr, "%s: %s needs --tls-cert and --tls-key (mutual TLS is TLS)\n", prog,
                ca_label);
        return CONFIG_BAD;
    }
    if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
        fprintf(stderr, "%s: %s without %s (give both or neither)\n", prog,
                cfg->tls_cert ? cert_label : key_label, cfg->tls_cert ? "--tls-key" : "--tls-cert");
        return CONFIG_BAD;
    }
    cert = read_certs(prog, cert_label, cfg->tls_cert);
    if (cert == NULL)
        goto out;
    f = open_tls_file(prog, key_label, cfg->tls_key);
    if (f == NULL)
        goto out;
    key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    if (key == NULL) {
        fprintf(stderr, "%s: invalid %s \"%s\" (expected an unencrypted PEM private key: %s)\n",
                prog, key_label, cfg->tls_key, ssl_reason("unreadable"));
        goto out;
    }
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        fprintf(stderr, "%s: %s \"%s\" does not match %s \"%s\" (wrong key)\n", prog, key_label,
                cfg->tls_key, cert_label, cfg->tls_cert);
        goto out;
    }
    if (cfg->tls_client_ca != NULL) {
        ca = read_certs(prog, ca_label, cfg->tls_client_ca);
        if (ca == NULL)
            goto out;
    }
    rc = CONFIG_OK;
out:
    if (f != NULL)
        fclose(f);
    EVP_PKEY_free(key);
    X509_free(cert);
    X509_free(ca);
    return rc;
}

int config_load(struct config *cfg, const char *prog, int default_port, int argc, char **argv)
{
    const char *listen = NULL, *db = NULL, *level = NULL, *workers = NULL, *pool = NULL;
    const char *max_msg = NULL, *label = NULL, *v;
    const char *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
    const char *cert_label = NULL, *key_label = NULL, *ca_label = NULL;
    char range[64];
    int c;

    memset(cfg, 0, sizeof(*cfg));
    cfg->prog = prog;
    snprintf(cfg->listen_addr, sizeof(cfg->listen_addr), "127.0.0.1:%d", default_port);
    cfg->listen_port = default_port;
    cfg->db = "";
    cfg->log_level = LOG_INFO;
    cfg->workers = default_workers();
    cfg->pool_size = CONFIG_POOL_SIZE_DEFAULT;
    cfg->max_message_bytes = CONFIG_MAX_MESSAGE_DEFAULT;

    optind = 0; /* glibc: full re-initialization, so config_load can run again */
    opterr = 0; /* our own messages, one line each */
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN:
            listen = optarg;
            break;
        case OPT_DB:
            db = optarg;
            break;
        case OPT_LOG_LEVEL:
            level = optarg;
            break;
        case OPT_WORKERS:
            workers = optarg;
            break;
        case OPT_POOL_SIZE:
            pool = optarg;
            break;
        case OPT_MAX_MESSAGE:
            max_msg = optarg;
            break;
        case OPT_READY_FILE:
            if (optarg[0] == '\0')
                return bad(prog, "--ready-file", optarg, "a file path");
            cfg->ready_file = optarg;
            break;
        case OPT_TLS_CERT:
            tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            tls_key = optarg;
            break;
        case OPT_TLS_CLIENT_CA:
            tls_ca = optarg;
            break;
        case 'h':
        case OPT_HELP:
            config_usage(prog, default_port);
            return CONFIG_HELP;
        case OPT_VERSION:
            return CONFIG_VERSION;
        case ':':
            fprintf(stderr, "%s: option %s needs a value (see --help)\n", prog, argv[optind - 1]);
            return CONFIG_BAD;
        default:
            /* glibc: optopt is the character of a bad short option, 0 or
             * our value (>= 256) for a bad long one, which optind passed */
            if (optopt != 0 && optopt < 256)
                fprintf(stderr, "%s: unknown option \"-%c\" (see --help)\n", prog, optopt);
            else
                fprintf(stderr, "%s: unknown option \"%s\" (see --help)\n", prog, argv[optind - 1]);
            return CONFIG_BAD;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\" (see --help)\n", prog, argv[optind]);
        return CONFIG_BAD;
    }

    if (listen != NULL && parse_listen(listen, cfg) != 0)
        return bad(prog, "--listen", listen, "HOST:PORT with PORT 0..65535");

    if ((v = pick(db, "--db", "TALLY_DATABASE_URL", &label)) != NULL) {
        PQconninfoOption *opts = PQconninfoParse(v, NULL);

        /* The value is not echoed: it may hold a password. */
        if (opts == NULL) {
            fprintf(stderr, "%s: invalid %s (expected a libpq conninfo or postgresql:// URL)\n",
                    prog, label);
            return CONFIG_BAD;
        }
        PQconninfoFree(opts);
        cfg->db = v;
    }

    if ((v = pick(level, "--log-level", "TALLY_LOG_LEVEL", &label)) != NULL &&
        log_level_parse(v, &cfg->log_level) != 0)
        return bad(prog, label, v, "debug|info|warn|error");

    snprintf(range, sizeof(range), "1..%d", CONFIG_WORKERS_MAX);
    if ((v = pick(workers, "--workers", "TALLY_WORKERS", &label)) != NULL &&
        parse_int(v, 1, CONFIG_WORKERS_MAX, &cfg->workers) != 0)
        return bad(prog, label, v, range);

    snprintf(range, sizeof(range), "1..%d", CONFIG_POOL_SIZE_MAX);
    if ((v = pick(pool, "--pool-size", "TALLY_POOL_SIZE", &label)) != NULL &&
        parse_int(v, 1, CONFIG_POOL_SIZE_MAX, &cfg->pool_size) != 0)
        return bad(prog, label, v, range);

    snprintf(range, sizeof(range), "%d..%d", CONFIG_MAX_MESSAGE_MIN, CONFIG_MAX_MESSAGE_MAX);
    if ((v = pick(max_msg, "--max-message-bytes", NULL, &label)) != NULL &&
        parse_int(v, CONFIG_MAX_MESSAGE_MIN, CONFIG_MAX_MESSAGE_MAX, &cfg->max_message_bytes) != 0)
        return bad(prog, label, v, range);

    cfg->tls_cert = pick(tls_cert, "--tls-cert", "TALLY_TLS_CERT", &cert_label);
    cfg->tls_key = pick(tls_key, "--tls-key", "TALLY_TLS_KEY", &key_label);
    cfg->tls_client_ca = pick(tls_ca, "--tls-client-ca", "TALLY_TLS_CLIENT_CA", &ca_label);
    return check_tls(prog, cfg, cert_label, key_label, ca_label);
}

void config_server_opts(const struct config *cfg, trpc_server_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->listen_addr = cfg->listen_addr;
    opts->cq_threads = cfg->workers;
    opts->pool_threads = cfg->pool_size;
    opts->max_message_bytes = cfg->max_message_bytes;
    opts->tls_cert_file = cfg->tls_cert;
    opts->tls_key_file = cfg->tls_key;
    opts->tls_client_ca_file = cfg->tls_client_ca;
}

int config_bound_addr(const struct config *cfg, int port, char *buf, size_t size)
{
    const char *colon = strrchr(cfg->listen_addr, ':');
    int hostlen = colon ? (int)(colon - cfg->listen_addr) : (int)strlen(cfg->listen_addr);
    int n = snprintf(buf, size, "%.*s:%d", hostlen, cfg->listen_addr, port);

    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int config_write_ready_file(const struct config *cfg, int port)
{
    char addr[300], tmp[PATH_MAX];
    int fd = -1, rc = -1, created = 0;
    size_t len;

    if (cfg->ready_file == NULL)
        return 0;
    if (config_bound_addr(cfg, port, addr, sizeof(addr) - 1) != 0) {
        log_error("bound address too long");
        goto out;
    }
    len = strlen(addr);
    addr[len++] = '\n';
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", cfg->ready_file, (long)getpid()) >=
        (int)sizeof(tmp)) {
        log_error("ready file path too long: %s", cfg->ready_file);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_error("cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    created = 1;
    if (write(fd, addr, len) != (ssize_t)len) {
        log_error("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        log_error("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, cfg->ready_file) != 0) {
        log_error("cannot rename %s to %s: %s", tmp, cfg->ready_file, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && created)
        (void)unlink(tmp);
    return rc;
}
