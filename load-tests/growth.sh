#!/usr/bin/env bash
# How tollgate's cost grows, at concurrency 1 (latency added over direct → mock):
#  (a) with the request body: 1 KiB, 16 KiB, 256 KiB, 1 MiB and 4 MiB chat bodies with
#      `model` last (the strict scan reads the whole body before it can route), next
#      to nginx (which buffers the whole body too: proxy_request_buffering on);
#      target: linear or better in body size;
#  (b) with the catalog: the real catalog.yaml vs the same catalog with 10,000
#      synthetic models (each with two aliases and a price) appended to the openai
#      provider, requesting gpt-4o, which both have; plus concurrency 64 for CPU per
#      request, and each instance's RSS; target: flat within 10%.
# Writes load-tests/out/growth.md and load-tests/out/growth.png (gnuplot).
#
#   load-tests/growth.sh            # 10 s cells, 3 rounds (~11 min)
#   load-tests/growth.sh --quick    # 2 s cells, 1 round (2 for the catalog) (~1 min)
#
# Pinning as run.sh: at concurrency 1 every process shares CPU 1 (no cross-core
# wake-up per hop); at concurrency 64 tollgate runs alone on CPU 0, mock and wrk on
# CPU 1. All traffic on 127.0.0.1; every process started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=10; ROUNDS=3
case ${1:-} in
  --quick) DUR=2; ROUNDS=1 ;;
  "") ;;
  *) echo "usage: load-tests/growth.sh [--quick]" >&2; exit 2 ;;
esac
command -v wrk >/dev/null && command -v nginx >/dev/null || {
  echo "needs wrk and nginx (apt-get install wrk nginx-light)" >&2; exit 1; }
source load-tests/lib.sh
build
OUT=$ROOT/load-tests/out; mkdir -p "$OUT"
TOLLGATE=$ROOT/target/release/tollgate

# The synthetic catalog: catalog.yaml with 10,000 models inserted at the head of
# openai's list, validated by `tollgate check`.
EXTRA=10000
python3 - "$ROOT/catalog.yaml" "$TMP/catalog-10k.yaml" "$EXTRA" <<'PY'
import sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src).read().split("\n")
start = lines.index("  - id: openai")
at = next(i for i in range(start, len(lines)) if lines[i] == "    models:") + 1
extra = []
for i in range(n):
    extra += [f"      - id: synth-model-{i:05d}",
              f'        display_name: "Synthetic {i:05d}"',
              "        context_window: 128000",
              "        max_output_tokens: 16384",
              "        modalities: [text]",
              f"        aliases: [synth-alias-{i:05d}, synth-model-{i:05d}-latest]",
              f"        pricing: {{input: {1 + i % 97 / 100:.2f}, output: {4 + i % 89 / 100:.2f}}}"]
open(dst, "w").write("\n".join(lines[:at] + extra + lines[at:]))
PY
printf 'access_log:\n  format: off\n' >"$TMP/base.yaml"
for cat in "$ROOT/catalog.yaml" "$TMP/catalog-10k.yaml"; do
  OPENAI_API_KEY=sk-bench "$TOLLGATE" --config "$TMP/base.yaml" --catalog "$cat" check | tee -a "$TMP/check.txt" >&2
done

MOCK=$(port); NGX=$(port)
taskset -c 1 "$ROOT/target/release/mock-provider" --listen 127.0.0.1:$MOCK --workers 1 >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
nginx_conf "$MOCK:$NGX"
taskset -c 1 nginx -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" &
PIDS+=($!); NGX_PID=$!
printf -- '---\nversion: 1\nthreads: 1\n' >"$TMP/pingora.yaml"
# tollgate_start CATALOG: one tollgate (1 worker thread) on CPU 1; sets TGP, TGP_PID.
tollgate_start() {
  TGP=$(port)
  OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench TOLLGATE_ACCESS_KEYS=tg-bench-key RUST_LOG=warn \
    taskset -c 1 "$TOLLGATE" -c "$TMP/pingora.yaml" --config "$TMP/base.yaml" --catalog "$1" \
    --listen 127.0.0.1:$TGP --metrics-listen 127.0.0.1:$(port) >>"$TMP/tollgate.log" 2>&1 &
  TGP_PID=$!; PIDS+=($TGP_PID)
}
tollgate_start "$ROOT/catalog.yaml"; TG=$TGP; TG_PID=$TGP_PID
tollgate_start "$TMP/catalog-10k.yaml"; TGK=$TGP; TGK_PID=$TGP_PID
wait_port $MOCK; wait_port $NGX; wait_port $TG; wait_port $TGK
echo "catalog-real-idle-rss $(vm_kb "$TG_PID" VmRSS)" >"$TMP/rss.txt"
echo "catalog-10k-idle-rss $(vm_kb "$TGK_PID" VmRSS)" >>"$TMP/rss.txt"

