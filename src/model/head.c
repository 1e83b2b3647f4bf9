/* Logistic heads on frozen patient embeddings and task head files; see head.h. */
#include "model/head.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "ml/logreg.h"
#include "util/json.h"

#define HEAD_FORMAT "clinfm-task-head"
#define HEAD_VERSION 1

static const double lambdas[] = {1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100};
#define N_LAMBDAS (sizeof lambdas / sizeof lambdas[0])

double rt_sigmoid(double z) { return ml_sigmoid(z); }

void rt_head_free(rt_head *h) {
    CF_FREE_ALL(h->w, h->shift, h->scale, h->cov);
    memset(h, 0, sizeof *h);
}

/* In-place Cholesky of the (D, D) symmetric positive definite a (lower triangle used): 0, or -1
 * when a is not positive definite. */
static int cholesky(double *a, int D) {
    for (int j = 0; j < D; j++) {
        double s = a[(size_t)j * D + j];
        for (int k = 0; k < j; k++) s -= a[(size_t)j * D + k] * a[(size_t)j * D + k];
        if (!(s > 1e-300)) return -1;
        double l = sqrt(s);
        a[(size_t)j * D + j] = l;
        for (int i = j + 1; i < D; i++) {
            double t = a[(size_t)i * D + j];
            for (int k = 0; k < j; k++) t -= a[(size_t)i * D + k] * a[(size_t)j * D + k];
            a[(size_t)i * D + j] = t / l;
        }
    }
    return 0;
}

/* Sandwich covariance of the penalised estimate: with J = mean of p(1-p) x x^T over train rows
 * (x standardised, with the intercept's 1) and H = J + lambda (intercept unpenalised),
 * Cov = H^-1 J H^-1 / n. */
static void fit_covariance(rt_head *h, const float *X, size_t n) {
    int d = h->d, D = d + 1;
    double *A = malloc(n * (size_t)D * sizeof *A), *J = calloc((size_t)D * D, sizeof *J),
           *L = malloc((size_t)D * D * sizeof *L), *Hi = calloc((size_t)D * D, sizeof *Hi),
           *T = malloc((size_t)D * D * sizeof *T);
    h->cov = malloc((size_t)D * D * sizeof *h->cov);
    if (!A || !J || !L || !Hi || !T || !h->cov || !n) goto fail;
    for (size_t r = 0; r < n; r++) {
        double *a = A + r * (size_t)D, z = h->b;
        for (int j = 0; j < d; j++) {
            a[j] = ((double)X[r * (size_t)d + j] - h->shift[j]) * h->scale[j];
            z += h->w[j] * a[j];
        }
        a[d] = 1;
        double p = rt_sigmoid(z), sw = sqrt(p * (1 - p));
        for (int j = 0; j < D; j++) a[j] *= sw;
    }
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, D, (int)n, 1.0 / (double)n, A, D, 0.0, J, D);
    for (int i = 0; i < D; i++)
        for (int j = i + 1; j < D; j++) J[(size_t)i * D + j] = J[(size_t)j * D + i];
    memcpy(L, J, (size_t)D * D * sizeof *L);
    for (int j = 0; j < d; j++) L[(size_t)j * D + j] += h->lambda;
    if (cholesky(L, D)) goto fail;
    /* H^-1 column by column: solve L L^T x = e_c */
    for (int c = 0; c < D; c++) {
        double *x = T; /* scratch column */
        for (int i = 0; i < D; i++) {
            double s = i == c ? 1 : 0;
            for (int k = 0; k < i; k++) s -= L[(size_t)i * D + k] * x[k];
            x[i] = s / L[(size_t)i * D + i];
        }
        for (int i = D - 1; i >= 0; i--) {
            double s = x[i];
            for (int k = i + 1; k < D; k++) s -= L[(size_t)k * D + i] * x[k];
            x[i] = s / L[(size_t)i * D + i];
        }
        for (int i = 0; i < D; i++) Hi[(size_t)i * D + c] = x[i];
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, D, D, D, 1.0, Hi, D, J, D, 0.0, T, D);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, D, D, D, 1.0 / (double)n, T, D, Hi, D, 0.0, h->cov, D);
    goto done;
