/* Metrics against known values: small examples worked by hand, and random examples with ties
 * checked at run time against scikit-learn (or, where it is not installed, against a plain
 * Python computation written here from the definitions); the cluster bootstrap (reproducible,
 * invariant to duplicating every patient's rows, degenerate for a perfect ranking); curves; and
 * the logistic regression against scikit-learn's on the same standardised data. */
#include <unistd.h>

#include "check.h"
#include "eval/eval.h"
#include "eval/metrics.h"

static uint64_t rs = 0x9e3779b97f4a7c15ULL;
static double urand(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}

static void test_hand_values(void) {
    /* scores 0.8(+) 0.4(-) 0.35(+) 0.1(-): of the 4 positive/negative pairs, 3 are ordered
     * right -> AUROC 0.75. AP: threshold 0.8 gives recall 1/2 at precision 1; 0.35 gives recall
     * 1 at precision 2/3 -> 0.5 * 1 + 0.5 * 2/3 = 0.8333. Brier: (0.01 + 0.16 + 0.4225 + 0.04)/4. */
    float p[] = {0.1f, 0.4f, 0.35f, 0.8f};
    uint8_t y[] = {0, 0, 1, 1};
    CHECK_NEAR(eval_auroc(p, y, 4), 0.75, 1e-12);
    CHECK_NEAR(eval_auprc(p, y, 4), 5.0 / 6.0, 1e-12);
    double b = (0.1 * 0.1 + 0.4 * 0.4 + 0.65 * 0.65 + 0.2 * 0.2) / 4;
    CHECK_NEAR(eval_brier(p, y, 4), b, 1e-6);
    /* ties: 0.9(+) 0.5(+) 0.5(-) 0.1(-): pairs (0.9,0.5-) 1, (0.9,0.1) 1, (0.5+,0.5-) 1/2,
     * (0.5+,0.1) 1 -> 3.5/4. AP: threshold 0.9 recall 1/2 precision 1; threshold 0.5 recall 1
     * precision 2/3 -> 0.8333 */
    float q[] = {0.9f, 0.5f, 0.5f, 0.1f};
    uint8_t z[] = {1, 1, 0, 0};
    CHECK_NEAR(eval_auroc(q, z, 4), 0.875, 1e-12);
    CHECK_NEAR(eval_auprc(q, z, 4), 5.0 / 6.0, 1e-12);
    /* all tied: 0.5 */
    float t[] = {0.3f, 0.3f, 0.3f, 0.3f};
    CHECK_NEAR(eval_auroc(t, z, 4), 0.5, 1e-12);
    /* one class: undefined */
    uint8_t one[] = {1, 1, 1, 1};
    CHECK(isnan(eval_auroc(p, one, 4)));
    CHECK(isnan(eval_auprc(p, one, 4)));
    CHECK(isnan(eval_auroc(p, y, 0)));
    /* ECE by hand: bins [0.0,0.1) holds 0.05(-) 0.05(+): |0.05 - 0.5| = 0.45 weight 2/5;
     * [0.9,1.0] holds 0.95(+) 0.95(+) 1.0(+): |0.9667 - 1| = 0.0333 weight 3/5 */
    float e[] = {0.05f, 0.05f, 0.95f, 0.95f, 1.0f};
    uint8_t ey[] = {0, 1, 1, 1, 1};
    eval_bin bins[EVAL_BINS];
    double ece = eval_ece(e, ey, 5, bins);
    double want = 0.4 * fabs(0.05 - 0.5) + 0.6 * fabs((0.95 + 0.95 + 1.0) / 3 - 1.0);
    CHECK_NEAR(ece, want, 1e-6);
    CHECK_NEAR(bins[0].n, 2, 0);
    CHECK_NEAR(bins[0].frac_pos, 0.5, 1e-12);
    CHECK_NEAR(bins[9].n, 3, 0);
    CHECK(isnan(bins[5].mean_pred));
}

