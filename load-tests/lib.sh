# Shared by the load-test scripts (source it after `cd` to the repo root):
# ports, process bookkeeping and cleanup by PID, memory readings, and the optional
# tools (LiteLLM from PyPI, gnuplot from Debian), each skipped with a message when
# it cannot be had.
ROOT=$PWD
TMP=$(mktemp -d); PIDS=()
# running PID: the process exists and has not exited (a zombie has).
running() { local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1); [[ -n $st && $st != Z ]]; }
# cleanup: SIGTERM to every PID started here, SIGKILL to any still there after 10 s.
cleanup() {
  local p left
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    left=0
    for p in "${PIDS[@]}"; do running "$p" && left=1; done
    (( left )) || break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true; rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# build: the release binaries, unless NO_BUILD=1 (measure the binaries already in
# target/release, e.g. while the tree is being edited).
build() { [[ ${NO_BUILD:-0} == 1 ]] || cargo build --release -q -p tollgate -p mock-provider; }
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
# kB of a /proc/PID/status field: peak (VmHWM) or current (VmRSS) resident set.
vm_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# nginx_conf MOCK_PORT:NGINX_PORT…: writes $TMP/nginx.conf, nginx as a plain reverse
# proxy with one server a pair (listening on NGINX_PORT, forwarding to the mock on
# MOCK_PORT): one process (master_process off, so its CPU time is the worker's),
# keep-alive upstream, buffering and access log off, bodies up to 32 MiB.
nginx_conf() {
  local pair mock
  { cat <<NGINX
worker_processes 1;
master_process off;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_max_body_size 32m;
  client_body_buffer_size 8m;
  client_body_temp_path $TMP/nginx-body;
  proxy_temp_path $TMP/nginx-proxy;
NGINX
    for pair in "$@"; do
      mock=${pair%%:*}
      cat <<NGINX
  upstream mock_$mock { server 127.0.0.1:$mock; keepalive 256; }
  server {
    listen 127.0.0.1:${pair#*:};
    location / {
      proxy_pass http://mock_$mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
NGINX
    done
    echo "}"
  } >"$TMP/nginx.conf"
}

# litellm_install: LiteLLM's proxy in load-tests/.venv (gitignored), installed from
# PyPI on first use. Returns non-zero, with a message, when that cannot be done.
LITELLM_VENV=${LITELLM_VENV:-$ROOT/load-tests/.venv}
litellm_install() {
  [[ -x $LITELLM_VENV/bin/litellm ]] && return 0
  echo "installing LiteLLM (pip install 'litellm[proxy]' into $LITELLM_VENV, ~1-2 min)…" >&2
  if ! { python3 -m venv "$LITELLM_VENV" && "$LITELLM_VENV/bin/pip" install -q 'litellm[proxy]'; } >"$TMP/pip.log" 2>&1; then
    echo "LiteLLM skipped: pip install failed (no network to PyPI?); last lines:" >&2
    tail -3 "$TMP/pip.log" >&2
    rm -rf "$LITELLM_VENV"
    return 1
  fi
}

# litellm_start PORT CPU MODEL=API_BASE…: one LiteLLM proxy process (uvicorn,
# --num_workers 1, no database, telemetry off, the model cost map read from the
# package instead of fetched) routing each MODEL to the OpenAI-style API_BASE with a
# dummy provider key. Sets LITELLM_PID and LITELLM_KEY (its master key: LiteLLM
# refuses to start without one). Does not wait for it: see litellm_ready.
litellm_start() {
  local lport=$1 cpu=$2; shift 2
  LITELLM_KEY=sk-bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  { echo "model_list:"
    for m in "$@"; do
      printf '  - model_name: %s\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: %s\n      api_key: sk-dummy\n' "${m%%=*}" "${m#*=}"
    done
    printf 'litellm_settings:\n  telemetry: false\n  drop_params: true\n'
    printf 'general_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\n'
  } >"$TMP/litellm.yaml"
  (cd "$TMP" && LITELLM_MASTER_KEY=$LITELLM_KEY LITELLM_TELEMETRY=False LITELLM_LOCAL_MODEL_COST_MAP=True \
     LITELLM_LOG=ERROR NO_DOCS=True DISABLE_ADMIN_UI=True \
     exec taskset -c "$cpu" "$LITELLM_VENV/bin/litellm" --config "$TMP/litellm.yaml" \
       --host 127.0.0.1 --port "$lport" --num_workers 1) >"$TMP/litellm.log" 2>&1 &
  LITELLM_PID=$!; PIDS+=($LITELLM_PID)
}

# litellm_ready PORT MODEL: waits (≤ 120 s) for the proxy, then checks that a chat
# request through it reaches the mock (the mock's `chatcmpl-mock` id comes back)
# and that a stream ends with [DONE]. Non-zero with a message otherwise.
litellm_ready() {
  local lport=$1 model=$2 url="http://127.0.0.1:$1/v1/chat/completions"
  for _ in $(seq 240); do
    curl -fs -o /dev/null "http://127.0.0.1:$lport/health/liveliness" && break
    kill -0 "$LITELLM_PID" 2>/dev/null || break
    sleep 0.5
  done
  local body='{"model":"'$model'","messages":[{"role":"user","content":"hello"}]}'
  if ! curl -fs --max-time 30 -H "Authorization: Bearer $LITELLM_KEY" -H 'Content-Type: application/json' \
         -d "$body" "$url" | grep -q '"chatcmpl-mock'; then
    echo "LiteLLM skipped: it did not start or did not forward to the mock; last log lines:" >&2
    tail -5 "$TMP/litellm.log" >&2
    return 1
  fi
  if ! curl -fsN --max-time 30 -H "Authorization: Bearer $LITELLM_KEY" -H 'Content-Type: application/json' \
         -d "${body%\}},\"stream\":true}" "$url" | grep -q '^data: \[DONE\]'; then
    echo "LiteLLM skipped: a stream through it did not end with [DONE]" >&2
    return 1
  fi
}

# gnuplot_ok: gnuplot with a PNG terminal, installed from Debian (gnuplot-nox) if
# missing. Non-zero, with a message, when it cannot be had.
gnuplot_ok() {
  command -v gnuplot >/dev/null && return 0
  echo "installing gnuplot-nox for the plots…" >&2
  { apt-get install -y -q gnuplot-nox || { apt-get update -q && apt-get install -y -q gnuplot-nox; }; } >"$TMP/apt.log" 2>&1
  command -v gnuplot >/dev/null && return 0
  echo "plot skipped: gnuplot-nox could not be installed" >&2
  return 1
}