fail:
    free(h->cov);
    h->cov = NULL;
done:
    CF_FREE_ALL(A, J, L, Hi, T);
}

/* Fits one logistic regression per lambda of grid on the train rows and keeps the one of least
 * tuning log loss (the first of a tie; without tuning rows, grid's first). */
static int head_fit(rt_head *h, int d, const float *Xtr, const uint8_t *ytr, size_t ntr, const float *Xtu,
                    const uint8_t *ytu, size_t ntu, const double *grid, size_t ngrid, cf_err *err) {
    memset(h, 0, sizeof *h);
    if (d < 1) return cf_fail(err, CF_EINTERNAL, "head of width %d", d);
    if (!ntr) return cf_fail(err, CF_EINPUT, "no train rows to fit the fine-tuned head on");
    ml_csr tr = {0}, tu = {0};
    uint8_t *kind = malloc((size_t)d);
    float *p = malloc((ntu ? ntu : 1) * sizeof *p);
    int rc = CF_OK, have = 0;
    ml_logreg best;
    memset(&best, 0, sizeof best);
    int okm = ml_csr_from_dense(&tr, Xtr, ntr, (size_t)d) == 0 && ml_csr_from_dense(&tu, Xtu, ntu, (size_t)d) == 0;
    if (!kind || !p || !okm) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    memset(kind, ML_COL_VALUE, (size_t)d);
    h->tune_loss = NAN;
    for (size_t k = 0; k < (ntu ? ngrid : 1); k++) {
        double lam = grid[k];
        ml_logreg m;
        if ((rc = ml_logreg_fit(&m, &tr, ytr, kind, lam, err))) goto done;
        double loss = NAN;
        if (ntu) {
            ml_logreg_predict(&m, &tu, p);
            loss = ml_log_loss(p, ytu, ntu);
        }
        if (!have || loss < h->tune_loss) {
            if (have) ml_logreg_free(&best);
            best = m;
            have = 1;
            h->tune_loss = loss;
        } else {
            ml_logreg_free(&m);
        }
    }
    h->d = d;
    h->w = malloc((size_t)d * sizeof *h->w);
    h->shift = malloc((size_t)d * sizeof *h->shift);
    h->scale = malloc((size_t)d * sizeof *h->scale);
    if (!h->w || !h->shift || !h->scale) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    memcpy(h->w, best.w, (size_t)d * sizeof *h->w);
    memcpy(h->shift, best.shift, (size_t)d * sizeof *h->shift);
    memcpy(h->scale, best.scale, (size_t)d * sizeof *h->scale);
    h->b = best.b;
    h->lambda = best.lambda;
    h->tuned = ntu > 0;
    h->n_train = ntr;
    h->n_tuning = ntu;
    fit_covariance(h, Xtr, ntr);
done:
    if (have) ml_logreg_free(&best);
    ml_csr_free(&tr);
    ml_csr_free(&tu);
    free(kind);
    free(p);
    if (rc) rt_head_free(h);
    return rc;
}

int rt_head_fit(rt_head *h, int d, const float *Xtr, const uint8_t *ytr, size_t ntr, const float *Xtu,
                const uint8_t *ytu, size_t ntu, cf_err *err) {
    static const double untuned[] = {1e-2};
    return head_fit(h, d, Xtr, ytr, ntr, Xtu, ytu, ntu, ntu ? lambdas : untuned, ntu ? N_LAMBDAS : 1, err);
}

