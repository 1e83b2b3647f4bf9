#!/usr/bin/env python3
"""Round 32 keep-list check, round 33: the section is its own file, clinical_keep_extra.txt (round 34: words read
only by the keep filter after the model, with no list flag). Usage (from the repository root):
  python3 data/deid/derive/check_keep_r32.py                  # check clinical_keep_extra.txt; exit 1 if any refused
  python3 data/deid/derive/check_keep_r32.py --build DRAFT -v  # how the section was written: a draft ("## category" lines,
                                                               # then words), refused entries dropped, written as the file
An entry is refused if: characters other than [a-z0-9'-] or starts/ends with ' or -; in clinical_keep.txt (a word
in both files would count as clinical_keep.txt's; none may be); whole line (case-folded, first tab field, comments
skipped) of a name/place list; or a repeat within the section. The file's lines before the section's header must be
comments."""
import os, re, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from listcheck import load, read_lines, split_section, categories, check, write_section

def build_mode():
    return '--build' in sys.argv
D = 'data/deid/'
KEEP = D + 'clinical_keep.txt'
EXTRA = D + 'clinical_keep_extra.txt'
LISTS = ['first_names.txt', 'last_names.txt', 'places.txt', 'regions.txt',
         'heldout/first_names.txt', 'heldout/last_names.txt', 'heldout/places.txt']
HEAD = '# -- round 32 (written for clinfm): unlisted nursing and ICU vocabulary, by category'
SUB = '# -- round 32: '
OK = re.compile(r"^[a-z0-9](?:[a-z0-9'-]*[a-z0-9])?$")

keep_lines = read_lines(KEEP)
if HEAD in keep_lines:
    sys.exit('clinical_keep.txt holds the round 32 section: it belongs in clinical_keep_extra.txt')
keep_other = {l.strip().casefold() for l in keep_lines if l.strip() and not l.startswith('#')}
lines = read_lines(EXTRA)
before, section = split_section(lines, HEAD)
if not build_mode() and any(l.strip() and not l.startswith('#') for l in before):
    sys.exit('clinical_keep_extra.txt: entries before the section header')
names = {}
for f in LISTS:
    names[f] = load(D + f)

def reason(w, seen):
    if not OK.match(w):
        return 'characters'
    if w in keep_other:
        return 'in clinical_keep.txt'
    for f in LISTS:
        if w in names[f]:
            return 'in ' + f
    if w in seen:
        return 'duplicate within the section'
    return None

build = build_mode()
cats = categories(section, SUB, sys.argv[sys.argv.index('--build') + 1] if build else None, split_words=True)
out, percat, refused, refused_words = check(cats, reason)

for cat, n, k in percat:
    print(f'{k:5d} kept of {n:5d}  {cat}')
print(f'{sum(k for _,_,k in percat):5d} kept of {sum(n for _,n,_ in percat):5d}  total')
for r, n in sorted(refused.items()):
    print(f'refused {n:4d}: {r}')
if '-v' in sys.argv:
    for r, ws in refused_words.items():
        print(r + ':', ' '.join(ws))
if build:
    write_section(EXTRA, [l for l in before if l.startswith('#')], HEAD, [
        '# Written by hand from clinical knowledge (devices and brands, dressings and skin care, positioning',
        '# and mobility, charting jargon and abbreviations, services, procedures, ICU, OB and NICU shorthand);',
        '# none is in a name, place or region list (checked case-folded by a script).'], SUB, out)
else:
    sys.exit(1 if refused else 0)
