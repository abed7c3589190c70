#!/usr/bin/env bash
# The sizes of tollgate's largest futures (async fn bodies and blocks, in bytes),
# as rustc lays them out, and of pingora's task for each client connection
# (`run_endpoint`, which holds tollgate's `Front` future): what every connection
# holds, and what an await moves. Uses -Zprint-type-sizes (RUSTC_BOOTSTRAP=1 lets the stable toolchain take it); builds into its own
# target directory (a first build takes minutes).
#
#   load-tests/future-sizes.sh [N]     # the N largest (default 15)
#   ALL=1 load-tests/future-sizes.sh   # dependencies' futures too (pingora's connector…)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp); trap 'rm -f "$out"' EXIT
touch src/lib.rs # rustc prints the sizes only when it compiles the crate
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/type-sizes} \
  RUSTC_BOOTSTRAP=1 cargo rustc -q --release --lib -- -Zprint-type-sizes >"$out"
grep -E '^print-type-size type: `\{async (fn body of|block@)' "$out" |
  awk -v all="${ALL:-0}" 'all == 1 || /Front/ || !/(pingora_|tokio::|redis::|h2::|hyper|rustls)/' |
  sed -E 's/^print-type-size type: `\{async (fn body of |block@)(.*)\}`: ([0-9]+) bytes.*/\3 \2/' |
  sort -rn | head -n "${1:-15}"
