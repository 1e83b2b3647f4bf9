#!/usr/bin/env bash
# Data-parallel training across two "hosts" that share neither a network nor a filesystem, on
# one machine: two network namespaces joined by a veth pair, Open MPI's TCP transport only
# (`--mca btl tcp,self`), and mpirun launching one rank into each namespace through a launcher
# agent (its "rsh") that runs `ip netns exec`. Host B also gets a private, empty tmpfs over the
# folder that holds the store and the model, so its rank cannot see rank 0's files: it must
# receive the vocabulary and shards (and, on --resume, the checkpoint) from rank 0, and write
# nothing on host A. Checked: per-step train and tuning losses and the held-out loss equal one
# process with --batch 2B to 5e-4 nats (docs/MODEL.md's tolerance for 2 ranks; float sums in
# another order), final parameters to 1e-4; an interrupted run resumed across the two hosts
# ends byte-identical to the straight 2-host run (host B's tmpfs, and its copy of the shards,
# is new for every mpirun, so the resumed run receives everything again).
#
# Needs root (network and mount namespaces), `ip`, `unshare` and mpirun; exits 77 (skipped)
# with the reason when any is missing or the kernel refuses namespaces (an unprivileged
# container). About 10 s.
set -uo pipefail
skip() { echo "SKIP: needs $*" >&2; exit 77; }
command -v mpirun > /dev/null || skip "mpirun (scripts/deps.sh installs openmpi-bin)"
command -v ip > /dev/null || skip "ip (scripts/deps.sh installs iproute2)"
command -v unshare > /dev/null || skip "unshare (util-linux)"
[ "$(id -u)" -eq 0 ] || skip "root, for network namespaces (run as root to test MPI across two hosts)"
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
ROOT=$(pwd)
NSA=cfm$$a NSB=cfm$$b # unique per run: other tests may make namespaces at the same time
cleanup() {
  ip netns del "$NSA" 2> /dev/null
  ip netns del "$NSB" 2> /dev/null # the veth pair goes with its namespaces
}
trap cleanup EXIT
trap 'exit 1' INT TERM # (a timeout's TERM) still runs cleanup on the way out
ip netns add "$NSA" 2> "$T/netns.err" || skip "permission to create network namespaces ($(head -c 200 "$T/netns.err"))"
ip netns add "$NSB" || skip "a second network namespace"
if ! { ip link add "$NSA" type veth peer name "$NSB" && ip link set "$NSA" netns "$NSA" && ip link set "$NSB" netns "$NSB" &&
       ip -n "$NSA" addr add 10.199.0.1/24 dev "$NSA" && ip -n "$NSB" addr add 10.199.0.2/24 dev "$NSB" &&
       ip -n "$NSA" link set "$NSA" up && ip -n "$NSB" link set "$NSB" up &&
       ip -n "$NSA" link set lo up && ip -n "$NSB" link set lo up; } 2> "$T/veth.err"; then
  skip "a veth pair between namespaces ($(head -c 200 "$T/veth.err"))"
fi
# Host B's private view of $T/data: an empty tmpfs in its own mount namespace.
ip netns exec "$NSB" unshare -m --propagation private sh -c "mount -t tmpfs none '$T' && true" 2> "$T/mount.err" \
  || skip "mount namespaces (unshare -m: $(head -c 200 "$T/mount.err"))"

fail=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan_openmpi.supp:print_suppressions=0"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
D=$T/data
mkdir -p "$D" "$T/out"
# The agent mpirun calls as `agent HOST COMMAND...` (as it would call ssh).
cat > "$T/agent.sh" << EOF
#!/bin/sh
host=\$1; shift
case \$host in
  hostA) exec ip netns exec $NSA sh -c "\$*" ;;
  hostB) exec ip netns exec $NSB unshare -m --propagation private \
           sh -c 'mount -t tmpfs none "\$0" && exec sh -c "\$1"' "$D" "\$*" ;;
esac
echo "agent: unknown host \$host" >&2
exit 1
EOF
chmod +x "$T/agent.sh"
MPI=(mpi_launch timeout 120 ip netns exec "$NSA" mpirun -np 2 --host hostA,hostB --mca plm_rsh_agent "$T/agent.sh"
     --mca btl tcp,self --mca btl_tcp_if_include 10.199.0.0/24 --mca oob_tcp_if_include 10.199.0.0/24)
# Runs an mpirun command line once more when Open MPI's own daemon (orted) failed to start on a
# host, before any rank ran: seen once in a dozen runs here, orted segfaulting at its start in
# the namespace; no clinfm process had run, so nothing of the test's subject is retried. Any
# other failure is the test's to judge. The try's standard error is kept for the report.
mpi_launch() {
  local err="$T/launch.err" rc
  "$@" 2> "$err"; rc=$?
  if [ $rc -ne 0 ] && grep -q "ORTE was unable to reliably start one or more daemons" "$err"; then
    echo "note: Open MPI's daemon did not start on a host (not clinfm); launching once more" >&2
    "$@" 2> "$err"; rc=$?
  fi
  cat "$err" >&2
  return $rc
}

