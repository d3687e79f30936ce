/* test_ring.c - the Subscribe ring (projector/ring.c) and the live filter
 * (sub_live_match in projector/subscribe_live.c), in-process: the window
 * and join rules the no-gap argument rests on, eviction, a pre-serialized
 * event that is byte for byte the typed message, and the in-memory filter
 * against the rules of logread_all's SQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "tally/v1/subscription.pb-c.h"

#include "ring.h"
#include "subscribe_int.h"

#define TENANT "0190a0b0-0000-7000-8000-000000000001"
#define AGG    "0190a0b0-0000-7000-8000-0000000000aa"

/* An event with a payload, built on the heap as logread does. */
static Tally__V1__Event *event_new(uint64_t tx, int64_t gp, const char *type, const char *corr)
{
    Tally__V1__Event *ev = calloc(1, sizeof(*ev));
    Tally__V1__Position *pos = calloc(1, sizeof(*pos));
    Tally__V1__EventMetadata *md = calloc(1, sizeof(*md));
    Tally__V1__Deposited *dep = calloc(1, sizeof(*dep));
    Tally__V1__Money *m = calloc(1, sizeof(*m));

    tally__v1__event__init(ev);
    tally__v1__position__init(pos);
    tally__v1__event_metadata__init(md);
    tally__v1__deposited__init(dep);
    tally__v1__money__init(m);
    pos->tx_id = tx;
    pos->global_position = gp;
    md->correlation_id = strdup(corr);
    md->causation_id = strdup("");
    md->user_id = strdup("user");
    m->minor_units = 1234;
    m->currency = strdup("EUR");
    dep->amount = m;
    dep->reference = strdup("ref");
    ev->event_id = strdup("0190a0b0-0000-7000-8000-0000000000ee");
    ev->tenant_id = strdup(TENANT);
    ev->aggregate_type = strdup("account");
    ev->aggregate_id = strdup(AGG);
    ev->version = 7;
    ev->event_type = strdup(type);
    ev->event_version = 1;
    ev->position = pos;
    ev->metadata = md;
    ev->operation_id = strdup("0190a0b0-0000-7000-8000-0000000000ff");
    ev->payload_case = TALLY__V1__EVENT__PAYLOAD_DEPOSITED;
    ev->deposited = dep;
    return ev;
}

static struct ring_entry *entry_at(uint64_t tx, int64_t gp)
{
    Tally__V1__Event *ev = event_new(tx, gp, "Deposited", "c");
    struct ring_entry *e = ring_entry_new(ev);

    protobuf_c_message_free_unpacked(&ev->base, NULL);
    return e;
}

static void test_ring_entry_serializes_like_the_typed_message(void)
{
    Tally__V1__Event *ev = event_new(42, 4242, "Deposited", "corr-1");
    Tally__V1__SubscribeResponse typed = TALLY__V1__SUBSCRIBE_RESPONSE__INIT, pre, *back;
    ProtobufCMessageUnknownField field;
    struct ring_entry *e = ring_entry_new(ev);
    size_t n1, n2;
    uint8_t *b1, *b2;

    CU_ASSERT_FATAL(e != NULL);
    CU_ASSERT(e->pos.tx_id == 42 && e->pos.global_position == 4242);
    CU_ASSERT(strcmp(e->tenant_id, TENANT) == 0);
    CU_ASSERT(strcmp(e->aggregate_type, "account") == 0);
    CU_ASSERT(strcmp(e->aggregate_id, AGG) == 0);
    CU_ASSERT(strcmp(e->event_type, "Deposited") == 0);
    CU_ASSERT(strcmp(e->correlation_id, "corr-1") == 0);
    typed.message_case = TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_EVENT;
    typed.event = ev;
    ring_entry_response(e, &field, &pre);
    n1 = protobuf_c_message_get_packed_size(&typed.base);
    n2 = protobuf_c_message_get_packed_size(&pre.base);
    CU_ASSERT_FATAL(n1 == n2);
    b1 = malloc(n1);
    b2 = malloc(n2);
    CU_ASSERT(protobuf_c_message_pack(&typed.base, b1) == n1);
    CU_ASSERT(protobuf_c_message_pack(&pre.base, b2) == n2);
    CU_ASSERT(memcmp(b1, b2, n1) == 0);
    back = tally__v1__subscribe_response__unpack(NULL, n2, b2);
    CU_ASSERT_FATAL(back != NULL);
    CU_ASSERT(back->message_case == TALLY__V1__SUBSCRIBE_RESPONSE__MESSAGE_EVENT);
    CU_ASSERT(back->event->position->global_position == 4242);
    CU_ASSERT(back->event->deposited != NULL &&
              back->event->deposited->amount->minor_units == 1234);
    CU_ASSERT(strcmp(back->event->metadata->correlation_id, "corr-1") == 0);
    tally__v1__subscribe_response__free_unpacked(back, NULL);
    free(b1);
    free(b2);
    ring_entry_free(e);
    protobuf_c_message_free_unpacked(&ev->base, NULL);
}

