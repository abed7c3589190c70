#!/usr/bin/env bash
# Many slow SSE streams held at once through one tollgate: its memory per open
# stream, and whether every stream comes through intact.
#
#   load-tests/streams.sh            # 10,000 streams of 60 chunks 500 ms apart (~1 min)
#   load-tests/streams.sh --quick    # 2,000 streams of 30 chunks 500 ms apart (~25 s)
#   STREAMS=5000 load-tests/streams.sh --quick   # another count
#
# The mock streams 60 (30) content chunks, 500 ms before each; sse_client.py hold opens
# all N streams (one connection each, from 127.0.0.2-127.0.0.5 so client ports are
# spread over four source addresses), and once every stream has its first chunk and
# none has ended, reads tollgate's VmRSS, and again every 0.5 s until the first stream
# ends. RSS per stream = (RSS with all N open − RSS idle after a warm-up) / N.
# A stream is intact when it is 200, its chunked body is whole, it has every chunk
# and ends with `data: [DONE]`. Targets: ≤ 16 KiB per stream, 0 broken.
#
# tollgate (1 worker thread) runs alone on CPU 0, the mock and the client on CPU 1.
# Raises the open-file limit for this script's processes (root: up to the hard
# limit); widens net.ipv4.ip_local_port_range only if it has fewer ports than the
# upstream side needs, and puts it back at exit. All traffic on 127.0.0.0/8; every
# process started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
N=10000; CHUNKS=60; DELAY_MS=500
case ${1:-} in
  --quick) N=2000; CHUNKS=30 ;;
  "") ;;
  *) echo "usage: load-tests/streams.sh [--quick]  (STREAMS=N overrides the count)" >&2; exit 2 ;;
esac
N=${STREAMS:-$N}
source load-tests/lib.sh
build
OUT=$ROOT/load-tests/out; mkdir -p "$OUT"

# Each stream holds a client socket and tollgate holds two (client and upstream);
# the mock one.
need=$((2 * N + 1024))
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < need )); then
  echo "open-file limit $(ulimit -n) < $need needed for $N streams (run as root or raise the hard limit)" >&2; exit 1
fi
# tollgate's upstream connections all go to one mock address from 127.0.0.1.
RANGE_FILE=/proc/sys/net/ipv4/ip_local_port_range
read -r lo hi <"$RANGE_FILE"
OLD_RANGE=""
if (( hi - lo + 1 < N + 2000 )); then
  OLD_RANGE="$lo $hi"
  echo "widening ip_local_port_range from '$OLD_RANGE' to '10000 65000' for this run" >&2
  sysctl -q -w net.ipv4.ip_local_port_range="10000 65000" || { echo "cannot widen ip_local_port_range" >&2; exit 1; }
fi
restore() { [[ -z $OLD_RANGE ]] || sysctl -q -w net.ipv4.ip_local_port_range="$OLD_RANGE"; }
trap 'restore; cleanup' EXIT

MOCK=$(port); TG=$(port); TGM=$(port)
taskset -c 1 "$ROOT/target/release/mock-provider" --listen 127.0.0.1:$MOCK --workers 1 \
  --chunks "$CHUNKS" --chunk-delay-ms "$DELAY_MS" >"$TMP/mock.log" 2>&1 &
PIDS+=($!); MOCK_PID=$!
printf 'access_log:\n  format: off\n' >"$TMP/tollgate.yaml"
printf -- '---\nversion: 1\nthreads: 1\n' >"$TMP/pingora.yaml"
OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench TOLLGATE_ACCESS_KEYS=tg-bench-key RUST_LOG=warn \
  taskset -c 0 "$ROOT/target/release/tollgate" -c "$TMP/pingora.yaml" --config "$TMP/tollgate.yaml" \
  --listen 127.0.0.1:$TG --metrics-listen 127.0.0.1:$TGM >"$TMP/tollgate.log" 2>&1 &
PIDS+=($!); TG_PID=$!
wait_port $MOCK; wait_port $TG

# Warm-up (non-streaming answers come at once), then the idle baseline.
if command -v wrk >/dev/null; then
  taskset -c 1 wrk -t1 -c16 -d1s -s "$ROOT/load-tests/wrk/post.lua" "http://127.0.0.1:$TG/v1/chat/completions" >/dev/null
else
  for _ in $(seq 50); do curl -s -o /dev/null -H 'Authorization: Bearer tg-bench-key' -d '{"model":"gpt-4o","messages":[]}' "http://127.0.0.1:$TG/v1/chat/completions"; done
fi
sleep 1
IDLE=$(vm_kb "$TG_PID" VmRSS); MOCK_IDLE=$(vm_kb "$MOCK_PID" VmRSS)
echo "tollgate idle RSS ${IDLE} kB; opening $N streams of $CHUNKS chunks ${DELAY_MS} ms apart…" >&2

