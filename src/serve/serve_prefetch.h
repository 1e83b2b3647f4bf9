/* CDS Hooks prefetch templates, and whether a prefetched (or fetched) value satisfies one.
 *
 * A service's prefetch is a set of keys, each a relative FHIR read ("Patient/{{context.patientId}}")
 * or search ("Condition?patient={{context.patientId}}") with tokens the hook context fills. CDS
 * Hooks 2.0.1 ("Providing FHIR Resources to a CDS Service") makes the service responsible for
 * checking what it received against its templates: a key the client left out was not satisfied
 * (it chose not to, or it failed); null means the client had no data for it; an OperationOutcome
 * in place of the data is an error report, not data; and a prefetched Bundle has no next page.
 * The service then fetches what is missing from fhirServer, or answers 412.
 *
 * serve_prefetch_state sorts one value into those cases. A read template answered with null is
 * "missing" rather than "empty", because a read that found nothing (no such Patient, no such
 * Encounter) leaves nothing to score: the caller looks elsewhere. A Bundle with a next link is
 * "missing" unless the template itself limited the page with _count (then the first page is what
 * was asked for: the 500 most recent observations, say). */
#ifndef CLINFM_SERVE_SERVE_PREFETCH_H
#define CLINFM_SERVE_SERVE_PREFETCH_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* NULL when tpl is a template the service can expand for hook: relative (no scheme, no leading
 * '/', no '#'), tokens only among {{context.patientId}}, {{context.userId}},
 * {{context.encounterId}}, {{userPractitionerId}}, {{userPractitionerRoleId}}, {{userPatientId}}
 * and {{userRelatedPersonId}}; otherwise a static reason. */
const char *serve_prefetch_check(const char *tpl, const char *hook);

/* The values tokens take: patient and encounter ids (encounter may be NULL), and userId as
 * "<ResourceType>/<id>" (may be NULL). Callers have checked every value is a FHIR id (letters,
 * digits, '-', '.'), so expansion never needs escaping. */
typedef struct {
    const char *patient_id, *encounter_id, *user_id;
} serve_prefetch_ctx;

/* Expands tpl into out. 0 on success; -1 when a token has no value in this context (the key
 * cannot be asked for) or out is too small. */
int serve_prefetch_expand(const char *tpl, const serve_prefetch_ctx *ctx, char *out, size_t cap);

/* 1 when tpl is a read of one resource (no '?'), 0 for a search. */
int serve_prefetch_is_read(const char *tpl);
/* 1 when the template limits its result with _count. */
int serve_prefetch_has_count(const char *tpl);

enum {
    SERVE_PF_MISSING = 0, /* absent, an error, not found, or incomplete: look elsewhere */
    SERVE_PF_EMPTY,       /* null for a search: the patient has no such data */
    SERVE_PF_OK,          /* a resource, or a Bundle holding everything asked for */
};

/* The state of value v (NULL when the key is absent) for template tpl; *why (may be NULL)
 * receives a static reason for SERVE_PF_MISSING. */
int serve_prefetch_state(const cJSON *v, const char *tpl, const char **why);

#endif