/* Writes p,y rows to a file and asks Python for AUROC, AP, Brier and ECE. */
static int python_reference(const float *p, const uint8_t *y, size_t n, double out[4], int *used_sklearn) {
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/metrics_ref.csv", check_tmpdir());
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (size_t i = 0; i < n; i++) fprintf(f, "%.17g,%d\n", (double)p[i], y[i]);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 - '%s' <<'PY'\n"
             "import sys\n"
             "rows = [l.split(',') for l in open(sys.argv[1])]\n"
             "p = [float(a) for a, b in rows]; y = [int(b) for a, b in rows]\n"
             "n = len(p); P = sum(y); N = n - P\n"
             "try:\n"
             "    from sklearn.metrics import roc_auc_score, average_precision_score, brier_score_loss\n"
             "    auc = roc_auc_score(y, p); ap = average_precision_score(y, p); br = brier_score_loss(y, p); sk = 1\n"
             "except ImportError:\n"
             "    # the definitions, directly: pairwise AUROC, AP over distinct thresholds\n"
             "    auc = sum((1.0 if a > b else 0.5 if a == b else 0.0) for a, ya in zip(p, y) if ya\n"
             "              for b, yb in zip(p, y) if not yb) / (P * N)\n"
             "    ap = 0.0; prev = 0.0\n"
             "    for t in sorted(set(p), reverse=True):\n"
             "        tp = sum(1 for a, ya in zip(p, y) if a >= t and ya); fp = sum(1 for a, ya in zip(p, y) if a >= t and not ya)\n"
             "        ap += (tp / P - prev) * tp / (tp + fp); prev = tp / P\n"
             "    br = sum((a - b) ** 2 for a, b in zip(p, y)) / n; sk = 0\n"
             "bins = [[0, 0.0, 0.0] for _ in range(10)]\n"
             "for a, b in zip(p, y):\n"
             "    k = min(int(a * 10), 9)\n"
             "    bins[k][0] += 1; bins[k][1] += a; bins[k][2] += b\n"
             "ece = sum(c / n * abs(s / c - o / c) for c, s, o in bins if c)\n"
             "print('%%.12f %%.12f %%.12f %%.12f %%d' %% (auc, ap, br, ece, sk))\n"
             "PY",
             path);
    FILE *pp = popen(cmd, "r");
    if (!pp) return -1;
    int ok = fscanf(pp, "%lf %lf %lf %lf %d", &out[0], &out[1], &out[2], &out[3], used_sklearn) == 5;
    int st = pclose(pp);
    return ok && st == 0 ? 0 : -1;
}

static void test_against_reference(void) {
    if (access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "  (no /usr/bin/python3: reference comparison skipped; hand values still checked)\n");
        return;
    }
    for (int trial = 0; trial < 4; trial++) {
        size_t n = trial == 0 ? 25 : 300;
        float p[300];
        uint8_t y[300];
        for (size_t i = 0; i < n; i++) {
            /* two decimals: many ties; labels follow the scores loosely */
            double s = urand();
            p[i] = (float)(round(s * 100) / 100);
            y[i] = urand() < (trial == 3 ? 0.05 + 0.1 * s : 0.2 + 0.6 * s);
        }
        y[0] = 1, y[1] = 0;
        double ref[4];
        int sk = 0;
        REQUIRE(python_reference(p, y, n, ref, &sk) == 0);
        if (trial == 0) fprintf(stderr, "  reference: %s\n", sk ? "scikit-learn" : "plain Python definitions");
        CHECK_NEAR(eval_auroc(p, y, n), ref[0], 1e-9);
        CHECK_NEAR(eval_auprc(p, y, n), ref[1], 1e-9);
        CHECK_NEAR(eval_brier(p, y, n), ref[2], 1e-9);
        CHECK_NEAR(eval_ece(p, y, n, NULL), ref[3], 1e-9);
    }
}

