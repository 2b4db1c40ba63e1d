#!/usr/bin/env bash
# bench/build-time.sh [PRESET[@COMMIT]…]: how long a clean build of each CMake
# preset (default: release debug) takes on this machine — configure and build,
# from a fresh clone of the committed HEAD (or COMMIT) into a temp directory,
# with ccache off, as CI on a fresh machine builds. Prints a markdown table:
# wall time, the CPU time of the compilers and linkers (user + sys), and the
# machine. This machine's speed drifts by a third from hour to hour: to compare
# two commits, alternate them in one run (debug@abc123 debug debug@abc123 debug).
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
export CCACHE_DISABLE=1

echo "| preset | wall | CPU (user + sys) | commit | machine |"
echo "| --- | --- | --- | --- | --- |"
for spec in "${presets[@]}"; do
  preset=${spec%%@*}
  rev=HEAD
  [ "$preset" = "$spec" ] || rev=${spec#*@}
  commit=$(git -C "$repo" rev-parse --short "$rev^{commit}")
  rm -rf "$work/kura"
  git clone -q "$repo" "$work/kura"
  git -C "$work/kura" checkout -q "$commit"
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
