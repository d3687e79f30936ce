/* test_tallyctl_values.c - the parts of tallyctl that need no server: the
 * amount parser and formatter as the CLI uses them (rounding refused,
 * signs, overflow, currencies with 0, 2 and 3 decimals), the other value
 * parsers, the argument parser, escaping and tables, and the exit-code
 * mapping. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cli_args.h"
#include "cli_value.h"
#include "exitcode.h"
#include "output.h"
#include "render.h"

#define ERR 256

/* ---- amounts ---- */

/* Parses text in cur (must succeed) and returns the minor units. */
static int64_t amount_ok(const char *text, const char *cur)
{
    char err[ERR] = "";
    int64_t v = -42;

    if (cli_value_amount(text, cur, false, &v, err, sizeof(err)) != 0) {
        fprintf(stderr, "\n  unexpected refusal of %s %s: %s\n", text, cur, err);
        CU_FAIL("amount refused");
    }
    return v;
}

/* Parses text in cur; must fail with a reason containing want. The output
 * value must stay untouched. */
static void amount_refused(const char *text, const char *cur, bool allow_zero, const char *want)
{
    char err[ERR] = "";
    int64_t v = -42;

    CU_ASSERT_EQUAL(cli_value_amount(text, cur, allow_zero, &v, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(v, -42);
    if (strstr(err, want) == NULL) {
        fprintf(stderr, "\n  %s %s: reason \"%s\" lacks \"%s\"\n", text, cur, err, want);
        CU_FAIL("wrong reason");
    }
}

static void test_amount_two_decimal_currency_in_minor_units(void)
{
    CU_ASSERT_EQUAL(amount_ok("12.34", "EUR"), 1234);
    CU_ASSERT_EQUAL(amount_ok("12.3", "EUR"), 1230);
    CU_ASSERT_EQUAL(amount_ok("12", "EUR"), 1200);
    CU_ASSERT_EQUAL(amount_ok("0.01", "EUR"), 1);
    CU_ASSERT_EQUAL(amount_ok("+7.50", "USD"), 750);
    CU_ASSERT_EQUAL(amount_ok("007.05", "USD"), 705);
}

static void test_amount_zero_decimal_currency_has_no_fraction(void)
{
    CU_ASSERT_EQUAL(amount_ok("500", "JPY"), 500);
    CU_ASSERT_EQUAL(amount_ok("1", "KRW"), 1);
    amount_refused("500.0", "JPY", false, "too many decimals for JPY (at most 0)");
    amount_refused("1.5", "JPY", false, "too many decimals for JPY");
}

static void test_amount_three_decimal_currency(void)
{
    CU_ASSERT_EQUAL(amount_ok("0.001", "KWD"), 1);
    CU_ASSERT_EQUAL(amount_ok("1.234", "KWD"), 1234);
    CU_ASSERT_EQUAL(amount_ok("1.2", "BHD"), 1200);
    amount_refused("1.2345", "KWD", false, "too many decimals for KWD (at most 3)");
}

static void test_amount_rounding_is_refused(void)
{
    amount_refused("12.345", "EUR", false, "too many decimals for EUR (at most 2)");
    amount_refused("0.005", "EUR", false, "too many decimals");
    /* even a trailing zero: the text says more precision than the currency has */
    amount_refused("12.340", "EUR", false, "too many decimals");
}

static void test_amount_negative_and_zero_are_refused(void)
{
    char err[ERR];
    int64_t v = -1;

    amount_refused("-5.00", "EUR", false, "must be greater than zero");
    amount_refused("-0.01", "EUR", false, "must be greater than zero");
    amount_refused("0", "EUR", false, "must be greater than zero");
    amount_refused("0.00", "EUR", false, "must be greater than zero");
    /* an overdraft limit may be zero, never negative */
    CU_ASSERT_EQUAL(cli_value_amount("0", "EUR", true, &v, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(cli_value_amount("100.50", "EUR", true, &v, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(v, 10050);
    amount_refused("-1", "EUR", true, "must not be negative");
}

static void test_amount_overflow_is_refused_not_wrapped(void)
{
    CU_ASSERT_EQUAL(amount_ok("92233720368547758.07", "EUR"), INT64_MAX);
    amount_refused("92233720368547758.08", "EUR", false, "amount out of range");
    CU_ASSERT_EQUAL(amount_ok("9223372036854775807", "JPY"), INT64_MAX);
    amount_refused("9223372036854775808", "JPY", false, "amount out of range");
    amount_refused("99999999999999999999999999", "EUR", false, "amount out of range");
    CU_ASSERT_EQUAL(amount_ok("9223372036854775.807", "KWD"), INT64_MAX);
    amount_refused("9223372036854775.808", "KWD", false, "amount out of range");
}

static void test_amount_malformed_text_is_refused(void)
{
    static const char *const bad[] = {"1,5",  "1e3",      " 1",  "1 ",   "1.",  ".5", "",
                                      "0x10", "12.34EUR", "--1", "1..2", "one", "١٢"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        amount_refused(bad[i], "EUR", false, "invalid amount");
    /* the reason quotes the text */
    amount_refused("1,5", "EUR", false, "\"1,5\"");
}

static void test_currency_is_normalised_and_checked(void)
{
    char cur[MONEY_CODE_SIZE], err[ERR];

    CU_ASSERT_EQUAL(cli_value_currency("eur", cur, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(cur, "EUR");
    CU_ASSERT_EQUAL(cli_value_currency("JpY", cur, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(cur, "JPY");
    CU_ASSERT_EQUAL(cli_value_currency("XYZ", cur, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown currency \"XYZ\""));
    CU_ASSERT_EQUAL(cli_value_currency("EU", cur, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_currency("EURO", cur, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_currency("XAU", cur, err, sizeof(err)), -1); /* gold: no minor unit */
    CU_ASSERT_EQUAL(cli_value_currency("E1R", cur, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_currency(NULL, cur, err, sizeof(err)), -1);
}

static void test_render_amount_in_currency_units(void)
{
    char buf[RENDER_MONEY_SIZE];

    CU_ASSERT_STRING_EQUAL(render_amount(1234, "EUR", buf), "12.34 EUR");
    CU_ASSERT_STRING_EQUAL(render_amount(5, "EUR", buf), "0.05 EUR");
    CU_ASSERT_STRING_EQUAL(render_amount(-1, "EUR", buf), "-0.01 EUR");
    CU_ASSERT_STRING_EQUAL(render_amount(500, "JPY", buf), "500 JPY");
    CU_ASSERT_STRING_EQUAL(render_amount(1, "KWD", buf), "0.001 KWD");
    CU_ASSERT_STRING_EQUAL(render_amount(INT64_MAX, "EUR", buf), "92233720368547758.07 EUR");
    CU_ASSERT_STRING_EQUAL(render_amount(INT64_MIN, "EUR", buf), "-92233720368547758.08 EUR");
    /* never guessed */
    CU_ASSERT_STRING_EQUAL(render_amount(1234, "XYZ", buf), "1234 minor units XYZ");
}

/* What tallyctl prints, typed back in, is the same amount. */
static void test_amount_format_parse_round_trip(void)
{
    static const char *const curs[] = {"EUR", "JPY", "KWD", "USD", "BHD", "CLF"};
    static const int64_t vals[] = {
        1, 9, 10, 99, 100, 101, 1234, 100000, 999999999, INT64_MAX - 1, INT64_MAX};
    char buf[RENDER_MONEY_SIZE], err[ERR];
    size_t c, v;

    for (c = 0; c < sizeof(curs) / sizeof(curs[0]); c++) {
        for (v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
            int64_t back = -1;
            char *space;

            render_amount(vals[v], curs[c], buf);
            space = strchr(buf, ' ');
            CU_ASSERT_PTR_NOT_NULL_FATAL(space);
            CU_ASSERT_STRING_EQUAL(space + 1, curs[c]);
            *space = '\0';
            CU_ASSERT_EQUAL(cli_value_amount(buf, curs[c], false, &back, err, sizeof(err)), 0);
            CU_ASSERT_EQUAL(back, vals[v]);
        }
    }
}

/* ---- other values ---- */

static void test_position_parses_tx_and_global_position(void)
{
    uint64_t tx = 0;
    int64_t pos = 0;
    char err[ERR];

    CU_ASSERT_EQUAL(cli_value_position("733:3", &tx, &pos, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(tx, 733);
    CU_ASSERT_EQUAL(pos, 3);
    CU_ASSERT_EQUAL(
        cli_value_position("18446744073709551615:9223372036854775807", &tx, &pos, err, sizeof(err)),
        0);
    CU_ASSERT_EQUAL(tx, UINT64_MAX);
    CU_ASSERT_EQUAL(pos, INT64_MAX);
    CU_ASSERT_EQUAL(cli_value_position("18446744073709551616:1", &tx, &pos, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_position("1:9223372036854775808", &tx, &pos, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_position("733", &tx, &pos, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_position(":3", &tx, &pos, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_position("1:-2", &tx, &pos, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_position("1:2:3", &tx, &pos, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_position(" 1:2", &tx, &pos, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "TX:POS"));
}

static void test_duration_units_and_limits(void)
{
    int64_t ms = 0;
    char err[ERR];

    CU_ASSERT_EQUAL(cli_value_duration_ms("500ms", &ms, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ms, 500);
    CU_ASSERT_EQUAL(cli_value_duration_ms("30s", &ms, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ms, 30000);
    CU_ASSERT_EQUAL(cli_value_duration_ms("10", &ms, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ms, 10000);
    CU_ASSERT_EQUAL(cli_value_duration_ms("2m", &ms, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ms, 120000);
    CU_ASSERT_EQUAL(cli_value_duration_ms("24h", &ms, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ms, 86400000);
    CU_ASSERT_EQUAL(cli_value_duration_ms("25h", &ms, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_duration_ms("0", &ms, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_duration_ms("1d", &ms, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_duration_ms("-1s", &ms, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_duration_ms("", &ms, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_duration_ms("99999999999999999999", &ms, err, sizeof(err)), -1);
}

static void test_time_reads_rfc3339_with_offsets(void)
{
    int64_t secs = 0;
    int32_t nanos = -1;
    char err[ERR];

    CU_ASSERT_EQUAL(cli_value_time("2024-05-01T12:00:00Z", &secs, &nanos, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(secs, 1714564800);
    CU_ASSERT_EQUAL(nanos, 0);
    CU_ASSERT_EQUAL(cli_value_time("2024-05-01T14:00:00.25+02:00", &secs, &nanos, err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(secs, 1714564800);
    CU_ASSERT_EQUAL(nanos, 250000000);
    CU_ASSERT_EQUAL(cli_value_time("2024-05-01", &secs, &nanos, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_time("yesterday", &secs, &nanos, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_time("2024-05-01T12:00:00Z\"", &secs, &nanos, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_time("", &secs, &nanos, err, sizeof(err)), -1);
}

static void test_render_time_round_trips_through_cli_value_time(void)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    char buf[RENDER_TIME_SIZE], err[ERR];
    int64_t secs = 0;
    int32_t nanos = 0;

    ts.seconds = 1714564800;
    ts.nanos = 250123000;
    CU_ASSERT_STRING_EQUAL(render_time(&ts, buf), "2024-05-01T12:00:00.250123Z");
    CU_ASSERT_EQUAL(cli_value_time(buf, &secs, &nanos, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(secs, ts.seconds);
    CU_ASSERT_EQUAL(nanos, ts.nanos);
    CU_ASSERT_STRING_EQUAL(render_time(NULL, buf), "");
}

static void test_date_must_be_a_real_day(void)
{
    char err[ERR];

    CU_ASSERT_EQUAL(cli_value_date("2024-02-29", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(cli_value_date("2023-02-29", err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_date("2024-13-01", err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_date("2024-04-31", err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_date("24-04-01", err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_date("2024/04/01", err, sizeof(err)), -1);
}

static void test_uuid_is_lower_cased_or_refused(void)
{
    char id[UUID_STR_SIZE], err[ERR];

    CU_ASSERT_EQUAL(
        cli_value_uuid("ACCOUNT", "0190A0A0-0000-7000-8000-00000000ABCD", id, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(id, "0190a0a0-0000-7000-8000-00000000abcd");
    CU_ASSERT_EQUAL(cli_value_uuid("ACCOUNT", "not-a-uuid", id, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "ACCOUNT \"not-a-uuid\" is not a valid uuid");
}

static void test_int64_range(void)
{
    int64_t v = 0;
    char err[ERR];

    CU_ASSERT_EQUAL(cli_value_int64("--limit", "1000", 1, 1000, &v, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(v, 1000);
    CU_ASSERT_EQUAL(cli_value_int64("--limit", "1001", 1, 1000, &v, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_int64("--limit", "0", 1, 1000, &v, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_int64("--limit", "1e3", 1, 1000, &v, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(cli_value_int64("--limit", "", 1, 1000, &v, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(
        cli_value_int64("--v", "9223372036854775808", 0, INT64_MAX, &v, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "invalid --v"));
}

/* ---- argument parser ---- */

static const struct cli_opt t_global[] = {
    {"json", CLI_FLAG, NULL, "json"},
    {"timeout", CLI_VALUE, "D", "timeout"},
    {NULL, CLI_FLAG, NULL, NULL},
};
static const struct cli_opt t_cmd[] = {
    {"type", CLI_LIST, "T", "types"},
    {"reference", CLI_VALUE, "R", "ref"},
    {NULL, CLI_FLAG, NULL, NULL},
};

static void test_args_options_anywhere_and_negative_numbers_positional(void)
{
    const struct cli_opt *tables[] = {t_global, t_cmd, NULL};
    const char *argv[] = {"ACC",      "--reference",    "x y", "-5.00",
                          "--json",   "--type=account", "EUR", "--type",
                          "transfer", "--timeout=2s"};
    const char *types[4];
    struct cli_args a;

    CU_ASSERT_EQUAL_FATAL(cli_args_parse(&a, 10, (char **)argv, tables, false), 10);
    CU_ASSERT_EQUAL_FATAL(a.n_pos, 3);
    CU_ASSERT_STRING_EQUAL(a.pos[0], "ACC");
    CU_ASSERT_STRING_EQUAL(a.pos[1], "-5.00");
    CU_ASSERT_STRING_EQUAL(a.pos[2], "EUR");
    CU_ASSERT_STRING_EQUAL(cli_args_get(&a, "reference"), "x y");
    CU_ASSERT_STRING_EQUAL(cli_args_get(&a, "timeout"), "2s");
    CU_ASSERT_TRUE(cli_args_has(&a, "json"));
    CU_ASSERT_FALSE(cli_args_has(&a, "help"));
    CU_ASSERT_EQUAL_FATAL(cli_args_list(&a, "type", types, 4), 2);
    CU_ASSERT_STRING_EQUAL(types[0], "account");
    CU_ASSERT_STRING_EQUAL(types[1], "transfer");
    CU_ASSERT_FALSE(a.help);
}

static void test_args_errors_are_one_line_reasons(void)
{
    const struct cli_opt *tables[] = {t_global, t_cmd, NULL};
    const char *unknown[] = {"--nope"};
    const char *missing[] = {"x", "--timeout"};
    const char *flagval[] = {"--json=yes"};
    const char *dash[] = {"-x"};
    struct cli_args a;

    CU_ASSERT_EQUAL(cli_args_parse(&a, 1, (char **)unknown, tables, false), -1);
    CU_ASSERT_STRING_EQUAL(a.err, "unknown option --nope");
    CU_ASSERT_EQUAL(cli_args_parse(&a, 2, (char **)missing, tables, false), -1);
    CU_ASSERT_STRING_EQUAL(a.err, "option --timeout needs a value (D)");
    CU_ASSERT_EQUAL(cli_args_parse(&a, 1, (char **)flagval, tables, false), -1);
    CU_ASSERT_STRING_EQUAL(a.err, "option --json takes no value");
    CU_ASSERT_EQUAL(cli_args_parse(&a, 1, (char **)dash, tables, false), -1);
    CU_ASSERT_STRING_EQUAL(a.err, "unknown option -x");
}

static void test_args_stop_at_subcommand_and_merge(void)
{
    const struct cli_opt *gt[] = {t_global, NULL};
    const struct cli_opt *ct[] = {t_global, t_cmd, NULL};
    const char *argv[] = {"--timeout", "1s", "deposit", "A", "--timeout", "5s", "--", "--json"};
    struct cli_args g, r;
    int i;

    i = cli_args_parse(&g, 8, (char **)argv, gt, true);
    CU_ASSERT_EQUAL_FATAL(i, 2);
    CU_ASSERT_EQUAL(g.n_pos, 0);
    CU_ASSERT_EQUAL_FATAL(cli_args_parse(&r, 8 - i - 1, (char **)argv + i + 1, ct, false), 5);
    CU_ASSERT_EQUAL_FATAL(cli_args_merge(&g, &r), 0);
    /* the later flag (after the subcommand) wins; "--" ends the options */
    CU_ASSERT_STRING_EQUAL(cli_args_get(&g, "timeout"), "5s");
    CU_ASSERT_FALSE(cli_args_has(&g, "json"));
    CU_ASSERT_EQUAL_FATAL(g.n_pos, 2);
    CU_ASSERT_STRING_EQUAL(g.pos[1], "--json");
}

static void test_args_help_anywhere(void)
{
    const struct cli_opt *tables[] = {t_global, NULL};
    const char *argv[] = {"a", "-h"};
    struct cli_args a;

    CU_ASSERT_EQUAL(cli_args_parse(&a, 2, (char **)argv, tables, false), 2);
    CU_ASSERT_TRUE(a.help);
}

/* ---- output ---- */

static void test_escape_keeps_one_line_and_utf8(void)
{
    char buf[64];

    CU_ASSERT_STRING_EQUAL(output_escape("a\nb\tc\x01", buf, sizeof(buf)), "a\\nb\\tc\\x01");
    CU_ASSERT_STRING_EQUAL(output_escape(NULL, buf, sizeof(buf)), "");
    /* "né" cut after the n: never half a character */
    CU_ASSERT_STRING_EQUAL(output_escape("n\xc3\xa9", buf, 3), "n");
    CU_ASSERT_STRING_EQUAL(output_escape("n\xc3\xa9", buf, 4), "n\xc3\xa9");
}

static void test_table_aligns_columns_by_characters(void)
{
    static const char *const headers[] = {"NAME", ">AMOUNT", "NOTE"};
    const char *r1[] = {"Zoë", "1.00 EUR", "x\ny"};
    const char *r2[] = {"alexander", "1234.56 EUR", ""};
    output_table *t = output_table_new(headers, 3);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(output_table_add(t, r1), 0);
    CU_ASSERT_EQUAL(output_table_add(t, r2), 0);
    CU_ASSERT_EQUAL(output_table_rows(t), 2);
    output_table_print(t, f);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(text, "NAME            AMOUNT  NOTE\n"
                                 "Zoë           1.00 EUR  x\\ny\n"
                                 "alexander  1234.56 EUR  -\n");
    free(text);
    output_table_free(t);
}

static void test_kv_aligns_values(void)
{
    struct output_kv kv = {0};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    output_kv_add(&kv, "id", "%s", "abc");
    output_kv_add(&kv, "balance", "%d.%02d EUR", 12, 34);
    output_kv_add(&kv, "note", "%s", "");
    output_kv_print(&kv, f);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(text, "id:      abc\nbalance: 12.34 EUR\nnote:    -\n");
    free(text);
}

/* ---- events ---- */

/* protobuf-c string fields are char *; these literals are only read */
#define S(lit) ((char *)(lit))

static void test_event_details_for_every_payload(void)
{
    Tally__V1__Event e = TALLY__V1__EVENT__INIT;
    Tally__V1__Money eur = TALLY__V1__MONEY__INIT, jpy = TALLY__V1__MONEY__INIT;
    Tally__V1__AccountOpened opened = TALLY__V1__ACCOUNT_OPENED__INIT;
    Tally__V1__Deposited dep = TALLY__V1__DEPOSITED__INIT;
    Tally__V1__Withdrawn wd = TALLY__V1__WITHDRAWN__INIT;
    Tally__V1__TransferDebited deb = TALLY__V1__TRANSFER_DEBITED__INIT;
    Tally__V1__TransferCredited cred = TALLY__V1__TRANSFER_CREDITED__INIT;
    Tally__V1__TransferDebitReversed rev = TALLY__V1__TRANSFER_DEBIT_REVERSED__INIT;
    Tally__V1__PaymentMade pay = TALLY__V1__PAYMENT_MADE__INIT;
    Tally__V1__PaymentRefunded ref = TALLY__V1__PAYMENT_REFUNDED__INIT;
    Tally__V1__AccountFrozen frozen = TALLY__V1__ACCOUNT_FROZEN__INIT;
    Tally__V1__AccountUnfrozen unfrozen = TALLY__V1__ACCOUNT_UNFROZEN__INIT;
    Tally__V1__AccountClosed closed = TALLY__V1__ACCOUNT_CLOSED__INIT;
    Tally__V1__TransferRequested req = TALLY__V1__TRANSFER_REQUESTED__INIT;
    Tally__V1__TransferCompleted done = TALLY__V1__TRANSFER_COMPLETED__INIT;
    Tally__V1__TransferFailed failed = TALLY__V1__TRANSFER_FAILED__INIT;
    char buf[RENDER_DETAILS_SIZE];

    eur.minor_units = 1234;
    eur.currency = S("EUR");
    jpy.minor_units = 500;
    jpy.currency = S("JPY");

    opened.owner = S("Zoë");
    opened.currency = S("EUR");
    opened.overdraft_limit = 10050;
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED;
    e.account_opened = &opened;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf),
                           "owner=Zoë currency=EUR overdraft_limit=100.50 EUR");
    dep.amount = &jpy;
    dep.reference = S("line1\nline2");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_DEPOSITED;
    e.deposited = &dep;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf), "amount=500 JPY reference=line1\\nline2");
    wd.amount = &eur;
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_WITHDRAWN;
    e.withdrawn = &wd;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf), "amount=12.34 EUR");
    deb.amount = &eur;
    deb.transfer_id = S("T");
    deb.counterpart_account_id = S("B");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED;
    e.transfer_debited = &deb;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf), "amount=12.34 EUR to=B transfer=T");
    cred.amount = &eur;
    cred.transfer_id = S("T");
    cred.counterpart_account_id = S("A");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED;
    e.transfer_credited = &cred;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf), "amount=12.34 EUR from=A transfer=T");
    rev.amount = &eur;
    rev.transfer_id = S("T");
    rev.counterpart_account_id = S("B");
    rev.reason = S("destination account is closed");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED;
    e.transfer_debit_reversed = &rev;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf),
                           "amount=12.34 EUR to=B transfer=T reason=destination account is closed");
    pay.amount = &eur;
    pay.payment_id = S("P");
    pay.merchant_reference = S("shop");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE;
    e.payment_made = &pay;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf),
                           "amount=12.34 EUR merchant=shop payment=P");
    ref.amount = &eur;
    ref.total_refunded = &eur;
    ref.payment_id = S("P");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED;
    e.payment_refunded = &ref;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf),
                           "amount=12.34 EUR total_refunded=12.34 EUR payment=P");
    frozen.reason = S("audit");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN;
    e.account_frozen = &frozen;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf), "reason=audit");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN;
    e.account_unfrozen = &unfrozen; /* no reason: nothing to say */
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf), "");
    closed.reason = S("done");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_ACCOUNT_CLOSED;
    e.account_closed = &closed;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf), "reason=done");
    req.amount = &eur;
    req.source_account_id = S("A");
    req.destination_account_id = S("B");
    req.reference = S("rent");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED;
    e.transfer_requested = &req;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf),
                           "amount=12.34 EUR from=A to=B reference=rent");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED;
    e.transfer_completed = &done;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf), "");
    failed.reason = S("insufficient funds");
    failed.compensated = 1;
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED;
    e.transfer_failed = &failed;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf),
                           "reason=insufficient funds compensated=yes");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD__NOT_SET;
    CU_ASSERT_STRING_EQUAL(render_event_details(&e, buf), "payload=#0");
}

static void test_event_row_columns(void)
{
    Tally__V1__Event e = TALLY__V1__EVENT__INIT;
    Tally__V1__Position pos = TALLY__V1__POSITION__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Tally__V1__AccountClosed closed = TALLY__V1__ACCOUNT_CLOSED__INIT;
    struct render_event r;
    const char *cells[RENDER_EVENT_COLUMNS];

    pos.tx_id = 733;
    pos.global_position = 3;
    ts.seconds = 1714564800;
    e.position = &pos;
    e.recorded_at = &ts;
    e.aggregate_type = S("account");
    e.aggregate_id = S("0190a0a0-0000-7000-8000-000000000001");
    e.version = 7;
    e.event_type = S("AccountClosed");
    e.payload_case = TALLY__V1__EVENT__PAYLOAD_ACCOUNT_CLOSED;
    e.account_closed = &closed;
    render_event(&e, &r, cells);
    CU_ASSERT_STRING_EQUAL(cells[0], "733:3");
    CU_ASSERT_STRING_EQUAL(cells[1], "2024-05-01T12:00:00.000000Z");
    CU_ASSERT_STRING_EQUAL(cells[2], "account/0190a0a0-0000-7000-8000-000000000001");
    CU_ASSERT_STRING_EQUAL(cells[3], "7");
    CU_ASSERT_STRING_EQUAL(cells[4], "AccountClosed");
    CU_ASSERT_STRING_EQUAL(cells[5], "");
}

/* ---- exit codes ---- */

static void test_exit_codes_per_status_class(void)
{
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_OK), 0);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_INVALID_ARGUMENT), 3);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_OUT_OF_RANGE), 3);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_NOT_FOUND), 4);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_ALREADY_EXISTS), 5);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_FAILED_PRECONDITION), 6);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_ABORTED), 7);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_UNAUTHENTICATED), 8);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_PERMISSION_DENIED), 8);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_UNAVAILABLE), 9);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_RESOURCE_EXHAUSTED), 9);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_DEADLINE_EXCEEDED), 10);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_UNIMPLEMENTED), 11);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_UNKNOWN), 1);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_INTERNAL), 1);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_CANCELLED), 1);
    CU_ASSERT_EQUAL(exitcode_for_status(GRPC_STATUS_DATA_LOSS), 1);
    /* the documented table names every code */
    CU_ASSERT_PTR_NOT_NULL(strstr(exitcode_help(), "10  DEADLINE_EXCEEDED"));
    CU_ASSERT_PTR_NOT_NULL(strstr(exitcode_help(), "130"));
}

