#!/usr/bin/env bash
# Quick start: install dependencies, build, and run a first box.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BOXD_JOBS=${BOXD_JOBS:-2} scripts/build.sh build -DCMAKE_BUILD_TYPE=Release -DBOXD_TESTS=OFF
echo
echo "== what this host lets the engine enforce"
build/box-engine info
echo
echo "== a first box: a command as the unprivileged box user, no network, read-only root"
build/box-engine run --memory 256M --pids 64 --timeout 10 -- \
  sh -c 'echo "hello from $(hostname) as $(id -un) (uid $(id -u))"; python3 -c "import sys; print(\"python\", sys.version.split()[0])"; ls /; touch /usr/x 2>&1 || true'