static void test_bootstrap(void) {
    enum { N = 120 };
    float p[2 * N];
    uint8_t y[2 * N];
    int64_t cl[2 * N];
    for (int i = 0; i < N; i++) {
        double s = urand();
        p[i] = (float)s;
        y[i] = urand() < s;
        cl[i] = i;
    }
    eval_boot_options o = {.n_boot = 400, .seed = 42};
    eval_metrics a, b, c, d;
    cf_err err = {0};
    REQUIRE(eval_metrics_compute(p, y, cl, N, &o, &a, &err) == CF_OK);
    REQUIRE(eval_metrics_compute(p, y, cl, N, &o, &b, &err) == CF_OK);
    /* reproducible */
    CHECK(a.auroc.lo == b.auroc.lo && a.auroc.hi == b.auroc.hi && a.ece.hi == b.ece.hi);
    CHECK(a.auroc.lo <= a.auroc.value && a.auroc.value <= a.auroc.hi);
    CHECK(a.auprc.lo <= a.auprc.value && a.auprc.value <= a.auprc.hi);
    CHECK(a.brier.lo <= a.brier.value && a.brier.value <= a.brier.hi);
    CHECK(a.auroc.hi - a.auroc.lo > 0.02 && a.auroc.hi - a.auroc.lo < 0.5);
    CHECK_EQ_INT(a.clusters, N);
    CHECK_EQ_INT(a.pos + a.neg, N);
    CHECK_NEAR(a.auroc.value, eval_auroc(p, y, N), 0);
    /* another seed, other intervals */
    eval_boot_options o2 = {.n_boot = 400, .seed = 43};
    REQUIRE(eval_metrics_compute(p, y, cl, N, &o2, &c, &err) == CF_OK);
    CHECK(c.auroc.lo != a.auroc.lo || c.auroc.hi != a.auroc.hi);
    /* every patient twice (same cluster): resampling patients gives exactly the same intervals */
    for (int i = 0; i < N; i++) p[N + i] = p[i], y[N + i] = y[i], cl[N + i] = cl[i];
    REQUIRE(eval_metrics_compute(p, y, cl, 2 * N, &o, &d, &err) == CF_OK);
    CHECK_EQ_INT(d.clusters, N);
    CHECK_NEAR(d.auroc.value, a.auroc.value, 1e-12);
    CHECK_NEAR(d.auroc.lo, a.auroc.lo, 1e-12);
    CHECK_NEAR(d.auroc.hi, a.auroc.hi, 1e-12);
    CHECK_NEAR(d.brier.hi, a.brier.hi, 1e-12);
    CHECK_NEAR(d.ece.lo, a.ece.lo, 1e-12);
    /* ... whereas treating the copies as independent rows narrows them (wrongly) */
    eval_metrics e;
    REQUIRE(eval_metrics_compute(p, y, NULL, 2 * N, &o, &e, &err) == CF_OK);
    CHECK(e.auroc.hi - e.auroc.lo < d.auroc.hi - d.auroc.lo);
    /* a perfect ranking: every resample that has both classes is perfect */
    for (int i = 0; i < N; i++) y[i] = p[i] > 0.5f;
    REQUIRE(eval_metrics_compute(p, y, cl, N, &o, &a, &err) == CF_OK);
    CHECK_NEAR(a.auroc.value, 1, 0);
    CHECK_NEAR(a.auroc.lo, 1, 0);
    CHECK_NEAR(a.auroc.hi, 1, 0);
    CHECK_EQ_INT(a.boot_valid, 400);
    /* not probabilities */
    p[3] = 1.5f;
    CHECK_EQ_INT(eval_metrics_compute(p, y, cl, N, &o, &a, &err), CF_EINPUT);
    p[3] = NAN;
    CHECK_EQ_INT(eval_metrics_compute(p, y, cl, N, &o, &a, &err), CF_EINPUT);
    /* one positive among 40 patients: a resample holds it with probability 1 - (39/40)^40 = 0.64,
     * so about 254 of 400 replicates have an AUROC */
    for (int i = 0; i < 40; i++) p[i] = (float)i / 40, y[i] = i == 39, cl[i] = i;
    REQUIRE(eval_metrics_compute(p, y, cl, 40, &o, &a, &err) == CF_OK);
    CHECK_NEAR(a.auroc.value, 1, 0);
    CHECK(a.boot_valid > 220 && a.boot_valid < 290);
    CHECK(isnan(a.auroc.lo) && isnan(a.auprc.hi)); /* one positive: no interval */
    CHECK(!isnan(a.brier.lo));
    /* five positives: intervals again */
    for (int i = 0; i < 40; i++) y[i] = i >= 35;
    REQUIRE(eval_metrics_compute(p, y, cl, 40, &o, &a, &err) == CF_OK);
    CHECK(!isnan(a.auroc.lo) && !isnan(a.auprc.lo));
    /* no positive at all: no AUROC, no interval, but Brier still has one */
    for (int i = 0; i < 40; i++) y[i] = 0;
    REQUIRE(eval_metrics_compute(p, y, cl, 40, &o, &a, &err) == CF_OK);
    CHECK(isnan(a.auroc.value) && isnan(a.auroc.lo) && isnan(a.auprc.value));
    CHECK_EQ_INT(a.boot_valid, 0);
    CHECK(!isnan(a.brier.lo) && a.brier.lo <= a.brier.value);
}

