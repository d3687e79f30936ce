/* fold.c - see fold.h. */
#include "fold.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "evcodec.h"
#include "transfer.h"

struct lines {
    char **v;
    size_t n, cap;
};

static int add(struct lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int add(struct lines *l, const char *fmt, ...)
{
    va_list ap;
    char buf[2048];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char **v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(buf);
    return l->v[l->n++] ? 0 : -1;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- the fold ---- */

struct acc {
    char tenant[40];
    struct account_state s;
    int64_t opened_us, updated_us;
};

struct xfer {
    char tenant[40], id[40], source[40], dest[40], currency[4], reference[260], op[40], corr[200],
        reason[260];
    int64_t amount; /* 0 = unknown */
    int64_t req, deb, cred, rev, comp, fail, updated;
    int compensated; /* -1 unknown */
};

struct use {
    char tenant[40], day[11], type[40], currency[4];
    int64_t count, volume;
};

struct fold {
    struct acc *acc;
    size_t nacc, capacc;
    struct xfer *x;
    size_t nx, capx;
    struct use *u;
    size_t nu, capu;
    struct lines out;
};

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    *cap = *cap ? *cap * 2 : 64;
    return realloc(v, *cap * size);
}

static struct acc *find_acc(struct fold *f, const char *tenant, const char *id, int create)
{
    for (size_t i = 0; i < f->nacc; i++)
        if (strcmp(f->acc[i].tenant, tenant) == 0 && strcmp(f->acc[i].s.account_id, id) == 0)
            return &f->acc[i];
    if (!create)
        return NULL;
    f->acc = grow(f->acc, &f->capacc, f->nacc, sizeof(*f->acc));
    memset(&f->acc[f->nacc], 0, sizeof(*f->acc));
    snprintf(f->acc[f->nacc].tenant, sizeof(f->acc[f->nacc].tenant), "%s", tenant);
    account_state_init(&f->acc[f->nacc].s);
    return &f->acc[f->nacc++];
}

static struct xfer *find_x(struct fold *f, const char *tenant, const char *id)
{
    struct xfer *x;

    for (size_t i = 0; i < f->nx; i++)
        if (strcmp(f->x[i].tenant, tenant) == 0 && strcmp(f->x[i].id, id) == 0)
            return &f->x[i];
    f->x = grow(f->x, &f->capx, f->nx, sizeof(*f->x));
    x = &f->x[f->nx++];
    memset(x, 0, sizeof(*x));
    snprintf(x->tenant, sizeof(x->tenant), "%s", tenant);
    snprintf(x->id, sizeof(x->id), "%s", id);
    x->compensated = -1;
    return x;
}

static void usage(struct fold *f, const char *tenant, int64_t us, const char *type,
                  const char *currency, int64_t volume)
{
    char day[11];
    time_t secs = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    for (size_t i = 0; i < f->nu; i++) {
        struct use *u = &f->u[i];

        if (strcmp(u->tenant, tenant) == 0 && strcmp(u->day, day) == 0 &&
            strcmp(u->type, type) == 0 && strcmp(u->currency, currency) == 0) {
            u->count++;
            u->volume += volume;
            return;
        }
    }
    f->u = grow(f->u, &f->capu, f->nu, sizeof(*f->u));
    memset(&f->u[f->nu], 0, sizeof(*f->u));
    snprintf(f->u[f->nu].tenant, sizeof(f->u[f->nu].tenant), "%s", tenant);
    snprintf(f->u[f->nu].day, sizeof(f->u[f->nu].day), "%s", day);
    snprintf(f->u[f->nu].type, sizeof(f->u[f->nu].type), "%s", type);
    snprintf(f->u[f->nu].currency, sizeof(f->u[f->nu].currency), "%s", currency);
    f->u[f->nu].count = 1;
    f->u[f->nu].volume = volume;
    f->nu++;
}

static void leg(struct xfer *x, const char *src, const char *dst, const struct money *m, int64_t us)
{
    if (!x->source[0])
        snprintf(x->source, sizeof(x->source), "%s", src);
    if (!x->dest[0])
        snprintf(x->dest, sizeof(x->dest), "%s", dst);
    x->amount = m->minor_units;
    snprintf(x->currency, sizeof(x->currency), "%s", m->currency);
    if (us > x->updated)
        x->updated = us;
}

static const char *status_name(enum account_status s)
{
    return s == ACCOUNT_STATUS_OPEN ? "OPEN" : s == ACCOUNT_STATUS_FROZEN ? "FROZEN" : "CLOSED";
}

/* Row columns: tx, gp, tenant, type, id, version, event_type, data,
 * operation, correlation, recorded_us. */
static int fold_event(struct fold *f, PGresult *res, int r)
{
    const char *tenant = PQgetvalue(res, r, 2), *agg = PQgetvalue(res, r, 4);
    const char *etype = PQgetvalue(res, r, 6), *data = PQgetvalue(res, r, 7);
    const char *op = PQgetvalue(res, r, 8), *corr = PQgetvalue(res, r, 9);
    int64_t us = strtoll(PQgetvalue(res, r, 10), NULL, 10);
    Tally__V1__Event env = TALLY__V1__EVENT__INIT;
    trpc_status st;
    int rc = -1;

    if (evcodec_payload_from_json(&env, etype, data, strlen(data), &st) != GRPC_STATUS_OK) {
        fprintf(stderr, "fold: event %s: %s\n", PQgetvalue(res, r, 1), st.msg);
        return -1;
    }
    if (account_event_type_is_account(env.payload_case)) {
        struct account_event ev;
        struct acc *a =
            find_acc(f, tenant, agg, env.payload_case == TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED);
        const struct money *m = NULL;
        const char *kind = NULL, *cp = "", *xid = "", *pay = "", *ref = "";
        int sign = 1;

        if (a == NULL || account_event_from_proto(&env, &ev, &st) != GRPC_STATUS_OK ||
            account_evolve(&a->s, &ev, &st) != GRPC_STATUS_OK) {
            fprintf(stderr, "fold: event %s (%s %s v%s) cannot be applied: %s\n",
                    PQgetvalue(res, r, 1), etype, agg, PQgetvalue(res, r, 5),
                    a ? st.msg : "no such account");
            goto out;
        }
        if (ev.type == TALLY__V1__EVENT__PAYLOAD_ACCOUNT_OPENED)
            a->opened_us = us;
        a->updated_us = us;
        switch (ev.type) {
        case TALLY__V1__EVENT__PAYLOAD_DEPOSITED:
            kind = "DEPOSIT", m = &ev.u.deposited.amount, ref = ev.u.deposited.reference;
            break;
        case TALLY__V1__EVENT__PAYLOAD_WITHDRAWN:
            kind = "WITHDRAWAL", sign = -1, m = &ev.u.withdrawn.amount,
            ref = ev.u.withdrawn.reference;
            break;
        case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBITED:
            kind = "TRANSFER_OUT", sign = -1, m = &ev.u.transfer_debited.amount,
            cp = ev.u.transfer_debited.counterpart_account_id,
            xid = ref = ev.u.transfer_debited.transfer_id;
            leg(find_x(f, tenant, xid), agg, cp, m, us);
            find_x(f, tenant, xid)->deb = us;
            break;
        case TALLY__V1__EVENT__PAYLOAD_TRANSFER_CREDITED:
            kind = "TRANSFER_IN", m = &ev.u.transfer_credited.amount,
            cp = ev.u.transfer_credited.counterpart_account_id,
            xid = ref = ev.u.transfer_credited.transfer_id;
            leg(find_x(f, tenant, xid), cp, agg, m, us);
            find_x(f, tenant, xid)->cred = us;
            break;
        case TALLY__V1__EVENT__PAYLOAD_TRANSFER_DEBIT_REVERSED:
            kind = "TRANSFER_REVERSAL", m = &ev.u.transfer_debit_reversed.amount,
            cp = ev.u.transfer_debit_reversed.counterpart_account_id,
            xid = ref = ev.u.transfer_debit_reversed.transfer_id;
            leg(find_x(f, tenant, xid), agg, cp, m, us);
            find_x(f, tenant, xid)->rev = us;
            break;
        case TALLY__V1__EVENT__PAYLOAD_PAYMENT_MADE:
            kind = "PAYMENT", sign = -1, m = &ev.u.payment_made.amount,
            pay = ev.u.payment_made.payment_id, ref = ev.u.payment_made.merchant_reference;
            break;
        case TALLY__V1__EVENT__PAYLOAD_PAYMENT_REFUNDED:
            kind = "REFUND", m = &ev.u.payment_refunded.amount,
            pay = ref = ev.u.payment_refunded.payment_id;
            break;
        default:
            break;
        }
        usage(f, tenant, us, etype, m ? m->currency : "", m ? m->minor_units : 0);
        if (kind)
            add(&f->out,
                "E|%s|%s|%" PRId64 "|%s|%" PRId64 "|%s|%" PRId64 "|%s|%s|%s|%s|%s|%s|%" PRId64
                "|%s|%s",
                tenant, agg, a->s.version, kind, sign * m->minor_units, m->currency, a->s.balance,
                cp, xid, pay, ref, op, corr, us, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
    } else {
        struct transfer_event ev;
        struct xfer *x = find_x(f, tenant, agg);

        if (transfer_event_from_proto(&env, &ev, &st) != GRPC_STATUS_OK) {
            fprintf(stderr, "fold: event %s: %s\n", PQgetvalue(res, r, 1), st.msg);
            goto out;
        }
        if (us > x->updated)
            x->updated = us;
        if (ev.type == TALLY__V1__EVENT__PAYLOAD_TRANSFER_REQUESTED) {
            snprintf(x->source, sizeof(x->source), "%s", ev.u.transfer_requested.source_account_id);
            snprintf(x->dest, sizeof(x->dest), "%s",
                     ev.u.transfer_requested.destination_account_id);
            x->amount = ev.u.transfer_requested.amount.minor_units;
            snprintf(x->currency, sizeof(x->currency), "%s",
                     ev.u.transfer_requested.amount.currency);
            snprintf(x->reference, sizeof(x->reference), "%s", ev.u.transfer_requested.reference);
            snprintf(x->op, sizeof(x->op), "%s", op);
            snprintf(x->corr, sizeof(x->corr), "%s", corr);
            x->req = us;
            usage(f, tenant, us, etype, ev.u.transfer_requested.amount.currency,
                  ev.u.transfer_requested.amount.minor_units);
        } else if (ev.type == TALLY__V1__EVENT__PAYLOAD_TRANSFER_COMPLETED) {
            x->comp = us;
            usage(f, tenant, us, etype, "", 0);
        } else {
            x->fail = us;
            snprintf(x->reason, sizeof(x->reason), "%s", ev.u.transfer_failed.reason);
            x->compensated = ev.u.transfer_failed.compensated;
            usage(f, tenant, us, etype, "", 0);
        }
    }
    rc = 0;
out:
    evcodec_payload_clear(&env);
    return rc;
}

static char *us_text(int64_t us, char *buf)
{
    if (us == 0)
        buf[0] = '\0';
    else
        snprintf(buf, 24, "%" PRId64, us);
    return buf;
}

static int fold_log(PGconn *conn, struct fold *f)
{
    static const char sql[] =
        "SELECT tx_id::text, global_position, tenant_id::text, aggregate_type,"
        "       aggregate_id::text, version, event_type, data::text, operation_id::text,"
        "       correlation_id, (extract(epoch FROM recorded_at) * 1000000)::bigint"
        "  FROM events e ORDER BY e.tx_id, e.global_position"; /* e.: not the text column */
    PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    int rc = -1;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "fold: %s", PQresultErrorMessage(res));
        goto out;
    }
    for (int r = 0; r < PQntuples(res); r++)
        if (fold_event(f, res, r) != 0)
            goto out;
    for (size_t i = 0; i < f->nacc; i++) {
        struct acc *a = &f->acc[i];

        add(&f->out, "A|%s|%s|%s|%s|%s|%" PRId64 "|%" PRId64 "|%" PRId64 "|%" PRId64 "|%" PRId64,
            a->tenant, a->s.account_id, a->s.owner, a->s.currency, status_name(a->s.status),
            a->s.balance, a->s.overdraft_limit, a->s.version, a->opened_us, a->updated_us);
    }
    for (size_t i = 0; i < f->nx; i++) {
        struct xfer *x = &f->x[i];
        char b[7][24], amount[24];
        const char *state = x->fail   ? "FAILED"
                            : x->comp ? "COMPLETED"
                            : x->rev  ? "REVERSED"
                            : x->deb  ? "DEBITED"
                                      : "REQUESTED";
        const char *status = x->fail ? "FAILED" : x->comp ? "SUCCEEDED" : "PENDING";

        if (x->amount)
            snprintf(amount, sizeof(amount), "%" PRId64, x->amount);
        else
            amount[0] = '\0';
        add(&f->out, "T|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s", x->tenant,
            x->id, x->source, x->dest, amount, x->currency, x->req ? x->reference : "", x->op,
            x->corr, us_text(x->req, b[0]), us_text(x->deb, b[1]), us_text(x->cred, b[2]),
            us_text(x->rev, b[3]), us_text(x->comp, b[4]), us_text(x->fail, b[5]),
            x->fail ? x->reason : "",
            x->compensated < 0 ? ""
            : x->compensated   ? "t" /* concat() of a boolean */
                               : "f",
            state, status, us_text(x->updated, b[6]));
    }
    for (size_t i = 0; i < f->nu; i++)
        add(&f->out, "U|%s|%s|%s|%s|%" PRId64 "|%" PRId64, f->u[i].tenant, f->u[i].day,
            f->u[i].type, f->u[i].currency, f->u[i].count, f->u[i].volume);
    rc = 0;
out:
    PQclear(res);
    return rc;
}

