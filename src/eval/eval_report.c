/* report.html (one self-contained file: inline CSS and SVG plots, no script, nothing fetched
 * from a network); the text it shares with MODEL_CARD.md is in eval_text.c.
 *
 * A report that refuses to over-claim: it leads with how much evidence there is, in words, and
 * with the alarms (training patients among the held-out ones, in red on every section; the
 * record-position floor; single features that alone predict too well; all-history against
 * fixed-lookback counts); no figure without its interval; fewer than 10 held-out rows with (or
 * without) the outcome make every performance figure "insufficient" rather than a number;
 * calibration shows its bin counts and a zoom to the range the risks use; decision thresholds
 * come with sensitivity, specificity, PPV, number needed to evaluate and alerts per 100; the
 * features that drive the baselines are named with their codes' descriptions. Text from the
 * task file and subgroup values is escaped before it reaches the HTML. */
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

/* Plot coordinates; the axes run from 0 to zx (x) and zy (y): 1 except on the zoomed
 * calibration plot. */
static double zx = 1, zy = 1;
static double px(double x) { return ML + x / zx * (PW - ML - MR); }
static double py(double y) { return PH - MB - (y > zy ? zy : y) / zy * (PH - MT - MB); }

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
    eb_fmt(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>\n", px(0), py(zy),
           px(zx) - px(0), py(0) - py(zy));
    for (int i = 0; i <= 5; i++) {
        double vx = zx * i / 5.0, vy = zy * i / 5.0;
        eb_fmt(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", px(vx), py(0), px(vx), py(zy));
        eb_fmt(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", px(0), py(vy), px(zx), py(vy));
        eb_fmt(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tx\">%.*f</text>", px(vx), py(0) + 15, zx < 0.5 ? 3 : 1, vx);
        eb_fmt(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"ty\">%.*f</text>\n", px(0) - 6, py(vy) + 4, zy < 0.5 ? 3 : 1, vy);
    }
    eb_fmt(b, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">", (px(0) + px(1)) / 2, PH - 8);
    eb_html(b, xl);
    eb_fmt(b, "</text><text transform=\"translate(14,%.1f) rotate(-90)\" class=\"xl\">", (py(0) + py(1)) / 2);
    eb_html(b, yl);
    eb_str(b, "</text>\n");
    if (diagonal) {
        double d = zx < zy ? zx : zy;
        eb_fmt(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"diag\"/>\n", px(0), py(0), px(d), py(d));
    }
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

/* One predictor's reliability points: a dot per bin sized by its rows, the observed fraction's
 * interval as a line, and the row count written beside it so a reader sees what each dot rests on. */
static void calibration_points(eval_buf *b, const eval_bin *bins, size_t nb, size_t i, int labels) {
    const char *col = colors[i % N_COLORS];
    double x[16], y[16];
    size_t n = 0;
    for (size_t k = 0; k < nb && n < 16; k++) {
        const eval_bin *bn = &bins[k];
        if (!(bn->n > 0)) continue;
        double dx = 2.0 * (double)i;
        x[n] = bn->mean_pred, y[n++] = bn->frac_pos;
        if (!isnan(bn->frac_lo))
            eb_fmt(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-opacity=\"0.5\"/>",
                   px(bn->mean_pred) + dx, py(bn->frac_lo), px(bn->mean_pred) + dx, py(bn->frac_hi), col);
        double r = 2.5 + 1.5 * log10(1 + bn->n);
        eb_fmt(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" fill-opacity=\"0.75\"><title>%.0f rows, "
                  "%.0f%% observed</title></circle>\n",
               px(bn->mean_pred) + dx, py(bn->frac_pos), r, col, bn->n, 100 * bn->frac_pos);
        if (labels)
            eb_fmt(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"sm\" fill=\"%s\">%.0f</text>\n", px(bn->mean_pred) + dx + r + 2,
                   py(bn->frac_pos) - 3 - 10.0 * (double)i, col, bn->n);
    }
    if (n > 1) polyline(b, x, y, n, col, 0);
}

static void plot_calibration(eval_buf *b, const eval_state *st) {
    plot_frame(b, "Calibration (held out, 10 equal-width bins)", "mean predicted probability", "observed fraction", 1);
    for (size_t i = 0; i < st->n_res; i++) calibration_points(b, st->res[i].overall.bins, EVAL_BINS, i, 1);
    legend(b, st, px(0.05), py(0.9));
    eb_str(b, "<text x=\"60\" y=\"44\" class=\"sm\">numbers: rows in the bin</text>\n</svg>\n");
}

/* The same by deciles of each predictor's risk, on axes zoomed to the range the predictions and
 * the observed fractions use: for a rare outcome every row falls in the first equal-width bin. */
static void plot_calibration_zoom(eval_buf *b, const eval_state *st) {
    double top = 0;
    for (size_t i = 0; i < st->n_res; i++)
        for (size_t k = 0; k < st->res[i].n_deciles; k++) {
            const eval_bin *bn = &st->res[i].deciles[k];
            if (bn->mean_pred > top) top = bn->mean_pred;
            if (bn->frac_pos > top) top = bn->frac_pos;
        }
    /* a round upper edge a little above the largest value */
    double step = top <= 0.02 ? 0.005 : top <= 0.05 ? 0.01 : top <= 0.2 ? 0.05 : top <= 0.5 ? 0.1 : 0.2;
    double edge = ceil(top * 1.1 / step) * step;
    zx = zy = edge > 1 || edge <= 0 ? 1 : edge;
    plot_frame(b, "Calibration by deciles of risk (zoomed)", "mean predicted probability", "observed fraction", 1);
    for (size_t i = 0; i < st->n_res; i++) calibration_points(b, st->res[i].deciles, st->res[i].n_deciles, i, 0);
    legend(b, st, px(0.05 * zx), py(0.9 * zy));
    eb_fmt(b, "<text x=\"60\" y=\"44\" class=\"sm\">axes 0 to %.3g; each dot a tenth of the held-out rows</text>\n</svg>\n",
           zx);
    zx = zy = 1;
}

/* A forest plot of AUROC per subgroup value and predictor, with intervals and counts. */
static void plot_subgroup(eval_buf *b, const eval_state *st, size_t g) {
    const task_labels *l = &st->labels;
    size_t nv = 0;
    for (size_t v = 0; v < l->n_values[g]; v++)
        if (st->n_res && st->res[0].groups[g] && st->res[0].groups[g][v].n) nv++;
    if (!nv) return;
    int W = 720, left = 230, right = 20, top = 34, rowh = 14 * (int)(st->n_res > 0 ? st->n_res : 1) + 10;
    int H = top + (int)nv * rowh + 40 + 14 * (int)((st->n_res + 5) / 6);
    double x0 = 0.0, x1 = 1.0;
    int gb = top + (int)nv * rowh + 8; /* the grid's bottom */
#define SX(v) (left + ((v) - x0) / (x1 - x0) * (W - left - right))
    svg_open(b, W, H, "AUROC by subgroup");
    eb_fmt(b, "<text x=\"%d\" y=\"18\" class=\"pt\">AUROC by ", W / 2);
    eb_html(b, l->subgroup_names[g]);
    eb_str(b, " (held out, 95% interval)</text>\n");
    for (int i = 0; i <= 10; i += 2) {
        double v = i / 10.0;
        eb_fmt(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>", SX(v), top, SX(v), gb);
        eb_fmt(b, "<text x=\"%.1f\" y=\"%d\" class=\"tx\">%.1f</text>\n", SX(v), gb + 14, v);
    }
    eb_fmt(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"diag\"/>\n", SX(0.5), top, SX(0.5), gb);
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
            if (isnan(m->auroc.value) || eval_metrics_insufficient(m)) {
                eb_fmt(b, "<text x=\"%.1f\" y=\"%d\" class=\"sm\" fill=\"%s\">%s</text>\n", SX(0.02), yy + 4, col,
                       isnan(m->auroc.value) ? "n/a (one class only)" : "insufficient (fewer than 10 of a class)");
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
    /* which colour is which predictor */
    for (size_t i = 0; i < st->n_res; i++) {
        double x = 8 + 120.0 * (double)(i % 6);
        int y = H - 4 - 14 * (int)(i / 6);
        eb_fmt(b, "<rect x=\"%.1f\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.1f\" y=\"%d\" class=\"lg\">",
               x, y - 9, colors[i % N_COLORS], x + 14, y);
        eb_html(b, st->res[i].p->name);
        eb_str(b, "</text>\n");
    }
    eb_str(b, "</svg>\n");
}

/* ---------------------------------------------------------------- report.html */

static void overlap_banner(eval_buf *b, const eval_state *st) { eval_text_overlap(b, st, 1); }

static void h2(eval_buf *b, const eval_state *st, const char *title) {
    eb_fmt(b, "<h2>%s</h2>\n", title);
    overlap_banner(b, st); /* "in red on every page" */
}

static void metrics_row(eval_buf *b, const eval_state *st, size_t i) {
    const eval_pred_result *r = &st->res[i];
    eb_str(b, "<tr><td>");
    eb_html(b, r->p->name);
    if ((int)i == st->proposed) eb_str(b, " <strong>(proposed)</strong>");
    eb_fmt(b, "</td><td>%s</td><td>", eval_role_name(r->p->role));
    eval_text_cells(b, &r->overall, 1);
    eb_str(b, "</td>");
    if (isnan(r->lat_median_ms)) eb_str(b, "<td>n/a</td>");
    else eb_fmt(b, "<td>%.2f / %.2f ms</td>", r->lat_median_ms, r->lat_p95_ms);
    eb_str(b, "</tr>\n");
}

static void ci_cell(eval_buf *b, const eval_ci *c, int digits) {
    eb_str(b, "<td>");
    eb_ci_digits(b, c, digits);
    eb_str(b, "</td>");
}

/* Sensitivity, specificity, PPV, number needed to evaluate and alerts per 100 at each threshold. */
void eval_html_thresholds(eval_buf *b, const eval_state *st) {
    eb_str(b, "<table><tr><th>Predictor</th><th>Risk at least</th><th>Alerts per 100 predictions</th><th>Sensitivity"
              "</th><th>Specificity</th><th>PPV</th><th>Number needed to evaluate</th><th>TP / FP / FN / TN</th></tr>\n");
    for (size_t i = 0; i < st->n_res; i++) {
        const eval_pred_result *r = &st->res[i];
        for (size_t k = 0; k < st->n_thresholds; k++) {
            const eval_threshold *t = &r->thr[k];
            eb_str(b, "<tr>");
            if (!k) {
                eb_fmt(b, "<td rowspan=\"%zu\">", st->n_thresholds);
                eb_html(b, r->p->name);
                eb_str(b, "</td>");
            }
            eb_fmt(b, "<td>%g</td>", t->threshold);
            ci_cell(b, &t->alerts_per_100, 1);
            if (st->insufficient) {
                eb_str(b, "<td colspan=\"4\">insufficient</td>");
            } else {
                ci_cell(b, &t->sensitivity, 3);
                ci_cell(b, &t->specificity, 3);
                ci_cell(b, &t->ppv, 3);
                ci_cell(b, &t->nne, 1);
            }
            eb_fmt(b, "<td>%zu / %zu / %zu / %zu</td></tr>\n", t->tp, t->fp, t->fn, t->tn);
        }
    }
    eb_str(b, "</table>\n");
}

/* The features that drive a baseline (from its settings): weights or total gain, by name. */
static void drivers_table(eval_buf *b, const cJSON *set) {
    const cJSON *w = cJSON_GetObjectItem(set, "top_features"), *g = cJSON_GetObjectItem(set, "top_features_by_gain");
    const cJSON *arr = g ? g : w;
    if (!cJSON_IsArray(arr) || !cJSON_GetArraySize(arr)) return;
    eb_fmt(b, "<table><tr><th>Feature (code and description)</th><th>%s</th></tr>\n",
           g ? "Share of the trees' total gain" : "Weight (standardised)");
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        const cJSON *nm = cJSON_GetObjectItem(e, "feature"), *v = cJSON_GetObjectItem(e, g ? "share" : "weight");
        eb_str(b, "<tr><td>");
        eb_html(b, cJSON_IsString(nm) ? nm->valuestring : "?");
        if (cJSON_IsNumber(v)) eb_fmt(b, g ? "</td><td>%.1f%%</td></tr>\n" : "</td><td>%+.3f</td></tr>\n", g ? 100 * v->valuedouble : v->valuedouble);
        else eb_str(b, "</td><td></td></tr>\n");
    }
    eb_str(b, "</table>\n");
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
               ".red{background:#d93025;color:#fff;font-weight:700;padding:10px 14px;border-radius:6px}"
               ".alarm{background:#fff3e0;border:2px solid #e8710a;padding:10px 14px;border-radius:6px}\n"
               "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
               "vertical-align:top}th{background:#f2f2f2}tr.flag td{background:#fdecea}\n"
               ".plots{display:flex;flex-wrap:wrap;gap:12px}svg{background:#fff;border:1px solid #ddd}\n"
               "svg text{font-family:inherit}.pt{font-size:14px;font-weight:600;text-anchor:middle}"
               ".tx{font-size:11px;text-anchor:middle}.ty{font-size:11px;text-anchor:end}"
               ".xl{font-size:12px;text-anchor:middle}.lg{font-size:12px}.sm{font-size:10px;fill:#555}"
               ".frame{fill:none;stroke:#444}.grid{stroke:#eee}.diag{stroke:#999;stroke-dasharray:4 3}\n"
               "pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}.advise{font-size:1.15em;"
               "font-weight:600;margin-top:24px}\n</style></head><body>\n");
    eb_str(&b, "<h1>");
    eb_html(&b, t->title);
    if (l->target == TASK_TARGET_COMPETING) eb_str(&b, ": the competing event (death before the outcome)");
    eb_str(&b, "</h1>\n<p class=\"sub\">Validation report &middot; task <code>");
    eb_html(&b, t->name);
    eb_fmt(&b, "</code> &middot; generated %s by clinfm</p>\n", st->generated);
    overlap_banner(&b, st);
    eb_str(&b, st->small || st->insufficient ? "<p class=\"warn\">" : "<p class=\"ok\">");
    eval_text_evidence(&b, st, 1);
    eb_str(&b, "</p>\n<div class=\"alarm\"><strong>Leakage alarms.</strong> ");
    eval_text_alarms(&b, st, 1);
    eb_str(&b, "</div>\n");
    if (st->proposed >= 0) {
        eb_str(&b, "<p>Proposed for use: <strong>");
        eb_html(&b, st->res[st->proposed].p->name);
        eb_str(&b, "</strong> (the model card says why and what it claims).</p>\n");
    } else {
        eb_str(&b, "<p>No predictor is proposed for use: the rows below are references.</p>\n");
    }
    if (st->cfg->split.default_key)
        eb_str(&b, "<p class=\"note\">The train/tuning/held-out split used the public default key: anyone can tell "
                   "which patients are held out. Use a secret split key (<code>--split-key</code>) for an evaluation "
                   "that is to be trusted.</p>\n");
    if (st->s.flags & STORE_FLAG_DEIDENTIFIED)
        eb_str(&b, "<p>The data were de-identified before evaluation.</p>\n");

    h2(&b, st, "What is predicted");
    eb_str(&b, "<table>\n");
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
    eb_str(&b, "</code></td></tr>\n<tr><th>Follow-up and censoring</th><td>");
    eval_text_follow_up(&b, st, 1);
    eb_str(&b, "</td></tr>\n<tr><th>Exclusions</th><td>");
    if (!t->n_exclude) eb_str(&b, "none");
    for (size_t i = 0; i < t->n_exclude; i++) {
        eb_str(&b, i ? "<br><code>" : "<code>");
        eb_html(&b, t->exclude[i].text);
        eb_str(&b, "</code>");
    }
    eb_str(&b, "</td></tr>\n<tr><th>Data</th><td>");
    eb_fmt(&b, "%llu patients, %llu events, from ", (unsigned long long)st->s.n_subjects, (unsigned long long)st->s.n_events);
    eb_time(&b, st->s.first_time);
    eb_str(&b, " to ");
    eb_time(&b, st->s.last_time);
    eb_str(&b, (st->s.flags & STORE_FLAG_DATES_SHIFTED) ? " (dates shifted per patient by de-identification)" : "");
    eb_str(&b, "</td></tr>\n<tr><th>Task file</th><td><code>");
    eb_html(&b, t->path);
    eb_str(&b, "</code></td></tr>\n</table>\n");

    h2(&b, st, "Cohort");
    eb_str(&b, "<table><tr><th>Step</th><th>Count</th></tr>\n");
    eb_fmt(&b, "<tr><td>trigger events</td><td>%llu</td></tr>\n", (unsigned long long)l->n_triggers);
    for (size_t i = 0; i < l->n_excluded; i++) {
        if (!l->excluded[i].count) continue;
        eb_str(&b, "<tr><td>excluded: ");
        eb_html(&b, l->excluded[i].reason);
        eb_fmt(&b, "</td><td>%llu</td></tr>\n", (unsigned long long)l->excluded[i].count);
    }
    eb_str(&b, "</table>\n<table><tr><th>Split</th><th>Patients</th><th>Prediction times</th><th>With outcome</th>"
               "<th>Without</th>");
    if (l->has_follow_up) eb_str(&b, "<th>Of them, death first (competing event)</th>");
    eb_str(&b, "</tr>\n");
    for (int k = 0; k <= SPLIT_COUNT; k++) {
        const task_counts *c = &st->counts[k];
        eb_fmt(&b, "<tr><td>%s</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td>", k == SPLIT_COUNT ? "all" : split_name(k),
               c->subjects, c->rows, c->pos, c->neg);
        if (l->has_follow_up) eb_fmt(&b, "<td>%zu</td>", c->competing);
        eb_str(&b, "</tr>\n");
    }
    eb_str(&b, "</table>\n<p>Predictors are trained on <em>train</em>, their settings chosen on <em>tuning</em>, and "
               "every figure below is measured on <em>held_out</em> patients only.</p>\n");

    if (st->cfg->model_path) {
        const eval_model_info *mi = &st->model;
        h2(&b, st, "The model");
        eb_str(&b, "<table><tr><th>Model</th><td><code>");
        eb_html(&b, st->cfg->model_path);
        eb_fmt(&b, "</code>, %s", mi->version);
        if (mi->checkpoint_hash[0]) eb_fmt(&b, "; checkpoint BLAKE2b-256 <code>%s</code>", mi->checkpoint_hash);
        eb_str(&b, "</td></tr>\n<tr><th>Trained on</th><td>");
        if (!mi->split_recorded) {
            eb_str(&b, mi->legacy ? "not recorded: a model in the old layout (retrain to record it)"
                                  : "not recorded");
        } else {
            eb_trained_on(&b, mi, "");
            eb_str(&b, mi->same_store ? "; this is the store it was trained on" : "; another store than this one");
        }
        eb_str(&b, "</td></tr>\n<tr><th>Training patients among the held-out ones</th><td>");
        if (!mi->split_recorded) eb_str(&b, "could not be checked (no record of its training patients)");
        else
            eb_fmt(&b, "%zu of %zu held-out patients checked by id and record print (%zu too short for a print)",
                   mi->overlap_patients, mi->held_patients, mi->held_unprinted);
        eb_str(&b, "</td></tr>\n");
        if (mi->head_file[0]) {
            eb_str(&b, "<tr><th>Task head</th><td>written into the model bundle: <code>");
            eb_html(&b, mi->head_file);
            eb_str(&b, "</code></td></tr>\n");
        }
        eb_str(&b, "</table>\n");
    }

    h2(&b, st, "Performance on held-out patients");
    eb_str(&b, "<table><tr><th>Predictor</th><th>Role</th><th>AUROC</th><th>AUPRC</th><th>Brier score</th>"
               "<th>Calibration error (ECE)</th><th>Latency per patient (median / 95th pct.)</th></tr>\n");
    for (size_t i = 0; i < st->n_res; i++) metrics_row(&b, st, i);
    eb_str(&b, "</table>\n");
    unsigned nb = st->n_res ? st->res[0].overall.n_boot : 0;
    eb_fmt(&b, "<p class=\"sub\">Values with 95%% intervals from %u bootstrap resamples of patients (all of a patient's "
               "prediction times together; seed %llu). AUROC is the empirical area (ties count one half); AUPRC is "
               "average precision; lower Brier score and ECE are better. With fewer than %d prediction times with, "
               "or without, the outcome every figure reads &ldquo;insufficient&rdquo;. A <em>floor</em> is a "
               "reference a predictor must clear (the record-position probe); a <em>ceiling</em> is what could be "
               "reached at best; neither is a candidate for use.</p>\n",
           nb, (unsigned long long)st->cfg->boot.seed, EVAL_MIN_POSITIVES);
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
    plot_calibration_zoom(&b, st);
    eb_str(&b, "</div>\n");

    h2(&b, st, "Decision thresholds");
    eb_fmt(&b, "<p>Each row flags the held-out prediction times whose risk is at least the threshold (%s). Number needed "
               "to evaluate: alerts per outcome found (1 / PPV). Intervals: Wilson 95%% over prediction times.</p>\n",
           st->thresholds_from == 2 ? "as asked with --thresholds" : st->thresholds_from == 1 ? "as the task file states"
                                                                                             : "clinfm's default list");
    eval_html_thresholds(&b, st);

    h2(&b, st, "Single features on their own");
    eb_fmt(&b, "<p>The AUROC of each count feature alone, over every labelled row and over the held-out rows (%zu features; "
               "direction-free). Flagged: over %.1f, or as strong as the best predictor",
           st->leak.n_features, st->leak.flag_auroc);
    if (st->leak.best_name) {
        eb_str(&b, " (");
        eb_html(&b, st->leak.best_name);
        eb_fmt(&b, ", %.3f)", st->leak.best_auroc);
    }
    eb_str(&b, ". A flagged feature is a leak, or a count that measures the record's window, until shown otherwise.</p>\n"
               "<table><tr><th>Feature</th><th>AUROC, all rows</th><th>AUROC, held out</th><th>Direction</th><th>Flag</th></tr>\n");
    for (size_t i = 0; i < st->leak.n_top; i++) {
        const eval_feature_auc *a = &st->leak.top[i];
        eb_str(&b, a->flag ? "<tr class=\"flag\"><td>" : "<tr><td>");
        eb_html(&b, a->name);
        eb_fmt(&b, "</td><td>%.3f</td>", a->auroc);
        if (isnan(a->auroc_held)) eb_str(&b, "<td>n/a</td>");
        else eb_fmt(&b, "<td>%.3f</td>", a->auroc_held);
        eb_fmt(&b, "<td>%s</td><td>%s%s%s</td></tr>\n", a->higher_means_outcome ? "more: outcome" : "less: outcome",
               a->flag & EVAL_LEAK_OVER_THRESHOLD ? "over the threshold" : "",
               a->flag == (EVAL_LEAK_OVER_THRESHOLD | EVAL_LEAK_BEATS_MODEL) ? "; " : "",
               a->flag & EVAL_LEAK_BEATS_MODEL ? "as strong as the best predictor" : "");
    }
    eb_str(&b, "</table>\n");

    h2(&b, st, "Subgroups");
    eb_str(&b, "<p>The same metrics for each group of held-out patients, with the number of patients and of prediction "
               "times with (+) and without (-) the outcome. Groups come from the data recorded up to the prediction "
               "time; &ldquo;unknown&rdquo; means nothing was recorded. A group with fewer than 10 of a class reads "
               "&ldquo;insufficient&rdquo;.</p>\n");
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
                eval_text_cells(&b, m, 1);
                eb_str(&b, "</td></tr>\n");
            }
        eb_str(&b, "</table>\n");
    }

    h2(&b, st, "Predictor settings and what drives them");
    for (size_t i = 0; i < st->n_res; i++) {
        eb_str(&b, "<h3>");
        eb_html(&b, st->res[i].p->name);
        eb_fmt(&b, "</h3>\n<p>Fitted in %.2f s.</p>\n", st->res[i].fit_seconds);
        if (st->res[i].info_json) {
            cJSON *j = cJSON_Parse(st->res[i].info_json);
            if (j) drivers_table(&b, j);
            char *pretty = j ? cJSON_Print(j) : NULL;
            eb_str(&b, "<pre>");
            eb_html(&b, pretty ? pretty : st->res[i].info_json);
            eb_str(&b, "</pre>\n");
            free(pretty);
            cJSON_Delete(j);
        }
    }
    overlap_banner(&b, st);
    eb_str(&b, "<p class=\"advise\">These predictions advise; a clinician decides.</p>\n"
               "<p class=\"sub\">Files beside this report: metrics.json (every figure above, at full precision), "
               "predictions.csv (each held-out prediction, every probability exactly), MODEL_CARD.md.</p>\n</body></html>\n");
    return sbuf_write_file(&b, path, err);
}