static void test_curves(void) {
    float p[] = {0.1f, 0.4f, 0.35f, 0.8f};
    uint8_t y[] = {0, 0, 1, 1};
    eval_curve c;
    cf_err err = {0};
    REQUIRE(eval_roc_curve(p, y, 4, &c, &err) == CF_OK);
    REQUIRE(c.n == 5);
    CHECK_NEAR(c.x[0], 0, 0);
    CHECK_NEAR(c.y[0], 0, 0);
    CHECK_NEAR(c.x[1], 0, 0);
    CHECK_NEAR(c.y[1], 0.5, 0);
    CHECK_NEAR(c.x[2], 0.5, 0);
    CHECK_NEAR(c.y[2], 0.5, 0);
    CHECK_NEAR(c.x[4], 1, 0);
    CHECK_NEAR(c.y[4], 1, 0);
    /* trapezoid area of the ROC curve == AUROC */
    double area = 0;
    for (size_t i = 1; i < c.n; i++) area += (c.x[i] - c.x[i - 1]) * (c.y[i] + c.y[i - 1]) / 2;
    CHECK_NEAR(area, 0.75, 1e-12);
    eval_curve_free(&c);
    REQUIRE(eval_pr_curve(p, y, 4, &c, &err) == CF_OK);
    REQUIRE(c.n == 4);
    CHECK_NEAR(c.x[0], 0.5, 0);
    CHECK_NEAR(c.y[0], 1, 0);
    CHECK_NEAR(c.x[2], 1, 0);
    CHECK_NEAR(c.y[2], 2.0 / 3, 1e-12);
    eval_curve_free(&c);
    double v[] = {5, 1, 3, 2, 4};
    CHECK_NEAR(eval_quantile(v, 5, 0.5), 3, 0);
    CHECK_NEAR(eval_quantile(v, 5, 0.25), 2, 0);
    CHECK_NEAR(eval_quantile(v, 5, 0.1), 1.4, 1e-12);
}

/* L2 logistic regression == scikit-learn's on the same standardised columns:
 * mean log loss + lambda/2 |w|^2 is sklearn's C = 1 / (n lambda). */
