#!/usr/bin/env bash
# One-run comparison on this machine: direct → mock, nginx → mock, tollgate → mock.
# Small non-streaming requests at several concurrencies, alternating the systems
# each round, plus a 1 MiB body with `model` last. Prints a markdown table and
# writes it to load-tests/out/results.md.
#
#   load-tests/run.sh            # full: 10 s per cell, 3 rounds
#   load-tests/run.sh --quick    # smoke: 2 s per cell, 1 round
#
# Pinning (2 cores). Concurrency 1 measures a proxy's own latency: every process
# shares CPU 1, so no hop pays a cross-core wake-up (on this VM that alone costs
# ~25 µs a hop and would hide what the proxy does). Higher concurrency measures
# throughput and CPU: the proxy under test runs alone on CPU 0; the mock provider
# and the wrk client share CPU 1. nginx runs 1 process (master_process off, so its
# CPU time is the worker's), tollgate 1 worker thread.
# All traffic is on 127.0.0.1; every process started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=10; ROUNDS=3; CONCS="1 16 64 256"
if [[ "${1:-}" == "--quick" ]]; then DUR=2; ROUNDS=1; CONCS="1 64"; fi

command -v wrk >/dev/null && command -v nginx >/dev/null || {
  echo "needs wrk and nginx (apt-get install wrk nginx-light)" >&2; exit 1; }
cargo build --release -q -p tollgate -p mock-provider
OUT=$ROOT/load-tests/out; mkdir -p "$OUT"
TMP=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

MOCK=$(port); NGX=$(port); TG=$(port); TGM=$(port)
taskset -c 1 "$ROOT/target/release/mock-provider" --listen 127.0.0.1:$MOCK --workers 1 --fail-key sk-bad:429 >"$TMP/mock.log" 2>&1 &
PIDS+=($!); MOCK_PID=$!

cat >"$TMP/nginx.conf" <<NGINX
worker_processes 1;
master_process off;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_max_body_size 32m;
  client_body_buffer_size 2m;
  client_body_temp_path $TMP/nginx-body;
  proxy_temp_path $TMP/nginx-proxy;
  upstream mock { server 127.0.0.1:$MOCK; keepalive 256; }
  server {
    listen 127.0.0.1:$NGX;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
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
wait_port $MOCK; wait_port $NGX; wait_port $TG; wait_port $TGN; wait_port $TGF; wait_port $TGL

cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; }
RESULTS=$TMP/results.txt; : >"$RESULTS"
# run NAME URL CONC [BODY_FILE]: one wrk cell, appends "NAME CONC RESULT… cpu_ticks=N"
run() {
  local name=$1 url=$2 conc=$3 body=${4:-} pid=""
  case $name in
    nginx*) pid=$NGX_PID ;; tollgate-noacct*) pid=$TGN_PID ;; tollgate-429key*) pid=$TGF_PID ;;
    tollgate-limits-redis*) pid=$TGR_PID ;; tollgate-limits*) pid=$TGL_PID ;; tollgate*) pid=$TG_PID ;;
  esac
  local before=0; [[ -n $pid ]] && before=$(cpu_ticks $pid)
  local line
  line=$(BODY_FILE=$body STREAM=${STREAM:-0} taskset -c 1 wrk -t1 -c"$conc" -d"${DUR}s" --timeout 10s -s "$ROOT/load-tests/wrk/post.lua" "$url" | grep '^RESULT')
  local after=0; [[ -n $pid ]] && after=$(cpu_ticks $pid)
  echo "$name $conc ${line#RESULT } cpu_ticks=$((after - before))" >>"$RESULTS"
}

# Warm up every path (connections, pools, page cache).
for u in http://127.0.0.1:$MOCK/v1/chat/completions http://127.0.0.1:$NGX/v1/chat/completions http://127.0.0.1:$TG/v1/chat/completions http://127.0.0.1:$TGN/v1/chat/completions; do
  taskset -c 1 wrk -t1 -c8 -d1s -s "$ROOT/load-tests/wrk/post.lua" "$u" >/dev/null
done

# place CPU: move both proxies (all their threads) to that CPU.
place() { for p in "$NGX_PID" "$TG_PID" "$TGN_PID" "$TGF_PID" "$TGL_PID" $TGR_PID; do taskset -a -p -c "$1" "$p" >/dev/null; done; }
for round in $(seq "$ROUNDS"); do
  for c in $CONCS; do
    if [[ $c == 1 ]]; then place 1; else place 0; fi
    run direct   http://127.0.0.1:$MOCK/v1/chat/completions "$c"
    run nginx    http://127.0.0.1:$NGX/v1/chat/completions "$c"
    run tollgate http://127.0.0.1:$TG/v1/chat/completions "$c"
    run tollgate-noacct http://127.0.0.1:$TGN/v1/chat/completions "$c"
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
done

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

{ python3 "$ROOT/load-tests/report.py" "$RESULTS" "$(getconf CLK_TCK)"; cat "$TMP/redis-summary.txt" 2>/dev/null || true; } | tee "$OUT/results.md"
