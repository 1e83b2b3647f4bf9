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

# The room tests (a command must refuse without disk room) need a small filesystem: a tmpfs, so
# root. need_root_tmpfs skips the test (77) without root, before any work.
need_root_tmpfs() {
  if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root to mount a small tmpfs" >&2; exit 77; fi
}
# small_fs DIR KIB: a tmpfs of KIB KiB at DIR, unmounted when the test exits; called again, it
# remounts DIR (empty) at the new size. The first mount failing skips the test (77: a container
# without mount rights); a later one is an error.
small_fs() {
  mkdir -p "$1"
  if mountpoint -q "$1"; then
    umount "$1" || exit 1
    mount -t tmpfs -o "size=${2}k" tmpfs "$1" || exit 1
  else
    mount -t tmpfs -o "size=${2}k" tmpfs "$1" 2>/dev/null || { echo "SKIP: cannot mount a tmpfs here" >&2; exit 77; }
    trap "umount '$1' 2>/dev/null" EXIT
  fi
}