int rt_head_fit_cv(rt_head *h, int d, const float *Xtr, const uint8_t *ytr, size_t ntr, int folds, const float *Xtu,
                   const uint8_t *ytu, size_t ntu, double *cv_loss, cf_err *err) {
    memset(h, 0, sizeof *h);
    if (d < 1) return cf_fail(err, CF_EINTERNAL, "head of width %d", d);
    if (folds < 2 || folds > 64 || (size_t)folds > ntr)
        return cf_fail(err, CF_EINPUT, "choosing the head's penalty by %d-fold cross-validation needs 2 .. 64 folds, "
                       "at most one a train row (%zu)", folds, ntr);
    uint8_t *fold = malloc(ntr), *kind = malloc((size_t)d), *yf = malloc(ntr), *yv = malloc(ntr);
    float *Xf = malloc(ntr * (size_t)d * sizeof *Xf), *Xv = malloc(ntr * (size_t)d * sizeof *Xv);
    float *p = malloc(ntr * sizeof *p);
    double *sum = calloc(N_LAMBDAS, sizeof *sum);
    int rc = CF_OK;
    if (!fold || !kind || !yf || !yv || !Xf || !Xv || !p || !sum) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    memset(kind, ML_COL_VALUE, (size_t)d);
    /* Row i's fold: its rank within its class modulo folds, so every fold holds its share of the
     * rare class (a few hundred deaths among PhysioNet 2012's train stays) whatever the row order. */
    size_t rank[2] = {0, 0};
    for (size_t i = 0; i < ntr; i++) fold[i] = (uint8_t)(rank[ytr[i] ? 1 : 0]++ % (size_t)folds);
    /* The pooled out-of-fold log loss per lambda: each row judged once, by a fit that never saw it
     * (the standardisation too is refitted on each fold's train part). */
    for (int f = 0; f < folds && !rc; f++) {
        size_t nf = 0, nv = 0;
        for (size_t i = 0; i < ntr; i++) {
            if (fold[i] == f) {
                memcpy(Xv + nv * (size_t)d, Xtr + i * (size_t)d, (size_t)d * sizeof *Xv);
                yv[nv++] = ytr[i];
            } else {
                memcpy(Xf + nf * (size_t)d, Xtr + i * (size_t)d, (size_t)d * sizeof *Xf);
                yf[nf++] = ytr[i];
            }
        }
        if (!nv || !nf) continue;
        ml_csr tf = {0}, tv = {0};
        if (ml_csr_from_dense(&tf, Xf, nf, (size_t)d) || ml_csr_from_dense(&tv, Xv, nv, (size_t)d)) {
            ml_csr_free(&tf);
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        for (size_t k = 0; k < N_LAMBDAS && !rc; k++) {
            ml_logreg m;
            if ((rc = ml_logreg_fit(&m, &tf, yf, kind, lambdas[k], err))) break;
            ml_logreg_predict(&m, &tv, p);
            sum[k] += ml_log_loss(p, yv, nv) * (double)nv;
            ml_logreg_free(&m);
        }
        ml_csr_free(&tf);
        ml_csr_free(&tv);
    }
    if (rc) goto done;
    size_t best = 0;
    for (size_t k = 1; k < N_LAMBDAS; k++)
        if (sum[k] < sum[best]) best = k;
    if (cv_loss) *cv_loss = sum[best] / (double)ntr;
    /* the chosen penalty refitted on every train row; the tuning rows only measure it */
    if ((rc = head_fit(h, d, Xtr, ytr, ntr, Xtu, ytu, ntu, &lambdas[best], 1, err))) goto done;
    h->tuned = 0;
done:
    CF_FREE_ALL(fold, kind, yf, yv, Xf, Xv, p, sum);
    return rc;
}

double rt_head_logit(const rt_head *h, const float *x, double *se) {
    int d = h->d, D = d + 1;
    double z = h->b;
    for (int j = 0; j < d; j++) z += h->w[j] * ((double)x[j] - h->shift[j]) * h->scale[j];
    if (!se) return z;
    /* se^2 = x~^T Cov x~ with x~ the standardised input and the intercept's 1 */
    double q = 0;
    if (h->cov)
        for (int i = 0; i < D; i++) {
            double xi = i < d ? ((double)x[i] - h->shift[i]) * h->scale[i] : 1, s = 0;
            const double *row = h->cov + (size_t)i * D;
            for (int j = 0; j < d; j++) s += row[j] * ((double)x[j] - h->shift[j]) * h->scale[j];
            s += row[d];
            q += xi * s;
        }
    *se = q > 0 ? sqrt(q) : 0;
    return z;
}

/* ------------------------------------------------------------------ task head files */

const char *rt_method_name(int method) {
    return method == RT_METHOD_READOUT ? "readout" : method == RT_METHOD_ZERO_SHOT ? "zero_shot" : "finetuned";
}

int rt_task_head_never(const rt_task_head *th, const char *code) {
    for (size_t i = 0; i < th->n_never_codes; i++)
        if (!strcmp(code, th->never_codes[i])) return 1;
    for (size_t i = 0; i < th->n_never_prefixes; i++)
        if (!strncmp(code, th->never_prefixes[i], strlen(th->never_prefixes[i]))) return 1;
    return 0;
}

static void free_strs(char **a, size_t n) {
    for (size_t i = 0; i < n; i++) free(a[i]);
    free(a);
}

void rt_task_head_free(rt_task_head *th) {
    free(th->task_name);
    free(th->task_title);
    rt_head_free(&th->head);
    rt_outcome_free(&th->outcome);
    free_strs(th->never_codes, th->n_never_codes);
    free_strs(th->never_prefixes, th->n_never_prefixes);
    memset(th, 0, sizeof *th);
}

static cJSON *num_array(const double *x, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i]));
    return a;
}

