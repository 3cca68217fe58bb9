#!/usr/bin/env bash
# Removal speed (issue 6): cargo safeclean against rmz, rm -rf and cargo clean on a real target dir and a
# synthetic 300,000-file tree. Prints Markdown tables (copied into BENCHMARKS.md).
#   bench/purge.sh                         # both corpora, 5 runs each
#   SAFECLEAN_BENCH_THREADS=2,4,8,16,32 bench/purge.sh   # also compare purge worker counts
#   SAFECLEAN_BENCH_DETACH_THREADS=2,16 bench/purge.sh   # also compare the detached deleter's worker counts
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time; }
command -v rmz >/dev/null 2>&1 || cargo install --locked rmz
corpus=bench/real-corpus
if [ -z "${SAFECLEAN_BENCH_REAL_TARGET:-}" ]; then
  # debug, release and doc of a project with 150+ dependencies (about 10 minutes on 2 cores, once).
  if [ ! -f "$corpus/target/.complete" ]; then
    (cd "$corpus" && cargo build --locked -q && cargo build --locked -q --release && cargo doc --locked -q)
    touch "$corpus/target/.complete"
  fi
  export SAFECLEAN_BENCH_REAL_TARGET="$PWD/$corpus/target"
fi
cargo build --release --quiet --bins
cargo bench --quiet --bench purge
