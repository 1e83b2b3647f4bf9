/* CDS Hooks: the hook call (patient data from prefetch, the EHR's FHIR server or the store, then
 * cards) and feedback. See serve.h and docs/SERVE.md.
 *
 * Where a hook's data comes from (CDS Hooks 2.0.1, "Providing FHIR Resources to a CDS Service"):
 * every prefetch template of the service is checked against what the request carries
 * (serve_prefetch.h): present and whole, null for a search (no such data), or missing (left out,
 * an OperationOutcome, a read that found nothing, a Bundle with more pages). Missing keys are read
 * from fhirServer with the fhirAuthorization token when the configuration lets the service talk
 * to that server (serve_fetch.h). When every key is then satisfied, the record is built from
 * exactly those values; otherwise the patient comes from the store as a whole (never a mix of
 * a partial prefetch and the store, which could count events twice); and a patient found
 * nowhere is 412 Precondition Failed, as the specification requires -- never an empty answer,
 * which an EHR shows as "no risk". Keys the service did not ask for are not read: a CDS client
 * sends only what the templates name. A record holding nothing but a birth is never scored.
 *
 * encounter-discharge scores at the discharge of context.encounterId: the Encounter resource
 * (from prefetch, the FHIR server, or an encounters search) must belong to the patient, and its
 * period.end is the prediction time (the request time while the encounter has no end yet). */
#include "serve/serve_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "serve/serve_fetch.h"
#include "serve/serve_prefetch.h"
#include "serve/serve_summary.h"
#include "util/progress.h"
#include "util/json.h"
#include "util/sbuf.h"

#define MAX_KEYS 64

/* ------------------------------------------------------------------ markdown */


static int alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Text from the record into card markdown. Markdown syntax is escaped (descriptions can hold
 * *, _, [ ...), line breaks become spaces, and what GitHub Flavored Markdown would turn into a
 * link by itself -- "scheme://...", "www.", "name@host" -- is defanged with brackets
 * ("https[:]//", "www[.]", "name[@]host"), so record text can never put a clickable link into a
 * card. */
static void md_escape(sbuf *b, const char *s) {
    for (const char *p = s; *p; p++) {
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            sbuf_str(b, "\\[:\\]//");
            p += 2;
            continue;
        }
        if ((p == s || !alnum(p[-1])) && !strncasecmp(p, "www.", 4)) {
            sbuf_put(b, p, 3);
            sbuf_str(b, "\\[.\\]");
            p += 3;
            continue;
        }
        if (*p == '@' && p > s && alnum(p[-1]) && alnum(p[1])) {
            sbuf_str(b, "\\[@\\]");
            continue;
        }
        if (strchr("\\`*_{}[]<>()#+!|~", *p)) sbuf_put(b, "\\", 1);
        if (*p == '\n' || *p == '\r') sbuf_put(b, " ", 1);
        else sbuf_put(b, p, 1);
    }
}

/* ------------------------------------------------------------------ cards */

static void pct(double x, char *out, size_t cap) {
    double p = x * 100;
    if (p < 10) snprintf(out, cap, "%.1f", p);
    else snprintf(out, cap, "%.0f", p);
}

static void date_of(int64_t t, char *out, size_t cap) {
    char b[48];
    if (t == TIME_NULL) snprintf(out, cap, "undated");
    else snprintf(out, cap, "%.10s", serve_time_iso(t, b, sizeof b));
}

