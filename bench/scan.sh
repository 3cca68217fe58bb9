#!/usr/bin/env bash
# Holder scan speed (issue 3): the /proc scan against lsof with 500 background processes.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v lsof >/dev/null || { apt-get update -qq && apt-get install -y -qq lsof; }
cargo build --release --quiet --examples --bins
cargo bench --quiet --bench scan
