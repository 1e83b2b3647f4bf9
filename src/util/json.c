/* cJSON helpers; see json.h. */
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

#include "util/atomic_file.h"

void json_add_numbers(cJSON *o, const json_num *f, size_t n) {
    for (size_t i = 0; i < n; i++) cJSON_AddNumberToObject(o, f[i].key, f[i].value);
}

void json_add_strings(cJSON *o, const json_str *f, size_t n) {
    for (size_t i = 0; i < n; i++) cJSON_AddStringToObject(o, f[i].key, f[i].value);
}

int json_write_file(const char *path, cJSON *root, int pretty, cf_err *err) {
    char *text = pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc = atomic_write_file(path, text, strlen(text), err);
    free(text);
    return rc;
}