static cJSON *make_card(req *r, const serve_record *rec, const serve_task *t, const serve_score *sc,
                        const char *indicator, const char *uuid, int from_store) {
    const serve_predictor *p = r->s->s.predictor;
    const serve_config *c = r->s->c;
    char rp[16], lo[16], hi[16], summary[200];
    pct(sc->risk, rp, sizeof rp);
    pct(sc->lo, lo, sizeof lo);
    pct(sc->hi, hi, sizeof hi);
    snprintf(summary, sizeof summary, "%s: %s%% risk (95%% CI %s-%s%%)", t->title, rp, lo, hi);
    if (strlen(summary) > 139) { /* titles are capped at 80 characters, so this cannot happen */
        size_t n = 136;
        while (n && ((unsigned char)summary[n] & 0xC0) == 0x80) n--;
        memcpy(summary + n, "...", 4);
    }
    sbuf d = {0};
    char when[32];
    sbuf_fmt(&d, "**%s%% risk** (95%% interval %s-%s%%) of ", rp, lo, hi);
    md_escape(&d, t->title);
    int64_t pt = rec->p.prediction_time;
    if (pt == TIME_NULL)
        for (size_t i = 0; i < rec->p.n; i++)
            if (rec->p.time[i] != TIME_NULL && (pt == TIME_NULL || rec->p.time[i] > pt)) pt = rec->p.time[i];
    date_of(pt, when, sizeof when);
    sbuf_fmt(&d, ", estimated by %s %s from %zu events in the record up to %s.\n\n", p->model_name, p->model_version,
             sc->n_events_used, when);
    if (from_store)
        sbuf_str(&d, "The record was read from the hospital's event store, which can lag the EHR.\n\n");
    if (sc->n_reasons) {
        sbuf_str(&d, "Events in this patient's record that most raised the estimate:\n\n");
        for (size_t k = 0; k < sc->n_reasons; k++) {
            const serve_reason *re = &sc->reason[k];
            date_of(rec->p.time[re->event], when, sizeof when);
            sbuf_fmt(&d, "- %s: ", when);
            md_escape(&d, serve__event_text(&rec->p, re->event));
            sbuf_put(&d, " (", 2);
            md_escape(&d, rec->p.code[re->event]);
            if (re->n_events > 1) sbuf_fmt(&d, "; %zu times, latest shown", re->n_events);
            sbuf_fmt(&d, "): +%.1f percentage points\n", re->contribution * 100);
        }
        sbuf_put(&d, "\n", 1);
    } else {
        sbuf_str(&d, "No single event in the record raised the estimate.\n\n");
    }
    sbuf_str(&d, "This estimate is advice for the clinician. It does not order, change or document "
                 "anything.");
    if (d.oom) {
        free(d.p);
        return NULL;
    }
    cJSON *card = cJSON_CreateObject();
    cJSON_AddStringToObject(card, "uuid", uuid);
    cJSON_AddStringToObject(card, "summary", summary);
    cJSON_AddStringToObject(card, "indicator", indicator);
    cJSON_AddStringToObject(card, "detail", d.p);
    free(d.p);
    cJSON *src = cJSON_AddObjectToObject(card, "source");
    char label[300];
    snprintf(label, sizeof label, "clinfm %s %s", p->model_name, p->model_version);
    cJSON_AddStringToObject(src, "label", label);
    cJSON *topic = cJSON_AddObjectToObject(src, "topic");
    cJSON_AddStringToObject(topic, "system", "urn:clinfm:task");
    cJSON_AddStringToObject(topic, "code", t->task_id);
    cJSON_AddStringToObject(topic, "display", t->title);
    cJSON *ors = cJSON_AddArrayToObject(card, "overrideReasons");
    for (size_t i = 0; i < c->n_override_reasons; i++) {
        cJSON *o = cJSON_CreateObject();
        JSON_ADD_STRINGS(o, {"system", c->override_reasons[i].system}, {"code", c->override_reasons[i].code},
                         {"display", c->override_reasons[i].display});
        cJSON_AddItemToArray(ors, o);
    }
    return card;
}

