/* Generated clinical notes with PHI at known offsets: ICU nursing notes, physician progress notes
 * and discharge summaries, in several templates and styles (sectioned or run-on nursing notes in
 * abbreviation-heavy ICU shorthand, "Pt is 76yo M w/ hx CHF, on levo gtt, PS 10/5"; signatures;
 * wards and floors; pagers; relatives and clinicians named with and without cues), written in
 * mixed, upper or lower case. Every identifier the note names is recorded as a span (byte
 * offsets, DEID_* type), so the notes train and measure the text de-identifier (deid-train,
 * deid-eval) and fill the notes of generated patients (the population generator).
 *
 * The note knows only what its synth_note_context gives it: the caller fills the patient's,
 * relatives' and clinicians' names, the dates, the age, the hospital, its abbreviation, the ward,
 * the city, address, phone, pager and record number (every field is a NUL-terminated string the
 * caller owns inside the struct; empty fields are left out of the note). What the note writes is
 * the caller's data plus clinical filler; nothing else is identifying.
 *
 *   synth_note_context ctx;            // filled by the caller, or:
 *   synth_context_random(lists, seed, &ctx);
 *   synth_note note;
 *   synth_note_write(&ctx, SYNTH_NOTE_NURSING, SYNTH_CASE_MIXED, seed, &note, &err);
 *   ... note.text, note.len, note.spans[0..note.n_spans) ...
 *   synth_note_free(&note);
 *
 * Clinical content that looks like PHI and is not is written on purpose (drips and drugs in
 * capitals "NEO", "LEVO"; "MAE"; "CO/CI"; "PS 10/5/40"; "1/2NS"; "800-1000"; clock-time ranges
 * "0700-1900"; "OSH"; weekdays), so that a de-identifier trained on these notes learns to keep it.
 * Deterministic: the same context, kind, casing and seed give the same bytes. */
#ifndef CLINFM_SYNTH_NOTES_H
#define CLINFM_SYNTH_NOTES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "deid/deid_eval.h"
#include "deid/text.h"
#include "util/err.h"

#define SYNTH_FIELD 64

typedef struct {
    char given[SYNTH_FIELD], family[SYNTH_FIELD];
    char sex; /* 'F' or 'M' */
} synth_person;

enum { SYNTH_MAX_RELATIVES = 3, SYNTH_MAX_CLINICIANS = 5 };

typedef struct {
    synth_person patient;
    synth_person relative[SYNTH_MAX_RELATIVES];
    char relation[SYNTH_MAX_RELATIVES][16]; /* "son", "wife", "daughter", "brother", "HCP" */
    int n_relatives;
    synth_person clinician[SYNTH_MAX_CLINICIANS];
    char role[SYNTH_MAX_CLINICIANS][8]; /* "MD", "RN", "NP", "PA", "RT" */
    int n_clinicians;
    int age;                        /* years; 90 and over is an identifier (Safe Harbor) */
    int adm_year, adm_month, adm_day; /* admission date */
    int day_of_stay;                /* the note's day, 0 = admission day */
    char hospital[SYNTH_FIELD];      /* "Green Valley General Hospital" */
    char hospital_abbr[16];          /* "GVGH" (the organisation's own abbreviation) */
    char other_hospital[SYNTH_FIELD]; /* where the patient came from */
    char ward[SYNTH_FIELD];          /* a named ward with its floor: "Kessler 4", "West 6" */
    char street[SYNTH_FIELD], city[SYNTH_FIELD], state[4], zip[8];
    char phone[24];                  /* "(617) 555-0147" */
    char pager[12];                  /* "43210" */
    char mrn[16];                    /* "4829133" */
    char nickname[SYNTH_FIELD];      /* what the patient prefers to be called: "Skip" */
    char facility[SYNTH_FIELD];      /* nursing home or rehab: "Willow Manor" (a LOCATION) */
} synth_note_context;

