/* Timestamps: int64 microseconds since 1970-01-01T00:00:00Z, as in MEDS.
 *
 * TIME_NULL marks an event without a time (a static fact such as sex). Parsing is strict:
 * an unparsable string is an error, never a silent zero. */
#ifndef CLINFM_UTIL_TIMEUTIL_H
#define CLINFM_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define TIME_NULL INT64_MIN
#define USEC_PER_SEC INT64_C(1000000)
#define USEC_PER_DAY (INT64_C(86400) * USEC_PER_SEC)

/* Days since 1970-01-01 for a proleptic Gregorian date (any year from -9999 to 9999). */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* Parses ISO-8601-like text: "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS[.ffffff]]", the same with 'T',
 * and an optional "Z" or "+HH:MM"/"-HH:MM" offset (converted to UTC). Returns 0 on success,
 * -1 if the text is not such a timestamp or names an impossible date. If has_zone is not NULL
 * it is set to 1 when the text carried an explicit zone and 0 otherwise. Text is len bytes,
 * not necessarily NUL-terminated. */
int time_parse_iso(const char *s, size_t len, int64_t *out, int *has_zone);

/* Parses with a strftime-like format limited to %Y %m %d %H %M %S %f (fraction) %y and literal
 * characters. Returns 0 or -1. */
int time_parse_format(const char *s, size_t len, const char *fmt, int64_t *out);

/* Formats as "YYYY-MM-DDTHH:MM:SS[.ffffff]" (fraction only when nonzero); "" for TIME_NULL.
 * buf needs 40 bytes. Returns buf. */
char *time_format_iso(int64_t t, char *buf, size_t cap);

#endif