static CU_TestInfo amount_tests[] = {
    {"2-decimal currency in minor units", test_amount_two_decimal_currency_in_minor_units},
    {"0-decimal currency has no fraction", test_amount_zero_decimal_currency_has_no_fraction},
    {"3-decimal currency", test_amount_three_decimal_currency},
    {"rounding is refused", test_amount_rounding_is_refused},
    {"negative and zero are refused", test_amount_negative_and_zero_are_refused},
    {"overflow is refused, not wrapped", test_amount_overflow_is_refused_not_wrapped},
    {"malformed text is refused", test_amount_malformed_text_is_refused},
    {"currency is normalised and checked", test_currency_is_normalised_and_checked},
    {"render amount in currency units", test_render_amount_in_currency_units},
    {"format -> parse round trip", test_amount_format_parse_round_trip},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo value_tests[] = {
    {"position TX:POS", test_position_parses_tx_and_global_position},
    {"duration units and limits", test_duration_units_and_limits},
    {"time: RFC 3339 with offsets", test_time_reads_rfc3339_with_offsets},
    {"render_time round trips", test_render_time_round_trips_through_cli_value_time},
    {"date must be a real day", test_date_must_be_a_real_day},
    {"uuid lower-cased or refused", test_uuid_is_lower_cased_or_refused},
    {"int64 range", test_int64_range},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo args_tests[] = {
    {"options anywhere, negative numbers positional",
     test_args_options_anywhere_and_negative_numbers_positional},
    {"errors are one-line reasons", test_args_errors_are_one_line_reasons},
    {"stop at subcommand, merge", test_args_stop_at_subcommand_and_merge},
    {"help anywhere", test_args_help_anywhere},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo output_tests[] = {
    {"escape keeps one line and utf-8", test_escape_keeps_one_line_and_utf8},
    {"table aligns columns by characters", test_table_aligns_columns_by_characters},
    {"kv aligns values", test_kv_aligns_values},
    {"exit codes per status class", test_exit_codes_per_status_class},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo event_tests[] = {
    {"details for every payload", test_event_details_for_every_payload},
    {"row columns", test_event_row_columns},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"amounts", NULL, NULL, NULL, NULL, amount_tests},
    {"values", NULL, NULL, NULL, NULL, value_tests},
    {"args", NULL, NULL, NULL, NULL, args_tests},
    {"output", NULL, NULL, NULL, NULL, output_tests},
    {"events", NULL, NULL, NULL, NULL, event_tests},
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
