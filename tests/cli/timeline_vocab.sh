#!/usr/bin/env bash
# `clinfm vocab` and `clinfm tokens` on the bundled MIMIC-IV demo, checked independently in
# Python: the keyed split (hashlib.blake2b with the documented default key), the vocabulary
# file format and its hash (docs/TIMELINE.md), train-only code counts and decile cut points
# recomputed from the MEDS CSV export, the shard files' subjects per split, special tokens
# against the source events, determinism, and damage detection.
set -euo pipefail
. tests/cli/lib.sh
need_data MIMIC mimic-iv-demo
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
if ! "$CLINFM" vocab --help > /dev/null 2>&1; then
  echo "the vocab command is not wired into src/cli/main.c"; exit 1
fi
"$CLINFM" ingest --mapping mappings/mimic-iv.map --input "$MIMIC" --out "$T/m.store" --quiet
"$CLINFM" export --format meds-csv "$T/m.store" --out "$T/meds" > /dev/null
"$CLINFM" vocab --store "$T/m.store" --out "$T/m.vocab" --shards "$T/shards" --json > "$T/vocab.json"
# Same input, same bytes.
"$CLINFM" vocab --store "$T/m.store" --out "$T/m2.vocab" --no-baselines > /dev/null
cmp "$T/m.vocab" "$T/m2.vocab" || { echo "vocabulary differs between two runs"; exit 1; }
# One subject's tokens (the first subject of the export).
SUBJ=$(sed -n 2p "$T/meds/data.csv" | cut -d, -f1)
"$CLINFM" tokens --store "$T/m.store" --vocab "$T/m.vocab" --subject "$SUBJ" > "$T/tokens.txt"
# Usage errors.
if "$CLINFM" vocab --store "$T/m.store" > /dev/null 2>&1; then echo "vocab without --out succeeded"; exit 1; fi
if "$CLINFM" tokens --store "$T/m.store" --vocab "$T/m.vocab" --subject 1 > /dev/null 2>&1; then
  echo "tokens for a missing subject succeeded"; exit 1; fi
# A damaged vocabulary is refused with a message, not used.
cp "$T/m.vocab" "$T/bad.vocab"
printf '\x55' | dd of="$T/bad.vocab" bs=1 seek=5000 conv=notrunc status=none
if "$CLINFM" tokens --store "$T/m.store" --vocab "$T/bad.vocab" --subject "$SUBJ" > /dev/null 2> "$T/bad.err"; then
  echo "a damaged vocabulary was accepted"; exit 1; fi
grep -q damaged "$T/bad.err" || { echo "damage message missing"; cat "$T/bad.err"; exit 1; }

/usr/bin/python3 - "$T" "$SUBJ" <<'PY'
import collections, csv, datetime, hashlib, json, math, struct, sys
T, SUBJ = sys.argv[1], int(sys.argv[2])
fails = []
def check(what, got, want):
    if got != want:
        fails.append(f"{what}: got {got}, want {want}")

# The split, from its definition: BLAKE2b-64 of the id (8 bytes LE) keyed with the default key
# (BLAKE2b-256 of "clinfm default split key v1"), as LE uint64, mod 1e6, vs 800000 / 900000.
key = hashlib.blake2b(b"clinfm default split key v1", digest_size=32).digest()
def split(sid):
    h = hashlib.blake2b(struct.pack("<q", sid), digest_size=8, key=key).digest()
    b = struct.unpack("<Q", h)[0] % 1000000
    return "train" if b < 800000 else "tuning" if b < 900000 else "held_out"

