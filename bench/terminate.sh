#!/usr/bin/env bash
# Termination latency (issue 4): exit-to-notice and grace-deadline-to-SIGKILL medians, pidfd vs kill(2) fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --examples
cargo bench --quiet --bench terminate
