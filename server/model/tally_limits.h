/* tally_limits.h - input limits shared by validation, storage and clients. */
#ifndef SERVER_MODEL_TALLY_LIMITS_H
#define SERVER_MODEL_TALLY_LIMITS_H

#define TALLY_MAX_TEXT_BYTES        256 /* owner, reference, reason, merchant reference */
#define TALLY_MAX_IDEMPOTENCY_BYTES 128
#define TALLY_MAX_CORRELATION_BYTES 128
#define TALLY_UUID_STR_LEN          36

#endif /* SERVER_MODEL_TALLY_LIMITS_H */
