/* Code analysis shared by vocabulary building and encoding; see timeline_codes.h. */
#include "timeline/timeline_codes.h"

#include <stdio.h>
#include <string.h>

size_t timeline_code_namespace(const char *code) {
    const char *p = strstr(code, "//");
    return p ? (size_t)(p - code) : strlen(code);
}

/* code is exactly ns, or starts with ns followed by "//". */
static int in_namespace(const char *code, const char *ns) {
    size_t n = strlen(ns);
    return strncmp(code, ns, n) == 0 && (code[n] == 0 || (code[n] == '/' && code[n + 1] == '/'));
}

static int is_upper_alnum(int c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); }

/* Strips the known ICD-10-CM prefixes; returns the bare code (dot removed) in out, or 0. */
static int icd10cm_body(const char *code, char *out, size_t cap) {
    const char *s;
    if (!strncmp(code, "DIAGNOSIS//ICD//10//", 20)) s = code + 20;
    else if (!strncmp(code, "ICD10CM//", 9)) s = code + 9;
    else return 0;
    size_t n = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '.' && i == 3) continue; /* "K76.6" is written with a dot in OMOP */
        if (!is_upper_alnum((unsigned char)s[i]) || n + 1 >= cap) return 0;
        out[n++] = s[i];
    }
    out[n] = 0;
    /* Letter, digit, digit-or-letter, then up to four more characters. */
    if (n < 3 || n > 7) return 0;
    if (out[0] < 'A' || out[0] > 'Z' || out[1] < '0' || out[1] > '9') return 0;
    return 1;
}

static int icd10pcs_body(const char *code, char *out, size_t cap) {
    const char *s;
    if (!strncmp(code, "PROCEDURE//ICD//10//", 20)) s = code + 20;
    else if (!strncmp(code, "ICD10PCS//", 10)) s = code + 10;
    else return 0;
    if (strlen(s) != 7 || cap < 8) return 0;
    for (int i = 0; i < 7; i++)
        if (!is_upper_alnum((unsigned char)s[i])) return 0;
    memcpy(out, s, 8);
    return 1;
}

void timeline_code_analyse(const char *code, int split_codes, timeline_code_info *info) {
    memset(info, 0, sizeof *info);
    info->marker = -1;
    info->keep_code = 1;
    if (!strcmp(code, "MEDS_BIRTH")) {
        info->birth = 1;
        info->keep_code = 0;
        return;
    }
    /* Identifier events exist only for de-identification; a model must never see them, even
     * when trained deliberately on an identified store. */
    if (!strncmp(code, "PHI//", 5)) {
        info->keep_code = 0;
        return;
    }
    if (!strcmp(code, "MEDS_DEATH")) {
        info->marker = VOCAB_SP_DEATH;
        info->keep_code = 0;
        return;
    }
    /* Admissions: MEDS/MIMIC-style HOSPITAL_ADMISSION / HOSPITAL_DISCHARGE; OMOP inpatient
     * visits (concept codes IP and ERIP, or the raw concept ids 9201 and 262 when the CONCEPT
     * table was absent); FHIR inpatient encounters (v3 ActCode IMP, ACUTE, NONAC). ICU stays:
     * ICU_ADMISSION / ICU_DISCHARGE. */
    static const struct {
        const char *code;
        int marker;
    } exact[] = {
        {"VISIT//IP", VOCAB_SP_ADM_START},           {"VISIT//ERIP", VOCAB_SP_ADM_START},
        {"VISIT//9201", VOCAB_SP_ADM_START},         {"VISIT//262", VOCAB_SP_ADM_START},
        {"VISIT_END//IP", VOCAB_SP_ADM_END},         {"VISIT_END//ERIP", VOCAB_SP_ADM_END},
        {"VISIT_END//9201", VOCAB_SP_ADM_END},       {"VISIT_END//262", VOCAB_SP_ADM_END},
        {"ENCOUNTER_START//IMP", VOCAB_SP_ADM_START}, {"ENCOUNTER_START//ACUTE", VOCAB_SP_ADM_START},
        {"ENCOUNTER_START//NONAC", VOCAB_SP_ADM_START}, {"ENCOUNTER_END//IMP", VOCAB_SP_ADM_END},
        {"ENCOUNTER_END//ACUTE", VOCAB_SP_ADM_END},  {"ENCOUNTER_END//NONAC", VOCAB_SP_ADM_END},
    };
    if (in_namespace(code, "HOSPITAL_ADMISSION")) info->marker = VOCAB_SP_ADM_START;
    else if (in_namespace(code, "HOSPITAL_DISCHARGE")) info->marker = VOCAB_SP_ADM_END;
    else if (in_namespace(code, "ICU_ADMISSION")) info->marker = VOCAB_SP_ICU_START;
    else if (in_namespace(code, "ICU_DISCHARGE")) info->marker = VOCAB_SP_ICU_END;
    for (size_t i = 0; info->marker < 0 && i < sizeof exact / sizeof *exact; i++)
        if (!strcmp(code, exact[i].code)) info->marker = exact[i].marker;
    if (!split_codes) return;
    char body[16];
    if (icd10cm_body(code, body, sizeof body)) {
        size_t n = strlen(body);
        snprintf(info->parts[0], TIMELINE_PART_CAP, "ICD10CM//%.3s", body);
        info->n_parts = 1;
        if (n > 3) snprintf(info->parts[info->n_parts++], TIMELINE_PART_CAP, "ICD10CM//.%.2s", body + 3);
        if (n > 5) snprintf(info->parts[info->n_parts++], TIMELINE_PART_CAP, "ICD10CM//+%.2s", body + 5);
    } else if (icd10pcs_body(code, body, sizeof body)) {
        for (int i = 0; i < 7; i++) snprintf(info->parts[i], TIMELINE_PART_CAP, "ICD10PCS//%d:%c", i + 1, body[i]);
        info->n_parts = 7;
    }
}
