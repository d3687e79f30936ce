/* cmd_write.c - the CommandService subcommands: open, deposit, withdraw,
 * transfer, pay, refund, freeze, unfreeze, close. Each reads and checks its
 * arguments (amounts in the currency's units, ids as UUIDs) before it sends
 * anything, makes one call, and prints the reply. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tally/v1/command.trpc.h"

#include "cli_value.h"
#include "command.h"
#include "exitcode.h"
#include "output.h"
#include "render.h"

#define ERR_SIZE 256

/* "" for an absent option: protobuf-c's string fields are never NULL. */
static char *opt_text(const struct cli_args *a, const char *name)
{
    const char *v = cli_args_get(a, name);

    return (char *)(v != NULL ? v : "");
}

static int id_arg(const struct session *s, const char *what, const char *text,
                  char out[UUID_STR_SIZE])
{
    char err[ERR_SIZE];

    if (cli_value_uuid(what, text, out, err, sizeof(err)) != 0)
        return session_usage(s, "%s", err);
    return EXITCODE_OK;
}

/* AMOUNT CURRENCY -> m (m->currency points to cur). */
static int money_args(const struct session *s, const char *amount, const char *currency,
                      Tally__V1__Money *m, char cur[MONEY_CODE_SIZE])
{
    char err[ERR_SIZE];

    if (cli_value_currency(currency, cur, err, sizeof(err)) != 0 ||
        cli_value_amount(amount, cur, false, &m->minor_units, err, sizeof(err)) != 0)
        return session_usage(s, "%s", err);
    m->currency = cur;
    return EXITCODE_OK;
}

static void add_result(struct output_kv *kv, const Tally__V1__CommandResponse *r)
{
    char pos[RENDER_POSITION_SIZE];

    if (r == NULL)
        return;
    output_kv_add(kv, "operation_id", "%s", r->operation_id);
    output_kv_add(kv, "version", "%" PRId64, r->version);
    output_kv_add(kv, "position", "%s", render_position(r->position, pos));
    output_kv_add(kv, "correlation_id", "%s", r->correlation_id);
}

/* The reply of the commands that answer a bare CommandResponse. */
static int print_result(const struct session *s, const Tally__V1__CommandResponse *r)
{
    struct output_kv kv = {0};
    int rc;

    if (command_json(s, &r->base, &rc))
        return rc;
    add_result(&kv, r);
    output_kv_print(&kv, stdout);
    return EXITCODE_OK;
}

static trpc_channel *command_channel(struct session *s)
{
    return session_channel(s, SESSION_COMMAND);
}

/* ---- open ---- */