static cJSON *str_array(char *const *x, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(x[i]));
    return a;
}

int rt_task_head_save(const char *path, const rt_task_head *th, const rt_model *rm, cf_err *err) {
    cJSON *r = cJSON_CreateObject();
    char hex[2 * VOCAB_HASH_BYTES + 1];
    if (!r) return cf_fail(err, CF_EINTERNAL, "out of memory");
    cJSON_AddStringToObject(r, "format", HEAD_FORMAT);
    cJSON_AddNumberToObject(r, "version", HEAD_VERSION);
    cJSON_AddStringToObject(r, "task", th->task_name ? th->task_name : "");
    cJSON_AddStringToObject(r, "title", th->task_title ? th->task_title : "");
    cJSON *mo = cJSON_AddObjectToObject(r, "model");
    cJSON_AddStringToObject(mo, "vocab_hash", vocab_hash_hex(&rm->v, hex));
    cJSON_AddNumberToObject(mo, "step", (double)gpt_params_step(&rm->m));
    cJSON_AddNumberToObject(mo, "d_model", rm->m.config.channels);
    cJSON_AddStringToObject(r, "method", rt_method_name(th->method));
    cJSON_AddNumberToObject(r, "rollouts", th->rollouts);
    cJSON_AddNumberToObject(r, "max_new_tokens", th->max_new);
    cJSON *nv = cJSON_AddObjectToObject(r, "never_input");
    cJSON_AddItemToObject(nv, "codes", str_array(th->never_codes, th->n_never_codes));
    cJSON_AddItemToObject(nv, "prefixes", str_array(th->never_prefixes, th->n_never_prefixes));
    if (th->have_head) {
        const rt_head *h = &th->head;
        cJSON *hj = cJSON_AddObjectToObject(r, "finetuned");
        cJSON_AddNumberToObject(hj, "dim", h->d);
        cJSON_AddNumberToObject(hj, "lambda", h->lambda);
        cJSON_AddBoolToObject(hj, "tuned", h->tuned);
        cJSON_AddNumberToObject(hj, "train_rows", (double)h->n_train);
        cJSON_AddNumberToObject(hj, "tuning_rows", (double)h->n_tuning);
        cJSON_AddNumberToObject(hj, "b", h->b);
        cJSON_AddItemToObject(hj, "w", num_array(h->w, (size_t)h->d));
        cJSON_AddItemToObject(hj, "shift", num_array(h->shift, (size_t)h->d));
        cJSON_AddItemToObject(hj, "scale", num_array(h->scale, (size_t)h->d));
        if (h->cov) cJSON_AddItemToObject(hj, "cov", num_array(h->cov, (size_t)(h->d + 1) * (h->d + 1)));
    }
    cJSON_AddItemToObject(r, "zero_shot", rt_outcome_to_json(&th->outcome, &rm->v));
    return json_write_file(path, r, 0, err);
}