static void test_ring_window_and_join_before_and_after_start(void)
{
    ring *r = ring_new(RING_MIN_CAPACITY);
    struct store_position lo, hi, p;
    uint64_t seq = 99;

    CU_ASSERT_FATAL(r != NULL);
    p.tx_id = 5;
    p.global_position = 10;
    CU_ASSERT(!ring_window(r, &lo, &hi));
    CU_ASSERT(!ring_join(r, p, &seq));
    CU_ASSERT(!ring_wait_ready(r, 20));
    ring_start(r, p);
    CU_ASSERT(ring_wait_ready(r, 0));
    CU_ASSERT(ring_window(r, &lo, &hi));
    CU_ASSERT(lo.tx_id == 5 && lo.global_position == 10 && hi.global_position == 10);
    /* before the window: no */
    p.global_position = 9;
    CU_ASSERT(!ring_join(r, p, &seq));
    /* at lo: joins at the end (nothing newer yet) */
    p.global_position = 10;
    CU_ASSERT(ring_join(r, p, &seq));
    CU_ASSERT(seq == ring_end_seq(r));
    ring_push(r, entry_at(6, 11));
    ring_push(r, entry_at(6, 12));
    ring_push(r, entry_at(8, 3)); /* a later transaction with an older position */
    CU_ASSERT(ring_window(r, &lo, &hi));
    CU_ASSERT(hi.tx_id == 8 && hi.global_position == 3);
    p.tx_id = 6;
    p.global_position = 11;
    CU_ASSERT(ring_join(r, p, &seq));
    CU_ASSERT(ring_at(r, seq)->pos.global_position == 12);
    p.tx_id = 7; /* between entries: the next one is (8, 3) */
    p.global_position = 0;
    CU_ASSERT(ring_join(r, p, &seq));
    CU_ASSERT(ring_at(r, seq)->pos.tx_id == 8);
    p.tx_id = 9; /* past hi (a catch-up read ahead of the tail): joins at the end */
    CU_ASSERT(ring_join(r, p, &seq));
    CU_ASSERT(seq == ring_end_seq(r));
    ring_free(r);
}

static void test_ring_eviction_moves_lo_and_refuses_old_positions(void)
{
    ring *r = ring_new(RING_MIN_CAPACITY);
    struct store_position start = {1, 0}, lo, p;
    uint64_t seq;

    CU_ASSERT_FATAL(r != NULL);
    ring_start(r, start);
    for (int i = 1; i <= 40; i++)
        ring_push(r, entry_at(10, i));
    CU_ASSERT(ring_end_seq(r) - ring_first_seq(r) == RING_MIN_CAPACITY);
    CU_ASSERT(ring_first_seq(r) == 40 - RING_MIN_CAPACITY);
    CU_ASSERT(ring_window(r, &lo, NULL));
    /* lo is the newest evicted: entries 25..40 are held */
    CU_ASSERT(lo.tx_id == 10 && lo.global_position == 24);
    CU_ASSERT(ring_at(r, ring_first_seq(r))->pos.global_position == 25);
    p = lo;
    CU_ASSERT(ring_join(r, p, &seq));
    CU_ASSERT(seq == ring_first_seq(r));
    p.global_position = 23;
    CU_ASSERT(!ring_join(r, p, &seq));
    p.global_position = 30;
    CU_ASSERT(ring_join(r, p, &seq));
    CU_ASSERT(ring_at(r, seq)->pos.global_position == 31);
    CU_ASSERT(ring_new(RING_MIN_CAPACITY - 1) == NULL);
    ring_free(r);
}

/* ---- the live filter ---- */