static void new_uuid(char out[37]) {
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* ------------------------------------------------------------------ the patient's data */

typedef struct {
    const char *name, *tpl;
    char query[1024];        /* the template expanded; "" when it cannot be (a token lacks a value) */
    const cJSON *value;      /* the data (in the arena), NULL when none */
    int state;               /* SERVE_PF_* */
    int fetched;             /* the value came from the FHIR server */
    const char *why;         /* why it is missing */
    char next[2048];         /* a next page still to read */
} pf_key;

static int is_type(const cJSON *v, const char *type) {
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(v, "resourceType");
    return cJSON_IsString(rt) && !strcmp(rt->valuestring, type);
}

/* The "next" link of a Bundle, NULL when none. */
static const char *next_link(const cJSON *v) {
    const cJSON *link;
    if (!is_type(v, "Bundle")) return NULL;
    cJSON_ArrayForEach(link, cJSON_GetObjectItemCaseSensitive(v, "link")) {
        const cJSON *rel = cJSON_GetObjectItemCaseSensitive(link, "relation");
        const cJSON *url = cJSON_GetObjectItemCaseSensitive(link, "url");
        if (cJSON_IsString(rel) && !strcmp(rel->valuestring, "next") && cJSON_IsString(url))
            return url->valuestring;
    }
    return NULL;
}

/* Moves the entries of page into first (both in the arena) and drops first's links, so the
 * merged Bundle reads as one complete result. */
static void merge_page(cJSON *first, cJSON *page) {
    cJSON *to = cJSON_GetObjectItemCaseSensitive(first, "entry");
    if (!to) to = cJSON_AddArrayToObject(first, "entry");
    cJSON *from = cJSON_GetObjectItemCaseSensitive(page, "entry"), *e;
    while (to && cJSON_IsArray(from) && (e = cJSON_DetachItemFromArray(from, 0)))
        cJSON_AddItemToArray(to, e);
    cJSON_DeleteItemFromObjectCaseSensitive(first, "link");
}

/* Reads the missing keys from the FHIR server (every key at once, then next pages, round by
 * round). Values land in the arena. */
static void fetch_missing(req *r, pf_key *keys, size_t n, const char *server, const char *token) {
    const serve_config *c = r->s->c;
    serve_metrics *m = &r->s->metrics;
    serve_fetch_item items[MAX_KEYS];
    char urls[MAX_KEYS][3200];
    size_t which[MAX_KEYS];
    size_t budget = c->fhir_max_bytes;
    double deadline = r->start_s + c->request_timeout_ms / 1000.0 * 0.8;
    double cap = now_seconds() + c->fhir_timeout_ms / 1000.0;
    if (cap < deadline) deadline = cap;
    cJSON *firsts[MAX_KEYS] = {0};
    for (int round = 0; round < c->fhir_max_pages; round++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            pf_key *x = &keys[i];
            if (round == 0 && x->state == SERVE_PF_MISSING && x->query[0]) {
                size_t bl = strlen(server);
                snprintf(urls[k], sizeof urls[k], "%s%s%s", server,
                         bl && server[bl - 1] == '/' ? "" : "/", x->query);
            } else if (round > 0 && x->next[0]) {
                snprintf(urls[k], sizeof urls[k], "%s", x->next);
                x->next[0] = '\0';
            } else {
                continue;
            }
            items[k] = (serve_fetch_item){urls[k], 0, NULL, 0};
            which[k++] = i;
        }
        if (!k) break;
        serve_fetch_opts o = {server, token, deadline, &budget, c->fhir_ca_file};
        cf_err err;
        atomic_fetch_add_explicit(&m->fhir_reads, k, memory_order_relaxed);
        if (serve_fetch_run(&o, items, k, &err)) {
            serve_fetch_free(items, k);
            break;
        }
        for (size_t j = 0; j < k; j++) {
            pf_key *x = &keys[which[j]];
            serve_fetch_item *it = &items[j];
            cJSON *v = it->status == 200 ? serve__parse_more(r, it->body, it->len) : NULL;
            if (!v) {
                x->state = SERVE_PF_MISSING;
                x->why = it->status == 404   ? "not found on the FHIR server"
                         : it->status == 0   ? "the FHIR server did not answer in time"
                         : it->status == 200 ? "the FHIR server's answer is not JSON"
                                             : "the FHIR server refused the read";
                x->value = NULL;
                firsts[which[j]] = NULL;
                atomic_fetch_add_explicit(&m->fhir_read_failures, 1, memory_order_relaxed);
                continue;
            }
            /* the page's own next link, before its entries join the first page's */
            const char *nl = serve_prefetch_has_count(x->tpl) ? NULL : next_link(v);
            if (round == 0) {
                firsts[which[j]] = v;
            } else if (firsts[which[j]]) {
                merge_page(firsts[which[j]], v);
                v = firsts[which[j]];
            }
            if (nl) {
                if (!serve_fetch_same_server(server, nl) || strlen(nl) >= sizeof x->next) {
                    x->state = SERVE_PF_MISSING;
                    x->why = "the FHIR server's next page lies outside it";
                    continue;
                }
                snprintf(x->next, sizeof x->next, "%s", nl);
                x->state = SERVE_PF_MISSING;
                x->why = "more pages than fhir.max_pages";
                continue;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(v, "link"); /* every page is in */
            x->value = v;
            x->fetched = 1;
            x->state = serve_prefetch_state(v, x->tpl, &x->why);
            if (x->state == SERVE_PF_MISSING) {
                x->value = NULL;
                atomic_fetch_add_explicit(&m->fhir_read_failures, 1, memory_order_relaxed);
            }
        }
        serve_fetch_free(items, k);
    }
}

/* The Encounter with this id among the values (a read, or an entry of a Bundle). */
static const cJSON *find_encounter(const pf_key *keys, size_t n, const char *id) {
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = keys[i].value, *e;
        if (!v) continue;
        if (is_type(v, "Encounter")) {
            const cJSON *eid = cJSON_GetObjectItemCaseSensitive(v, "id");
            if (cJSON_IsString(eid) && !strcmp(eid->valuestring, id)) return v;
        }
        const cJSON *entries = is_type(v, "Bundle") ? cJSON_GetObjectItemCaseSensitive(v, "entry")
                                                    : NULL;
        cJSON_ArrayForEach(e, entries) {
            const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
            const cJSON *eid = cJSON_GetObjectItemCaseSensitive(res, "id");
            if (is_type(res, "Encounter") && cJSON_IsString(eid) && !strcmp(eid->valuestring, id))
                return res;
        }
    }
    return NULL;
}

