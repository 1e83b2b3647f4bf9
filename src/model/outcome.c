/* What a zero-shot predictor looks for in sampled futures: its window and its JSON form; see outcome.h. */
#include "model/outcome.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline/timeline_codes.h"

void rt_outcome_free(rt_outcome *o) {
    free(o->outcome);
    free(o->terminal);
    memset(o, 0, sizeof *o);
}

static int64_t anchor_time(int kind, int64_t trigger, int64_t prediction, int64_t gap) {
    return kind == RT_END_TRIGGER ? trigger : kind == RT_END_GAP_END ? prediction + gap : prediction;
}

void rt_outcome_window(const rt_outcome *o, int64_t trigger, int64_t prediction, int64_t last_time,
                       int64_t *start_us, int64_t *budget_us) {
    if (trigger == TIME_NULL) trigger = prediction;
    if (last_time == TIME_NULL) last_time = prediction;
    /* The window's start is measured from the prediction time: nothing is recorded between the
     * last event and then, so generated events belong to the future. */
    int64_t st = anchor_time(o->start_kind, trigger, prediction, o->gap) + o->start_offset - prediction;
    *start_us = st > 0 ? st : 0;
    if (o->end_kind == RT_END_NONE || o->end_kind == RT_END_EPISODE || prediction == TIME_NULL) {
        *budget_us = INT64_MAX;
        return;
    }
    /* The generated clock starts at the last event, so the budget does too. */
    int64_t b = anchor_time(o->end_kind, trigger, prediction, o->gap) + o->end_offset - last_time;
    *budget_us = b > 0 ? b : 0;
}

static const char *end_name(int k) {
    switch (k) {
    case RT_END_TRIGGER: return "trigger";
    case RT_END_PREDICTION: return "prediction";
    case RT_END_GAP_END: return "gap_end";
    case RT_END_EPISODE: return "episode_end";
    default: return "none";
    }
}

static int end_from_name(const char *s) {
    for (int k = RT_END_NONE; k <= RT_END_EPISODE; k++)
        if (!strcmp(s, end_name(k))) return k;
    return -1;
}

char *rt_outcome_describe(const rt_outcome *o, const vocab *v) {
    size_t cap = 4096;
    char *b = malloc(cap);
    if (!b) return NULL;
    if (!o->expressible) {
        snprintf(b, cap, "not expressible zero-shot: %s", o->why);
        return b;
    }
    int n = snprintf(b, cap, "%s of %u outcome token%s (", o->polarity ? "reaching one" : "reaching none", o->n_outcome,
                     o->n_outcome == 1 ? "" : "s");
    int shown = 0;
    for (uint32_t t = 0; t < v->n_tokens && n < (int)cap - 300; t++) {
        if (!o->outcome[t]) continue;
        if (shown == 6) {
            n += snprintf(b + n, cap - (size_t)n, ", ...");
            break;
        }
        n += snprintf(b + n, cap - (size_t)n, "%s%s", shown ? ", " : "", vocab_token_str(v, t));
        shown++;
    }
    if (o->set_codes)
        n += snprintf(b + n, cap - (size_t)n, "; %u of %u listed codes have a token", o->set_codes_with_token,
                      o->set_codes);
    if (o->end_kind == RT_END_EPISODE)
        n += snprintf(b + n, cap - (size_t)n, ") before any of %u episode-end tokens", o->n_terminal);
    else if (o->end_kind == RT_END_NONE)
        n += snprintf(b + n, cap - (size_t)n, ") with no time limit");
    else
        n += snprintf(b + n, cap - (size_t)n, ") within %s %+.1f days on the generated clock", end_name(o->end_kind),
                      (double)o->end_offset / 86400e6);
    snprintf(b + n, cap - (size_t)n, "; [EOT] ends a rollout");
    return b;
}

