#!/usr/bin/env bash
# How many durable commits this machine's disk can do: writes of 32 KiB (the
# size of a group commit of ~18 audit entries in SQLite's WAL, eight 4 KiB
# pages), each followed by fdatasync, with 1, 2 and 4 writers at once (fio).
# Prints syncs/s in total and the sync's median and p99 latency.
#
#   bench/sync-rate.sh [-d SECONDS] [DIR]   (DIR: where the files go, default /tmp)
#
# Why it matters: a read's audit entry must be durable before the response is
# sent, so with wrk's 64 connections the audited GET waits for one sync per
# group commit (docs/performance.md). If concurrent syncs completed faster in
# total, overlapping two commits' syncs would raise the ceiling; this shows
# whether they do. Run it again while bench/cpu.sh loads the machine to see
# the sync latency kura meets under load.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
require_tools fio python3

seconds=5
while getopts "d:" opt; do
  case $opt in
    d) seconds=$OPTARG ;;
    *) echo "usage: bench/sync-rate.sh [-d SECONDS] [DIR]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
parent=${1:-/tmp}
[ -d "$parent" ] || { echo "bench/sync-rate.sh: $parent is not a directory" >&2; exit 2; }
work=$(mktemp -d "$parent/kura-sync.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "\`bench/sync-rate.sh -d $seconds $parent\`: fio, 32 KiB writes each followed by fdatasync, ${seconds} s per line"
echo
echo "| writers | syncs/s (total) | sync p50 | sync p99 |"
echo "| ---: | ---: | ---: | ---: |"
for jobs in 1 2 4; do
  fio --name=sync --directory="$work" --rw=write --bs=32k --size=2m --fdatasync=1 --numjobs="$jobs" \
    --time_based --runtime="$seconds" --group_reporting --output-format=json >"$work/fio.json"
  python3 - "$work/fio.json" "$jobs" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
sync = job["sync"]["lat_ns"]["percentile"]
print(f"| {sys.argv[2]} | {job['write']['iops']:,.0f} | {sync['50.000000'] / 1000:.0f} µs | {sync['99.000000'] / 1000:.0f} µs |")
PY
  rm -f "$work"/sync.*
done