/* Whether a reference ("Patient/<id>", an absolute URL ending so, or "urn:uuid:<id>") names the
 * patient. */
static int refers_to(const cJSON *subject, const char *patient) {
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(subject, "reference");
    if (!cJSON_IsString(ref)) return 0;
    const char *s = ref->valuestring;
    size_t sl = strlen(s), pl = strlen(patient);
    if (!strncmp(s, "urn:uuid:", 9)) return !strcmp(s + 9, patient);
    return sl >= pl + 8 && !strcmp(s + sl - pl, patient) && !strncmp(s + sl - pl - 8, "Patient/", 8) &&
           (sl == pl + 8 || s[sl - pl - 9] == '/');
}

static int valid_user_id(const char *u, const char *hook) {
    static const char *const any[] = {"Practitioner/", "PractitionerRole/", "Patient/",
                                      "RelatedPerson/"};
    /* encounter-discharge: the clinician discharging; patient-view: anyone who can open a chart */
    size_t n = !strcmp(hook, "encounter-discharge") ? 2 : 4;
    for (size_t i = 0; i < n; i++) {
        size_t pl = strlen(any[i]);
        if (!strncmp(u, any[i], pl)) return serve__valid_id(u + pl, 64) && !strchr(u + pl, '_');
    }
    return 0;
}

/* ------------------------------------------------------------------ the hook */

typedef struct {
    const char *source;       /* where the record came from, for the card */
    int from_store;
} data_origin;

