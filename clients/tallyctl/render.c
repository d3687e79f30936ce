/* render.c - see render.h. */
#include "render.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "money.h"

const char *const render_event_headers[RENDER_EVENT_COLUMNS] = {
    "POSITION", "TIME", "STREAM", ">VERSION", "EVENT", "DETAILS",
};

char *render_amount(int64_t minor_units, const char *currency, char buf[RENDER_MONEY_SIZE])
{
    char num[MONEY_FORMAT_SIZE];
    char cur[8];

    if (money_format(minor_units, currency, num, sizeof(num)) < 0) {
        output_escape(currency, cur, sizeof(cur));
        snprintf(buf, RENDER_MONEY_SIZE, "%" PRId64 " minor units %s", minor_units, cur);
        return buf;
    }
    snprintf(buf, RENDER_MONEY_SIZE, "%s %s", num, currency);
    return buf;
}

char *render_money(const Tally__V1__Money *m, char buf[RENDER_MONEY_SIZE])
{
    if (m == NULL) {
        buf[0] = '\0';
        return buf;
    }
    return render_amount(m->minor_units, m->currency, buf);
}

char *render_position(const Tally__V1__Position *p, char buf[RENDER_POSITION_SIZE])
{
    if (p == NULL)
        buf[0] = '\0';
    else
        snprintf(buf, RENDER_POSITION_SIZE, "%" PRIu64 ":%" PRId64, p->tx_id, p->global_position);
    return buf;
}

char *render_time(const Google__Protobuf__Timestamp *t, char buf[RENDER_TIME_SIZE])
{
    struct tm tm;
    time_t secs;
    char date[24];

    buf[0] = '\0';
    if (t == NULL)
        return buf;
    secs = (time_t)t->seconds;
    if (gmtime_r(&secs, &tm) == NULL || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return buf;
    snprintf(buf, RENDER_TIME_SIZE, "%s.%06dZ", date, (int)(t->nanos / 1000));
    return buf;
}

char *render_enum(const ProtobufCEnumDescriptor *d, int value, const char *prefix,
                  char buf[RENDER_ENUM_SIZE])
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    size_t plen = strlen(prefix);

    if (v == NULL)
        snprintf(buf, RENDER_ENUM_SIZE, "%d", value);
    else if (strncmp(v->name, prefix, plen) == 0)
        snprintf(buf, RENDER_ENUM_SIZE, "%s", v->name + plen);
    else
        snprintf(buf, RENDER_ENUM_SIZE, "%s", v->name);
    return buf;
}

/* Appends printf-style text to buf (size bytes) at *off, cutting at the
 * end. */
