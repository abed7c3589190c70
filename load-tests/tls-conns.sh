#!/usr/bin/env bash
# RSS per TLS client connection: one tollgate with a TLS listener (a self-signed
# certificate made here with openssl), N connections opened by Python's ssl
# module, one GET /healthz answered on each, all then held open; prints
# (RSS with all open - RSS before) / N.
#
#   load-tests/tls-conns.sh          # 1,000 connections
#   N=500 BIN=/tmp/tollgate-old NO_BUILD=1 load-tests/tls-conns.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source load-tests/lib.sh
build
N=${N:-1000}; BIN=${BIN:-$ROOT/target/release/tollgate}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1
TLS=$(port)
printf 'access_log:\n  format: off\ntls:\n  listen: 127.0.0.1:%s\n  cert: %s\n  key: %s\n' \
  "$TLS" "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/tg.yaml"
ulimit -n $((N + 1024)) 2>/dev/null || true
RUST_LOG=error "$BIN" --config "$TMP/tg.yaml" --listen 127.0.0.1:$(port) \
  --metrics-listen 127.0.0.1:$(port) >"$TMP/tollgate.log" 2>&1 &
PID=$!; PIDS+=($PID)
wait_port "$TLS"
python3 - "$PID" "$N" "$TLS" <<'PY'
import socket, ssl, sys, time
pid, n, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS"))
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
time.sleep(0.5)
before, held = rss(), []
for _ in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    if not s.recv(4096).startswith(b"HTTP/1.1 200"):
        sys.exit("a connection was not answered 200")
    held.append(s)
time.sleep(1)
print(f"{n} TLS connections, one request answered on each: {(rss() - before) / n:.1f} KiB of RSS each")
PY