/* Note kinds. SYNTH_NOTE_EVENT is a family of short event and shift-summary notes kept apart for
 * measurement and for calibrating the decision threshold: deid-train never writes it (a style the
 * model was not fitted on). The others:
 *  - NURSING, NURSING_RUNON: ICU nursing notes by system ("Neuro:", "CV:") or run on;
 *  - PROGRESS, DISCHARGE: physician progress notes, discharge summaries;
 *  - DAR: problem-oriented nursing notes ("#1 ALTERATION IN ...", "D:", "A:", "R:");
 *  - SOCIAL: social work, case management and family-meeting notes (relatives, payors, rehab
 *    and nursing-home names, phone extensions, signatures with credentials);
 *  - RESP: respiratory care notes (ventilator notation, "-- name RRT");
 *  - REPORT: radiology and ECG reports (report dates, intervals tables, "since previous tracing");
 *  - TRANSFER: admission and transfer notes (hospitals by abbreviation, wards with floors,
 *    history with years, "report given to");
 *  - LIST: flowsheet and order-list labels one a line, clinical vocabulary only (no PHI);
 *  - ED (round 6): emergency triage and provider notes (vital signs as bare comma lists, triage
 *    acuity, room and bay, arrival from a facility or address, initials with credentials);
 *  - DICTATED (round 6): consults and clinic letters (referring clinician, service and ward, lab
 *    lists, the "D: date T: date AB/cd" transcription line, cc and e-signature lines);
 *  - THERAPY (round 6): physical/occupational therapy, pharmacy and nutrition notes (home set-up,
 *    scores with a denominator, doses with decimals, discharge facility, payer ids).
 * SYNTH_NOTE_MESSAGE (round 10) is a second kind kept apart, for stress measurement only (neither
 * deid-train nor the held-apart style writes it): telephone messages ("call from son (Ned) re
 * Faith, ..."), dispositions ("Disposition: rehab - X"), history years ("quit 1987"), requests
 * with a service and a ward, signatures with initials and usernames, each beside traps of the same
 * shape that hold no PHI ("re coumadin dosing", "rehab - bed offer pending", "quit 2 yrs ago").
 * SYNTH_NOTE_SHORTLINE (round 13) is a third kind kept apart, for measurement only: a nursing
 * note written as eight to twenty short unlabelled lines, a finding or an action a line, with no
 * section label and no sentence end ("wife Mary at bedside", "Quill RN aware", "CXR 3/7 done",
 * "to Kessler 4 when bed ready"): the shape the list-note feature of round 12 weighs as a list.
 * SYNTH_NOTE_LINES (round 13) is its training counterpart, written another way: a run-on nursing
 * note of the training kinds (its sentences, names, dates and traps) broken into lines at its
 * sentence ends, the full stops dropped, some lines broken again at a comma; deid-train adds
 * such notes with --generate-lines, so notes of short lines that hold PHI are in the material the
 * list-note feature is fitted on (round 12 fitted it on catalogues, where almost nothing is). */
enum { SYNTH_NOTE_NURSING = 0, SYNTH_NOTE_NURSING_RUNON, SYNTH_NOTE_PROGRESS, SYNTH_NOTE_DISCHARGE,
       SYNTH_NOTE_DAR, SYNTH_NOTE_SOCIAL, SYNTH_NOTE_RESP, SYNTH_NOTE_REPORT, SYNTH_NOTE_TRANSFER,
       SYNTH_NOTE_LIST, SYNTH_NOTE_ED, SYNTH_NOTE_DICTATED, SYNTH_NOTE_THERAPY, SYNTH_NOTE_EVENT,
       SYNTH_NOTE_MESSAGE, SYNTH_NOTE_SHORTLINE, SYNTH_NOTE_LINES, SYNTH_NOTE_KINDS };
enum { SYNTH_CASE_MIXED = 0, SYNTH_CASE_UPPER, SYNTH_CASE_LOWER };

