"""What the checks of data/deid's hand-written list sections share (check_keep_r32.py, check_post_r35.py):
reading a list file, cutting a file at its section header, the section's (or a draft's) categories, and the
check loop that drops refused entries. Run from the repository root; nothing here writes a file."""
import collections


def load(path):
    """A list's entries: each line's first tab field, case-folded; comments and blank lines skipped."""
    s = set()
    for ln in open(path, encoding='utf-8'):
        ln = ln.rstrip('\n')
        if not ln.strip() or ln.startswith('#'):
            continue
        s.add(ln.split('\t')[0].strip().casefold())
    return s


def read_lines(path):
    """The file's lines without the final newline; [] when the file is absent."""
    try:
        ls = open(path, encoding='utf-8').read().split('\n')
    except FileNotFoundError:
        return []
    if ls and ls[-1] == '':
        ls.pop()
    return ls


def split_section(lines, head):
    """(lines before the section header, the section from its header on); no header: (lines, [])."""
    if head in lines:
        i = lines.index(head)
        return lines[:i], lines[i:]
    return lines, []


def categories(section, sub, draft=None, split_words=False):
    """[(category, [entry...])] from the section's sub-headers, or from a draft ("## category" lines, then
    entries, a line each, or words when split_words), entries case-folded."""
    cats = []
    if draft:
        for ln in open(draft, encoding='utf-8'):
            ln = ln.strip()
            if ln.startswith('## '):
                cats.append((ln[3:].strip(), []))
            elif ln and not ln.startswith('#'):
                cats[-1][1].extend(t.casefold() for t in (ln.split() if split_words else [ln]))
        return cats
    for ln in section[1:]:
        if ln.startswith(sub):
            cats.append((ln[len(sub):], []))
        elif ln.strip() and not ln.startswith('#'):
            cats[-1][1].append(ln.casefold())
    return cats


def check(cats, reason):
    """Every entry through reason(entry, seen) (None: kept). Returns (kept per category [(category, [entry])],
    per category [(category, entries, kept)], refused counts per reason, refused entries per reason)."""
    refused = collections.Counter()
    refused_words = collections.defaultdict(list)
    seen = set()
    out, percat = [], []
    for cat, entries in cats:
        kept = []
        for e in entries:
            r = reason(e, seen)
            if r:
                refused[r] += 1
                refused_words[r].append(e)
                continue
            seen.add(e)
            kept.append(e)
        out.append((cat, kept))
        percat.append((cat, len(entries), len(kept)))
    return out, percat, refused, refused_words


def write_section(path, lines_before, head, comments, sub, out):
    """Writes path as lines_before, the section's header and comment lines, then each category's
    sub-header and kept entries (out: [(category, [entry...])], as check returns it)."""
    new = lines_before + [head] + comments
    for cat, kept in out:
        new.append(sub + cat)
        new.extend(kept)
    open(path, 'w', encoding='utf-8').write('\n'.join(new) + '\n')
    print('wrote', path)
