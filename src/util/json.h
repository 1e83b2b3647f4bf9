/* Small cJSON helpers for the files and reports clinfm writes as JSON: one call for a list of
 * number fields (a report's counters, a metric's counts) and one for writing a document to a file
 * atomically. Readers keep to cJSON itself. */
#ifndef CLINFM_UTIL_JSON_H
#define CLINFM_UTIL_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "util/err.h"

typedef struct {
    const char *key;
    double value;
} json_num;

/* Adds each key: value of f to the object o, in order (cJSON_AddNumberToObject). */
void json_add_numbers(cJSON *o, const json_num *f, size_t n);
/* JSON_ADD_NUMBERS(o, {"rows", (double)s->rows}, {"events", (double)s->events}, ...) */
#define JSON_ADD_NUMBERS(o, ...) \
    json_add_numbers((o), (const json_num[]){__VA_ARGS__}, sizeof((json_num[]){__VA_ARGS__}) / sizeof(json_num))

typedef struct {
    const char *key;
    const char *value;
} json_str;

/* Adds each key: "value" of f to the object o, in order (cJSON_AddStringToObject). */
void json_add_strings(cJSON *o, const json_str *f, size_t n);
/* JSON_ADD_STRINGS(o, {"source", s->source}, {"file", s->file}, ...) */
#define JSON_ADD_STRINGS(o, ...) \
    json_add_strings((o), (const json_str[]){__VA_ARGS__}, sizeof((json_str[]){__VA_ARGS__}) / sizeof(json_str))

/* Writes root as text (indented when pretty, else on one line) to path atomically
 * (util/atomic_file.h), and deletes root either way. */
int json_write_file(const char *path, cJSON *root, int pretty, cf_err *err);

#endif
