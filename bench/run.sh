#!/usr/bin/env bash
# The end-to-end benchmark (docs/performance.md).
#
# Builds the Release configuration and the benchmark-only build with the
# audit log compiled out (preset bench-unaudited), and, as the ceiling, runs
# nginx serving a static 300-byte JSON file over HTTPS with the same TLS
# policy (TLS 1.2/1.3, ECDHE+AES-GCM) and the same dev certificate chain. For
# each kura build in turn it starts `kura serve --dev` on a free port, creates
# a tenant with its first admin (root token), signs that admin in and, with
# the admin's session, a collection, role and API key through the API (root
# does not administer a tenant), and runs wrk
# (keep-alive, -t2 -c64 -d15s --latency by default):
#   nginx static  GET of the 300-byte file           (bench/wrk/static.lua)
#   kura GET      GET of one 300-byte record          (bench/wrk/get.lua)
#   kura create   POST of a 300-byte record, durable  (bench/wrk/create.lua)
#   kura GET      the same GET with a tenant user's session token instead of
#                 the API key                         (bench/wrk/get.lua)
#   kura login    password sign-ins of that user, Argon2id with the server's
#                 default parameters                  (bench/wrk/login.lua)
# Prints a markdown table (requests/s, p50, p99, non-2xx), the audited build's
# share of the unaudited one, and each kura's peak RSS.
#
# Environment: BENCH_THREADS (2), BENCH_CONNECTIONS (64), BENCH_DURATION (15s),
# BENCH_WARMUP (3s; 0 to skip), BENCH_SKIP_BUILD=1 (use the existing build),
# KURA_BINARY (default build/release/bin/kura), KURA_UNAUDITED_BINARY (default
# build/bench-unaudited/bin/kura; BENCH_UNAUDITED=0 skips it), BENCH_KEEP=1
# (keep the work dir), BENCH_LOGIN_CONNECTIONS (4: sign-ins queue for one
# Argon2id slot per core anyway), KURA_BASELINE_BINARY (optional: a kura
# built before a change; its API-key GET runs last, for a before/after
# comparison in the same run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

threads=${BENCH_THREADS:-2}
connections=${BENCH_CONNECTIONS:-64}
duration=${BENCH_DURATION:-15s}
warmup=${BENCH_WARMUP:-3s}

unaudited=${BENCH_UNAUDITED:-1}
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  scripts/install-deps >&2
  cmake --preset release >&2
  cmake --build --preset release --target kura >&2
  if [ "$unaudited" = 1 ]; then
    cmake --preset bench-unaudited >&2
    cmake --build --preset bench-unaudited --target kura >&2
  fi
fi
kura=${KURA_BINARY:-$repo/build/release/bin/kura}
kura_unaudited=${KURA_UNAUDITED_BINARY:-$repo/build/bench-unaudited/bin/kura}
kura_baseline=${KURA_BASELINE_BINARY:-}
login_connections=${BENCH_LOGIN_CONNECTIONS:-4}
[ -x "$kura" ] || { echo "bench: no kura binary at $kura" >&2; exit 1; }
if [ "$unaudited" = 1 ]; then
  [ -x "$kura_unaudited" ] || { echo "bench: no unaudited kura binary at $kura_unaudited" >&2; exit 1; }
fi
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

# --- kura ---------------------------------------------------------------------
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
export BENCH_BODY_FILE="$work/record.json"
write_record_body "$BENCH_BODY_FILE"

setup_user() {  # a tenant user of role app and its session: sets BENCH_USER, BENCH_PASSWORD, BENCH_SESSION
  export BENCH_USER=bench-user BENCH_PASSWORD=Vermilion-Teapot-Harbour-42
  api "$BENCH_ADMIN_SESSION" POST /v1/t/bench/users \
    "{\"username\":\"$BENCH_USER\",\"password\":\"$BENCH_PASSWORD\",\"roles\":[\"app\"]}" >/dev/null
  BENCH_SESSION=$(sign_in bench "$BENCH_USER" "$BENCH_PASSWORD")
  export BENCH_SESSION
}

