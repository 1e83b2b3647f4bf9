/* Notes of a synthetic patient's stays (see patient_notes.h). */
#include "synth/patient_notes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "deid/deid_eval.h"
#include "synth/rng.h"

#define S(lit) synth_buf_put(b, lit, sizeof(lit) - 1)

static const synth_code note_types[] = {
    {"34746-8", "Nurse Note"}, {"11506-3", "Progress note"}, {"18842-5", "Discharge summary"}};

static void docref(synth_buf *b, const synth_patient *p, size_t n, int type, double t, const synth_rec *enc,
                   size_t enc_index, const synth_note_context *ctx, int author, const synth_note *note) {
    char tmp[64];
    S("{\"resourceType\":\"DocumentReference\",\"id\":\"");
    synth_buf_str(b, p->id);
    int k = snprintf(tmp, sizeof tmp, "-n%zu", n);
    synth_buf_put(b, tmp, (size_t)k);
    S("\",\"status\":\"current\",\"type\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"");
    synth_buf_str(b, note_types[type].code);
    S("\",\"display\":\"");
    synth_buf_str(b, note_types[type].display);
    S("\"}]},\"subject\":{\"reference\":\"Patient/");
    synth_buf_str(b, p->id);
    S("\"},\"date\":\"");
    synth_buf_time(b, t, 0);
    S("\",\"author\":[{\"reference\":\"Practitioner/");
    k = snprintf(tmp, sizeof tmp, "%s-pr%d", p->id, author);
    synth_buf_put(b, tmp, (size_t)k);
    S("\",\"display\":\"");
    /* names from the lists are letters only: nothing to escape */
    synth_buf_str(b, ctx->clinician[author].given);
    S(" ");
    synth_buf_str(b, ctx->clinician[author].family);
    S("\"}],\"context\":{\"encounter\":[{\"reference\":\"Encounter/");
    synth_buf_str(b, p->id);
    k = snprintf(tmp, sizeof tmp, "-e%zu", enc_index);
    synth_buf_put(b, tmp, (size_t)k);
    S("\"}],\"period\":{\"start\":\"");
    synth_buf_time(b, enc->t, 0);
    S("\",\"end\":\"");
    synth_buf_time(b, enc->t_end, 0);
    S("\"}},\"content\":[{\"attachment\":{\"contentType\":\"text/plain; charset=utf-8\",\"data\":\"");
    size_t blen = sodium_base64_encoded_len(note->len, sodium_base64_VARIANT_ORIGINAL);
    char *enc64 = malloc(blen);
    if (!enc64) {
        b->oom = 1;
        return;
    }
    sodium_bin2base64(enc64, blen, (const unsigned char *)note->text, note->len, sodium_base64_VARIANT_ORIGINAL);
    synth_buf_str(b, enc64);
    free(enc64);
    S("\"}}]}\n");
}

/* The note and its spans as a one-document corpus, written by the generator's own writers into
 * the patient's buffers (the enclosing "[", "]" and the phrase header are left to the caller). */
static int gold(synth_patient_notes_out *out, const synth_note *note, const char *id, cf_err *err) {
    deid_gold *g = calloc(note->n_spans ? note->n_spans : 1, sizeof *g);
    if (!g) return cf_fail(err, CF_EINTERNAL, "out of memory");
    for (size_t i = 0; i < note->n_spans; i++) {
        g[i].start = note->spans[i].start;
        g[i].end = note->spans[i].end;
        g[i].type = note->spans[i].type;
        g[i].in_scope = 1;
        g[i].date_element = -1;
    }
    deid_doc doc;
    memset(&doc, 0, sizeof doc);
    doc.text = note->text;
    doc.len = note->len;
    doc.gold = g;
    doc.n_gold = note->n_spans;
    size_t il = strlen(id) < sizeof doc.id ? strlen(id) : sizeof doc.id - 1;
    memcpy(doc.id, id, il);
    doc.id[il] = 0;
    deid_corpus c;
    memset(&c, 0, sizeof c);
    c.docs = &doc;
    c.n_docs = 1;
    int rc = CF_OK;
    for (int which = 0; which < 2 && !rc; which++) {
        char *mem = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&mem, &len);
        if (!f) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        rc = which ? synth_notes_write_phrase(f, &c, err) : synth_notes_write_presidio(f, &c, err);
        fclose(f);
        if (!rc && mem) {
            const char *s = mem, *e = mem + len;
            synth_buf *b = which ? &out->phrase : &out->presidio;
            if (!which) { /* "[\n  {...}\n]\n" -> "  {...}" */
                if (len > 2 && !strncmp(s, "[\n", 2)) s += 2;
                while (e > s && (e[-1] == '\n' || e[-1] == ']')) e--;
                if (b->len) synth_buf_put(b, ",\n", 2);
            } else { /* drop the header line */
                const char *nl = memchr(s, '\n', len);
                s = nl ? nl + 1 : e;
            }
            synth_buf_put(b, s, (size_t)(e - s));
        }
        free(mem);
    }
    free(g);
    return rc;
}

