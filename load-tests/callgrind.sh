#!/usr/bin/env bash
# Instructions per request, counted by callgrind (deterministic, unlike wall-clock
# cells on a shared VM): tollgate runs under valgrind; a keep-alive client sends
# N1 then, in a second run, N2 small chat requests; (total2 - total1) / (N2 - N1)
# cancels start-up. Compares configurations:
#
#   load-tests/callgrind.sh                 # noacct, plain, limits
#   load-tests/callgrind.sh limits plain    # any subset
#   STREAM=1 load-tests/callgrind.sh        # the same, for SSE answers
#   BIN=/tmp/tollgate-old NO_BUILD=1 load-tests/callgrind.sh plain   # another binary
#
# plain  = accounting on, access key without limits (the reference)
# noacct = accounting off
# limits = accounting on, high requests- and tokens-per-minute limits on the key
#
# The larger run's profile stays in load-tests/out/callgrind-MODE.out, for
# `callgrind_annotate --tree=caller`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source "$ROOT/load-tests/lib.sh"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
build
N1=${N1:-300}; N2=${N2:-1300}
MODES=("$@"); ((${#MODES[@]})) || MODES=(noacct plain limits)
MOCK=$(port)
"$ROOT/target/release/mock-provider" --listen 127.0.0.1:$MOCK --workers 1 >/dev/null 2>&1 &
PIDS+=($!)
printf -- "---\nversion: 1\nthreads: 1\n" >"$TMP/pingora.yaml"

config() {
  local key='{name: bench, key: tg-bench-key}' acct=true
  case $1 in
    noacct) acct=false ;;
    plain) ;;
    limits) key='{name: bench, key: tg-bench-key, limits: {requests_per_minute: 1000000000, tokens_per_minute: 1000000000000}}' ;;
    *) echo "unknown mode $1" >&2; exit 2 ;;
  esac
  printf 'access_log:\n  format: off\naccounting: %s\naccess_keys:\n  - %s\n' "$acct" "$key" >"$TMP/$1.yaml"
}

# total MODE N: instructions of a whole run serving N requests.
total() {
  local port; port=$(port)
  OPENAI_API_URL=http://127.0.0.1:$MOCK/v1 OPENAI_API_KEY=sk-bench RUST_LOG=error \
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
    "${BIN:-$ROOT/target/release/tollgate}" -c "$TMP/pingora.yaml" --config "$TMP/$1.yaml" \
    --listen 127.0.0.1:$port --metrics-listen 127.0.0.1:$(port) >/dev/null 2>"$TMP/cg.err" &
  local pid=$!; PIDS+=($pid)
  # valgrind starts slowly: up to 60 s.
  for _ in $(seq 600); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  python3 - "$port" "$2" "${STREAM:-0}" <<'PY'
import http.client, sys
port, n, stream = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
c = http.client.HTTPConnection("127.0.0.1", port)
body = '{"messages":[{"role":"user","content":"hello"}],"model":"gpt-4o"%s}' % (',"stream":true' if stream else '')
for _ in range(n):
    c.request("POST", "/v1/chat/completions", body,
              {"Authorization": "Bearer tg-bench-key", "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  mkdir -p "$ROOT/load-tests/out" && cp "$TMP/cg.out" "$ROOT/load-tests/out/callgrind-$1$SUFFIX.out"
  awk '/^(summary|totals):/ {print $2; exit}' "$TMP/cg.out"
}

SUFFIX=""; [[ ${STREAM:-0} == 1 ]] && SUFFIX=-sse
wait_port "$MOCK"
for m in "${MODES[@]}"; do
  config "$m"
  a=$(total "$m" "$N1"); b=$(total "$m" "$N2")
  echo "$m$SUFFIX: $(( (b - a) / (N2 - N1) )) instructions per request"
done