static void test_logreg_vs_sklearn(void) {
    FILE *chk = popen("/usr/bin/python3 -c 'import sklearn' 2>/dev/null && echo yes", "r");
    char ans[8] = "";
    if (chk) {
        if (!fgets(ans, sizeof ans, chk)) ans[0] = 0;
        pclose(chk);
    }
    if (strncmp(ans, "yes", 3) != 0) {
        fprintf(stderr, "  (scikit-learn not installed: logistic regression comparison skipped)\n");
        return;
    }
    enum { N = 200, DIM = 4 };
    ml_csr X = {.n_rows = N, .n_cols = DIM, .nnz = N * DIM};
    X.indptr = malloc((N + 1) * sizeof *X.indptr);
    X.idx = malloc(N * DIM * sizeof *X.idx);
    X.val = malloc(N * DIM * sizeof *X.val);
    uint8_t y[N], kind[DIM];
    memset(kind, EVAL_COL_VALUE, sizeof kind);
    const double beta[DIM] = {1.5, -1.0, 0.5, 0.0};
    char path[512];
    snprintf(path, sizeof path, "%s/lr.csv", check_tmpdir());
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    for (int r = 0; r < N; r++) {
        X.indptr[r] = (size_t)r * DIM;
        double z = -0.3;
        for (int j = 0; j < DIM; j++) {
            float v = (float)(urand() * 4 + j);
            X.idx[r * DIM + j] = (uint32_t)j;
            X.val[r * DIM + j] = v;
            z += beta[j] * (v - (2 + j));
            fprintf(f, "%.9g,", (double)v);
        }
        y[r] = urand() < 1 / (1 + exp(-z));
        fprintf(f, "%d\n", y[r]);
    }
    X.indptr[N] = N * DIM;
    fclose(f);
    double lambda = 0.05;
    ml_logreg m;
    cf_err err = {0};
    REQUIRE(ml_logreg_fit(&m, &X, y, kind, lambda, &err) == CF_OK);
    float p[N];
    ml_logreg_predict(&m, &X, p);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"\n"
             "import numpy as np\n"
             "from sklearn.linear_model import LogisticRegression\n"
             "d = np.loadtxt('%s', delimiter=',')\n"
             "X = d[:, :-1]; y = d[:, -1]\n"
             "X = (X - X.mean(0)) / X.std(0)\n"
             "m = LogisticRegression(C=1 / (len(y) * %g), tol=1e-12, max_iter=100000).fit(X, y)\n"
             "print(' '.join('%%.9f' %% v for v in m.predict_proba(X)[:, 1]))\n\"",
             path, lambda);
    FILE *pp = popen(cmd, "r");
    REQUIRE(pp);
    double maxdiff = 0;
    int got = 0;
    for (int r = 0; r < N; r++) {
        double v;
        if (fscanf(pp, "%lf", &v) != 1) break;
        got++;
        if (fabs(v - p[r]) > maxdiff) maxdiff = fabs(v - p[r]);
    }
    pclose(pp);
    CHECK_EQ_INT(got, N);
    CHECK(maxdiff < 1e-4);
    if (maxdiff >= 1e-4) fprintf(stderr, "  max |p - p_sklearn| = %g\n", maxdiff);
    /* the log loss helper */
    CHECK_NEAR(ml_log_loss(p, y, N) > 0, 1, 0);
    ml_logreg_free(&m);
    ml_csr_free(&X);
}

/* Thresholds and Wilson intervals against hand counts and published values (Wilson 95% for 0/10:
 * 0 to 0.2775; for 5/10: 0.2366 to 0.7634; Brown, Cai and DasGupta 2001 / Newcombe 1998), and
 * deciles that keep ties together and cover every row. */
