#!/usr/bin/env bash
# Two tollgate binaries against each other and against nginx, in alternating
# rounds, placed as run.sh places them at concurrency >= 16 (the proxy alone on
# CPU 0; the mock and wrk on CPU 1): requests per second, p50/p99 and CPU per
# request of each, and the medians over the rounds.
#
#   load-tests/ab.sh OLD_BINARY [NEW_BINARY]      # NEW defaults to target/release/tollgate
#   ROUNDS=7 DUR=5 CONC=64 STREAM=1 load-tests/ab.sh /tmp/tollgate-old
#   NEW_PINGORA='work_stealing: false' load-tests/ab.sh target/release/tollgate target/release/tollgate
#   STRACE=1 load-tests/ab.sh /tmp/tollgate-old   # then system calls per request of NEW
#   SYSCALLS=1 load-tests/ab.sh /tmp/tollgate-old # then those of nginx and NEW, by perf
#
# OLD_PINGORA and NEW_PINGORA add lines to each one's pingora conf (threads: 1).
#
# Run it both ways round (ab.sh A B, then ab.sh B A) and take the geometric mean
# of the two ratios: on this VM one binary against itself came out 0.93x in the
# second slot, although the rounds alternate their order.
set -euo pipefail
cd "$(dirname "$0")/.."
source load-tests/lib.sh
OLD=${1:?usage: ab.sh OLD_BINARY [NEW_BINARY]}
NEW=${2:-$ROOT/target/release/tollgate}
ROUNDS=${ROUNDS:-5}; DUR=${DUR:-5}; CONC=${CONC:-64}
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx" >&2; exit 1; }
[[ -n ${2:-} ]] || build

MOCK=$(port); NGX=$(port); A=$(port); B=$(port)
taskset -c 1 "$ROOT/target/release/mock-provider" --listen 127.0.0.1:$MOCK --workers 1 >/dev/null 2>&1 &
MOCK_PID=$!; PIDS+=($MOCK_PID)
nginx_conf "$MOCK:$NGX"
taskset -c 0 nginx -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" &
NGX_PID=$!; PIDS+=($NGX_PID)
printf -- "---\nversion: 1\nthreads: 1\n%s\n" "${OLD_PINGORA:-}" >"$TMP/pingora-old.yaml"
printf -- "---\nversion: 1\nthreads: 1\n%s\n" "${NEW_PINGORA:-}" >"$TMP/pingora-new.yaml"
printf 'access_log:\n  format: off\naccess_keys:\n  - {name: bench, key: tg-bench-key}\n' >"$TMP/tg.yaml"
start() {
  OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench RUST_LOG=error \
    taskset -c 0 "$1" -c "$TMP/pingora-$3.yaml" --config "$TMP/tg.yaml" --listen 127.0.0.1:$2 \
    --metrics-listen 127.0.0.1:$(port) >/dev/null 2>&1 &
  PIDS+=($!); LAST=$!
}
start "$OLD" $A old; A_PID=$LAST
start "$NEW" $B new; B_PID=$LAST
wait_port $MOCK; wait_port $NGX; wait_port $A; wait_port $B
for p in $A_PID $B_PID; do taskset -a -p -c 0 "$p" >/dev/null; done

# ticks PID: user and system CPU ticks so far.
ticks() { awk '{print $14, $15}' /proc/$1/stat; }
HZ=$(getconf CLK_TCK)
# load PORT: one wrk run against the port; prints its RESULT line.
load() {
  KEY=tg-bench-key STREAM=${STREAM:-0} BODY_FILE=${BODY_FILE:-} taskset -c 1 wrk -t1 -c"$CONC" -d"${DUR}s" \
    --timeout 10s -s "$ROOT/load-tests/wrk/post.lua" "http://127.0.0.1:$1/v1/chat/completions" | grep '^RESULT'
}
# cell NAME PORT PID: one wrk run; prints "NAME req/s p50 p99 cpu_us_per_request".
cell() {
  local before after line
  before=$(ticks "$3")
  line=$(load "$2")
  after=$(ticks "$3")
  python3 - "$1" "$line" "$before" "$after" "$HZ" <<'PY'
import sys
name, line, before, after, hz = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
(u0, s0), (u1, s1) = map(int, before.split()), map(int, after.split())
user, ticks = u1 - u0, (u1 - u0) + (s1 - s0)
f = dict(kv.split("=") for kv in line.split()[1:])
n, us = int(f["requests"]), int(f["duration_us"])
bad = int(f["errors"]) + int(f["non2xx"])
print(f"{name} {n / us * 1e6:.0f} {f['p50']} {f['p99']} {ticks / hz * 1e6 / max(n, 1):.1f} {bad} {100 * user / max(ticks, 1):.0f}")
PY
}
for u in $MOCK $NGX $A $B; do taskset -c 1 wrk -t1 -c8 -d1s -s "$ROOT/load-tests/wrk/post.lua" "http://127.0.0.1:$u/v1/chat/completions" >/dev/null; done
: >"$TMP/cells"
for r in $(seq "$ROUNDS"); do
  order=("direct $MOCK $MOCK_PID" "nginx $NGX $NGX_PID" "old $A $A_PID" "new $B $B_PID")
  ((r % 2)) || order=("new $B $B_PID" "old $A $A_PID" "nginx $NGX $NGX_PID" "direct $MOCK $MOCK_PID")
  for o in "${order[@]}"; do cell $o | tee -a "$TMP/cells"; done
