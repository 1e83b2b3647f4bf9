/* The human-readable outputs of an evaluation: report.html (one self-contained file: inline CSS
 * and SVG plots, no script, nothing fetched from a network) and MODEL_CARD.md.
 *
 * Both lead with how much evidence there is: the number of held-out patients, rows, positives
 * and negatives, in words, and a plain warning when that is too few to judge a model (the
 * MIMIC-IV demo has 100 patients in all). Text from the task file and subgroup values is escaped
 * before it reaches the HTML. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eval/eval_internal.h"

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
                                     "#7f7f7f"};
#define N_COLORS (sizeof colors / sizeof colors[0])

#define PW 380
#define PH 340
#define ML 52
#define MR 14
#define MT 30
#define MB 46

static double px(double x) { return ML + x * (PW - ML - MR); }
static double py(double y) { return PH - MB - y * (PH - MT - MB); }

/* The opening tag of a w x h plot named label (for screen readers). */
static void svg_open(eval_buf *b, int w, int h, const char *label) {
    eb_fmt(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
              "role=\"img\" aria-label=\"",
           w, h, w, h);
    eb_html(b, label);
    eb_str(b, "\">\n");
}

static void plot_frame(eval_buf *b, const char *title, const char *xl, const char *yl, int diagonal) {
    svg_open(b, PW, PH, title);
    eb_fmt(b, "<text x=\"%d\" y=\"18\" class=\"pt\">", PW / 2);
    eb_html(b, title);
    eb_str(b, "</text>\n");
    eb_fmt(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>\n", px(0), py(1),
           px(1) - px(0), py(0) - py(1));
    for (int i = 0; i <= 5; i++) {
        double v = i / 5.0;
        eb_fmt(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", px(v), py(0), px(v), py(1));
        eb_fmt(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", px(0), py(v), px(1), py(v));
        eb_fmt(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tx\">%.1f</text>", px(v), py(0) + 15, v);
        eb_fmt(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"ty\">%.1f</text>\n", px(0) - 6, py(v) + 4, v);
    }
    eb_fmt(b, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">", (px(0) + px(1)) / 2, PH - 8);
    eb_html(b, xl);
    eb_fmt(b, "</text><text transform=\"translate(14,%.1f) rotate(-90)\" class=\"xl\">", (py(0) + py(1)) / 2);
    eb_html(b, yl);
    eb_str(b, "</text>\n");
    if (diagonal)
        eb_fmt(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"diag\"/>\n", px(0), py(0), px(1), py(1));
}

static void polyline(eval_buf *b, const double *x, const double *y, size_t n, const char *color, int step) {
    if (!n) return;
    size_t every = n > 600 ? n / 600 + 1 : 1;
    eb_fmt(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
    double lx = 0, ly = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % every && i + 1 != n) continue;
        if (step && i) eb_fmt(b, "%.1f,%.1f ", px(x[i]), py(ly)); /* PR curves are steps */
        eb_fmt(b, "%.1f,%.1f ", px(x[i]), py(y[i]));
        lx = x[i], ly = y[i];
    }
    (void)lx;
    eb_str(b, "\"/>\n");
}

static void legend(eval_buf *b, const eval_state *st, double x0, double y0) {
    for (size_t i = 0; i < st->n_res; i++) {
        double y = y0 + 16.0 * (double)i;
        eb_fmt(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>", x0, y - 9,
               colors[i % N_COLORS]);
        eb_fmt(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"lg\">", x0 + 14, y);
        eb_html(b, st->res[i].p->name);
        eb_str(b, "</text>\n");
    }
}

static void plot_roc(eval_buf *b, const eval_state *st) {
    plot_frame(b, "ROC curve (held out)", "false positive rate", "true positive rate", 1);
    for (size_t i = 0; i < st->n_res; i++)
        polyline(b, st->res[i].roc.x, st->res[i].roc.y, st->res[i].roc.n, colors[i % N_COLORS], 0);
    legend(b, st, px(0.55), py(0.25));
    eb_str(b, "</svg>\n");
}

static void plot_pr(eval_buf *b, const eval_state *st) {
    plot_frame(b, "Precision-recall (held out)", "recall (sensitivity)", "precision (PPV)", 0);
    const task_counts *c = &st->counts[SPLIT_HELD_OUT];
    if (c->rows) {
        double prev = (double)c->pos / (double)c->rows;
        eb_fmt(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"diag\"/>", px(0), py(prev), px(1), py(prev));
        eb_fmt(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"lg\">dashed: prevalence %.3f</text>\n", px(0.55),
               py(0.85) + 16.0 * (double)st->n_res + 4, prev);
    }
    for (size_t i = 0; i < st->n_res; i++)
        polyline(b, st->res[i].pr.x, st->res[i].pr.y, st->res[i].pr.n, colors[i % N_COLORS], 1);
    legend(b, st, px(0.55), py(0.85));
    eb_str(b, "</svg>\n");
}

static void plot_calibration(eval_buf *b, const eval_state *st) {
    plot_frame(b, "Calibration (held out, 10 bins)", "mean predicted probability", "observed fraction", 1);
    for (size_t i = 0; i < st->n_res; i++) {
        const eval_metrics *m = &st->res[i].overall;
        const char *col = colors[i % N_COLORS];
        double x[EVAL_BINS], y[EVAL_BINS];
        size_t n = 0;
        for (int k = 0; k < EVAL_BINS; k++) {
            const eval_bin *bn = &m->bins[k];
            if (!(bn->n > 0)) continue;
            x[n] = bn->mean_pred, y[n++] = bn->frac_pos;
            if (!isnan(bn->frac_lo))
                eb_fmt(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-opacity=\"0.5\"/>",
                       px(bn->mean_pred) + 2.0 * (double)i, py(bn->frac_lo), px(bn->mean_pred) + 2.0 * (double)i,
                       py(bn->frac_hi), col);
            double r = 2.5 + 1.5 * log10(1 + bn->n);
            eb_fmt(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" fill-opacity=\"0.75\"><title>%.0f rows</title></circle>\n",
                   px(bn->mean_pred) + 2.0 * (double)i, py(bn->frac_pos), r, col, bn->n);
        }
        if (n > 1) polyline(b, x, y, n, col, 0);
    }
    legend(b, st, px(0.05), py(0.9));
    eb_str(b, "</svg>\n");
}

/* A forest plot of AUROC per subgroup value and predictor, with intervals and counts. */
static void plot_subgroup(eval_buf *b, const eval_state *st, size_t g) {
    const task_labels *l = &st->labels;
    size_t nv = 0;
    for (size_t v = 0; v < l->n_values[g]; v++)
        if (st->n_res && st->res[0].groups[g] && st->res[0].groups[g][v].n) nv++;
    if (!nv) return;
    int W = 720, left = 230, right = 20, top = 34, rowh = 14 * (int)(st->n_res > 0 ? st->n_res : 1) + 10;
    int H = top + (int)nv * rowh + 40;
    double x0 = 0.0, x1 = 1.0;
#define SX(v) (left + ((v) - x0) / (x1 - x0) * (W - left - right))
    svg_open(b, W, H, "AUROC by subgroup");
    eb_fmt(b, "<text x=\"%d\" y=\"18\" class=\"pt\">AUROC by ", W / 2);
    eb_html(b, l->subgroup_names[g]);
    eb_str(b, " (held out, 95% interval)</text>\n");
    for (int i = 0; i <= 10; i += 2) {
        double v = i / 10.0;
        eb_fmt(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>", SX(v), top, SX(v), H - 32);
        eb_fmt(b, "<text x=\"%.1f\" y=\"%d\" class=\"tx\">%.1f</text>\n", SX(v), H - 18, v);
    }
    eb_fmt(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"diag\"/>\n", SX(0.5), top, SX(0.5), H - 32);
    size_t row = 0;
    for (size_t v = 0; v < l->n_values[g]; v++) {
        const eval_metrics *m0 = st->n_res && st->res[0].groups[g] ? &st->res[0].groups[g][v] : NULL;
        if (!m0 || !m0->n) continue;
        int y = top + (int)row * rowh + 12;
        eb_fmt(b, "<text x=\"8\" y=\"%d\" class=\"lg\">", y + 2);
        char shown[64];
        snprintf(shown, sizeof shown, "%s", l->values[g][v]);
        if (strlen(l->values[g][v]) > 28) strcpy(shown + 25, "...");
        eb_html(b, shown);
        eb_fmt(b, "</text><text x=\"8\" y=\"%d\" class=\"sm\">%zu patients, %zu+ / %zu-</text>\n", y + 14, m0->clusters,
               m0->pos, m0->neg);
        for (size_t i = 0; i < st->n_res; i++) {
            const eval_metrics *m = &st->res[i].groups[g][v];
            int yy = y + (int)i * 14;
            const char *col = colors[i % N_COLORS];
            if (isnan(m->auroc.value)) {
                eb_fmt(b, "<text x=\"%.1f\" y=\"%d\" class=\"sm\" fill=\"%s\">n/a (one class only)</text>\n", SX(0.02),
                       yy + 4, col);
                continue;
            }
            if (!isnan(m->auroc.lo))
                eb_fmt(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>",
                       SX(m->auroc.lo), yy, SX(m->auroc.hi), yy, col);
            eb_fmt(b, "<circle cx=\"%.1f\" cy=\"%d\" r=\"4\" fill=\"%s\"><title>%.3f</title></circle>\n", SX(m->auroc.value),
                   yy, col, m->auroc.value);
        }
        row++;
    }
#undef SX
    eb_str(b, "</svg>\n");
}

/* Fewer than 10 rows of a class: a percentile bootstrap then understates the uncertainty of
 * AUROC and AUPRC, so those figures carry a mark and a footnote. */
#define FEW_CLASS 10
static int few(const eval_metrics *m) { return m->pos < FEW_CLASS || m->neg < FEW_CLASS; }
static void mark(eval_buf *b, const eval_metrics *m, const eval_ci *c, int html) {
    if (few(m) && !isnan(c->value)) eb_str(b, html ? " &dagger;" : " \xe2\x80\xa0");
}

/* AUROC, AUPRC (marked when few), Brier and ECE, as HTML table cells' contents (the caller
 * opens the first cell and closes the last) or Markdown ones. */
static void metric_cells(eval_buf *b, const eval_metrics *m, int html) {
    const char *sep = html ? "</td><td>" : " | ";
    eb_ci(b, &m->auroc);
    mark(b, m, &m->auroc, html);
    eb_str(b, sep);
    eb_ci(b, &m->auprc);
    mark(b, m, &m->auprc, html);
    eb_str(b, sep);
    eb_ci(b, &m->brier);
    eb_str(b, sep);
    eb_ci(b, &m->ece);
}

static void metrics_row(eval_buf *b, const char *name, const eval_metrics *m, const eval_pred_result *r) {
    eb_str(b, "<tr><td>");
    eb_html(b, name);
    eb_str(b, "</td><td>");
    metric_cells(b, m, 1);
    eb_str(b, "</td>");
    if (r) {
        if (isnan(r->lat_median_ms)) eb_str(b, "<td>n/a</td>");
        else eb_fmt(b, "<td>%.2f / %.2f ms</td>", r->lat_median_ms, r->lat_p95_ms);
    }
    eb_str(b, "</tr>\n");
}

static void evidence_sentence(eval_buf *b, const eval_state *st, int html) {
    const task_counts *c = &st->counts[SPLIT_HELD_OUT];
    eb_fmt(b, "This evaluation rests on %zu held-out patient%s (%zu prediction time%s: %zu with the outcome, %zu without).",
           c->subjects, c->subjects == 1 ? "" : "s", c->rows, c->rows == 1 ? "" : "s", c->pos, c->neg);
    if (!st->small) return;
    eb_str(b, html ? " <strong>" : " **");
    eb_str(b, "That is too few to judge any model");
    eb_str(b, html ? "</strong>" : "**");
    eb_fmt(b, ": the intervals are wide, a single patient can move a figure, and subgroup results are anecdotes. "
              "The whole data set holds %llu patients.",
           (unsigned long long)st->s.n_subjects);
    if (!c->pos || !c->neg) eb_str(b, " The held-out split lacks one of the two classes, so AUROC and AUPRC are undefined.");
}

int eval_write_html(const eval_state *st, const char *path, cf_err *err) {
    const task_def *t = &st->task;
    const task_labels *l = &st->labels;
    eval_buf b = {0};
    eb_str(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>");
    eb_html(&b, t->title);
    eb_str(&b, " - validation report</title>\n<style>\n"
               "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;"
               "max-width:1180px;color:#222;line-height:1.4;padding:0 16px}\n"
               "h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}\n"
               ".sub{color:#666;margin-top:2px}.warn{background:#fdecea;border:2px solid #d93025;padding:10px 14px;"
               "border-radius:6px;font-size:1.08em}.note{background:#fff8e1;border:1px solid #f0c36d;padding:8px 12px;"
               "border-radius:6px}.ok{background:#e8f4fd;border:1px solid #90c2e7;padding:10px 14px;border-radius:6px}\n"
               "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
               "vertical-align:top}th{background:#f2f2f2}\n"
               ".plots{display:flex;flex-wrap:wrap;gap:12px}svg{background:#fff;border:1px solid #ddd}\n"
               "svg text{font-family:inherit}.pt{font-size:14px;font-weight:600;text-anchor:middle}"
               ".tx{font-size:11px;text-anchor:middle}.ty{font-size:11px;text-anchor:end}"
               ".xl{font-size:12px;text-anchor:middle}.lg{font-size:12px}.sm{font-size:10px;fill:#555}"
               ".frame{fill:none;stroke:#444}.grid{stroke:#eee}.diag{stroke:#999;stroke-dasharray:4 3}\n"
               "pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}.advise{font-size:1.15em;"
               "font-weight:600;margin-top:24px}\n</style></head><body>\n");
    eb_str(&b, "<h1>");
    eb_html(&b, t->title);
    eb_str(&b, "</h1>\n<p class=\"sub\">Validation report &middot; task <code>");
    eb_html(&b, t->name);
    eb_fmt(&b, "</code> &middot; generated %s by clinfm</p>\n", st->generated);
    eb_str(&b, st->small ? "<p class=\"warn\">" : "<p class=\"ok\">");
    evidence_sentence(&b, st, 1);
    eb_str(&b, "</p>\n");
    if (st->cfg->split.default_key)
        eb_str(&b, "<p class=\"note\">The train/tuning/held-out split used the public default key: anyone can tell "
                   "which patients are held out. Use a secret split key (<code>--split-key</code>) for an evaluation "
                   "that is to be trusted.</p>\n");
    if (st->s.flags & STORE_FLAG_DEIDENTIFIED)
        eb_str(&b, "<p>The data were de-identified before evaluation.</p>\n");

    eb_str(&b, "<h2>What is predicted</h2>\n<table>\n");
    const char *rows[][2] = {{"Question", t->description}, {"Population", t->population}, {"Outcome", t->outcome}};
    for (int i = 0; i < 3; i++) {
        if (!rows[i][1]) continue;
        eb_fmt(&b, "<tr><th>%s</th><td>", rows[i][0]);
        eb_html(&b, rows[i][1]);
        eb_str(&b, "</td></tr>\n");
    }
    char tb[96];
    eb_str(&b, "<tr><th>Prediction time</th><td><code>");
    eb_html(&b, task_time_str(&t->prediction, tb, sizeof tb));
    eb_str(&b, "</code>; only data recorded at or before it is used</td></tr>\n<tr><th>Label rule</th><td><code>");
    eb_html(&b, t->label.text);
    eb_str(&b, "</code></td></tr>\n<tr><th>Exclusions</th><td>");
    if (!t->n_exclude) eb_str(&b, "none");
    for (size_t i = 0; i < t->n_exclude; i++) {
        eb_str(&b, i ? "<br><code>" : "<code>");
        eb_html(&b, t->exclude[i].text);
        eb_str(&b, "</code>");
    }
    eb_str(&b, "</td></tr>\n<tr><th>Task file</th><td><code>");
    eb_html(&b, t->path);
    eb_str(&b, "</code></td></tr>\n</table>\n");

    eb_str(&b, "<h2>Cohort</h2>\n<table><tr><th>Step</th><th>Count</th></tr>\n");
    eb_fmt(&b, "<tr><td>trigger events</td><td>%llu</td></tr>\n", (unsigned long long)l->n_triggers);
    for (size_t i = 0; i < l->n_excluded; i++) {
        if (!l->excluded[i].count) continue;
        eb_str(&b, "<tr><td>excluded: ");
        eb_html(&b, l->excluded[i].reason);
        eb_fmt(&b, "</td><td>%llu</td></tr>\n", (unsigned long long)l->excluded[i].count);
    }
    eb_str(&b, "</table>\n<table><tr><th>Split</th><th>Patients</th><th>Prediction times</th><th>With outcome</th>"
               "<th>Without</th></tr>\n");
    for (int k = 0; k <= SPLIT_COUNT; k++) {
        const task_counts *c = &st->counts[k];
        eb_fmt(&b, "<tr><td>%s</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td></tr>\n",
               k == SPLIT_COUNT ? "all" : split_name(k), c->subjects, c->rows, c->pos, c->neg);
    }
    eb_str(&b, "</table>\n<p>Predictors are trained on <em>train</em>, their settings chosen on <em>tuning</em>, and "
               "every figure below is measured on <em>held_out</em> patients only.</p>\n");

    eb_str(&b, "<h2>Performance on held-out patients</h2>\n<table><tr><th>Predictor</th><th>AUROC</th><th>AUPRC</th>"
               "<th>Brier score</th><th>Calibration error (ECE)</th><th>Latency per patient (median / 95th pct.)</th></tr>\n");
    for (size_t i = 0; i < st->n_res; i++) metrics_row(&b, st->res[i].p->name, &st->res[i].overall, &st->res[i]);
    eb_str(&b, "</table>\n");
    unsigned nb = st->n_res ? st->res[0].overall.n_boot : 0;
    eb_fmt(&b, "<p class=\"sub\">Values with 95%% intervals from %u bootstrap resamples of patients (all of a patient's "
               "prediction times together; seed %llu). AUROC is the empirical area (ties count one half); AUPRC is "
               "average precision; lower Brier score and ECE are better. AUROC and AUPRC are n/a when the outcome is "
               "all present or all absent, and have no interval with fewer than 5 prediction times of a class (or "
               "when most resamples lack one class). &dagger; fewer than 10 prediction times with, or without, the "
               "outcome: the interval understates the uncertainty.</p>\n",
           nb, (unsigned long long)st->cfg->boot.seed);
    for (size_t i = 0; i < st->n_res; i++)
        if (st->res[i].p->description) {
            eb_str(&b, "<p><strong>");
            eb_html(&b, st->res[i].p->name);
            eb_str(&b, "</strong>: ");
            eb_html(&b, st->res[i].p->description);
            eb_str(&b, "</p>\n");
        }
    eb_str(&b, "<div class=\"plots\">\n");
    plot_roc(&b, st);
    plot_pr(&b, st);
    plot_calibration(&b, st);
    eb_str(&b, "</div>\n");

    eb_str(&b, "<h2>Subgroups</h2>\n<p>The same metrics for each group of held-out patients, with the number of "
               "patients and of prediction times with (+) and without (-) the outcome. Groups come from the data "
               "recorded up to the prediction time; &ldquo;unknown&rdquo; means nothing was recorded.</p>\n");
    for (size_t g = 0; g < l->n_subgroups; g++) {
        eb_str(&b, "<h3>");
        eb_html(&b, l->subgroup_names[g]);
        eb_str(&b, "</h3>\n");
        plot_subgroup(&b, st, g);
        eb_str(&b, "<table><tr><th>Group</th><th>Patients</th><th>+</th><th>-</th><th>Predictor</th><th>AUROC</th>"
                   "<th>AUPRC</th><th>Brier</th><th>ECE</th></tr>\n");
        for (size_t v = 0; v < l->n_values[g]; v++)
            for (size_t i = 0; i < st->n_res; i++) {
                const eval_metrics *m = st->res[i].groups[g] ? &st->res[i].groups[g][v] : NULL;
                if (!m || !m->n) continue;
                eb_str(&b, "<tr>");
                if (i == 0) {
                    eb_fmt(&b, "<td rowspan=\"%zu\">", st->n_res);
                    eb_html(&b, l->values[g][v]);
                    eb_fmt(&b, "</td><td rowspan=\"%zu\">%zu</td><td rowspan=\"%zu\">%zu</td><td rowspan=\"%zu\">%zu</td>",
                           st->n_res, m->clusters, st->n_res, m->pos, st->n_res, m->neg);
                }
                eb_str(&b, "<td>");
                eb_html(&b, st->res[i].p->name);
                eb_str(&b, "</td><td>");
                metric_cells(&b, m, 1);
                eb_str(&b, "</td></tr>\n");
            }
        eb_str(&b, "</table>\n");
    }

    eb_str(&b, "<h2>Predictor settings</h2>\n");
    for (size_t i = 0; i < st->n_res; i++) {
        eb_str(&b, "<h3>");
        eb_html(&b, st->res[i].p->name);
        eb_fmt(&b, "</h3>\n<p>Fitted in %.2f s.</p>\n", st->res[i].fit_seconds);
        if (st->res[i].info_json) {
            cJSON *j = cJSON_Parse(st->res[i].info_json);
            char *pretty = j ? cJSON_Print(j) : NULL;
            eb_str(&b, "<pre>");
            eb_html(&b, pretty ? pretty : st->res[i].info_json);
            eb_str(&b, "</pre>\n");
            free(pretty);
            cJSON_Delete(j);
        }
    }
    eb_str(&b, "<p class=\"advise\">These predictions advise; a clinician decides.</p>\n"
               "<p class=\"sub\">Files beside this report: metrics.json (every figure above), predictions.csv (each "
               "held-out prediction), MODEL_CARD.md.</p>\n</body></html>\n");
    return task_buf_write_file(&b, path, err);
}

/* ---------------------------------------------------------------- MODEL_CARD.md */

static void md_text(eval_buf *b, const char *s) {
    /* keep table cells on one line */
    for (; s && *s; s++) eb_put(b, *s == '|' ? "/" : *s == '\n' ? " " : s, 1);
}

int eval_write_model_card(const eval_state *st, const char *path, cf_err *err) {
    const task_def *t = &st->task;
    const task_labels *l = &st->labels;
    eval_buf b = {0};
    char tb[96];
    eb_str(&b, "# Model card: ");
    md_text(&b, t->title);
    eb_fmt(&b, "\n\nTask `%s`, evaluated %s by `clinfm eval`.\n\n", t->name, st->generated);
    eb_str(&b, "> ");
    evidence_sentence(&b, st, 0);
    eb_str(&b, "\n\n## Intended use\n\n");
    if (t->description) {
        md_text(&b, t->description);
        eb_str(&b, "\n\n");
    }
    eb_str(&b, "- **Population:** ");
    md_text(&b, t->population ? t->population : "as defined by the task file");
    eb_str(&b, "\n- **Outcome:** ");
    md_text(&b, t->outcome ? t->outcome : t->label.text);
    eb_fmt(&b, "\n- **When:** at `%s`, using only what is recorded up to that moment.\n",
           task_time_str(&t->prediction, tb, sizeof tb));
    eb_str(&b, "- **Users:** clinicians, as one input to their own judgement about a patient, and the hospital's AI "
               "committee, to decide whether the model may be used.\n"
               "- **Not for:** deciding care without a clinician, patients outside the population above, other "
               "hospitals or time periods without a new validation, or any purpose other than this outcome.\n\n"
               "**The model advises; a clinician decides.**\n\n");
    eb_str(&b, "## Training and evaluation data\n\n");
    eb_fmt(&b, "- Event store: %llu patients, %llu events%s.\n", (unsigned long long)st->s.n_subjects,
           (unsigned long long)st->s.n_events, (st->s.flags & STORE_FLAG_DEIDENTIFIED) ? ", de-identified" : "");
    eb_fmt(&b, "- Patients are split by a keyed hash of their identifier: train %.0f%%, tuning %.0f%%, held out "
               "%.0f%%%s.\n",
           st->cfg->split.train_ppm / 1e4, st->cfg->split.tuning_ppm / 1e4,
           (SPLIT_PPM - st->cfg->split.train_ppm - st->cfg->split.tuning_ppm) / 1e4,
           st->cfg->split.default_key ? " (public default key: for demonstrations only)" : " (secret key)");
    eb_fmt(&b, "- Trigger events: %llu. Exclusions:\n", (unsigned long long)l->n_triggers);
    for (size_t i = 0; i < l->n_excluded; i++)
        if (l->excluded[i].count) {
            eb_fmt(&b, "  - %llu: ", (unsigned long long)l->excluded[i].count);
            md_text(&b, l->excluded[i].reason);
            eb_str(&b, "\n");
        }
    eb_str(&b, "\n| split | patients | prediction times | with outcome | without |\n|---|---|---|---|---|\n");
    for (int k = 0; k <= SPLIT_COUNT; k++) {
        const task_counts *c = &st->counts[k];
        eb_fmt(&b, "| %s | %zu | %zu | %zu | %zu |\n", k == SPLIT_COUNT ? "all" : split_name(k), c->subjects, c->rows,
               c->pos, c->neg);
    }
    eb_str(&b, "\n## Performance on held-out patients\n\n"
               "| predictor | AUROC | AUPRC | Brier | ECE | latency per patient (median) |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < st->n_res; i++) {
        const eval_metrics *m = &st->res[i].overall;
        eb_fmt(&b, "| %s | ", st->res[i].p->name);
        metric_cells(&b, m, 0);
        if (isnan(st->res[i].lat_median_ms)) eb_str(&b, " | n/a |\n");
        else eb_fmt(&b, " | %.2f ms |\n", st->res[i].lat_median_ms);
    }
    eb_fmt(&b, "\nIntervals: 95%%, from %u bootstrap resamples of patients. \xe2\x80\xa0 fewer than 10 prediction "
               "times with, or without, the outcome: the interval understates the uncertainty.\n",
           st->n_res ? st->res[0].overall.n_boot : 0);
    for (size_t i = 0; i < st->n_res; i++)
        if (st->res[i].p->description) {
            eb_fmt(&b, "\n- `%s`: ", st->res[i].p->name);
            md_text(&b, st->res[i].p->description);
        }
    eb_str(&b, "\n\n## Subgroups (AUROC, held out)\n\n");
    for (size_t g = 0; g < l->n_subgroups; g++) {
        eb_str(&b, "### ");
        md_text(&b, l->subgroup_names[g]);
        eb_str(&b, "\n\n| group | patients | + | - |");
        for (size_t i = 0; i < st->n_res; i++) eb_fmt(&b, " %s |", st->res[i].p->name);
        eb_str(&b, "\n|---|---|---|---|");
        for (size_t i = 0; i < st->n_res; i++) eb_str(&b, "---|");
        eb_str(&b, "\n");
        for (size_t v = 0; v < l->n_values[g]; v++) {
            const eval_metrics *m0 = st->n_res && st->res[0].groups[g] ? &st->res[0].groups[g][v] : NULL;
            if (!m0 || !m0->n) continue;
            eb_str(&b, "| ");
            md_text(&b, l->values[g][v]);
            eb_fmt(&b, " | %zu | %zu | %zu |", m0->clusters, m0->pos, m0->neg);
            for (size_t i = 0; i < st->n_res; i++) {
                eb_str(&b, " ");
                eb_ci(&b, &st->res[i].groups[g][v].auroc);
                mark(&b, &st->res[i].groups[g][v], &st->res[i].groups[g][v].auroc, 0);
                eb_str(&b, " |");
            }
            eb_str(&b, "\n");
        }
        eb_str(&b, "\n");
    }
    eb_str(&b, "## Limitations\n\n");
    if (st->small) {
        eb_str(&b, "- **Too little evidence.** ");
        evidence_sentence(&b, st, 0);
        eb_str(&b, "\n");
    }
    eb_str(&b, "- Validated on one data set from one source; performance elsewhere, or later in time, is unknown "
               "until measured there.\n"
               "- Labels come from coded events (the task file above): outcomes that were not recorded, or recorded "
               "late, are missed, and coding habits differ between sites.\n"
               "- Subgroups are defined by recorded codes; small groups have wide intervals, and a group absent "
               "from the held-out split was not evaluated at all.\n"
               "- Probabilities are calibrated to this population's base rate; where the outcome is more or less "
               "common, re-check calibration before use.\n"
               "- Synthetic data (Synthea) follows simulated disease models: figures on it show that the pipeline "
               "works, not how a model would do on real patients.\n\n"
               "## Human oversight\n\nThe model advises; a clinician decides. Its output is a probability for one "
               "outcome; it is not a diagnosis and does not replace examination, tests or clinical judgement.\n");
    return task_buf_write_file(&b, path, err);
}