"$CLINFM" synth --patients 80 --seed 3 --truth-paths 0 --quiet --out "$T/syn" || exit 1
"$CLINFM" ingest --format fhir --input "$T/syn/fhir" --out "$D/m.store" --quiet || exit 1
A=(--store "$D/m.store" --allow-identified --steps 6 --eval-every 1 --warmup 2 --layers 2 --d-model 32 --heads 2
   --context 64 --lr 2e-3 --eval-batches 2 --dropout 0 --seed 5)

# (a) one process, batch 4; (b) one rank on each host, batch 2 each.
"$CLINFM" train "${A[@]}" --batch 4 --threads 1 --out "$D/one" > "$T/one.log" || { cat "$T/one.log"; exit 1; }
"${MPI[@]}" --output-filename "$T/out/ranks" "$CLINFM" train "${A[@]}" --batch 2 --out "$D/two" > "$T/two.log" 2> "$T/two.err" \
  || { echo "2-host training failed"; cat "$T/two.log" "$T/two.err" "$T/out/ranks/1/rank."*/stderr 2> /dev/null; exit 1; }
grep -q "data-parallel: 2 ranks (1 on this machine)" "$T/two.log" \
  || { echo "the ranks did not run on two hosts: $(grep data-parallel "$T/two.log")"; fail=1; }
grep -q "1 of 2 ranks did not find rank 0's shards" "$T/two.log" \
  || { echo "rank 1 saw rank 0's files (was its filesystem private?)"; fail=1; }

/usr/bin/python3 - "$T/one.log" "$T/two.log" "$D/one/checkpoint.bin" "$D/two/checkpoint.bin" << 'PY' || fail=1
import array, re, struct, sys
def losses(path):
    text = open(path).read()
    steps = [tuple(float(x) for x in m.groups())
             for m in re.finditer(r"step +(\d+)/\d+ +train loss ([0-9.]+) +tuning loss ([0-9.]+) .*grad norm ([0-9.]+)", text)]
    return steps, float(re.search(r"held_out: ([0-9.]+)", text).group(1))
def tensors(path):
    b = open(path, "rb").read()
    out = {}
    for i in range(struct.unpack_from("<I", b, 20)[0]):
        e = 256 + 96 * i
        off, nb = struct.unpack_from("<QQ", b, e + 72)
        a = array.array("f"); a.frombytes(b[off:off + nb])
        out[b[e:e + 48].rstrip(b"\0").decode()] = a
    return out
(s1, h1), (s2, h2) = losses(sys.argv[1]), losses(sys.argv[2])
ok = len(s1) == 6 and [x[0] for x in s1] == [x[0] for x in s2]
worst = max(abs(a - b) for x, y in zip(s1, s2) for a, b in zip(x[1:], y[1:])) if ok else 1
change = abs(s1[0][1] - s1[-1][1]) if ok else 0
t1, t2 = tensors(sys.argv[3]), tensors(sys.argv[4])
pdiff = max(abs(a - b) for k in t1 for a, b in zip(t1[k], t2[k])) if sorted(t1) == sorted(t2) else 1
ok = ok and worst < 5e-4 and change > 0.05 and abs(h1 - h2) < 5e-4 and pdiff < 1e-4
print(f"two hosts over TCP: per-step losses differ by at most {worst:.2e} from one process (train loss moved "
      f"{change:.3f}); held_out {h1:.5f} vs {h2:.5f}; parameters differ by at most {pdiff:.2e}")
if not ok:
    print("1 process:", s1, "\n2 hosts:", s2); sys.exit(1)
PY

# (c) interrupted at step 3 and resumed across the two hosts (host B has neither the checkpoint
# nor, in its fresh tmpfs, the shards) == the straight 2-host run, byte for byte.
"${MPI[@]}" "$CLINFM" train "${A[@]}" --batch 2 --out "$D/r" --stop-after 3 > "$T/r1.log" 2>&1 || { cat "$T/r1.log"; exit 1; }
"${MPI[@]}" "$CLINFM" train --store "$D/m.store" --allow-identified --out "$D/r" --resume --eval-every 1 --eval-batches 2 \
  > "$T/r2.log" 2>&1 || { cat "$T/r2.log"; exit 1; }
grep -q "resuming" "$T/r2.log" || { echo "resume not announced"; fail=1; }
cmp -s "$D/two/checkpoint.bin" "$D/r/checkpoint.bin" || { echo "2-host run resumed differs from the straight one"; fail=1; }
[ $fail -eq 0 ] && echo "train_mpi_netns passed"
exit $fail