static void app(char *buf, size_t size, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void app(char *buf, size_t size, size_t *off, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*off >= size - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *off, size - *off, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n < size - *off ? (size_t)n : size - *off - 1;
}

/* " key=value" with value escaped; nothing when value is empty. */
static void app_text(char *buf, size_t size, size_t *off, const char *key, const char *value)
{
    char esc[2 * 256 + 64];

    if (value == NULL || value[0] == '\0')
        return;
    app(buf, size, off, " %s=%s", key, output_escape(value, esc, sizeof(esc)));
}

static void app_money(char *buf, size_t size, size_t *off, const char *key,
                      const Tally__V1__Money *m)
{
    char money[RENDER_MONEY_SIZE];

    if (m != NULL)
        app(buf, size, off, " %s=%s", key, render_money(m, money));
}

char *render_event_details(const Tally__V1__Event *e, char buf[RENDER_DETAILS_SIZE])
{
    const size_t size = RENDER_DETAILS_SIZE;
    size_t off = 0;
    char num[32];

    buf[0] = '\0';
    switch (e->payload_case) {
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED: {
        const Tally__V1__AccountOpened *p = e->account_opened;

        app_text(buf, size, &off, "owner", p->owner);
        app_text(buf, size, &off, "currency", p->currency);
        if (p->overdraft_limit != 0) {
            char money[RENDER_MONEY_SIZE];

            app(buf, size, &off, " overdraft_limit=%s",
                render_amount(p->overdraft_limit, p->currency, money));
        }
        break;
    }
    case TALLY__V1__EVENT__PAYLOAD_DEPOSITED:
        app_money(buf, size, &off, "amount", e->deposited->amount);
        app_text(buf, size, &off, "reference", e->deposited->reference);
        break;
    case TALLY__V1__EVENT__PAYLOAD_WITHDRAWN:
        app_money(buf, size, &off, "amount", e->withdrawn->amount);
        app_text(buf, size, &off, "reference", e->withdrawn->reference);
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED:
        app_money(buf, size, &off, "amount", e->transfer_debited->amount);
        app_text(buf, size, &off, "to", e->transfer_debited->counterpart_account_id);
        app_text(buf, size, &off, "transfer", e->transfer_debited->transfer_id);
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED:
        app_money(buf, size, &off, "amount", e->transfer_credited->amount);
        app_text(buf, size, &off, "from", e->transfer_credited->counterpart_account_id);
        app_text(buf, size, &off, "transfer", e->transfer_credited->transfer_id);
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED:
        app_money(buf, size, &off, "amount", e->transfer_debit_reversed->amount);
        app_text(buf, size, &off, "to", e->transfer_debit_reversed->counterpart_account_id);
        app_text(buf, size, &off, "transfer", e->transfer_debit_reversed->transfer_id);
        app_text(buf, size, &off, "reason", e->transfer_debit_reversed->reason);
        break;
    case TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE:
        app_money(buf, size, &off, "amount", e->payment_made->amount);
        app_text(buf, size, &off, "merchant", e->payment_made->merchant_reference);
        app_text(buf, size, &off, "payment", e->payment_made->payment_id);
        break;
    case TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED:
        app_money(buf, size, &off, "amount", e->payment_refunded->amount);
        app_money(buf, size, &off, "total_refunded", e->payment_refunded->total_refunded);
        app_text(buf, size, &off, "payment", e->payment_refunded->payment_id);
        break;
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_FROZEN:
        app_text(buf, size, &off, "reason", e->account_frozen->reason);
        break;
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_UNFROZEN:
        app_text(buf, size, &off, "reason", e->account_unfrozen->reason);
        break;
    case TALLY__V1__EVENT__PAYLOAD_ACCOUNT_CLOSED:
        app_text(buf, size, &off, "reason", e->account_closed->reason);
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED:
        app_money(buf, size, &off, "amount", e->transfer_requested->amount);
        app_text(buf, size, &off, "from", e->transfer_requested->source_account_id);
        app_text(buf, size, &off, "to", e->transfer_requested->destination_account_id);
        app_text(buf, size, &off, "reference", e->transfer_requested->reference);
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED:
        break;
    case TALLY__V1__EVENT__PAYLOAD_TRANSFER_FAILED:
        app_text(buf, size, &off, "reason", e->transfer_failed->reason);
        if (e->transfer_failed->compensated)
            app(buf, size, &off, " compensated=yes");
        break;
    default:
        snprintf(num, sizeof(num), "%d", (int)e->payload_case);
        app(buf, size, &off, " payload=#%s", num);
        break;
    }
    /* drop the leading space */
    if (buf[0] == ' ')
        memmove(buf, buf + 1, strlen(buf));
    return buf;
}

void render_event(const Tally__V1__Event *e, struct render_event *out,
                  const char *cells[RENDER_EVENT_COLUMNS])
{
    char type[32], id[64];

    render_position(e->position, out->position);
    render_time(e->recorded_at, out->time);
    output_escape(e->aggregate_type, type, sizeof(type));
    output_escape(e->aggregate_id, id, sizeof(id));
    snprintf(out->stream, sizeof(out->stream), "%s/%s", type, id);
    snprintf(out->version, sizeof(out->version), "%" PRId64, e->version);
    output_escape(e->event_type, out->type, sizeof(out->type));
    render_event_details(e, out->details);
    cells[0] = out->position;
    cells[1] = out->time;
    cells[2] = out->stream;
    cells[3] = out->version;
    cells[4] = out->type;
    cells[5] = out->details;
}

void render_account(const Tally__V1__Account *a, struct output_kv *kv)
{
    char money[RENDER_MONEY_SIZE], status[RENDER_ENUM_SIZE], t[RENDER_TIME_SIZE];

    output_kv_add(kv, "account_id", "%s", a->account_id);
    output_kv_add(kv, "owner", "%s", a->owner);
    output_kv_add(kv, "currency", "%s", a->currency);
    output_kv_add(kv, "status", "%s",
                  render_enum(&tally__v1__account_status__descriptor, (int)a->status,
                              "ACCOUNT_STATUS_", status));
    output_kv_add(kv, "balance", "%s", render_money(a->balance, money));
    output_kv_add(kv, "overdraft_limit", "%s",
                  render_amount(a->overdraft_limit, a->currency, money));
    output_kv_add(kv, "version", "%" PRId64, a->version);
    output_kv_add(kv, "opened_at", "%s", render_time(a->opened_at, t));
    output_kv_add(kv, "updated_at", "%s", render_time(a->updated_at, t));
}