static int read_doubles(const cJSON *a, double **out, size_t n, const char *where, const char *key, cf_err *err) {
    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != n)
        return cf_fail(err, CF_EINPUT, "%s: finetuned.%s must be an array of %zu numbers", where, key, n);
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out) return cf_fail(err, CF_EINTERNAL, "out of memory");
    size_t i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
            return cf_fail(err, CF_EINPUT, "%s: finetuned.%s[%zu] is not a finite number", where, key, i);
        (*out)[i] = x->valuedouble;
    }
    return CF_OK;
}

static int read_strs(const cJSON *a, char ***out, size_t *n, const char *where, const char *key, cf_err *err) {
    *out = NULL;
    *n = 0;
    if (!a) return CF_OK;
    if (!cJSON_IsArray(a)) return cf_fail(err, CF_EINPUT, "%s: never_input.%s must be an array of strings", where, key);
    size_t cnt = (size_t)cJSON_GetArraySize(a);
    *out = calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out) return cf_fail(err, CF_EINTERNAL, "out of memory");
    for (const cJSON *x = a->child; x; x = x->next) {
        if (!cJSON_IsString(x) || !x->valuestring[0])
            return cf_fail(err, CF_EINPUT, "%s: never_input.%s[%zu] must be a non-empty string", where, key, *n);
        if (!((*out)[*n] = strdup(x->valuestring))) return cf_fail(err, CF_EINTERNAL, "out of memory");
        (*n)++;
    }
    return CF_OK;
}