/* ---- the tables ---- */

/* The same lines from the tables; NULL as '', timestamps as epoch
 * microseconds. */
static const struct {
    const char *select;
    const char *table;
} TABLE_SQL[] = {
    {"SELECT concat('A|', tenant_id, '|', account_id, '|', owner, '|', currency, '|', status,"
     " '|', balance, '|', overdraft_limit, '|', version,"
     " '|', (extract(epoch FROM opened_at) * 1000000)::bigint,"
     " '|', (extract(epoch FROM updated_at) * 1000000)::bigint)",
     "accounts"},

    {"SELECT concat('E|', tenant_id, '|', account_id, '|', version, '|', kind, '|', amount,"
     " '|', currency, '|', balance_after, '|', counterpart_account_id, '|', transfer_id,"
     " '|', payment_id, '|', reference, '|', operation_id, '|', correlation_id,"
     " '|', (extract(epoch FROM recorded_at) * 1000000)::bigint, '|', tx_id,"
     " '|', global_position)",
     "entries"},

    {"SELECT concat('T|', tenant_id, '|', transfer_id, '|', source_account_id,"
     " '|', destination_account_id, '|', amount, '|', currency, '|', reference,"
     " '|', operation_id, '|', correlation_id,"
     " '|', (extract(epoch FROM requested_at) * 1000000)::bigint,"
     " '|', (extract(epoch FROM debited_at) * 1000000)::bigint,"
     " '|', (extract(epoch FROM credited_at) * 1000000)::bigint,"
     " '|', (extract(epoch FROM reversed_at) * 1000000)::bigint,"
     " '|', (extract(epoch FROM completed_at) * 1000000)::bigint,"
     " '|', (extract(epoch FROM failed_at) * 1000000)::bigint,"
     " '|', failure_reason, '|', compensated, '|', state, '|', status,"
     " '|', (extract(epoch FROM updated_at) * 1000000)::bigint)",
     "transfers"},

    {"SELECT concat('U|', tenant_id, '|', day, '|', event_type, '|', currency, '|', event_count,"
     " '|', volume)",
     "usage_daily"},
};

