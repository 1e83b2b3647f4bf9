#!/usr/bin/env bash
# How clinfm grows with the data: the MIMIC-IV demo replicated into distinct patients (1x, 10x,
# 100x by default; bench/scale_bench.py replicate) through every stage a hospital runs before
# training, and the start of training itself:
#   ingest, inspect --json, deid, vocab --shards (the preparation: vocabulary, token shards,
#   baselines), train start-up on the prepared store (to the "model:" line, printed just before
#   step 1: the first train, which also keeps the bundle's split record beside the preparation,
#   and a second, as every later run starts), a training run's held-out evaluation with its
#   default budget, and the whole held-out split (`train --resume --held-out-batches 0` on the
#   finished model).
# Per stage: wall seconds, events/s, CPU use, peak RSS, the temporary-disk high-water mark (files
# the stage holds open for writing, output included, over the output's final size) and the
# output's bytes per event. Ratios against references measured in the same run: events/s
# against 1x (linear scaling is 1.00), start-up on a prepared store against the preparation it
# skips, the budgeted held-out evaluation against the full one. It is a benchmark, not a test.
#
#   bash bench/scale_bench.sh                      # SCALES="1 10 100"
#   SCALES="1 10" CLINFM=build/clinfm SCALE_DIR=/tmp/clinfm-scale bash bench/scale_bench.sh
#   CLINFM_REF=/path/to/other/clinfm bash bench/scale_bench.sh   # also the same table for it
#   STAGES=ingest INGEST_ARGS="--threads 1" bash bench/scale_bench.sh  # ingest alone; extra ingest
#                                                  # options for $CLINFM (not for the reference)
# The replicated demos are kept in SCALE_DIR (default /tmp/clinfm-scale: about 25 MB per 1x,
# compressed) for the next run; the stores and shards are removed at the end. On a 2-core machine
# shared with other work, the 100x pass takes about 3-5 minutes; figures name the load.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALES=${SCALES:-1 10 100}
CLINFM=${CLINFM:-build/clinfm}
SCALE_DIR=${SCALE_DIR:-/tmp/clinfm-scale}
STAGES=${STAGES:-all}
read -r -a INGEST_EXTRA <<< "${INGEST_ARGS:-}"
[ -x "$CLINFM" ] || make --no-print-directory all BUILD="$(dirname "$CLINFM")" > /dev/null
. bench/lib.sh
MIMIC=$(bench_data mimic-iv-demo)
PY=/usr/bin/python3
H=bench/scale_bench.py
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$SCALE_DIR"
printf 'clinfm-deid-key v1\n%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > "$W/k.key"
# A small model: the point is what happens around the steps, not the steps.
MODEL=(--layers 2 --d-model 64 --heads 2 --context 128 --batch 8 --seed 1 --dropout 0)

# run TAG [--until REGEX] -- CMD...: measured under nice; result in $W/TAG.json
run() { local tag=$1; shift; nice "$PY" "$H" run "$W/$tag.json" "$W/$tag.log" "$@"; }
field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d; [v:=v[k] for k in sys.argv[2:]]; print(v)' "$@"; }
size() { stat -c %s "$@" | awk '{s += $1} END {print s}'; }

bench_machine
echo "clinfm: $CLINFM${INGEST_ARGS:+ (ingest $INGEST_ARGS)}${CLINFM_REF:+, reference: $CLINFM_REF}; scales: $SCALES; stages: $STAGES; model: ${MODEL[*]}"
rows="$W/rows.tsv"
: > "$rows"

