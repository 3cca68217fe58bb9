#!/usr/bin/env bash
# Removal on Windows, built for x86_64-pc-windows-gnu and run UNDER WINE 8.0 (figures of Wine's emulation, not of
# Windows): the library's purge against std's remove_dir_all (what cargo clean does there) and `cmd /c rd /s /q`.
# On Windows itself run `cargo bench --bench purge`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/wine-setup)"
env PATH=/usr/bin:/bin CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$PWD/target/wine" \
  /usr/bin/cargo bench --locked --quiet -Zbuild-std=std,panic_abort --target x86_64-pc-windows-gnu --bench purge
