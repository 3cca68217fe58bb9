#!/usr/bin/env bash
# Holder scan speed (issues 3 and 21): the native scan against lsof with 500 background processes, and the native
# scan in its two halves, the system calls that read every process and the shared logic that narrows what they read
# to the roots. On Linux that is /proc; on a Mac, libproc (the figures say which). BASELINE=<git revision> also runs
# the same benchmark from that revision (exported with `git archive` into a temporary dir and built there), and
# ROUNDS=<n> (default 1) runs the two in turn n times, so that a machine busy with something else weighs on both.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname)" = Linux ]; then
  command -v lsof >/dev/null || { apt-get update -qq && apt-get install -y -qq lsof; }
fi
in_dir() { (cd "$1" && shift && CARGO_TARGET_DIR="$PWD/target" "$@"); }
build() { in_dir "$1" cargo build --release --quiet --examples --bins && in_dir "$1" cargo bench --quiet --bench scan --no-run; }
measure() { in_dir "$1" cargo bench --quiet --bench scan; }
dirs=("$PWD")
names=("this checkout $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' with uncommitted changes')")
if [ -n "${BASELINE:-}" ]; then
  base=$(mktemp -d)
  trap 'rm -rf "$base"' EXIT
  git archive "$BASELINE" | tar -x -C "$base"
  dirs=("$base" "${dirs[@]}")
  names=("baseline $(git rev-parse --short "$BASELINE")" "${names[@]}")
fi
for d in "${dirs[@]}"; do build "$d"; done
for round in $(seq "${ROUNDS:-1}"); do
  for i in "${!dirs[@]}"; do
    echo "== ${names[$i]}, round $round"
    measure "${dirs[$i]}"
  done
done
