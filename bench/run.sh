#!/usr/bin/env bash
# The end-to-end benchmark (docs/performance.md).
#
# Builds the Release configuration and the benchmark-only build with the
# audit log compiled out (preset bench-unaudited), and, as the ceiling, runs
# nginx serving a static 300-byte JSON file over HTTPS with the same TLS
# policy (TLS 1.2/1.3, ECDHE+AES-GCM) and the same dev certificate chain. It
# starts each kura build (`kura serve --dev` on a free port, all of them
# running from start to end), creates a tenant with its first admin (root
# token), signs that admin in and, with the admin's session, a collection,
# role and API key through the API (root does not administer a tenant), and
# runs wrk (keep-alive, -t2 -c64 -d15s --latency by default) in rounds. Each
# round runs nginx, then every kura's GET, then every kura's create, the kuras
# in turn (backwards in even rounds), so that what is compared ran a minute or
# two apart and a machine whose speed drifts during the run favours no side:
#   nginx static  GET of the 300-byte file           (bench/wrk/static.lua)
#   kura GET      GET of one 300-byte record          (bench/wrk/get.lua)
#   kura create   POST of a 300-byte record, durable  (bench/wrk/create.lua)
# plus, in every round, the GET and create of the audited build started with
# its record cache off ([storage] record_cache_mib = 0): get.lua reads one
# record over and over, which the cache serves after the first read; this
# shows what a read the cache misses costs, on a database grown by the same
# creates (BENCH_UNCACHED=0 skips it);
# and, once after the rounds, on the audited build:
#   kura GET      the same GET with a tenant user's session token instead of
#                 the API key                         (bench/wrk/get.lua)
#   kura login    password sign-ins of that user, Argon2id with the server's
#                 default parameters                  (bench/wrk/login.lua)
# Prints markdown tables: the median of the rounds per target (requests/s,
# p50, p99, non-2xx), every round, the ratios (taken within each round, then
# the median: audited vs nginx, audited vs unaudited), and each kura's peak
# RSS.
#
# Environment: BENCH_THREADS (2), BENCH_CONNECTIONS (64), BENCH_DURATION (15s),
# BENCH_WARMUP (3s before every run; 0 to skip), BENCH_ROUNDS (3),
# BENCH_SKIP_BUILD=1 (use the existing build), BENCH_UNCACHED (1; 0 skips the GET
# with the record cache off),
# KURA_BINARY (default build/release/bin/kura), KURA_UNAUDITED_BINARY (default
# build/bench-unaudited/bin/kura; BENCH_UNAUDITED=0 skips it), BENCH_KEEP=1
# (keep the work dir), BENCH_LOGIN_CONNECTIONS (4: sign-ins queue for one
# Argon2id slot per core anyway), KURA_BASELINE_BINARY (optional: a kura
# built before a change; its API-key GET runs in every round beside the
# others, for a before/after comparison in the same run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

threads=${BENCH_THREADS:-2}
connections=${BENCH_CONNECTIONS:-64}
duration=${BENCH_DURATION:-15s}
warmup=${BENCH_WARMUP:-3s}
rounds=${BENCH_ROUNDS:-3}

unaudited=${BENCH_UNAUDITED:-1}
uncached=${BENCH_UNCACHED:-1}
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
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
require_tools wrk nginx curl python3

work=$(mktemp -d /tmp/kura-bench.XXXXXX)
kura_pid=""
nginx_pid=""
declare -A pid=()
cleanup() {
  # Only the processes this script started, by their pid.
  if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true; fi
  local p
  for p in "$kura_pid" "${pid[@]}"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then kill "$p"; wait "$p" 2>/dev/null || true; fi
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- kura ---------------------------------------------------------------------
export BENCH_BODY_FILE="$work/record.json"
write_record_body "$BENCH_BODY_FILE"

# Every kura runs from here to the end, each in its own data directory; the
# rounds below alternate between them. Per server: its address, API key,
# record and pid.
declare -A addr key rec pid
keep_server() {  # keep_server LABEL: remember the kura start_kura + setup_tenant just set up
  addr[$1]=$KURA_ADDR key[$1]=$BENCH_KEY rec[$1]=$record_id pid[$1]=$kura_pid
  kura_pid=""
}
servers=(audited)
# The first kura's dev chain also serves nginx, so both present the same certificates.
start_kura audited "$kura"
setup_tenant
setup_user
keep_server audited
tls_dir=$(dirname "$KURA_CACERT")
ca_file=$KURA_CACERT
audited_session=$BENCH_SESSION
audited_get_bytes=$get_bytes
if [ "$unaudited" = 1 ]; then
  start_kura unaudited "$kura_unaudited" KURA_BENCH_UNAUDITED=1
  setup_tenant
  keep_server unaudited
  servers+=(unaudited)
fi
if [ "$uncached" = 1 ]; then
  printf '[storage]\nrecord_cache_mib = 0\n' >"$work/uncached.toml"
  start_kura uncached "$kura" -- --config "$work/uncached.toml"
  setup_tenant
  keep_server uncached
  servers+=(uncached)
fi
if [ -n "$kura_baseline" ]; then
  start_kura baseline "$kura_baseline"
  setup_tenant
  keep_server baseline
  servers+=(baseline)
fi

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
record_url() { echo "${addr[$1]}/v1/t/bench/collections/customers/records"; }
peak_rss() { awk '/^VmHWM:/ {print $2}' "/proc/${pid[$1]}/status"; }

# Rounds: in each, nginx, then every kura's GET, then every kura's create,
# the kuras in turn — forwards in odd rounds, backwards in even ones — so a
# comparison is between runs minutes apart at most, and a machine that speeds
# up or slows down during the run favours neither side.
for round in $(seq "$rounds"); do
  order=("${servers[@]}")
  if [ $((round % 2)) = 0 ]; then
    order=()
    for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done
  fi
  run_wrk "static-$round" static.lua "https://127.0.0.1:$nginx_port/static.json"
  for s in "${order[@]}"; do BENCH_KEY=${key[$s]} run_wrk "$s-get-$round" get.lua "$(record_url "$s")/${rec[$s]}"; done
  for s in "${order[@]}"; do
    [ "$s" = baseline ] && continue
    BENCH_KEY=${key[$s]} run_wrk "$s-create-$round" create.lua "$(record_url "$s")"
  done
done
for s in "${servers[@]}"; do peak_rss "$s" >"$work/$s-peak-rss"; done
# Once, after the rounds: the session-token GET and Argon2id sign-ins.
BENCH_KEY=$audited_session run_wrk audited-get-session get.lua "$(record_url audited)/${rec[audited]}"
run_wrk audited-login login.lua "${addr[audited]}/v1/auth/login" "$login_connections"
peak_rss audited >"$work/audited-peak-rss-login"

# --- report -------------------------------------------------------------------
python3 - "$work" "$threads" "$connections" "$duration" "$static_bytes" "$rounds" "${servers[*]}" "$kura_baseline" "$login_connections" "$audited_get_bytes" <<'PY'
import re, sys, os, platform, statistics
work, threads, conns, duration, static_bytes, rounds, servers, baseline, login_conns, get_bytes = sys.argv[1:]
rounds, servers = int(rounds), servers.split()

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
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1).strip() if errors else "", "total": total}

