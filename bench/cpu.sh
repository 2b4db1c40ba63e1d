#!/usr/bin/env bash
# Where a request's CPU time goes, per kura thread, for two or more builds
# (or settings) compared in alternating runs (docs/performance.md).
#
#   bench/cpu.sh [-r ROUNDS] [-d SECONDS] [-s get|create|get-session] [-t DIR] LABEL=BINARY[:VAR=VALUE…] …
#
# For each LABEL, in every round (the labels in turn, so that a machine whose
# speed drifts favours none of them): starts `BINARY serve --dev` in a temp
# directory with the VAR=VALUE pairs in its environment, sets up the same
# tenant, collection, role and API key as bench/run.sh, warms up for 3 s and
# runs `wrk -t2 -c64` with bench/wrk/get.lua (one record read over and over)
# or create.lua for SECONDS (default 10); get-session is get.lua with a
# tenant user's session token (signed in once, Argon2id) instead of the API
# key. Meanwhile it reads every thread's user and system time from
# /proc/PID/task/*/stat and the machine's idle and steal time from /proc/stat.
# Prints, per label, the median of the rounds: requests/s, p99, the machine's
# idle and steal share, and CPU µs per request per thread name (the I/O
# threads summed). CPU per request moves far less with the hypervisor's
# other guests than requests/s does, so a change of a few µs shows in a few
# rounds.
#
# -t DIR puts the servers' data directories under DIR (default /tmp): with
# -t /dev/shm (tmpfs) every sync returns at once, which takes the disk out of
# the measurement and leaves the CPU's share.
#
# Example, the audit log's cost per GET:
#   bench/cpu.sh -r 3 audited=build/release/bin/kura \
#     unaudited=build/bench-unaudited/bin/kura:KURA_BENCH_UNAUDITED=1
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

rounds=3
seconds=10
script="get"
data_parent=/tmp
while getopts "r:d:s:t:" opt; do
  case $opt in
    r) rounds=$OPTARG ;;
    d) seconds=$OPTARG ;;
    s) script=$OPTARG ;;
    t) data_parent=$OPTARG ;;
    *) echo "usage: bench/cpu.sh [-r ROUNDS] [-d SECONDS] [-s get|create|get-session] [-t DIR] LABEL=BINARY[:VAR=VALUE…] …" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "bench/cpu.sh: name at least one LABEL=BINARY" >&2; exit 2; }
case $script in get | create | get-session) ;; *) echo "bench/cpu.sh: -s is get, create or get-session" >&2; exit 2 ;; esac
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
require_tools wrk curl python3

