# Sourced by CLI tests (`. tests/cli/lib.sh`, from the repository root).
# need_data VAR NAME: sets VAR to the path of dataset NAME under the external data directory
# ($CLINFM_DATA, set by tests/run.sh; default ../shared/data). When it is absent the test exits
# 77, which tests/run.sh counts as skipped; under CI=true a missing dataset fails the test.
need_data() {
  local base=${CLINFM_DATA:-../shared/data}
  if [ -e "$base/$2" ]; then printf -v "$1" "%s" "$base/$2"; export "$1"; return 0; fi
  if [ "${CI:-}" = true ]; then echo "data missing under CI=true: $base/$2 (set CLINFM_DATA)" >&2; exit 1; fi
  echo "SKIP: needs $base/$2 (set CLINFM_DATA)" >&2
  exit 77
}
