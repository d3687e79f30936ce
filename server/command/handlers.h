/* handlers.h - the CommandService RPCs (tally.v1.CommandService). Each runs
 * on a pool thread whose worker data is a struct cmd_worker (exec.h). */
#ifndef SERVER_COMMAND_HANDLERS_H
#define SERVER_COMMAND_HANDLERS_H

#include "tally/v1/command.trpc.h"

extern const Tally__V1__CommandService_TrpcHandlers command_handlers;

#endif /* SERVER_COMMAND_HANDLERS_H */
