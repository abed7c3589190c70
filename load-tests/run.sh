#!/usr/bin/env bash
# One-run comparison on this machine: direct → mock, nginx → mock, tollgate → mock,
# and LiteLLM's proxy → mock for context. Small non-streaming requests at several
# concurrencies, alternating the systems each round, a 1 MiB body with `model` last,
# SSE throughput (3-chunk streams, wrk) and SSE latency (20 chunks 5 ms apart from a
# second mock, measured by sse_client.py: time to the first byte, to the first
# content chunk, and in all). Ends with every proxy's peak RSS. Prints markdown and
# writes it to load-tests/out/results.md; plots in load-tests/out/latency.png and
# sse.png (gnuplot, skipped with a message when it cannot be installed).
#
#   load-tests/run.sh                 # full: 10 s per cell, 3 rounds (~25 min)
#   load-tests/run.sh --quick         # smoke: 2 s per cell, 1 round (~1.5 min)
#   load-tests/run.sh --no-litellm    # without LiteLLM (else installed from PyPI into
#                                     # load-tests/.venv on first use, ~1-2 min;
#                                     # skipped with a message when that fails)
#
# Pinning (2 cores). Concurrency 1 measures a proxy's own latency: every process
# shares CPU 1, so no hop pays a cross-core wake-up (on this VM that alone costs
# ~25 µs a hop and would hide what the proxy does). Higher concurrency measures
# throughput and CPU: the proxy under test runs alone on CPU 0; the mock provider
# and the client (wrk or sse_client.py) share CPU 1. nginx runs 1 process
# (master_process off, so its CPU time is the worker's), tollgate 1 worker thread,
# LiteLLM 1 uvicorn worker (--num_workers 1); all are placed alike.
# All traffic is on 127.0.0.1; every process started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=10; ROUNDS=3; CONCS="1 16 64 256"; SSE_CONCS="1 16 64"; LITELLM=1
for arg in "$@"; do
  case $arg in
    --quick) DUR=2; ROUNDS=1; CONCS="1 64"; SSE_CONCS="1 16" ;;
    --no-litellm) LITELLM=0 ;;
    *) echo "usage: load-tests/run.sh [--quick] [--no-litellm]" >&2; exit 2 ;;
  esac
done

command -v wrk >/dev/null && command -v nginx >/dev/null || {
  echo "needs wrk and nginx (apt-get install wrk nginx-light)" >&2; exit 1; }
source load-tests/lib.sh
build
OUT=$ROOT/load-tests/out; mkdir -p "$OUT"

MOCK=$(port); NGX=$(port); TG=$(port); TGM=$(port)
taskset -c 1 "$ROOT/target/release/mock-provider" --listen 127.0.0.1:$MOCK --workers 1 --fail-key sk-bad:429 >"$TMP/mock.log" 2>&1 &
PIDS+=($!); MOCK_PID=$!
# The SSE latency cells' provider: 20 content chunks, 5 ms before each.
MOCKS=$(port); NGXS=$(port); TGS=$(port); TGSM=$(port)
taskset -c 1 "$ROOT/target/release/mock-provider" --listen 127.0.0.1:$MOCKS --workers 1 --chunks 20 --chunk-delay-ms 5 >"$TMP/mock-sse.log" 2>&1 &
PIDS+=($!)
# LiteLLM first: it takes 10-30 s to come up, overlapping the others' start.
LL=$(port); LL_PID=""
if [[ $LITELLM == 1 ]] && litellm_install; then
  litellm_start "$LL" 0 gpt-4o=http://127.0.0.1:$MOCK/v1 gpt-4o-sse20=http://127.0.0.1:$MOCKS/v1
  LL_PID=$LITELLM_PID
fi

nginx_conf "$MOCK:$NGX" "$MOCKS:$NGXS"
taskset -c 0 nginx -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" &
PIDS+=($!); NGX_PID=$!

# nginx runs with access_log off: so does every tollgate here.
printf 'access_log:\n  format: off\n' >"$TMP/base.yaml"
cat >"$TMP/pingora.yaml" <<PCONF
---
version: 1
threads: 1
PCONF
OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench TOLLGATE_ACCESS_KEYS=tg-bench-key RUST_LOG=warn \
  taskset -c 0 "$ROOT/target/release/tollgate" -c "$TMP/pingora.yaml" --config "$TMP/base.yaml" --listen 127.0.0.1:$TG --metrics-listen 127.0.0.1:$TGM >"$TMP/tollgate.log" 2>&1 &