int rt_task_head_load(const char *path, const rt_model *rm, rt_task_head *th, cf_err *err) {
    memset(th, 0, sizeof *th);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cf_fail_errno(err, CF_EINPUT, "%s: cannot read the task head (write one with clinfm eval --model and "
                             "copy DIR/model_head.json there)", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = CF_OK;
    for (;;) {
        if (len + 65536 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            if (cap > (size_t)256 << 20) {
                fclose(f);
                free(buf);
                return cf_fail(err, CF_EINPUT, "%s: a task head over 256 MiB is not one clinfm wrote", path);
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                fclose(f);
                free(buf);
                return cf_fail(err, CF_EINTERNAL, "out of memory");
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (!got) break;
    }
    fclose(f);
    buf[len] = '\0';
    cJSON *r = cJSON_ParseWithLength(buf, len);
    free(buf);
    char hex[2 * VOCAB_HASH_BYTES + 1];
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(r, "format"), *ver = cJSON_GetObjectItemCaseSensitive(r, "version"),
                *mo = cJSON_GetObjectItemCaseSensitive(r, "model");
    const cJSON *vh = cJSON_GetObjectItemCaseSensitive(mo, "vocab_hash");
    if (!r || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, HEAD_FORMAT)) {
        rc = cf_fail(err, CF_EINPUT, "%s: not a clinfm task head (expected JSON with format \"%s\")", path, HEAD_FORMAT);
        goto done;
    }
    if (!cJSON_IsNumber(ver) || ver->valueint != HEAD_VERSION) {
        rc = cf_fail(err, CF_EINPUT, "%s: task head version is not %d; re-run clinfm eval with this build", path,
                     HEAD_VERSION);
        goto done;
    }
    if (!cJSON_IsString(vh) || strcmp(vh->valuestring, vocab_hash_hex(&rm->v, hex))) {
        rc = cf_fail(err, CF_EINPUT, "%s: the head was fitted on a model with another vocabulary; fit it again with "
                     "clinfm eval --model %s", path, rm->path ? rm->path : "MODEL");
        goto done;
    }
    const cJSON *tn = cJSON_GetObjectItemCaseSensitive(r, "task"), *tt = cJSON_GetObjectItemCaseSensitive(r, "title"),
                *me = cJSON_GetObjectItemCaseSensitive(r, "method"), *ro = cJSON_GetObjectItemCaseSensitive(r, "rollouts"),
                *mn = cJSON_GetObjectItemCaseSensitive(r, "max_new_tokens");
    if (!cJSON_IsString(tn) || !cJSON_IsString(tt) || !cJSON_IsString(me) || !cJSON_IsNumber(ro) || !cJSON_IsNumber(mn)) {
        rc = cf_fail(err, CF_EINPUT, "%s: expected task, title, method, rollouts and max_new_tokens", path);
        goto done;
    }
    th->task_name = strdup(tn->valuestring);
    th->task_title = strdup(tt->valuestring);
    if (!th->task_name || !th->task_title) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    if (!strcmp(me->valuestring, "finetuned")) th->method = RT_METHOD_FINETUNED;
    else if (!strcmp(me->valuestring, "readout")) th->method = RT_METHOD_READOUT;
    else if (!strcmp(me->valuestring, "zero_shot")) th->method = RT_METHOD_ZERO_SHOT;
    else {
        rc = cf_fail(err, CF_EINPUT, "%s: method must be finetuned, readout or zero_shot", path);
        goto done;
    }
    th->rollouts = ro->valueint;
    th->max_new = mn->valueint;
    if (th->rollouts < 1 || th->rollouts > 1024 || th->max_new < 1 || th->max_new > 1000000) {
        rc = cf_fail(err, CF_EINPUT, "%s: rollouts must be 1 to 1024 and max_new_tokens 1 to 1000000", path);
        goto done;
    }
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive(r, "never_input");
    if ((rc = read_strs(cJSON_GetObjectItemCaseSensitive(nv, "codes"), &th->never_codes, &th->n_never_codes, path,
                        "codes", err)) ||
        (rc = read_strs(cJSON_GetObjectItemCaseSensitive(nv, "prefixes"), &th->never_prefixes, &th->n_never_prefixes,
                        path, "prefixes", err)))
        goto done;
    const cJSON *hj = cJSON_GetObjectItemCaseSensitive(r, "finetuned");
    if (hj) {
        rt_head *h = &th->head;
        const cJSON *dim = cJSON_GetObjectItemCaseSensitive(hj, "dim"), *lam = cJSON_GetObjectItemCaseSensitive(hj, "lambda"),
                    *b = cJSON_GetObjectItemCaseSensitive(hj, "b");
        if (!cJSON_IsNumber(dim) || dim->valueint != rm->m.config.channels || !cJSON_IsNumber(lam) || !cJSON_IsNumber(b)) {
            rc = cf_fail(err, CF_EINPUT, "%s: finetuned needs dim (= the model's d_model, %d), lambda and b", path,
                         rm->m.config.channels);
            goto done;
        }
        h->d = dim->valueint;
        h->lambda = lam->valuedouble;
        h->b = b->valuedouble;
        size_t d = (size_t)h->d;
        if ((rc = read_doubles(cJSON_GetObjectItemCaseSensitive(hj, "w"), &h->w, d, path, "w", err)) ||
            (rc = read_doubles(cJSON_GetObjectItemCaseSensitive(hj, "shift"), &h->shift, d, path, "shift", err)) ||
            (rc = read_doubles(cJSON_GetObjectItemCaseSensitive(hj, "scale"), &h->scale, d, path, "scale", err)))
            goto done;
        const cJSON *cv = cJSON_GetObjectItemCaseSensitive(hj, "cov");
        if (cv && (rc = read_doubles(cv, &h->cov, (d + 1) * (d + 1), path, "cov", err))) goto done;
        th->have_head = 1;
    }
    char where[4300];
    snprintf(where, sizeof where, "%s: zero_shot", path);
    const cJSON *zs = cJSON_GetObjectItemCaseSensitive(r, "zero_shot");
    if (!zs) {
        rc = cf_fail(err, CF_EINPUT, "%s: zero_shot is missing", path);
        goto done;
    }
    if ((rc = rt_outcome_from_json(&th->outcome, rm, zs, where, err))) goto done;
    if (th->method == RT_METHOD_FINETUNED && !th->have_head) {
        rc = cf_fail(err, CF_EINPUT, "%s: method finetuned but no finetuned head in the file", path);
        goto done;
    }
    if (th->method != RT_METHOD_FINETUNED && !th->outcome.expressible) {
        rc = cf_fail(err, CF_EINPUT, "%s: method %s but the task is not expressible zero-shot", path,
                     rt_method_name(th->method));
        goto done;
    }
done:
    cJSON_Delete(r);
    if (rc) rt_task_head_free(th);
    return rc;
}
