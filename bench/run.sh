#!/usr/bin/env bash
# Builds engine_bench (and box-init) if needed, checks the peer runtimes and runs the cold
# box start benchmark. Arguments go to engine_bench, e.g.:
#   bench/run.sh --runs 200 --peer-runs 50
#   bench/run.sh --only boxd,floor --json
# Environment: BOXD_BUILD_DIR (default <repo>/build-bench: an optimized build of its own, so
# the numbers are not a debug build's and the development build's options stay untouched),
# BOXD_BUILD_JOBS (default 2).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BOXD_BUILD_DIR:-$repo/build-bench}"
jobs="${BOXD_BUILD_JOBS:-2}"

if [[ $EUID -ne 0 ]]; then
  echo "run.sh: run as root (the engine's root mode, runc and runsc need it)" >&2
  exit 1
fi

if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBOXD_TESTS=OFF -DBOXD_BENCH=ON >&2
fi
# ninja is a no-op when everything is up to date; the bench depends on box-init.
ninja -C "$build" -j "$jobs" engine_bench >&2

# Peers are optional: a missing one becomes a row saying so.
for tool in bwrap runc runsc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    case "$tool" in
      bwrap) pkg=bubblewrap ;;
      *) pkg=$tool ;;
    esac
    echo "run.sh: $tool not found (apt-get install $pkg); its row will be skipped" >&2
  fi
done

exec "$build/bench/engine_bench" "$@"
