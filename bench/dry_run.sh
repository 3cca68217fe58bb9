#!/usr/bin/env bash
# What naming the size of what a dry run would remove costs (issue 20): `cargo safeclean -n`, which counts the
# target dir with the purge's parallel walk, against `cargo clean --dry-run`, which counts it too, on the real
# corpus's target dir (built once if missing), in one run. BASELINE=<binary> adds a build that does not count.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release --quiet --bins
tool="$PWD/target/release/cargo-safeclean"
cd bench/real-corpus
target="$PWD/target-repair"
[ -d "$target/debug" ] || cargo build --locked -q --target-dir "$target"
echo "$(find "$target" -type f | wc -l) files, $(du -sh "$target" | cut -f1) in $target"
# Warm the page cache for both, as a person re-running a dry run would have it.
find "$target" >/dev/null
extra=()
[ -n "${BASELINE:-}" ] && extra=(-n 'without counting (BASELINE)' "$BASELINE safeclean -n -q --target-dir $target")
hyperfine -N --warmup 3 --runs 20 --export-markdown /dev/stdout \
  -n 'cargo clean --dry-run' "cargo clean --dry-run -q --target-dir $target" \
  -n 'cargo safeclean -n' "$tool safeclean -n -q --target-dir $target" \
  "${extra[@]}"
