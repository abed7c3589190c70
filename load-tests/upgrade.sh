#!/usr/bin/env bash
# A zero-downtime upgrade under load: wrk posts small requests and 100 SSE
# streams (4 s each) run through tollgate while it is told to upgrade itself
# (SIGUSR2: it starts the binary again with -u, hands over its listeners, and
# drains). Reports refused connections and cut streams; both must be 0.
#
#   load-tests/upgrade.sh
#
# All traffic on 127.0.0.1; every process started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
command -v wrk >/dev/null && command -v curl >/dev/null || {
  echo "needs wrk and curl" >&2; exit 1; }
cargo build --release -q -p tollgate -p mock-provider
TMP=$(mktemp -d); PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -f $TMP/successor ]] && kill "$(cat "$TMP/successor")" 2>/dev/null || true
  wait 2>/dev/null || true; rm -rf "$TMP"
}
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

MOCK=$(port); TG=$(port); TGM=$(port)
"$ROOT/target/release/mock-provider" --listen 127.0.0.1:$MOCK --workers 1 --chunks 40 --chunk-delay-ms 100 >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
cat >"$TMP/pingora.yaml" <<PCONF
---
version: 1
threads: 2
upgrade_sock: $TMP/upgrade.sock
grace_period_seconds: 60
PCONF
printf 'access_log:\n  format: off\n' >"$TMP/tollgate.yaml"
OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench TOLLGATE_ACCESS_KEYS=tg-bench-key RUST_LOG=info \
  "$ROOT/target/release/tollgate" -c "$TMP/pingora.yaml" --config "$TMP/tollgate.yaml" \
  --listen 127.0.0.1:$TG --metrics-listen 127.0.0.1:$TGM >"$TMP/tollgate.log" 2>&1 &
OLD=$!; PIDS+=($OLD)
wait_port $MOCK; wait_port $TG

stream() {
  curl -sN --max-time 30 -H 'Authorization: Bearer tg-bench-key' -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    "http://127.0.0.1:$TG/v1/chat/completions" >"$TMP/stream-$1.txt" 2>/dev/null || true
}
wrk -t1 -c32 -d12s --timeout 10s -s "$ROOT/load-tests/wrk/post.lua" \
  "http://127.0.0.1:$TG/v1/chat/completions" >"$TMP/wrk.txt" &
WRK=$!
for i in $(seq 1 50); do stream "$i" & done
sleep 2
echo "upgrade: SIGUSR2 to pid $OLD"
kill -USR2 "$OLD"
for _ in $(seq 100); do grep -q 'started successor pid' "$TMP/tollgate.log" && break; sleep 0.05; done
grep -o 'started successor pid [0-9]*' "$TMP/tollgate.log" | awk '{print $4}' >"$TMP/successor"
# More streams while both processes hold the listeners, then after the hand-over.
for i in $(seq 51 75); do stream "$i" & done
sleep 5
for i in $(seq 76 100); do stream "$i" & done
wait "$WRK" || true
for _ in $(seq 300); do kill -0 "$OLD" 2>/dev/null || break; sleep 0.1; done
wait_streams() { while (( $(jobs -rp | wc -l) > 1 )); do sleep 0.1; done; }
wait_streams
old_alive=$(kill -0 "$OLD" 2>/dev/null && echo yes || echo no)

line=$(grep '^RESULT' "$TMP/wrk.txt")
kv() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
cut=0
for i in $(seq 1 100); do
  tail -c 200 "$TMP/stream-$i.txt" 2>/dev/null | grep -q 'data: \[DONE\]' || cut=$((cut + 1))
done
echo "requests:            $(kv requests) (non-2xx $(kv non2xx))"
echo "refused connections: $(kv connect)"
echo "read/write errors:   $(kv read)/$(kv write)"
echo "timeouts:            $(kv timeout)"
echo "SSE streams cut:     $cut of 100"
echo "old process exited:  $([[ $old_alive == no ]] && echo yes || echo NO)"
[[ $(kv connect) == 0 && $cut == 0 && $old_alive == no ]]
