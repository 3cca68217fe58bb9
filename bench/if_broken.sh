#!/usr/bin/env bash
# The cost of `--if-broken` on a healthy, warm cache (issue 12): it against a plain `cargo check` of the same
# project (the real corpus: 150+ dependencies), in one run. The difference is the tool's own start-up.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release --quiet --bins
tool="$PWD/target/release/cargo-safeclean"
cd bench/real-corpus
cargo check --locked -q   # warm the check artifacts once
hyperfine -N --warmup 3 --runs 30 --export-markdown /dev/stdout \
  -n 'cargo check' 'cargo check --locked -q' \
  -n 'cargo safeclean --if-broken' "$tool safeclean --if-broken -q -- --locked"
