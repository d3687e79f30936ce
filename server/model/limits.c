/* limits.c - limits.h is header-only; this unit keeps the library non-empty
 * while the model folder grows. */
#include "tally_limits.h"

int tally_limits_max_text_bytes(void);

int tally_limits_max_text_bytes(void)
{
    return TALLY_MAX_TEXT_BYTES;
}