one_binary() { # LABEL BINARY [INGEST OPTIONS...]
  local label=$1 bin=$2
  shift 2
  for R in $SCALES; do
    local src=$SCALE_DIR/mimic-x$R
    if [ "$R" -eq 1 ]; then src=$MIMIC
    elif [ ! -f "$src/.done" ]; then
      rm -rf "$src"
      nice "$PY" "$H" replicate "$MIMIC" mappings/mimic-iv.map "$src" "$R"
      touch "$src/.done"
    fi
    local d=$W/x$R
    rm -rf "$d"; mkdir -p "$d"
    run ingest -- "$bin" ingest --mapping mappings/mimic-iv.map --input "$src" --out "$d/m.store" --quiet "$@"
    local ev
    ev=$("$bin" inspect "$d/m.store" --json | field /dev/stdin events)
    if [ "$STAGES" = ingest ]; then
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$R" ingest "$ev" "$(field "$W/ingest.json" wall)" \
        "$(field "$W/ingest.json" cpu)" "$(field "$W/ingest.json" rss_kb)" "$(field "$W/ingest.json" temp_hw)" \
        "$(size "$d/m.store")" "$(field "$W/ingest.json" until)" >> "$rows"
      echo "  $label ${R}x done ($(uptime | sed 's/.*load average: //'))" >&2
      rm -rf "$d"
      continue
    fi
    run inspect -- "$bin" inspect "$d/m.store" --json
    run deid -- "$bin" deid "$d/m.store" --out "$d/d.store" --key "$W/k.key" --quiet
    run prepare -- "$bin" vocab --store "$d/d.store" --out "$d/v.bin" --shards "$d/prep"
    # The first train on vocab's preparation also records the bundle's split record beside it;
    # every later run (another model, a resume, an evaluation) starts like the second.
    run startup1 --until '^model:' -- "$bin" train --store "$d/d.store" --shards "$d/prep" --out "$d/m" "${MODEL[@]}" \
      --steps 2 --eval-every 2
    run startup --until '^model:' -- "$bin" train --store "$d/d.store" --shards "$d/prep" --out "$d/m2" "${MODEL[@]}" \
      --steps 1
    grep -q "reusing the preparation" "$W/startup.log" || echo "  ($label ${R}x: train did not reuse the preparation)"
    run heldfull -- "$bin" train --store "$d/d.store" --shards "$d/prep" --out "$d/m" --resume --held-out-batches 0
    run heldbudget -- "$bin" train --store "$d/d.store" --shards "$d/prep" --out "$d/m" --resume
    local storeb deidb shardb
    storeb=$(size "$d/m.store"); deidb=$(size "$d/d.store"); shardb=$(size "$d/prep"/*.tokens)
    for st in ingest inspect deid prepare startup1 startup heldbudget heldfull; do
      local out=0
      case $st in ingest) out=$storeb ;; deid) out=$deidb ;; prepare) out=$shardb ;; esac
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$R" "$st" "$ev" "$(field "$W/$st.json" wall)" \
        "$(field "$W/$st.json" cpu)" "$(field "$W/$st.json" rss_kb)" "$(field "$W/$st.json" temp_hw)" "$out" \
        "$(field "$W/$st.json" until)" >> "$rows"
    done
    echo "  $label ${R}x done ($(uptime | sed 's/.*load average: //'))" >&2
    rm -rf "$d"
  done
}

one_binary clinfm "$CLINFM" "${INGEST_EXTRA[@]}"
[ -n "${CLINFM_REF:-}" ] && one_binary reference "$CLINFM_REF"

"$PY" - "$rows" << 'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
names = {"ingest": "ingest", "inspect": "inspect --json", "deid": "deid", "prepare": "vocab --shards (prepare)",
         "startup1": "train start-up, 1st run", "startup": "train start-up, prepared", "heldbudget": "held-out eval, budget", "heldfull": "held-out eval, all"}
by = {(r[0], int(r[1]), r[2]): r for r in rows}
print(f"\n{'binary':<10} {'scale':>5} {'stage':<26} {'events':>11} {'wall s':>8} {'M ev/s':>8} {'vs 1x':>6} {'CPU %':>6} "
      f"{'RSS MiB':>8} {'temp HW':>9} {'B/event':>8}")
for r in rows:
    label, R, st, ev, wall, cpu, rss, hw, out, until = r[0], int(r[1]), r[2], int(r[3]), float(r[4]), float(r[5]), \
        int(r[6]), int(r[7]), int(r[8]), r[9]
    t = float(until) if st.startswith("startup") and until != "None" else wall
    rate = ev / t / 1e6 if st in ("ingest", "inspect", "deid", "prepare") else None
    base = by.get((label, 1, st))
    vs = ""
    if rate and base and R != 1:
        b = int(base[3]) / float(base[4]) / 1e6
        vs = f"{rate / b:.2f}"
    hwx = f"{hw / out:.2f}x" if out and hw else (f"{hw / 2**20:.1f} MiB" if hw else "-")
    bpe = f"{out / ev:.1f}" if out else "-"
    print(f"{label:<10} {R:>4}x {names[st]:<26} {ev:>11,} {t:>8.2f} {rate if rate else 0:>8.2f} {vs:>6} "
          f"{100 * float(cpu) / wall:>6.0f} {rss / 1024:>8.0f} {hwx:>9} {bpe:>8}")
print("\nratios measured in this run:")
for (label, R, st), r in sorted(by.items()):
    if st != "startup" or (label, R, "prepare") not in by:
        continue
    up = float(r[9]) if r[9] != "None" else float(r[4])
    prep = float(by[(label, R, "prepare")][4])
    full, budget = float(by[(label, R, "heldfull")][4]), float(by[(label, R, "heldbudget")][4])
    print(f"  {label} {R}x: start-up on the prepared store {up:.2f} s against {prep:.2f} s to prepare it "
          f"({prep / up:.0f}x); held-out evaluation run, budget {budget:.2f} s against all windows {full:.2f} s "
          f"({full / budget:.1f}x)")
print("(start-up: seconds to the \"model:\" line; the held-out runs are whole `train --resume` runs on the finished "
      "model, start-up included. temp HW: the largest disk held by files the stage had open for writing, over its "
      "output's size)")
PY
