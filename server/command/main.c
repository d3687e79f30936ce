/* main.c - tally-command: the write side. Serves CommandService, health and
 * reflection until SIGTERM or SIGINT (command line: config.h). */
#include "daemon.h"
#include "service.h"

int main(int argc, char **argv)
{
    static const struct daemon_spec spec = {
        .prog = "tally-command",
        .version = TALLY_VERSION,
        .default_port = 50051,
        .setup = command_service_setup,
        .register_service = command_service_register,
        .teardown = command_service_teardown,
    };

    return daemon_main(&spec, argc, argv);
}