done
echo "--- concurrency $CONC, ${DUR} s cells, $ROUNDS rounds, medians:"
python3 - "$TMP/cells" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *v = line.split()
    rows.setdefault(name, []).append([float(x) for x in v])
med = {n: [statistics.median(c[i] for c in cs) for i in range(6)] for n, cs in rows.items()}
d = med["direct"]
print(f"direct {d[0]:8.0f} req/s  p50 {d[1]:6.0f}  p99 {d[2]:6.0f}  (the mock's CPU: {d[3]:.1f} µs)")
for n in ("nginx", "old", "new"):
    m = med[n]
    print(f"{n:6} {m[0]:8.0f} req/s  added p50 {m[1] - d[1]:6.0f}  p99 {m[2] - d[2]:6.0f}  cpu {m[3]:5.1f} µs ({m[5]:.0f} % user)  errors {m[4]:.0f}"
          f"  | x nginx: {m[0] / med['nginx'][0]:.2f} req/s, {m[3] / med['nginx'][3]:.2f} cpu")
print(f"new/old: {med['new'][0] / med['old'][0]:.3f} req/s, {med['new'][3] / med['old'][3]:.3f} cpu per request")
PY

# STRACE=1: one more cell of the new binary under `strace -c -f` (slower, so only
# the counts matter): its system calls per request, by name.
if [[ ${STRACE:-0} == 1 ]]; then
  command -v strace >/dev/null || { echo "STRACE=1 needs strace" >&2; exit 1; }
  strace -c -f -p "$B_PID" -o "$TMP/strace.txt" & ST=$!
  sleep 0.5
  line=$(load "$B")
  sleep 0.2; kill -INT "$ST"; wait "$ST" 2>/dev/null || true
  n=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
  echo "--- new, system calls per request under strace ($n requests):"
  # Rows of `strace -c`: % time, seconds, usecs/call, calls, [errors,] syscall.
  awk -v n="$n" '$1 ~ /^[0-9.]+$/ && $NF != "total" { c[$NF] = $4; t += $4 }
    END { for (s in c) printf "%-16s %.3f\n", s, c[s] / n; printf "%-16s %.3f\n", "all", t / n }' "$TMP/strace.txt" | sort -k2 -rn
fi

# SYSCALLS=1: one more cell each of nginx and the new binary, their system calls
# counted by perf's tracepoints (light enough that the load batches as in the
# cells above, unlike strace): per request, by name.
if [[ ${SYSCALLS:-0} == 1 ]]; then
  command -v perf >/dev/null || { echo "SYSCALLS=1 needs perf" >&2; exit 1; }
  for o in "nginx $NGX $NGX_PID" "new $B $B_PID"; do
    read -r name port pid <<<"$o"
    perf stat -e 'syscalls:sys_enter_*' -p "$pid" -o "$TMP/perf-$name.txt" -- sleep $((DUR + 1)) & PS=$!
    sleep 0.5
    line=$(load "$port")
    wait "$PS"
    n=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    echo "--- $name, system calls per request under perf stat ($n requests):"
    awk -v n="$n" '$2 ~ /^syscalls:sys_enter_/ { gsub(",", "", $1); if ($1 > 0) { sub("syscalls:sys_enter_", "", $2); c[$2] = $1; t += $1 } }
      END { for (s in c) printf "%-16s %.3f\n", s, c[s] / n; printf "%-16s %.3f\n", "all", t / n }' "$TMP/perf-$name.txt" | sort -k2 -rn
  done
fi