PIDS+=($!); TG_PID=$!
# The same gateway in front of the SSE latency mock.
OPENAI_API_URL=http://127.0.0.1:$MOCKS/v1 OPENAI_API_KEY=sk-bench TOLLGATE_ACCESS_KEYS=tg-bench-key RUST_LOG=warn \
  taskset -c 0 "$ROOT/target/release/tollgate" -c "$TMP/pingora.yaml" --config "$TMP/base.yaml" --listen 127.0.0.1:$TGS --metrics-listen 127.0.0.1:$TGSM >"$TMP/tollgate-sse20.log" 2>&1 &
PIDS+=($!); TGS_PID=$!
# The same gateway with accounting off (no usage parsing, metrics of requests only),
# for the cost of accounting in the same run.
TGN=$(port); TGNM=$(port)
printf 'accounting: false\naccess_log:\n  format: off\n' >"$TMP/noacct.yaml"
OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench TOLLGATE_ACCESS_KEYS=tg-bench-key RUST_LOG=warn \
  taskset -c 0 "$ROOT/target/release/tollgate" -c "$TMP/pingora.yaml" --config "$TMP/noacct.yaml" --listen 127.0.0.1:$TGN --metrics-listen 127.0.0.1:$TGNM >"$TMP/tollgate-noacct.log" 2>&1 &
PIDS+=($!); TGN_PID=$!
# Failover cost: the same gateway with two managed keys, one of which the mock
# always answers 429 (Retry-After: 30).
TGF=$(port); TGFM=$(port)
OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bad,sk-bench TOLLGATE_ACCESS_KEYS=tg-bench-key RUST_LOG=error \
  taskset -c 0 "$ROOT/target/release/tollgate" -c "$TMP/pingora.yaml" --config "$TMP/base.yaml" --listen 127.0.0.1:$TGF --metrics-listen 127.0.0.1:$TGFM >"$TMP/tollgate-429.log" 2>&1 &
PIDS+=($!); TGF_PID=$!
# Rate limits on for the key (limits high enough never to refuse): in-process
# windows, and windows shared through a local Redis (one script call a request).
TGL=$(port); TGLM=$(port); TGR=$(port); TGRM=$(port); RDS=$(port)
LIMITS='access_log:\n  format: off\naccess_keys:\n  - {name: bench, key: tg-bench-key, limits: {requests_per_minute: 1000000000, tokens_per_minute: 1000000000000}}\n'
printf "$LIMITS" >"$TMP/limits.yaml"
OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench RUST_LOG=warn \
  taskset -c 0 "$ROOT/target/release/tollgate" -c "$TMP/pingora.yaml" --config "$TMP/limits.yaml" --listen 127.0.0.1:$TGL --metrics-listen 127.0.0.1:$TGLM >"$TMP/tollgate-limits.log" 2>&1 &
PIDS+=($!); TGL_PID=$!
TGR_PID=""
if command -v redis-server >/dev/null; then
  taskset -c 1 redis-server --port "$RDS" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  printf "${LIMITS}ledger:\n  redis_url: redis://127.0.0.1:$RDS/0\n" >"$TMP/limits-redis.yaml"
  OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench RUST_LOG=warn \
    taskset -c 0 "$ROOT/target/release/tollgate" -c "$TMP/pingora.yaml" --config "$TMP/limits-redis.yaml" --listen 127.0.0.1:$TGR --metrics-listen 127.0.0.1:$TGRM >"$TMP/tollgate-limits-redis.log" 2>&1 &
  PIDS+=($!); TGR_PID=$!
  wait_port $RDS; wait_port $TGR
fi
wait_port $MOCK; wait_port $MOCKS; wait_port $NGX; wait_port $NGXS
wait_port $TG; wait_port $TGS; wait_port $TGN; wait_port $TGF; wait_port $TGL
if [[ -n $LL_PID ]]; then
  if litellm_ready "$LL" gpt-4o && litellm_ready "$LL" gpt-4o-sse20; then
    echo "LiteLLM $("$LITELLM_VENV/bin/pip" show litellm 2>/dev/null | awk '/^Version/ {print $2}') (pid $LL_PID) forwards to the mocks" >&2
  else
    kill "$LL_PID" 2>/dev/null || true; LL_PID=""
  fi
fi

cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; }
RESULTS=$TMP/results.txt; : >"$RESULTS"
# run NAME URL CONC [BODY_FILE]: one wrk cell, appends "NAME CONC RESULT… cpu_ticks=N"
run() {
  local name=$1 url=$2 conc=$3 body=${4:-} pid="" key=tg-bench-key
  case $name in
    nginx*) pid=$NGX_PID ;; tollgate-noacct*) pid=$TGN_PID ;; tollgate-429key*) pid=$TGF_PID ;;
    tollgate-limits-redis*) pid=$TGR_PID ;; tollgate-limits*) pid=$TGL_PID ;; tollgate*) pid=$TG_PID ;;
    litellm*) pid=$LL_PID; key=$LITELLM_KEY ;;
  esac
  local before=0; [[ -n $pid ]] && before=$(cpu_ticks $pid)
  local line
  line=$(KEY=$key BODY_FILE=$body STREAM=${STREAM:-0} taskset -c 1 wrk -t1 -c"$conc" -d"${DUR}s" --timeout 10s -s "$ROOT/load-tests/wrk/post.lua" "$url" | grep '^RESULT')
  local after=0; [[ -n $pid ]] && after=$(cpu_ticks $pid)
  echo "$name $conc ${line#RESULT } cpu_ticks=$((after - before))" >>"$RESULTS"
}

# Warm up every path (connections, pools, page cache).
for u in http://127.0.0.1:$MOCK/v1/chat/completions http://127.0.0.1:$NGX/v1/chat/completions http://127.0.0.1:$TG/v1/chat/completions http://127.0.0.1:$TGN/v1/chat/completions; do
  taskset -c 1 wrk -t1 -c8 -d1s -s "$ROOT/load-tests/wrk/post.lua" "$u" >/dev/null
done
if [[ -n $LL_PID ]]; then
  KEY=$LITELLM_KEY taskset -c 1 wrk -t1 -c8 -d2s -s "$ROOT/load-tests/wrk/post.lua" "http://127.0.0.1:$LL/v1/chat/completions" >/dev/null
fi

# place CPU: move every proxy (all their threads) to that CPU.
place() { for p in "$NGX_PID" "$TG_PID" "$TGS_PID" "$TGN_PID" "$TGF_PID" "$TGL_PID" $TGR_PID $LL_PID; do taskset -a -p -c "$1" "$p" >/dev/null; done; }
for round in $(seq "$ROUNDS"); do
  for c in $CONCS; do
    if [[ $c == 1 ]]; then place 1; else place 0; fi
    run direct   http://127.0.0.1:$MOCK/v1/chat/completions "$c"
    run nginx    http://127.0.0.1:$NGX/v1/chat/completions "$c"
    run tollgate http://127.0.0.1:$TG/v1/chat/completions "$c"
    run tollgate-noacct http://127.0.0.1:$TGN/v1/chat/completions "$c"
    [[ -z $LL_PID ]] || run litellm http://127.0.0.1:$LL/v1/chat/completions "$c"
  done
done
place 0

# One of two keys rate limited, concurrency 64, next to the all-healthy gateway.
place 0
for round in $(seq "$ROUNDS"); do
  run tollgate-healthy http://127.0.0.1:$TG/v1/chat/completions 64
  run tollgate-429key  http://127.0.0.1:$TGF/v1/chat/completions 64
done

# Rate limits on vs off at concurrency 64, and Redis calls per request when shared.
place 0
redis_calls() { redis-cli -p "$RDS" info commandstats | awk -F'[=,:]' '/^cmdstat_(evalsha|eval)[:]/ {n+=$3} END {print n+0}'; }
for round in $(seq "$ROUNDS"); do
  run tollgate-nolimits http://127.0.0.1:$TG/v1/chat/completions 64
  run tollgate-limits   http://127.0.0.1:$TGL/v1/chat/completions 64
  if [[ -n $TGR_PID ]]; then
    before=$(redis_calls)
    run tollgate-limits-redis http://127.0.0.1:$TGR/v1/chat/completions 64
    echo "redis-calls $(( $(redis_calls) - before )) $(tail -1 "$RESULTS")" >>"$TMP/redis.txt"
  fi
done
if [[ -s $TMP/redis.txt ]]; then
  awk '{for (i = 1; i <= NF; i++) if ($i ~ /^requests=/) { split($i, a, "="); r += a[2] } c += $2}
       END { if (r > 0) printf "- shared rate limits: %.3f Redis calls per request (%d calls, %d requests)\n", c / r, c, r }' \
    "$TMP/redis.txt" >"$TMP/redis-summary.txt"
fi

# SSE streams (3 chunks each), concurrency 64: streamed usage parsing and the
# removal of the usage chunk tollgate asked for are on this path.
place 0
for round in $(seq "$ROUNDS"); do
  STREAM=1 run direct-sse   http://127.0.0.1:$MOCK/v1/chat/completions 64
  STREAM=1 run nginx-sse    http://127.0.0.1:$NGX/v1/chat/completions 64
  STREAM=1 run tollgate-sse http://127.0.0.1:$TG/v1/chat/completions 64
  STREAM=1 run tollgate-noacct-sse http://127.0.0.1:$TGN/v1/chat/completions 64
  [[ -z $LL_PID ]] || STREAM=1 run litellm-sse http://127.0.0.1:$LL/v1/chat/completions 64
