/* render.h - tally's values as tallyctl shows them to people: amounts in the
 * currency's units ("12.34 EUR", via money_format), positions as "TX:POS"
 * (the form every --min-position / --from / --after option reads back),
 * times as RFC 3339 UTC with microseconds, enum values without their prefix
 * ("OPEN", "SUCCEEDED"), and events as one summary line.
 *
 * Every function writes into a caller buffer and returns it; a NULL message
 * renders as "" (printed as "-" by output.h). Pure and thread-safe. */
#ifndef CLIENTS_TALLYCTL_RENDER_H
#define CLIENTS_TALLYCTL_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "tally/v1/events.pb-c.h"
#include "tally/v1/query.pb-c.h"
#include "tally/v1/types.pb-c.h"

#include "output.h"

#define RENDER_MONEY_SIZE    48
#define RENDER_POSITION_SIZE 48
#define RENDER_TIME_SIZE     40
#define RENDER_ENUM_SIZE     64
#define RENDER_DETAILS_SIZE  1024

/* "12.34 EUR"; an amount in a currency tallyctl does not know prints as
 * "1234 minor units XYZ" (never guessed). */
char *render_amount(int64_t minor_units, const char *currency, char buf[RENDER_MONEY_SIZE]);
char *render_money(const Tally__V1__Money *m, char buf[RENDER_MONEY_SIZE]);

/* "TX:POS", e.g. "1234:56". */
char *render_position(const Tally__V1__Position *p, char buf[RENDER_POSITION_SIZE]);

/* "2024-05-01T12:00:00.250000Z". */
char *render_time(const Google__Protobuf__Timestamp *t, char buf[RENDER_TIME_SIZE]);

/* The value's name without prefix ("ACCOUNT_STATUS_OPEN" -> "OPEN" with
 * prefix "ACCOUNT_STATUS_"); a value with no name prints as its number. */
char *render_enum(const ProtobufCEnumDescriptor *d, int value, const char *prefix,
                  char buf[RENDER_ENUM_SIZE]);

/* The payload of an event in a few words, e.g.
 * "amount=12.34 EUR reference=inv-7" or "transfer=... amount=5.00 EUR
 * to=...". Free text is escaped (output_escape). */
char *render_event_details(const Tally__V1__Event *e, char buf[RENDER_DETAILS_SIZE]);

/* The columns of an event in tables and watch lines. */
struct render_event {
    char position[RENDER_POSITION_SIZE];
    char time[RENDER_TIME_SIZE];
    char stream[96]; /* "account/<uuid>" */
    char version[24];
    char type[64];
    char details[RENDER_DETAILS_SIZE];
};
#define RENDER_EVENT_COLUMNS 6
extern const char *const render_event_headers[RENDER_EVENT_COLUMNS];

/* Fills out from e and points cells[0..5] at its fields (table order:
 * POSITION TIME STREAM VERSION EVENT DETAILS). */
void render_event(const Tally__V1__Event *e, struct render_event *out,
                  const char *cells[RENDER_EVENT_COLUMNS]);

/* An account as a key: value block (get, at). */
void render_account(const Tally__V1__Account *a, struct output_kv *kv);

#endif /* CLIENTS_TALLYCTL_RENDER_H */
