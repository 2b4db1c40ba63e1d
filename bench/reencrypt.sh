#!/usr/bin/env bash
# DEK rotation benchmark (issue 5; docs/performance.md).
#
# 1. Builds the Release `kura` (BENCH_SKIP_BUILD=1: use the existing one) and
#    starts `kura serve --dev` with the [keys] settings under test.
# 2. Fills tenant `bench` with BENCH_RECORDS (1,000,000) records of 300 bytes
#    through the API, wrk `POST …/records` at full speed (bench/wrk/create.lua,
#    repeated until the count is reached). Slower than a tool writing the
#    store directly (about two minutes at ~8,000 creates/s), but every record
#    is exactly what the product writes — sealed by the vault, indexed,
#    audited — and the script needs nothing beyond the shipped binary.
# 3. Measures the get benchmark (bench/wrk/get.lua: one record by id with an
#    API key) with the server otherwise idle: p50/p99.
# 4. Rotation 1 (v1 → v2), the server otherwise idle: POST rotate-key, poll
#    the status until done; rate = versions re-encrypted / wall time from the
#    POST's answer to `done` (includes the final count and key destruction).
# 5. Rotation 2 (v2 → v3): the same get benchmark while the job runs (wrk
#    starts 1 s after the POST and runs BENCH_DURATION), p99 compared with
#    step 3; checks the job was still running when wrk ended.
# Prints a markdown table. Environment: BENCH_RECORDS (1000000),
# BENCH_THREADS (2), BENCH_CONNECTIONS (64), BENCH_DURATION (10s),
# BENCH_REENCRYPT_BATCH / BENCH_REENCRYPT_LOAD / BENCH_REENCRYPT_PAUSE_MS
# (the [keys] settings; default: the server's defaults), KURA_BINARY
# (default build/release/bin/kura), BENCH_KEEP=1 (keep the work dir).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

records=${BENCH_RECORDS:-1000000}
threads=${BENCH_THREADS:-2}
connections=${BENCH_CONNECTIONS:-64}
duration=${BENCH_DURATION:-10s}

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  cmake --preset release >&2
  cmake --build --preset release --target kura >&2
