#!/usr/bin/env bash
# The end-to-end benchmark (docs/performance.md).
#
# Builds the Release configuration, starts `kura serve --dev` on a free port
# and, as the ceiling, nginx serving a static 300-byte JSON file over HTTPS
# with the same TLS policy (TLS 1.2/1.3, ECDHE+AES-GCM) and the same dev
# certificate chain. Creates a tenant, collection, role and API key through
# the API, then runs wrk (keep-alive, -t2 -c64 -d15s --latency by default):
#   nginx static  GET of the 300-byte file           (bench/wrk/static.lua)
#   kura GET      GET of one 300-byte record          (bench/wrk/get.lua)
#   kura create   POST of a 300-byte record, durable  (bench/wrk/create.lua)
# Prints a markdown table (requests/s, p50, p99, non-2xx) and kura's peak RSS.
#
# Environment: BENCH_THREADS (2), BENCH_CONNECTIONS (64), BENCH_DURATION (15s),
# BENCH_WARMUP (3s; 0 to skip), BENCH_SKIP_BUILD=1 (use the existing build),
# KURA_BINARY (default build/release/bin/kura), BENCH_KEEP=1 (keep the work dir).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

threads=${BENCH_THREADS:-2}
connections=${BENCH_CONNECTIONS:-64}
duration=${BENCH_DURATION:-15s}
warmup=${BENCH_WARMUP:-3s}

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  scripts/install-deps >&2
  cmake --preset release >&2
  cmake --build --preset release --target kura >&2
fi
kura=${KURA_BINARY:-$repo/build/release/bin/kura}
[ -x "$kura" ] || { echo "bench: no kura binary at $kura" >&2; exit 1; }
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing (scripts/install-deps)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/kura-bench.XXXXXX)
kura_pid=""
nginx_pid=""
cleanup() {
  # Only the processes this script started, by their pid.
  if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true; fi
  if [ -n "$kura_pid" ] && kill -0 "$kura_pid" 2>/dev/null; then kill "$kura_pid"; wait "$kura_pid" 2>/dev/null || true; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- kura ---------------------------------------------------------------------
"$kura" serve --dev --data "$work/kura" --listen 127.0.0.1:0 >"$work/kura.log" 2>&1 &
kura_pid=$!
for _ in $(seq 300); do
  if [ -f "$work/kura/dev.env" ] && grep -q '^KURA_TOKEN=' "$work/kura/dev.env"; then break; fi
  kill -0 "$kura_pid" 2>/dev/null || { echo "bench: kura exited" >&2; cat "$work/kura.log" >&2; exit 1; }
  sleep 0.1
done
set -a
# shellcheck disable=SC1091
. "$work/kura/dev.env"
set +a
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$KURA_CACERT" "$KURA_ADDR/v1/sys/health")" = 200 ] && break
  sleep 0.1
done
tls_dir=$(dirname "$KURA_CACERT")

api() {  # api TOKEN METHOD PATH [BODY]
  local args=(-sS --fail-with-body --cacert "$KURA_CACERT" -H "Authorization: Bearer $1" -X "$2")
  if [ $# -ge 4 ]; then args+=(-H 'Content-Type: application/json' --data-binary "$4"); fi
  curl "${args[@]}" "$KURA_ADDR$3"
}
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

api "$KURA_TOKEN" POST /v1/tenants '{"id":"bench","name":"Bench KK"}' >/dev/null
api "$KURA_TOKEN" PUT /v1/t/bench/collections/customers '{
  "fields": {
    "email": {"type":"string","class":"personal","index":true,"mask":"email"},
    "phone": {"type":"string","class":"personal","mask":"last4"},
    "name":  {"type":"string","class":"personal","mask":"partial"},
    "note":  {"type":"string","class":"internal"}},
  "required": ["email"], "retention_days": 365}' >/dev/null
api "$KURA_TOKEN" PUT /v1/t/bench/roles/app '{"permissions":[
  {"action":"record.read","collections":["customers"],"view":"full"},
  {"action":"record.write","collections":["customers"],"view":"full"}]}' >/dev/null
BENCH_KEY=$(api "$KURA_TOKEN" POST /v1/t/bench/apikeys '{"name":"bench","role":"app","expires_at":null}' | json_field key)
export BENCH_KEY

# A record body of exactly 300 bytes.
export BENCH_BODY_FILE="$work/record.json"
python3 - "$BENCH_BODY_FILE" <<'PY'
import json, sys
def body(n):
    return json.dumps({"data": {"email": "bench.user@example.com", "phone": "+81-90-1234-5678",
                                "name": "Bench User", "note": "x" * n}}, separators=(",", ":"))
