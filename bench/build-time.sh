#!/usr/bin/env bash
# bench/build-time.sh [PRESET…]: how long a clean build of each CMake preset
# (default: release debug) takes on this machine — configure and build, from a
# fresh clone of the committed HEAD into a temp directory, with ccache off, as
# CI on a fresh machine builds. Prints a markdown table: wall time, the CPU
# time of the compilers and linkers (user + sys), and the machine.
# Nothing else should run meanwhile: the builds use every core.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
require_tools git cmake ninja

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(release debug)
commit=$(git -C "$repo" rev-parse --short HEAD)
export CCACHE_DISABLE=1

echo "| preset | wall | CPU (user + sys) | commit | machine |"
echo "| --- | --- | --- | --- | --- |"
for preset in "${presets[@]}"; do
  rm -rf "$work/kura"
  git clone -q "$repo" "$work/kura"
  TIMEFORMAT='%R %U %S'
  # The inner braces keep the build's output redirection off time's report.
  if ! { time { (cd "$work/kura" && cmake --preset "$preset" && cmake --build --preset "$preset") \
           >"$work/$preset.log" 2>&1; }; } 2>"$work/$preset.time"; then
    tail -40 "$work/$preset.log" >&2
    echo "bench: the $preset build failed" >&2
    exit 1
  fi
  read -r wall user sys <"$work/$preset.time"
  printf '| %s | %.0f s (%s) | %s s | %s | %s cores, %s |\n' "$preset" "$wall" \
    "$(date -u -d "@${wall%.*}" +%-M:%S)" "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }')" \
    "$commit" "$(nproc)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
done
