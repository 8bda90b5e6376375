#!/bin/sh
# Runs libFuzzer targets one after another, each for SECONDS, starting from
# its seed corpus and regressions; exits 1 if any found a crash (the
# reproducer is left in BUILD/fuzz/TARGET/artifacts/).
#
# Usage: tests/fuzz/run.sh BUILD SECONDS TARGET...   (what `make fuzz` runs)
#
# FUZZ_SEED, when set, fixes libFuzzer's random seed and starts from the
# committed seeds alone, so that a run repeats on the same machine. Not on
# another: libFuzzer takes seeds of equal size in directory order, which
# differs between file systems. So a failed run ends with its cause and its
# input in base64 (CI keeps only the end of the output). Unset, every run
# explores afresh.
#
# New inputs go to a scratch corpus under BUILD (kept between runs, so that
# later runs start further, unless FUZZ_SEED is set); the committed corpus is
# only read.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 BUILD SECONDS TARGET..." >&2; exit 2; }
build=$1
seconds=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
failed=""
for target in "$@"; do
  binary=$build/tests/fuzz/updns_fuzz_$target
  work=$build/fuzz/$target
  # A fixed seed only repeats a run from the same corpus: start from the seeds.
  [ -n "${FUZZ_SEED:-}" ] && rm -rf "$work/corpus"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$src/corpus/$target/"* "$work/corpus/"
  set -- "$work/corpus"
  [ -d "$src/regressions/$target" ] && set -- "$@" "$src/regressions/$target"
  dict=""
  [ -f "$src/dict/$target.dict" ] && dict="-dict=$src/dict/$target.dict"
  seed=""
  [ -n "${FUZZ_SEED:-}" ] && seed="-seed=$FUZZ_SEED"
  echo "fuzz $target: ${seconds}s"
  # stdin from /dev/null: a config may name /dev/stdin as its password_file.
  # shellcheck disable=SC2086
  if "$binary" $dict $seed -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" \
      </dev/null >"$work/log" 2>&1; then
    awk -v t="$target" -F': *' '
      /^stat::number_of_executed_units/ { runs = $NF }
      /^stat::average_exec_per_sec/ { rate = $NF }
      /^stat::new_units_added/ { added = $NF }
      /^stat::peak_rss_mb/ { rss = $NF }
      END { printf "fuzz %s: clean, %d runs, %d exec/s, %d new inputs, %d MB peak\n",
                   t, runs, rate, added, rss }' "$work/log"
    grep -E '^#[0-9]+[[:space:]]+DONE[[:space:]]+cov:' "$work/log" | tail -1 || true
  else
    tail -n 80 "$work/log"
    echo "fuzz $target: FAILED (log: $work/log; reproducer: $work/artifacts/)"
    failed="$failed $target"
  fi
done
[ -z "$failed" ] && exit 0
# CI keeps only the end of what a run printed: the cause and the input go
# last, the input in base64 so that it can be replayed from the log alone.
for target in $failed; do
  work=$build/fuzz/$target
  echo "fuzz $target: what broke:"
  grep -E -B3 -A6 -m1 'fuzz invariant broken|ERROR: [A-Za-z]+Sanitizer|ERROR: libFuzzer' "$work/log" |
    cut -c1-300 | sed 's/^/  /'
  input=$(ls -t "$work/artifacts/" 2>/dev/null | head -n 1)
  [ -n "$input" ] || continue
  echo "fuzz $target: the input, $(wc -c <"$work/artifacts/$input") bytes (replay: base64 -d >in;" \
       "$build/tests/fuzz/updns_fuzz_$target in):"
  head -c 3072 "$work/artifacts/$input" | base64 -w 100
done
echo "fuzz: failures in:$failed" >&2
exit 1