TIMEOUT=$((CHUNKS * DELAY_MS / 1000 + 90))
taskset -c 1 python3 "$ROOT/load-tests/sse_client.py" hold --port "$TG" --streams "$N" --chunks "$CHUNKS" \
  --pid "$TG_PID" --timeout "$TIMEOUT" | tee "$TMP/hold.txt" >&2
sleep 2
AFTER=$(vm_kb "$TG_PID" VmRSS); HWM=$(vm_kb "$TG_PID" VmHWM); MOCK_HWM=$(vm_kb "$MOCK_PID" VmHWM)
ALIVE=$(kill -0 "$TG_PID" 2>/dev/null && echo yes || echo NO)
LOGGED=$(grep -c -E 'ERROR|WARN' "$TMP/tollgate.log" || true)

# For comparison, what an accepted connection that has sent nothing costs, measured
# on a fresh tollgate (the first one's allocator now holds the streams' memory).
TGI=$(port)
OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench TOLLGATE_ACCESS_KEYS=tg-bench-key RUST_LOG=warn \
  taskset -c 0 "$ROOT/target/release/tollgate" -c "$TMP/pingora.yaml" --config "$TMP/tollgate.yaml" \
  --listen 127.0.0.1:$TGI --metrics-listen 127.0.0.1:$(port) >"$TMP/tollgate-idle.log" 2>&1 &
PIDS+=($!); TGI_PID=$!
wait_port $TGI
IDLE_CONNS=$(( N < 1000 ? N : 1000 ))
sleep 0.5
PER_IDLE=$(taskset -c 1 python3 "$ROOT/load-tests/sse_client.py" idle --port "$TGI" --streams "$IDLE_CONNS" \
  --pid "$TGI_PID" --chunks 0 | sed -n 's/.*per_conn_kib=\([0-9.-]*\).*/\1/p')

line=$(grep '^RESULT' "$TMP/hold.txt")
kv() { sed -n "s/.* $1=\([0-9.-]*\).*/\1/p" <<<" ${line#RESULT}"; }
broken_detail=$(grep '^broken:' "$TMP/hold.txt" || true)
python3 - "$N" "$CHUNKS" "$DELAY_MS" "$IDLE" "$(kv rss_all_open_kb)" "$(kv rss_held_max_kb)" "$AFTER" "$HWM" \
  "$(kv intact)" "$(kv broken)" "$(kv peak_open)" "$(kv all_open_s)" "$MOCK_IDLE" "$MOCK_HWM" "$ALIVE" "$LOGGED" \
  "$broken_detail" "$IDLE_CONNS" "$PER_IDLE" <<'PY' | tee "$OUT/streams.md"
import sys
(n, chunks, delay, idle, at_n, held, after, hwm, intact, broken, peak, all_open_s,
 mock_idle, mock_hwm, alive, logged) = sys.argv[1:17]
detail, idle_conns, per_idle = sys.argv[17:20]
n, idle, at_n, held, after, hwm = int(n), int(idle), int(at_n), int(held), int(after), int(hwm)
per = (at_n - idle) / n if at_n else float("nan")
per_max = (held - idle) / n if held else float("nan")
print(f"{n:,} concurrent SSE streams of {chunks} chunks {delay} ms apart through one tollgate (1 worker thread).\n")
print("| streams | all open after | peak open at once | intact | broken | tollgate RSS idle | RSS, all open | max RSS while held "
      "| RSS per stream | RSS after | peak RSS (VmHWM) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
print(f"| {n:,} | {float(all_open_s):.1f} s | {int(peak):,} | {int(intact):,} | {broken} | {idle / 1024:.1f} MiB | {at_n / 1024:.1f} MiB "
      f"| {held / 1024:.1f} MiB | {per:.1f} KiB (max {per_max:.1f}) | {after / 1024:.1f} MiB | {hwm / 1024:.1f} MiB |")
print()
ok_mem, ok_intact = per_max <= 16, int(broken) == 0 and int(peak) == n
print(f"- RSS per open stream: {per:.1f} KiB at the moment all were open, {per_max:.1f} KiB at the most while held "
      f"(target ≤ 16 KiB): {'met' if ok_mem else 'MISSED'}")
print(f"- streams intact: {int(intact):,} of {n:,}, all {n:,} open at once: {'yes' if int(peak) == n else 'NO (peak ' + peak + ')'} "
      f"(target: 0 broken): {'met' if ok_intact else 'MISSED'}" + (f"; {detail}" if detail else ""))
print(f"- tollgate still running after the run: {alive}; warnings/errors in its log: {logged}")
print(f"- an accepted connection that has sent nothing: {per_idle} KiB of RSS each ({idle_conns} of them, a fresh tollgate)")
print(f"- for context, the mock's RSS: {int(mock_idle) / 1024:.1f} MiB idle, peak {int(mock_hwm) / 1024:.1f} MiB")
PY