typedef struct {
    char *text;        /* NUL-terminated UTF-8 */
    size_t len;
    deid_span *spans;  /* sorted by start, non-overlapping; byte offsets, end exclusive */
    size_t n_spans;
} synth_note;

/* Writes one note. Upper and lower case change ASCII letters only, so offsets hold. */
int synth_note_write(const synth_note_context *ctx, int kind, int casing, uint64_t seed, synth_note *out,
                     cf_err *err);
void synth_note_free(synth_note *n);

typedef struct synth_namelists synth_namelists;
/* The same, with clinical filler words drawn from filler's vocabulary (the rules folder's
 * medical_words.txt and clinical_keep.txt, loaded by synth_namelists_load); filler may be NULL. */
int synth_note_write_ex(const synth_note_context *ctx, int kind, int casing, uint64_t seed,
                        const synth_namelists *filler, synth_note *out, cf_err *err);
/* Round 13: synth_note_write_ex with SYNTH_NOTE_OPT_* bits: SYNTH_NOTE_OPT_CODED opens a progress,
 * discharge, social, therapy or dictated note half the time with coded-finding prose (drawn from
 * a stream of its own: the rest of the note is the same bytes as without it). */
/* Round 25: SYNTH_NOTE_OPT_NAME_LINES puts now and then, in the nursing kinds (sections, run-on and
 * the lines notes made from them), a person's given name opening a line or sentence with no cue
 * before a state or action, a clinician after "per"/"w/"/"d/w" with the instruction right after,
 * and lines of the same shapes with no PHI (notes.c, name_line; a stream of their own). */
/* Round 26: SYNTH_NOTE_OPT_CONTRAST writes, whatever the kind, a one-line note in which words that
 * are both in a name or place list and in a keep or English list are used among clinical words,
 * and now and then a given name opening the line before a state beside such a word (notes.c,
 * contrast_note); the pool is computed by synth_notes_generate_ex (SYNTH_GEN_CONTRAST_LINES).
 * Round 27: with SYNTH_NOTE_OPT_CONTRAST_NAMES as well, half the contrast notes (not 40%) are the
 * name shape; SYNTH_GEN_CONTRAST_NAMES sets it and leaves the given-name list out of the pool.
 * Round 28: SYNTH_GEN_CONTRAST_MIXED writes every contrast note in mixed case (the j-th is the
 * j-th without it, uncased), SYNTH_GEN_CONTRAST_THIN writes n / 16 of them (the first n / 16 of
 * the n / 8 written without it). */
/* Bits 2 and 4 were round 14's LINES_R13 and round 17's PREP_TITLES, removed in session 18 with
 * round 18's name share in bits 8-15 (docs/DEID.md, "Switches removed"). */
enum { SYNTH_NOTE_OPT_CODED = 1, SYNTH_NOTE_OPT_NAME_LINES = 8,
       SYNTH_NOTE_OPT_CONTRAST = 16, SYNTH_NOTE_OPT_CONTRAST_NAMES = 32 };
int synth_note_write_opt(const synth_note_context *ctx, int kind, int casing, uint64_t seed,
                         const synth_namelists *filler, int opts, synth_note *out, cf_err *err);

/* Name and place lists for random contexts. SYNTH_NAMES_LISTED reads the de-identifier's own
 * lists (rules folder: first_names.txt, last_names.txt, places.txt); SYNTH_NAMES_HELDOUT reads
 * its heldout/ folder, names the de-identifier never lists, so recall on unlisted names can be
 * measured. Only names of ASCII letters are used. */
enum { SYNTH_NAMES_LISTED = 0, SYNTH_NAMES_HELDOUT = 1 };
int synth_namelists_load(synth_namelists **out, const char *rules_dir, int which, cf_err *err);
void synth_namelists_free(synth_namelists *nl);
/* A random patient context: names, dates (1995-2030), age (a few over 89), hospital, ward,
 * address, phone, pager, MRN. */
void synth_context_random(const synth_namelists *nl, uint64_t seed, synth_note_context *ctx);

