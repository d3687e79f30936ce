/* config.h - the daemons' command line and environment (STYLE §9).
 *
 * Parsed once in main by config_load: defaults < environment < flags. The
 * result is passed down as `const struct config *`; nothing reads the
 * environment after startup. The options (the same for tally-command,
 * tally-query and tally-projector):
 *
 *   --listen ADDR            HOST:PORT, default 127.0.0.1:<default_port>;
 *                            port 0 = any free port
 *   --db CONNINFO            env TALLY_DATABASE_URL; "" = libpq defaults
 *   --log-level LEVEL        env TALLY_LOG_LEVEL; debug|info|warn|error (info)
 *   --workers N              env TALLY_WORKERS; 1..64, default = CPUs
 *   --pool-size N            env TALLY_POOL_SIZE; 1..256, default 8
 *   --max-message-bytes N    1024..1073741824, default 4194304
 *   --ready-file PATH        written once serving (config_write_ready_file)
 *   --tls-cert PATH          env TALLY_TLS_CERT; PEM certificate chain: serve
 *                            TLS only (default: plaintext)
 *   --tls-key PATH           env TALLY_TLS_KEY; its PEM private key
 *                            (unencrypted); with --tls-cert, both or neither
 *   --tls-client-ca PATH     env TALLY_TLS_CLIENT_CA; PEM CA certificates:
 *                            mutual TLS, every client must present a
 *                            certificate signed by one (needs --tls-cert)
 *   --help, --version
 *
 * An environment variable that is empty counts as unset; one whose flag is
 * given is not read at all (a bad value there is then no error).
 */
#ifndef SERVER_CONFIG_H
#define SERVER_CONFIG_H

#include <stddef.h>

#include "log.h"
#include "trpc.h"

/* config_load results */
#define CONFIG_OK      0 /* serve */
#define CONFIG_HELP    1 /* usage printed on stdout: exit 0 */
#define CONFIG_BAD     2 /* one line printed on stderr: exit 2 (the value is the exit code) */
#define CONFIG_VERSION 3 /* --version: the caller prints its version, exits 0 */

#define CONFIG_WORKERS_MAX         64
#define CONFIG_POOL_SIZE_MAX       256
#define CONFIG_POOL_SIZE_DEFAULT   8
#define CONFIG_MAX_MESSAGE_MIN     1024
#define CONFIG_MAX_MESSAGE_MAX     (1 << 30)
#define CONFIG_MAX_MESSAGE_DEFAULT (4 << 20)

struct config {
    const char *prog;      /* program name, from config_load (borrowed) */
    char listen_addr[256]; /* "HOST:PORT" as given (or the default) */
    int listen_port;       /* PORT of listen_addr, 0..65535 */
    const char *db;        /* conninfo or URL, never NULL ("" = libpq defaults);
                              borrowed from argv or the environment. Never log it:
                              it may hold a password. */
    enum log_level log_level;
    int workers;            /* completion-queue threads, 1..64 */
    int pool_size;          /* blocking pool threads = DB connections, 1..256 */
    int max_message_bytes;  /* gRPC send and receive limit */
    const char *ready_file; /* NULL = none; borrowed from argv */
    /* TLS: PEM file paths, borrowed from argv or the environment. All NULL =
     * plaintext; tls_cert and tls_key are both set or both NULL; tls_client_ca
     * only with them. config_load has read and checked them. */
    const char *tls_cert;
    const char *tls_key;
    const char *tls_client_ca;
};

/* Fills cfg from the defaults, the environment and argv (getopt_long, so
 * argv may be permuted). prog names the program in messages ("tally-query");
 * default_port is the port of the default --listen address. Returns
 * CONFIG_OK, or CONFIG_HELP / CONFIG_VERSION (nothing else to do), or
 * CONFIG_BAD after printing one line "<prog>: <what> (<why>)" to stderr
 * (unknown option, missing or malformed value, value out of range, bad
 * address, extra arguments; a TLS file that cannot be read or parsed, a
 * key that does not match the certificate, --tls-cert without --tls-key or
 * the reverse, --tls-client-ca without them). Strings in cfg borrow from prog, argv and the
 * environment, which must outlive it. Not thread-safe (getopt state,
 * getenv); call it once, early in main. Calling it again re-parses from
 * scratch (tests do). */
int config_load(struct config *cfg, const char *prog, int default_port, int argc, char **argv);

/* Prints the usage text for prog to stdout. */
void config_usage(const char *prog, int default_port);

/* The server options of cfg: listen address, CQ threads, pool threads,
 * message size limit, TLS files (borrowed from cfg). Every other field of
 * *opts is zeroed (runtime defaults; no worker_init). */
void config_server_opts(const struct config *cfg, trpc_server_opts *opts);

/* The address clients reach once the server is bound to port: the host of
 * --listen with that port ("127.0.0.1:43125"). Writes at most size bytes
 * (NUL included); returns 0, or -1 if it does not fit. */
int config_bound_addr(const struct config *cfg, int port, char *buf, size_t size);

/* If --ready-file was given, atomically (temporary file + rename in the same
 * folder) writes config_bound_addr(port) and "\n" there. Returns 0 (also
 * without --ready-file), or -1 after logging the error. */
int config_write_ready_file(const struct config *cfg, int port);

#endif /* SERVER_CONFIG_H */
