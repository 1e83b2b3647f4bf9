/* The model-backed predictor: risks from the institution's foundation model (src/model/) for the
 * tasks the configuration names, behind the scoring interface of predictor.h. `clinfm serve
 * --model MODEL` uses it; without --model the service scores with the reference predictor of the
 * configuration (serve_ref.h). Attribution is serve_occlusion_batch(): one rescoring per distinct
 * code, occlusion_batch variants (configuration key, default 16) per batched forward pass. The
 * predictor's checksum covers the network's parameters and the task head files. */
#ifndef CLINFM_SERVE_SERVE_MODEL_H
#define CLINFM_SERVE_SERVE_MODEL_H

#include "serve/predictor.h"
#include "serve/serve_config.h"

/* Opens the model at model_path for the configured tasks; release with out->close(out->ctx). */
int serve_model_open(const char *model_path, const serve_config *c, serve_predictor *out,
                     cf_err *err);

#endif