/* n notes as an annotated corpus (deid/deid_eval.h; free with deid_corpus_free via synth_notes_free):
 * kinds and casings cycle over the notes: half mixed case, a quarter each upper and lower case.
 * style is a set of SYNTH_GEN_* bits: SYNTH_GEN_HELDOUT_STYLE writes only SYNTH_NOTE_EVENT (the
 * held-apart style); SYNTH_GEN_ONE_CASE writes every note in one case, upper and lower
 * alternating by blocks of kinds (round 8: more distinct one-case training notes);
 * SYNTH_GEN_MESSAGE_STYLE writes only SYNTH_NOTE_MESSAGE (round 10 stress notes), in every casing;
 * SYNTH_GEN_SHORTLINE_STYLE writes only SYNTH_NOTE_SHORTLINE, every note in mixed case (round 13:
 * the casings are measured with deid-eval --case, so the three are the same notes);
 * SYNTH_GEN_LINES_STYLE writes only SYNTH_NOTE_LINES, in every casing (round 13 training notes);
 * SYNTH_GEN_CODED (with any other) opens about half the progress, discharge, social, therapy and
 * dictated notes with templated prose of coded findings (round 13 candidate material; off, every
 * note is what round 12 wrote). */
enum { SYNTH_GEN_HELDOUT_STYLE = 1, SYNTH_GEN_ONE_CASE = 2, SYNTH_GEN_MESSAGE_STYLE = 4, SYNTH_GEN_SHORTLINE_STYLE = 8,
       SYNTH_GEN_LINES_STYLE = 16, SYNTH_GEN_CODED = 32, /* 64 and 128: removed in session 18 */
       SYNTH_GEN_NAME_LINES = 256 /* SYNTH_NOTE_OPT_NAME_LINES (round 25) */,
       SYNTH_GEN_CONTRAST_LINES = 512 /* n / 8 more one-line SYNTH_NOTE_OPT_CONTRAST notes after the n (round 26) */,
       SYNTH_GEN_CONTRAST_NAMES = 1024 /* with CONTRAST_LINES: no given name in the pool, names in half the notes (round 27) */,
       SYNTH_GEN_CONTRAST_MIXED = 2048 /* with CONTRAST_LINES: every contrast note in mixed case (round 28 C4) */,
       SYNTH_GEN_CONTRAST_THIN = 4096 /* with CONTRAST_LINES: n / 16 contrast notes, not n / 8 (round 28 C5) */ };
typedef struct {
    deid_corpus corpus;
} synth_notes;
int synth_notes_generate_ex(synth_notes *out, const char *rules_dir, int which, int style, size_t n,
                            uint64_t seed, cf_err *err);
static inline int synth_notes_generate(synth_notes *out, const char *rules_dir, int which, size_t n, uint64_t seed,
                                       cf_err *err) {
    return synth_notes_generate_ex(out, rules_dir, which, 0, n, seed, err);
}
void synth_notes_free(synth_notes *s);

/* Writers in the layouts deid-eval reads: the presidio JSON array (positions in code points;
 * entity types are clinfm type names) and clinfm's inline phrase layout ("##RECORD id", PHI as
 * {{TYPE:phrase}}). A note whose text holds "{{" cannot be written inline (CF_EINPUT). */
int synth_notes_write_presidio(FILE *f, const deid_corpus *c, cf_err *err);
int synth_notes_write_phrase(FILE *f, const deid_corpus *c, cf_err *err);
/* The PhysioNet deid layout: a text file of records "START_OF_RECORD=1||||<n>||||" ... 
 * "||||END_OF_RECORD" (each note ends with a newline) and an annotation file of lines
 * "1 <n> <start> <end> <TYPE> <phrase>" (byte offsets, end exclusive; clinfm type names). */
int synth_notes_write_physionet(FILE *text, FILE *phi, const deid_corpus *c, cf_err *err);

#endif
