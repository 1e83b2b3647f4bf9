/* Prefetch templates and the state of prefetched values; see serve_prefetch.h. */
#include "serve/serve_prefetch.h"

#include <stdio.h>
#include <string.h>

static const char *const TOKENS[] = {"context.patientId",  "context.userId",
                                     "context.encounterId", "userPractitionerId",
                                     "userPractitionerRoleId", "userPatientId",
                                     "userRelatedPersonId"};

static int token_index(const char *s, size_t n) {
    for (size_t i = 0; i < sizeof TOKENS / sizeof TOKENS[0]; i++)
        if (strlen(TOKENS[i]) == n && !memcmp(TOKENS[i], s, n)) return (int)i;
    return -1;
}

const char *serve_prefetch_check(const char *tpl, const char *hook) {
    (void)hook; /* both hooks carry patientId, userId and (discharge always) encounterId */
    if (!*tpl) return "an empty template";
    if (tpl[0] == '/' || strstr(tpl, "://") || strchr(tpl, '#'))
        return "a template is a relative FHIR read or search (\"Condition?patient="
               "{{context.patientId}}\")";
    for (const char *p = tpl; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) return "a template holds no spaces or control characters";
    for (const char *p = strstr(tpl, "{{"); p; p = strstr(p, "{{")) {
        const char *end = strstr(p + 2, "}}");
        if (!end) return "a token opened with {{ is not closed";
        if (token_index(p + 2, (size_t)(end - p - 2)) < 0)
            return "unknown token (known: context.patientId, context.userId, context.encounterId, "
                   "userPractitionerId, userPractitionerRoleId, userPatientId, userRelatedPersonId)";
        p = end + 2;
    }
    if (strstr(tpl, "}}") && !strstr(tpl, "{{")) return "a token closed with }} was never opened";
    return NULL;
}

/* The id part of userId when its type matches want ("Practitioner"), else NULL. */
static const char *user_part(const char *user_id, const char *want) {
    if (!user_id) return NULL;
    size_t n = strlen(want);
    return !strncmp(user_id, want, n) && user_id[n] == '/' ? user_id + n + 1 : NULL;
}

int serve_prefetch_expand(const char *tpl, const serve_prefetch_ctx *ctx, char *out, size_t cap) {
    size_t o = 0;
    const char *p = tpl;
    while (*p) {
        const char *open = strstr(p, "{{");
        size_t lit = open ? (size_t)(open - p) : strlen(p);
        if (o + lit >= cap) return -1;
        memcpy(out + o, p, lit);
        o += lit;
        if (!open) break;
        const char *end = strstr(open + 2, "}}");
        if (!end) return -1;
        const char *v = NULL;
        switch (token_index(open + 2, (size_t)(end - open - 2))) {
        case 0: v = ctx->patient_id; break;
        case 1: v = ctx->user_id; break;
        case 2: v = ctx->encounter_id; break;
        case 3: v = user_part(ctx->user_id, "Practitioner"); break;
        case 4: v = user_part(ctx->user_id, "PractitionerRole"); break;
        case 5: v = user_part(ctx->user_id, "Patient"); break;
        case 6: v = user_part(ctx->user_id, "RelatedPerson"); break;
        default: return -1;
        }
        if (!v || !*v) return -1;
        size_t vl = strlen(v);
        if (o + vl >= cap) return -1;
        memcpy(out + o, v, vl);
        o += vl;
        p = end + 2;
    }
    out[o] = '\0';
    return 0;
}

int serve_prefetch_is_read(const char *tpl) { return !strchr(tpl, '?'); }

int serve_prefetch_has_count(const char *tpl) {
    const char *q = strchr(tpl, '?');
    for (const char *p = q; p; p = strchr(p + 1, '&'))
        if (!strncmp(p + 1, "_count=", 7)) return 1;
    return 0;
}

static int is_type(const cJSON *v, const char *type) {
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(v, "resourceType");
    return cJSON_IsString(rt) && !strcmp(rt->valuestring, type);
}

/* An OperationOutcome reporting an error (or worse): the data it accompanies is not whole. */
static int outcome_is_error(const cJSON *oo) {
    const cJSON *issue, *issues = cJSON_GetObjectItemCaseSensitive(oo, "issue");
    if (!cJSON_IsArray(issues) || !issues->child) return 1; /* a bare outcome is a failure */
    cJSON_ArrayForEach(issue, issues) {
        const cJSON *sev = cJSON_GetObjectItemCaseSensitive(issue, "severity");
        if (!cJSON_IsString(sev) || !strcmp(sev->valuestring, "error") ||
            !strcmp(sev->valuestring, "fatal"))
            return 1;
    }
    return 0;
}

int serve_prefetch_state(const cJSON *v, const char *tpl, const char **why) {
    const char *dummy;
    if (!why) why = &dummy;
    *why = NULL;
    if (!v) {
        *why = "not sent";
        return SERVE_PF_MISSING;
    }
    if (cJSON_IsNull(v)) {
        if (serve_prefetch_is_read(tpl)) {
            *why = "the resource read was not found";
            return SERVE_PF_MISSING;
        }
        return SERVE_PF_EMPTY;
    }
    if (!cJSON_IsObject(v)) {
        *why = "not a FHIR resource";
        return SERVE_PF_MISSING;
    }
    if (is_type(v, "OperationOutcome")) {
        *why = "an OperationOutcome in place of the data";
        return SERVE_PF_MISSING;
    }
    if (is_type(v, "Bundle")) {
        const cJSON *link, *e;
        cJSON_ArrayForEach(link, cJSON_GetObjectItemCaseSensitive(v, "link")) {
            const cJSON *rel = cJSON_GetObjectItemCaseSensitive(link, "relation");
            if (cJSON_IsString(rel) && !strcmp(rel->valuestring, "next") &&
                !serve_prefetch_has_count(tpl)) {
                *why = "a Bundle with more pages";
                return SERVE_PF_MISSING;
            }
        }
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(v, "entry")) {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
            if (is_type(r, "OperationOutcome") && outcome_is_error(r)) {
                *why = "a Bundle carrying an error OperationOutcome";
                return SERVE_PF_MISSING;
            }
        }
    }
    return SERVE_PF_OK;
}