# user and system CPU ticks and minor page faults of a process
ticks() { awk '{print $14, $15, $10}' /proc/$1/stat; }
RESULTS=$TMP/results.txt; : >"$RESULTS"
# run NAME URL CONC PID [BODY_FILE]: one wrk cell, appends "NAME CONC RESULT…
# cpu_ticks=USER+SYS sys_ticks=SYS minflt=N" (the proxy's, over the cell)
run() {
  local name=$1 url=$2 conc=$3 pid=$4 body=${5:-} line u0=0 s0=0 f0=0 u1=0 s1=0 f1=0
  [[ -n $pid ]] && read -r u0 s0 f0 < <(ticks "$pid")
  line=$(BODY_FILE=$body taskset -c 1 wrk -t1 -c"$conc" -d"${DUR}s" --timeout 10s -s "$ROOT/load-tests/wrk/post.lua" "$url" | grep '^RESULT')
  [[ -n $pid ]] && read -r u1 s1 f1 < <(ticks "$pid")
  echo "$name $conc ${line#RESULT } cpu_ticks=$((u1 + s1 - u0 - s0)) sys_ticks=$((s1 - s0)) minflt=$((f1 - f0))" >>"$RESULTS"
}
for u in "$MOCK" "$NGX" "$TG" "$TGK"; do
  taskset -c 1 wrk -t1 -c4 -d1s -s "$ROOT/load-tests/wrk/post.lua" "http://127.0.0.1:$u/v1/chat/completions" >/dev/null
done

# (a) Body size, `model` last.
SIZES_KIB="1 16 256 1024 4096"
for kib in $SIZES_KIB; do
  python3 - "$TMP/body-$kib.json" "$kib" <<'PY'
import sys
head, tail = '{"messages":[{"role":"user","content":"', '"}],"model":"gpt-4o"}'
n = int(sys.argv[2]) * 1024 - len(head) - len(tail)
open(sys.argv[1], "w").write(head + "x" * n + tail)
PY
done
for round in $(seq "$ROUNDS"); do
  for kib in $SIZES_KIB; do
    run "direct-body$kib"   "http://127.0.0.1:$MOCK/v1/chat/completions" 1 "" "$TMP/body-$kib.json"
    run "nginx-body$kib"    "http://127.0.0.1:$NGX/v1/chat/completions" 1 "$NGX_PID" "$TMP/body-$kib.json"
    run "tollgate-body$kib" "http://127.0.0.1:$TG/v1/chat/completions" 1 "$TG_PID" "$TMP/body-$kib.json"
  done
done

# (b) Catalog size: small body, concurrency 1 (all on CPU 1), then 64 (tollgate on CPU 0).
# At least 2 rounds, the two gateways' order swapped each round (the second of two
# back-to-back cells tends to run faster).
CAT_ROUNDS=$(( ROUNDS > 2 ? ROUNDS : 2 ))
catalog_round() {
  local conc=$1 round=$2
  run direct "http://127.0.0.1:$MOCK/v1/chat/completions" "$conc" ""
  local pair=("tollgate-catalog $TG $TG_PID" "tollgate-catalog10k $TGK $TGK_PID")
  (( round % 2 )) || pair=("${pair[1]}" "${pair[0]}")
  for p in "${pair[@]}"; do
    set -- $p
    run "$1" "http://127.0.0.1:$2/v1/chat/completions" "$conc" "$3"
  done
}
for round in $(seq "$CAT_ROUNDS"); do catalog_round 1 "$round"; done
for p in "$TG_PID" "$TGK_PID"; do taskset -a -p -c 0 "$p" >/dev/null; done
# The first cell after a move runs ~20 % slow (pool growth, migration): warm both up.
for u in "$TG" "$TGK"; do
  taskset -c 1 wrk -t1 -c64 -d1s -s "$ROOT/load-tests/wrk/post.lua" "http://127.0.0.1:$u/v1/chat/completions" >/dev/null
done
for round in $(seq "$CAT_ROUNDS"); do catalog_round 64 "$round"; done
echo "catalog-real-peak-rss $(vm_kb "$TG_PID" VmHWM)" >>"$TMP/rss.txt"
echo "catalog-10k-peak-rss $(vm_kb "$TGK_PID" VmHWM)" >>"$TMP/rss.txt"
echo "nginx-peak-rss $(vm_kb "$NGX_PID" VmHWM)" >>"$TMP/rss.txt"

cp "$RESULTS" "$OUT/growth-raw.txt"; cp "$TMP/rss.txt" "$OUT/growth-rss.txt"; cp "$TMP/check.txt" "$OUT/growth-check.txt"
python3 "$ROOT/load-tests/growth_report.py" "$RESULTS" "$(getconf CLK_TCK)" "$TMP/rss.txt" "$TMP/check.txt" "$TMP/growth.dat" \
  | tee "$OUT/growth.md"
if gnuplot_ok; then
  gnuplot -e "data='$TMP/growth.dat'; out='$OUT/growth.png'" "$ROOT/load-tests/plot/growth.gp"
  echo "plot: $OUT/growth.png" >&2
fi
