#!/usr/bin/env bash
# CPU per request of accounting and of rate limits, in one run: three tollgates
# with the same mock behind them, measured in alternating rounds with wrk at
# concurrency 64, for plain JSON answers and for SSE streams.
#
#   noacct = accounting off
#   plain  = accounting on, access key without limits (the reference)
#   limits = accounting on, high requests- and tokens-per-minute limits on the key
#
#   load-tests/cost.sh [--rounds N] [--dur SECONDS]
#
# CPU is the gateway's own user and system time (/proc/PID/stat, 10 ms ticks)
# divided by the requests wrk completed. Every tollgate runs on CPU 0, wrk and the
# mock on CPU 1; the order of the three alternates from round to round. The report
# gives each ratio's median and its range over the rounds, since this VM is shared
# and single cells move by several per cent. load-tests/callgrind.sh counts the same
# differences in user-space instructions, without the noise.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=7; DUR=4
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --dur) DUR=$2; shift 2 ;;
    *) echo "usage: load-tests/cost.sh [--rounds N] [--dur SECONDS]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
source load-tests/lib.sh
build
OUT=$ROOT/load-tests/out; mkdir -p "$OUT"

MOCK=$(port)
taskset -c 1 "$ROOT/target/release/mock-provider" --listen 127.0.0.1:$MOCK --workers 1 >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
printf -- "---\nversion: 1\nthreads: 1\n" >"$TMP/pingora.yaml"
MODES=(noacct plain limits)
declare -A GW PID
for m in "${MODES[@]}"; do
  key='{name: bench, key: tg-bench-key}' acct=true
  case $m in
    noacct) acct=false ;;
    limits) key='{name: bench, key: tg-bench-key, limits: {requests_per_minute: 1000000000, tokens_per_minute: 1000000000000}}' ;;
  esac
  printf 'access_log:\n  format: off\naccounting: %s\naccess_keys:\n  - %s\n' "$acct" "$key" >"$TMP/$m.yaml"
  GW[$m]=$(port)
  OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench RUST_LOG=warn \
    taskset -c 0 "$ROOT/target/release/tollgate" -c "$TMP/pingora.yaml" --config "$TMP/$m.yaml" \
      --listen 127.0.0.1:${GW[$m]} --metrics-listen 127.0.0.1:$(port) >"$TMP/$m.log" 2>&1 &
  PIDS+=($!); PID[$m]=$!
done
wait_port $MOCK
for m in "${MODES[@]}"; do wait_port "${GW[$m]}"; done

# cell MODE STREAM: one wrk run; appends "MODE STREAM requests utime stime" (ticks).
cell() {
  local m=$1 s=$2 pid=${PID[$1]} u0 s0 line
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  line=$(STREAM=$s taskset -c 1 wrk -t1 -c64 -d"${DUR}s" --timeout 10s -s "$ROOT/load-tests/wrk/post.lua" \
    "http://127.0.0.1:${GW[$m]}/v1/chat/completions" | grep '^RESULT')
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  local req=${line#*requests=}; req=${req%% *}
  local bad=${line#*non2xx=}; bad=${bad%% *}
  ((bad == 0)) || { echo "$m stream=$s: $bad answers were not 2xx" >&2; exit 1; }
  echo "$m $s $req $((u1 - u0)) $((s1 - s0))" >>"$TMP/cells.txt"
}

for m in "${MODES[@]}"; do cell "$m" 0; cell "$m" 1; done
: >"$TMP/cells.txt"
for round in $(seq "$ROUNDS"); do
  order=("${MODES[@]}")
  ((round % 2)) || order=(limits plain noacct)
  for s in 0 1; do
    for m in "${order[@]}"; do cell "$m" "$s"; done
  done
done
cp "$TMP/cells.txt" "$OUT/cost-raw.txt"

python3 - "$TMP/cells.txt" "$ROUNDS" <<'PY' | tee "$OUT/cost.md"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
tick_us = 1e6 / 100
cells = {}  # (mode, stream) -> [(user us/req, sys us/req)]
for m, s, req, u, k in rows:
    req = int(req)
    cells.setdefault((m, s), []).append((int(u) * tick_us / req, int(k) * tick_us / req))
print(f"CPU per request at concurrency 64, {sys.argv[2]} alternating rounds (µs; median of rounds)\n")
print("| | answer | user | system | total | user share |")
print("|---|---|---:|---:|---:|---:|")
for (m, s), v in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    u = statistics.median(x for x, _ in v); k = statistics.median(y for _, y in v)
    t = statistics.median(x + y for x, y in v)
    print(f"| {m} | {'SSE' if s == '1' else 'JSON'} | {u:.2f} | {k:.2f} | {t:.2f} | {100 * u / t:.0f} % |")
print()
def ratio(a, b, s):
    # Each round's ratio (the cells of one round ran seconds apart), then their median.
    ra = [x + y for x, y in cells[(a, s)]]; rb = [x + y for x, y in cells[(b, s)]]
    rs = sorted(x / y for x, y in zip(ra, rb))
    return statistics.median(rs), rs[0], rs[-1]
for a, b, what in (("plain", "noacct", "accounting on / off"), ("limits", "plain", "rate limits on / off")):
    for s in ("0", "1"):
        med, lo, hi = ratio(a, b, s)
        print(f"- {what}, {'SSE' if s == '1' else 'JSON'}: {med:.3f}× CPU per request (rounds {lo:.3f}–{hi:.3f})")
PY
