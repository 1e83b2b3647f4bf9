#!/usr/bin/env python3
"""Negative material for the de-identifier's clinical-content cost (bench/deid_eval_all.sh).

Writes corpora in clinfm's inline phrase layout (docs/DEID.md) into OUTDIR, read where the public
datasets are kept (CLINFM_DATA); nothing is copied into the repository:

  mimic_text.txt      distinct text fields of the MIMIC-IV demo (lab and item labels, drug and
                      medication names, organisms, tests, antibiotics, HCPCS descriptions), 20 a
                      record, one a line: no PHI (MIMIC replaces identifiers with "___")
  icd10cm.txt         ICD-10-CM long titles (terminology/), 20 a record: no PHI
  loinc_rxnorm.txt    LOINC and RxNorm concept names of the OMOP GiBleed vocabulary, 20 a record
  synthea_notes.txt   the Synthea Bulk Data notes with their known identifiers annotated: the
                      patient's names (Synthea writes them with digit suffixes, "Sumiko254") as
                      NAME and dates as DATE, so that what is removed outside them is the cost

For the label corpora (mimic_text, icd10cm, loinc_rxnorm) it also writes two fixed halves,
NAME.dev.txt and NAME.hold.txt: a line goes to the hold half when the first byte of the SHA-256
of its text is odd. The dev half is the one whose errors may be read while building; the hold
half is only scored (docs/DEID.md, round 9), so a figure on it is not a development figure.
The hold half is split again by the second byte of the digest (even: NAME.holdA.txt, odd:
NAME.holdB.txt): round 10 read hold-A's errors, hold-B's are never read (docs/DEID.md, round 10).

  python3 bench/deid_negative.py CLINFM_DATA OUTDIR
"""
import base64, csv, gzip, hashlib, io, json, os, re, sys

data, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
csv.field_size_limit(1 << 30)

def rows(path):
    op = gzip.open if path.endswith('.gz') else open
    with op(path, 'rt', encoding='utf-8', newline='') as f:
        yield from csv.DictReader(f)

def write_one(name, lines, per):
    with open(os.path.join(out, name), 'w', encoding='utf-8') as f:
        f.write('Negative material for the clinical-content cost (bench/deid_negative.py); no PHI.\n')
        for i in range(0, len(lines), per):
            f.write('##RECORD %s-%d\n' % (name.split('.')[0], i // per))
            for l in lines[i:i + per]:
                f.write(l.replace('{{', '{ {') + '\n')

def write_lines(name, lines, per=20):
    write_one(name, lines, per)
    base = name.split('.')[0]
    hold = [l for l in lines if hashlib.sha256(l.encode('utf-8')).digest()[0] & 1]
    dev = [l for l in lines if not hashlib.sha256(l.encode('utf-8')).digest()[0] & 1]
    write_one(base + '.dev.txt', dev, per)
    write_one(base + '.hold.txt', hold, per)
    # the hold half in two by the second byte of the same digest (round 10): hold-A's errors may
    # be read once the hold half's were never read before, hold-B is only scored at the end
    ha = [l for l in hold if not hashlib.sha256(l.encode('utf-8')).digest()[1] & 1]
    hb = [l for l in hold if hashlib.sha256(l.encode('utf-8')).digest()[1] & 1]
    write_one(base + '.holdA.txt', ha, per)
    write_one(base + '.holdB.txt', hb, per)

def clean(s):
    s = (s or '').strip()
    return re.sub(r'\s+', ' ', s)

m = os.path.join(data, 'mimic-iv-demo')
seen = set()
def take(path, cols):
    if not os.path.exists(path):
        return
    for r in rows(path):
        for c in cols:
            v = clean(r.get(c))
            if v and v not in seen and '___' not in v:
                seen.add(v)
take(os.path.join(m, 'hosp', 'd_labitems.csv.gz'), ['label', 'fluid', 'category'])
take(os.path.join(m, 'icu', 'd_items.csv.gz'), ['label', 'abbreviation', 'category'])
take(os.path.join(m, 'hosp', 'prescriptions.csv.gz'), ['drug'])
take(os.path.join(m, 'hosp', 'pharmacy.csv.gz'), ['medication'])
take(os.path.join(m, 'hosp', 'emar.csv.gz'), ['medication'])
take(os.path.join(m, 'hosp', 'microbiologyevents.csv.gz'), ['org_name', 'test_name', 'ab_name', 'spec_type_desc'])
take(os.path.join(m, 'hosp', 'd_hcpcs.csv.gz'), ['long_description', 'short_description'])
write_lines('mimic_text.txt', sorted(seen))

icd = [clean(r['long']) for r in rows(os.path.join(data, 'terminology', 'icd10cm-order-Jan-2021.csv.gz'))]
write_lines('icd10cm.txt', icd)

lr = set()
for r in rows(os.path.join(data, 'omop-gibleed', 'CONCEPT.csv')):
    if r['VOCABULARY_ID'] in ('LOINC', 'RxNorm'):
        lr.add(clean(r['CONCEPT_NAME']))
write_lines('loinc_rxnorm.txt', sorted(lr))

bulk = os.path.join(data, 'synthea-bulk-ndjson')
names = {}
for l in open(os.path.join(bulk, 'Patient.000.ndjson'), encoding='utf-8'):
    if l.strip():
        p = json.loads(l)
        ws = set()
        for n in p.get('name', []):
            for g in n.get('given', []) + [n.get('family', '')] + n.get('prefix', []) * 0:
                g = re.sub(r'\d+', '', g or '')
                for t in re.split(r"[\s\-]+", g):
                    if len(t) >= 2:
                        ws.add(t.lower())
        names[p['id']] = ws
DATE = re.compile(r'\b(\d{4}-\d{2}-\d{2}(?:T[\d:.+\-Z]+)?|\d{1,2}/\d{1,2}/\d{2,4})\b')
with open(os.path.join(out, 'synthea_notes.txt'), 'w', encoding='utf-8') as f:
    f.write('Synthea Bulk notes with their known identifiers annotated (bench/deid_negative.py).\n')
    for i, l in enumerate(open(os.path.join(bulk, 'DocumentReference.000.ndjson'), encoding='utf-8')):
        if not l.strip():
            continue
        r = json.loads(l)
        ws = names.get(r['subject']['reference'].split('/')[-1], set())
        for c in r['content']:
            t = base64.b64decode(c['attachment']['data']).decode('utf-8').replace('{{', '{ {')
            # annotate the patient's name words (with any digit suffix) and dates
            def word(mo):
                w = mo.group(0)
                return '{{NAME:%s}}' % w if re.sub(r'\d+$', '', w).lower() in ws else w
            t = DATE.sub(lambda mo: '{{DATE:%s}}' % mo.group(0), t)
            parts = re.split(r'(\{\{[^}]*\}\})', t)
            t = ''.join(p if p.startswith('{{') else re.sub(r"[A-Za-z][A-Za-z'\-]*\d*", word, p) for p in parts)
            f.write('##RECORD synthea-%d\n%s\n' % (i, t))
print('negative material written to', out, file=sys.stderr)
