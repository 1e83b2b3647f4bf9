/* `clinfm deid-eval`: runs the free-text de-identifier on an annotated corpus and prints recall,
 * precision and F2 per PHI type and overall, by any-overlap and by strict span match, as a table
 * or as JSON. Dates are scored twice: counting every annotated date, and counting only dates that
 * name a day or month (Safe Harbor keeps years; see eval.h). --records scores a slice of the
 * corpus, so a development half and a confirmation half can be reported apart. The phrase format
 * also reads the PhysioNet deid gold standard (id.text + id-phi.phrase), found from --corpus or
 * named with --text / --phi; --case re-cases the notes first, to measure the engine on all-caps and
 * all-lower-case text. It prints counts and ratios only, never corpus text; --errors FILE (for
 * development halves only) writes each miss and false positive with its context to FILE. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/datadir.h"
#include "util/sbuf.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "deid/deid_eval.h"
#include "deid/text.h"

static const char *CMD = "deid-eval";

static void print_row(const char *name, const deid_counts *o, const deid_counts *s) {
    double ro = deid_ratio(o->gold_hit, o->gold_n), po = deid_ratio(o->pred_hit, o->pred_n);
    double rs = deid_ratio(s->gold_hit, s->gold_n), ps = deid_ratio(s->pred_hit, s->pred_n);
    char b[6][16];
    snprintf(b[0], 16, o->gold_n ? "%.3f" : "-", ro);
    snprintf(b[1], 16, o->pred_n ? "%.3f" : "-", po);
    snprintf(b[2], 16, (o->gold_n && o->pred_n) ? "%.3f" : "-", deid_f2(po, ro));
    snprintf(b[3], 16, s->gold_n ? "%.3f" : "-", rs);
    snprintf(b[4], 16, s->pred_n ? "%.3f" : "-", ps);
    snprintf(b[5], 16, (s->gold_n && s->pred_n) ? "%.3f" : "-", deid_f2(ps, rs));
    printf("%-14s %6llu %6llu  %7s %9s %6s   %7s %9s %6s\n", name, (unsigned long long)o->gold_n,
           (unsigned long long)o->pred_n, b[0], b[1], b[2], b[3], b[4], b[5]);
}

static cJSON *json_counts(const deid_counts *c) {
    cJSON *o = cJSON_CreateObject();
    double r = deid_ratio(c->gold_hit, c->gold_n), p = deid_ratio(c->pred_hit, c->pred_n);
    cJSON_AddNumberToObject(o, "gold", (double)c->gold_n);
    cJSON_AddNumberToObject(o, "gold_found", (double)c->gold_hit);
    cJSON_AddNumberToObject(o, "predicted", (double)c->pred_n);
    cJSON_AddNumberToObject(o, "predicted_correct", (double)c->pred_hit);
    if (c->gold_n) cJSON_AddNumberToObject(o, "recall", r);
    else cJSON_AddNullToObject(o, "recall");
    if (c->pred_n) cJSON_AddNumberToObject(o, "precision", p);
    else cJSON_AddNullToObject(o, "precision");
    if (c->gold_n && c->pred_n) cJSON_AddNumberToObject(o, "f2", deid_f2(p, r));
    else cJSON_AddNullToObject(o, "f2");
    return o;
}

/* --records A-B: a slice of the corpus, 0-based and inclusive. */
typedef struct {
    size_t first, last;
    int given;
} records_range;

static int take_records(const char *cmd, const char *v, void *dst) {
    records_range *r = dst;
    char *e1 = NULL, *e2 = NULL;
    if (v[0] < '0' || v[0] > '9') return cli_usage_error(cmd, "--records expects A-B, e.g. 0-374");
    unsigned long long a = strtoull(v, &e1, 10), b;
    if (*e1 != '-' || e1[1] < '0' || e1[1] > '9') return cli_usage_error(cmd, "--records expects A-B, e.g. 0-374");
    b = strtoull(e1 + 1, &e2, 10);
    if (*e2 || b < a) return cli_usage_error(cmd, "--records expects A-B with A <= B");
    r->first = (size_t)a;
    r->last = (size_t)b;
    r->given = 1;
    return 0;
}

