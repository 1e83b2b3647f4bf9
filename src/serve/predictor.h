/* The scoring interface between the in-clinic service and whatever produces risks.
 *
 * The service (CDS Hooks, REST) never knows how a risk is computed: it hands a predictor one
 * patient's events and one task and gets back a risk in [0,1], a 95% interval, and the events that
 * most raised the risk, so that a card can say why in terms of the patient's own record. Two
 * predictors exist: the transparent reference predictor (serve_ref.h: a logistic score over code
 * counts and values, with exact occlusion attribution) and the model-backed one (serve_model.h).
 *
 * Events arrive as parallel arrays sorted by time (static facts, TIME_NULL, first). Strings are
 * borrowed from the caller for the duration of the call. score() is called concurrently from
 * several server threads and must be thread-safe; it must not log event contents (PHI).
 *
 * Attribution contract: reason[k].contribution is risk(all events) - risk(without the events of
 * reason[k]'s group), where a group is every event carrying the same code up to the prediction
 * time ("occlusion" of that code); reason[k].event is the most recent event of the group and
 * n_events its size. Only groups that raised the risk (contribution > 0) are listed, largest
 * first. serve_occlusion() computes exactly this for any predictor by rescoring, so a predictor
 * can use it as is or supply a faster exact method. */
#ifndef CLINFM_SERVE_PREDICTOR_H
#define CLINFM_SERVE_PREDICTOR_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/timeutil.h"

typedef struct {
    const char *task_id, *title;
    double threshold_warning, threshold_critical; /* risk at or above: warning / critical card */
} serve_task;

/* One patient's events (from the event store or from FHIR prefetch). */
typedef struct {
    size_t n;
    const int64_t *time;          /* µs since 1970 UTC, TIME_NULL for static facts */
    const char *const *code;      /* MEDS code strings, e.g. "LOINC//2160-0//mg/dL" */
    const float *value;           /* numeric value, NaN when none */
    const char *const *text;      /* text value, NULL when none */
    const char *const *desc;      /* description of the code from the record, "" when none */
    const char *const *source;    /* provenance: FHIR resource type or source table */
    const uint64_t *row;          /* provenance row (1-based), 0 when unknown */
    int64_t prediction_time;      /* events after it are not used; TIME_NULL: use all */
} serve_patient;

#define SERVE_MAX_REASONS 8

typedef struct {
    size_t event;        /* index into the patient's arrays: the group's most recent event */
    size_t n_events;     /* events in the group (same code) */
    double contribution; /* risk minus the risk without the group; > 0 */
} serve_reason;

typedef struct {
    double risk, lo, hi; /* risk and its 95% interval, all in [0,1], lo <= risk <= hi */
    size_t n_events_used;/* events at or before the prediction time */
    size_t n_reasons;
    serve_reason reason[SERVE_MAX_REASONS];
} serve_score;

typedef struct {
    /* Scores p for task t. CF_OK, or CF_EINPUT (unknown task, unusable patient) / CF_EINTERNAL
     * with err set (no event contents in the message). */
    int (*score)(void *ctx, const serve_patient *p, const serve_task *t, serve_score *out,
                 cf_err *err);
    /* 1 when the predictor can score task_id (checked for every configured task at start). */
    int (*supports)(void *ctx, const char *task_id);
    void (*close)(void *ctx);
    void *ctx;
    const char *model_name, *model_version;
    /* What the risks depend on besides the patient (parameters, head files, reference
     * weights), hashed to 64 bits; part of the card cache's key (serve_cache.h). */
    uint64_t checksum;
} serve_predictor;

/* A risk-only scoring function, for serve_occlusion: fills *risk. */
typedef int (*serve_risk_fn)(void *ctx, const serve_patient *p, const serve_task *t, double *risk,
                             cf_err *err);

/* Generic occlusion attribution: for every code group among the events up to the prediction
 * time, rescores the patient without that group and fills out->reason (largest rises first) and
 * out->n_events_used; base is the risk with every event. Costs one rescoring per distinct code. */
int serve_occlusion(serve_risk_fn fn, void *ctx, const serve_patient *p, const serve_task *t,
                    double base, serve_score *out, cf_err *err);

/* The rescoring of serve_occlusion split in two, so a predictor can score several variants in
 * one call: queue() receives each variant in group order (its arrays are reused once queue
 * returns, so it keeps what it needs, e.g. the encoded prompt), and flush() fills risk[j] for
 * the j-th variant queued since the previous flush. flush runs after `batch` variants and
 * after the last one. The result is exactly serve_occlusion's for the same risks. */
typedef struct {
    int (*queue)(void *ctx, const serve_patient *q, const serve_task *t, cf_err *err);
    int (*flush)(void *ctx, const serve_task *t, double *risk, cf_err *err);
    int batch;
} serve_risk_batch;

int serve_occlusion_batch(const serve_risk_batch *b, void *ctx, const serve_patient *p,
                          const serve_task *t, double base, serve_score *out, cf_err *err);

/* Number of events of p at or before its prediction time (events are time-sorted). */
size_t serve_patient_used(const serve_patient *p);

#endif