# The first kura's dev chain also serves nginx, so both present the same certificates.
start_kura audited "$kura"
setup_tenant
setup_user
tls_dir=$(dirname "$KURA_CACERT")
ca_file=$KURA_CACERT

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
  [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca_file" "https://127.0.0.1:$nginx_port/static.json")" = 200 ] && break
  kill -0 "$nginx_pid" 2>/dev/null || { echo "bench: nginx exited" >&2; cat "$work/nginx/logs/"* >&2; exit 1; }
  sleep 0.1
done
static_bytes=$(curl -s --cacert "$ca_file" "https://127.0.0.1:$nginx_port/static.json" | wc -c)

# --- wrk ----------------------------------------------------------------------
run_wrk() {  # run_wrk NAME SCRIPT URL [CONNECTIONS]
  local name=$1 script=$2 url=$3 conns=${4:-$connections}
  if [ "$warmup" != 0 ]; then
    wrk -t"$threads" -c"$conns" -d"$warmup" -s "$repo/bench/wrk/$script" "$url" >/dev/null
  fi
  echo "bench: $name ($duration)…" >&2
  wrk -t"$threads" -c"$conns" -d"$duration" --latency -s "$repo/bench/wrk/$script" "$url" >"$work/$name.txt"
  cat "$work/$name.txt" >&2
}
run_wrk static static.lua "https://127.0.0.1:$nginx_port/static.json"

bench_kura() {  # bench_kura LABEL [get-only|with-sessions]: the runs against the running kura, then its RSS
  local label=$1 mode=${2:-}
  local record_url="$KURA_ADDR/v1/t/bench/collections/customers/records"
  run_wrk "$label-get" get.lua "$record_url/$record_id"
  if [ "$mode" = with-sessions ]; then
    BENCH_KEY=$BENCH_SESSION run_wrk "$label-get-session" get.lua "$record_url/$record_id"
  fi
  if [ "$mode" != get-only ]; then run_wrk "$label-create" create.lua "$record_url"; fi
  if [ "$mode" = with-sessions ]; then
    run_wrk "$label-login" login.lua "$KURA_ADDR/v1/auth/login" "$login_connections"
  fi
  awk '/^VmHWM:/ {print $2}' "/proc/$kura_pid/status" >"$work/$label-peak-rss"
  echo "$get_bytes" >"$work/$label-get-bytes"
  stop_kura
}
bench_kura audited with-sessions
if [ "$unaudited" = 1 ]; then
  start_kura unaudited "$kura_unaudited" KURA_BENCH_UNAUDITED=1
  setup_tenant
  bench_kura unaudited
fi
if [ -n "$kura_baseline" ]; then
  start_kura baseline "$kura_baseline"
  setup_tenant
  bench_kura baseline get-only
fi

# --- report -------------------------------------------------------------------
python3 - "$work" "$threads" "$connections" "$duration" "$static_bytes" "$unaudited" "$kura_baseline" "$login_connections" <<'PY'
import re, sys, os, platform
work, threads, conns, duration, static_bytes, unaudited, baseline, login_conns = sys.argv[1:]

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

def read(name):
    return open(os.path.join(work, name)).read().strip()

cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
print(f"Machine: {os.cpu_count()} CPUs, {cpu}, Linux {platform.release()}; "
      f"wrk -t{threads} -c{conns} -d{duration} --latency, HTTPS keep-alive")
print(f"Response bodies: nginx static {static_bytes} B, kura GET {read('audited-get-bytes')} B; create request body 300 B")
print()
print("| target | requests/s | p50 | p99 | non-2xx | socket errors | vs nginx |")
print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
rows = [("static", "nginx static 300 B JSON"), ("audited-get", "kura GET record (audited)"),
        ("audited-get-session", "kura GET record, session token (audited)"),
        ("audited-create", "kura create record (durable, audited)"),
        ("audited-login", f"kura password sign-in (Argon2id, -c{login_conns})")]
if unaudited == "1":
    rows += [("unaudited-get", "kura GET record (audit compiled out)"),
             ("unaudited-create", "kura create record (durable, audit compiled out)")]
if baseline:
    rows += [("baseline-get", "kura GET record, baseline binary (audited)")]
base = None
rate = {}
for name, label in rows:
    rps, p50, p99, non2xx, errors, total = parse(name)
    rate[name] = rps
    if base is None:
        base = rps
    print(f"| {label} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {non2xx} of {total} | {errors or 'none'} | {100 * rps / base:.0f} % |")
print()
if unaudited == "1":
    print(f"Audited vs unaudited: GET {100 * rate['audited-get'] / rate['unaudited-get']:.0f} %, "
          f"create {100 * rate['audited-create'] / rate['unaudited-create']:.0f} %")
print(f"Session token vs API key GET: {100 * rate['audited-get-session'] / rate['audited-get']:.0f} %")
if baseline:
    print(f"API-key GET vs the baseline binary ({baseline}): {100 * rate['audited-get'] / rate['baseline-get']:.0f} %")
labels = ["audited"] + (["unaudited"] if unaudited == "1" else []) + (["baseline"] if baseline else [])
for label in labels:
    print(f"kura ({label}) peak RSS after the load (VmHWM): {int(read(label + '-peak-rss')) / 1024:.1f} MiB")
PY
