/* Binding point between the service and the foundation model; see serve_model.h.
 *
 * The model and task code (src/model/, src/tasks/) is being written alongside the service; until
 * it is wired here this build refuses --model with a clear message instead of guessing at a
 * checkpoint format. The service itself never depends on which predictor is behind it. */
#include "serve/serve_model.h"

int serve_model_open(const char *model_path, const serve_config *c, serve_predictor *out,
                     cf_err *err) {
    (void)c;
    (void)out;
    return cf_fail(err, CF_EINPUT,
                   "%s: this build cannot serve a foundation model yet; run without --model to "
                   "score with the configuration's reference_model",
                   model_path);
}
