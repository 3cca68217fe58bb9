#!/usr/bin/env bash
# The sweep against cargo-sweep (issue 22), one run each, side by side, on the real corpus (150+ dependencies):
# its target dir is built by the current toolchain and by Debian's Rust 1.96 (the other toolchain), and documented
# (so that it holds well over 50,000 files), once, and copied afresh before each tool runs. Each tool removes the
# other toolchain's units (`cargo safeclean --sweep --other-toolchains`, `cargo sweep --toolchains stable`): its
# decision time (a dry run), its total time, and the current toolchain's `cargo build` after it (what it compiled,
# how long it took), against a full `cargo clean` and the rebuild after it. Prints a Markdown table.
#   bench/sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-sweep >/dev/null 2>&1 || cargo install --locked cargo-sweep
if [ ! -x /usr/bin/cargo ] || [ ! -x /usr/bin/rustc ]; then
  apt-get update -qq && apt-get install -y -qq cargo-web rustc-web
fi
cargo build --release --quiet --bins
tool="$PWD/target/release/cargo-safeclean"
cd bench/real-corpus
pristine="$PWD/target-sweep-pristine"
export CARGO_TARGET_DIR="$PWD/target-sweep"
if [ ! -f "$pristine/.complete" ]; then
  rm -rf "$pristine"
  CARGO_TARGET_DIR="$pristine" cargo build --locked -q
  CARGO_TARGET_DIR="$pristine" CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
    /usr/bin/cargo build --locked -q
  CARGO_TARGET_DIR="$pristine" cargo doc --locked -q
  touch "$pristine/.complete"
fi
files=$(find "$pristine" -type f | wc -l)
size=$(du -sh "$pristine" | cut -f1)
restore() { rm -rf "$CARGO_TARGET_DIR"; cp -a "$pristine" "$CARGO_TARGET_DIR"; sync; }
# Seconds `$@` takes; its output goes to $log.
log=$(mktemp)
took() {
  local start end
  start=$(date +%s.%N)
  "$@" >"$log" 2>&1 || { echo "failed: $*" >&2; cat "$log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "scale=2; ($end - $start) / 1" | bc
}
# The current toolchain's build after a tool: its time, and how many crates it compiled.
rebuild() {
  local t
  t=$(took cargo build --locked)
  echo "$t $(grep -c 'Compiling' "$log" || true)"
}
left() { if [ -d "$CARGO_TARGET_DIR" ]; then du -sh "$CARGO_TARGET_DIR" | cut -f1; else echo 0; fi; }
# cargo-sweep wants rustup's full name of the toolchain to keep, and exits 0 when it does not know one.
current=$(rustup show active-toolchain | cut -d' ' -f1)

restore
ours_decide=$(took "$tool" safeclean --sweep --other-toolchains --dry-run --no-verify)
ours_total=$(took "$tool" safeclean --sweep --other-toolchains --no-verify)
ours_left=$(left)
read -r ours_rebuild ours_compiled <<<"$(rebuild)"

restore
theirs_decide=$(took cargo sweep --dry-run --toolchains "$current" .)
if grep -q ERROR "$log"; then cat "$log" >&2; exit 1; fi
theirs_total=$(took cargo sweep --toolchains "$current" .)
theirs_left=$(left)
read -r theirs_rebuild theirs_compiled <<<"$(rebuild)"

restore
clean_total=$(took cargo clean)
clean_left=$(left)
read -r clean_rebuild clean_compiled <<<"$(rebuild)"
rm -rf "$CARGO_TARGET_DIR" "$log"

echo
echo "Target dir: $files files, $size (debug by 1.95 and Debian's 1.96, doc by 1.95); $(nproc) cores."
echo
echo "| removing the other toolchain's units | decision (dry run) | total | left | rebuild (1.95) | crates compiled |"
echo "|---|---|---|---|---|---|"
echo "| \`cargo safeclean --sweep --other-toolchains\` | ${ours_decide} s | ${ours_total} s | ${ours_left} | ${ours_rebuild} s | ${ours_compiled} |"
echo "| \`cargo sweep --toolchains $current\` | ${theirs_decide} s | ${theirs_total} s | ${theirs_left} | ${theirs_rebuild} s | ${theirs_compiled} |"
echo "| \`cargo clean\` (everything) | – | ${clean_total} s | ${clean_left} | ${clean_rebuild} s | ${clean_compiled} |"