static int read_tables(PGconn *conn, const char *schema, struct lines *l)
{
    int rc = 0;

    for (size_t q = 0; q < sizeof(TABLE_SQL) / sizeof(TABLE_SQL[0]) && rc == 0; q++) {
        char sql[1024];
        PGresult *res;

        snprintf(sql, sizeof(sql), "%s FROM %s.%s", TABLE_SQL[q].select, schema,
                 TABLE_SQL[q].table);
        res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "fold: %s", PQresultErrorMessage(res));
            rc = -1;
        }
        for (int r = 0; rc == 0 && r < PQntuples(res); r++)
            rc = add(l, "%s", PQgetvalue(res, r, 0));
        PQclear(res);
    }
    return rc;
}

int fold_compare(PGconn *conn, const char *schema, size_t *rows)
{
    struct fold f;
    struct lines db = {0};
    int rc = -1, shown = 0;
    size_t i = 0, j = 0;

    memset(&f, 0, sizeof(f));
    if (fold_log(conn, &f) != 0 || read_tables(conn, schema, &db) != 0)
        goto out;
    qsort(f.out.v, f.out.n, sizeof(char *), cmp_str);
    qsort(db.v, db.n, sizeof(char *), cmp_str);
    rc = 0;
    while (i < f.out.n || j < db.n) {
        int c = i == f.out.n ? 1 : j == db.n ? -1 : strcmp(f.out.v[i], db.v[j]);

        if (c == 0) {
            i++, j++;
            continue;
        }
        rc = -1;
        if (shown++ < 10)
            fprintf(stderr, "fold: %s %s\n", c < 0 ? "missing in the table:" : "unexpected row: ",
                    c < 0 ? f.out.v[i] : db.v[j]);
        if (c < 0)
            i++;
        else
            j++;
    }
    if (rows)
        *rows = f.out.n;
out:
    free(f.acc);
    free(f.x);
    free(f.u);
    lines_free(&f.out);
    lines_free(&db);
    return rc;
}