static const struct cli_opt open_opts[] = {
    {"overdraft-limit", CLI_VALUE, "AMOUNT",
     "how far below zero the balance may go, in CURRENCY (default 0)"},
    {"account-id", CLI_VALUE, "UUID", "choose the account's id (default: generated)"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static int run_open(struct session *s, const struct cli_args *a)
{
    Tally__V1__OpenAccountRequest req = TALLY__V1__OPEN_ACCOUNT_REQUEST__INIT;
    Tally__V1__OpenAccountResponse *resp = NULL;
    Google__Protobuf__Int64Value ver, *ver_p;
    const char *key, *limit = cli_args_get(a, "overdraft-limit");
    const char *id_text = cli_args_get(a, "account-id");
    char cur[MONEY_CODE_SIZE], id[UUID_STR_SIZE], err[ERR_SIZE];
    struct output_kv kv = {0};
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = command_write_common(s, a, &key, &ver, &ver_p)) != 0)
        return rc;
    if (ver_p != NULL)
        return session_usage(s, "--expected-version does not apply to a new account");
    if (cli_value_currency(a->pos[1], cur, err, sizeof(err)) != 0)
        return session_usage(s, "%s", err);
    if (limit != NULL &&
        cli_value_amount(limit, cur, true, &req.overdraft_limit, err, sizeof(err)) != 0)
        return session_usage(s, "--overdraft-limit: %s", err);
    if (id_text != NULL && (rc = id_arg(s, "--account-id", id_text, id)) != 0)
        return rc;
    req.account_id = id_text != NULL ? id : (char *)"";
    req.owner = (char *)a->pos[0];
    req.currency = cur;
    req.idempotency_key = (char *)key;
    if ((ch = command_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__command_service__trpc_open_account(ch, &req, &resp, session_call_opts(s), &st) !=
        GRPC_STATUS_OK)
        return session_fail(s, SESSION_COMMAND, &st);
    if (!command_json(s, &resp->base, &rc)) {
        output_kv_add(&kv, "account_id", "%s", resp->account_id);
        add_result(&kv, resp->result);
        output_kv_print(&kv, stdout);
    }
    tally__v1__open_account_response__free_unpacked(resp, NULL);
    return rc;
}

/* ---- deposit, withdraw ---- */

static const struct cli_opt reference_opts[] = {
    {"reference", CLI_VALUE, "TEXT", "free text kept on the event and the ledger line"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static int run_deposit(struct session *s, const struct cli_args *a)
{
    Tally__V1__DepositRequest req = TALLY__V1__DEPOSIT_REQUEST__INIT;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Google__Protobuf__Int64Value ver;
    char id[UUID_STR_SIZE], cur[MONEY_CODE_SIZE];
    const char *key;
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = id_arg(s, "ACCOUNT", a->pos[0], id)) != 0 ||
        (rc = money_args(s, a->pos[1], a->pos[2], &amount, cur)) != 0 ||
        (rc = command_write_common(s, a, &key, &ver, &req.expected_version)) != 0)
        return rc;
    req.account_id = id;
    req.amount = &amount;
    req.reference = opt_text(a, "reference");
    req.idempotency_key = (char *)key;
    if ((ch = command_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__command_service__trpc_deposit(ch, &req, &resp, session_call_opts(s), &st) !=
        GRPC_STATUS_OK)
        return session_fail(s, SESSION_COMMAND, &st);
    rc = print_result(s, resp);
    tally__v1__command_response__free_unpacked(resp, NULL);
    return rc;
}

static int run_withdraw(struct session *s, const struct cli_args *a)
{
    Tally__V1__WithdrawRequest req = TALLY__V1__WITHDRAW_REQUEST__INIT;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Google__Protobuf__Int64Value ver;
    char id[UUID_STR_SIZE], cur[MONEY_CODE_SIZE];
    const char *key;
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = id_arg(s, "ACCOUNT", a->pos[0], id)) != 0 ||
        (rc = money_args(s, a->pos[1], a->pos[2], &amount, cur)) != 0 ||
        (rc = command_write_common(s, a, &key, &ver, &req.expected_version)) != 0)
        return rc;
    req.account_id = id;
    req.amount = &amount;
    req.reference = opt_text(a, "reference");
    req.idempotency_key = (char *)key;
    if ((ch = command_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__command_service__trpc_withdraw(ch, &req, &resp, session_call_opts(s), &st) !=
        GRPC_STATUS_OK)
        return session_fail(s, SESSION_COMMAND, &st);
    rc = print_result(s, resp);
    tally__v1__command_response__free_unpacked(resp, NULL);
    return rc;
}

/* ---- transfer ---- */

static const struct cli_opt transfer_opts[] = {
    {"wait", CLI_FLAG, NULL,
     "return when the transfer has SUCCEEDED or FAILED (bounded by --timeout)"},
    {"transfer-id", CLI_VALUE, "UUID", "choose the transfer's id (default: generated)"},
    {"reference", CLI_VALUE, "TEXT", "free text kept on the transfer"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static int run_transfer(struct session *s, const struct cli_args *a)
{
    Tally__V1__TransferRequest req = TALLY__V1__TRANSFER_REQUEST__INIT;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__TransferResponse *resp = NULL;
    Google__Protobuf__Int64Value ver;
    char src[UUID_STR_SIZE], dst[UUID_STR_SIZE], tid[UUID_STR_SIZE], cur[MONEY_CODE_SIZE];
    char status[RENDER_ENUM_SIZE];
    const char *key, *tid_text = cli_args_get(a, "transfer-id");
    struct output_kv kv = {0};
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = id_arg(s, "SOURCE", a->pos[0], src)) != 0 ||
        (rc = id_arg(s, "DESTINATION", a->pos[1], dst)) != 0 ||
        (rc = money_args(s, a->pos[2], a->pos[3], &amount, cur)) != 0 ||
        (rc = command_write_common(s, a, &key, &ver, &req.expected_version)) != 0)
        return rc;
    if (tid_text != NULL && (rc = id_arg(s, "--transfer-id", tid_text, tid)) != 0)
        return rc;
    req.source_account_id = src;
    req.destination_account_id = dst;
    req.amount = &amount;
    req.reference = opt_text(a, "reference");
    req.wait = cli_args_has(a, "wait");
    req.transfer_id = tid_text != NULL ? tid : (char *)"";
    req.idempotency_key = (char *)key;
    if ((ch = command_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__command_service__trpc_transfer(ch, &req, &resp, session_call_opts(s), &st) !=
        GRPC_STATUS_OK)
        return session_fail(s, SESSION_COMMAND, &st);
    if (!command_json(s, &resp->base, &rc)) {
        output_kv_add(&kv, "transfer_id", "%s", resp->transfer_id);
        output_kv_add(&kv, "status", "%s",
                      render_enum(&tally__v1__operation_status__descriptor, (int)resp->status,
                                  "OPERATION_STATUS_", status));
        if (resp->failure_reason[0] != '\0')
            output_kv_add(&kv, "failure_reason", "%s", resp->failure_reason);
        add_result(&kv, resp->result);
        output_kv_print(&kv, stdout);
    }
    if (rc == EXITCODE_OK && resp->status == TALLY__V1__OPERATION_STATUS__OPERATION_STATUS_FAILED)
        rc = session_error(s, EXITCODE_OPERATION_FAILED, "transfer %s failed: %s",
                           resp->transfer_id, resp->failure_reason);
    tally__v1__transfer_response__free_unpacked(resp, NULL);
    return rc;
}

/* ---- pay, refund ---- */

static const struct cli_opt pay_opts[] = {
    {"payment-id", CLI_VALUE, "UUID", "choose the payment's id (default: generated)"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static int run_pay(struct session *s, const struct cli_args *a)
{
    Tally__V1__PayRequest req = TALLY__V1__PAY_REQUEST__INIT;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__PayResponse *resp = NULL;
    Google__Protobuf__Int64Value ver;
    char id[UUID_STR_SIZE], pid[UUID_STR_SIZE], cur[MONEY_CODE_SIZE];
    const char *key, *pid_text = cli_args_get(a, "payment-id");
    struct output_kv kv = {0};
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = id_arg(s, "ACCOUNT", a->pos[0], id)) != 0 ||
        (rc = money_args(s, a->pos[1], a->pos[2], &amount, cur)) != 0 ||
        (rc = command_write_common(s, a, &key, &ver, &req.expected_version)) != 0)
        return rc;
    if (pid_text != NULL && (rc = id_arg(s, "--payment-id", pid_text, pid)) != 0)
        return rc;
    req.account_id = id;
    req.amount = &amount;
    req.merchant_reference = (char *)a->pos[3];
    req.payment_id = pid_text != NULL ? pid : (char *)"";
    req.idempotency_key = (char *)key;
    if ((ch = command_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__command_service__trpc_pay(ch, &req, &resp, session_call_opts(s), &st) !=
        GRPC_STATUS_OK)
        return session_fail(s, SESSION_COMMAND, &st);
    if (!command_json(s, &resp->base, &rc)) {
        output_kv_add(&kv, "payment_id", "%s", resp->payment_id);
        add_result(&kv, resp->result);
        output_kv_print(&kv, stdout);
    }
    tally__v1__pay_response__free_unpacked(resp, NULL);
    return rc;
}

static int run_refund(struct session *s, const struct cli_args *a)
{
    Tally__V1__RefundRequest req = TALLY__V1__REFUND_REQUEST__INIT;
    Tally__V1__Money amount = TALLY__V1__MONEY__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Google__Protobuf__Int64Value ver;
    char id[UUID_STR_SIZE], pid[UUID_STR_SIZE], cur[MONEY_CODE_SIZE];
    const char *key;
    trpc_channel *ch;
    trpc_status st;
    int rc;

    if ((rc = id_arg(s, "ACCOUNT", a->pos[0], id)) != 0 ||
        (rc = id_arg(s, "PAYMENT", a->pos[1], pid)) != 0 ||
        (rc = money_args(s, a->pos[2], a->pos[3], &amount, cur)) != 0 ||
        (rc = command_write_common(s, a, &key, &ver, &req.expected_version)) != 0)
        return rc;
    req.account_id = id;
    req.payment_id = pid;
    req.amount = &amount;
    req.idempotency_key = (char *)key;
    if ((ch = command_channel(s)) == NULL)
        return EXITCODE_OTHER;
    if (tally__v1__command_service__trpc_refund(ch, &req, &resp, session_call_opts(s), &st) !=
        GRPC_STATUS_OK)
        return session_fail(s, SESSION_COMMAND, &st);
    rc = print_result(s, resp);
    tally__v1__command_response__free_unpacked(resp, NULL);
    return rc;
}

/* ---- freeze, unfreeze, close ---- */

static const struct cli_opt reason_opts[] = {
    {"reason", CLI_VALUE, "TEXT", "why (kept on the event)"},
    {NULL, CLI_FLAG, NULL, NULL},
};

enum lifecycle { FREEZE, UNFREEZE, CLOSE };

/* The three requests share their layout but not their type. */
static int run_lifecycle(struct session *s, const struct cli_args *a, enum lifecycle what)
{
    Tally__V1__FreezeAccountRequest freeze = TALLY__V1__FREEZE_ACCOUNT_REQUEST__INIT;
    Tally__V1__UnfreezeAccountRequest unfreeze = TALLY__V1__UNFREEZE_ACCOUNT_REQUEST__INIT;
    Tally__V1__CloseAccountRequest close = TALLY__V1__CLOSE_ACCOUNT_REQUEST__INIT;
    Tally__V1__CommandResponse *resp = NULL;
    Google__Protobuf__Int64Value ver, *ver_p;
    char id[UUID_STR_SIZE];
    const char *key;
    trpc_channel *ch;
    trpc_status st;
    grpc_status_code code;
    int rc;

    if ((rc = id_arg(s, "ACCOUNT", a->pos[0], id)) != 0 ||
        (rc = command_write_common(s, a, &key, &ver, &ver_p)) != 0)
        return rc;
    if ((ch = command_channel(s)) == NULL)
        return EXITCODE_OTHER;
    switch (what) {
    case FREEZE:
        freeze.account_id = id;
        freeze.reason = opt_text(a, "reason");
        freeze.idempotency_key = (char *)key;
        freeze.expected_version = ver_p;
        code = tally__v1__command_service__trpc_freeze_account(ch, &freeze, &resp,
                                                               session_call_opts(s), &st);
        break;
    case UNFREEZE:
        unfreeze.account_id = id;
        unfreeze.reason = opt_text(a, "reason");
        unfreeze.idempotency_key = (char *)key;
        unfreeze.expected_version = ver_p;
        code = tally__v1__command_service__trpc_unfreeze_account(ch, &unfreeze, &resp,
                                                                 session_call_opts(s), &st);
        break;
    default:
        close.account_id = id;
        close.reason = opt_text(a, "reason");
        close.idempotency_key = (char *)key;
        close.expected_version = ver_p;
        code = tally__v1__command_service__trpc_close_account(ch, &close, &resp,
                                                              session_call_opts(s), &st);
        break;
    }
    if (code != GRPC_STATUS_OK)
        return session_fail(s, SESSION_COMMAND, &st);
    rc = print_result(s, resp);
    tally__v1__command_response__free_unpacked(resp, NULL);
    return rc;
}

static int run_freeze(struct session *s, const struct cli_args *a)
{
    return run_lifecycle(s, a, FREEZE);
}

static int run_unfreeze(struct session *s, const struct cli_args *a)
{
    return run_lifecycle(s, a, UNFREEZE);
}

static int run_close(struct session *s, const struct cli_args *a)
{
    return run_lifecycle(s, a, CLOSE);
}

#define AMOUNT_HELP                                                                                \
    "AMOUNT is a decimal in CURRENCY's units: 12.34 EUR is 1234 cents, 500 JPY has no\n"           \
    "decimals, 0.001 KWD is one fils. More decimals than the currency has are refused,\n"          \
    "never rounded.\n"

const struct command cmd_write_commands[] = {
    {"open", "OWNER CURRENCY", "open an account",
     "Opens an account for OWNER (free text, 1..256 bytes) in CURRENCY (ISO 4217).\n"
     "Prints the new account's id.\n",
     open_opts, COMMAND_WRITE, 2, 2, run_open},
    {"deposit", "ACCOUNT AMOUNT CURRENCY", "pay money into an account",
     "Pays AMOUNT into ACCOUNT. CURRENCY must be the account's.\n" AMOUNT_HELP, reference_opts,
     COMMAND_WRITE, 3, 3, run_deposit},
    {"withdraw", "ACCOUNT AMOUNT CURRENCY", "pay money out of an account",
     "Pays AMOUNT out of ACCOUNT; the balance never goes below minus the overdraft\n"
     "limit (FAILED_PRECONDITION \"insufficient funds\", exit 6).\n" AMOUNT_HELP,
     reference_opts, COMMAND_WRITE, 3, 3, run_withdraw},
    {"transfer", "SOURCE DESTINATION AMOUNT CURRENCY", "move money between two accounts",
     "Requests a transfer and returns at once (status PENDING); the transfer saga\n"
     "debits SOURCE and credits DESTINATION, or reverses the debit. With --wait,\n"
     "returns when it SUCCEEDED or FAILED; a FAILED transfer exits with 12.\n"
     "--expected-version applies to SOURCE.\n" AMOUNT_HELP,
     transfer_opts, COMMAND_WRITE, 4, 4, run_transfer},
    {"pay", "ACCOUNT AMOUNT CURRENCY MERCHANT_REFERENCE", "pay a merchant from an account",
     "Pays AMOUNT from ACCOUNT to the merchant named by MERCHANT_REFERENCE (1..256\n"
     "bytes). Prints the payment id that refund takes.\n" AMOUNT_HELP,
     pay_opts, COMMAND_WRITE, 4, 4, run_pay},
    {"refund", "ACCOUNT PAYMENT AMOUNT CURRENCY", "refund (part of) a payment",
     "Refunds AMOUNT of payment PAYMENT to ACCOUNT, the account it came from. The\n"
     "refunds of a payment never exceed it.\n" AMOUNT_HELP,
     NULL, COMMAND_WRITE, 4, 4, run_refund},
    {"freeze", "ACCOUNT", "block deposits, withdrawals, payments and transfers", NULL, reason_opts,
     COMMAND_WRITE, 1, 1, run_freeze},
    {"unfreeze", "ACCOUNT", "lift a freeze", NULL, reason_opts, COMMAND_WRITE, 1, 1, run_unfreeze},
    {"close", "ACCOUNT", "close an account for good (the balance must be zero)", NULL, reason_opts,
     COMMAND_WRITE, 1, 1, run_close},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL},
};
