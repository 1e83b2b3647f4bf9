#!/usr/bin/env bash
# Data-parallel training over MPI on generated patients (`clinfm synth`, no data directory needed): 2 ranks with --batch B train like one
# process with --batch 2B (same per-step losses and final parameters to float rounding); rank 1
# prints and writes nothing; a run interrupted and resumed under mpirun ends bit-identical to
# one run straight through (dropout on, so the per-rank RNG state must survive); ranks started
# with different options stop with a message instead of hanging; a rank that does not see rank
# 0's files receives them (tests/cli/train_mpi_netns.sh: two hosts that share no filesystem). Skips only when mpirun is absent (scripts/deps.sh installs openmpi-bin).
set -uo pipefail
command -v mpirun > /dev/null || { echo "SKIP: mpirun is not installed (scripts/deps.sh installs openmpi-bin)"; exit 0; }
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
ROOT=$(pwd)
fail=0
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# ASan build: Open MPI's own allocations live until exit; they are suppressed by library (their
# frames are found only by the slow unwinder). clinfm's own leaks are still reported.
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan_openmpi.supp:print_suppressions=0"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
MPI=(timeout 120 mpirun -np 2 --oversubscribe)

"$CLINFM" synth --patients 80 --seed 3 --truth-paths 0 --quiet --out "$T/syn" || exit 1
"$CLINFM" ingest --format fhir --input "$T/syn/fhir" --out "$T/m.store" --quiet || exit 1
printf 'clinfm-deid-key v1\n%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > "$T/k.key"
"$CLINFM" deid "$T/m.store" --out "$T/d.store" --key "$T/k.key" --quiet || exit 1
mkdir -p "$T/one" "$T/two"
A=(--store "$T/d.store" --steps 6 --eval-every 1 --warmup 2 --layers 2 --d-model 32 --heads 2 --context 64
   --lr 2e-3 --eval-batches 2 --dropout 0 --seed 5)

# (a) one process, batch 4; (b) two ranks, batch 2 each.
"$CLINFM" train "${A[@]}" --batch 4 --threads 1 --out "$T/one/m.ckpt" > "$T/one.log" || { cat "$T/one.log"; exit 1; }
"${MPI[@]}" --output-filename "$T/ranks" "$CLINFM" train "${A[@]}" --batch 2 --out "$T/two/m.ckpt" > "$T/two.log" 2> "$T/two.err" \
  || { echo "mpirun training failed"; cat "$T/two.log" "$T/two.err"; exit 1; }
grep -q "data-parallel: 2 ranks" "$T/two.log" || { echo "2-rank run not announced"; fail=1; }
[ "$(grep -c '^model:' "$T/two.log")" -eq 1 ] || { echo "more than one rank printed"; fail=1; }
for f in stdout stderr; do
  [ -f "$T/ranks/1/rank.1/$f" ] || { echo "mpirun kept no $f of rank 1"; fail=1; continue; }
  [ -s "$T/ranks/1/rank.1/$f" ] && { echo "rank 1 wrote to $f: $(head -3 "$T/ranks/1/rank.1/$f")"; fail=1; }
done
# The same files as one process, and nothing else (no second copy, no temporary left behind).
(cd "$T/one" && find . | sort) > "$T/one.files"
(cd "$T/two" && find . | sort) > "$T/two.files"
cmp -s "$T/one.files" "$T/two.files" || { echo "files differ:"; diff "$T/one.files" "$T/two.files"; fail=1; }

/usr/bin/python3 - "$T/one.log" "$T/two.log" "$T/one/m.ckpt/checkpoint.bin" "$T/two/m.ckpt/checkpoint.bin" "$T/two/m.ckpt/train.json" <<'PY' || fail=1
import array, json, re, struct, sys
def losses(path):
    text = open(path).read()
    steps = [(int(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4)))
             for m in re.finditer(r"step +(\d+)/\d+ +train loss ([0-9.]+) +tuning loss ([0-9.]+) .*grad norm ([0-9.]+)", text)]
    held = float(re.search(r"held_out: ([0-9.]+)", text).group(1))
    return steps, held
def tensors(path):
    b = open(path, "rb").read()
    assert b[:8] == b"CLFMGPT\0", path
    out = {}
    for i in range(struct.unpack_from("<I", b, 20)[0]):
        e = 256 + 96 * i
        off, nb = struct.unpack_from("<QQ", b, e + 72)
        a = array.array("f"); a.frombytes(b[off:off + nb])
        out[b[e:e + 48].rstrip(b"\0").decode()] = a
    return struct.unpack_from("<Q", b, 56)[0], out
