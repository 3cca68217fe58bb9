#!/usr/bin/env bash
# Holder scan speed (issues 3 and 21): the native scan against lsof with 500 background processes, and the native
# scan in its two halves, the system calls that read every process and the shared logic that narrows what they read
# to the roots. On Linux that is /proc; on a Mac, libproc (the figures say which). BASELINE=<git revision> first runs
# the same benchmark from that revision (exported with `git archive` into a temporary dir and built there), then this
# checkout's, back to back on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname)" = Linux ]; then
  command -v lsof >/dev/null || { apt-get update -qq && apt-get install -y -qq lsof; }
fi
run() {
  (cd "$1" && export CARGO_TARGET_DIR="$PWD/target" && cargo build --release --quiet --examples --bins &&
    cargo bench --quiet --bench scan)
}
if [ -n "${BASELINE:-}" ]; then
  base=$(mktemp -d)
  trap 'rm -rf "$base"' EXIT
  git archive "$BASELINE" | tar -x -C "$base"
  echo "== baseline $(git rev-parse --short "$BASELINE")"
  run "$base"
  echo "== this checkout $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' with uncommitted changes')"
fi
run "$PWD"