void serve__h_hook(req *r) {
    const serve_service *sv = r->svc;
    const serve_config *c = r->s->c;
    serve_record rec;
    serve_record_init(&rec);
    cJSON *root = serve__parse_body(r, c->n_fhir_servers ? c->fhir_max_bytes : 0);
    if (!root) return;
    const cJSON *hook = cJSON_GetObjectItemCaseSensitive(root, "hook");
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(root, "hookInstance");
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(root, "context");
    const cJSON *prefetch = cJSON_GetObjectItemCaseSensitive(root, "prefetch");
    const cJSON *fserver = cJSON_GetObjectItemCaseSensitive(root, "fhirServer");
    const cJSON *fauth = cJSON_GetObjectItemCaseSensitive(root, "fhirAuthorization");
    int discharge = !strcmp(sv->hook, "encounter-discharge");
    if (!cJSON_IsString(hook) || strcmp(hook->valuestring, sv->hook)) {
        serve__fail(r, 400, "hook must be \"%s\" for this service", sv->hook);
        return;
    }
    if (!cJSON_IsString(inst) || !inst->valuestring[0] || strlen(inst->valuestring) > 128) {
        serve__fail(r, 400, "hookInstance must be a non-empty string of at most 128 characters");
        return;
    }
    if (!cJSON_IsObject(ctx)) {
        serve__fail(r, 400, "context must be an object");
        return;
    }
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(ctx, "patientId");
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(ctx, "userId");
    const cJSON *eid = cJSON_GetObjectItemCaseSensitive(ctx, "encounterId");
    if (!cJSON_IsString(pid) || !serve__valid_id(pid->valuestring, 64)) {
        serve__fail(r, 400, "context.patientId must be a FHIR id (1-64 letters, digits, '-', '.')");
        return;
    }
    if (!cJSON_IsString(uid) || !valid_user_id(uid->valuestring, sv->hook)) {
        serve__fail(r, 400, "context.userId is required: %s",
                    discharge ? "\"Practitioner/<id>\" or \"PractitionerRole/<id>\""
                              : "\"Practitioner/<id>\", \"PractitionerRole/<id>\", "
                                "\"Patient/<id>\" or \"RelatedPerson/<id>\"");
        return;
    }
    if ((discharge && !eid) || (eid && (!cJSON_IsString(eid) || !serve__valid_id(eid->valuestring, 64)))) {
        serve__fail(r, 400, "context.encounterId %s a FHIR id",
                    discharge ? "is required for encounter-discharge: " : "must be");
        return;
    }
    if (prefetch && !cJSON_IsObject(prefetch) && !cJSON_IsNull(prefetch)) {
        serve__fail(r, 400, "prefetch must be an object");
        return;
    }
    if (fserver && !cJSON_IsString(fserver)) {
        serve__fail(r, 400, "fhirServer must be a URL");
        return;
    }
    const char *token = NULL;
    if (fauth && !cJSON_IsNull(fauth)) {
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(fauth, "access_token");
        const cJSON *tt = cJSON_GetObjectItemCaseSensitive(fauth, "token_type");
        if (!cJSON_IsObject(fauth) || !cJSON_IsString(at) || !serve_fetch_token_ok(at->valuestring) ||
            (tt && (!cJSON_IsString(tt) || strcasecmp(tt->valuestring, "Bearer")))) {
            serve__fail(r, 400, "fhirAuthorization must hold an access_token (printable, at most "
                                "4096 characters) of token_type Bearer");
            return;
        }
        token = at->valuestring;
    }
    serve__copy_str(r->user, sizeof r->user, uid);
    char patient[80], encounter[80] = "";
    serve__copy_str(patient, sizeof patient, pid);
    if (eid) serve__copy_str(encounter, sizeof encounter, eid);
    snprintf(r->patient_id, sizeof r->patient_id, "%s", patient);

    /* every template: what the request brought for it */
    pf_key keys[MAX_KEYS];
    size_t n = 0, missing = 0;
    const cJSON *t;
    serve_prefetch_ctx pctx = {patient, encounter[0] ? encounter : NULL, r->user};
    cJSON_ArrayForEach(t, sv->prefetch) {
        if (n == MAX_KEYS) break;
        pf_key *x = &keys[n++];
        memset(x, 0, sizeof *x);
        x->name = t->string;
        x->tpl = t->valuestring;
        if (serve_prefetch_expand(x->tpl, &pctx, x->query, sizeof x->query)) x->query[0] = '\0';
        const cJSON *v = cJSON_IsObject(prefetch)
                             ? cJSON_GetObjectItemCaseSensitive(prefetch, x->name) : NULL;
        x->state = serve_prefetch_state(v, x->tpl, &x->why);
        x->value = x->state == SERVE_PF_OK ? v : NULL;
        missing += x->state == SERVE_PF_MISSING;
    }
    /* what is missing, from the EHR's FHIR server when the configuration allows that server */
    const char *server = cJSON_IsString(fserver) ? fserver->valuestring : NULL;
    int may_fetch = server && serve_fetch_allowed(server, c->fhir_servers, c->n_fhir_servers);
    if (missing && may_fetch) fetch_missing(r, keys, n, server, token);
    missing = 0;
    int fetched = 0, prefetched = 0;
    char missing_names[400] = "";
    for (size_t i = 0; i < n; i++) {
        if (keys[i].state == SERVE_PF_MISSING) {
            size_t ml = strlen(missing_names);
            snprintf(missing_names + ml, sizeof missing_names - ml, "%s%.40s (%s)", missing ? ", " : "",
                     keys[i].name, keys[i].why ? keys[i].why : "missing");
            missing++;
        } else if (keys[i].fetched) {
            fetched = 1;
        } else {
            prefetched = 1;
        }
    }
    /* the discharged encounter and its end */
    int64_t pt = c->prediction_time_now ? r->wall_us : TIME_NULL;
    if (discharge) {
        const cJSON *enc = find_encounter(keys, n, encounter);
        if (!enc) {
            serve__fail(r, 412, "the encounter of context.encounterId was found neither in prefetch "
                                "nor on a FHIR server this service may read; its discharge time "
                                "is the prediction time");
            atomic_fetch_add(&r->s->metrics.precondition_failed, 1);
            return;
        }
        if (!refers_to(cJSON_GetObjectItemCaseSensitive(enc, "subject"), patient)) {
            serve__fail(r, 400, "the encounter of context.encounterId belongs to another patient "
                                "than context.patientId");
            return;
        }
        const cJSON *end = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(enc, "period"), "end");
        int64_t te;
        if (cJSON_IsString(end)) {
            if (time_parse_iso(end->valuestring, strlen(end->valuestring), &te, NULL)) {
                serve__fail(r, 400, "the encounter's period.end is not a FHIR dateTime");
                return;
            }
            pt = te;
        } else {
            pt = r->wall_us; /* still open: the discharge is happening now */
        }
    }
    data_origin origin = {fetched ? (prefetched ? "prefetch and FHIR server" : "FHIR server")
                                  : "prefetch", 0};
    cf_err err = {0};
    if (!missing) {
        const cJSON *vals[MAX_KEYS];
        const char *names[MAX_KEYS];
        char name_buf[MAX_KEYS][64];
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (!keys[i].value) continue;
            snprintf(name_buf[m], sizeof name_buf[m], "%s.%.40s",
                     keys[i].fetched ? "fhirServer" : "prefetch", keys[i].name);
            names[m] = name_buf[m];
            vals[m++] = keys[i].value;
        }
        int rc = serve_record_from_fhir(&rec, vals, names, m, patient, pt, &err);
        serve__parse_end(r);
        if (rc) {
            serve__fail(r, rc == CF_EINPUT ? 400 : 500, "%s", err.msg);
            goto done;
        }
    } else {
        serve__parse_end(r);
        int rc = r->s->s.store ? serve_record_from_store(&rec, r->s->s.store, patient, pt, &err)
                               : CF_EINPUT;
        if (rc == CF_EINPUT) {
            atomic_fetch_add(&r->s->metrics.precondition_failed, 1);
            serve__fail(r, 412, "the patient's data is incomplete and the service could not "
                                "complete it: %s; %s; and the patient is not in the store",
                        missing_names,
                        !server     ? "the request names no fhirServer"
                        : !may_fetch ? "fhirServer is not a server this service may read "
                                       "(fhir.servers)"
                                     : "the FHIR server did not supply it");
            goto done;
        }
        if (rc) {
            serve__fail(r, 500, "%s", err.msg);
            goto done;
        }
        origin.source = "store";
        origin.from_store = 1;
        atomic_fetch_add(&r->s->metrics.store_fallbacks, 1);
    }
    if (!serve__record_scorable(&rec)) {
        atomic_fetch_add(&r->s->metrics.precondition_failed, 1);
        serve__fail(r, 412, "the record holds no dated event besides the birth%s: nothing to score",
                    discharge ? " up to the encounter's end" : "");
        goto done;
    }
    if (serve__over_time(r)) goto done;
    cJSON *out = cJSON_CreateObject();
    cJSON *cards = cJSON_AddArrayToObject(out, "cards");
    for (size_t i = 0; i < sv->n_tasks; i++) {
        const serve_task *task = serve_config_task(c, sv->tasks[i]);
        serve_score sc;
        if (serve__score_one(r, &rec, task, &sc) || serve__over_time(r)) {
            cJSON_Delete(out);
            goto done;
        }
        const char *ind = serve__indicator(task, sc.risk);
        if (!strcmp(ind, "info") && !sv->show_info) continue;
        size_t k = r->n_cards;
        if (k >= SERVE__MAX_CARDS) break;
        new_uuid(r->card_uuid[k]);
        snprintf(r->card_task[k], sizeof r->card_task[k], "%s", task->task_id);
        cJSON *card = make_card(r, &rec, task, &sc, ind, r->card_uuid[k], origin.from_store);
        if (!card) {
            cJSON_Delete(out);
            serve__fail(r, 500, "out of memory building a card");
            goto done;
        }
        cJSON_AddItemToArray(cards, card);
        r->cards[k] = (serve_card_row){r->card_uuid[k], sv->id, sv->hook, r->card_task[k], ind,
                                       sc.risk, sc.lo, sc.hi};
        r->n_cards++;
    }
    serve__reply_json(r, 200, out);
