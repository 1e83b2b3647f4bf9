/* Where the foundation model's predictors plug into `clinfm eval --model MODEL`.
 *
 * The zero-shot predictor (sample futures from the prediction time, count those that reach the
 * outcome in the window) and the fine-tuned one (a logistic head on the frozen patient
 * embedding) belong to the model stage; this file is the one place that turns a model path into
 * eval_predictor values for them. Until the model stage provides them, asking for a model is a
 * usage error, and the baselines are still evaluated without --model. */
#include "eval/eval.h"

int eval_model_predictors(const char *model_path, const task_def *t, const task_labels *l, eval_predictor *out,
                          size_t cap, size_t *n_out, cf_err *err) {
    (void)t;
    (void)l;
    (void)out;
    (void)cap;
    *n_out = 0;
    return cf_fail(err, CF_EINPUT, "%s: model predictors are not available in this build yet; run without --model "
                                   "to evaluate the baselines", model_path);
}

void eval_model_predictors_free(eval_predictor *p, size_t n) {
    (void)p;
    (void)n;
}
