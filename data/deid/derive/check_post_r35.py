#!/usr/bin/env python3
"""Round 35 check of clinical_keep_post.txt's new section (clinical phrases holding a word of the name or place
lists, read only by the keep filter after the model; docs/DEID.md "Round 35"). Usage (from the repository root):
  python3 data/deid/derive/check_post_r35.py                  # check the section; exit 1 if any entry is refused
  python3 data/deid/derive/check_post_r35.py --build DRAFT -v  # how the section was written: a draft ("## category"
                                                               # lines, then one phrase a line), refused entries
                                                               # dropped, appended to the file as the section
An entry is refused if: fewer than two words (split at spaces and hyphens: "swan-ganz" is two); characters other than [a-z0-9' -], or not single-spaced; already in
clinical_keep_post.txt before the section; no word (case-folded; also with "'s"/"'" dropped and split at "-") that is
a whole line (first tab field) of first_names.txt, last_names.txt or places.txt, or of english_words.txt; or a repeat
within the section. Counts per category say how many hold a name/place word and how many an English word only."""
import collections, os, re, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from listcheck import load, read_lines, split_section, categories, check, write_section

D = 'data/deid/'
POST = D + 'clinical_keep_post.txt'
LISTS = ['first_names.txt', 'last_names.txt', 'places.txt']
ENGLISH = 'english_words.txt'
HEAD = '# -- round 35 (written for clinfm): clinical phrases that hold a word of the name or place lists'
SUB = '# -- round 35: '
OK = re.compile(r"^[a-z0-9](?:[a-z0-9' -]*[a-z0-9'])?$")

lines = read_lines(POST)
before, section = split_section(lines, HEAD)
existing = {l.strip().casefold() for l in before if l.strip() and not l.startswith('#')}
namewords = set()
for f in LISTS:
    namewords |= load(D + f)
english = load(D + ENGLISH)

def forms(w):
    out = {w}
    for v in list(out):
        if v.endswith("'s"):
            out.add(v[:-2])
        out.add(v.replace("'", ''))
    for v in list(out):
        out.update(p for p in v.split('-') if p)
    return out

def qualifying(e):
    ws = e.split(' ')
    if any(f in namewords for w in ws for f in forms(w)):
        return 'name'
    # a multi-word place line inside the entry counts as a name/place word
    for a in range(len(ws)):
        for b in range(a + 2, len(ws) + 1):
            if ' '.join(ws[a:b]) in namewords:
                return 'name'
    if any(f in english for w in ws for f in forms(w)):
        return 'english'
    return None

def reason(e, seen):
    if not OK.match(e) or e != ' '.join(e.split()):
        return 'characters or spacing'
    if len(re.split(r'[ -]', e)) < 2:
        return 'fewer than two words'
    if e in existing:
        return 'already in clinical_keep_post.txt'
    if qualifying(e) is None:
        return 'no name, place or English word'
    if e in seen:
        return 'duplicate within the section'
    return None

build = '--build' in sys.argv
cats = categories(section, SUB, sys.argv[sys.argv.index('--build') + 1] if build else None)
out, counts, refused, refused_words = check(cats, reason)
percat = []
for (cat, kept), (_, n, k) in zip(out, counts):
    q = collections.Counter(qualifying(e) for e in kept)
    percat.append((cat, n, k, q['name'], q['english']))

for cat, n, k, qn, qe in percat:
    print(f'{k:5d} kept of {n:5d} ({qn} with a name/place word, {qe} an English word only)  {cat}')
print(f'{sum(p[2] for p in percat):5d} kept of {sum(p[1] for p in percat):5d} '
      f'({sum(p[3] for p in percat)} name/place, {sum(p[4] for p in percat)} English only)  total')
for r in ['characters or spacing', 'fewer than two words', 'already in clinical_keep_post.txt',
          'no name, place or English word', 'duplicate within the section']:
    print(f'refused {refused[r]:4d}: {r}')
if '-v' in sys.argv:
    for r, ws in refused_words.items():
        print(r + ': ' + ' | '.join(ws))
    if '-vv' in sys.argv:
        print('English only: ' + ' | '.join(e for _, ks in out for e in ks if qualifying(e) == 'english'))
if build and '--dry' not in sys.argv:
    write_section(POST, before, HEAD, [
        '# Written by hand from clinical knowledge, without reading any shorthand, prose, presidio or error file:',
        '# fixed clinical phrases of US ICU and ward nursing, respiratory and progress notes, two words or more,',
        '# each holding a word of first_names.txt, last_names.txt or places.txt or a common English word (checked',
        '# by data/deid/derive/check_post_r35.py). None is a person\'s full name alone.'], SUB, out)
sys.exit(1 if (refused and not build) else 0)