def read(name):
    return open(os.path.join(work, name)).read().strip()

cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
print(f"Machine: {os.cpu_count()} CPUs, {cpu}, Linux {platform.release()}; "
      f"wrk -t{threads} -c{conns} -d{duration} --latency, HTTPS keep-alive; {rounds} rounds")
print(f"Response bodies: nginx static {static_bytes} B, kura GET {get_bytes} B; create request body 300 B")
print()

labels = {"static": "nginx static 300 B JSON",
          "audited-get": "kura GET record (audited)",
          "audited-create": "kura create record (durable, audited)",
          "unaudited-get": "kura GET record (audit compiled out)",
          "unaudited-create": "kura create record (durable, audit compiled out)",
          "uncached-get": "kura GET record, record cache off (audited)",
          "uncached-create": "kura create record, record cache off (durable, audited)",
          "baseline-get": "kura GET record, baseline binary (audited)"}
targets = ["static"] + [f"{s}-get" for s in servers] + [f"{s}-create" for s in servers if s != "baseline"]
runs = {t: [parse(f"{t}-{r}") for r in range(1, rounds + 1)] for t in targets}

def median(target, field):
    return statistics.median(run[field] for run in runs[target])

# Each ratio is taken within a round (runs a minute or two apart), then the
# median over the rounds.
def ratio(a, b):
    return statistics.median(100 * x["rps"] / y["rps"] for x, y in zip(runs[a], runs[b]))

print("Median of the rounds:")
print()
print("| target | requests/s | p50 | p99 | non-2xx (all rounds) | socket errors | vs nginx (per round, median) |")
print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
for t in targets:
    non2xx = sum(r["non2xx"] for r in runs[t])
    total = sum(r["total"] for r in runs[t])
    errors = "; ".join(r["errors"] for r in runs[t] if r["errors"]) or "none"
    print(f"| {labels[t]} | {median(t, 'rps'):,.0f} | {median(t, 'p50'):.2f} ms | {median(t, 'p99'):.2f} ms | "
          f"{non2xx} of {total} | {errors} | {ratio(t, 'static'):.0f} % |")
print()
print("Every round (requests/s, p99):")
print()
print("| target | " + " | ".join(f"round {r}" for r in range(1, rounds + 1)) + " |")
print("| --- |" + " ---: |" * rounds)
for t in targets:
    print(f"| {labels[t]} | " + " | ".join(f"{r['rps']:,.0f} ({r['p99']:.2f} ms)" for r in runs[t]) + " |")
print()
if "unaudited" in servers:
    print(f"Audited vs unaudited (per round, median): GET {ratio('audited-get', 'unaudited-get'):.0f} %, "
          f"create {ratio('audited-create', 'unaudited-create'):.0f} %")
if "uncached" in servers:
    print(f"Audited GET with the record cache vs without (per round, median): "
          f"{ratio('audited-get', 'uncached-get'):.0f} %")
if baseline:
    print(f"API-key GET vs the baseline binary ({baseline}) (per round, median): "
          f"{ratio('audited-get', 'baseline-get'):.0f} %")
once = [("audited-get-session", "kura GET record, session token (audited)"),
        ("audited-login", f"kura password sign-in (Argon2id, -c{login_conns})")]
print()
print("After the rounds, once:")
print()
print("| target | requests/s | p50 | p99 | non-2xx | socket errors |")
print("| --- | ---: | ---: | ---: | ---: | --- |")
for name, label in once:
    r = parse(name)
    print(f"| {label} | {r['rps']:,.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['non2xx']} of {r['total']} | {r['errors'] or 'none'} |")
print()
for s in servers:
    print(f"kura ({s}) peak RSS after the rounds (VmHWM): {int(read(s + '-peak-rss')) / 1024:.1f} MiB")
print(f"kura (audited) peak RSS after the sign-ins too: {int(read('audited-peak-rss-login')) / 1024:.1f} MiB")
PY
