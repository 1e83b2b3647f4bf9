#!/usr/bin/env bash
# Runs every test for each build directory given (C unit tests, CLI tests), then the fuzzers
# briefly, each in its own process with a timeout, and prints "N passed, N failed" last.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CLINFM_ROOT="$ROOT" CLINFM_NO_PROGRESS=1
# Public datasets live outside the repository (never committed): $CLINFM_DATA, default
# ../shared/data beside the checkout. Tests that need one are skipped without it, except under
# CI=true, where a missing dataset is a failure.
export CLINFM_DATA=$(cd "${CLINFM_DATA:-$ROOT/../shared/data}" 2>/dev/null && pwd || echo "${CLINFM_DATA:-$ROOT/../shared/data}")
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
pass=0; fail=0; skip=0; failed_names=(); skipped_names=()
TMPROOT=$(mktemp -d /tmp/clinfm-tests.XXXXXX)
trap 'rm -rf "$TMPROOT"' EXIT

run_one() { # name timeout command...
  local name=$1 t=$2; shift 2
  local dir="$TMPROOT/$(echo "$name" | tr '/ ' '__')"
  mkdir -p "$dir"
  local start=$(date +%s%N)
  CLINFM_TEST_TMP="$dir" timeout "$t" "$@" >"$dir.log" 2>&1
  local rc=$?
  if [ "$rc" -eq 77 ]; then
    skip=$((skip + 1)); skipped_names+=("$name"); printf 'SKIP %-50s (%s)\n' "$name" "$(grep -m1 -o 'needs .*' "$dir.log")"
  elif [ "$rc" -eq 0 ]; then
    pass=$((pass + 1)); printf 'PASS %-50s %6.2fs\n' "$name" "$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN{print (b-a)/1e9}')"
    # A C test program whose data-dependent cases were skipped says so.
    grep -q '^  SKIP ' "$dir.log" && sed -n 's/^  SKIP /     skipped case: /p' "$dir.log"
  else
    fail=$((fail + 1)); failed_names+=("$name")
    printf 'FAIL %-50s (exit %s)\n' "$name" "$rc"; sed 's/^/    | /' "$dir.log" | tail -40
  fi
  rm -rf "$dir"
}

for b in "$@"; do
  for t in "$b"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$b/$(basename "$t")" 600 "$t"
  done
  for s in tests/cli/*.sh; do
    [ -f "$s" ] || continue
    [ "$(basename "$s")" = lib.sh ] && continue # sourced by the tests, not one itself
    run_one "$b/cli/$(basename "$s" .sh)" 600 env CLINFM="$ROOT/$b/clinfm" bash "$s"
  done
done

# Fuzzers: a short run each from the seed corpus (a longer run: CLINFM_FUZZ_SECONDS=600).
for f in build-fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f"); corpus="fuzz/corpus/${name#fuzz_}"
  mkdir -p "$TMPROOT/corp-$name"
  run_one "fuzz/$name" 120 "$f" -max_total_time="${CLINFM_FUZZ_SECONDS:-20}" -rss_limit_mb=2048 -error_exitcode=1 \
    -timeout=10 "$TMPROOT/corp-$name" $( [ -d "$corpus" ] && echo "$corpus" )
done

[ ${#failed_names[@]} -gt 0 ] && printf 'failed: %s\n' "${failed_names[*]}"
[ ${#skipped_names[@]} -gt 0 ] && printf 'skipped (no data at %s): %s\n' "$CLINFM_DATA" "${skipped_names[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
