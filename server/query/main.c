/* main.c - tally-query: the read side. Serves QueryService, health and
 * reflection until SIGTERM or SIGINT (command line: config.h). */
#include "daemon.h"
#include "service.h"

int main(int argc, char **argv)
{
    static const struct daemon_spec spec = {
        .prog = "tally-query",
        .version = TALLY_VERSION,
        .default_port = 50052,
        .setup = query_service_setup,
        .register_service = query_service_register,
        .teardown = query_service_teardown,
    };

    return daemon_main(&spec, argc, argv);
}
