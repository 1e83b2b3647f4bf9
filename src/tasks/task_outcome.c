/* The zero-shot translation of a task's label rule into tokens and a window; see task_outcome.h. */
#include "tasks/task_outcome.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline/timeline_codes.h"

static int not_expressible(rt_outcome *o, const char *why) {
    o->expressible = 0;
    snprintf(o->why, sizeof o->why, "%s", why);
    return CF_OK;
}

static int anchor_kind(int anchor) {
    switch (anchor) {
    case TASK_T_TRIGGER: return RT_END_TRIGGER;
    case TASK_T_PREDICTION: return RT_END_PREDICTION;
    case TASK_T_GAP_END: return RT_END_GAP_END;
    default: return -1;
    }
}

/* Marks the tokens of code set cs in mask; returns 0, or 1 with why set when the set cannot be
 * written as tokens. Counts exact codes and those with a token of their own. */
static int mark_set(const vocab *v, const task_codeset *cs, uint8_t *mask, uint32_t *n_codes, uint32_t *n_with,
                    char *why, size_t why_cap) {
    int split = (v->flags & VOCAB_FLAG_SPLIT_CODES) != 0;
    for (size_t i = 0; i < cs->n_codes; i++) {
        timeline_code_info info;
        timeline_code_analyse(cs->codes[i], split, &info);
        (*n_codes)++;
        if (info.birth) continue;
        if (info.n_parts) {
            snprintf(why, why_cap, "code set '%s' holds codes the vocabulary writes as ICD parts, which no single "
                     "token stands for", cs->name);
            return 1;
        }
        if (!info.keep_code && info.marker >= 0) {
            mask[v->special[info.marker]] = 1; /* e.g. MEDS_DEATH is the [DEATH] marker alone */
            (*n_with)++;
            continue;
        }
        int64_t id = vocab_find(v, cs->codes[i]);
        if (id >= 0 && v->kind[id] == VOCAB_KIND_CODE) {
            mask[id] = 1;
            (*n_with)++;
        }
    }
    for (size_t i = 0; i < cs->n_prefixes; i++) {
        const char *pre = cs->prefixes[i];
        size_t pl = strlen(pre);
        timeline_code_info info;
        char probe[256];
        snprintf(probe, sizeof probe, "%s", pre);
        timeline_code_analyse(probe, split, &info);
        if (info.n_parts) {
            snprintf(why, why_cap, "code set '%s' has a prefix over codes the vocabulary writes as ICD parts",
                     cs->name);
            return 1;
        }
        for (uint32_t t = 0; t < v->n_tokens; t++) {
            const char *s = vocab_token_str(v, t);
            if (v->kind[t] == VOCAB_KIND_CODE && !strncmp(s, pre, pl)) mask[t] = 1;
            /* A namespace's unknown token stands for rare codes of that namespace: it belongs to
             * the set only when the prefix is the whole namespace ("NS//"). */
            if (v->kind[t] == VOCAB_KIND_UNK && v->str_len[t] == pl + 5 && !strncmp(s, pre, pl) &&
                !strcmp(s + pl, "[UNK]") && pl >= 2 && !strcmp(pre + pl - 2, "//"))
                mask[t] = 1;
        }
    }
    return 0;
}

/* A marker token ([ADMISSION_START], ...) is emitted just before the codes that carry it. When
 * every vocabulary token of such codes is in the mask, the marker already decides: mark it too,
 * so a rollout is judged a token earlier and the read-out sees admissions one step ahead. */
static void imply_markers(const vocab *v, uint8_t *mask, const uint8_t *other) {
    for (int mk = VOCAB_SP_ADM_START; mk < VOCAB_N_SPECIAL; mk++) {
        uint32_t with = 0, in = 0;
        for (uint32_t t = 0; t < v->n_tokens; t++) {
            if (v->kind[t] != VOCAB_KIND_CODE && v->kind[t] != VOCAB_KIND_UNK) continue;
            timeline_code_info info;
            timeline_code_analyse(vocab_token_str(v, t), 0, &info);
            if (info.marker != mk || !info.keep_code) continue;
            with++;
            in += mask[t] != 0;
        }
        uint32_t id = v->special[mk];
        if (with && in == with && !(other && other[id])) mask[id] = 1;
    }
}