/* --errors: one line per miss or false positive, "MISS|FP<TAB>record<TAB>type<TAB>[[span]]
 * with 40 bytes of context either side", newlines shown as '|'. */
typedef struct {
    sbuf out;
} err_list;

static void put_ctx(sbuf *b, const char *t, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) {
        char ch = t[i] == '\n' || t[i] == '\t' || t[i] == '\r' ? '|' : t[i];
        sbuf_put(b, &ch, 1);
    }
}

static void on_error(void *ctx, const deid_doc *d, const deid_gold *g, const deid_span *p) {
    err_list *el = ctx;
    size_t s = g ? g->start : p->start, e = g ? g->end : p->end;
    size_t a = s > 40 ? s - 40 : 0, z = e + 40 < d->len ? e + 40 : d->len;
    sbuf *b = &el->out;
    sbuf_fmt(b, "%s\t%s\t%s\t", g ? "MISS" : "FP", d->id, g ? g->label : deid_type_name(p->type));
    put_ctx(b, d->text, a, s);
    sbuf_str(b, "[[");
    put_ctx(b, d->text, s, e);
    sbuf_str(b, "]]");
    put_ctx(b, d->text, e, z);
    sbuf_str(b, "\n");
}

int cmd_deid_eval(int argc, char **argv) {
    int status;
    const char *corpus = NULL, *format = NULL, *rules = NULL, *text_path = NULL, *phi_path = NULL, *errors = NULL;
    int json = 0, ranged = 0, case_mode = DEID_CASE_AS_IS;
    records_range rr = {0, 0, 0};
    double min_r = -1, min_p = -1, thr = -1;
    static const cli_choice cases[] = {{"upper", DEID_CASE_UPPER}, {"lower", DEID_CASE_LOWER}, {NULL, 0}};
    const cli_opt opts[] = {
        CLI_OPT_STR("corpus", &corpus, "PATH", "annotated corpus (file, or for the PhysioNet layout a folder)"),
        CLI_OPT_STR("format", &format, "F",
                    "presidio: JSON array of {full_text, spans[{entity_type,\n"
                    "start_position, end_position}]} (code point offsets);\n"
                    "phrase: either clinfm's inline layout (\"##RECORD id\" lines, PHI\n"
                    "inline as {{TYPE:phrase}}) or the PhysioNet deid gold standard,\n"
                    "told apart by the content (see below)"),
        CLI_OPT_STR("text", &text_path, "FILE", "PhysioNet text file (id.text); implies --format phrase"),
        CLI_OPT_STR("phi", &phi_path, "FILE", "PhysioNet annotation file (id-phi.phrase); implies --format phrase"),
        CLI_OPT_CHOICE("case", &case_mode, "C", cases,
                       "upper or lower: re-case every note before scoring (ASCII letters,\n"
                       "and others whose other case has as many UTF-8 bytes), to measure\n"
                       "the engine on all-caps or all-lower-case notes"),
        CLI_OPT_FLAG("json", &json, "print the result as JSON"),
        CLI_OPT_STR("rules", &rules, "DIR", "rules folder (default $CLINFM_DEID_RULES, else the shipped data/deid)"),
        CLI_OPT_FN("records", &rr, "A-B", take_records,
                   "score only records A to B (0-based, inclusive), e.g. to keep a\n"
                   "development half apart from a confirmation half"),
        CLI_OPT_DOUBLE("min-recall", &min_r, "R", 0, 1, "exit 1 if overall any-overlap recall (all dates) is below R"),
        CLI_OPT_DOUBLE("min-precision", &min_p, "P", 0, 1,
                       "exit 1 if overall any-overlap precision (all dates) is below P"),
        CLI_OPT_DOUBLE("threshold", &thr, "P", 0, 1,
                       "use P as the model's decision threshold instead of the one in\n"
                       "model.tsv (a word is PHI when P(not PHI) < P; for calibration)"),
        CLI_OPT_STR("errors", &errors, "FILE",
                    "write each miss and false positive (all-dates, any-overlap) with\n"
                    "40 bytes of context to FILE: corpus text, for development halves only"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = CMD,
        .usage = "deid-eval --corpus FILE --format presidio|phrase [--json] [--rules DIR]\n"
                 "                        [--records A-B] [--min-recall R] [--min-precision P]\n"
                 "                        [--case upper|lower] [--threshold P] [--errors FILE]\n"
                 "       clinfm deid-eval [--corpus PATH] --text FILE --phi FILE [options]",
        .about = "Measures the free-text de-identifier on an annotated corpus: recall, precision and F2\n"
                 "per PHI type and overall, by any-overlap and by strict (exact span) match.\n",
        .opts = opts,
        .after = "\n"
                      "Recall of a gold type counts its spans that any prediction overlaps (a name tagged as\n"
                 "an organisation is still removed); precision of a predicted type counts its predictions\n"
                 "that overlap a gold span. F2 = 5PR/(4P+R). The overall figure covers the Safe Harbor\n"
                 "categories only: presidio NRP and TITLE annotations and ages under 90 are not PHI under\n"
                 "Safe Harbor, so they are neither misses nor, when a prediction falls on them, errors.\n"
                 "Presidio types map as: PERSON->NAME, STREET_ADDRESS->ADDRESS, GPE/LOCATION->LOCATION,\n"
                 "ORGANIZATION->ORGANIZATION, DATE_TIME->DATE, AGE->AGE_OVER_89 (90+ only),\n"
                 "PHONE_NUMBER->PHONE, EMAIL_ADDRESS->EMAIL, US_SSN->SSN, CREDIT_CARD/IBAN_CODE/\n"
                 "US_DRIVER_LICENSE/US_PASSPORT/US_BANK_NUMBER->ID, IP_ADDRESS->IP, DOMAIN_NAME->URL,\n"
                 "ZIP_CODE->ZIP.\n\n"
                 "PhysioNet deid layout: a text file of records \"START_OF_RECORD=<patient>||||<note>||||\",\n"
                 "the note's lines, \"||||END_OF_RECORD\"; an annotation file of lines \"<patient> <note>\n"
                 "<start> <end> <Category> <phrase>\" (byte offsets into the lines between the markers;\n"
                 "CRLF read as LF unless the offsets fit better counting the CRs). --corpus may name\n"
                 "the folder (id.text and id-phi.phrase, else its only *.text and *.phrase), the text\n"
                 "file (X.text -> X-phi.phrase, else the only *.phrase beside it) or the annotation file\n"
                 "(X-phi.phrase or X.phrase -> X.text, else the only *.text beside it). Each annotation\n"
                 "is placed on its phrase: [start,end), else [start,end] (inclusive end), else the\n"
                 "phrase within 8 bytes of start; the counts of realigned and misaligned annotations\n"
                 "are reported, and more than 5% misaligned is an error. Categories map as:\n"
                 "Location->LOCATION, Hospital->ORGANIZATION, Date/DateYear->DATE, HCPName/PTName/\n"
                 "RelativeProxyName/ProxyName/PTNameInitial/Initial/Name->NAME, Phone->PHONE,\n"
                 "Age->AGE_OVER_89 (90+ only), Other->ID, Email->EMAIL, SSN, MRN, URL.\n\n"
                 "Dates are scored two ways. Safe Harbor removes all elements of dates except the year\n"
                 "(45 CFR 164.514(b)(2)(i)(C)), but corpora also annotate bare years, relative dates and\n"
                 "times. The DATE and OVERALL rows count every annotated date; the 'DATE d/m' and\n"
                 "'OVERALL d/m' rows count only date spans that name a day or a month (a month name or\n"
                 "number, a day of the month, a weekday, a holiday); the others are then neither misses\n"
                 "nor errors. Both are printed (and both are in --json); the floors use the first.\n\n",
        .status = "exit status: 0 ok, 1 bad input or usage (or a floor not met), 2 internal error.\n"};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    if (thr == 0) return cli_usage_error(CMD, "--threshold must be above 0");
    size_t rec_first = rr.first, rec_last = rr.last;
    ranged = rr.given;
    int pn_named = text_path || phi_path;
    if (!corpus && !pn_named) return cli_usage_error(CMD, "--corpus is required (or --text / --phi)");
    if (!format && pn_named) format = "phrase";
    if (!format) return cli_usage_error(CMD, "--format is required (presidio or phrase)");
    if (strcmp(format, "presidio") && strcmp(format, "phrase"))
        return cli_usage_error(CMD, "--format must be presidio or phrase");
    if (pn_named && strcmp(format, "phrase"))
        return cli_usage_error(CMD, "--text and --phi name PhysioNet deid files: use them with --format phrase");
    char shipped_rules[4096];
    rules = cli_deid_rules(rules, shipped_rules, sizeof shipped_rules);

    cf_err err = {0};
    deid_text_rules *r = NULL;
    deid_corpus c;
    memset(&c, 0, sizeof c);
    int rc = deid_rules_load(&r, rules, &err);
    if (!rc && thr > 0) rc = deid_rules_set_threshold(r, thr, &err);
    if (!rc) rc = deid_corpus_load_files(corpus, format, text_path, phi_path, &c, &err);
    if (!rc && ranged) rc = deid_corpus_select(&c, rec_first, rec_last, &err);
    size_t recased = rc ? 0 : deid_corpus_recase(&c, case_mode);
    const char *case_name = case_mode == DEID_CASE_UPPER ? "upper" : case_mode == DEID_CASE_LOWER ? "lower" : "as_is";
    const char *layout_name = c.layout == DEID_LAYOUT_PHYSIONET ? "physionet"
                              : c.layout == DEID_LAYOUT_INLINE  ? "inline"
                                                                : "presidio";
    deid_eval_result res;
    err_list el;
    memset(&el, 0, sizeof el);
    if (!rc) rc = deid_evaluate(r, &c, &res, errors ? on_error : NULL, &el, &err);
    if (!rc && errors) rc = sbuf_write_file(&el.out, errors, &err);
    sbuf_free(&el.out);
    if (rc) {
        cf_err_print(&err);
        deid_corpus_free(&c);
        deid_rules_free(r);
        return rc;
    }
    double mbps = res.seconds > 0 ? (double)res.bytes / 1e6 / res.seconds : 0;
    double rec = deid_ratio(res.overlap_all.gold_hit, res.overlap_all.gold_n);
    double prec = deid_ratio(res.overlap_all.pred_hit, res.overlap_all.pred_n);
    size_t out_scope = c.n_gold - c.n_in_scope;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "format", format);
        cJSON_AddStringToObject(o, "layout", layout_name);
        if (c.layout == DEID_LAYOUT_PHYSIONET) {
            /* how the annotation offsets lined up with the text (counts only) */
            cJSON *pn = cJSON_AddObjectToObject(o, "physionet");
            cJSON_AddStringToObject(pn, "text_file", c.text_path);
            cJSON_AddStringToObject(pn, "phi_file", c.phi_path);
            cJSON_AddNumberToObject(pn, "annotation_lines", (double)c.pn_annotations);
            cJSON_AddNumberToObject(pn, "realigned_inclusive_end", (double)c.pn_realigned_inclusive);
            cJSON_AddNumberToObject(pn, "realigned_nearby", (double)c.pn_realigned_nearby);
            cJSON_AddNumberToObject(pn, "misaligned", (double)c.pn_misaligned);
            cJSON_AddBoolToObject(pn, "crlf_line_ends", c.pn_crlf);
            cJSON_AddBoolToObject(pn, "offsets_count_cr", c.pn_kept_cr);
        }
        cJSON_AddStringToObject(o, "case", case_name);
        cJSON_AddNumberToObject(o, "case_characters_changed", (double)recased);
        cJSON_AddNumberToObject(o, "records", (double)c.n_docs);
        cJSON_AddNumberToObject(o, "annotations", (double)c.n_gold);
        cJSON_AddNumberToObject(o, "annotations_safe_harbor", (double)c.n_in_scope);
        cJSON_AddNumberToObject(o, "annotations_not_phi", (double)out_scope);
        cJSON_AddNumberToObject(o, "annotations_unknown_type", (double)c.n_unknown_types);
        cJSON_AddStringToObject(o, "scope_note",
                                "overall covers Safe Harbor categories; NRP, TITLE and ages under 90 are excluded");
        cJSON *types = cJSON_AddObjectToObject(o, "types");
        for (int t = 0; t < DEID_N_TYPES; t++) {
            if (!res.overlap[t].gold_n && !res.overlap[t].pred_n) continue;
            cJSON *tt = cJSON_AddObjectToObject(types, deid_type_name(t));
            cJSON_AddItemToObject(tt, "any_overlap", json_counts(&res.overlap[t]));
            cJSON_AddItemToObject(tt, "strict", json_counts(&res.strict[t]));
        }
        if (ranged) {
            cJSON *rg = cJSON_AddObjectToObject(o, "record_range");
            cJSON_AddNumberToObject(rg, "first", (double)rec_first);
            cJSON_AddNumberToObject(rg, "last", (double)rec_last);
        }
        cJSON *ov = cJSON_AddObjectToObject(o, "overall_safe_harbor");
        cJSON_AddItemToObject(ov, "any_overlap", json_counts(&res.overlap_all));
        cJSON_AddItemToObject(ov, "strict", json_counts(&res.strict_all));
        /* the same with only the dates that name a day or month (Safe Harbor keeps years) */
        cJSON *ds = cJSON_AddObjectToObject(o, "date_scope");
        cJSON_AddStringToObject(ds, "note",
                                "Safe Harbor removes all elements of dates except the year (45 CFR "
                                "164.514(b)(2)(i)(C)); the *_day_month figures count only date spans that "
                                "name a day or month, the others count every annotated date");
        cJSON_AddNumberToObject(ds, "dates", (double)res.overlap[DEID_DATE].gold_n);
        cJSON_AddNumberToObject(ds, "with_day_or_month", (double)res.dates_n[DEID_DATE_DAY_MONTH]);
        cJSON_AddNumberToObject(ds, "year_only", (double)res.dates_n[DEID_DATE_YEAR_ONLY]);
        cJSON_AddNumberToObject(ds, "no_day_month_or_year", (double)res.dates_n[DEID_DATE_OTHER]);
        cJSON *dd = cJSON_AddObjectToObject(o, "date_day_month");
        cJSON_AddItemToObject(dd, "any_overlap", json_counts(&res.dm_overlap[DEID_DATE]));
        cJSON_AddItemToObject(dd, "strict", json_counts(&res.dm_strict[DEID_DATE]));
        cJSON *od = cJSON_AddObjectToObject(o, "overall_safe_harbor_day_month");
        cJSON_AddItemToObject(od, "any_overlap", json_counts(&res.dm_overlap_all));
        cJSON_AddItemToObject(od, "strict", json_counts(&res.dm_strict_all));
        cJSON_AddNumberToObject(o, "all_annotations_recall_any_overlap", deid_ratio(res.all_gold_hit, res.all_gold_n));
        cJSON *cc = cJSON_AddObjectToObject(o, "clinical_content_cost");
        cJSON_AddNumberToObject(cc, "words", (double)res.words);
        cJSON_AddNumberToObject(cc, "words_not_phi", (double)res.words_not_phi);
        cJSON_AddNumberToObject(cc, "words_not_phi_removed", (double)res.words_not_phi_removed);
        cJSON_AddNumberToObject(cc, "share", deid_ratio(res.words_not_phi_removed, res.words_not_phi));
        cJSON_AddNumberToObject(cc, "distinct_words_not_phi_removed", (double)res.distinct_not_phi_removed);
        cJSON_AddNumberToObject(o, "bytes", (double)res.bytes);
        cJSON_AddNumberToObject(o, "seconds", res.seconds);
        cJSON_AddNumberToObject(o, "mb_per_s", mbps);
        char *s = cJSON_Print(o);
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
    } else {
        if (ranged) printf("records %zu-%zu only\n", rec_first, rec_last);
        printf("deid-eval: %zu records, %zu annotations: %zu Safe Harbor, %zu not PHI under Safe Harbor "
               "(NRP, TITLE, ages under 90)%s\n",
               c.n_docs, c.n_gold, c.n_in_scope, out_scope,
               c.n_unknown_types ? "; some annotation types unknown (counted as not PHI)" : "");
        if (c.layout == DEID_LAYOUT_PHYSIONET)
            printf("PhysioNet deid layout: %s + %s; %zu annotation lines: %zu realigned (%zu inclusive end, %zu "
                   "nearby), %zu misaligned%s\n",
                   c.text_path, c.phi_path, c.pn_annotations, c.pn_realigned_inclusive + c.pn_realigned_nearby,
                   c.pn_realigned_inclusive, c.pn_realigned_nearby, c.pn_misaligned,
                   !c.pn_crlf ? "" : c.pn_kept_cr ? "; CRLF line ends, offsets count the CR" : "; CRLF read as LF");
        if (case_mode != DEID_CASE_AS_IS)
            printf("notes re-cased to %s case before scoring (%zu characters changed)\n", case_name, recased);
        printf("%-14s %6s %6s  %-25s   %-25s\n", "", "", "", "any-overlap", "strict");
        printf("%-14s %6s %6s  %7s %9s %6s   %7s %9s %6s\n", "type", "gold", "found", "recall", "precision",
               "F2", "recall", "precision", "F2");
        for (int t = 0; t < DEID_N_TYPES; t++) {
            if (!res.overlap[t].gold_n && !res.overlap[t].pred_n) continue;
            print_row(deid_type_name(t), &res.overlap[t], &res.strict[t]);
        }
        print_row("OVERALL", &res.overlap_all, &res.strict_all);
        if (res.overlap[DEID_DATE].gold_n || res.overlap[DEID_DATE].pred_n) {
            print_row("DATE d/m", &res.dm_overlap[DEID_DATE], &res.dm_strict[DEID_DATE]);
            print_row("OVERALL d/m", &res.dm_overlap_all, &res.dm_strict_all);
        }
        printf("overall = Safe Harbor categories; NRP, TITLE and ages under 90 are excluded.\n"
               "dates: %llu annotated; %llu name a day or month, %llu a year only, %llu neither (relative\n"
               "dates, times). Safe Harbor keeps years: the d/m rows count only dates with a day or month.\n",
               (unsigned long long)res.overlap[DEID_DATE].gold_n,
               (unsigned long long)res.dates_n[DEID_DATE_DAY_MONTH], (unsigned long long)res.dates_n[DEID_DATE_YEAR_ONLY],
               (unsigned long long)res.dates_n[DEID_DATE_OTHER]);
        printf("Recall over every annotation, excluded ones included (any-overlap): %.3f\n",
               deid_ratio(res.all_gold_hit, res.all_gold_n));
        printf("clinical-content cost: %llu of %llu words outside the annotations removed (%.3f%%), %llu distinct\n",
               (unsigned long long)res.words_not_phi_removed, (unsigned long long)res.words_not_phi,
               100 * deid_ratio(res.words_not_phi_removed, res.words_not_phi),
               (unsigned long long)res.distinct_not_phi_removed);
        printf("speed: %.2f MB in %.3f s of de-identification = %.1f MB/s (one core)\n", (double)res.bytes / 1e6,
               res.seconds, mbps);
    }
    int fail = 0;
    if (min_r >= 0 && rec < min_r) {
        fprintf(stderr, "clinfm deid-eval: overall recall %.4f is below --min-recall %.4f\n", rec, min_r);
        fail = 1;
    }
    if (min_p >= 0 && prec < min_p) {
        fprintf(stderr, "clinfm deid-eval: overall precision %.4f is below --min-precision %.4f\n", prec, min_p);
        fail = 1;
    }
    deid_corpus_free(&c);
    deid_rules_free(r);
    return fail;
}