done:
    serve_record_free(&rec);
}

/* ------------------------------------------------------------------ feedback */

static int coding_allowed(const serve_config *c, const char *system, const char *code) {
    for (size_t i = 0; i < c->n_override_reasons; i++)
        if (!strcmp(c->override_reasons[i].code, code) &&
            (!system || !strcmp(c->override_reasons[i].system, system)))
            return 1;
    return 0;
}

static int digits(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)"; a zone is required. */
static int rfc3339(const char *s, int64_t *t) {
    size_t n = strlen(s);
    if (n < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
        return 0;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (!digits(p, 1)) return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'Z' || *p == 'z') p++;
    else if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2)) p += 6;
    else return 0;
    if (*p) return 0;
    char norm[64];
    snprintf(norm, sizeof norm, "%s", s);
    norm[10] = 'T';
    if (norm[n - 1] == 'z') norm[n - 1] = 'Z';
    int zone = 0;
    return time_parse_iso(norm, strlen(norm), t, &zone) == 0 && zone;
}

typedef struct {
    char card[37], outcome[12], code[65], system[257], display[257], time[40];
    char *comment;
} fb_item;

typedef struct {
    fb_item *items;
    serve_feedback_row *rows;
    int n;
} fb_kept;

static void fb_cleanup(req *r) {
    fb_kept *k = r->cleanup_data;
    if (!k) return;
    for (int i = 0; i < k->n; i++) free(k->items[i].comment);
    CF_FREE_ALL(k->items, k->rows, k);
    r->cleanup_data = NULL;
}