cJSON *rt_outcome_to_json(const rt_outcome *o, const vocab *v) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddBoolToObject(j, "expressible", o->expressible);
    if (!o->expressible) {
        cJSON_AddStringToObject(j, "why", o->why);
        return j;
    }
    cJSON_AddStringToObject(j, "polarity", o->polarity ? "event" : "no_event");
    cJSON *ot = cJSON_AddArrayToObject(j, "outcome_tokens"), *tt = cJSON_AddArrayToObject(j, "terminal_tokens");
    for (uint32_t t = 0; t < v->n_tokens; t++) {
        if (o->outcome[t]) cJSON_AddItemToArray(ot, cJSON_CreateString(vocab_token_str(v, t)));
        if (o->terminal[t]) cJSON_AddItemToArray(tt, cJSON_CreateString(vocab_token_str(v, t)));
    }
    cJSON_AddStringToObject(j, "window_start", end_name(o->start_kind));
    cJSON_AddNumberToObject(j, "window_start_offset_us", (double)o->start_offset);
    cJSON_AddStringToObject(j, "window_end", end_name(o->end_kind));
    cJSON_AddNumberToObject(j, "window_end_offset_us", (double)o->end_offset);
    cJSON_AddNumberToObject(j, "gap_us", (double)o->gap);
    return j;
}

static int token_list(const cJSON *a, const vocab *v, uint8_t *mask, uint32_t *n, const char *where,
                      const char *key, cf_err *err) {
    if (!cJSON_IsArray(a)) return cf_fail(err, CF_EINPUT, "%s: %s must be an array of token strings", where, key);
    int i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        int64_t id = cJSON_IsString(x) ? vocab_find(v, x->valuestring) : -1;
        if (id < 0)
            return cf_fail(err, CF_EINPUT, "%s: %s[%d] is not a token of this model's vocabulary; the head was made "
                           "for another model", where, key, i);
        if (!mask[id]) (*n)++;
        mask[id] = 1;
    }
    return CF_OK;
}

int rt_outcome_from_json(rt_outcome *o, const rt_model *rm, const cJSON *j, const char *where, cf_err *err) {
    memset(o, 0, sizeof *o);
    const vocab *v = &rm->v;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "expressible");
    if (!cJSON_IsBool(ex)) return cf_fail(err, CF_EINPUT, "%s: expressible must be true or false", where);
    o->outcome = calloc(v->n_tokens, 1);
    o->terminal = calloc(v->n_tokens, 1);
    if (!o->outcome || !o->terminal) {
        rt_outcome_free(o);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    if (!cJSON_IsTrue(ex)) {
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "why");
        snprintf(o->why, sizeof o->why, "%s", cJSON_IsString(w) ? w->valuestring : "not expressible");
        return CF_OK;
    }
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(j, "polarity"),
                *ws = cJSON_GetObjectItemCaseSensitive(j, "window_start"),
                *wso = cJSON_GetObjectItemCaseSensitive(j, "window_start_offset_us"),
                *we = cJSON_GetObjectItemCaseSensitive(j, "window_end"),
                *weo = cJSON_GetObjectItemCaseSensitive(j, "window_end_offset_us"),
                *gap = cJSON_GetObjectItemCaseSensitive(j, "gap_us");
    int rc = CF_OK;
    if (!cJSON_IsString(pol) || (strcmp(pol->valuestring, "event") && strcmp(pol->valuestring, "no_event")) ||
        !cJSON_IsString(ws) || !cJSON_IsString(we) || !cJSON_IsNumber(wso) || !cJSON_IsNumber(weo) ||
        !cJSON_IsNumber(gap) || (o->start_kind = end_from_name(ws->valuestring)) < RT_END_TRIGGER ||
        o->start_kind > RT_END_GAP_END || (o->end_kind = end_from_name(we->valuestring)) < 0) {
        rc = cf_fail(err, CF_EINPUT, "%s: expected polarity (event|no_event), window_start, window_start_offset_us, "
                     "window_end, window_end_offset_us and gap_us", where);
        goto fail;
    }
    o->polarity = !strcmp(pol->valuestring, "event");
    o->start_offset = (int64_t)wso->valuedouble;
    o->end_offset = (int64_t)weo->valuedouble;
    o->gap = (int64_t)gap->valuedouble;
    if ((rc = token_list(cJSON_GetObjectItemCaseSensitive(j, "outcome_tokens"), v, o->outcome, &o->n_outcome, where,
                         "outcome_tokens", err)) ||
        (rc = token_list(cJSON_GetObjectItemCaseSensitive(j, "terminal_tokens"), v, o->terminal, &o->n_terminal,
                         where, "terminal_tokens", err)))
        goto fail;
    if (!o->n_outcome) {
        rc = cf_fail(err, CF_EINPUT, "%s: outcome_tokens is empty", where);
        goto fail;
    }
    o->expressible = 1;
    return CF_OK;
fail:
    rt_outcome_free(o);
    return rc;
}