int task_outcome(rt_outcome *o, const vocab *v, const task_def *t, cf_err *err) {
    memset(o, 0, sizeof *o);
    o->outcome = calloc(v->n_tokens, 1);
    o->terminal = calloc(v->n_tokens, 1);
    if (!o->outcome || !o->terminal) {
        rt_outcome_free(o);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    o->gap = t->gap;
    o->start_kind = RT_END_PREDICTION;
    const task_cond *c = &t->label;
    int set = -1;
    const task_time *to = NULL;
    if (c->kind == TASK_C_ANY || c->kind == TASK_C_NONE) {
        set = c->set;
        o->polarity = c->kind == TASK_C_ANY;
        if (anchor_kind(c->from.anchor) < 0)
            return not_expressible(o, "the label window does not start at the trigger, the prediction time or the "
                                      "gap's end, so part of it may lie in the history the model is prompted with");
        o->start_kind = anchor_kind(c->from.anchor);
        o->start_offset = c->from.offset;
        to = &c->to;
    } else if (c->kind == TASK_C_TIME_CMP) {
        const task_time *lhs = &c->lhs, *rhs = &c->rhs;
        int op = c->op;
        if (rhs->anchor == TASK_T_EPISODE_END && lhs->anchor != TASK_T_EPISODE_END) {
            const task_time *x = lhs;
            lhs = rhs;
            rhs = x;
            op = op == TASK_OP_LT ? TASK_OP_GT : op == TASK_OP_LE ? TASK_OP_GE : op == TASK_OP_GT ? TASK_OP_LT : TASK_OP_LE;
        }
        if (lhs->anchor != TASK_T_EPISODE_END || lhs->offset != 0 || anchor_kind(rhs->anchor) < 0 ||
            t->episode_end_set < 0)
            return not_expressible(o, "a time comparison can be sampled only as 'episode_end OP trigger/prediction "
                                      "+ offset'");
        set = t->episode_end_set;
        /* episode_end > X: the episode has not ended by X, i.e. no end token inside the window */
        o->polarity = op == TASK_OP_LT || op == TASK_OP_LE;
        o->end_kind = anchor_kind(rhs->anchor);
        o->end_offset = rhs->offset;
    } else {
        return not_expressible(o, "an age rule is not an event in the future that a sampled timeline can reach");
    }
    char why[512];
    if (mark_set(v, &t->sets[set], o->outcome, &o->set_codes, &o->set_codes_with_token, why, sizeof why))
        return not_expressible(o, why);
    if (to) {
        if (to->anchor == TASK_T_POS_INF) {
            o->end_kind = RT_END_NONE;
        } else if (to->anchor == TASK_T_EPISODE_END && to->offset == 0 && t->episode_end_set >= 0) {
            o->end_kind = RT_END_EPISODE;
            uint32_t a = 0, b = 0;
            if (mark_set(v, &t->sets[t->episode_end_set], o->terminal, &a, &b, why, sizeof why))
                return not_expressible(o, why);
        } else if (anchor_kind(to->anchor) >= 0) {
            o->end_kind = anchor_kind(to->anchor);
            o->end_offset = to->offset;
        } else {
            return not_expressible(o, "the label window ends at an anchor (record end, birth, ...) that a sampled "
                                      "timeline cannot place");
        }
    }
    /* An outcome that also ends the episode (discharge to death) counts as the outcome; so a
     * marker shared by outcome and closing codes ([ADMISSION_END] before DIED or HOME) decides
     * nothing and stays in neither set. */
    for (uint32_t i = 0; i < v->n_tokens; i++)
        if (o->outcome[i]) o->terminal[i] = 0;
    imply_markers(v, o->outcome, NULL);
    imply_markers(v, o->terminal, o->outcome);
    for (uint32_t i = 0; i < v->n_tokens; i++) {
        o->n_outcome += o->outcome[i];
        o->n_terminal += o->terminal[i];
    }
    if (!o->n_outcome)
        return not_expressible(o, "no code of the outcome set has a token of its own in the vocabulary (each is "
                                  "rarer in train than the vocabulary's --min-count)");
    o->expressible = 1;
    return CF_OK;
}
