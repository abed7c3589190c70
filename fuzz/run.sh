#!/usr/bin/env bash
# Fuzzes tollgate's parsers of untrusted input with libFuzzer, on the stable toolchain.
#
#   bash fuzz/run.sh [SECONDS] [-j JOBS] [TARGET...] [-- LIBFUZZER_FLAG...]
#   bash fuzz/run.sh --ci        CI: every target for 30 s, as many at once as there are CPUs
#
# SECONDS per target (default 30); TARGETs default to all of fuzz/fuzz_targets/.
# Exits non-zero if any target crashes, fails an invariant, times out or runs out of
# memory; the input that did it is printed (hex) and kept in fuzz/target/artifacts/.
#
# Why no nightly: cargo-fuzz needs nightly only for `-Zsanitizer`. libFuzzer itself
# needs just SanitizerCoverage, which stable rustc exposes through LLVM flags (the
# ones cargo-fuzz passes too): the targets are built with plain `cargo build`, those
# flags in RUSTFLAGS, and `--target` so build scripts and proc macros stay
# uninstrumented. tollgate is `#![forbid(unsafe_code)]`, so AddressSanitizer would add
# little; overflow checks and debug assertions are on (see fuzz/Cargo.toml).
#
# Each target starts from its committed seeds (fuzz/corpus/TARGET), any inputs that
# once failed (fuzz/regressions/TARGET) and what earlier runs found
# (fuzz/target/corpus/TARGET, where new inputs go); fuzz/dict/TARGET.dict is its dictionary.
set -euo pipefail
cd "$(dirname "$0")"

secs=30
jobs=1
targets=()
extra=()
while (($#)); do
  case $1 in
    --ci) secs=30 jobs=$(nproc 2>/dev/null || echo 1) ;;
    -j) jobs=$2; shift ;;
    -j*) jobs=${1#-j} ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *[!0-9]*) [[ -f fuzz_targets/$1.rs ]] || { echo "run.sh: no target $1" >&2; exit 2; }
      targets+=("$1") ;;
    *) secs=$1 ;;
  esac
  shift
done
if ((${#targets[@]} == 0)); then
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

host=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR=$PWD/target
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
echo "fuzz: building ${targets[*]} with $(cargo --version) (a first build takes minutes)"
start=$SECONDS
cargo build --quiet --release --target "$host" "${bins[@]}"
echo "fuzz: built in $((SECONDS - start)) s; fuzzing each target for $secs s, $jobs at a time"

mkdir -p target/logs
# Runs one target; its output goes to target/logs/TARGET.log.
fuzz() {
  local t=$1 dirs=("target/corpus/$1" "corpus/$1") flags=()
  [[ -d regressions/$t ]] && dirs+=("regressions/$t")
  [[ -f dict/$t.dict ]] && flags+=("-dict=dict/$t.dict")
  mkdir -p "target/corpus/$t" "target/artifacts/$t"
  "target/$host/release/$t" "${dirs[@]}" "${flags[@]}" -max_total_time="$secs" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="target/artifacts/$t/" "${extra[@]}" >"target/logs/$t.log" 2>&1
}

# Targets run `jobs` at a time, each on its own core (libFuzzer is single-threaded).
declare -A rc pid
pending=("${targets[@]}")
while ((${#pending[@]})); do
  batch=("${pending[@]:0:jobs}")
  pending=("${pending[@]:jobs}")
  for t in "${batch[@]}"; do
    find "target/artifacts/$t" -type f -delete 2>/dev/null || true
    fuzz "$t" &
    pid[$t]=$!
  done
  for t in "${batch[@]}"; do
    rc[$t]=0
    wait "${pid[$t]}" || rc[$t]=$?
  done
done

# The last value libFuzzer printed for a final statistic.
stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
failed=0
printf '\n%-8s %6s %12s %8s %6s %s\n' target result executions exec/s cov corpus
for t in "${targets[@]}"; do
  log=target/logs/$t.log
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  result=ok
  ((rc[$t] == 0)) || { result="FAILED(${rc[$t]})"; failed=1; }
  printf '%-8s %6s %12s %8s %6s %s\n' "$t" "$result" "$(stat number_of_executed_units)" \
    "$(stat average_exec_per_sec)" "${cov:--}" "${corp:--}"
done

for t in "${targets[@]}"; do
  ((rc[$t] != 0)) || continue
  echo
  echo "=== $t failed (whole output: fuzz/target/logs/$t.log):"
  log=target/logs/$t.log
  sed -n '/panicked at/,/^stack backtrace/p' "$log" | grep -v '^stack backtrace' | cut -c1-3000
  grep -E '^==[0-9]+== ERROR|^SUMMARY|^Base64' "$log" || true
  for a in target/artifacts/"$t"/*; do
    [[ -f $a ]] || continue
    echo "--- input fuzz/$a ($(wc -c <"$a") bytes), hex:"
    od -An -v -tx1 "$a" | head -64
    echo "reproduce: fuzz/target/$host/release/$t fuzz/$a"
  done
done

cat <<EOF

Longer runs: bash fuzz/run.sh 3600 scan          (one target for an hour; -j 2 for two at once)
  libFuzzer flags go after --, e.g. bash fuzz/run.sh 600 usage -- -max_len=65536
  found inputs accumulate in fuzz/target/corpus/TARGET; to see which add coverage to the seeds:
  fuzz/target/$host/release/TARGET -merge=1 NEW_DIR fuzz/corpus/TARGET fuzz/target/corpus/TARGET
  a failing input: reproduce by passing it to the binary, shrink it with -minimize_crash=1
  -runs=100000, and keep it in fuzz/regressions/TARGET/ so every run replays it.
EOF
exit "$failed"
