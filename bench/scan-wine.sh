#!/usr/bin/env bash
# The Windows holder scan's parts (the system handle table, the module snapshots, the process table, the whole stage),
# built for x86_64-pc-windows-gnu and run UNDER WINE 8.0: figures of Wine's emulation, not of Windows. On Windows
# itself run `cargo build --release --examples && cargo bench --bench scan`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/wine-setup)"
run() {
  env PATH=/usr/bin:/bin CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$PWD/target/wine" \
    /usr/bin/cargo "$1" --locked --quiet -Zbuild-std=std,panic_abort --target x86_64-pc-windows-gnu "${@:2}"
}
run build --release --examples
run bench --bench scan
