/* Text forms of store values shared by inspect and export. */
#ifndef CLINFM_STORE_FORMAT_VALUE_H
#define CLINFM_STORE_FORMAT_VALUE_H

#include <stddef.h>
#include <stdio.h>

/* Shortest decimal that reads back as the same float ("" for NaN). buf needs 32 bytes. */
char *format_float_shortest(float v, char *buf, size_t cap);
/* Writes s as one RFC 4180 field (quoted when it holds a comma, quote, CR or LF). */
void csv_write_field(FILE *f, const char *s, size_t len);

#endif
