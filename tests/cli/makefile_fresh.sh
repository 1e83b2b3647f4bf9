#!/usr/bin/env bash
# A fresh machine, replayed: Open MPI's tools (pkg-config's ompi-c and mpicc) answer only after
# `deps` has "installed" them, as on a new Debian machine where `make demo` installs Open MPI in
# the same run. The model's MPI source (src/model/dist.c includes mpi.h) must still compile the
# first time: flags read when make parses the Makefile, before deps ran, would be empty.
set -euo pipefail
ROOT=$(pwd)
T=${CLINFM_TEST_TMP:-$(mktemp -d)}
mkdir -p "$T/tree" "$T/bin"
git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$T/tree")
for tool in pkg-config mpicc; do
  real=$(command -v "$tool")
  cat > "$T/bin/$tool" <<SH
#!/bin/sh
[ -e "$T/installed" ] || exit 1
exec "$real" "\$@"
SH
  chmod +x "$T/bin/$tool"
done
# Before "installation" the hidden tools give no flags at all.
if PATH="$T/bin:$PATH" pkg-config --cflags ompi-c >/dev/null 2>&1; then echo "fake pkg-config not hiding"; exit 1; fi
# In the copy, "installing" makes the tools answer, and the demo itself does nothing.
rm -f "$T/installed"
printf '#!/bin/sh\ntouch "%s/installed"\n' "$T" > "$T/tree/scripts/deps.sh"
printf '#!/bin/sh\nexit 0\n' > "$T/tree/scripts/demo.sh"
PATH="$T/bin:$PATH" make -s -C "$T/tree" demo BUILD="$T/build" \
  DEMO_GOAL="$T/build/obj/src/model/dist.o" > "$T/make.log" 2>&1 \
  || { echo "make demo failed on a fresh machine:"; tail -20 "$T/make.log"; exit 1; }
[ -f "$T/build/obj/src/model/dist.o" ] || { echo "dist.o was not built"; exit 1; }
echo "fresh-machine make demo: ok"