[ -d "$data_parent" ] || { echo "bench/cpu.sh: -t $data_parent is not a directory" >&2; exit 2; }
work=$(mktemp -d "$data_parent/kura-cpu.XXXXXX")
kura_pid=""
cleanup() {
  if [ -n "$kura_pid" ] && kill -0 "$kura_pid" 2>/dev/null; then kill "$kura_pid"; wait "$kura_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export BENCH_BODY_FILE="$work/record.json"
write_record_body "$BENCH_BODY_FILE"

threads_cpu() {  # threads_cpu PID: "name utime stime" per thread, in clock ticks
  python3 - "$1" <<'PY'
import os, sys
task = f"/proc/{sys.argv[1]}/task"
for tid in os.listdir(task):
    try:
        s = open(f"{task}/{tid}/stat").read()
    except OSError:
        continue  # the thread ended
    # The name is field 2, in parentheses; user and system time are fields 14 and 15.
    rest = s[s.rindex(")") + 2:].split()
    print(s[s.index("(") + 1:s.rindex(")")].replace(" ", "_"), rest[11], rest[12])
PY
}
machine_cpu() { awk '/^cpu / {print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5, $9}' /proc/stat; }

run_one() {  # run_one LABEL SPEC ROUND: one measured run, its results in $work/LABEL-ROUND.*
  local label=$1 spec=$2 round=$3
  local binary=${spec%%:*} vars=()
  if [ "$spec" != "$binary" ]; then IFS=: read -r -a vars <<<"${spec#*:}"; fi
  [ -x "$binary" ] || { echo "bench/cpu.sh: no binary at $binary" >&2; exit 1; }
  rm -rf "${work:?}/$label"
  start_kura "$label" "$binary" "${vars[@]}"
  setup_tenant >/dev/null
  local url="$KURA_ADDR/v1/t/bench/collections/customers/records" lua=$script
  if [ "$script" != create ]; then url="$url/$record_id" lua=get; fi
  if [ "$script" = get-session ]; then
    setup_user
    BENCH_KEY=$BENCH_SESSION
  fi
  wrk -t2 -c64 -d3s -s "$repo/bench/wrk/$lua.lua" "$url" >/dev/null
  threads_cpu "$kura_pid" >"$work/$label-$round.before"
  machine_cpu >"$work/$label-$round.machine-before"
  wrk -t2 -c64 -d"${seconds}s" --latency -s "$repo/bench/wrk/$lua.lua" "$url" >"$work/$label-$round.wrk"
  machine_cpu >"$work/$label-$round.machine-after"
  threads_cpu "$kura_pid" >"$work/$label-$round.after"
  stop_kura
  echo "bench/cpu.sh: $label round $round: $(awk '/Requests\/sec/ {print $2}' "$work/$label-$round.wrk") requests/s" >&2
}

labels=()
for arg in "$@"; do labels+=("${arg%%=*}"); done
for round in $(seq "$rounds"); do
  for arg in "$@"; do run_one "${arg%%=*}" "${arg#*=}" "$round"; done
done

python3 - "$work" "$rounds" "$script" "$seconds" "$(getconf CLK_TCK)" "$data_parent" "${labels[@]}" <<'PY'
import collections, os, re, statistics, sys
work, rounds, script, seconds, hz = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
data_parent, labels = sys.argv[6], sys.argv[7:]

def group(name):
    return "kura-io-*" if name.startswith("kura-io-") else name

def times(path):
    out = collections.defaultdict(lambda: [0, 0])
    for line in open(path):
        name, user, system = line.split()
        out[group(name)][0] += int(user)
        out[group(name)][1] += int(system)
    return out

def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) / 1000 if unit == "us" else float(value) * 1000 if unit == "s" else float(value)

rows = {}
for label in labels:
    runs = []
    for r in range(1, rounds + 1):
        base = os.path.join(work, f"{label}-{r}")
        text = open(base + ".wrk").read()
        requests = int(re.search(r"(\d+) requests in", text).group(1))
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
        p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
        before, after = times(base + ".before"), times(base + ".after")
        per = {}
        for name, (user, system) in after.items():
            u0, s0 = before.get(name, [0, 0])
            per[name] = ((user - u0) * 1e6 / hz / requests, (system - s0) * 1e6 / hz / requests)
        total0, idle0, steal0 = map(int, open(base + ".machine-before").read().split())
        total1, idle1, steal1 = map(int, open(base + ".machine-after").read().split())
        span = max(total1 - total0, 1)
        runs.append({"rps": rps, "p99": p99, "idle": 100 * (idle1 - idle0) / span,
                     "steal": 100 * (steal1 - steal0) / span, "per": per})
    rows[label] = runs

data_option = "" if data_parent == "/tmp" else f" -t {data_parent}"
lua = "create.lua" if script == "create" else "get.lua, a session token" if script == "get-session" else "get.lua"
print(f"`bench/cpu.sh -r {rounds} -d {seconds} -s {script}{data_option}`: wrk -t2 -c64, {lua}; "
      f"medians of {rounds} rounds; CPU in µs per request (user + system)")
print()
names = sorted({n for runs in rows.values() for run in runs for n, (u, s) in run["per"].items() if u + s >= 0.1})
print("| | requests/s | p99 | idle | steal | " + " | ".join(names) + " | kura total |")
print("| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in names) + " | ---: |")
med = statistics.median
for label, runs in rows.items():
    cells = [f"{med(r['rps'] for r in runs):,.0f}", f"{med(r['p99'] for r in runs):.2f} ms",
             f"{med(r['idle'] for r in runs):.1f} %", f"{med(r['steal'] for r in runs):.1f} %"]
    for n in names:
        u = med(r["per"].get(n, (0, 0))[0] for r in runs)
        s = med(r["per"].get(n, (0, 0))[1] for r in runs)
        cells.append(f"{u:.1f} + {s:.1f}")
    total = med(sum(u + s for u, s in r["per"].values()) for r in runs)
    cells.append(f"{total:.1f}")
    print(f"| {label} | " + " | ".join(cells) + " |")
print()
print("Every round, requests/s: " + "; ".join(
    f"{label} " + ", ".join(f"{r['rps']:,.0f}" for r in runs) for label, runs in rows.items()))
PY