(s1, h1), (s2, h2) = losses(sys.argv[1]), losses(sys.argv[2])
ok = len(s1) == 6 and [x[0] for x in s1] == [x[0] for x in s2]
# Same windows, same gradients up to the order of float sums: losses agree to 5e-4 nats, far
# below a step's change (about 0.05 here), and would not if the ranks took the same slots.
worst = max(abs(a - b) for x, y in zip(s1, s2) for a, b in zip(x[1:], y[1:])) if ok else 1
change = abs(s1[0][1] - s1[-1][1]) if ok else 0
ok = ok and worst < 5e-4 and change > 0.05 and abs(h1 - h2) < 5e-4
(st1, t1), (st2, t2) = tensors(sys.argv[3]), tensors(sys.argv[4])
pdiff = max(abs(a - b) for k in t1 for a, b in zip(t1[k], t2[k])) if sorted(t1) == sorted(t2) else 1
moved = max(abs(a) for a in t1["adam.m.wte"])
ok = ok and st1 == st2 == 6 and pdiff < 1e-4 and moved > 0
cfg = json.load(open(sys.argv[5]))["config"]
ok = ok and cfg["ranks"] == 2 and cfg["batch"] == 2 and cfg["global_batch"] == 4
print(f"losses: largest difference {worst:.2e} (train loss moved {change:.3f}); held_out {h1:.5f} vs {h2:.5f}; "
      f"parameters: largest difference {pdiff:.2e}")
if not ok:
    print("1 process:", s1, "\n2 ranks:", s2, "\nconfig:", cfg); sys.exit(1)
PY

# (c) resume under mpirun, dropout on: interrupted at step 3 and resumed == straight through.
R=(--store "$T/d.store" --steps 6 --eval-every 3 --warmup 2 --layers 2 --d-model 32 --heads 2 --context 64
   --lr 2e-3 --eval-batches 2 --dropout 0.1 --seed 5 --batch 2)
"${MPI[@]}" "$CLINFM" train "${R[@]}" --out "$T/s.ckpt" > "$T/s.log" 2>&1 || { cat "$T/s.log"; exit 1; }
"${MPI[@]}" "$CLINFM" train "${R[@]}" --out "$T/r.ckpt" --stop-after 3 > "$T/r1.log" 2>&1 || { cat "$T/r1.log"; exit 1; }
"${MPI[@]}" "$CLINFM" train --store "$T/d.store" --out "$T/r.ckpt" --resume --eval-every 3 --eval-batches 2 > "$T/r2.log" 2>&1 \
  || { cat "$T/r2.log"; exit 1; }
grep -q "resuming" "$T/r2.log" || { echo "resume not announced"; fail=1; }
cmp -s "$T/s.ckpt/checkpoint.bin" "$T/r.ckpt/checkpoint.bin" || { echo "checkpoint resumed under mpirun differs from the straight run"; fail=1; }
[ "$(grep 'step      6/6' "$T/s.log" | cut -c1-60)" = "$(grep 'step      6/6' "$T/r2.log" | cut -c1-60)" ] \
  || { echo "step 6 losses differ after resume"; grep 'step      6/6' "$T/s.log" "$T/r2.log"; fail=1; }

# (d) ranks started with different options: a clear error and a non-zero exit, not a hang.
timeout 120 mpirun -np 1 --oversubscribe "$CLINFM" train "${A[@]}" --batch 2 --out "$T/x.ckpt" \
  : -np 1 --oversubscribe "$CLINFM" train "${A[@]}" --batch 2 --out "$T/x.ckpt" --lr 1e-3 > "$T/x.log" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "ranks with different --lr exited $rc"; fail=1; }
grep -q "ranks disagree on the optimizer settings" "$T/x.log" || { echo "disagreement not explained: $(head -5 "$T/x.log")"; fail=1; }
[ -e "$T/x.ckpt" ] && { echo "a refused run left a checkpoint"; fail=1; }

# (e) ranks that do not share rank 0's files (here: rank 1 is given other paths, as a machine
# with its own filesystem would be): rank 1 receives the vocabulary and shards into its own shard
# folder, and on --resume rank 0's checkpoint and summary, writes nothing else, and the run,
# interrupted and resumed that way, ends byte-identical to (c)'s straight run.
E=(--store "$T/d.store" --eval-every 3 --eval-batches 2)
timeout 120 mpirun -np 1 --oversubscribe "$CLINFM" train "${R[@]}" --out "$T/y.ckpt" --stop-after 3 \
  : -np 1 --oversubscribe "$CLINFM" train "${R[@]}" --out "$T/elsewhere/deep/y.ckpt" --stop-after 3 > "$T/y.log" 2>&1 \
  || { echo "rank without rank 0's files failed:"; cat "$T/y.log"; fail=1; }
timeout 120 mpirun -np 1 --oversubscribe "$CLINFM" train "${E[@]}" --out "$T/y.ckpt" --resume \
  : -np 1 --oversubscribe "$CLINFM" train "${E[@]}" --out "$T/elsewhere/deep/y.ckpt" --resume > "$T/y2.log" 2>&1 \
  || { echo "resume on a rank without rank 0's files failed:"; cat "$T/y2.log"; fail=1; }
for p in train tuning held_out; do
  cmp -s "$T/y.ckpt.shards/$p.tokens" "$T/elsewhere/deep/y.ckpt.shards/$p.tokens" || { echo "rank 1 did not receive $p.tokens"; fail=1; }
done
[ -e "$T/elsewhere/deep/y.ckpt" ] && { echo "rank 1 wrote a model: $(ls "$T/elsewhere/deep/y.ckpt")"; fail=1; }
cmp -s "$T/s.ckpt/checkpoint.bin" "$T/y.ckpt/checkpoint.bin" || { echo "run with unshared files differs from the straight run"; fail=1; }
exit $fail