static void test_thresholds_and_deciles(void) {
    eval_ci w = eval_wilson(0, 10);
    CHECK_NEAR(w.value, 0, 0);
    CHECK_NEAR(w.lo, 0, 1e-12);
    CHECK_NEAR(w.hi, 0.2775, 5e-5);
    w = eval_wilson(5, 10);
    CHECK_NEAR(w.lo, 0.2366, 5e-5);
    CHECK_NEAR(w.hi, 0.7634, 5e-5);
    CHECK(isnan(eval_wilson(0, 0).value));
    const float p[] = {0.9f, 0.8f, 0.3f, 0.2f, 0.1f};
    const uint8_t y[] = {1, 0, 1, 0, 0};
    eval_threshold t;
    eval_threshold_metrics(p, y, 5, 0.5, &t);
    CHECK_EQ_INT(t.tp, 1);
    CHECK_EQ_INT(t.fp, 1);
    CHECK_EQ_INT(t.fn, 1);
    CHECK_EQ_INT(t.tn, 2);
    CHECK_NEAR(t.sensitivity.value, 0.5, 1e-12);
    CHECK_NEAR(t.specificity.value, 2.0 / 3, 1e-12);
    CHECK_NEAR(t.ppv.value, 0.5, 1e-12);
    CHECK_NEAR(t.nne.value, 2, 1e-12);
    CHECK_NEAR(t.nne.lo, 1 / t.ppv.hi, 1e-12);
    CHECK_NEAR(t.alerts_per_100.value, 40, 1e-9);
    eval_threshold_metrics(p, y, 5, 0.8, &t); /* "at least": 0.8 is flagged */
    CHECK_EQ_INT(t.tp + t.fp, 2);
    eval_threshold_metrics(p, y, 5, 0.95, &t); /* nothing flagged: PPV undefined */
    CHECK(isnan(t.ppv.value) && isnan(t.nne.value));
    /* 20 rows, risks 0.05 .. 1.0, every fourth with the outcome; three ties at 0.5 */
    float q[20];
    uint8_t z[20];
    for (int i = 0; i < 20; i++) q[i] = (float)(i + 1) / 20, z[i] = i % 4 == 3;
    q[8] = q[9] = q[10] = 0.5f;
    eval_bin b[10];
    size_t nb = eval_quantile_bins(q, z, 20, 10, b);
    double rows = 0, pos = 0;
    for (size_t k = 0; k < nb; k++) {
        rows += b[k].n;
        pos += b[k].frac_pos * b[k].n;
        if (k) CHECK(b[k].lo_edge > b[k - 1].hi_edge); /* ties never straddle two bins */
    }
    CHECK_NEAR(rows, 20, 0);
    CHECK_NEAR(pos, 5, 1e-9);
    CHECK(nb <= 10);
    int tie_bin = 0;
    for (size_t k = 0; k < nb; k++) tie_bin += b[k].lo_edge <= 0.5 && b[k].hi_edge >= 0.5 && b[k].n == 3;
    CHECK_EQ_INT(tie_bin, 1); /* rows 9-11 (risk 0.5) share one bin */
    CHECK_NEAR(b[0].mean_pred, 0.075, 1e-6); /* 0.05 and 0.10 */
}

/* ml/csr.h: a dense matrix stored whole, and two matrices side by side, read back entry by entry
 * against the dense matrices they came from. */
static void test_csr(void) {
    const float A[2 * 3] = {1, 0, 2, 0, 3, 0}, B[2 * 2] = {4, 5, 0, 6};
    ml_csr a, b, ab;
    cf_err err = {0};
    REQUIRE(ml_csr_from_dense(&a, A, 2, 3) == 0);
    REQUIRE(ml_csr_from_dense(&b, B, 2, 2) == 0);
    CHECK(a.nnz == 6 && a.indptr[2] == 6); /* zeros stored too */
    REQUIRE(ml_csr_hstack(&a, &b, &ab, &err) == CF_OK);
    CHECK(ab.n_rows == 2 && ab.n_cols == 5 && ab.nnz == 10);
    for (size_t r = 0; r < 2; r++) {
        float row[5] = {-1, -1, -1, -1, -1};
        for (size_t k = ab.indptr[r]; k < ab.indptr[r + 1]; k++) row[ab.idx[k]] = ab.val[k];
        for (size_t c = 0; c < 5; c++) CHECK(row[c] == (c < 3 ? A[r * 3 + c] : B[r * 2 + c - 3]));
    }
    ml_csr_free(&ab);
    ml_csr one_row;
    REQUIRE(ml_csr_from_dense(&one_row, A, 1, 3) == 0);
    CHECK(ml_csr_hstack(&a, &one_row, &ab, &err) == CF_EINTERNAL); /* rows differ */
    ml_csr_free(&one_row);
    ml_csr_free(&a);
    ml_csr_free(&b);
    ml_csr_free(&ab);
}

int main(void) {
    RUN(test_csr);
    RUN(test_hand_values);
    RUN(test_thresholds_and_deciles);
    RUN(test_against_reference);
    RUN(test_bootstrap);
    RUN(test_curves);
    RUN(test_logreg_vs_sklearn);
    return check_summary();
}
