#!/usr/bin/env bash
# gen_corpus.sh - (re)writes the generated seeds of tests/fuzz/corpus/ (files
# named seed-*; hand-made regression inputs, named regress-*, are left
# alone). Run once after changing a target's input format:
#
#   tests/fuzz/gen_corpus.sh [build-dir]      (default build/fuzz)
#
# Requests are written with `protoc --encode` from text format; the JSON
# target's type numbering comes from the built fuzz_json
# (FUZZ_JSON_LIST_TYPES=1). Each seed is a selector prefix + payload, as the
# target's header comment describes.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/fuzz}
corpus=$root/tests/fuzz/corpus
grpc_proto=/usr/share/grpc-proto
cd "$root"

encode() { # encode <type> <text>: wire bytes on stdout
    printf '%s' "$2" | protoc --encode="$1" -I proto -I "$grpc_proto" -I /usr/include \
        proto/tally/v1/*.proto grpc/reflection/v1alpha/reflection.proto
}
byte() { printf "\\x$(printf %02x "$1")"; }
seed() { # seed <target> <name>: stdin -> corpus/<target>/seed-<name>
    mkdir -p "$corpus/$1"
    cat >"$corpus/$1/seed-$2"
}

rm -f "$corpus"/*/seed-*

A=0190a0b0-c0d0-7000-8000-0000000000aa
B=0190a0b0-c0d0-7000-8000-0000000000bb
P=0190a0b0-c0d0-7000-8000-0000000000cc
T=0190a0b0-c0d0-7000-8000-0000000000dd

# A page token as server/query/cursor.c makes it: base64url (no padding) of
# {"c":kind,"f":hex(sha256(kind\0 tenant\0 (tag param\0)...)[:16]),"k":[keys]}.
# token <kind> <tenant> <params, "-" = NULL, comma-separated> <keys, comma-separated>
token() {
    python3 - "$@" <<'PY'
import base64, hashlib, json, sys
kind, tenant, params, keys = sys.argv[1:5]
h = hashlib.sha256(kind.encode() + b"\0" + tenant.encode() + b"\0")
for p in params.split(","):
    h.update(b"\0" if p == "-" else b"\1" + p.encode() + b"\0")
text = json.dumps({"c": kind, "f": h.hexdigest()[:32], "k": keys.split(",")}, separators=(",", ":"))
sys.stdout.write(base64.urlsafe_b64encode(text.encode()).decode().rstrip("="))
PY
}

# ---- fuzz_request: method index, state byte, request ----
req() { # req <name> <method-index> <state-byte> <type> <text>
    { byte "$2"; byte "$3"; encode "tally.v1.$4" "$5"; } | seed fuzz_request "$1"
}
req open 0 0 OpenAccountRequest "account_id: \"$A\" owner: \"Ada\" currency: \"EUR\" overdraft_limit: 100 idempotency_key: \"k1\""
req open-generated 0 0 OpenAccountRequest 'owner: "Bob" currency: "JPY"'
req deposit 1 1 DepositRequest "account_id: \"$A\" amount { minor_units: 1234 currency: \"EUR\" } reference: \"salary\" expected_version { value: 5 }"
req withdraw 2 2 WithdrawRequest "account_id: \"$A\" amount { minor_units: 150 currency: \"EUR\" } reference: \"atm\""
req transfer 3 33 TransferRequest "source_account_id: \"$A\" destination_account_id: \"$B\" amount { minor_units: 500 currency: \"EUR\" } reference: \"rent\" wait: true transfer_id: \"$T\" idempotency_key: \"t-1\""
req pay 4 1 PayRequest "account_id: \"$A\" amount { minor_units: 99 currency: \"EUR\" } merchant_reference: \"order-42\" payment_id: \"$P\""
req refund 5 9 RefundRequest "account_id: \"$A\" payment_id: \"$P\" amount { minor_units: 100 currency: \"EUR\" }"
req freeze 6 1 FreezeAccountRequest "account_id: \"$A\" reason: \"fraud check\""
req unfreeze 7 3 UnfreezeAccountRequest "account_id: \"$A\" reason: \"cleared\" expected_version { value: 4 }"
req close 8 7 CloseAccountRequest "account_id: \"$A\" reason: \"customer left\""
req get-account 9 0 GetAccountRequest "account_id: \"$A\" min_position { tx_id: 7 global_position: 3 }"
E=0190a0b0-c0d0-7000-8000-0000000000ee # fuzz_request's tenant
req list-accounts 10 0 ListAccountsRequest 'status: ACCOUNT_STATUS_OPEN owner: "Ada" currency: "EUR" page_size: 10 page_token: "abc"'
req list-accounts-token 10 0 ListAccountsRequest "status: ACCOUNT_STATUS_OPEN owner: \"Ada\" currency: \"EUR\" page_token: \"$(token accounts $E OPEN,Ada,EUR 1700000000000000,$A)\""
req list-accounts-token-overflow 10 0 ListAccountsRequest "page_token: \"$(token accounts $E -,-,- 9223372036854775807,$A)\""
req tenant-usage-signed-day 18 0 GetTenantUsageRequest 'from_date: "1970-01-+1" to_date: "1970-01-02"'
req list-entries-token 11 0 ListEntriesRequest "account_id: \"$A\" direction: READ_DIRECTION_BACKWARDS page_token: \"$(token entries $E $A,backwards,-/- 5)\""
req list-entries 11 0 ListEntriesRequest "account_id: \"$A\" direction: READ_DIRECTION_BACKWARDS from_time { seconds: 1700000000 } to_time { seconds: 1800000000 nanos: 5 } page_size: 5"
req get-operation 12 0 GetOperationRequest "operation_id: \"$P\""
req get-transfer 13 0 GetTransferRequest "transfer_id: \"$T\""
req get-account-at-version 14 0 GetAccountAtRequest "account_id: \"$A\" version: 3"
req get-account-at-time 14 0 GetAccountAtRequest "account_id: \"$A\" time { seconds: 1700000000 nanos: 999999999 }"
req read-stream 15 0 ReadStreamRequest "aggregate_type: \"account\" aggregate_id: \"$A\" from_version: 2 direction: READ_DIRECTION_BACKWARDS limit: 10"
req read-all 16 0 ReadAllRequest "after { tx_id: 10 global_position: 3 } filter { aggregate_types: \"account\" aggregate_types: \"transfer\" aggregate_id: \"$A\" event_type_prefixes: \"Transfer\" correlation_id: \"c-1\" } limit: 50"
req by-correlation 17 0 ListEventsByCorrelationRequest 'correlation_id: "c-1" limit: 20'
req tenant-usage 18 0 GetTenantUsageRequest 'from_date: "2024-01-01" to_date: "2024-01-31"'
req projection-status 19 0 GetProjectionStatusRequest 'min_position { tx_id: 1 global_position: 1 }'
req subscribe 20 0 SubscribeRequest "start: START_AFTER after { tx_id: 5 global_position: 9 } filter { event_type_prefixes: \"Deposit\" } heartbeat_interval_seconds: 5"

# ---- fuzz_json: type selector (index * 2 + mode), JSON text or wire bytes ----
types=$(FUZZ_JSON_LIST_TYPES=1 "$build/tests/fuzz/fuzz_json" -runs=0 2>/dev/null </dev/null)
idx() { awk -v t="$1" '$2 == t { print $1 }' <<<"$types"; }
jtext() { # jtext <name> <full type> <json>
    { byte $(($(idx "$2") * 2)); printf '%s' "$3"; } | seed fuzz_json "$1"
}
jwire() { # jwire <name> <full type> <text format>
    { byte $(($(idx "$2") * 2 + 1)); encode "$2" "$3"; } | seed fuzz_json "$1"
}
jtext event tally.v1.Event "$(cat tests/data/json/event_deposited.canonical.json)"
jtext event-jsonb tally.v1.Event "$(cat tests/data/json/event_deposited.jsonb.json)"
jtext deposit-request tally.v1.DepositRequest "{\"accountId\":\"$A\",\"amount\":{\"minorUnits\":\"1234\",\"currency\":\"EUR\"},\"reference\":\"r\\u00e9f \\ud83d\\ude00\",\"expectedVersion\":\"5\"}"
jtext read-all tally.v1.ReadAllRequest '{"after":{"txId":"10","globalPosition":3},"filter":{"aggregate_types":["account"],"eventTypePrefixes":["Transfer"]},"limit":1e2}'
jtext projection-status tally.v1.ProjectionStatus '{"checkpoint":{},"lagSeconds":"NaN","notificationQueueUsage":0.25,"updatedAt":"2024-05-01T12:00:00+02:00"}'
jtext timestamp google.protobuf.Timestamp '"9999-12-31T23:59:59.999999999Z"'
jtext int64-value google.protobuf.Int64Value '"-9223372036854775808"'
jtext subscribe-response tally.v1.SubscribeResponse '{"caughtUp":{"position":{"txId":"1","globalPosition":"2"}}}'
jwire event-wire tally.v1.Event "event_id: \"e\" version: 3 position { tx_id: 18446744073709551615 global_position: 42 } recorded_at { seconds: 1714564800 nanos: 250000000 } transfer_failed { transfer_id: \"$T\" reason: \"no funds\" compensated: true }"
jwire account-wire tally.v1.Account "account_id: \"$A\" status: ACCOUNT_STATUS_FROZEN balance { minor_units: -5 currency: \"EUR\" } opened_at { seconds: -62135596800 }"
jwire usage-wire tally.v1.GetTenantUsageResponse 'rows { date: "2024-01-01" event_type: "Deposited" event_count: 3 volume { minor_units: 10 currency: "EUR" } volume { minor_units: 7 currency: "JPY" } }'

# ---- fuzz_reflection: ServerReflectionRequest ----
refl() { encode grpc.reflection.v1alpha.ServerReflectionRequest "$2" | seed fuzz_reflection "$1"; }
refl list 'host: "localhost" list_services: ""'
refl by-file 'file_by_filename: "tally/v1/command.proto"'
refl by-symbol 'file_containing_symbol: "tally.v1.CommandService.Deposit"'
refl by-nested-symbol 'file_containing_symbol: ".tally.v1.SubscribeRequest.Start"'
refl by-extension 'file_containing_extension { containing_type: "google.protobuf.MessageOptions" extension_number: 1 }'
refl extension-numbers 'all_extension_numbers_of_type: ".tally.v1.Event"'

# ---- fuzz_filter_sql: mode byte, then '\n'-separated values or an EventFilter ----
{ byte 0; printf 'account\ntransfer'; } | seed fuzz_filter_sql split-plain
{ byte 0; printf 'Trans%%fer\n_x\n\\\n"quoted"\n{a,b}\nNULL\n'"'"'; DROP TABLE events; --'; } | seed fuzz_filter_sql split-metachars
{ byte 1; encode tally.v1.EventFilter "aggregate_types: \"account\" aggregate_id: \"$A\" event_type_prefixes: \"Dep\" event_type_prefixes: \"100%_\" correlation_id: \"c\""; } | seed fuzz_filter_sql filter

# ---- fuzz_cursor: mode byte (bit 0 round trip, bit 1 entries, bit 2 other params), data ----
C=0190a0b0-c0d0-7000-8000-0000000000aa # fuzz_cursor's tenant
{ byte 0; token accounts $C OPEN,owner,- 1700000000000000,$A; } | seed fuzz_cursor decode-accounts
{ byte 6; token entries $C OPEN,owner,EUR 42; } | seed fuzz_cursor decode-entries
{ byte 0; printf 'eyJjIjoiYWNjb3VudHMiLCJmIjoiMDAiLCJrIjpbXX0'; } | seed fuzz_cursor decode-bad-fingerprint
{ byte 1; printf '1700000000000000\n%s' $A; } | seed fuzz_cursor roundtrip-accounts
{ byte 3; printf -- '-9223372036854775808'; } | seed fuzz_cursor roundtrip-entries

# ---- fuzz_scalars: mode (0 parse, 1 format, 2 add/sub, 3 uuid text, 4 uuid bytes, 5 utf-8),
# currency index (48 EUR, 71 JPY, 78 KWD, 31 CLF), data ----
sc() { { byte "$2"; byte "$3"; printf -- "$4"; } | seed fuzz_scalars "$1"; }
sc parse-eur 0 48 '12.34'
sc parse-min 0 48 '-92233720368547758.08'
sc parse-kwd 0 78 '+0.001'
sc parse-jpy 0 71 '500'
sc format 1 31 '\x80\x00\x00\x00\x00\x00\x00\x00'
sc arith 2 0 '\x7f\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x01'
sc uuid-text 3 0 '0190A0B0-c0d0-7000-8000-0000000000AA'
sc uuid-bytes 4 0 '\x01\x90\xa0\xb0\xc0\xd0\x70\x00\x80\x00\x00\x00\x00\x00\x00\xaa'
sc utf8 5 0 'h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80'
sc utf8-surrogate 5 0 'x\xed\xa0\x80'

ls "$corpus"/* | wc -l