def us(iso):  # an ISO 8601 UTC time of the export as microseconds since 1970
    t = datetime.datetime.fromisoformat(iso.rstrip("Z")).replace(tzinfo=datetime.timezone.utc)
    return (t - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(microseconds=1)

events = []
with open(f"{T}/meds/data.csv", newline="") as f:
    for r in csv.DictReader(f):
        events.append((int(r["subject_id"]), r["time"], r["code"], r["numeric_value"]))
subjects = sorted({e[0] for e in events})
part = {s: split(s) for s in subjects}
v = json.load(open(f"{T}/vocab.json"))
for p in ("train", "tuning", "held_out"):
    n = sum(1 for s in subjects if part[s] == p)
    check(f"{p} subjects (baseline table)", v["splits"][p]["subjects"], n)
    check(f"{p} subjects (shard)", v["shards"][p]["subjects"], n)
    check(f"{p} tokens: shard == baseline", v["shards"][p]["tokens"], v["splits"][p]["tokens"])
check("train subjects", v["train_subjects"], sum(1 for s in subjects if part[s] == "train"))
check("train events", v["train_events"], sum(1 for e in events if part[e[0]] == "train"))
for p in ("tuning", "held_out"):
    if not v["splits"][p]["bigram_loss"] < v["splits"][p]["unigram_loss"]:
        fails.append(f"{p}: bigram loss not below unigram")

# The vocabulary file, parsed from its documented layout.
data = open(f"{T}/m.vocab", "rb").read()
check("magic", data[:8], b"CLINFMVC")
(version, hdr, flags, ruleset, n_tok, n_cut, heap_len) = struct.unpack_from("<7I", data, 8)
check("version", version, 1)
check("hash", hashlib.blake2b(data[:224] + data[256:], digest_size=32).hexdigest(), v["hash"])
check("hash field", data[224:256].hex(), v["hash"])
check("tokens", n_tok, v["tokens"])
min_count, min_numeric = struct.unpack_from("<2I", data, 36)
recs = [struct.unpack_from("<B3xIIIqqQ", data, 256 + 40 * i) for i in range(n_tok)]
cuts_at = 256 + 40 * n_tok
cuts = struct.unpack_from(f"<{9 * n_cut}f", data, cuts_at)
heap = data[cuts_at + 36 * n_cut:]
check("heap size", len(heap), heap_len)
names = [heap[o:o + l].decode() for (_, o, l, _, _, _, _) in recs]
check("special tokens", names[:8], ["[PAD]", "[EOT]", "[UNK]", "[ADMISSION_START]", "[ADMISSION_END]",
                                     "[ICU_START]", "[ICU_END]", "[DEATH]"])
check("unique strings", len(set(names)), n_tok)

# Code tokens and deciles: recomputed from train events only.
train_count, train_values = {}, {}
for (s, t, code, x) in events:
    if part[s] != "train":
        continue
    train_count[code] = train_count.get(code, 0) + 1
    if x != "" and math.isfinite(float(x)):
        train_values.setdefault(code, []).append(struct.unpack("<f", struct.pack("<f", float(x)))[0])
checked_cuts = 0
for (kind, o, l, cs, a0, a1, count), name in zip(recs, names):
    if kind != 8:  # whole code tokens
        continue
    check(f"train count of a code token", count, train_count.get(name, 0))
    if count < min_count:
        fails.append("a code below --min-count has a token")
    vals = sorted(train_values.get(name, []))
    if len(vals) >= min_numeric:
        want = [vals[math.ceil(j * len(vals) / 10) - 1] for j in range(1, 10)]
        got = list(cuts[9 * cs: 9 * cs + 9]) if cs != 0xFFFFFFFF else None
        check("cut points of a code", got, want)
        checked_cuts += 1
    else:
        check("no cut points for a code with few values", cs, 0xFFFFFFFF)
if checked_cuts < 50:
    fails.append(f"only {checked_cuts} codes with cut points checked")
# Frequent train codes of an ordinary namespace have tokens; codes seen only outside train do not.
outside = {e[2] for e in events if part[e[0]] != "train"} - set(train_count)
for code in outside:
    if code in names:
        fails.append("a code never seen in train has a token")
if not outside:
    fails.append("expected some codes seen only outside train in the demo")

# The printed subject: split, prefix, special tokens against its source events.
lines = open(f"{T}/tokens.txt").read().splitlines()
if not lines[0].startswith(f"subject {SUBJ}:") or not lines[0].endswith(f"split {part[SUBJ]}"):
    fails.append(f"header line: {lines[0]}")
toks = " ".join(lines[2:]).split()
mine = [e for e in events if e[0] == SUBJ]
check("[ADMISSION_START] tokens", toks.count("[ADMISSION_START]"),
      sum(1 for e in mine if e[2].startswith("HOSPITAL_ADMISSION//")))
check("[ICU_START] tokens", toks.count("[ICU_START]"), sum(1 for e in mine if e[2].startswith("ICU_ADMISSION//")))
check("[DEATH] tokens", toks.count("[DEATH]"), sum(1 for e in mine if e[2] == "MEDS_DEATH"))
check("[EOT] tokens", toks.count("[EOT]"), 1)
gender = [e[2] for e in mine if e[1] == "" and e[2].startswith("GENDER//")]
if not lines[1].split()[1] == gender[0]:
    fails.append(f"prefix does not start with the subject's sex: {lines[1]}")

# Shards: header, subjects by split, token counts.
for p in ("train", "tuning", "held_out"):
    d = open(f"{T}/shards/{p}.tokens", "rb").read()
    check(f"{p} shard magic", d[:8], b"CLINFMTK")
    (sp, tb, ns, nt) = struct.unpack_from("<IIQQ", d, 16)
    check(f"{p} shard vocab hash", d[40:72].hex(), v["hash"])
    check(f"{p} shard header hash", hashlib.blake2b(d[:224], digest_size=32).digest(), d[224:256])
    so, to = struct.unpack_from("<QQ", d, 88)
    ids = [struct.unpack_from("<q", d, so + 32 * i)[0] for i in range(ns)]
    check(f"{p} shard subjects", ids, [s for s in subjects if part[s] == p])
    check(f"{p} shard token width", tb, 2)
    toks_p = struct.unpack_from(f"<{nt}H", d, to)
    if max(toks_p) >= n_tok:
        fails.append(f"{p} shard has a token outside the vocabulary")
    # Version 3 times and values, decoded from the format's description (docs/TIMELINE.md):
    # every block uses exactly its bytes, and each subject's token times are its own event
    # times, in order, its [EOT] at its last event; no more tokens carry a value than it has
    # numeric events.
    check(f"{p} shard version", struct.unpack_from("<I", d, 8)[0], 3)
    (io,) = struct.unpack_from("<Q", d, 104)
    (blk,) = struct.unpack_from("<I", d, 220)
    nb = (nt + blk - 1) // blk
    do = (io + nb * 16 + 63) // 64 * 64
    offs = [struct.unpack_from("<Q", d, io + 16 * b)[0] for b in range(nb)] + [len(d) - do]
    times, nvals = [], 0
    for b in range(nb):
        n = min(blk, nt - b * blk)
        q, end = do + offs[b], do + offs[b + 1]
        unit = [60 * 10**6, 10**6, 1][d[q]]
        tm, vm = d[q + 1:q + 1 + (n + 7) // 8], None
        q += 1 + (n + 7) // 8
        def varint():
            global q
            x, sh = 0, 0
            while True:
                c = d[q]; q += 1
                x |= (c & 0x7f) << sh; sh += 7
                if c < 0x80: return x
        t = struct.unpack_from("<q", d, io + 16 * b + 8)[0]
        for j in range(n):
            if j and tm[j // 8] >> (j % 8) & 1:
                x = varint()
                if x & 1:
                    z = varint()
                    t += (z >> 1) ^ -(z & 1)
                else:
                    t += (x >> 1) * unit
            times.append(t)
        vm = d[q:q + (n + 7) // 8]
        q += (n + 7) // 8
        k = sum(bin(c).count("1") for c in vm)
        nvals += k
        q += 4 * k
        if q != end:
            fails.append(f"{p} shard block {b} does not use exactly its bytes")
            break
    numeric = collections.Counter()
    ev_times = collections.defaultdict(set)
    for (s, t, code, x) in events:
        if part[s] == p and t and code != "MEDS_BIRTH":
            ev_times[s].add(us(t))
        if part[s] == p and x:
            numeric[s] += 1
    if nvals > sum(numeric.values()):
        fails.append(f"{p} shard: {nvals} values, more than its {sum(numeric.values())} numeric events")
    for i in range(ns):
        sid, first, ntk, npre = struct.unpack_from("<qQII", d, so + 32 * i)
        st = times[first + npre:first + ntk]
        if st != sorted(st) or not set(st) <= ev_times[sid] or (ev_times[sid] and st[-1] != max(ev_times[sid])):
            fails.append(f"{p} shard: subject {sid}'s token times are not its event times")
            break
if fails:
    print("\n".join(fails)); sys.exit(1)
print(f"timeline checks passed ({checked_cuts} codes' cut points recomputed)")
PY
