#!/usr/bin/env bash
# Installs the Debian packages clinfm needs, only those that are missing.
# Runs apt-get update at most once, and only when something must be installed.
set -euo pipefail
PKGS=(build-essential clang libclang-rt-14-dev llvm pkg-config zlib1g-dev libdeflate-dev libzstd-dev libsodium-dev libcjson-dev libpcre2-dev
      libopenblas-openmp-dev libdnnl-dev libopenmpi-dev openmpi-bin iproute2
      python3 python3-pandas procps
      libxgboost-dev python3-sklearn libmicrohttpd-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev openssl curl wrk)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