void serve__h_feedback(req *r) {
    const serve_config *c = r->s->c;
    cJSON *root = serve__parse_body(r, 0);
    if (!root) return;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "feedback");
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 1 || n > 100) {
        serve__fail(r, 400, "feedback must be an array of 1 to 100 items");
        return;
    }
    fb_kept *kept = calloc(1, sizeof *kept);
    if (!kept) {
        serve__fail(r, 500, "out of memory");
        return;
    }
    r->cleanup = fb_cleanup;
    r->cleanup_data = kept;
    kept->items = calloc((size_t)n, sizeof *kept->items);
    kept->rows = calloc((size_t)n, sizeof *kept->rows);
    kept->n = n;
    fb_item *items = kept->items;
    if (!items || !kept->rows) {
        serve__fail(r, 500, "out of memory");
        return;
    }
    int64_t now_s = r->wall_us / 1000000;
    int i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, arr) {
        fb_item *it = &items[i];
        const cJSON *card = cJSON_GetObjectItemCaseSensitive(f, "card");
        const cJSON *outcome = cJSON_GetObjectItemCaseSensitive(f, "outcome");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(f, "outcomeTimestamp");
        const cJSON *orr = cJSON_GetObjectItemCaseSensitive(f, "overrideReason");
        if (!cJSON_IsObject(f) || !cJSON_IsString(card) || strlen(card->valuestring) != 36) {
            serve__fail(r, 400, "feedback[%d].card must be the uuid of a card", i);
            return;
        }
        if (!cJSON_IsString(outcome) || (strcmp(outcome->valuestring, "accepted") &&
                                         strcmp(outcome->valuestring, "overridden"))) {
            serve__fail(r, 400, "feedback[%d].outcome must be \"accepted\" or \"overridden\"", i);
            return;
        }
        int64_t tv;
        if (!cJSON_IsString(ts) || strlen(ts->valuestring) >= sizeof it->time ||
            !rfc3339(ts->valuestring, &tv)) {
            serve__fail(r, 400, "feedback[%d].outcomeTimestamp must be an RFC 3339 date-time with "
                                "a zone (\"2026-11-22T10:00:00Z\")", i);
            return;
        }
        if (tv / 1000000 > now_s + c->clock_skew_s) {
            serve__fail(r, 400, "feedback[%d].outcomeTimestamp is in the future", i);
            return;
        }
        serve__copy_str(it->card, sizeof it->card, card);
        serve__copy_str(it->outcome, sizeof it->outcome, outcome);
        serve__copy_str(it->time, sizeof it->time, ts);
        if (orr) {
            if (strcmp(it->outcome, "overridden") || !cJSON_IsObject(orr)) {
                serve__fail(r, 400, "feedback[%d].overrideReason is an object and only for "
                                    "overridden cards", i);
                return;
            }
            const cJSON *reason = cJSON_GetObjectItemCaseSensitive(orr, "reason");
            const cJSON *comment = cJSON_GetObjectItemCaseSensitive(orr, "userComment");
            if (!reason && !(cJSON_IsString(comment) && comment->valuestring[0])) {
                serve__fail(r, 400, "feedback[%d].overrideReason must hold a reason or a "
                                    "userComment", i);
                return;
            }
            if (reason) {
                const cJSON *code = cJSON_GetObjectItemCaseSensitive(reason, "code");
                const cJSON *sys = cJSON_GetObjectItemCaseSensitive(reason, "system");
                if (!cJSON_IsString(code) || (sys && !cJSON_IsString(sys)) ||
                    !coding_allowed(c, cJSON_IsString(sys) ? sys->valuestring : NULL,
                                    code->valuestring)) {
                    serve__fail(r, 400, "feedback[%d].overrideReason.reason must be one of the "
                                        "card's overrideReasons", i);
                    return;
                }
                serve__copy_str(it->code, sizeof it->code, code);
                for (size_t k = 0; k < c->n_override_reasons; k++)
                    if (!strcmp(c->override_reasons[k].code, it->code)) {
                        snprintf(it->system, sizeof it->system, "%s", c->override_reasons[k].system);
                        snprintf(it->display, sizeof it->display, "%s",
                                 c->override_reasons[k].display);
                    }
            }
            if (comment) {
                if (!cJSON_IsString(comment) || strlen(comment->valuestring) > 2000) {
                    serve__fail(r, 400, "feedback[%d].overrideReason.userComment must be a string "
                                        "of at most 2000 characters", i);
                    return;
                }
                if (!(it->comment = strdup(comment->valuestring))) {
                    serve__fail(r, 500, "out of memory");
                    return;
                }
            }
        }
        i++;
    }
    serve__parse_end(r);
    for (i = 0; i < n; i++) {
        int k = serve_db_card_known(r->s->s.db, items[i].card, r->svc->id);
        if (k == -2) {
            atomic_fetch_add(&r->s->metrics.integrity_failures, 1);
            serve__fail(r, 500, "feedback[%d].card: the card's record fails its integrity check", i);
            return;
        }
        if (k < 0) {
            serve__fail(r, 500, "the audit database could not be read");
            return;
        }
        if (!k) {
            serve__fail(r, 404, "feedback[%d].card was not issued by this service", i);
            return;
        }
        fb_item *it = &items[i];
        kept->rows[i] = (serve_feedback_row){r->wall_us, r->svc->id, it->card, it->outcome,
                                             it->code[0] ? it->code : NULL,
                                             it->system[0] ? it->system : NULL,
                                             it->display[0] ? it->display : NULL, it->comment,
                                             it->time, r->principal};
    }
    /* the rows are written with this request's audit row (serve_handler.c) */
    r->feedback = kept->rows;
    r->n_feedback = (size_t)n;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "recorded", n);
    serve__reply_json(r, 200, o);
}