fi
kura=${KURA_BINARY:-$repo/build/release/bin/kura}
[ -x "$kura" ] || { echo "bench: no kura binary at $kura" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
require_tools wrk curl python3 sqlite3

work=$(mktemp -d /tmp/kura-reencrypt.XXXXXX)
kura_pid=""
cleanup() {
  # Only the process this script started, by its pid.
  if [ -n "$kura_pid" ] && kill -0 "$kura_pid" 2>/dev/null; then kill "$kura_pid"; wait "$kura_pid" 2>/dev/null || true; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

{
  echo "[keys]"
  [ -n "${BENCH_REENCRYPT_BATCH:-}" ] && echo "reencrypt_batch = $BENCH_REENCRYPT_BATCH"
  [ -n "${BENCH_REENCRYPT_LOAD:-}" ] && echo "reencrypt_load_percent = $BENCH_REENCRYPT_LOAD"
  [ -n "${BENCH_REENCRYPT_PAUSE_MS:-}" ] && echo "reencrypt_pause_ms = $BENCH_REENCRYPT_PAUSE_MS"
  true
} >"$work/kura.toml"

export BENCH_BODY_FILE="$work/record.json"
write_record_body "$BENCH_BODY_FILE"
start_kura data "$kura" -- --config "$work/kura.toml"
# The tenant, its admin (root's part), collection, role, key and one record (the admin's).
setup_tenant
db_count() { sqlite3 -readonly "$work/data/kura.db" "SELECT COUNT(*) FROM records WHERE tenant_id = 'bench'"; }
get_url="$KURA_ADDR/v1/t/bench/collections/customers/records/$record_id"

# --- Fill ---------------------------------------------------------------------
echo "bench: filling $records records…" >&2
fill_start=$(date +%s)
while :; do
  have=$(db_count)
  [ "$have" -ge "$records" ] && break
  # ~8,000/s: ask for a little less than what is missing, then top up.
  left=$((records - have))
  secs=$(( left / 9000 + 1 ))
  [ "$secs" -gt 60 ] && secs=60
  wrk -t"$threads" -c"$connections" -d"${secs}s" -s "$repo/bench/wrk/create.lua" "$KURA_ADDR/v1/t/bench/collections/customers/records" >"$work/fill.txt"
done
fill_secs=$(( $(date +%s) - fill_start ))
have=$(db_count)
echo "bench: $have records in ${fill_secs}s" >&2

# --- Get, idle ----------------------------------------------------------------
wrk -t"$threads" -c"$connections" -d3s -s "$repo/bench/wrk/get.lua" "$get_url" >/dev/null  # warm-up
wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$repo/bench/wrk/get.lua" "$get_url" >"$work/get-idle.txt"

status() { api "$KURA_TOKEN" GET /v1/tenants/bench/rotate-key; }
wait_done() {  # prints the final status
  while :; do
    s=$(status)
    [ "$(echo "$s" | json_field state)" = done ] && { echo "$s"; return; }
    sleep 0.2
  done
}
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# --- Rotation 1: the server otherwise idle ------------------------------------
echo "bench: rotation 1 (idle)…" >&2
api "$KURA_TOKEN" POST /v1/tenants/bench/rotate-key >"$work/rot1-start.json"
t0=$(now_ms)
wait_done >"$work/rot1-done.json"
t1=$(now_ms)
echo $((t1 - t0)) >"$work/rot1-ms"

# --- Rotation 2: the get benchmark while it runs ------------------------------
echo "bench: rotation 2 (with the get benchmark)…" >&2
api "$KURA_TOKEN" POST /v1/tenants/bench/rotate-key >"$work/rot2-start.json"
t0=$(now_ms)
sleep 1
wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$repo/bench/wrk/get.lua" "$get_url" >"$work/get-during.txt"
status >"$work/rot2-after-wrk.json"
wait_done >"$work/rot2-done.json"
t1=$(now_ms)
echo $((t1 - t0)) >"$work/rot2-ms"

left=$(sqlite3 -readonly "$work/data/kura.db" "SELECT COUNT(*) FROM record_versions WHERE tenant_id = 'bench' AND key_version < 3")
keys=$(sqlite3 -readonly "$work/data/keys.db" "SELECT group_concat(version) FROM key_wrapped_keys WHERE owner = 'bench' AND purpose = 1")

python3 - "$work" "$threads" "$connections" "$duration" "$fill_secs" "$left" "$keys" <<'PY'
import json, os, platform, re, sys
work, threads, conns, duration, fill_secs, left, keys = sys.argv[1:]

def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

def wrk(name):
    t = open(os.path.join(work, name + ".txt")).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    return rps, p50, p99, int(non2xx.group(1)) if non2xx else 0

def js(name):
    return json.load(open(os.path.join(work, name)))

def rot(n):
    done = js(f"rot{n}-done.json")
    secs = int(open(os.path.join(work, f"rot{n}-ms")).read()) / 1000
    return done["done"], secs, done["done"] / secs

print(f"machine: {platform.node()}, {os.cpu_count()} cores, load average before the rotations: "
      f"{open('/proc/loadavg').read().split()[0:3]}")
print(f"fill: {js('rot1-start.json')['total']:,} record versions in {fill_secs} s (wrk create)")
print()
print(f"| measurement | value |")
print(f"| --- | --- |")
n1, s1, r1 = rot(1)
n2, s2, r2 = rot(2)
print(f"| rotation 1, server otherwise idle | {n1:,} versions in {s1:.1f} s = **{r1:,.0f} versions/s** |")
print(f"| rotation 2, with the get benchmark running | {n2:,} versions in {s2:.1f} s = {r2:,.0f} versions/s |")
i = wrk("get-idle")
d = wrk("get-during")
print(f"| get idle (wrk -t{threads} -c{conns} -d{duration}) | {i[0]:,.0f} req/s, p50 {i[1]:.2f} ms, **p99 {i[2]:.2f} ms**, non-2xx {i[3]} |")
print(f"| get during re-encryption | {d[0]:,.0f} req/s, p50 {d[1]:.2f} ms, **p99 {d[2]:.2f} ms**, non-2xx {d[3]} |")
print(f"| p99 during / idle | **{d[2] / i[2]:.2f}×** |")
after = js("rot2-after-wrk.json")
print(f"| job still running when wrk ended | {after['state'] == 'running'} ({after['done']:,} of {after['total']:,}) |")
print(f"| versions left under key versions < 3 | {left} |")
print(f"| data key versions in keys.db | {keys} |")
PY