done

# SSE latency: 20 chunks 5 ms apart (the second mock), sse_client.py on CPU 1,
# placed as the small-request cells. sse20 NAME PORT CONC PID [KEY MODEL] appends
# "NAME CONC RESULT… cpu_ticks=N".
SSE20=$TMP/sse20.txt; : >"$SSE20"
sse20() {
  local name=$1 port=$2 conc=$3 pid=$4 key=${5:-tg-bench-key} model=${6:-gpt-4o} before=0 after=0 line
  [[ -n $pid ]] && before=$(cpu_ticks "$pid")
  line=$(taskset -c 1 python3 "$ROOT/load-tests/sse_client.py" latency --port "$port" --key "$key" \
           --model "$model" --chunks 20 --conc "$conc" --duration "$DUR" --timeout 30 | grep '^RESULT')
  [[ -n $pid ]] && after=$(cpu_ticks "$pid")
  echo "$name $conc ${line#RESULT } cpu_ticks=$((after - before))" >>"$SSE20"
}
for round in $(seq "$ROUNDS"); do
  for c in $SSE_CONCS; do
    if [[ $c == 1 ]]; then place 1; else place 0; fi
    sse20 direct   "$MOCKS" "$c" ""
    sse20 nginx    "$NGXS" "$c" "$NGX_PID"
    sse20 tollgate "$TGS" "$c" "$TGS_PID"
    [[ -z $LL_PID ]] || sse20 litellm "$LL" "$c" "$LL_PID" "$LITELLM_KEY" gpt-4o-sse20
  done
done
place 0

# 1 MiB body, model last (OpenAI SDK order), concurrency 1.
python3 - "$TMP/big.json" <<'PY'
import json, sys
body = '{"messages":[{"role":"user","content":"' + "x" * (1 << 20) + '"}],"model":"gpt-4o"}'
open(sys.argv[1], "w").write(body)
PY
for round in $(seq "$ROUNDS"); do
  run direct-1MiB   http://127.0.0.1:$MOCK/v1/chat/completions 1 "$TMP/big.json"
  run nginx-1MiB    http://127.0.0.1:$NGX/v1/chat/completions 1 "$TMP/big.json"
  run tollgate-1MiB http://127.0.0.1:$TG/v1/chat/completions 1 "$TMP/big.json"
done

# Peak resident set of every proxy over the whole run (VmHWM, kB).
{ echo "nginx $(vm_kb "$NGX_PID" VmHWM)"
  echo "tollgate $(vm_kb "$TG_PID" VmHWM)"
  echo "tollgate-noacct $(vm_kb "$TGN_PID" VmHWM)"
  echo "tollgate-sse20 $(vm_kb "$TGS_PID" VmHWM)"
  [[ -z $LL_PID ]] || echo "litellm $(vm_kb "$LL_PID" VmHWM)"
} >"$TMP/rss.txt"

cp "$RESULTS" "$OUT/results-raw.txt"; cp "$SSE20" "$OUT/sse20-raw.txt"; cp "$TMP/rss.txt" "$OUT/rss-raw.txt"
{ if [[ $LITELLM == 1 && -z $LL_PID ]]; then printf 'LiteLLM was skipped (see the messages of the run).\n\n'; fi
  python3 "$ROOT/load-tests/report.py" "$RESULTS" "$(getconf CLK_TCK)" --sse "$SSE20" --rss "$TMP/rss.txt" --plot-dir "$TMP"
  cat "$TMP/redis-summary.txt" 2>/dev/null || true; } | tee "$OUT/results.md"
if gnuplot_ok; then
  gnuplot -e "data='$TMP/latency.dat'; out='$OUT/latency.png'; panels='p50 p90 p99'; heading='Small chat requests: latency per system (wrk; µs, log scale)'" "$ROOT/load-tests/plot/bars.gp"
  gnuplot -e "data='$TMP/sse.dat'; out='$OUT/sse.png'; panels='TTFB-p50 TTFB-p99 total-p50 total-p99'; heading='SSE streams, 20 chunks 5 ms apart (sse\\_client.py; µs, log scale)'" "$ROOT/load-tests/plot/bars.gp"
  echo "plots: $OUT/latency.png $OUT/sse.png" >&2
fi