n = 300 - len(body(0))
b = body(n)
assert len(b) == 300, len(b)
open(sys.argv[1], "w").write(b)
PY
record_id=$(api "$BENCH_KEY" POST /v1/t/bench/collections/customers/records "$(cat "$BENCH_BODY_FILE")" | json_field id)
get_bytes=$(api "$BENCH_KEY" GET "/v1/t/bench/collections/customers/records/$record_id" | wc -c)

# --- nginx --------------------------------------------------------------------
nginx_port=$(free_port)
mkdir -p "$work/nginx/www" "$work/nginx/logs"
python3 -c 'import json; s=json.dumps({"id":"static","version":1,"data":{"note":""}}); pad=300-len(s); print(json.dumps({"id":"static","version":1,"data":{"note":"x"*pad}}),end="")' >"$work/nginx/www/static.json"
# nginx's workers run as `nobody` when started as root: let them read the file.
chmod 755 "$work" "$work/nginx" "$work/nginx/www"
chmod 644 "$work/nginx/www/static.json"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $tls_dir/server-chain.pem;
    ssl_certificate_key $tls_dir/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE+AESGCM;
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256;
    add_header Strict-Transport-Security "max-age=63072000" always;
    location = /static.json { root $work/nginx/www; default_type application/json; }
  }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/nginx/logs/stdout.log" 2>&1 &
nginx_pid=$!
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$KURA_CACERT" "https://127.0.0.1:$nginx_port/static.json")" = 200 ] && break
  kill -0 "$nginx_pid" 2>/dev/null || { echo "bench: nginx exited" >&2; cat "$work/nginx/logs/"* >&2; exit 1; }
  sleep 0.1
done
static_bytes=$(curl -s --cacert "$KURA_CACERT" "https://127.0.0.1:$nginx_port/static.json" | wc -c)

# --- wrk ----------------------------------------------------------------------
run_wrk() {  # run_wrk NAME SCRIPT URL
  local name=$1 script=$2 url=$3
  if [ "$warmup" != 0 ]; then
    wrk -t"$threads" -c"$connections" -d"$warmup" -s "$repo/bench/wrk/$script" "$url" >/dev/null
  fi
  echo "bench: $name ($duration)…" >&2
  wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$repo/bench/wrk/$script" "$url" >"$work/$name.txt"
  cat "$work/$name.txt" >&2
}
record_url="$KURA_ADDR/v1/t/bench/collections/customers/records"
run_wrk static static.lua "https://127.0.0.1:$nginx_port/static.json"
run_wrk get get.lua "$record_url/$record_id"
run_wrk create create.lua "$record_url"

peak_rss_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$kura_pid/status")
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$kura_pid/status")

# --- report -------------------------------------------------------------------
python3 - "$work" "$peak_rss_kb" "$rss_kb" "$threads" "$connections" "$duration" "$static_bytes" "$get_bytes" <<'PY'
import re, sys, os, platform, subprocess
work, peak_kb, rss_kb, threads, conns, duration, static_bytes, get_bytes = sys.argv[1:]

def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

def parse(name):
    t = open(os.path.join(work, name + ".txt")).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    errors = re.search(r"Socket errors:(.*)", t)
    total = int(re.search(r"(\d+) requests in", t).group(1))
    return rps, p50, p99, int(non2xx.group(1)) if non2xx else 0, errors.group(1).strip() if errors else "", total

cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
nproc = os.cpu_count()
print(f"Machine: {nproc} CPUs, {cpu}, Linux {platform.release()}; "
      f"wrk -t{threads} -c{conns} -d{duration} --latency, HTTPS keep-alive")
print(f"Response bodies: nginx static {static_bytes} B, kura GET {get_bytes} B; create request body 300 B")
print()
print("| target | requests/s | p50 | p99 | non-2xx | socket errors | vs nginx |")
print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
base = None
for name, label in (("static", "nginx static 300 B JSON"), ("get", "kura GET record"), ("create", "kura create record (durable)")):
    rps, p50, p99, non2xx, errors, total = parse(name)
    if base is None:
        base = rps
    print(f"| {label} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {non2xx} of {total} | {errors or 'none'} | {100 * rps / base:.0f} % |")
print()
print(f"kura peak RSS after the load (VmHWM): {int(peak_kb) / 1024:.1f} MiB (VmRSS now {int(rss_kb) / 1024:.1f} MiB)")
PY