typedef struct {
    int kind, type; /* note kind (notes.h), index into note_types */
    double at;      /* days */
    int day;        /* day of the stay */
} note_plan;

int synth_patient_notes(const synth_patient *p, const synth_namelists *nl, uint64_t seed,
                        synth_patient_notes_out *out, cf_err *err) {
    synth_note_context ctx;
    synth_context_random(nl, synth_mix64(seed ^ synth_mix64(p->index + 0x6e6f746573ULL)), &ctx);
    /* the patient's own identifiers, as in the Patient resource */
    snprintf(ctx.patient.given, sizeof ctx.patient.given, "%s", p->given);
    snprintf(ctx.patient.family, sizeof ctx.patient.family, "%s", p->family);
    ctx.patient.sex = p->sex == SYN_SEX_M ? 'M' : 'F';
    snprintf(ctx.street, sizeof ctx.street, "%s", p->street);
    snprintf(ctx.city, sizeof ctx.city, "%s", p->city);
    snprintf(ctx.state, sizeof ctx.state, "%s", p->state);
    snprintf(ctx.zip, sizeof ctx.zip, "%s", p->zip);
    snprintf(ctx.phone, sizeof ctx.phone, "%s", p->phone);
    snprintf(ctx.mrn, sizeof ctx.mrn, "%s", p->mrn);
    size_t n = 0;
    for (size_t i = 0; i < p->n_recs; i++) {
        const synth_rec *r = &p->recs[i];
        if (r->kind != SYN_R_ENCOUNTER || r->cls != SYN_ENC_IMP) continue;
        long long day0 = (long long)floor(r->t);
        int y;
        unsigned m, d;
        {
            long long z = day0 + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
            unsigned doe = (unsigned)(z - era * 146097);
            unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
            unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
            d = doy - (153 * mp + 2) / 5 + 1;
            m = mp < 10 ? mp + 3 : mp - 9;
            y = (int)((long long)yoe + era * 400 + (m <= 2));
        }
        ctx.adm_year = y, ctx.adm_month = (int)m, ctx.adm_day = (int)d;
        ctx.age = (int)floor((r->t - p->birth) / 365.2425);
        double len = r->t_end - r->t;
        int died = r->v2 == 4;
        note_plan plan[3];
        int np = 0;
        plan[np++] = (note_plan){(p->index + i) % 2 ? SYNTH_NOTE_NURSING_RUNON : SYNTH_NOTE_NURSING, 0,
                                 r->t + fmin(0.3, len / 2), 0};
        if (len >= 1.0) plan[np++] = (note_plan){SYNTH_NOTE_PROGRESS, 1, r->t + 1.0 + fmin(0.3, (len - 1) / 2), 1};
        if (!died) plan[np++] = (note_plan){SYNTH_NOTE_DISCHARGE, 2, r->t_end, (int)floor(len)};
        for (int k = 0; k < np; k++) {
            ctx.day_of_stay = plan[k].day;
            uint64_t ns = synth_mix64(seed ^ synth_mix64(p->index * 131 + i * 7 + (uint64_t)k));
            int casing = ns % 10 == 0 ? SYNTH_CASE_UPPER : ns % 10 == 1 ? SYNTH_CASE_LOWER : SYNTH_CASE_MIXED;
            synth_note note;
            memset(&note, 0, sizeof note);
            int rc = synth_note_write_ex(&ctx, plan[k].kind, casing, ns, nl, &note, err);
            if (rc) return rc;
            int author = ctx.n_clinicians ? (int)(ns / 10 % (uint64_t)ctx.n_clinicians) : 0;
            double at = floor(plan[k].at * 86400.0 + 0.5) / 86400.0;
            docref(&out->docref, p, n, plan[k].type, at, r, i, &ctx, author, &note);
            char id[96];
            snprintf(id, sizeof id, "%s-n%zu", p->id, n);
            rc = gold(out, &note, id, err);
            out->spans += note.n_spans;
            synth_note_free(&note);
            if (rc) return rc;
            out->notes++;
            out->events++;
            n++;
        }
    }
    if (out->docref.oom || out->presidio.oom || out->phrase.oom)
        return cf_fail(err, CF_EINTERNAL, "out of memory writing the notes of patient %llu", (unsigned long long)p->index);
    return CF_OK;
}
