/* The model-backed predictor: risks from the institution's foundation model (src/model/) for the
 * tasks the configuration names, behind the scoring interface of predictor.h. `clinfm serve
 * --model MODEL` uses it; without --model the service scores with the reference predictor of the
 * configuration (serve_ref.h). Attribution can reuse serve_occlusion() (one rescoring per distinct
 * code) or a cheaper exact method if the model offers one. */
#ifndef CLINFM_SERVE_SERVE_MODEL_H
#define CLINFM_SERVE_SERVE_MODEL_H

#include "serve/predictor.h"
#include "serve/serve_config.h"

/* Opens the model at model_path for the configured tasks; release with out->close(out->ctx). */
int serve_model_open(const char *model_path, const serve_config *c, serve_predictor *out,
                     cf_err *err);

#endif
