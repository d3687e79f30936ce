/* qexec.c - see qexec.h. */
#include "qexec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

void *qry_worker_init(void *arg, int index)
{
    struct qry_env *env = arg;
    struct pg_worker *w = malloc(sizeof(*w));

    (void)index;
    if (w)
        pg_worker_init(w, &env->pg);
    return w;
}

void qry_worker_fini(void *arg)
{
    struct pg_worker *w = arg;

    if (w == NULL)
        return;
    pg_worker_cleanup(w);
    free(w);
}

grpc_status_code qry_begin(struct qry *q, trpc_call *call, const Tally__V1__Position *min_position,
                           trpc_status *st)
{
    struct pg_worker *w = trpc_call_worker_data(call);
    size_t len = 0;
    const char *auth_value;

    q->call = call;
    q->env = trpc_call_service_data(call);
    q->conn = pg_worker_conn(w, st);
    if (q->conn == NULL)
        return st->code;
    trpc_call_on_cancel(call, pg_worker_cancel, w);
    auth_value = trpc_call_metadata(call, "authorization", &len);
    if (auth_authenticate(q->env->auth, q->conn, auth_value, len, &q->who, st) != GRPC_STATUS_OK)
        return st->code;
    if (min_position && (min_position->tx_id || min_position->global_position)) {
        struct store_position p = {min_position->tx_id, min_position->global_position};

        if (min_position->global_position < 0)
            return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                                   "min_position.global_position must be >= 0");
        if (ckwatch_wait(q->env->watch, p, call, 0, st) != GRPC_STATUS_OK)
            return st->code;
    }
    st->code = GRPC_STATUS_OK;
    st->msg[0] = '\0';
    return GRPC_STATUS_OK;
}

grpc_status_code qry_page_size(const char *field, int32_t requested, int def, int max, int *out,
                               trpc_status *st)
{
    if (requested < 0 || requested > max)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s must be 0..%d (got %d)", field,
                               max, (int)requested);
    *out = requested == 0 ? def : requested;
    return GRPC_STATUS_OK;
}

Google__Protobuf__Timestamp *qry_timestamp(trpc_call *call, int64_t unix_us)
{
    Google__Protobuf__Timestamp *ts = (Google__Protobuf__Timestamp *)trpc_call_new_message(
        call, &google__protobuf__timestamp__descriptor);

    ts->seconds = unix_us / 1000000;
    ts->nanos = (int32_t)(unix_us % 1000000) * 1000;
    if (ts->nanos < 0) {
        ts->seconds -= 1;
        ts->nanos += 1000000000;
    }
    return ts;
}

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, as Unix seconds */
#define MIN_SECONDS (-62135596800LL)
#define MAX_SECONDS 253402300799LL

grpc_status_code qry_timestamp_us(const char *field, const Google__Protobuf__Timestamp *ts,
                                  int64_t *out, trpc_status *st)
{
    if (ts->nanos < 0 || ts->nanos > 999999999)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT, "%s.nanos must be 0..999999999",
                               field);
    if (ts->seconds < MIN_SECONDS || ts->seconds > MAX_SECONDS)
        return trpc_status_set(st, GRPC_STATUS_INVALID_ARGUMENT,
                               "%s must be between 0001-01-01 and 9999-12-31", field);
    *out = ts->seconds * 1000000 + ts->nanos / 1000;
    return GRPC_STATUS_OK;
}

grpc_status_code qry_finish(trpc_call *call, const trpc_status *st)
{
    if (st->code == GRPC_STATUS_OK)
        return GRPC_STATUS_OK;
    return trpc_call_fail_status(call, st);
}
