#!/usr/bin/env bash
# The smallest repair against the full clean (issue 19): the real corpus (150+ dependencies) is checked once; then,
# run after run, one dependency's `.rmeta` is overwritten with garbage and `cargo safeclean --if-broken` heals it,
# once repairing only the damaged unit (the default) and once cleaning the whole tree (`--full`), interleaved.
# Prints the time to a passing check and what cargo rebuilt, as a Markdown table.
#   bench/repair.sh                          # 3 runs each, the `bytes` crate damaged
#   SAFECLEAN_BENCH_RUNS=5 SAFECLEAN_BENCH_CRATE=regex_syntax bench/repair.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bins
tool="$PWD/target/release/cargo-safeclean"
runs="${SAFECLEAN_BENCH_RUNS:-3}"
crate="${SAFECLEAN_BENCH_CRATE:-bytes}"
cd bench/real-corpus
export CARGO_TARGET_DIR="$PWD/target-repair"
cargo check --locked -q
damage() {
  local f
  f=$(find "$CARGO_TARGET_DIR/debug/deps" -name "lib${crate}-*.rmeta" | head -n 1)
  [ -n "$f" ] || { echo "no lib${crate}-*.rmeta to damage" >&2; exit 1; }
  printf garbage > "$f"
}
declare -A times
for i in $(seq "$runs"); do
  for mode in repair full; do
    damage
    flag=""; [ "$mode" = full ] && flag="--full"
    start=$(date +%s.%N)
    out=$("$tool" safeclean --if-broken $flag -q --message-format json -- --locked)
    end=$(date +%s.%N)
    summary=$(printf '%s\n' "$out" | tail -n 1)
    code=$(printf '%s' "$summary" | python3 -c 'import sys,json; print(json.load(sys.stdin)["exit_code"])')
    [ "$code" = 0 ] || { echo "$mode run $i exited $code" >&2; exit 1; }
    rebuilt=$(printf '%s' "$summary" | python3 -c 'import sys,json; r=json.load(sys.stdin).get("repaired"); print(len(r["rebuilt"]) if r else "all")')
    times[$mode]+="$(echo "$end - $start" | bc) "
    echo "run $i, $mode: $(echo "$end - $start" | bc) s, rebuilt: $rebuilt" >&2
  done
done
median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
r=$(median "${times[repair]}"); f=$(median "${times[full]}")
echo
echo "| \`lib${crate}\` damaged, median of $runs | time to a passing check | vs the full clean |"
echo "|---|---|---|"
echo "| \`--if-broken\` (repair the unit) | ${r} s | $(echo "scale=2; $r / $f" | bc)× |"
echo "| \`--if-broken --full\` (clean the tree) | ${f} s | 1.00× |"