static int match(const Tally__V1__EventFilter *f, const char *type, const char *agg_type,
                 const char *agg_id, const char *corr)
{
    Tally__V1__SubscribeRequest req = TALLY__V1__SUBSCRIBE_REQUEST__INIT;
    Tally__V1__Event *ev = event_new(1, 1, type, corr);
    struct ring_entry *e;
    struct sub s;
    int m;

    free(ev->aggregate_type);
    ev->aggregate_type = strdup(agg_type);
    free(ev->aggregate_id);
    ev->aggregate_id = strdup(agg_id);
    e = ring_entry_new(ev);
    protobuf_c_message_free_unpacked(&ev->base, NULL);
    memset(&s, 0, sizeof(s));
    req.filter = (Tally__V1__EventFilter *)f;
    s.req = &req;
    if (f != NULL && f->aggregate_id[0]) /* normalized by the handler */
        for (size_t i = 0; i <= strlen(f->aggregate_id) && i < sizeof(s.aggregate_id); i++)
            s.aggregate_id[i] = (char)(f->aggregate_id[i] >= 'A' && f->aggregate_id[i] <= 'F'
                                           ? f->aggregate_id[i] + 32
                                           : f->aggregate_id[i]);
    m = sub_live_match(&s, e);
    ring_entry_free(e);
    return m;
}

static void test_live_filter_follows_the_sql_rules(void)
{
    Tally__V1__EventFilter f = TALLY__V1__EVENT_FILTER__INIT;
    char *types[] = {(char *)"transfer", (char *)"account"};
    char *prefixes[] = {(char *)"Transfer", (char *)"Dep"};
    char *like_chars[] = {(char *)"Dep%", (char *)"D_posited"};

    CU_ASSERT(match(NULL, "Deposited", "account", AGG, "c"));
    CU_ASSERT(match(&f, "Deposited", "account", AGG, "c")); /* empty filter */
    f.n_aggregate_types = 1;
    f.aggregate_types = types;
    CU_ASSERT(!match(&f, "Deposited", "account", AGG, "c"));
    CU_ASSERT(match(&f, "TransferRequested", "transfer", AGG, "c"));
    f.n_aggregate_types = 2;
    CU_ASSERT(match(&f, "Deposited", "account", AGG, "c"));
    f.n_aggregate_types = 0;
    /* aggregate id: compared as a UUID (canonical lower case) */
    f.aggregate_id = (char *)"0190A0B0-0000-7000-8000-0000000000AA";
    CU_ASSERT(match(&f, "Deposited", "account", AGG, "c"));
    CU_ASSERT(!match(&f, "Deposited", "account", "0190a0b0-0000-7000-8000-0000000000ab", "c"));
    f.aggregate_id = (char *)"";
    /* prefixes: any of them; case-sensitive; LIKE's % and _ are literal */
    f.n_event_type_prefixes = 2;
    f.event_type_prefixes = prefixes;
    CU_ASSERT(match(&f, "Deposited", "account", AGG, "c"));
    CU_ASSERT(match(&f, "TransferCompleted", "transfer", AGG, "c"));
    CU_ASSERT(!match(&f, "Withdrawn", "account", AGG, "c"));
    CU_ASSERT(!match(&f, "deposited", "account", AGG, "c"));
    f.event_type_prefixes = like_chars;
    CU_ASSERT(!match(&f, "Deposited", "account", AGG, "c"));
    f.n_event_type_prefixes = 0;
    /* correlation: exact */
    f.correlation_id = (char *)"corr-1";
    CU_ASSERT(match(&f, "Deposited", "account", AGG, "corr-1"));
    CU_ASSERT(!match(&f, "Deposited", "account", AGG, "corr-10"));
    CU_ASSERT(!match(&f, "Deposited", "account", AGG, ""));
    /* all conditions at once */
    f.n_aggregate_types = 1;
    f.aggregate_types = &types[1];
    f.n_event_type_prefixes = 1;
    f.event_type_prefixes = &prefixes[1];
    f.aggregate_id = (char *)AGG;
    CU_ASSERT(match(&f, "Deposited", "account", AGG, "corr-1"));
    CU_ASSERT(!match(&f, "Deposited", "transfer", AGG, "corr-1"));
}

static CU_TestInfo ring_tests[] = {
    {"an entry serializes like the typed message",
     test_ring_entry_serializes_like_the_typed_message},
    {"window and join, before and after start", test_ring_window_and_join_before_and_after_start},
    {"eviction moves lo and refuses older positions",
     test_ring_eviction_moves_lo_and_refuses_old_positions},
    {"the live filter follows the SQL rules", test_live_filter_follows_the_sql_rules},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"ring", NULL, NULL, NULL, NULL, ring_tests},
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
